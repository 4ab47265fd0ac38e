//! The rows of a ladder diagram for one connection, in the order they are
//! drawn: handshake, requests and responses by capture time, notes, teardown.
//! Shared by the text, Mermaid and SVG formats so they always tell the same
//! story; each format only decides how a row looks.

use std::collections::HashMap;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::analyze::model::{
    AckEvent, CloseEvent, CloseKind, ConnState, Connection, Exchange, Gap, LatencySplit,
    PitfallKind, RecvPitfall, Side, TcpEvent, TcpEventKind, Timestamp,
};
use crate::human::format_micros;

/// TCP event rows drawn per connection when exchanges are capped: the
/// events of a long lossy run would otherwise bury the conversation.
const MIN_EVENT_ROWS: usize = 20;

/// One row of a ladder diagram.
#[derive(Debug, Clone)]
pub(crate) enum Row<'a> {
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
    /// A TCP event (retransmission, duplicate ACK, zero window, …); resets
    /// are drawn as [`Row::Close`] instead.
    Event(&'a TcpEvent),
    /// TCP events left out because of the cap (all are in the JSON).
    MoreEvents(usize),
    /// A pure ACK: the teardown's last one always, every one with `--acks`.
    PureAck(&'a AckEvent),
    /// Pure ACKs left out of the drawing (see [`acks_not_drawn_text`]).
    AcksNotDrawn(u64),
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
            Row::Event(event) => Some(event.time),
            Row::PureAck(event) => Some(event.time),
            _ => None,
        }
    }
}

/// The rows of `conn` as `options` asks: at most `max_exchanges`
/// exchanges, and with `acks` every pure ACK the analysis kept (else only
/// the teardown's last ACK), then a line for the pure ACKs not drawn.
pub(crate) fn rows_for<'a>(conn: &'a Connection, options: &super::RenderOptions) -> Vec<Row<'a>> {
    let mut out = rows(conn, options.max_exchanges);
    let drawn: Vec<&AckEvent> = if options.acks {
        let handshake_ack = conn.handshake.as_ref().and_then(|h| h.ack);
        let shown = options
            .max_exchanges
            .map_or(conn.exchanges.len(), |m| m.min(conn.exchanges.len()));
        // Under the cap, the ACKs of the hidden exchanges stay hidden too:
        // those after the last drawn message and before the teardown.
        let hidden_from = (shown < conn.exchanges.len())
            .then(|| {
                conn.exchanges[..shown]
                    .iter()
                    .filter_map(|e| e.response_last_time.or(e.response_first_time))
                    .chain(conn.exchanges[..shown].iter().map(|e| e.request_time))
                    .max()
            })
            .flatten();
        let teardown = conn
            .close
            .as_ref()
            .and_then(|c| c.events.iter().map(|e| e.time).min());
        conn.acks
            .iter()
            .filter(|a| !(a.from == Side::Client && Some(a.time) == handshake_ack))
            .filter(|a| match hidden_from {
                Some(from) => a.time <= from || teardown.is_some_and(|t| a.time >= t),
                None => true,
            })
            .collect()
    } else {
        conn.last_ack.iter().collect()
    };
    let total = conn.pure_acks + u64::from(conn.last_ack.is_some());
    let not_drawn = total.saturating_sub(drawn.len() as u64);
    // Each ACK goes after the last row at or before its time, so it sits
    // among the messages and closes it follows.
    for ack in drawn.into_iter().rev() {
        let at = out
            .iter()
            .rposition(|r| r.time().is_some_and(|t| t <= ack.time))
            .map_or(0, |i| i + 1);
        // Notes that belong to that row (pitfalls) stay with it.
        let at = at
            + out[at..]
                .iter()
                .take_while(|r| matches!(r, Row::Pitfall(_)))
                .count();
        out.insert(at, Row::PureAck(ack));
    }
    if not_drawn > 0 {
        let at = out
            .iter()
            .position(|r| matches!(r, Row::StillOpen))
            .unwrap_or(out.len());
        out.insert(at, Row::AcksNotDrawn(not_drawn));
    }
    out
}

/// The label of a pure ACK: `ACK`, with `--acks` `ACK ack=14` (relative
/// acknowledgment number, as Wireshark shows it).
pub(crate) fn ack_label(ack: &AckEvent, numbered: bool) -> String {
    match (numbered, ack.ack) {
        (true, Some(n)) => format!("ACK ack={n}"),
        _ => "ACK".to_owned(),
    }
}

/// The line under a ladder for the pure ACKs it leaves out.
pub(crate) fn acks_not_drawn_text(n: u64, acks: bool) -> String {
    let s = if n == 1 { "" } else { "s" };
    if acks {
        format!(
            "plus {n} pure ACK{s} not drawn (more than the analysis keeps, or of exchanges not drawn)"
        )
    } else {
        format!("plus {n} pure ACK{s} not drawn (--acks draws them)")
    }
}

/// The rows of `conn`, drawing at most `max_exchanges` exchanges (`None`:
/// all of them), without any pure ACK but the handshake's.
pub(crate) fn rows(conn: &Connection, max_exchanges: Option<usize>) -> Vec<Row<'_>> {
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
    // TCP events at their time, after data of the same instant; the RST is
    // already a close row.
    let drawable = conn.events.iter().filter(|e| e.kind != TcpEventKind::Rst);
    let event_cap = max_exchanges.map_or(usize::MAX, |m| m.max(MIN_EVENT_ROWS));
    let events_hidden = drawable.clone().count().saturating_sub(event_cap)
        + usize::try_from(conn.events_dropped).unwrap_or(usize::MAX);
    timed.extend(drawable.take(event_cap).map(|e| (e.time, 1, Row::Event(e))));
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
    if events_hidden > 0 {
        out.push(Row::MoreEvents(events_hidden));
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

/// The words for a TCP event, e.g. "⟲ retransmission of 14 B after 204 ms
/// (RTO)"; the same in every format.
pub(crate) fn event_text(e: &TcpEvent) -> String {
    let after = e
        .detail
        .map(|us| format!(" after {}", format_micros(us)))
        .unwrap_or_default();
    let bytes = super::stats::format_bytes(u64::from(e.len));
    match e.kind {
        TcpEventKind::Retransmission => format!("⟲ retransmission of {bytes}{after} (RTO)"),
        TcpEventKind::FastRetransmission => {
            format!("⟲ fast retransmission of {bytes} (after duplicate ACKs)")
        }
        TcpEventKind::SpuriousRetransmission => {
            format!("⟲ spurious retransmission of {bytes} (already acknowledged)")
        }
        TcpEventKind::SynRetransmission => format!("⟲ SYN retransmitted{after}"),
        TcpEventKind::OutOfOrder => format!("↯ out-of-order segment of {bytes}"),
        TcpEventKind::DuplicateAck => match e.detail {
            Some(n) => format!("⧉ duplicate ACK #{n}"),
            None => "⧉ duplicate ACK".to_owned(),
        },
        TcpEventKind::LostSegment => "✗ previous segment not captured".to_owned(),
        TcpEventKind::AckedUnseen => "✗ ACK of a segment never captured".to_owned(),
        TcpEventKind::ZeroWindow => "▮ zero window: receive buffer full".to_owned(),
        TcpEventKind::ZeroWindowProbe => "? zero-window probe".to_owned(),
        TcpEventKind::WindowFull => "▮ window full".to_owned(),
        TcpEventKind::KeepAlive => "♡ keep-alive".to_owned(),
        TcpEventKind::Rst => "✗ reset (RST)".to_owned(),
        TcpEventKind::ConnectionRefused => "✗ connection refused (SYN answered by RST)".to_owned(),
    }
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
pub(crate) fn pitfall_text(p: &RecvPitfall) -> String {
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
pub(crate) fn gap_text(g: &Gap) -> String {
    let last = g.offset.saturating_add(g.len.saturating_sub(1));
    format!(
        "{} from {} not captured (stream bytes {}–{})",
        super::stats::format_bytes(g.len),
        g.from.name(),
        g.offset,
        last
    )
}

/// `FIN` or `RST`.
pub(crate) fn close_name(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::Fin => "FIN",
        CloseKind::Rst => "RST",
    }
}

/// One line describing how the connection ended.
pub(crate) fn close_summary(conn: &Connection) -> String {
    match conn.state {
        ConnState::Evicted => return "evicted while idle, to stay within --memcap".to_owned(),
        ConnState::TimedOut => return "timed out: no packet for the inactivity timeout".to_owned(),
        ConnState::Closed | ConnState::Open => {}
    }
    match &conn.close {
        Some(c) => format!("closed by {} ({})", c.initiator.name(), close_name(c.kind)),
        None => "still open at end of capture".to_owned(),
    }
}

/// Milliseconds from the connection's first packet to `t`, e.g. `+1.150 ms`.
pub(crate) fn relative(conn: &Connection, t: Timestamp) -> String {
    format!("+{}", format_micros(t.micros_since(conn.first_seen)))
}

/// The framing a connection was read with, for headers: `line`, or the
/// application protocol (`http`) when one was read.
pub(crate) fn framing_name(conn: &Connection) -> String {
    conn.protocol
        .map_or_else(|| conn.framing.to_string(), |p| p.to_string())
}

/// The label of a message: its protocol summary when an application
/// protocol was read (`GET /index.html`), else its preview and size.
pub(crate) fn label(summary: Option<&str>, preview: &str, bytes: u64, max: usize) -> String {
    match summary {
        Some(s) => truncate(&visible(s), max),
        None => message_label(preview, bytes, max),
    }
}

/// `"preview" (N B)` in at most `max` columns: the preview is cut with `…`
/// so the size stays visible; `(N B)` alone for an empty preview.
pub(crate) fn message_label(preview: &str, bytes: u64, max: usize) -> String {
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
pub(crate) fn visible(s: &str) -> String {
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
pub(crate) fn truncate(s: &str, max: usize) -> String {
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

/// One exchange's latency split, short: `network 0.120 ms · server 300.020 ms`.
pub(crate) fn split_text(s: &LatencySplit) -> String {
    format!(
        "network {} · server {}",
        format_micros(s.network_us),
        format_micros(s.server_us)
    )
}

/// Word-wraps `text` at single spaces into lines of at most `max` terminal
/// columns (display width, so a CJK character counts two); a word longer
/// than a line is cut with `…`. The one wrap of the text, SVG and lab
/// outputs. Hand-written rather than textwrap: textwrap would break a long
/// word over several lines, where a ladder note wants it cut, and would fold
/// runs of spaces that a quoted payload may hold.
pub(crate) fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let word = truncate(word, max);
        if cur.is_empty() {
            cur = word;
        } else if cur.width() + 1 + word.width() <= max {
            cur.push(' ');
            cur.push_str(&word);
        } else {
            lines.push(std::mem::replace(&mut cur, word));
        }
    }
    lines.push(cur);
    lines
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
                Row::Close(e) => format!("{}-{}", e.from.name(), close_name(e.kind)),
                Row::StillOpen => "open".into(),
                Row::Event(e) => e.kind.name().into(),
                Row::MoreEvents(n) => format!("more-events{n}"),
                Row::PureAck(a) => format!("{}-{}", a.from.name(), ack_label(a, true)),
                Row::AcksNotDrawn(n) => format!("acks-not-drawn{n}"),
            })
            .collect()
    }

    fn ack(from: Side, ms: f64, n: u32) -> AckEvent {
        AckEvent {
            from,
            time: sample::at(ms),
            ack: Some(n),
        }
    }

    /// The echo sample with its pure ACKs: one after each request and
    /// response, the server's ACK of the first FIN, and the last ACK.
    fn with_acks(keep: bool) -> Connection {
        let mut c = sample::echo_connection();
        let mut acks = vec![
            ack(Side::Client, 0.06, 1),
            ack(Side::Server, 1.05, 7),
            ack(Side::Client, 1.2, 12),
            ack(Side::Server, 3.02, 17),
        ];
        let last = ack(Side::Client, 3.1, 36);
        c.pure_acks = 3;
        c.last_ack = Some(last);
        acks.push(last);
        if keep {
            c.acks = acks;
        }
        c
    }

    fn options(acks: bool) -> super::super::RenderOptions {
        super::super::RenderOptions {
            acks,
            max_exchanges: None,
            ..Default::default()
        }
    }

    #[test]
    fn the_last_ack_is_drawn_and_the_others_counted() {
        let c = with_acks(false);
        let k = kinds(&rows_for(&c, &options(false)));
        assert_eq!(
            &k[k.len() - 4..],
            [
                "client-FIN",
                "server-FIN",
                "client-ACK ack=36",
                "acks-not-drawn3"
            ]
        );
        assert_eq!(
            acks_not_drawn_text(3, false),
            "plus 3 pure ACKs not drawn (--acks draws them)"
        );
        assert_eq!(ack_label(&c.last_ack.unwrap(), false), "ACK");
        // Nothing to say when there is nothing left out.
        let plain = sample::echo_connection();
        assert!(
            !kinds(&rows_for(&plain, &options(false)))
                .iter()
                .any(|k| k.starts_with("acks-not-drawn") || k.contains("ACK ack"))
        );
    }

    #[test]
    fn with_acks_every_ack_is_drawn_in_time_order() {
        let c = with_acks(true);
        let k = kinds(&rows_for(&c, &options(true)));
        assert_eq!(
            k,
            [
                "SYN",
                "SYN-ACK",
                "ACK",
                "req0",
                "server-ACK ack=7",
                "resp0",
                "client-ACK ack=12",
                "req1",
                "req2",
                "pitfall",
                "resp1",
                "resp2",
                "client-FIN",
                "server-ACK ack=17",
                "server-FIN",
                "client-ACK ack=36",
            ],
            "the handshake's ACK is drawn once, and nothing is left out"
        );
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
                "duplicate_ack",
                "req1",
                "resp1",
                "pitfall",
                "retransmission",
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
    #[test]
    fn wrap_counts_display_width_and_cuts_long_words() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        // Each CJK character is two columns wide: "漢字 漢字" is 9, not 5.
        assert_eq!(wrap("漢字 漢字 漢", 7), ["漢字", "漢字 漢"]);
        assert_eq!(wrap("ab abcdefghij", 5), ["ab", "abcd…"]);
        assert!(wrap("漢字漢字漢字 x", 7).iter().all(|l| l.width() <= 7));
        assert_eq!(wrap("", 5), [""]);
    }
}
