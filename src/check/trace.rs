//! The client's own view of a case: for each connection, when it connected,
//! what it wrote, what each read returned (bytes, end of stream or reset),
//! how long it waited, and how it closed. Times count from the start of the
//! case, so the connections of one case share one clock.
//!
//! This is the evidence when no capture is possible. It shows what the
//! server's behaviour looked like through the socket API: a read that
//! returned two answers at once, a reset where a FIN was expected, a wait
//! that ended in a timeout. [`ladder`] draws it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::human::format_duration;

/// Characters of payload shown per event.
pub(crate) const PREVIEW_CHARS: usize = 48;

/// The most events kept per connection; the rest are counted.
pub(crate) const MAX_EVENTS: usize = 400;

/// What happened on one connection, in order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnTrace {
    /// Who this client is in the case (`client`, `slow client`, `client 3 of 10`).
    pub label: String,
    /// The client's local port, once connected (to find it in a capture).
    pub local_port: Option<u16>,
    /// True when something went wrong on this connection; evidence shows
    /// these connections first.
    pub failed: bool,
    /// The events, at most [`MAX_EVENTS`].
    pub events: Vec<Event>,
    /// Events left out beyond [`MAX_EVENTS`].
    pub events_dropped: usize,
}

/// One thing the client did or saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// Since the start of the case.
    #[serde(rename = "t_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// The connection was established.
    Connected,
    /// The connection could not be made.
    ConnectFailed {
        /// Why, in plain words.
        reason: String,
    },
    /// One write of `bytes` bytes (all of them were written).
    Sent {
        /// Bytes written.
        bytes: usize,
        /// The start of the bytes, escaped.
        text: String,
    },
    /// One read returned `bytes` bytes.
    Received {
        /// Bytes returned by the read.
        bytes: usize,
        /// The start of the bytes, escaped.
        text: String,
    },
    /// A read returned 0: the server closed its side (FIN).
    Fin,
    /// A read or write failed with "connection reset": the server sent RST.
    Reset,
    /// A read or write failed otherwise.
    Error {
        /// The error, in plain words.
        reason: String,
    },
    /// Nothing arrived while the client waited.
    Timeout {
        /// How long the client waited.
        #[serde(rename = "waited_ms", serialize_with = "as_millis")]
        waited: Duration,
        /// What it waited for.
        waiting_for: String,
    },
    /// The client shut down its writing side (sent FIN).
    ShutdownWrite,
    /// The client closed the connection.
    Closed,
    /// The client reset the connection (SO_LINGER 0, sends RST).
    Aborted,
}

impl ConnTrace {
    /// An empty trace for the client called `label`.
    pub fn new(label: impl Into<String>) -> ConnTrace {
        ConnTrace {
            label: label.into(),
            ..ConnTrace::default()
        }
    }

    /// Appends an event, keeping at most [`MAX_EVENTS`].
    pub fn push(&mut self, at: Duration, kind: EventKind) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(Event { at, kind });
        } else {
            self.events_dropped += 1;
        }
    }

    /// Every byte the client read, as far as the kept events tell (for
    /// diagnoses only; previews are cut, so this is about counts).
    pub fn bytes_received(&self) -> usize {
        self.events
            .iter()
            .map(|e| match e.kind {
                EventKind::Received { bytes, .. } => bytes,
                _ => 0,
            })
            .sum()
    }
}

/// `bytes` as printable text of at most `limit` characters: control
/// characters escaped (`\n`, `\u{0}`), invalid UTF-8 as U+FFFD, `…` when cut.
pub(crate) fn preview(bytes: &[u8], limit: usize) -> String {
    // Looking at a bounded prefix keeps a 64 KB payload cheap to preview.
    let head = &bytes[..bytes.len().min(limit.saturating_mul(4))];
    let text = crate::client::printable(head);
    let mut out: String = text.chars().take(limit).collect();
    if out.len() < text.len() || head.len() < bytes.len() {
        out.push('…');
    }
    out
}

/// Draws the connections of one case as a ladder: one line per event, by
/// time, the client on the left and the server on the right, arrows for
/// what crossed the wire. At most `max_conns` connections are drawn, the
/// failed ones first; the rest are announced in one line.
pub(crate) fn ladder(conns: &[ConnTrace], server: &str, max_conns: usize) -> String {
    let mut shown: Vec<(usize, &ConnTrace)> = conns.iter().enumerate().collect();
    // Failed connections first, then in the order they were made.
    shown.sort_by_key(|(i, c)| (!c.failed, *i));
    let hidden = shown.len().saturating_sub(max_conns);
    shown.truncate(max_conns);
    shown.sort_by_key(|(i, _)| *i);

    let label_w = shown
        .iter()
        .map(|(_, c)| c.label.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut events: Vec<(Duration, usize, &ConnTrace, &Event)> = Vec::new();
    for (order, (_, conn)) in shown.iter().enumerate() {
        for e in &conn.events {
            events.push((e.at, order, conn, e));
        }
    }
    // A stable sort: one connection's events keep their order at equal times.
    events.sort_by_key(|(at, order, _, _)| (*at, *order));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:>10}  {:<label_w$}          server {server}",
        "time", "client"
    );
    for (at, _, conn, event) in events {
        let (arrow, what) = describe(&event.kind);
        let _ = writeln!(
            out,
            "  {:>10}  {:<label_w$}  {arrow}  {what}",
            format_duration(at),
            conn.label
        );
    }
    for (_, conn) in &shown {
        if conn.events_dropped > 0 {
            let _ = writeln!(
                out,
                "  ({}: {} more events not kept)",
                conn.label, conn.events_dropped
            );
        }
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "  ({hidden} more connection{} not drawn; none of them failed first)",
            if hidden == 1 { "" } else { "s" }
        );
    }
    out
}

/// The arrow and the words for one event. `──▶` goes to the server, `◀──`
/// comes from it, `··` is the client on its own.
fn describe(kind: &EventKind) -> (&'static str, String) {
    match kind {
        EventKind::Connected => ("──▶", "connect (SYN, SYN-ACK, ACK)".into()),
        EventKind::ConnectFailed { reason } => ("─✗ ", format!("connect failed: {reason}")),
        EventKind::Sent { bytes, text } => ("──▶", format!("write {bytes} B \"{text}\"")),
        EventKind::Received { bytes, text } => ("◀──", format!("read {bytes} B \"{text}\"")),
        EventKind::Fin => ("◀──", "read 0 B: the server closed its side (FIN)".into()),
        EventKind::Reset => ("◀─✗", "connection reset: the server sent RST".into()),
        EventKind::Error { reason } => (" ✗ ", format!("error: {reason}")),
        EventKind::Timeout {
            waited,
            waiting_for,
        } => (
            " … ",
            format!(
                "nothing for {}, waiting for {waiting_for}",
                format_duration(*waited)
            ),
        ),
        EventKind::ShutdownWrite => ("──▶", "shutdown(write): the client's FIN".into()),
        EventKind::Closed => ("──▶", "close".into()),
        EventKind::Aborted => ("──▶", "abort: the client's RST (SO_LINGER 0)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn preview_escapes_and_cuts() {
        assert_eq!(preview(b"hi\n", 10), "hi\\n");
        assert_eq!(preview(b"abcdef", 3), "abc…");
        assert_eq!(preview(&[0xff, b'a'], 10), "\u{fffd}a");
        let big = vec![b'x'; 100_000];
        assert_eq!(preview(&big, 5), "xxxxx…");
    }

    #[test]
    fn ladder_interleaves_connections_by_time_and_puts_failed_ones_first() {
        let mut a = ConnTrace::new("client 1");
        a.push(ms(0), EventKind::Connected);
        a.push(
            ms(2),
            EventKind::Sent {
                bytes: 6,
                text: "hello\\n".into(),
            },
        );
        a.push(
            ms(5),
            EventKind::Timeout {
                waited: ms(2000),
                waiting_for: "the answer".into(),
            },
        );
        a.failed = true;
        let mut b = ConnTrace::new("client 2");
        b.push(ms(1), EventKind::Connected);
        b.push(ms(3), EventKind::Reset);
        let mut c = ConnTrace::new("client 3");
        c.push(ms(4), EventKind::Connected);
        let text = ladder(&[b.clone(), c, a.clone()], "127.0.0.1:2222", 2);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("server 127.0.0.1:2222"), "{text}");
        // client 2 (first made) and client 1 (failed) are drawn, client 3 is not.
        assert!(lines[1].contains("client 1") && lines[1].contains("connect"));
        assert!(lines[2].contains("client 2"));
        assert!(lines[3].contains("write 6 B \"hello\\n\""));
        assert!(lines[4].contains("RST"));
        assert!(lines[5].contains("waiting for the answer"));
        assert!(lines[6].contains("1 more connection not drawn"));
        assert!(!text.contains("client 3"));
    }

    #[test]
    fn events_beyond_the_cap_are_counted_not_kept() {
        let mut t = ConnTrace::new("c");
        for i in 0..MAX_EVENTS + 5 {
            t.push(
                ms(i as u64),
                EventKind::Received {
                    bytes: 1,
                    text: "x".into(),
                },
            );
        }
        assert_eq!(t.events.len(), MAX_EVENTS);
        assert_eq!(t.events_dropped, 5);
        assert_eq!(t.bytes_received(), MAX_EVENTS);
        assert!(ladder(&[t], "s", 3).contains("5 more events not kept"));
    }
}
