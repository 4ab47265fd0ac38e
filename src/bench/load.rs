//! One connection of the load generator: sends requests on schedule, reads
//! and checks the responses, records their latency.
//!
//! Each connection is one task over one TCP socket, with two buffers that
//! live as long as it does: the requests waiting to be written (all the
//! requests due at one moment go out in one write) and the bytes received
//! (cut into responses by the shared [`Framing::decode`] codec). Reading,
//! writing and the two timers are driven from one `select!`, so a server
//! that is slow to read can never deadlock a connection that is writing.
//!
//! Two schedules:
//!
//! - closed loop: a new request as soon as a slot of the pipeline is free;
//!   latency runs from the write to the response.
//! - open loop (`--rate`): request `i` is due at `start + i × interval`
//!   whatever happens; when the pipeline is full it waits, and its latency
//!   still runs from when it was due. A server that stalls for a second
//!   thus shows a second of latency on every request that should have been
//!   sent during the stall, not just on the one that was in flight (no
//!   "coordinated omission").

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Expect;
use super::latency::Latencies;
use super::pacer::Schedule;
use crate::protocol::Framing;

/// Bytes made room for before each read.
const READ_CHUNK: usize = 16 * 1024;

/// The largest response accepted; a length prefix claiming more ends the
/// connection before anything is buffered.
pub(super) const MAX_RESPONSE: usize = 16 << 20;

/// What every connection of a run shares (read only).
#[derive(Debug)]
pub(super) struct Plan {
    pub framing: Framing,
    /// One request, framed, exactly as written to the socket.
    pub request_wire: Vec<u8>,
    pub expect: Expect,
    /// Most requests in flight per connection.
    pub depth: usize,
    /// Open loop: when each request is due.
    pub schedule: Option<Schedule>,
    pub timeout: Duration,
    /// Requests due (open loop) or sent (closed loop) from here on are measured.
    pub measure_start: Instant,
    /// No request is due or sent from here on.
    pub stop_at: Instant,
    /// Live counters for progress display.
    pub live: Arc<Live>,
    pub latencies: Latencies,
}

/// Counters updated while the run goes, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Measured responses received (warmup not included).
    pub responses: AtomicU64,
    /// All responses received, warmup included.
    pub all_responses: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
}

/// How one connection's share of the work is bounded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Quota {
    /// This many measured requests (warmup requests come on top).
    Requests(u64),
    /// Until [`Plan::stop_at`].
    UntilStop,
}

/// Why a connection stopped before its work was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loss {
    /// No response within the timeout.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The socket failed (reset, ...).
    Io,
    /// A response could not be framed, or came with no request.
    Protocol,
}

/// What one connection did.
#[derive(Debug, Default, Clone)]
pub(super) struct ConnStats {
    /// Measured requests sent.
    pub sent: u64,
    /// Measured responses received (good or not).
    pub responses: u64,
    /// All responses received, warmup included.
    pub all_responses: u64,
    /// Measured requests the quota asked for and that were never sent.
    pub unsent: u64,
    pub mismatches: u64,
    pub timeouts: u64,
    pub closed: u64,
    pub io: u64,
    pub protocol: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// When the last measured response arrived.
    pub last_response: Option<Instant>,
    /// The first error, with when it happened.
    pub first_error: Option<(Instant, String)>,
    /// Why the connection ended early, if it did.
    pub lost: Option<Loss>,
}

impl ConnStats {
    pub fn errors(&self) -> u64 {
        self.mismatches + self.timeouts + self.closed + self.io + self.protocol
    }

    fn note_error(&mut self, message: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some((Instant::now(), message()));
        }
    }
}

/// A request in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Where its latency is measured from: when it was sent (closed loop) or
    /// due (open loop).
    origin: Instant,
    /// When it was written; the timeout runs from here.
    sent: Instant,
    measured: bool,
}

/// Drives one connection until its quota is done or it fails.
/// `index` numbers the connection in the schedule and in messages; in open
/// loop, `pacer` is notified when a request of this connection is due.
pub(super) async fn drive(
    mut stream: TcpStream,
    index: usize,
    plan: &Plan,
    quota: Quota,
    pacer: Option<Arc<Notify>>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let mut recorder = plan.latencies.recorder();
    let (mut rd, mut wr) = stream.split();
    let wire_len = plan.request_wire.len() as u64;
    let mut remaining = match quota {
        Quota::Requests(n) => n,
        Quota::UntilStop => u64::MAX,
    };
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(plan.depth);
    let mut wbuf: Vec<u8> = Vec::with_capacity(plan.request_wire.len() * plan.depth);
    let mut written = 0;
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    // Open loop: the number of the next request in the schedule, and when it is due.
    let mut scheduled: u64 = 0;
    let mut next_due = plan.schedule.map(|s| s.due(index, 0));
    let mut response_no: u64 = 0;
    // Fires at the earliest moment the oldest request can have timed out;
    // see `on_timer`. Never late, rarely early, so it wakes about once per
    // timeout period when all is well.
    let mut timer = pin!(tokio::time::sleep_until(Instant::now() + plan.timeout));

    loop {
        // Queue every request that is due and has a free slot: one write.
        let now = Instant::now();
        let mut more = remaining > 0;
        while more && inflight.len() < plan.depth {
            let origin = match next_due {
                None if now < plan.stop_at => now,
                Some(due) if due < plan.stop_at && due <= now => due,
                Some(due) if due < plan.stop_at => break,
                _ => {
                    more = false;
                    break;
                }
            };
            let measured = origin >= plan.measure_start;
            if measured {
                remaining -= 1;
                stats.sent += 1;
                stats.bytes_sent += wire_len;
            }
            if let Some(schedule) = &plan.schedule {
                scheduled += 1;
                next_due = Some(schedule.due(index, scheduled));
            }
            wbuf.extend_from_slice(&plan.request_wire);
            inflight.push_back(InFlight {
                origin,
                sent: now,
                measured,
            });
            more = remaining > 0;
        }
        if !more && inflight.is_empty() && written == wbuf.len() {
            break;
        }
        let pacing = more && inflight.len() < plan.depth;

        tokio::select! {
            biased;
            result = wr.write(&wbuf[written..]), if written < wbuf.len() => match result {
                Ok(n) => {
                    written += n;
                    if written == wbuf.len() {
                        wbuf.clear();
                        written = 0;
                    }
                }
                Err(error) => {
                    let lost = inflight.len() as u64;
                    stats.io += lost.max(1);
                    stats.note_error(|| format!("connection {index}: cannot send: {}", describe(&error)));
                    stats.lost = Some(Loss::Io);
                    break;
                }
            },
            result = rd.read_buf(&mut rbuf) => {
                match result {
                    Ok(0) => {
                        // Closed by the server. Requests in flight are lost;
                        // with none in flight, the next one would be.
                        if !inflight.is_empty() || more {
                            stats.closed += (inflight.len() as u64).max(1);
                            let partial = rbuf.len();
                            stats.note_error(|| format!(
                                "connection {index}: the server closed the connection{} with {} request(s) unanswered",
                                if partial > 0 { format!(" in the middle of a response ({partial} bytes received)") } else { String::new() },
                                inflight.len(),
                            ));
                            stats.lost = Some(Loss::Closed);
                        }
                        break;
                    }
                    Ok(_) => {
                        let received = Instant::now();
                        let before = (stats.responses, stats.all_responses, stats.errors());
                        let outcome = take_responses(
                            plan, index, &mut rbuf, &mut inflight, &mut stats,
                            &mut recorder, &mut response_no, received,
                        );
                        plan.live.responses.fetch_add(stats.responses - before.0, Ordering::Relaxed);
                        plan.live.all_responses.fetch_add(stats.all_responses - before.1, Ordering::Relaxed);
                        plan.live.errors.fetch_add(stats.errors() - before.2, Ordering::Relaxed);
                        if outcome.is_err() {
                            stats.lost = Some(Loss::Protocol);
                            break;
                        }
                        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
                            rbuf.reserve(READ_CHUNK);
                        }
                    }
                    Err(error) => {
                        stats.io += (inflight.len() as u64).max(1);
                        stats.note_error(|| format!("connection {index}: cannot read: {}", describe(&error)));
                        stats.lost = Some(Loss::Io);
                        break;
                    }
                }
            }
            () = &mut timer, if !inflight.is_empty() => {
                let oldest = inflight.front().map(|r| r.sent + plan.timeout);
                match oldest {
                    Some(deadline) if deadline <= Instant::now() => {
                        stats.timeouts += inflight.len() as u64;
                        let timeout = plan.timeout;
                        let n = inflight.len();
                        stats.note_error(|| format!(
                            "connection {index}: no response within {} s ({n} request(s) unanswered) — is the server overloaded, stopped, or using another --framing?",
                            timeout.as_secs_f64()
                        ));
                        stats.lost = Some(Loss::Timeout);
                        break;
                    }
                    Some(deadline) => timer.as_mut().reset(deadline),
                    None => {}
                }
            }
            () = notified(&pacer), if pacing && pacer.is_some() => {}
        }
    }

    if stats.lost.is_some() {
        plan.live
            .errors
            .fetch_add(stats.timeouts + stats.closed + stats.io, Ordering::Relaxed);
    } else {
        // Done: close our side; the server sees end of stream and closes.
        let _ = tokio::time::timeout(plan.timeout, wr.shutdown()).await;
    }
    if let Quota::Requests(_) = quota {
        stats.unsent = remaining;
    }
    stats
}

/// Cuts every complete response out of `rbuf`, checks it against the
/// oldest request in flight and records its latency. Fails (after noting
/// the error) when the bytes cannot be framed or a response has no request.
#[allow(clippy::too_many_arguments)]
fn take_responses(
    plan: &Plan,
    index: usize,
    rbuf: &mut BytesMut,
    inflight: &mut VecDeque<InFlight>,
    stats: &mut ConnStats,
    recorder: &mut super::latency::Recorder<'_>,
    response_no: &mut u64,
    received: Instant,
) -> Result<(), ()> {
    loop {
        let frame = match plan.framing.decode(rbuf, MAX_RESPONSE) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(error) => {
                stats.protocol += (inflight.len() as u64).max(1);
                stats.note_error(|| {
                    format!(
                        "connection {index}: bad response: {error} — is the server using --framing {}?",
                        plan.framing
                    )
                });
                return Err(());
            }
        };
        let Some(request) = inflight.pop_front() else {
            stats.protocol += 1;
            let got = preview(&rbuf[frame.payload.clone()]);
            stats.note_error(|| {
                format!(
                    "connection {index}: a response came with no request in flight: {got} — is the server using --framing {}?",
                    plan.framing
                )
            });
            return Err(());
        };
        *response_no += 1;
        stats.all_responses += 1;
        let payload = &rbuf[frame.payload.clone()];
        if !plan.expect.accepts(payload) {
            stats.mismatches += 1;
            let n = *response_no;
            stats.note_error(|| {
                format!(
                    "connection {index}, response {n}: expected {}, got {}",
                    plan.expect.describe(),
                    preview(payload)
                )
            });
        }
        if request.measured {
            stats.responses += 1;
            stats.bytes_received += frame.consumed as u64;
            stats.last_response = Some(received);
            recorder.record(received.saturating_duration_since(request.origin));
        }
        rbuf.advance(frame.consumed);
    }
}

/// Waits for the pacer's wake-up (never called without one).
async fn notified(pacer: &Option<Arc<Notify>>) {
    if let Some(notify) = pacer {
        notify.notified().await;
    }
}

/// The first bytes of a message, quoted and escaped, for an error message.
pub(super) fn preview(bytes: &[u8]) -> String {
    const SHOWN: usize = 48;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]);
    let more = if bytes.len() > SHOWN {
        format!("… ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!("\"{}\"{more}", text.escape_debug())
}

/// An I/O error in a user's words: `connection reset by the server` rather
/// than `Connection reset by peer (os error 104)`.
pub(super) fn describe(error: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by the server".into(),
        ConnectionAborted => "connection aborted".into(),
        BrokenPipe => "the server closed the connection".into(),
        TimedOut => "timed out".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "address not available (out of local ports?)".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_escapes_and_truncates() {
        assert_eq!(preview(b"Echo: hi\r"), "\"Echo: hi\\r\"");
        let long = vec![b'a'; 100];
        assert_eq!(
            preview(&long),
            format!("\"{}\"… (100 bytes)", "a".repeat(48))
        );
    }
}
