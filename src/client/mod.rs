//! The client: one TCP connection that sends framed requests and waits for
//! each response.
//!
//! [`Client`] is the library API (used by `reqresp client`, the tests and
//! `reqresp lab`): [`Client::connect`] resolves a `host:port` (a host name
//! such as `reqresp-server:2222` works), tries each address in turn, and
//! [`Client::request`] sends one message and returns the response with its
//! round-trip time. Every wait is bounded by the timeout given at connect.
//!
//! The two front ends live next to it: [`scripted`] (messages from arguments
//! or stdin, responses on stdout) and [`interactive`] (a prompt with line
//! editing and history).
//!
//! Framing is delegated to [`Framing::encode`] and [`Framing::decode`], the
//! same codecs the server and the capture analyzer use.

pub mod interactive;
pub mod scripted;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::human::format_duration;
use crate::protocol::{DEFAULT_PORT, FrameError, Framing};

/// The address `reqresp client`, `bench` and `check` connect to when none
/// is given: [`DEFAULT_PORT`] on 127.0.0.1.
pub fn default_addr() -> String {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)).to_string()
}

/// The largest response accepted unless told otherwise (16 MiB). A length
/// prefix claiming more is refused before anything is buffered.
pub const DEFAULT_MAX_RESPONSE: usize = 16 << 20;

/// How much room is made in the receive buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// How long [`Client::close`] waits for the server to close its side.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What can go wrong between the client and the server. Each message says
/// what happened and what to try.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host name did not resolve.
    #[error(
        "cannot resolve {target}: {} — check the host name and port, or give an IP address",
        describe_lookup(error)
    )]
    Resolve {
        /// The address as given (with the default port added if it had none).
        target: String,
        /// What the resolver said.
        error: io::Error,
    },
    /// Name resolution did not finish within the timeout.
    #[error(
        "cannot resolve {target}: no answer from the resolver within {} — check the DNS setup or give an IP address",
        secs(*timeout)
    )]
    ResolveTimeout {
        /// The address as given.
        target: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The name resolved, but to no address at all.
    #[error("cannot resolve {target}: the name has no address — give an IP address instead")]
    NoAddress {
        /// The address as given.
        target: String,
    },
    /// No address of the target accepted a connection.
    #[error("cannot connect to {target}: {reason} — is `reqresp server` running?")]
    Connect {
        /// The address as given.
        target: String,
        /// Why each address failed, e.g. `connection refused`.
        reason: String,
    },
    /// The request cannot be represented in the chosen framing.
    #[error("cannot send this request: {0}")]
    Request(FrameError),
    /// Raw framing has no way to send an empty message.
    #[error(
        "cannot send an empty request with --framing raw: zero bytes never reach the server (use --framing line or length)"
    )]
    EmptyRaw,
    /// Writing the request failed.
    #[error(
        "cannot send to {peer}: {} — the server may have gone away",
        describe(error)
    )]
    Send {
        /// The server's address.
        peer: SocketAddr,
        /// The underlying error.
        error: io::Error,
    },
    /// Reading the response failed.
    #[error(
        "cannot read the response from {peer}: {} — the server may have gone away",
        describe(error)
    )]
    Receive {
        /// The server's address.
        peer: SocketAddr,
        /// The underlying error.
        error: io::Error,
    },
    /// The server closed the connection before a whole response arrived.
    #[error("{peer} closed the connection {} — did the server stop, or does it use another --framing?", closed_when(*partial))]
    Closed {
        /// The server's address.
        peer: SocketAddr,
        /// Bytes of an incomplete response received before the close.
        partial: usize,
    },
    /// No whole response arrived within the timeout.
    #[error(
        "no response from {peer} within {} — is the server using --framing {framing}? (raise the limit with --timeout)",
        secs(*timeout)
    )]
    Timeout {
        /// The server's address.
        peer: SocketAddr,
        /// The framing the client used.
        framing: Framing,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The server closed the connection between requests, and opening a
    /// new one failed.
    #[error(
        "{peer} closed the connection while it was idle, and reconnecting failed: {reason} — is `reqresp server` still running?"
    )]
    Reconnect {
        /// The server's address.
        peer: SocketAddr,
        /// Why the new connection failed.
        reason: String,
    },
    /// A response is larger than the client accepts.
    #[error(
        "a response from {peer} is larger than the client's limit of {limit} bytes ({size} bytes seen) — raise it with --max-response, or check that the server uses --framing {framing}"
    )]
    ResponseTooLarge {
        /// The server's address.
        peer: SocketAddr,
        /// The framing the client used.
        framing: Framing,
        /// The size announced or received so far.
        size: usize,
        /// The client's limit.
        limit: usize,
    },
    /// The response could not be framed.
    #[error("bad response from {peer}: {error} — is the server using --framing {framing}?")]
    Response {
        /// The server's address.
        peer: SocketAddr,
        /// The framing the client used.
        framing: Framing,
        /// What the decoder found.
        error: FrameError,
    },
}

/// Says when a connection closed, from how much of a response had arrived.
fn closed_when(partial: usize) -> String {
    match partial {
        0 => "before answering".to_string(),
        n => format!("in the middle of a response ({n} bytes received)"),
    }
}

/// An I/O error in the words a user would use: `connection refused` rather
/// than `Connection refused (os error 111)`.
fn describe(error: &io::Error) -> String {
    use io::ErrorKind::*;
    let words = match error.kind() {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by the server",
        ConnectionAborted => "connection aborted",
        BrokenPipe => "the server closed the connection",
        TimedOut => "timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        _ => return error.to_string(),
    };
    words.to_string()
}

/// A resolver error without the generic prefix tokio puts before the
/// resolver's own words: `name or service not known`.
fn describe_lookup(error: &io::Error) -> String {
    let text = error.to_string();
    let words = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Formats a timeout as seconds: `5 s`, `0.5 s`.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Adds [`DEFAULT_PORT`] to an address that names none: `localhost`,
/// `10.0.0.2`, `::1` and `[::1]` become `localhost:2222`, `10.0.0.2:2222`,
/// `[::1]:2222` and `[::1]:2222`. Anything else is returned as given.
pub(crate) fn with_default_port(addr: &str) -> String {
    if addr.parse::<SocketAddr>().is_ok() {
        return addr.to_string();
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return SocketAddr::new(ip, DEFAULT_PORT).to_string();
    }
    if (addr.starts_with('[') && addr.ends_with(']')) || !addr.contains(':') {
        return format!("{addr}:{DEFAULT_PORT}");
    }
    addr.to_string()
}

/// One response and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response payload, without delimiter or length prefix.
    pub bytes: Bytes,
    /// From just before the request was written to when the whole response
    /// had been read.
    pub rtt: Duration,
}

/// A connection to a request/response server.
///
/// Requests are answered in order. [`Client::request`] is one send and one
/// receive; [`Client::send`] and [`Client::receive`] are there for callers
/// that pipeline several requests before reading the responses.
///
/// With [`Framing::Raw`] a response is whatever one read returns, as the
/// original lab's `recv(1024)` does. That is unreliable: TCP is a byte
/// stream, so a response can arrive split over two reads (the client then
/// shows half of it, and the other half becomes the "response" to the next
/// request) or two responses can arrive in one read. It works in the lab
/// only because each request waits for its answer and the messages are
/// small. Line and length framing mark where each message ends, so the
/// client reads exactly one whole response whatever the reads return.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    framing: Framing,
    timeout: Duration,
    max_response: usize,
    /// Bytes received and not yet handed out as a response.
    inbuf: BytesMut,
    /// The encoded request, reused so a request costs no allocation.
    outbuf: Vec<u8>,
}

impl Client {
    /// Resolves `addr` (`host:port`; a missing port means [`DEFAULT_PORT`])
    /// and connects to the first of its addresses that accepts, each attempt
    /// bounded by `timeout`, which then also bounds every request.
    pub async fn connect(
        addr: &str,
        framing: Framing,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let target = with_default_port(addr);
        let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host(target.clone())).await;
        let addrs: Vec<SocketAddr> = match lookup {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(error)) => return Err(ClientError::Resolve { target, error }),
            Err(_) => return Err(ClientError::ResolveTimeout { target, timeout }),
        };
        if addrs.is_empty() {
            return Err(ClientError::NoAddress { target });
        }
        let mut failures = Vec::new();
        for addr in &addrs {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Client::from_stream(stream, framing, timeout),
                Ok(Err(error)) => failures.push((addr, describe(&error))),
                Err(_) => failures.push((addr, format!("no answer within {}", secs(timeout)))),
            }
        }
        // One address: just its reason. Several: each with its reason.
        let reason = match failures.as_slice() {
            [(_, reason)] => reason.clone(),
            many => many
                .iter()
                .map(|(addr, reason)| format!("{addr}: {reason}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        Err(ClientError::Connect { target, reason })
    }

    /// Wraps a connected stream.
    pub fn from_stream(
        stream: TcpStream,
        framing: Framing,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let peer = stream.peer_addr().map_err(|error| ClientError::Connect {
            target: "the server".into(),
            reason: describe(&error),
        })?;
        // A request is one small write followed by a wait for the answer:
        // Nagle's algorithm would only add delay, never save a packet.
        let _ = stream.set_nodelay(true);
        Ok(Client {
            stream,
            peer,
            framing,
            timeout,
            max_response: DEFAULT_MAX_RESPONSE,
            inbuf: BytesMut::with_capacity(READ_CHUNK),
            outbuf: Vec::with_capacity(256),
        })
    }

    /// Sets the largest response accepted (default [`DEFAULT_MAX_RESPONSE`]).
    pub fn with_max_response(mut self, max: usize) -> Client {
        self.max_response = max;
        self
    }

    /// The address of the server.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The timeout that bounds each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and waits for its response, all within the timeout.
    pub async fn request(&mut self, payload: &[u8]) -> Result<Response, ClientError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        self.send_until(payload, deadline).await?;
        let bytes = self.receive_until(deadline).await?;
        Ok(Response {
            bytes,
            rtt: started.elapsed(),
        })
    }

    /// Sends one request without waiting for its response, within the timeout.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.send_until(payload, tokio::time::Instant::now() + self.timeout)
            .await
    }

    /// Waits, at most the timeout, for the next whole response.
    pub async fn receive(&mut self) -> Result<Bytes, ClientError> {
        self.receive_until(tokio::time::Instant::now() + self.timeout)
            .await
    }

    async fn send_until(
        &mut self,
        payload: &[u8],
        deadline: tokio::time::Instant,
    ) -> Result<(), ClientError> {
        if payload.is_empty() && self.framing == Framing::Raw {
            return Err(ClientError::EmptyRaw);
        }
        self.outbuf.clear();
        self.framing
            .encode(payload, &mut self.outbuf)
            .map_err(ClientError::Request)?;
        match tokio::time::timeout_at(deadline, self.stream.write_all(&self.outbuf)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ClientError::Send {
                peer: self.peer,
                error,
            }),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn receive_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Bytes, ClientError> {
        loop {
            // Bytes already buffered may hold the whole response (the server
            // answered several pipelined requests in one segment).
            match self.framing.decode(&self.inbuf, self.max_response) {
                Ok(Some(frame)) => {
                    let mut message = self.inbuf.split_to(frame.consumed);
                    message.truncate(frame.payload.end);
                    message.advance(frame.payload.start);
                    return Ok(message.freeze());
                }
                Ok(None) => {}
                Err(FrameError::TooLarge { size, limit }) => {
                    return Err(ClientError::ResponseTooLarge {
                        peer: self.peer,
                        framing: self.framing,
                        size,
                        limit,
                    });
                }
                Err(error) => {
                    return Err(ClientError::Response {
                        peer: self.peer,
                        framing: self.framing,
                        error,
                    });
                }
            }
            self.inbuf.reserve(READ_CHUNK);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.inbuf)).await {
                Ok(Ok(0)) => {
                    return Err(ClientError::Closed {
                        peer: self.peer,
                        partial: self.inbuf.len(),
                    });
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    return Err(ClientError::Receive {
                        peer: self.peer,
                        error,
                    });
                }
                Err(_) => return Err(self.timed_out()),
            }
        }
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            peer: self.peer,
            framing: self.framing,
            timeout: self.timeout,
        }
    }

    /// Opens a new connection to the same server if the server has closed
    /// this one while it was idle (servers close connections that stay
    /// silent too long); returns whether it did. Nothing has been sent on
    /// the old connection since its last answer, so nothing is lost or
    /// sent twice. Call it between requests only.
    pub async fn reconnect_if_closed(&mut self) -> Result<bool, ClientError> {
        let mut probe = [0u8; 1024];
        loop {
            match self.stream.try_read(&mut probe) {
                // Unsolicited bytes before a close (an error line): dropped
                // with the connection if it is closing, kept otherwise.
                Ok(n @ 1..) => self.inbuf.extend_from_slice(&probe[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Ok(0) | Err(_) => break,
            }
        }
        let peer = self.peer;
        let stream = match tokio::time::timeout(self.timeout, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(ClientError::Reconnect {
                    peer,
                    reason: describe(&error),
                });
            }
            Err(_) => {
                return Err(ClientError::Reconnect {
                    peer,
                    reason: format!("no answer within {}", secs(self.timeout)),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        self.stream = stream;
        self.inbuf.clear();
        Ok(true)
    }

    /// Closes the connection cleanly: sends a FIN, then waits (briefly) for
    /// the server to close its side, discarding anything it still sends.
    ///
    /// Reading to the end matters: closing a socket with unread bytes makes
    /// the kernel send a RST instead of a FIN, which a capture shows as an
    /// abort rather than the orderly teardown.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if let Err(error) = self.stream.shutdown().await {
            // Already closed by the server: nothing left to do.
            if error.kind() == io::ErrorKind::NotConnected {
                return Ok(());
            }
            return Err(ClientError::Send {
                peer: self.peer,
                error,
            });
        }
        let linger = CLOSE_LINGER.min(self.timeout);
        let drain = async {
            let mut sink = [0u8; 4096];
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        // A server that keeps the connection open after our FIN is not an
        // error: the FIN has been sent; dropping the socket ends our side.
        let _ = tokio::time::timeout(linger, drain).await;
        Ok(())
    }
}

impl fmt::Display for Response {
    /// The payload as text (invalid UTF-8 replaced), control characters
    /// escaped so network bytes cannot drive the terminal, then the RTT.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}   ({})",
            printable(&self.bytes),
            format_duration(self.rtt)
        )
    }
}

/// The payload as text safe to print on a terminal: invalid UTF-8 becomes
/// U+FFFD and control characters (escape sequences included) are escaped
/// as `\n`, `\u{1b}` and so on. Tabs are kept.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
