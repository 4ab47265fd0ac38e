//! The non-terminal mode of `reqresp watch`: one JSON object per line per
//! event, flushed at once, for scripts and log collectors.
//!
//! | `event` | fields |
//! | --- | --- |
//! | `connection_opened` | `id`, `client`, `server`, `time` |
//! | `exchange` | `connection`, `index`, then the exchange's fields |
//! | `tcp_event` | `connection`, then the TCP event's fields |
//! | `connection_closed` | the connection's fields |
//!
//! The exchange and connection fields are written by the code that writes
//! `analyze --format json` (`report::json`), on one line; the TCP event's
//! are the serde form of the same model.

use std::io::{self, Write};
use std::net::SocketAddr;

use serde::Serialize;

use crate::analyze::Event;
use crate::analyze::model::Timestamp;
use crate::report::json;

/// One line: the event's name, then its fields.
#[derive(Serialize)]
struct Line<T: Serialize> {
    event: &'static str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct Opened {
    id: u32,
    client: String,
    server: String,
    time: Timestamp,
}

#[derive(Serialize)]
struct Of<T: Serialize> {
    connection: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(flatten)]
    body: T,
}

/// Writes `event` as one line to `out` (packet events are not written),
/// and flushes `out` at [`Event::BatchEnd`]: once per batch of packets,
/// so a reader sees each line within a batch (20 ms of capture time) of
/// its packet, at one write per batch. `buf` is reused between calls.
pub fn write_event(out: &mut dyn Write, buf: &mut Vec<u8>, event: &Event) -> io::Result<()> {
    buf.clear();
    let addr = |a: &SocketAddr| a.to_string();
    let written = match event {
        Event::Opened {
            id,
            client,
            server,
            time,
        } => serde_json::to_writer(
            &mut *buf,
            &Line {
                event: "connection_opened",
                body: Opened {
                    id: *id,
                    client: addr(client),
                    server: addr(server),
                    time: *time,
                },
            },
        ),
        Event::Exchange {
            connection,
            index,
            exchange,
            split,
        } => {
            buf.extend_from_slice(b"{\"event\":\"exchange\",\"connection\":");
            json::uint(buf, u64::from(*connection));
            buf.extend_from_slice(b",\"index\":");
            json::uint(buf, *index as u64);
            json::exchange_line(buf, b",", *split, exchange);
            Ok(())
        }
        Event::Tcp { connection, event } => serde_json::to_writer(
            &mut *buf,
            &Line {
                event: "tcp_event",
                body: Of {
                    connection: *connection,
                    index: None,
                    body: event,
                },
            },
        ),
        Event::Closed(c) => {
            json::connection_line(buf, b"{\"event\":\"connection_closed\",", c);
            Ok(())
        }
        Event::Segment(_) => return Ok(()),
        Event::BatchEnd => return out.flush(),
    };
    written.map_err(io::Error::from)?;
    buf.push(b'\n');
    out.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Analyzer;
    use crate::analyze::model::Side;
    use crate::analyze::testing::{Script, line_options, push_with_events};

    #[test]
    fn every_event_is_one_line_with_the_analyze_fields() {
        let mut w = Script::new(1000, 5000);
        w.handshake(0, 100);
        w.c(1_000, b"hi\x1b[2J\n");
        w.s(1_200, b"Echo: hi\n");
        w.rst(2_000, Side::Server);
        let mut analyzer = Analyzer::new(line_options()).with_exchange_events();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut closed = None;
        push_with_events(&mut analyzer, &w.segs, |_, e| {
            write_event(&mut out, &mut buf, &e).unwrap();
            if let Event::Closed(c) = e {
                closed = Some(c);
            }
        });
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'), "escapes are JSON-escaped");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let names: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "connection_opened",
                "exchange",
                "tcp_event",
                "connection_closed"
            ]
        );
        assert_eq!(lines[0]["client"], "10.0.0.2:40000");
        assert_eq!(lines[1]["connection"], 1);
        assert_eq!(lines[1]["index"], 0);
        let closed = serde_json::to_value(closed.unwrap()).unwrap();
        for (k, v) in closed["exchanges"][0].as_object().unwrap() {
            assert_eq!(&lines[1][k], v, "exchange field {k}");
        }
        assert_eq!(lines[2]["kind"], "rst");
        assert_eq!(lines[2]["side"], "server");
        // Every field of the model's serde form is there with the same value
        // (the lines, as `analyze --format json`, have a few more: the
        // latency split and the packets of each message).
        for (k, v) in closed.as_object().unwrap() {
            if k == "exchanges" {
                for (k, v) in v[0].as_object().unwrap() {
                    assert_eq!(&lines[3]["exchanges"][0][k], v, "exchange field {k}");
                }
            } else {
                assert_eq!(&lines[3][k], v, "connection field {k}");
            }
        }
        assert_eq!(lines[1]["network_us"], 100.0);
        assert_eq!(lines[1]["server_us"], 100.0);
        assert_eq!(lines[3]["exchanges"][0]["rtt_from"], "handshake");
    }

    /// A writer that counts its flushes.
    #[derive(Default)]
    struct Flushes {
        bytes: Vec<u8>,
        flushes: usize,
    }

    impl Write for Flushes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn lines_are_flushed_once_per_batch_not_once_per_event() {
        let mut w = Script::new(1000, 5000);
        w.handshake(0, 100);
        w.c(1_000, b"hi\n");
        w.s(1_200, b"Echo: hi\n");
        let mut analyzer = Analyzer::new(line_options()).with_exchange_events();
        let (mut out, mut buf) = (Flushes::default(), Vec::new());
        push_with_events(&mut analyzer, &w.segs, |_, e| {
            write_event(&mut out, &mut buf, &e).unwrap();
        });
        assert_eq!(out.bytes.iter().filter(|&&b| b == b'\n').count(), 2);
        assert_eq!(out.flushes, 0, "opened and exchange: not flushed yet");
        write_event(&mut out, &mut buf, &Event::BatchEnd).unwrap();
        assert_eq!(out.flushes, 1);
        assert_eq!(
            out.bytes.iter().filter(|&&b| b == b'\n').count(),
            2,
            "a batch end writes no line"
        );
    }
}
