//! The terminal while the full-screen view runs: raw mode and the
//! alternate screen on, and always restored, on quit, on error (the guard's
//! drop), on a panic (ratatui's hook restores before the message) and on
//! SIGTERM, SIGINT or SIGHUP (recorded by [`crate::lab::signals`] and seen
//! by the loop, which then returns through the guard).

use std::io;

use ratatui::DefaultTerminal;

/// The terminal in full-screen mode; dropping it restores the terminal.
pub struct TerminalGuard {
    /// The ratatui terminal to draw on.
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Switches to raw mode and the alternate screen, and installs the
    /// panic hook that restores them.
    pub fn enter() -> io::Result<TerminalGuard> {
        let terminal = ratatui::try_init()?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
