//! One connection, from accept to close: read, answer every buffered request,
//! flush once, repeat; then close without losing a response.
//!
//! **Timers.** A connection waits under one deadline, computed from where it
//! stands rather than re-armed per read:
//!
//! - before its first byte: `--first-byte-timeout` from the accept;
//! - between requests: `--idle-timeout` from the last byte received;
//! - inside a request: `--request-timeout` from the request's first byte
//!   (or the idle timeout from the last byte, if sooner), so a client that
//!   trickles a request byte by byte cannot hold the connection longer.
//!
//! The connection keeps one pinned timer and moves it only when the deadline
//! comes *earlier*; a later deadline is found when the timer fires early and
//! the state is looked at again. Steady traffic therefore costs a clock read
//! per read, not a timer per read.
//!
//! **Stop.** A connection is told to stop through its registry entry: either
//! its slot was reclaimed for a new client (it was waiting without progress
//! longest), or the server is draining. Draining, it takes no new request,
//! delivers every answer already made, closes its sending side, and reads
//! and discards what the client still sends until the client closes, so
//! that no reset destroys answers in flight; all within the drain deadline.
//! Past it, the answers it could not deliver are counted for the log.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::futures::Notified;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, info, warn};

use crate::protocol::connection::{Batch, Connection, ConnectionError, Fill};
use crate::protocol::{FrameError, Framing};

use super::config::Config;
use super::deferred;
use super::os::SocketQueues;
use super::registry::{Entry, Registry, Ticket};
use super::service::Service;

/// Responses are flushed once this many bytes are waiting, even if more
/// requests are buffered: it bounds the write buffer.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// How long a closing connection waits for the peer to close its side.
/// Closing a TCP socket with unread bytes makes the kernel send a reset,
/// which can destroy the last responses still in flight; waiting briefly
/// while discarding what the peer sends avoids that.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// While closing, how often the socket is asked whether the client has
/// acknowledged everything sent (no event reports it).
const ACK_POLL: Duration = Duration::from_millis(5);

/// With line framing, how long part of a line may wait for its newline
/// before the log says why no answer comes: the original lab's Python
/// client sends bare messages and would otherwise hang without a clue.
const PARTIAL_LINE_HINT: Duration = Duration::from_secs(2);

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Close {
    /// The client closed its side between requests.
    PeerClosed,
    /// The client closed its side in the middle of a request.
    PeerClosedMidRequest { buffered: usize },
    /// The server is shutting down; every answer made was written.
    Shutdown,
    /// The server is shutting down and the drain deadline passed before
    /// this many answers already made could be written.
    DrainCut { unsent: u64 },
    /// A new connection sent nothing within the first-byte timeout.
    FirstByte(Duration),
    /// Nothing was received for the idle timeout.
    Idle(Duration),
    /// A request did not arrive whole within the request timeout.
    RequestTimeout { timeout: Duration, buffered: usize },
    /// The slot was given to a new client: this connection was waiting
    /// without progress the longest while every slot was taken.
    Reclaimed,
    /// A response could not be sent within the idle timeout (the client does not read).
    WriteStalled(Duration),
    /// A request over the size limit (or otherwise unframeable): answered
    /// with an error, then closed.
    BadRequest(FrameError),
    /// The socket failed (for example reset by the client).
    Io(io::Error),
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::PeerClosed => write!(f, "client closed"),
            Close::PeerClosedMidRequest { buffered } => write!(
                f,
                "client closed in the middle of a request ({buffered} bytes of it received, dropped)"
            ),
            Close::Shutdown => write!(f, "server shutting down"),
            Close::DrainCut { unsent } => write!(
                f,
                "server shutting down: drain timeout passed with {unsent} answers not yet sent (the client did not read them)"
            ),
            Close::FirstByte(t) => write!(
                f,
                "nothing received for {} s after connecting (--first-byte-timeout)",
                t.as_secs_f64()
            ),
            Close::Idle(t) => write!(f, "idle for {} s", t.as_secs_f64()),
            Close::RequestTimeout { timeout, buffered } => write!(
                f,
                "request not complete within {} s of its first byte (--request-timeout; {buffered} bytes of it received)",
                timeout.as_secs_f64()
            ),
            Close::Reclaimed => write!(
                f,
                "slot reclaimed for a new client: every slot was taken and this connection had waited longest without a request"
            ),
            Close::WriteStalled(t) => write!(
                f,
                "client did not read its responses for {} s",
                t.as_secs_f64()
            ),
            Close::BadRequest(e) => write!(f, "bad request: {e}"),
            Close::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The error line sent before closing a connection whose request was bad.
fn error_message(err: &FrameError) -> String {
    match err {
        FrameError::TooLarge { limit, .. } => {
            format!("error: request larger than the server's limit of {limit} bytes; closing")
        }
        FrameError::NewlineInLine => "error: bad request; closing".to_owned(),
    }
}

/// The connection's stop signal, remembered once seen.
struct Stop<'p, 'e> {
    notified: Pin<&'p mut Notified<'e>>,
    seen: bool,
}

impl Stop<'_, '_> {
    /// Completes when the connection is told to stop. Cancel safe.
    async fn wait(&mut self) {
        self.notified.as_mut().await;
        self.seen = true;
    }
}

/// Serves one connection until it ends, logging its opening and closing.
/// The slot is given back as soon as the exchange ends, before the close
/// waits for the client. Returns the number of requests answered.
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    config: &Config,
    mut ticket: Ticket,
) -> u64
where
    S: AsyncRead + AsyncWrite + SocketQueues + Unpin,
{
    let started = Instant::now();
    info!(%peer, "connection opened");
    let mut conn = Connection::with_raw_read_size(
        stream,
        config.framing,
        config.max_request,
        config.raw_read_size,
    );
    let mut requests = 0u64;
    let close = {
        let entry = ticket.entry();
        let notified = entry.stop.notified();
        tokio::pin!(notified);
        let mut stop = Stop {
            notified,
            seen: false,
        };
        let registry = ticket.registry();
        exchange(
            &mut conn,
            peer,
            config,
            registry,
            entry,
            &mut stop,
            &mut requests,
        )
        .await
    };
    ticket.release_slot();
    let unacked = finish(&mut conn, &close, ticket.registry()).await;
    // Whole microseconds, so the log says `8145.292`, not `8145.292034000001`.
    let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
    match &close {
        Close::DrainCut { .. } => {
            warn!(%peer, requests, duration_ms, unacked_bytes = unacked, reason = %close, "connection closed")
        }
        Close::BadRequest(_) | Close::PeerClosedMidRequest { .. } | Close::WriteStalled(_) => {
            warn!(%peer, requests, duration_ms, reason = %close, "connection closed")
        }
        _ if unacked > 0 => warn!(
            %peer, requests, duration_ms, unacked_bytes = unacked, reason = %close,
            "connection closed at the drain deadline with answers not yet acknowledged by the client"
        ),
        _ => info!(%peer, requests, duration_ms, reason = %close, "connection closed"),
    }
    requests
}

/// What a waiting connection is waiting for, and until when.
#[derive(Debug, Clone, Copy)]
struct Wait {
    deadline: Instant,
    kind: WaitKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    FirstByte,
    Idle,
    Request,
}

/// Where a connection stands between reads.
#[derive(Debug, Clone, Copy)]
struct Progress {
    accepted: Instant,
    /// Last bytes received.
    last_read: Instant,
    /// Last request answered (or the accept): ranks reclaim candidates.
    answered: Instant,
    /// First byte of the request being received (when bytes are buffered).
    request_start: Instant,
    heard: bool,
}

impl Progress {
    fn new(now: Instant) -> Self {
        Progress {
            accepted: now,
            last_read: now,
            answered: now,
            request_start: now,
            heard: false,
        }
    }

    /// Bytes arrived at `now`; `buffered` were waiting before them.
    fn received(&mut self, buffered: usize, now: Instant) {
        if buffered == 0 {
            self.request_start = now;
        }
        self.last_read = now;
        self.heard = true;
    }

    fn wait(&self, config: &Config, buffered: usize) -> Wait {
        let idle = Wait {
            deadline: self.last_read + config.idle_timeout,
            kind: WaitKind::Idle,
        };
        if buffered > 0 {
            let request = self.request_start + config.request_timeout;
            if request <= idle.deadline {
                return Wait {
                    deadline: request,
                    kind: WaitKind::Request,
                };
            }
            idle
        } else if !self.heard {
            Wait {
                deadline: self.accepted + config.first_byte_timeout.min(config.idle_timeout),
                kind: WaitKind::FirstByte,
            }
        } else {
            idle
        }
    }
}

/// The request/response loop. Returns why it ended; responses owed are
/// flushed before it returns, except when the socket itself failed or the
/// drain deadline passed.
async fn exchange<S>(
    conn: &mut Connection<S>,
    peer: SocketAddr,
    config: &Config,
    registry: &Registry,
    entry: &Entry,
    stop: &mut Stop<'_, '_>,
    requests: &mut u64,
) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let service = &*config.service;
    let mut at = Progress::new(Instant::now());
    let mut hinted = false;
    let timer = tokio::time::sleep_until(at.wait(config, 0).deadline);
    tokio::pin!(timer);
    loop {
        // The flags are set before the stop signal is sent, so reading them
        // here sees a stop even when the select below never polls it (the
        // read wins first while data keeps coming).
        if stop.seen || entry.reclaimed() || registry.draining() {
            return stopped(registry, entry);
        }
        let buffered = conn.buffered();
        let wait = at.wait(config, buffered);
        let hint_at = (!hinted && buffered > 0 && config.framing == Framing::Line)
            .then(|| at.request_start + PARTIAL_LINE_HINT);
        let wake = hint_at.map_or(wait.deadline, |hint| hint.min(wait.deadline));
        // Moved only to an earlier deadline: a later one is picked up when
        // the timer fires early.
        if timer.is_elapsed() || wake < timer.deadline() {
            timer.as_mut().reset(wake);
        }
        entry.set_waiting(registry, at.answered);
        // The read first: when it is ready on a wake-up (the usual case),
        // neither the stop signal nor the timer is polled, which saves a
        // lock and a clock read per request. Both stay armed: the stop is
        // checked through its flags at the top of the loop, the deadline
        // right after the read.
        let filled = tokio::select! {
            biased;
            filled = conn.fill() => filled,
            _ = stop.wait(), if !stop.seen => return stopped(registry, entry),
            _ = &mut timer => {
                let now = Instant::now();
                if now >= wait.deadline {
                    entry.set_busy();
                    return timed_out(conn, config, wait.kind, buffered);
                }
                if hint_at.is_some_and(|hint| now >= hint) {
                    hinted = true;
                    hint_partial_line(peer, buffered);
                }
                continue;
            }
        };
        entry.set_busy();
        let now = Instant::now();
        if now >= wait.deadline {
            // The deadline passed while the read kept winning the select.
            return timed_out(conn, config, wait.kind, buffered);
        }
        match filled {
            Ok(Fill::Eof) => return Close::PeerClosed,
            Ok(Fill::Data(_)) => at.received(buffered, now),
            Err(error) => return read_failed(conn, error),
        }
        let before = *requests;
        loop {
            let before_batch = *requests;
            let batch = if service.defers() {
                deferred::answer_round(conn, service, peer, requests).await
            } else {
                answer_now(conn, service, peer, requests)
            };
            let (answered, more) = match batch_outcome(conn, peer, batch) {
                Ok(outcome) => outcome,
                Err(close) => return close,
            };
            // `--delay`: a slow server, one delay per answer in this batch.
            let delayed = u32::try_from(*requests - before_batch).unwrap_or(u32::MAX);
            if !config.delay.is_zero() && delayed > 0 {
                tokio::time::sleep(config.delay.saturating_mul(delayed)).await;
            }
            if !more {
                // Ranked as waiting before the write, not after it: a client
                // that has its answer (and opens another connection) must
                // never find this one still counted busy, whatever the
                // scheduler does between the write and the next read.
                let since = if *requests > before { now } else { at.answered };
                entry.set_waiting(registry, since);
            }
            if let Err(close) = flush(conn, config, registry, entry, stop, now, answered).await {
                return close;
            }
            // Draining: requests read but not yet answered stay unanswered
            // (never processed); the client sees them unanswered at the close.
            if !more || registry.draining() {
                break;
            }
        }
        if *requests > before {
            at.answered = now;
            // What is left is the start of a request that arrived in this read.
            at.request_start = now;
        }
    }
}

/// Logs why part of a line gets no answer (line framing only).
fn hint_partial_line(peer: SocketAddr, buffered: usize) {
    warn!(
        %peer,
        bytes = buffered,
        "no newline after {buffered} bytes for {} s: line framing answers complete lines only; \
         a client that sends bare messages (like the original lab's Python client) \
         needs `reqresp server --framing raw`",
        PARTIAL_LINE_HINT.as_secs()
    );
}

/// The close for a read that failed.
fn read_failed<S>(conn: &mut Connection<S>, error: ConnectionError) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match error {
        ConnectionError::ClosedMidMessage { buffered } => Close::PeerClosedMidRequest { buffered },
        ConnectionError::Io(e) => Close::Io(e),
        ConnectionError::Frame(e) => refuse(conn, e),
    }
}

/// How many answers a batch queued and whether more requests are
/// buffered, or the close for a request the connection cannot answer.
fn batch_outcome<S>(
    conn: &mut Connection<S>,
    peer: SocketAddr,
    batch: Result<Batch, FrameError>,
) -> Result<(usize, bool), Close>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match batch {
        Ok(batch) => Ok((batch.answered, batch.more)),
        Err(FrameError::NewlineInLine) => {
            // The service produced a response line framing cannot
            // carry; the client still gets one answer per request.
            warn!(%peer, "response contains a newline; sent an error line instead");
            let _ = conn.queue(b"error: the response cannot be sent as one line");
            Ok((1, true))
        }
        Err(e) => Err(refuse(conn, e)),
    }
}

/// Answers every request buffered on `conn` with [`Service::respond`], up
/// to [`WRITE_HIGH_WATER`] bytes of answers.
fn answer_now<S>(
    conn: &mut Connection<S>,
    service: &dyn Service,
    peer: SocketAddr,
    requests: &mut u64,
) -> Result<Batch, FrameError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    conn.answer_buffered(WRITE_HIGH_WATER, |request, out| {
        let before = out.len();
        service.respond(request, out);
        *requests += 1;
        debug!(
            %peer,
            bytes = request.len(),
            request = %request[..request.len().min(80)].escape_ascii(),
            response_bytes = out.len() - before,
            "request"
        );
    })
}

/// Why the connection was told to stop.
fn stopped(registry: &Registry, entry: &Entry) -> Close {
    entry.set_busy();
    if entry.reclaimed() || !registry.draining() {
        Close::Reclaimed
    } else {
        Close::Shutdown
    }
}

/// The close for an expired wait; a request cut short gets an error line.
fn timed_out<S>(conn: &mut Connection<S>, config: &Config, kind: WaitKind, buffered: usize) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match kind {
        WaitKind::FirstByte => Close::FirstByte(config.first_byte_timeout.min(config.idle_timeout)),
        WaitKind::Idle if buffered == 0 => Close::Idle(config.idle_timeout),
        WaitKind::Idle | WaitKind::Request => {
            let timeout = match kind {
                WaitKind::Request => config.request_timeout,
                _ => config.idle_timeout,
            };
            let _ = conn.queue(
                format!(
                    "error: request not complete within {} s; closing",
                    timeout.as_secs_f64()
                )
                .as_bytes(),
            );
            Close::RequestTimeout { timeout, buffered }
        }
    }
}

/// Sends the answers of one batch, bounded by the idle timeout and, once
/// the server drains, by the drain deadline.
async fn flush<S>(
    conn: &mut Connection<S>,
    config: &Config,
    registry: &Registry,
    entry: &Entry,
    stop: &mut Stop<'_, '_>,
    now: Instant,
    answers: usize,
) -> Result<(), Close>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deadline = now + config.idle_timeout;
    if let Some(drain) = registry.drain_deadline() {
        deadline = deadline.min(drain);
    }
    // One future for the whole write: a write cut short and restarted
    // would send its first bytes twice.
    let flush = conn.flush();
    tokio::pin!(flush);
    // Most answers fit in the socket's send buffer at once: then no timer is
    // made. Polling here registers this task's waker, as the select would.
    if let Poll::Ready(result) =
        std::future::poll_fn(|cx| Poll::Ready(flush.as_mut().poll(cx))).await
    {
        return result.map_err(Close::Io);
    }
    // A connection whose client does not read is busy, never reclaimed.
    entry.set_busy();
    loop {
        tokio::select! {
            biased;
            result = &mut flush => return result.map_err(Close::Io),
            _ = stop.wait(), if !stop.seen => {
                if let Some(drain) = registry.drain_deadline() {
                    deadline = deadline.min(drain);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(if registry.draining() {
                    Close::DrainCut { unsent: answers as u64 }
                } else {
                    Close::WriteStalled(config.idle_timeout)
                });
            }
        }
    }
}

/// Closes the connection without a reset destroying what it owes, within
/// the linger time (or the drain deadline when shutting down). Returns the
/// bytes of answers the client had not acknowledged when time ran out.
async fn finish<S>(conn: &mut Connection<S>, close: &Close, registry: &Registry) -> u64
where
    S: AsyncRead + AsyncWrite + SocketQueues + Unpin,
{
    let deadline = match close {
        // Nothing more can be delivered.
        Close::Io(_) | Close::WriteStalled(_) => return 0,
        Close::DrainCut { unsent } => {
            let unacked = conn.get_ref().unsent_bytes() as u64;
            registry.record_dropped(*unsent, unacked);
            discard_ready(conn).await;
            return unacked;
        }
        Close::Shutdown => registry
            .drain_deadline()
            .unwrap_or_else(|| Instant::now() + LINGER),
        _ => {
            let linger = Instant::now() + LINGER;
            registry.drain_deadline().map_or(linger, |d| d.min(linger))
        }
    };
    // Send what is queued (an error line), then FIN, then read and discard
    // until the client's FIN, or until the client's kernel has acknowledged
    // every byte sent, so that no reset can destroy those bytes.
    let graceful = timeout_at(deadline, async {
        conn.shutdown().await?;
        loop {
            if conn.get_ref().unsent_bytes() == 0 {
                discard_ready(conn).await;
                return Ok::<_, io::Error>(());
            }
            tokio::select! {
                done = conn.discard_until_eof(usize::MAX) => return done.map(drop),
                _ = tokio::time::sleep(ACK_POLL) => {}
            }
        }
    })
    .await;
    if graceful.is_ok() {
        return 0;
    }
    let unacked = match close {
        Close::Shutdown => conn.get_ref().unsent_bytes() as u64,
        _ => 0,
    };
    if unacked > 0 {
        registry.record_dropped(0, unacked);
    }
    discard_ready(conn).await;
    unacked
}

/// Reads and discards what has already arrived, without waiting: a socket
/// closed with unread bytes sends a reset instead of a FIN.
async fn discard_ready<S>(conn: &mut Connection<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A zero timeout polls the read until it would wait, then gives up.
    let _ = timeout(Duration::ZERO, conn.discard_until_eof(usize::MAX)).await;
}

/// Queues the error response for a bad request; the caller closes.
fn refuse<S>(conn: &mut Connection<S>, err: FrameError) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = conn.queue(error_message(&err).as_bytes());
    Close::BadRequest(err)
}

#[cfg(test)]
mod tests;
