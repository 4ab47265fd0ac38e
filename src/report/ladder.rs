//! The rows of a ladder diagram for one connection, in the order they are
//! drawn: handshake, requests and responses by capture time, notes, teardown.
//! Shared by the text, Mermaid and SVG formats so they always tell the same
//! story; each format only decides how a row looks.

use std::collections::HashMap;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::analyze::model::{
    CloseEvent, CloseKind, Connection, Exchange, Gap, PitfallKind, RecvPitfall, Side, Timestamp,
};

/// One row of a ladder diagram.
#[derive(Debug, Clone)]
pub enum Row<'a> {
    /// The client's SYN.
    Syn(Timestamp),
    /// The server's SYN-ACK.
    SynAck(Timestamp),
    /// The client's ACK that completes the handshake.
    Ack(Timestamp),
    /// The capture began after the handshake.
    NoHandshake,
    /// Bytes of one direction that were not captured (gaps carry no time, so
    /// they are drawn after the handshake, with their stream offsets).
    Gap(&'a Gap),
    /// A request reached the server (`index` is 0-based in the connection).
    Request {
        /// Position of the exchange in the connection.
        index: usize,
        /// The exchange.
        exchange: &'a Exchange,
    },
    /// The response to the request with the same `index`.
    Response {
        /// Position of the exchange in the connection.
        index: usize,
        /// The exchange.
        exchange: &'a Exchange,
        /// When the response was complete (last byte, else first byte).
        time: Timestamp,
    },
    /// A place where one `recv()` per message goes wrong.
    Pitfall(&'a RecvPitfall),
    /// Exchanges left out because of the cap.
    More(usize),
    /// No request/response was seen on the connection.
    NoExchanges,
    /// A FIN or RST.
    Close(&'a CloseEvent),
    /// The connection was still open at the end of the capture.
    StillOpen,
}

impl Row<'_> {
    /// The capture time of the row, for rows that have one.
    pub fn time(&self) -> Option<Timestamp> {
        match self {
            Row::Syn(t) | Row::SynAck(t) | Row::Ack(t) => Some(*t),
            Row::Request { exchange, .. } => Some(exchange.request_time),
            Row::Response { time, .. } => Some(*time),
            Row::Close(event) => Some(event.time),
            _ => None,
        }
    }
}

/// The rows of `conn`, drawing at most `max_exchanges` exchanges (`None`:
/// all of them).
pub fn rows(conn: &Connection, max_exchanges: Option<usize>) -> Vec<Row<'_>> {
    let shown = max_exchanges.map_or(conn.exchanges.len(), |m| m.min(conn.exchanges.len()));
    let mut out = Vec::new();
    match &conn.handshake {
        Some(h) => {
            out.push(Row::Syn(h.syn));
            out.extend(h.syn_ack.map(Row::SynAck));
            out.extend(h.ack.map(Row::Ack));
        }
        None => out.push(Row::NoHandshake),
    }
    out.extend(conn.gaps.iter().map(Row::Gap));

    // Requests, responses and closes by time; a stable sort keeps a request
    // before its response and pipelined requests in order when times tie.
    let mut timed: Vec<(Timestamp, u8, Row<'_>)> = Vec::new();
    for (index, exchange) in conn.exchanges.iter().enumerate().take(shown) {
        timed.push((exchange.request_time, 0, Row::Request { index, exchange }));
        if let Some(time) = exchange.response_last_time.or(exchange.response_first_time) {
            timed.push((
                time,
                0,
                Row::Response {
                    index,
                    exchange,
                    time,
                },
            ));
        }
    }
    // A close at the same instant as data is drawn after it.
    if let Some(close) = &conn.close {
        timed.extend(close.events.iter().map(|e| (e.time, 1, Row::Close(e))));
    }
    timed.sort_by_key(|(t, order, _)| (*t, *order));

    // Pitfall notes by the row they follow, looked up once per row.
    let mut notes: HashMap<(Side, u64), Vec<&RecvPitfall>> = HashMap::new();
    for p in &conn.recv_pitfalls {
        notes
            .entry((p.from, pitfall_anchor(p)))
            .or_default()
            .push(p);
    }

    let hidden = conn.exchanges.len() - shown;
    let mut more_placed = hidden == 0;
    for (_, _, row) in timed {
        if !more_placed && matches!(row, Row::Close(_)) {
            out.push(Row::More(hidden));
            more_placed = true;
        }
        let anchor = match row {
            Row::Request { index, .. } => Some((Side::Client, index)),
            Row::Response { index, .. } => Some((Side::Server, index)),
            _ => None,
        };
        out.push(row);
        if let Some(found) = anchor.and_then(|(side, index)| notes.get(&(side, index as u64))) {
            out.extend(found.iter().map(|p| Row::Pitfall(p)));
        }
    }
    if !more_placed {
        out.push(Row::More(hidden));
    }
    // Pitfalls that point past the drawn messages (unpaired messages) still
    // deserve their note, as long as they are not hidden by the cap.
    out.extend(
        conn.recv_pitfalls
            .iter()
            .filter(|p| {
                let a = pitfall_anchor(p);
                a >= conn.exchanges.len() as u64
                    || (p.from == Side::Server
                        && (a as usize) < shown
                        && conn.exchanges.get(a as usize).is_some_and(|e| {
                            e.response_last_time.or(e.response_first_time).is_none()
                        }))
            })
            .map(Row::Pitfall),
    );
    if conn.exchanges.is_empty() {
        let at = out
            .iter()
            .position(|r| matches!(r, Row::Close(_)))
            .unwrap_or(out.len());
        out.insert(at, Row::NoExchanges);
    }
    if conn.close.is_none() {
        out.push(Row::StillOpen);
    }
    out
}

/// The message after which a pitfall note is drawn: the last message a merged
/// segment carried, or the message that was split.
fn pitfall_anchor(p: &RecvPitfall) -> u64 {
    match p.kind {
        PitfallKind::Merged => p.message.saturating_add(u64::from(p.count.max(1)) - 1),
        PitfallKind::Split => p.message,
    }
}

/// The sentence explaining a pitfall, e.g. "2 requests arrived in one
/// segment: one recv() would return them together".
pub fn pitfall_text(p: &RecvPitfall) -> String {
    let what = match p.from {
        Side::Client => "request",
        Side::Server => "response",
    };
    let nth = p.message.saturating_add(1);
    match p.kind {
        PitfallKind::Merged => format!(
            "{} {what}s arrived in one segment: one recv() would return them together",
            p.count
        ),
        PitfallKind::Split => format!(
            "{what} {nth} took {} segments: one recv() may return only part of it",
            p.count
        ),
    }
}

/// The sentence for a gap, e.g. "1,200 B from server not captured (stream
/// bytes 13–1212)".
pub fn gap_text(g: &Gap) -> String {
    let last = g.offset.saturating_add(g.len.saturating_sub(1));
    format!(
        "{} from {} not captured (stream bytes {}–{})",
        super::stats::format_bytes(g.len),
        side_name(g.from),
        g.offset,
        last
    )
}

/// `client` or `server`.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// `FIN` or `RST`.
pub fn close_name(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::Fin => "FIN",
        CloseKind::Rst => "RST",
    }
}

/// One line describing how the connection ended.
pub fn close_summary(conn: &Connection) -> String {
    match &conn.close {
        Some(c) => format!(
            "closed by {} ({})",
            side_name(c.initiator),
            close_name(c.kind)
        ),
        None => "still open at end of capture".to_owned(),
    }
}

/// Milliseconds from the connection's first packet to `t`, e.g. `+1.150 ms`.
pub fn relative(conn: &Connection, t: Timestamp) -> String {
    format!(
        "+{}",
        super::stats::format_micros(t.micros_since(conn.first_seen))
    )
}

/// The framing a connection was read with, for headers: `line`, or the
/// application protocol (`http`) when one was read.
pub fn framing_name(conn: &Connection) -> String {
    conn.protocol
        .map_or_else(|| conn.framing.to_string(), |p| p.to_string())
}

/// The label of a message: its protocol summary when an application
/// protocol was read (`GET /index.html`), else its preview and size.
pub fn label(summary: Option<&str>, preview: &str, bytes: u64, max: usize) -> String {
    match summary {
        Some(s) => truncate(&visible(s), max),
        None => message_label(preview, bytes, max),
    }
}

/// `"preview" (N B)` in at most `max` columns: the preview is cut with `…`
/// so the size stays visible; `(N B)` alone for an empty preview.
pub fn message_label(preview: &str, bytes: u64, max: usize) -> String {
    let preview = &visible(preview);
    let size = format!("({})", super::stats::format_bytes(bytes));
    if preview.is_empty() {
        return truncate(&size, max);
    }
    // Two quotes and a space around the preview.
    let room = max.saturating_sub(size.width() + 3);
    if room < 4 {
        return truncate(&format!("\"{preview}\" {size}"), max);
    }
    format!("\"{}\" {size}", truncate(preview, room))
}

/// `s` with control characters (a hostile preview could carry terminal
/// escape sequences, or bytes XML forbids) written as `\x{1b}`. Previews
/// come escaped from the analyzer; this is the report's own guard.
pub fn visible(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` cut to at most `max` terminal columns, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.width() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    fn kinds(rows: &[Row<'_>]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Row::Syn(_) => "SYN".into(),
                Row::SynAck(_) => "SYN-ACK".into(),
                Row::Ack(_) => "ACK".into(),
                Row::NoHandshake => "no-handshake".into(),
                Row::Gap(_) => "gap".into(),
                Row::Request { index, .. } => format!("req{index}"),
                Row::Response { index, .. } => format!("resp{index}"),
                Row::Pitfall(_) => "pitfall".into(),
                Row::More(n) => format!("more{n}"),
                Row::NoExchanges => "none".into(),
                Row::Close(e) => format!("{}-{}", side_name(e.from), close_name(e.kind)),
                Row::StillOpen => "open".into(),
            })
            .collect()
    }

    #[test]
    fn pipelined_requests_come_before_their_responses() {
        let c = sample::echo_connection();
        assert_eq!(
            kinds(&rows(&c, None)),
            [
                "SYN",
                "SYN-ACK",
                "ACK",
                "req0",
                "resp0",
                "req1",
                "req2",
                "pitfall",
                "resp1",
                "resp2",
                "client-FIN",
                "server-FIN"
            ]
        );
    }

    #[test]
    fn midstream_connection_says_so_and_notes_the_split() {
        let c = sample::midstream_reset_connection();
        assert_eq!(
            kinds(&rows(&c, None)),
            [
                "no-handshake",
                "gap",
                "req0",
                "resp0",
                "req1",
                "resp1",
                "pitfall",
                "server-RST"
            ]
        );
    }

    #[test]
    fn unanswered_and_open() {
        let c = sample::ipv6_open_connection();
        assert_eq!(
            kinds(&rows(&c, None)),
            ["SYN", "SYN-ACK", "ACK", "req0", "open"]
        );
    }

    #[test]
    fn cap_hides_exchanges_but_keeps_the_close() {
        let a = sample::many_exchanges(10);
        let k = kinds(&rows(&a.connections[0], Some(2)));
        assert_eq!(
            k,
            [
                "SYN",
                "SYN-ACK",
                "ACK",
                "req0",
                "resp0",
                "req1",
                "resp1",
                "more8",
                "client-FIN",
                "server-FIN"
            ]
        );
    }

    #[test]
    fn zero_exchanges_are_said() {
        let mut c = sample::echo_connection();
        c.exchanges.clear();
        c.recv_pitfalls.clear();
        let k = kinds(&rows(&c, Some(5)));
        assert_eq!(
            k,
            ["SYN", "SYN-ACK", "ACK", "none", "client-FIN", "server-FIN"]
        );
    }

    #[test]
    fn sentences() {
        let c = sample::echo_connection();
        assert_eq!(
            pitfall_text(&c.recv_pitfalls[0]),
            "2 requests arrived in one segment: one recv() would return them together"
        );
        let m = sample::midstream_reset_connection();
        assert_eq!(
            pitfall_text(&m.recv_pitfalls[0]),
            "response 2 took 3 segments: one recv() may return only part of it"
        );
        assert_eq!(
            gap_text(&m.gaps[0]),
            "1,200 B from server not captured (stream bytes 13–1212)"
        );
        assert_eq!(relative(&c, sample::at(1.15)), "+1.150 ms");
        assert_eq!(message_label("hello", 5, 40), "\"hello\" (5 B)");
        assert_eq!(message_label("", 0, 40), "(0 B)");
        let long = message_label(&"x".repeat(100), 1_000, 20);
        assert_eq!(long, "\"xxxxxxx…\" (1,000 B)");
        assert_eq!(long.width(), 20);
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
        assert_eq!(visible("a\x1b[2J\u{7f}b"), "a\\x{1b}[2J\\x{7f}b");
        assert_eq!(message_label("\r\n", 2, 40), "\"\\x{d}\\x{a}\" (2 B)");
    }
}
