use super::*;
use crate::analyze::model::Side;
use crate::analyze::testing::{Script, echo};
use crate::watch::keys::{self, Action};
use crate::watch::state::State;
use crate::watch::state::tests::state_of;
use crate::watch::view::{Counters, View};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The text on a `width`×`height` screen after drawing `state` as `view` asks.
fn render(state: &State, view: &mut View, (width, height): (u16, u16)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let areas = Areas::of(Rect::new(0, 0, width, height));
    let counters = Counters {
        packets: 14,
        pps: 3.0,
        dropped: Some(0),
    };
    // The screen may move exchanges out and back while it draws.
    let mut state = state.clone();
    let screen = Screen::build(
        &mut state,
        view,
        counters,
        "lo 'tcp port 2222'",
        keys::HELP,
        areas.ladder_size(),
    );
    terminal.draw(|f| draw(f, &screen, false)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// [`echo`], closed, then a second connection, still open, with one
/// exchange: `request` and its `answer`.
fn echo_and_an_open_one(request: &[u8], answer: &[u8]) -> Script {
    let mut w = echo(true);
    let mut second = Script::new(7000, 9000);
    second.client.set_port(40001);
    second.handshake(5_000, 80);
    second.c(6_000, request);
    second.s(6_400, answer);
    w.segs.extend(second.segs);
    w
}

#[test]
fn the_main_view_fits_80_by_24() {
    let state = state_of(&echo_and_an_open_one(b"book ticket\n", b"OK 1\n"));
    let text = render(&state, &mut View::following(), (80, 24));
    assert_eq!(text.lines().count(), 24);
    assert!(
        text.lines()
            .all(|l| unicode_width::UnicodeWidthStr::width(l) <= 80)
    );
    assert!(text.contains("\"book ticket\""), "{text}");
    insta::assert_snapshot!("watch_80x24", text);
}

#[test]
fn the_view_follows_a_resize() {
    let state = state_of(&echo(true));
    let mut view = View::following();
    let wide = render(&state, &mut view, (120, 30));
    assert!(wide.contains("\"hello\" (5 B)"), "{wide}");
    insta::assert_snapshot!("watch_120x30", wide);
    let small = render(&state, &mut view, (80, 24));
    assert_eq!(small.lines().count(), 24);
    assert!(
        small
            .lines()
            .all(|l| unicode_width::UnicodeWidthStr::width(l) <= 80)
    );
}

#[test]
fn the_detail_shows_the_bytes_and_packets_and_never_an_escape() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    w.c(1_000, b"hi\x1b[2J\x07\n");
    w.s(1_200, b"Echo: hi\n");
    w.fin(2_000, Side::Client);
    let state = state_of(&w);
    let mut view = View::following();
    render(&state, &mut view, (80, 24));
    view.handle(Action::Enter, &state);
    let text = render(&state, &mut view, (80, 24));
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
    assert!(text.contains("packet #4 client → server"), "{text}");
    assert!(text.contains("68 69 1b 5b 32 4a 07 0a"), "{text}");
    insta::assert_snapshot!("watch_detail", text);
    view.handle(Action::Back, &state);
    assert!(!render(&state, &mut view, (80, 24)).contains("packet #4"));
}

#[test]
fn the_filter_and_selection_choose_the_connection() {
    let state = state_of(&echo_and_an_open_one(b"other\n", b"Echo: other\n"));
    let mut view = View::following();
    let text = render(&state, &mut view, (80, 24));
    assert!(
        text.contains("Connection 2 "),
        "follow shows the newest: {text}"
    );
    view.handle(Action::Up, &state);
    assert!(!view.follow);
    let text = render(&state, &mut view, (80, 24));
    assert!(text.contains("Connection 1 "), "{text}");
    view.handle(Action::Filter, &state);
    for c in "other".chars() {
        view.handle(Action::Char(c), &state);
    }
    view.handle(Action::Enter, &state);
    let text = render(&state, &mut view, (80, 24));
    assert!(
        text.contains("Connection 2 ") && text.contains("filter: other"),
        "{text}"
    );
    assert!(!text.contains("40000"), "{text}");
}

#[test]
fn a_long_connection_list_keeps_the_selected_row_in_sight() {
    let mut state = State::default();
    for id in 1..=30u32 {
        state.apply(crate::analyze::Event::Opened {
            id,
            client: format!("10.0.0.2:{}", 40_000 + id).parse().unwrap(),
            server: "10.0.0.1:2222".parse().unwrap(),
            time: crate::analyze::model::Timestamp(u64::from(id)),
        });
    }
    let mut view = View::following();
    let text = render(&state, &mut view, (80, 24));
    assert!(
        text.contains("10.0.0.2:40030"),
        "follow shows the newest: {text}"
    );
    assert!(!text.contains("10.0.0.2:40001 "), "{text}");
    for _ in 0..29 {
        view.handle(Action::Up, &state);
    }
    let text = render(&state, &mut view, (80, 24));
    assert!(
        text.contains("10.0.0.2:40001"),
        "the first, selected: {text}"
    );
    assert!(!text.contains("10.0.0.2:40030"), "{text}");
}
