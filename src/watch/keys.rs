//! The keys of `reqresp watch`, as [`Action`]s: one table, so the help
//! line, the README and the behaviour agree.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// ↑ or k: the previous connection (or exchange in the detail).
    Up,
    /// ↓ or j: the next connection (or exchange in the detail).
    Down,
    /// PgUp: scroll the ladder up.
    PageUp,
    /// PgDn: scroll the ladder down.
    PageDown,
    /// Enter: open (or close) the detail of the selected connection's exchange.
    Enter,
    /// Esc: close the detail, cancel the filter.
    Back,
    /// f: follow the newest connection and arrow.
    Follow,
    /// p: freeze the view (the capture goes on).
    Pause,
    /// /: type a filter.
    Filter,
    /// → or l: the next packet (with `--step`).
    StepForward,
    /// ← or h: the previous packet (with `--step`).
    StepBack,
    /// q or Ctrl-C: quit.
    Quit,
    /// A character typed into the filter.
    Char(char),
    /// Backspace in the filter.
    Backspace,
}

/// The one-line help at the bottom of the screen.
pub const HELP: &str = "↑↓/jk select · Enter detail · f follow · p pause · / filter · q quit";
/// The line under the ladder with `lab --interactive`.
pub const PROMPT_HELP: &str = "Enter sends · ↑↓ select · Esc ends the client (then q quits)";
/// The same with `--step`.
pub const STEP_HELP: &str = "→/← step · ↑↓ select · Enter detail · f follow · / filter · q quit";

/// The action of `key`; `typing` while a filter or a request is being
/// typed (letters then go into it; arrows still move).
pub fn action(key: KeyEvent, typing: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
        return Some(Action::Quit);
    }
    if typing {
        return match key.code {
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) if !ctrl => Some(Action::Char(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('f') => Action::Follow,
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::Pause,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Right | KeyCode::Char('l') => Action::StepForward,
        KeyCode::Left | KeyCode::Char('h') => Action::StepBack,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn letters_move_and_quit_but_go_into_a_filter_being_typed() {
        assert_eq!(action(key(KeyCode::Char('j')), false), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(
            action(key(KeyCode::Char('q')), true),
            Some(Action::Char('q'))
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c, true), Some(Action::Quit));
        assert_eq!(action(key(KeyCode::Left), false), Some(Action::StepBack));
        assert_eq!(action(key(KeyCode::F(5)), false), None);
    }
}
