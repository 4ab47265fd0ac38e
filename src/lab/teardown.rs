//! Waiting for the connections' teardown to reach a capture.
//!
//! A lab run stops its capture once the client and the server are done;
//! the last packets (the FINs and their ACKs) may still be on their way
//! through the bridge or the capture's buffer. Instead of a fixed pause,
//! the capture file is read until it shows every connection ended.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::analyze::reader::read_capture;

/// How long a lab waits for the teardown before it stops the capture anyway.
pub(crate) const LIMIT: Duration = Duration::from_secs(1);

/// How often the capture file is read again while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Whether the capture file at `pcap` holds at least one TCP connection and
/// every one has ended: reset, or closed by both sides with the last FIN
/// acknowledged. The file is read as it is, possibly in the middle of a
/// write; one that cannot be read yet has not ended.
pub fn connections_ended(pcap: &Path) -> bool {
    std::fs::read(pcap).is_ok_and(|bytes| ended(&bytes))
}

/// Waits until [`connections_ended`] holds for `pcap`, polling, for at
/// most `limit`. Returns whether it did: a connection left open (a fault
/// that cuts the path, a client killed) never ends, and its capture is
/// then stopped without its teardown.
pub fn wait_for_teardown(pcap: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if connections_ended(pcap) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(POLL.min(left));
    }
}

/// How far one connection's teardown has come.
#[derive(Debug, Default)]
struct End {
    /// FIN seen from the lower address (bit 0) and from the higher (bit 1).
    fins: u8,
    /// A packet after both FINs: the last FIN's ACK.
    last_acked: bool,
    reset: bool,
}

/// [`connections_ended`] on the bytes of a capture.
fn ended(capture: &[u8]) -> bool {
    let mut ends: BTreeMap<(SocketAddr, SocketAddr), End> = BTreeMap::new();
    let read = read_capture(capture, |s| {
        let (key, side) = if s.src < s.dst {
            ((s.src, s.dst), 1)
        } else {
            ((s.dst, s.src), 2)
        };
        let end = ends.entry(key).or_default();
        if end.fins == 3 && !s.flags.fin {
            end.last_acked = true;
        }
        if s.flags.fin {
            end.fins |= side;
        }
        end.reset |= s.flags.rst;
    });
    read.is_ok()
        && !ends.is_empty()
        && ends
            .values()
            .all(|end| end.reset || (end.fins == 3 && end.last_acked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::model::Side;
    use crate::analyze::testing::{Script, segments_pcap};

    fn talk() -> Script {
        let mut s = Script::new(100, 500);
        s.handshake(0, 50);
        s.c(100, b"hello\n");
        s.s(150, b"Echo: hello\n");
        s
    }

    #[test]
    fn a_closed_connection_has_ended_once_the_last_fin_is_acknowledged() {
        let mut s = talk();
        s.fin(200, Side::Client);
        assert!(!ended(&segments_pcap(&s.segs)), "one FIN");
        s.fin(210, Side::Server);
        assert!(
            !ended(&segments_pcap(&s.segs)),
            "the last FIN, not yet acknowledged"
        );
        s.ack(220, Side::Client);
        assert!(ended(&segments_pcap(&s.segs)));
    }

    #[test]
    fn a_reset_ends_a_connection() {
        let mut s = talk();
        s.rst(200, Side::Server);
        assert!(ended(&segments_pcap(&s.segs)));
    }

    #[test]
    fn every_connection_must_have_ended() {
        let mut done = talk();
        done.fin(200, Side::Client);
        done.fin(210, Side::Server);
        done.ack(220, Side::Client);
        let mut open = talk();
        open.client = "10.0.0.2:40001".parse().unwrap();
        open.segs.clear();
        open.handshake(300, 50);
        let segs: Vec<_> = done.segs.iter().chain(&open.segs).cloned().collect();
        assert!(!ended(&segments_pcap(&segs)));
    }

    #[test]
    fn an_empty_or_unreadable_capture_has_not_ended() {
        assert!(!ended(&segments_pcap(&[])));
        assert!(!ended(b""));
        assert!(!connections_ended(Path::new("/nonexistent/reqresp.pcap")));
    }

    #[test]
    fn the_wait_gives_up_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("open.pcap");
        std::fs::write(&pcap, segments_pcap(&talk().segs)).unwrap();
        assert!(!wait_for_teardown(&pcap, Duration::from_millis(50)));
        let mut s = talk();
        s.rst(200, Side::Client);
        std::fs::write(&pcap, segments_pcap(&s.segs)).unwrap();
        assert!(wait_for_teardown(&pcap, Duration::from_secs(5)));
    }
}
