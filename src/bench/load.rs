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
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::Expect;
use super::latency::{Latencies, Recorder};
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
    let mut conn = Conn::new(plan, index, quota);
    let (mut rd, mut wr) = stream.split();
    // Fires at the earliest moment the oldest request can have timed out;
    // see `Conn::on_timer`. Never late, rarely early, so it wakes about once
    // per timeout period when all is well.
    let mut timer = pin!(tokio::time::sleep_until(Instant::now() + plan.timeout));

    loop {
        let more = conn.queue_due(Instant::now());
        if !more && conn.inflight.is_empty() && conn.written == conn.wbuf.len() {
            break;
        }
        let pacing = more && conn.inflight.len() < plan.depth;
        let step = tokio::select! {
            biased;
            result = wr.write(&conn.wbuf[conn.written..]), if conn.written < conn.wbuf.len() => {
                conn.on_write(result)
            }
            result = rd.read_buf(&mut conn.rbuf) => conn.on_read(result, more),
            () = &mut timer, if !conn.inflight.is_empty() => conn.on_timer(timer.as_mut()),
            () = notified(&pacer), if pacing && pacer.is_some() => ControlFlow::Continue(()),
        };
        if step.is_break() {
            break;
        }
    }

    if conn.stats.lost.is_some() {
        let stats = &conn.stats;
        plan.live
            .errors
            .fetch_add(stats.timeouts + stats.closed + stats.io, Ordering::Relaxed);
    } else {
        // Done: close our side; the server sees end of stream and closes.
        let _ = tokio::time::timeout(plan.timeout, wr.shutdown()).await;
    }
    if let Quota::Requests(_) = quota {
        conn.stats.unsent = conn.remaining;
    }
    conn.stats
}

/// One connection's state between the turns of [`drive`]'s loop: its two
/// buffers, the requests in flight, where it is in the schedule, and what
/// it did so far.
struct Conn<'p> {
    plan: &'p Plan,
    index: usize,
    stats: ConnStats,
    recorder: Recorder<'p>,
    /// Measured requests still to send.
    remaining: u64,
    inflight: VecDeque<InFlight>,
    /// Requests queued for the socket; `wbuf[..written]` has gone out.
    wbuf: Vec<u8>,
    written: usize,
    /// Bytes received and not yet cut into responses.
    rbuf: BytesMut,
    /// Open loop: the number of the next request in the schedule, and when it is due.
    scheduled: u64,
    next_due: Option<Instant>,
    /// Responses received so far, numbered for messages.
    response_no: u64,
}

impl<'p> Conn<'p> {
    fn new(plan: &'p Plan, index: usize, quota: Quota) -> Self {
        Conn {
            plan,
            index,
            stats: ConnStats::default(),
            recorder: plan.latencies.recorder(),
            remaining: match quota {
                Quota::Requests(n) => n,
                Quota::UntilStop => u64::MAX,
            },
            inflight: VecDeque::with_capacity(plan.depth),
            wbuf: Vec::with_capacity(plan.request_wire.len() * plan.depth),
            written: 0,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scheduled: 0,
            next_due: plan.schedule.map(|s| s.due(index, 0)),
            response_no: 0,
        }
    }

    /// Queues every request that is due and has a free slot, so they go
    /// out in one write. Returns whether more requests are to come.
    #[inline]
    fn queue_due(&mut self, now: Instant) -> bool {
        let plan = self.plan;
        let mut more = self.remaining > 0;
        while more && self.inflight.len() < plan.depth {
            let origin = match self.next_due {
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
                self.remaining -= 1;
                self.stats.sent += 1;
                self.stats.bytes_sent += plan.request_wire.len() as u64;
            }
            if let Some(schedule) = &plan.schedule {
                self.scheduled += 1;
                self.next_due = Some(schedule.due(self.index, self.scheduled));
            }
            self.wbuf.extend_from_slice(&plan.request_wire);
            self.inflight.push_back(InFlight {
                origin,
                sent: now,
                measured,
            });
            more = self.remaining > 0;
        }
        more
    }

    /// After a write of `wbuf[written..]`.
    #[inline]
    fn on_write(&mut self, result: std::io::Result<usize>) -> ControlFlow<()> {
        match result {
            Ok(n) => {
                self.written += n;
                if self.written == self.wbuf.len() {
                    self.wbuf.clear();
                    self.written = 0;
                }
                ControlFlow::Continue(())
            }
            Err(error) => {
                let lost = self.inflight.len() as u64;
                self.stats.io += lost.max(1);
                let index = self.index;
                self.stats.note_error(|| {
                    format!("connection {index}: cannot send: {}", describe(&error))
                });
                self.lose(Loss::Io)
            }
        }
    }

    /// After a read into `rbuf`; `more` says whether requests are still to come.
    #[inline]
    fn on_read(&mut self, result: std::io::Result<usize>, more: bool) -> ControlFlow<()> {
        match result {
            Ok(0) => self.on_closed(more),
            Ok(_) => self.on_received(Instant::now()),
            Err(error) => {
                self.stats.io += (self.inflight.len() as u64).max(1);
                let index = self.index;
                self.stats.note_error(|| {
                    format!("connection {index}: cannot read: {}", describe(&error))
                });
                self.lose(Loss::Io)
            }
        }
    }

    /// The server closed the connection. Requests in flight are lost; with
    /// none in flight, the next one would be.
    fn on_closed(&mut self, more: bool) -> ControlFlow<()> {
        if self.inflight.is_empty() && !more {
            return ControlFlow::Break(());
        }
        let unanswered = self.inflight.len();
        self.stats.closed += (unanswered as u64).max(1);
        let (index, partial) = (self.index, self.rbuf.len());
        self.stats.note_error(|| {
            format!(
                "connection {index}: the server closed the connection{} with {unanswered} request(s) unanswered",
                if partial > 0 {
                    format!(" in the middle of a response ({partial} bytes received)")
                } else {
                    String::new()
                },
            )
        });
        self.lose(Loss::Closed)
    }

    /// Bytes arrived at `received`: takes the responses and updates the
    /// live counters.
    #[inline]
    fn on_received(&mut self, received: Instant) -> ControlFlow<()> {
        let stats = &self.stats;
        let before = (stats.responses, stats.all_responses, stats.errors());
        let outcome = self.take_responses(received);
        let (stats, live) = (&self.stats, &self.plan.live);
        live.responses
            .fetch_add(stats.responses - before.0, Ordering::Relaxed);
        live.all_responses
            .fetch_add(stats.all_responses - before.1, Ordering::Relaxed);
        live.errors
            .fetch_add(stats.errors() - before.2, Ordering::Relaxed);
        if outcome.is_err() {
            return self.lose(Loss::Protocol);
        }
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
            self.rbuf.reserve(READ_CHUNK);
        }
        ControlFlow::Continue(())
    }

    /// The timer fired: fails the connection if the oldest request has
    /// waited the whole timeout, or moves the timer to when it will have.
    fn on_timer(&mut self, timer: Pin<&mut Sleep>) -> ControlFlow<()> {
        let Some(request) = self.inflight.front() else {
            return ControlFlow::Continue(());
        };
        let deadline = request.sent + self.plan.timeout;
        if deadline > Instant::now() {
            timer.reset(deadline);
            return ControlFlow::Continue(());
        }
        let n = self.inflight.len();
        self.stats.timeouts += n as u64;
        let (index, timeout) = (self.index, self.plan.timeout);
        self.stats.note_error(|| {
            format!(
                "connection {index}: no response within {} s ({n} request(s) unanswered) — is the server overloaded, stopped, or using another --framing?",
                timeout.as_secs_f64()
            )
        });
        self.lose(Loss::Timeout)
    }

    /// Ends the loop for `loss`.
    fn lose(&mut self, loss: Loss) -> ControlFlow<()> {
        self.stats.lost = Some(loss);
        ControlFlow::Break(())
    }

    /// Cuts every complete response out of `rbuf`, checks it against the
    /// oldest request in flight and records its latency. Fails (after
    /// noting the error) when the bytes cannot be framed or a response has
    /// no request.
    fn take_responses(&mut self, received: Instant) -> Result<(), ()> {
        let (plan, index) = (self.plan, self.index);
        loop {
            let frame = match plan.framing.decode(&self.rbuf, MAX_RESPONSE) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(error) => {
                    self.stats.protocol += (self.inflight.len() as u64).max(1);
                    self.stats.note_error(|| {
                        format!(
                            "connection {index}: bad response: {error} — is the server using --framing {}?",
                            plan.framing
                        )
                    });
                    return Err(());
                }
            };
            let payload = &self.rbuf[frame.payload.clone()];
            let Some(request) = self.inflight.pop_front() else {
                self.stats.protocol += 1;
                let got = preview(payload);
                self.stats.note_error(|| {
                    format!(
                        "connection {index}: a response came with no request in flight: {got} — is the server using --framing {}?",
                        plan.framing
                    )
                });
                return Err(());
            };
            self.response_no += 1;
            let stats = &mut self.stats;
            stats.all_responses += 1;
            if !plan.expect.accepts(payload) {
                stats.mismatches += 1;
                let n = self.response_no;
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
                self.recorder
                    .record(received.saturating_duration_since(request.origin));
            }
            self.rbuf.advance(frame.consumed);
        }
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
