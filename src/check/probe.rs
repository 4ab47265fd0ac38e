//! A client connection that records everything it does into a
//! [`ConnTrace`]: each write, what each read returned, waits that ended in
//! a timeout, FIN and RST. Every wait is bounded by the case's timeout.
//!
//! The trace goes to the case's shared collector when the probe is
//! dropped, so even a case cut short by its time bound keeps its evidence.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::trace::{ConnTrace, EventKind, PREVIEW_CHARS, preview};
use crate::protocol::Framing;
use crate::protocol::framing::FrameError;

/// The largest answer a probe accepts: far above any case's expected
/// answer, and a bound on what an untrusted server can make it buffer.
pub(crate) const MAX_ANSWER: usize = 1 << 20;

/// Bytes read per `read()` call.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes of everything received that a probe keeps for diagnoses.
const KEEP_RECEIVED: usize = 256 * 1024;

/// Where the traces of one case are collected.
pub(crate) type Collector = Arc<Mutex<Vec<ConnTrace>>>;

/// What a probe needs from its case.
#[derive(Clone)]
pub(crate) struct Link {
    /// The server.
    pub addr: SocketAddr,
    /// The framing both sides use.
    pub framing: Framing,
    /// Bound on each connect, write and wait for an answer.
    pub timeout: Duration,
    /// The case's start; event times count from it.
    pub start: Instant,
    /// Where finished traces go.
    pub collector: Collector,
}

/// Why an operation on a probe failed, in words for a reason line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection could not be made.
    Connect(String),
    /// Nothing (or not enough) arrived in time.
    Timeout {
        /// What was awaited.
        what: String,
        /// Bytes of it that did arrive.
        partial: usize,
    },
    /// The server closed (FIN) before the answer was complete.
    Closed {
        /// What was awaited.
        what: String,
        /// Bytes of it that did arrive.
        partial: usize,
    },
    /// The server reset the connection.
    Reset,
    /// The answer cannot be a message in this framing.
    Invalid(String),
    /// Any other socket error.
    Io(String),
}

impl Failure {
    /// The failure as words, with `timeout` for the waits.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        let secs = super::cases::secs(timeout);
        match self {
            Failure::Connect(reason) => format!("could not connect: {reason}"),
            Failure::Timeout { what, partial: 0 } => format!("no {what} within {secs}"),
            Failure::Timeout { what, partial } => {
                format!("{what} incomplete after {secs} ({partial} bytes of it arrived)")
            }
            Failure::Closed { what, partial: 0 } => {
                format!("the server closed the connection (FIN) with no {what}")
            }
            Failure::Closed { what, partial } => format!(
                "the server closed the connection (FIN) after {partial} bytes of the {what}"
            ),
            Failure::Reset => "the server reset the connection (RST)".into(),
            Failure::Invalid(why) => why.clone(),
            Failure::Io(why) => why.clone(),
        }
    }
}

/// What the client saw after shutting down its writing side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseSeen {
    /// A read returned 0: FIN.
    Fin,
    /// Connection reset: RST.
    Reset,
    /// More bytes arrived instead.
    Data(usize),
    /// Nothing within the timeout.
    Timeout,
    /// Another error.
    Error(String),
}

/// A traced connection to the server.
pub(crate) struct Probe {
    stream: TcpStream,
    link: Link,
    buf: Vec<u8>,
    received: Vec<u8>,
    trace: ConnTrace,
    /// True once the client closed or aborted on purpose.
    ended: bool,
}

impl Probe {
    /// Connects to the server within the timeout; the failure is traced too.
    pub(crate) async fn connect(link: &Link, label: impl Into<String>) -> Result<Probe, Failure> {
        let mut trace = ConnTrace::new(label);
        let result = tokio::time::timeout(link.timeout, TcpStream::connect(link.addr)).await;
        let at = link.start.elapsed();
        let failure = match result {
            Ok(Ok(stream)) => {
                // Small writes go out at once: `split` relies on it.
                let _ = stream.set_nodelay(true);
                trace.local_port = stream.local_addr().ok().map(|a| a.port());
                trace.push(at, EventKind::Connected);
                return Ok(Probe {
                    stream,
                    link: link.clone(),
                    buf: Vec::new(),
                    received: Vec::new(),
                    trace,
                    ended: false,
                });
            }
            Ok(Err(err)) => describe_io(&err),
            Err(_) => format!(
                "no answer to the connection request within {}",
                super::cases::secs(link.timeout)
            ),
        };
        trace.failed = true;
        trace.push(
            at,
            EventKind::ConnectFailed {
                reason: failure.clone(),
            },
        );
        push_trace(&link.collector, trace);
        Err(Failure::Connect(failure))
    }

    fn now(&self) -> Duration {
        self.link.start.elapsed()
    }

    /// Marks this connection as the one that went wrong, for the evidence.
    pub(crate) fn mark_failed(&mut self) {
        self.trace.failed = true;
    }

    /// Everything received so far (the first 256 KiB), whether or not it
    /// was taken as an answer yet.
    pub(crate) fn received(&self) -> &[u8] {
        &self.received
    }

    /// Writes `bytes` in one write call, within the timeout.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let result = tokio::time::timeout(self.link.timeout, self.stream.write_all(bytes)).await;
        let at = self.now();
        match result {
            Ok(Ok(())) => {
                self.trace.push(
                    at,
                    EventKind::Sent {
                        bytes: bytes.len(),
                        text: preview(bytes, PREVIEW_CHARS),
                    },
                );
                Ok(())
            }
            Ok(Err(err)) => Err(self.io_failure(at, &err)),
            Err(_) => Err(self.timeout_failure(
                at,
                format!(
                    "room to write {} bytes (the server does not read)",
                    bytes.len()
                ),
                Failure::Timeout {
                    what: "room to write (the server stopped reading)".into(),
                    partial: 0,
                },
            )),
        }
    }

    /// Encodes `payload` as one message and writes it.
    pub(crate) async fn send_message(&mut self, payload: &[u8]) -> Result<(), Failure> {
        let wire = self.wire(payload)?;
        self.send(&wire).await
    }

    /// The bytes of `payload` as one message in this framing.
    pub(crate) fn wire(&self, payload: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut wire = Vec::new();
        self.link
            .framing
            .encode(payload, &mut wire)
            .map_err(|e| Failure::Invalid(e.to_string()))?;
        Ok(wire)
    }

    /// Reads one framed answer (line or length framing). With raw framing,
    /// use [`Probe::receive_until`].
    pub(crate) async fn receive(&mut self, what: &str) -> Result<Vec<u8>, Failure> {
        let deadline = Instant::now() + self.link.timeout;
        loop {
            match self.link.framing.decode(&self.buf, MAX_ANSWER) {
                Ok(Some(frame)) => {
                    let payload = self.buf[frame.payload].to_vec();
                    self.buf.drain(..frame.consumed);
                    return Ok(payload);
                }
                Ok(None) => {}
                Err(err) => {
                    self.trace.failed = true;
                    let why = match err {
                        FrameError::TooLarge { .. } => format!(
                            "the answer grew past the check's limit of {MAX_ANSWER} bytes without ending ({} framing)",
                            self.link.framing
                        ),
                        other => format!(
                            "the answer cannot be read in {} framing: {other}",
                            self.link.framing
                        ),
                    };
                    return Err(Failure::Invalid(why));
                }
            }
            self.read_more(deadline, what).await?;
        }
    }

    /// Reads until `complete` accepts everything received since the last
    /// call, and returns it (raw framing: an answer has no end marker).
    pub(crate) async fn receive_until(
        &mut self,
        what: &str,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, Failure> {
        let deadline = Instant::now() + self.link.timeout;
        loop {
            if !self.buf.is_empty() && complete(&self.buf) {
                return Ok(std::mem::take(&mut self.buf));
            }
            if self.buf.len() > MAX_ANSWER {
                self.trace.failed = true;
                return Err(Failure::Invalid(format!(
                    "more than {MAX_ANSWER} bytes arrived and they are still not the expected {what}"
                )));
            }
            self.read_more(deadline, what).await?;
        }
    }

    /// The bytes received but not yet taken as an answer.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// One read into the buffer, traced, bounded by `deadline`.
    async fn read_more(&mut self, deadline: Instant, what: &str) -> Result<(), Failure> {
        let mut chunk = vec![0u8; READ_CHUNK];
        let result = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
        let at = self.now();
        match result {
            Ok(Ok(0)) => {
                self.trace.push(at, EventKind::Fin);
                self.trace.failed = true;
                Err(Failure::Closed {
                    what: what.into(),
                    partial: self.buf.len(),
                })
            }
            Ok(Ok(n)) => {
                let data = &chunk[..n];
                self.trace.push(
                    at,
                    EventKind::Received {
                        bytes: n,
                        text: preview(data, PREVIEW_CHARS),
                    },
                );
                let room = KEEP_RECEIVED.saturating_sub(self.received.len());
                self.received.extend_from_slice(&data[..n.min(room)]);
                self.buf.extend_from_slice(data);
                Ok(())
            }
            Ok(Err(err)) => Err(self.io_failure(at, &err)),
            Err(_) => {
                let partial = self.buf.len();
                Err(self.timeout_failure(
                    at,
                    what.into(),
                    Failure::Timeout {
                        what: what.into(),
                        partial,
                    },
                ))
            }
        }
    }

    /// Records that the probe waited its whole timeout for `waiting_for`
    /// and fails with `failure`.
    fn timeout_failure(&mut self, at: Duration, waiting_for: String, failure: Failure) -> Failure {
        self.trace.failed = true;
        self.trace.push(
            at,
            EventKind::Timeout {
                waited: self.link.timeout,
                waiting_for,
            },
        );
        failure
    }

    fn io_failure(&mut self, at: Duration, err: &io::Error) -> Failure {
        self.trace.failed = true;
        if is_reset(err) {
            self.trace.push(at, EventKind::Reset);
            Failure::Reset
        } else {
            let reason = describe_io(err);
            self.trace.push(
                at,
                EventKind::Error {
                    reason: reason.clone(),
                },
            );
            Failure::Io(reason)
        }
    }

    /// Shuts down the writing side (the client's FIN).
    pub(crate) async fn shutdown_write(&mut self) -> Result<(), Failure> {
        let result = self.stream.shutdown().await;
        let at = self.now();
        match result {
            Ok(()) => {
                self.trace.push(at, EventKind::ShutdownWrite);
                Ok(())
            }
            Err(err) => Err(self.io_failure(at, &err)),
        }
    }

    /// After [`Probe::shutdown_write`]: waits for the server to close and
    /// says how it did.
    pub(crate) async fn await_close(&mut self) -> CloseSeen {
        if !self.buf.is_empty() {
            return CloseSeen::Data(self.buf.len());
        }
        let failed_before = self.trace.failed;
        match self
            .read_more(Instant::now() + self.link.timeout, "close")
            .await
        {
            Err(Failure::Closed { .. }) => {
                // A FIN is the good outcome here, not a failure.
                self.trace.failed = failed_before;
                CloseSeen::Fin
            }
            Err(Failure::Reset) => CloseSeen::Reset,
            Err(Failure::Timeout { .. }) => CloseSeen::Timeout,
            Err(other) => CloseSeen::Error(other.describe(self.link.timeout)),
            Ok(()) => CloseSeen::Data(self.buf.len()),
        }
    }

    /// Writes `bytes` one `piece` at a time with `pause` between pieces.
    pub(crate) async fn send_pieces(
        &mut self,
        bytes: &[u8],
        piece: usize,
        pause: Duration,
    ) -> Result<(), Failure> {
        for (i, chunk) in bytes.chunks(piece.max(1)).enumerate() {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            self.send(chunk).await?;
        }
        Ok(())
    }

    /// Closes the connection normally (FIN).
    pub(crate) fn close(mut self) {
        let at = self.now();
        self.trace.push(at, EventKind::Closed);
        self.ended = true;
    }

    /// Resets the connection: SO_LINGER 0, then close, so the kernel sends
    /// RST instead of FIN.
    pub(crate) fn abort(mut self) {
        self.ended = true;
        let at = self.now();
        match self.stream.set_zero_linger() {
            Ok(()) => self.trace.push(at, EventKind::Aborted),
            Err(err) => {
                let reason = format!("could not set SO_LINGER 0 ({err}); closed normally");
                self.trace.push(at, EventKind::Error { reason });
                self.trace.push(at, EventKind::Closed);
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Dropped after a failure (or when the case was cut short): the
        // socket closes here, which the server sees as a FIN.
        if !self.ended {
            let at = self.now();
            self.trace.push(at, EventKind::Closed);
        }
        push_trace(&self.link.collector, std::mem::take(&mut self.trace));
    }
}

fn push_trace(collector: &Collector, trace: ConnTrace) {
    // A poisoned lock only means another probe panicked; keep the trace anyway.
    let mut traces = collector.lock().unwrap_or_else(|p| p.into_inner());
    traces.push(trace);
}

/// True for the errors a received RST causes.
fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    ) || (err.kind() == io::ErrorKind::BrokenPipe)
}

/// An I/O error in plain words.
pub(crate) fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused (nothing listens there)".into(),
        io::ErrorKind::ConnectionReset => "connection reset by the server (RST)".into(),
        io::ErrorKind::BrokenPipe => "the server closed the connection".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn link(addr: SocketAddr, framing: Framing) -> Link {
        Link {
            addr,
            framing,
            timeout: Duration::from_millis(300),
            start: Instant::now(),
            collector: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn kinds(link: &Link) -> Vec<EventKind> {
        let traces = link.collector.lock().unwrap();
        assert_eq!(traces.len(), 1);
        traces[0].events.iter().map(|e| e.kind.clone()).collect()
    }

    #[tokio::test]
    async fn reads_are_traced_and_framed_answers_kept_apart() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // Two answers in one write, then FIN.
            s.write_all(b"one\ntwo\n").await.unwrap();
        });
        let link = link(addr, Framing::Line).await;
        let mut p = Probe::connect(&link, "c").await.unwrap();
        assert_eq!(p.receive("answer").await.unwrap(), b"one");
        assert_eq!(p.receive("answer").await.unwrap(), b"two");
        server.await.unwrap();
        let f = p.receive("answer").await.unwrap_err();
        assert_eq!(
            f,
            Failure::Closed {
                what: "answer".into(),
                partial: 0
            }
        );
        assert_eq!(p.received(), b"one\ntwo\n");
        drop(p);
        let k = kinds(&link);
        assert_eq!(k[0], EventKind::Connected);
        assert_eq!(
            k[1],
            EventKind::Received {
                bytes: 8,
                text: "one\\ntwo\\n".into()
            }
        );
        assert_eq!(k[2], EventKind::Fin);
        assert_eq!(k[3], EventKind::Closed, "a dropped probe closes");
        assert!(link.collector.lock().unwrap()[0].failed);
    }

    #[tokio::test]
    async fn a_silent_server_is_a_bounded_timeout_and_a_reset_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reset, told) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            // Say nothing until told, then reset.
            let _ = told.await;
            s.set_zero_linger().unwrap();
            drop(s);
        });
        let link = link(addr, Framing::Length).await;
        let mut p = Probe::connect(&link, "c").await.unwrap();
        p.send_message(b"hi").await.unwrap();
        let started = std::time::Instant::now();
        let f = p.receive("answer").await.unwrap_err();
        assert!(matches!(f, Failure::Timeout { partial: 0, .. }), "{f:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        reset.send(()).unwrap();
        server.await.unwrap();
        let f = p.receive("answer").await.unwrap_err();
        assert_eq!(f, Failure::Reset);
        assert_eq!(
            f.describe(link.timeout),
            "the server reset the connection (RST)"
        );
        p.close();
        let k = kinds(&link);
        assert!(matches!(k[1], EventKind::Sent { bytes: 6, .. }), "{k:?}");
        assert!(matches!(k[2], EventKind::Timeout { .. }), "{k:?}");
        assert_eq!(k[3], EventKind::Reset);
        assert_eq!(k[4], EventKind::Closed);
        assert_eq!(k.len(), 5, "close() is traced once: {k:?}");
    }

    #[tokio::test]
    async fn an_endless_line_is_refused_at_the_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let block = vec![b'x'; 64 * 1024];
            // Bounded: a little more than the limit, never a newline.
            for _ in 0..(MAX_ANSWER / block.len() + 2) {
                if s.write_all(&block).await.is_err() {
                    break;
                }
            }
        });
        let link = Link {
            timeout: Duration::from_secs(5),
            ..link(addr, Framing::Line).await
        };
        let mut p = Probe::connect(&link, "c").await.unwrap();
        let f = p.receive("answer").await.unwrap_err();
        assert!(
            matches!(&f, Failure::Invalid(why) if why.contains("limit")),
            "{f:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_traced() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let link = link(SocketAddr::from(([127, 0, 0, 1], port)), Framing::Line).await;
        let f = Probe::connect(&link, "c").await.err().unwrap();
        assert!(f.describe(link.timeout).contains("connection refused"));
        assert!(matches!(&kinds(&link)[0], EventKind::ConnectFailed { .. }));
    }
}
