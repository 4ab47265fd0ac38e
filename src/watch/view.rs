//! What the user chose to look at ([`View`]: selection, follow, pause,
//! filter, detail) and the [`Screen`] it makes of the [`State`]: a small
//! snapshot taken under the state's lock, drawn after it is released, so
//! drawing never holds up the analysis.
//!
//! Every text from the capture reaches the screen through the report's
//! [`ladder::visible`] (or the hex dump's dots): a payload never becomes a
//! terminal escape.

use std::fmt::Write as _;

use super::keys::Action;
use super::state::{Conn, State};
use crate::analyze::model::{Exchange, Side};
use crate::human::format_micros;
use crate::report::RenderOptions;
use crate::report::ladder::{self, visible};
use crate::report::stats::{format_bytes, format_opt_micros};
use crate::report::text::{self, LadderLine, Style};

/// What the user chose to look at.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The selected connection's id.
    pub selected: Option<u32>,
    /// Keep the newest connection selected and its newest arrow in sight.
    pub follow: bool,
    /// The view is frozen (the capture goes on).
    pub paused: bool,
    /// Show only connections matching this (address, port or text).
    pub filter: String,
    /// A filter being typed.
    pub typing: Option<String>,
    /// The detail is open on this exchange (index in the kept exchanges).
    pub detail: Option<usize>,
    /// Ladder lines scrolled up from the newest (when not following).
    pub scroll: usize,
    /// The user asked to quit.
    pub quit: bool,
    /// A request being typed (`lab --interactive`); `None` without a prompt.
    pub prompt: Option<String>,
    /// A request typed and entered, for the caller to send.
    pub send: Option<String>,
}

impl View {
    /// A view that follows the newest connection.
    pub fn following() -> Self {
        View {
            follow: true,
            ..View::default()
        }
    }

    /// Applies a key's action (stepping is the stepper's, not the view's).
    pub fn handle(&mut self, action: Action, state: &State) {
        if let Some(typed) = &mut self.typing {
            match action {
                Action::Char(c) => typed.push(c),
                Action::Backspace => {
                    typed.pop();
                }
                Action::Enter => {
                    self.filter = self.typing.take().unwrap_or_default();
                    self.selected = None;
                }
                Action::Back => self.typing = None,
                Action::Quit => self.quit = true,
                _ => {}
            }
            return;
        }
        if let Some(typed) = &mut self.prompt {
            match action {
                Action::Char(c) => typed.push(c),
                Action::Backspace => {
                    typed.pop();
                }
                Action::Enter => self.send = Some(std::mem::take(typed)),
                // The client ends; the view stays until q.
                Action::Back | Action::Quit => self.prompt = None,
                // Arrows and pages still move.
                _ => return self.navigate(action, state),
            }
            return;
        }
        self.navigate(action, state);
    }

    /// Moves the selection, scroll and detail, and the other keys.
    fn navigate(&mut self, action: Action, state: &State) {
        match action {
            Action::Up | Action::Down => {
                if let Some(i) = self.detail {
                    let n = self
                        .selected_conn(state)
                        .map_or(0, |c| c.model.exchanges.len());
                    self.detail = Some(step(i, n, action == Action::Down));
                } else {
                    self.follow = false;
                    self.scroll = 0;
                    let ids = visible_ids(state, &self.filter);
                    let at = self
                        .selected
                        .and_then(|s| ids.iter().position(|id| *id == s))
                        .unwrap_or(ids.len().saturating_sub(1));
                    self.selected = ids
                        .get(step(at, ids.len(), action == Action::Down))
                        .copied();
                }
            }
            Action::PageUp => {
                self.follow = false;
                self.scroll += 10;
            }
            Action::PageDown => self.scroll = self.scroll.saturating_sub(10),
            Action::Enter => {
                self.detail = match self.detail {
                    Some(_) => None,
                    None => self
                        .selected_conn(state)
                        .and_then(|c| c.model.exchanges.len().checked_sub(1)),
                };
            }
            Action::Back => self.detail = None,
            Action::Follow => {
                self.follow = !self.follow;
                self.scroll = 0;
            }
            Action::Pause => self.paused = !self.paused,
            Action::Filter => self.typing = Some(self.filter.clone()),
            Action::Quit => self.quit = true,
            _ => {}
        }
    }

    fn selected_conn<'a>(&self, state: &'a State) -> Option<&'a Conn> {
        self.selected.and_then(|id| state.conns.get(&id))
    }
}

/// `i` moved one step down (or up) in `0..n`, staying inside.
fn step(i: usize, n: usize, down: bool) -> usize {
    if down {
        (i + 1).min(n.saturating_sub(1))
    } else {
        i.saturating_sub(1)
    }
}

/// Ids of the connections the filter lets through, in order.
fn visible_ids(state: &State, filter: &str) -> Vec<u32> {
    state
        .conns
        .iter()
        .filter(|(_, c)| matches(c, filter))
        .map(|(id, _)| *id)
        .collect()
}

/// Whether `c` matches `filter`: in its addresses (so a port too), or in
/// the text of its kept exchanges. Case is ignored.
fn matches(c: &Conn, filter: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    let m = &c.model;
    m.client.to_string().contains(&f)
        || m.server.to_string().contains(&f)
        || m.exchanges.iter().any(|e| {
            [
                Some(e.request_preview.as_str()),
                Some(e.response_preview.as_str()),
                e.request_summary.as_deref(),
                e.response_summary.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|t| t.to_lowercase().contains(&f))
        })
}

/// One line of the connection list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnRow {
    /// The connection's id.
    pub id: u32,
    /// Client address.
    pub client: String,
    /// Server address.
    pub server: String,
    /// Status word.
    pub status: &'static str,
    /// Exchanges.
    pub exchanges: u64,
    /// Bytes client to server, formatted.
    pub up: String,
    /// Bytes server to client, formatted.
    pub down: String,
    /// The newest latency, formatted.
    pub last: String,
    /// p99 of the kept exchanges' latencies, formatted.
    pub p99: String,
}

/// Everything drawn in one frame.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    /// The top line: what is watched and the counters.
    pub title: String,
    /// Flags shown on the right of the title (FOLLOW, PAUSED, filter).
    pub flags: String,
    /// The connection list (filtered).
    pub rows: Vec<ConnRow>,
    /// The selected row in `rows`.
    pub selected_row: Option<usize>,
    /// Above the ladder: the selected connection.
    pub ladder_title: String,
    /// The ladder's header (`client … server`).
    pub ladder_header: String,
    /// The ladder lines in view (or the detail's lines when open).
    pub ladder: Vec<LadderLine>,
    /// The detail is shown in place of the ladder.
    pub detail: bool,
    /// The newest TCP events, newest last.
    pub strip: Vec<String>,
    /// Latencies for the sparkline, in µs.
    pub sparkline: Vec<u64>,
    /// Words above the sparkline.
    pub latency_title: String,
    /// The bottom line: keys, or the filter being typed.
    pub status: String,
}

/// Counters from outside the analysis (the capture's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Packets captured.
    pub packets: u64,
    /// Packets per second lately.
    pub pps: f64,
    /// Packets the kernel dropped; `None` when not capturing live.
    pub dropped: Option<u64>,
}

impl Screen {
    /// The frame for `state` as `view` asks, with the ladder `width`
    /// columns wide and `ladder_rows` lines tall. `source` names what is
    /// watched; `help` is the key line.
    pub fn build(
        state: &mut State,
        view: &mut View,
        counters: Counters,
        source: &str,
        help: &str,
        (width, ladder_rows, table_rows): (usize, usize, usize),
    ) -> Screen {
        let ids = visible_ids(state, &view.filter);
        if view.follow || view.selected.is_none_or(|s| !ids.contains(&s)) {
            let newest = ids.last().copied();
            if view.selected != newest {
                view.detail = None;
            }
            view.selected = newest;
        }
        // Only the rows in sight are made (a busy capture has hundreds of
        // connections): the window that keeps the selected one in view.
        let selected = view
            .selected
            .and_then(|s| ids.iter().position(|id| *id == s));
        let first = selected.map_or(0, |i| (i + 1).saturating_sub(table_rows.max(1)));
        let rows: Vec<ConnRow> = ids
            .iter()
            .skip(first)
            .take(table_rows.max(1))
            .filter_map(|id| state.conns.get(id))
            .map(conn_row)
            .collect();
        let selected_row = selected.map(|i| i - first);
        let mut screen = Screen {
            title: title(state, counters, source),
            flags: flags(view),
            rows,
            selected_row,
            ladder_header: text::ladder_header(width),
            strip: strip(state),
            sparkline: state.latencies.iter().map(|l| l.round() as u64).collect(),
            latency_title: latency_title(state),
            status: match (&view.typing, &view.prompt) {
                (Some(t), _) => format!("filter: {}▏ (Enter apply · Esc cancel)", visible(t)),
                (None, Some(p)) => format!("> {}▏   {}", visible(p), super::keys::PROMPT_HELP),
                (None, None) => help.to_owned(),
            },
            ..Screen::default()
        };
        let empty = state.conns.is_empty();
        let Some(conn) = view.selected.and_then(|id| state.conns.get_mut(&id)) else {
            screen.ladder_title = if empty {
                "waiting for a TCP connection…".to_owned()
            } else {
                "no connection matches the filter".to_owned()
            };
            return screen;
        };
        screen.ladder_title = ladder_title(conn);
        if let Some(i) = view.detail {
            let i = i.min(conn.model.exchanges.len().saturating_sub(1));
            view.detail = Some(i);
            screen.detail = true;
            screen.ladder = detail_lines(conn, i, width);
            return screen;
        }
        let mut lines = newest_ladder_lines(conn, ladder_rows + view.scroll, width);
        if !conn.done {
            // Still open *now*, not at the end of a capture.
            lines.retain(|l| !l.body.contains("(still open at end of capture"));
        }
        if conn.exchanges_hidden > 0 {
            lines.insert(
                1,
                LadderLine {
                    time: String::new(),
                    body: format!(
                        "… {} earlier exchange{} not kept on screen",
                        conn.exchanges_hidden,
                        if conn.exchanges_hidden == 1 { "" } else { "s" }
                    ),
                    style: Style::Note,
                },
            );
        }
        if view.follow {
            view.scroll = 0;
        }
        let max_scroll = lines.len().saturating_sub(ladder_rows);
        view.scroll = view.scroll.min(max_scroll);
        let end = lines.len() - view.scroll;
        let start = end.saturating_sub(ladder_rows);
        screen.ladder = lines.drain(start..end).collect();
        screen
    }
}

/// Exchanges drawn beyond the lines in sight: each exchange draws at least
/// its request's line, and the newest lines may lose one ("still open").
const LADDER_MARGIN: usize = 8;

/// The ladder of `c` as `analyze` draws it, exact in its newest `rows`
/// lines at least: only the newest exchanges are drawn when leaving out
/// the older ones changes none of those lines (a busy connection keeps
/// hundreds, and this runs up to 20 times a second under the lock).
fn newest_ladder_lines(c: &mut Conn, rows: usize, width: usize) -> Vec<LadderLine> {
    let cut = ladder_cut(&c.model.exchanges, rows.saturating_add(LADDER_MARGIN));
    if cut == 0 {
        return text::ladder_lines(&c.model, &ladder_options(), width);
    }
    // Moves the newest out and back, not the hundreds before them.
    let newest = c.model.exchanges.split_off(cut);
    let older = std::mem::replace(&mut c.model.exchanges, newest);
    let lines = text::ladder_lines(&c.model, &ladder_options(), width);
    let newest = std::mem::replace(&mut c.model.exchanges, older);
    c.model.exchanges.extend(newest);
    lines
}

/// Where to cut `exchanges` for [`newest_ladder_lines`]: the last `keep` at
/// least stay, and every row of the exchanges cut sorts before every row
/// of those kept (a ladder sorts its rows by time, exchanges in order when
/// times tie), so the newest lines are the same without them. 0: no cut.
fn ladder_cut(exchanges: &[Exchange], keep: usize) -> usize {
    let n = exchanges.len();
    if n <= keep {
        return 0;
    }
    let response = |e: &Exchange| e.response_last_time.or(e.response_first_time);
    let first_row = |e: &Exchange| response(e).map_or(e.request_time, |r| r.min(e.request_time));
    let last_row = |e: &Exchange| response(e).map_or(e.request_time, |r| r.max(e.request_time));
    // latest[i]: the latest row of exchanges[..i].
    let mut latest = Vec::with_capacity(n);
    let mut max = None;
    for e in exchanges {
        latest.push(max);
        max = max.max(Some(last_row(e)));
    }
    let mut earliest_kept = exchanges[n - keep..].iter().map(first_row).min();
    let mut cut = n - keep;
    while cut > 0 {
        if latest[cut] <= earliest_kept {
            return cut;
        }
        cut -= 1;
        earliest_kept = earliest_kept.min(Some(first_row(&exchanges[cut])));
    }
    0
}

/// The ladder as `analyze` draws it, every kept exchange.
fn ladder_options() -> RenderOptions {
    RenderOptions {
        max_exchanges: None,
        ..RenderOptions::default()
    }
}

fn conn_row(c: &Conn) -> ConnRow {
    ConnRow {
        id: c.model.id,
        client: c.model.client.to_string(),
        server: c.model.server.to_string(),
        status: c.status.name(),
        exchanges: c.exchanges,
        up: format_bytes(c.model.bytes_client_to_server),
        down: format_bytes(c.model.bytes_server_to_client),
        last: format_opt_micros(c.last_latency_us),
        p99: format_opt_micros(c.p99_us()),
    }
}

fn title(state: &State, counters: Counters, source: &str) -> String {
    let mut t = format!(
        "reqresp watch · {source} · {} pkts · {:.0} pps",
        counters.packets, counters.pps
    );
    if let Some(d) = counters.dropped {
        let _ = write!(t, " · {d} dropped");
    }
    let _ = write!(
        t,
        " · {} conn · {} exch",
        state.connections_seen, state.exchanges
    );
    t
}

fn flags(view: &View) -> String {
    let mut f = Vec::new();
    if view.follow {
        f.push("FOLLOW".to_owned());
    }
    if view.paused {
        f.push("PAUSED".to_owned());
    }
    if !view.filter.is_empty() {
        f.push(format!("filter: {}", visible(&view.filter)));
    }
    f.join(" · ")
}

fn ladder_title(c: &Conn) -> String {
    // The framing is known for sure once the analyzer hands the
    // connection out whole.
    let framing = if c.done {
        format!(" · {} framing", ladder::framing_name(&c.model))
    } else {
        String::new()
    };
    format!(
        "Connection {} · {} → {}{framing} · {} · {} exchange{}",
        c.model.id,
        c.model.client,
        c.model.server,
        c.status.name(),
        c.exchanges,
        if c.exchanges == 1 { "" } else { "s" }
    )
}

fn strip(state: &State) -> Vec<String> {
    state
        .strip
        .iter()
        .map(|e| {
            format!(
                "#{} {} {}",
                e.connection,
                e.event.side.name(),
                ladder::event_text(&e.event)
            )
        })
        .collect()
}

fn latency_title(state: &State) -> String {
    let mut sorted: Vec<f64> = state.latencies.iter().copied().collect();
    sorted.sort_unstable_by(f64::total_cmp);
    match state.latencies.back() {
        None => "latency: none yet".to_owned(),
        Some(last) => format!(
            "latency last {} · p99 {} (newest {})",
            format_micros(*last),
            format_opt_micros(crate::report::stats::percentile(&sorted, 99.0)),
            sorted.len()
        ),
    }
}

/// The detail of exchange `i` of `c`: request and response as text, then
/// each packet that carried them with its size and bytes in hex.
fn detail_lines(c: &Conn, i: usize, width: usize) -> Vec<LadderLine> {
    let mut out = Vec::new();
    let mut line = |body: String, style: Style| {
        out.push(LadderLine {
            time: String::new(),
            body: ladder::truncate(&body, width),
            style,
        })
    };
    let Some(e) = c.model.exchanges.get(i) else {
        line("no exchange yet on this connection".to_owned(), Style::Note);
        return out;
    };
    let number = c.exchanges_hidden + i as u64 + 1;
    line(
        format!(
            "Exchange {number} of {} · latency {} · first byte {} (↑↓ another · Esc back)",
            c.exchanges,
            format_opt_micros(e.latency_us),
            format_opt_micros(e.first_byte_latency_us)
        ),
        Style::Bold,
    );
    for side in Side::BOTH {
        message_lines(c, e, side, &mut line);
    }
    out
}

/// One side of an exchange in the detail.
fn message_lines(c: &Conn, e: &Exchange, side: Side, line: &mut impl FnMut(String, Style)) {
    let (name, bytes, preview, summary, frames, style) = match side {
        Side::Client => (
            "request",
            e.request_bytes,
            &e.request_preview,
            &e.request_summary,
            &e.request_frames,
            Style::Request,
        ),
        Side::Server => (
            "response",
            e.response_bytes,
            &e.response_preview,
            &e.response_summary,
            &e.response_frames,
            Style::Response,
        ),
    };
    let segments = frames.len();
    line(
        format!(
            "{name}: {} in {segments} segment{} ({})",
            format_bytes(bytes),
            if segments == 1 { "" } else { "s" },
            if segments > 1 {
                "one recv() may get only part"
            } else {
                "one recv() may get it whole"
            }
        ),
        style,
    );
    line(format!("  text \"{}\"", visible(preview)), Style::Plain);
    if let Some(s) = summary {
        line(format!("  {}", visible(s)), Style::Plain);
    }
    for n in frames.iter() {
        let Some(p) = c.packet(n) else {
            line(format!("  packet #{n}: no longer kept"), Style::Note);
            continue;
        };
        line(
            format!(
                "  packet #{n} {} → {} · {} payload · {}",
                p.from.name(),
                p.from.other().name(),
                format_bytes(u64::from(p.payload_len)),
                ladder::relative(&c.model, p.time)
            ),
            Style::Plain,
        );
        for row in hex_rows(p.head()) {
            line(format!("    {row}"), Style::Note);
        }
        if u32::from(p.head_len) < p.payload_len {
            line(
                format!("    … {} more bytes", p.payload_len - u32::from(p.head_len)),
                Style::Note,
            );
        }
    }
}

/// `bytes` as hex dump rows: offset, 16 bytes in hex, the printable ones
/// as text (others as `.`).
pub fn hex_rows(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let mut hex = String::new();
            for b in chunk {
                let _ = write!(hex, "{b:02x} ");
            }
            let text: String = chunk
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:04x}  {hex:<48} {text}", i * 16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::Script;
    use crate::watch::state::tests::state_of;

    /// A connection of `n` rounds: every tenth sends `depth` requests
    /// before the first response (pipelined), the others one and its answer.
    fn busy(n: u64, depth: u64) -> Script {
        let mut w = Script::new(1000, 5000);
        w.handshake(0, 100);
        for i in 0..n {
            let t = 1_000 + i * 1_000;
            let depth = if i % 10 == 3 { depth } else { 1 };
            for j in 0..depth {
                w.c(t + j, format!("r{i}.{j}\n").as_bytes());
            }
            for j in 0..depth {
                w.s(t + 500 + j, format!("Echo: r{i}.{j}\n").as_bytes());
            }
        }
        w
    }

    #[test]
    fn the_newest_lines_are_the_same_drawn_from_the_newest_exchanges_only() {
        let state = state_of(&busy(200, 6));
        let conn = state.conns.values().next().expect("one connection");
        assert!(conn.model.exchanges.len() > 250);
        let full = text::ladder_lines(&conn.model, &ladder_options(), 100);
        for rows in [1, 10, 12, 30, 100, 300, 2_000] {
            let mut c = conn.clone();
            let lines = newest_ladder_lines(&mut c, rows, 100);
            let tail = |l: &[LadderLine]| l[l.len().saturating_sub(rows)..].to_vec();
            assert_eq!(tail(&lines), tail(&full), "the newest {rows} lines");
            assert!(
                rows >= 300 || lines.len() < full.len() / 2,
                "drawn from fewer"
            );
            assert_eq!(
                serde_json::to_value(&c.model).unwrap(),
                serde_json::to_value(&conn.model).unwrap(),
                "the exchanges are put back"
            );
        }
    }

    #[test]
    fn no_cut_goes_inside_a_pipeline() {
        // Round 3 sends 40 requests, then their 40 responses: cutting among
        // them would drop responses drawn after requests that are kept.
        let state = state_of(&busy(4, 40));
        let exchanges = &state.conns.values().next().unwrap().model.exchanges;
        assert_eq!(exchanges.len(), 43);
        assert_eq!(ladder_cut(exchanges, 10), 3, "before the pipeline");
        assert_eq!(ladder_cut(exchanges, 40), 3);
        assert_eq!(ladder_cut(exchanges, 41), 2, "between plain rounds");
        assert_eq!(ladder_cut(exchanges, 43), 0, "all kept");
    }

    #[test]
    fn the_hex_dump_shows_escapes_as_dots() {
        let rows = hex_rows(b"hi\x1b[2J\n");
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].starts_with("0000  68 69 1b 5b 32 4a 0a "),
            "{}",
            rows[0]
        );
        assert!(rows[0].ends_with(" hi.[2J."), "{}", rows[0]);
        assert!(!rows[0].contains('\x1b'));
    }
}
