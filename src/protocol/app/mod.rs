//! Application protocols the analyzer can pair: HTTP/1.x, RESP (Redis),
//! the memcached text protocol, DNS over TCP and PostgreSQL.
//!
//! Each protocol is a pure codec in its own file, with no I/O: it is fed the
//! reassembled bytes of each direction of one connection, in order, and
//! says where each message ends, what kind of message it is and a one-line
//! summary of it (`GET /index.html`, `200 OK, 6 B body`, `INCR p1`, `:3`).
//! A [`Session`] holds one connection's state for both directions, because
//! some responses can only be read knowing their request (the response to a
//! `HEAD` has no body; PostgreSQL answers an SSL request with one untyped
//! byte).
//!
//! The codecs are *push* parsers: [`Session::feed`] takes whatever bytes
//! arrived and consumes them up to the end of the next message, keeping only
//! what a summary needs (a header block, a line, the first bytes of a
//! value). Bodies and values are counted, never buffered, so a connection
//! costs a few KiB whatever it carries, and a length a field claims is never
//! allocated. Lines and header blocks are bounded (`MAX_LINE`,
//! `MAX_HEAD`), nesting too (`MAX_DEPTH`); past a bound the stream is
//! [`AppError`] (not this protocol, or not one the analyzer can follow).
//! Because the state machine sees each byte once and in order, the messages
//! found do not depend on how the stream was split into chunks, which the
//! property tests check for every protocol.
//!
//! # Pairing rules
//!
//! Each message has a [`Kind`]; the caller pairs them:
//!
//! - A [`Kind::Request`] expects `responses` answers (usually 1; 0 for
//!   memcached's `noreply` or PostgreSQL's Terminate; one per channel for
//!   Redis `SUBSCRIBE a b`). Requests are answered in order (pipelining),
//!   except where a response carries a `key` (DNS message IDs), which pairs
//!   it with the waiting request of the same key.
//! - A [`Kind::Response`] answers the oldest waiting request.
//! - A [`Kind::Interim`] (HTTP `100 Continue` and other 1xx) belongs to the
//!   oldest waiting request but does not end its wait.
//! - A [`Kind::Push`] is sent by the server unprompted (RESP3 push,
//!   PostgreSQL notification) and answers nothing.
//! - [`Kind::Tunnel`]: after an HTTP `101 Switching Protocols` or a
//!   successful `CONNECT`, or PostgreSQL's switch to TLS, the bytes are
//!   another protocol; each chunk fed is reported as one tunnel message.
//!
//! Per protocol:
//!
//! - **HTTP/1.x**: a message is a start line and headers, then a body by
//!   `Transfer-Encoding: chunked`, `Content-Length`, or (responses only) the
//!   close of the connection ([`Session::finish`]). Responses to `HEAD`, and
//!   1xx, 204 and 304 responses, have no body.
//! - **RESP**: a request is an array of bulk strings or an inline command
//!   line; a response is one RESP2/RESP3 value, nested aggregates included
//!   (null bulk strings and arrays too). A RESP3 attribute belongs to the
//!   value after it.
//! - **memcached text**: a request is a command line, followed by a data
//!   block for storage commands (`set`, `add`, `replace`, `append`,
//!   `prepend`, `cas`, meta `ms`); a response is one line, or `VALUE`
//!   blocks (or `STAT` lines) up to `END`, or a meta `VA` line with its data.
//! - **DNS over TCP**: a 2-byte length, then the message; responses pair by
//!   message ID (RFC 7766 lets a server answer out of order).
//! - **PostgreSQL**: a request is the startup message, a simple `Query`, an
//!   extended-protocol batch up to `Sync`, a password/SASL message, or copy
//!   data up to `CopyDone`; a response is every backend message up to
//!   `ReadyForQuery`, or up to an authentication request that waits for the
//!   client, or `CopyInResponse`.
//!
//! Limits: RESP `CLIENT REPLY OFF`, memcached meta commands with the quiet
//! flag `q`, and PostgreSQL `Flush` without `Sync` make a server skip
//! answers that these rules expect; pairing after them can be off.

mod bytes;
pub(crate) mod dns;
pub(crate) mod http;
mod lines;
pub(crate) mod memcached;
pub(crate) mod postgres;
pub(crate) mod resp;
#[cfg(test)]
pub(crate) mod testkit;

pub(crate) use bytes::{Block, Line, parse_i64, parse_u64, show, size};

use std::fmt;

/// Longest line read whole (RESP, memcached, HTTP chunk sizes): 64 KiB,
/// Redis's own limit on an inline command.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Longest HTTP header block (start line and headers): 64 KiB. Servers
/// refuse far less (nginx 8 KiB per line, Apache 8 KiB per field).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Deepest nesting of RESP aggregates.
pub(crate) const MAX_DEPTH: usize = 64;
/// Longest summary, in characters.
pub(crate) const MAX_SUMMARY: usize = 120;

/// An application protocol with a codec here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum AppProtocol {
    /// HTTP/1.0 and HTTP/1.1.
    Http,
    /// RESP, the Redis protocol (RESP2 and RESP3).
    Resp,
    /// The memcached text protocol (classic and meta commands).
    Memcached,
    /// DNS over TCP (RFC 1035 4.2.2, RFC 7766).
    Dns,
    /// The PostgreSQL frontend/backend protocol, version 3.
    Postgres,
}

impl AppProtocol {
    /// Every protocol, in the order recognition tries them.
    pub const ALL: [AppProtocol; 5] = [
        AppProtocol::Http,
        AppProtocol::Resp,
        AppProtocol::Memcached,
        AppProtocol::Dns,
        AppProtocol::Postgres,
    ];

    /// Lowercase name, as `--framing` takes it.
    pub fn name(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Resp => "resp",
            AppProtocol::Memcached => "memcached",
            AppProtocol::Dns => "dns",
            AppProtocol::Postgres => "postgres",
        }
    }

    /// Server ports that hint at this protocol (a hint only: content decides).
    pub fn hint_ports(self) -> &'static [u16] {
        match self {
            AppProtocol::Http => &[80, 8000, 8008, 8080, 8888],
            AppProtocol::Resp => &[6379],
            AppProtocol::Memcached => &[11211],
            AppProtocol::Dns => &[53, 5353],
            AppProtocol::Postgres => &[5432],
        }
    }
}

impl fmt::Display for AppProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Request,
    /// Server to client.
    Response,
}

/// What a message is, for pairing (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request that expects this many responses.
    Request {
        /// Responses the server will send (0: none).
        responses: u32,
    },
    /// The (last) answer to the oldest waiting request.
    Response,
    /// An informational answer (HTTP 1xx) that does not end the wait.
    Interim,
    /// A server message that answers no request.
    Push,
    /// Bytes of another protocol after a switch (HTTP upgrade, TLS).
    Tunnel,
}

/// One message found in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMessage {
    /// Bytes of the stream it spans, framing included.
    pub len: u64,
    /// What it is, for pairing.
    pub kind: Kind,
    /// The operation, for a per-operation table: `GET /index.html`,
    /// `INCR`, `get`, `A example.com`, `SELECT`. Empty for responses.
    pub op: String,
    /// One line for people: `GET /index.html`, `200 OK, 6 B body`, `:3`.
    pub summary: String,
    /// A response that reports a failure (HTTP status 400 and up, a RESP
    /// error, memcached `ERROR`, a DNS error code, a PostgreSQL error).
    pub error: bool,
    /// Pairing key: a response pairs with the waiting request of the same
    /// key (DNS message ID), not with the oldest one.
    pub key: Option<u32>,
    /// The whole message was seen. `false` only from [`Session::finish`],
    /// for a message the stream ended in the middle of.
    pub complete: bool,
}

impl AppMessage {
    pub(crate) fn new(kind: Kind) -> Self {
        AppMessage {
            len: 0,
            kind,
            op: String::new(),
            summary: String::new(),
            error: false,
            key: None,
            complete: true,
        }
    }

    /// Marks a message the end of the stream cut short: incomplete, and
    /// its summary says so.
    pub(crate) fn cut_short(&mut self) {
        self.complete = false;
        self.summary.push_str(" (cut short)");
    }
}

/// The outcome of one [`Session::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input consumed: up to the end of `message` when there
    /// is one, else all of them. Never 0 for a non-empty input.
    pub consumed: usize,
    /// The message that ended within the consumed bytes.
    pub message: Option<AppMessage>,
}

/// Why a stream cannot be read as the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The bytes break the protocol's grammar.
    #[error(
        "{protocol} {direction}: {what}; the stream is not {protocol} from here (try another --framing, or raw)"
    )]
    Malformed {
        /// The protocol tried.
        protocol: AppProtocol,
        /// `request` or `response` stream.
        direction: &'static str,
        /// What was wrong, with the offending value.
        what: String,
    },
    /// A line, header block or nesting exceeds this reader's bound.
    #[error(
        "{protocol} {direction}: {what} exceeds the limit of {limit}; the analyzer does not follow such streams (try --framing raw)"
    )]
    TooLarge {
        /// The protocol tried.
        protocol: AppProtocol,
        /// `request` or `response` stream.
        direction: &'static str,
        /// What grew too large.
        what: &'static str,
        /// The bound in force.
        limit: usize,
    },
    /// Bytes were not captured where the protocol needs them to find
    /// message boundaries.
    #[error(
        "{protocol} {direction}: {missing} bytes not captured inside a header or a length; message boundaries are lost"
    )]
    LostSync {
        /// The protocol tried.
        protocol: AppProtocol,
        /// `request` or `response` stream.
        direction: &'static str,
        /// Bytes missing.
        missing: u64,
    },
}

fn dir_name(dir: Direction) -> &'static str {
    match dir {
        Direction::Request => "request",
        Direction::Response => "response",
    }
}

pub(crate) fn malformed(
    protocol: AppProtocol,
    dir: Direction,
    what: impl Into<String>,
) -> AppError {
    AppError::Malformed {
        protocol,
        direction: dir_name(dir),
        what: what.into(),
    }
}

pub(crate) fn too_large(
    protocol: AppProtocol,
    dir: Direction,
    what: &'static str,
    limit: usize,
) -> AppError {
    AppError::TooLarge {
        protocol,
        direction: dir_name(dir),
        what,
        limit,
    }
}

pub(crate) fn lost_sync(protocol: AppProtocol, dir: Direction, missing: u64) -> AppError {
    AppError::LostSync {
        protocol,
        direction: dir_name(dir),
        missing,
    }
}

/// The codec state of one connection, both directions.
#[derive(Debug)]
pub struct Session {
    inner: Inner,
    /// A direction that failed stays failed: its error.
    failed: [Option<AppError>; 2],
}

#[derive(Debug)]
enum Inner {
    Http(http::Http),
    Resp(resp::Resp),
    Memcached(memcached::Memcached),
    Dns(dns::Dns),
    Postgres(postgres::Postgres),
}

/// Index of a direction in a codec's pair of halves.
pub(crate) fn slot(dir: Direction) -> usize {
    match dir {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl Session {
    /// A session at the start of a connection.
    pub fn new(protocol: AppProtocol) -> Self {
        let inner = match protocol {
            AppProtocol::Http => Inner::Http(http::Http::default()),
            AppProtocol::Resp => Inner::Resp(resp::Resp::default()),
            AppProtocol::Memcached => Inner::Memcached(memcached::Memcached::default()),
            AppProtocol::Dns => Inner::Dns(dns::Dns::default()),
            AppProtocol::Postgres => Inner::Postgres(postgres::Postgres::default()),
        };
        Session {
            inner,
            failed: [None, None],
        }
    }

    /// The protocol read.
    pub fn protocol(&self) -> AppProtocol {
        match self.inner {
            Inner::Http(_) => AppProtocol::Http,
            Inner::Resp(_) => AppProtocol::Resp,
            Inner::Memcached(_) => AppProtocol::Memcached,
            Inner::Dns(_) => AppProtocol::Dns,
            Inner::Postgres(_) => AppProtocol::Postgres,
        }
    }

    /// Takes the next bytes of `dir`'s stream: consumes them up to the end
    /// of the next message and returns it, or consumes them all when no
    /// message ends in them. Call again with the rest. After an error the
    /// direction is not read further (the same error comes back).
    pub fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
        if let Some(e) = &self.failed[slot(dir)] {
            return Err(e.clone());
        }
        if data.is_empty() {
            return Ok(Step {
                consumed: 0,
                message: None,
            });
        }
        let r = match &mut self.inner {
            Inner::Http(s) => s.feed(dir, data),
            Inner::Resp(s) => s.feed(dir, data),
            Inner::Memcached(s) => s.feed(dir, data),
            Inner::Dns(s) => s.feed(dir, data),
            Inner::Postgres(s) => s.feed(dir, data),
        };
        match r {
            Ok(mut step) => {
                debug_assert!(step.consumed > 0 && step.consumed <= data.len());
                if let Some(m) = &mut step.message {
                    cap_summary(&mut m.summary);
                    cap_summary(&mut m.op);
                }
                Ok(step)
            }
            Err(e) => {
                self.failed[slot(dir)] = Some(e.clone());
                Err(e)
            }
        }
    }

    /// `n` bytes of `dir`'s stream were not captured. Inside a body or value
    /// of known length they are counted and the reading goes on (returning
    /// the message if they were its last bytes); elsewhere boundaries are
    /// lost ([`AppError::LostSync`]) and the direction stops.
    pub fn missing(&mut self, dir: Direction, n: u64) -> Result<Option<AppMessage>, AppError> {
        if let Some(e) = &self.failed[slot(dir)] {
            return Err(e.clone());
        }
        if n == 0 {
            return Ok(None);
        }
        let r = match &mut self.inner {
            Inner::Http(s) => s.missing(dir, n),
            Inner::Resp(s) => s.missing(dir, n),
            Inner::Memcached(s) => s.missing(dir, n),
            Inner::Dns(s) => s.missing(dir, n),
            Inner::Postgres(s) => s.missing(dir, n),
        };
        if let Err(e) = &r {
            self.failed[slot(dir)] = Some(e.clone());
        }
        r
    }

    /// `dir`'s stream ended. Returns the message the end completes (an HTTP
    /// body delimited by the close), or the one it cut short (with
    /// `complete: false`), or nothing when the stream ended between
    /// messages.
    pub fn finish(&mut self, dir: Direction) -> Option<AppMessage> {
        if self.failed[slot(dir)].is_some() {
            return None;
        }
        let mut m = match &mut self.inner {
            Inner::Http(s) => s.finish(dir),
            Inner::Resp(s) => s.finish(dir),
            Inner::Memcached(s) => s.finish(dir),
            Inner::Dns(s) => s.finish(dir),
            Inner::Postgres(s) => s.finish(dir),
        }?;
        cap_summary(&mut m.summary);
        cap_summary(&mut m.op);
        Some(m)
    }

    /// Whether a message of `dir` has begun and not ended. A server may
    /// answer a request before its end (an HTTP error before the body
    /// came, or after `100 Continue` when the client then gives up): a
    /// response that finds no request waiting while one is partial answers
    /// that one.
    pub fn partial(&self, dir: Direction) -> bool {
        match &self.inner {
            Inner::Http(s) => s.partial(dir),
            Inner::Resp(s) => s.partial(dir),
            Inner::Memcached(s) => s.partial(dir),
            Inner::Dns(s) => s.partial(dir),
            Inner::Postgres(s) => s.partial(dir),
        }
    }

    /// Whether `dir` stopped on an error.
    pub fn failed(&self, dir: Direction) -> Option<&AppError> {
        self.failed[slot(dir)].as_ref()
    }
}

/// Decodes a whole stream of one direction: the messages and the error
/// that stopped it, if any. Call for the requests before the responses.
/// For tests and tools; the analyzer feeds chunks as they come.
pub(crate) fn decode_stream(
    session: &mut Session,
    dir: Direction,
    mut data: &[u8],
) -> (Vec<AppMessage>, Option<AppError>) {
    let mut out = Vec::new();
    while !data.is_empty() {
        match session.feed(dir, data) {
            Ok(step) => {
                out.extend(step.message);
                data = &data[step.consumed..];
            }
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// What a server message answers, by the pairing rules of the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The final answer to the request of this id: its wait is over.
    Final(u64),
    /// One answer of several to the request of this id, or an interim one
    /// (HTTP 1xx): the request still waits.
    Partial(u64),
    /// No waiting request (a push, a tunnel chunk, a greeting, or a
    /// response that came with none waiting).
    Unpaired,
}

/// Requests waiting for answers, in order: pairs each server message with
/// the request it answers. The caller numbers requests with ids of its
/// choice (an index in its list of exchanges, say).
#[derive(Debug, Default)]
pub struct Pairing {
    /// id, answers still expected, pairing key.
    waiting: std::collections::VecDeque<(u64, u32, Option<u32>)>,
}

/// Most requests held waiting; past this (a client that never gets
/// answers) the oldest are dropped, so memory stays bounded.
pub(crate) const MAX_WAITING: usize = 65_536;

impl Pairing {
    /// A request was sent. Returns the id of a request dropped to stay
    /// under `MAX_WAITING`, if any (it will never be paired).
    pub fn request(&mut self, id: u64, message: &AppMessage) -> Option<u64> {
        let Kind::Request { responses } = message.kind else {
            return None;
        };
        if responses == 0 {
            return None;
        }
        self.waiting.push_back((id, responses, message.key));
        if self.waiting.len() > MAX_WAITING {
            return self.waiting.pop_front().map(|(id, _, _)| id);
        }
        None
    }

    /// A server message arrived: which request it answers.
    pub fn response(&mut self, message: &AppMessage) -> Answer {
        match message.kind {
            Kind::Response => {}
            Kind::Interim => {
                return self
                    .waiting
                    .front()
                    .map_or(Answer::Unpaired, |w| Answer::Partial(w.0));
            }
            Kind::Push | Kind::Tunnel | Kind::Request { .. } => return Answer::Unpaired,
        }
        let at = match message.key {
            Some(k) => self.waiting.iter().position(|w| w.2 == Some(k)),
            None => (!self.waiting.is_empty()).then_some(0),
        };
        let Some(at) = at else {
            return Answer::Unpaired;
        };
        let w = &mut self.waiting[at];
        w.1 -= 1;
        let id = w.0;
        if w.1 == 0 {
            self.waiting.remove(at);
            Answer::Final(id)
        } else {
            Answer::Partial(id)
        }
    }

    /// Requests still waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// A protocol recognised on a connection, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    /// The protocol.
    pub protocol: AppProtocol,
    /// Why, for the report: "HTTP/1.1: request line and headers".
    pub reason: String,
}

/// How sure a content check is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Evidence {
    /// The content alone says so.
    Strong(String),
    /// Plausible; enough only with the protocol's port.
    Weak(String),
}

/// Recognises the protocol of a connection from the first bytes each side
/// sent (`client` first, `server` possibly empty or cut short) and the
/// server's port, which is only a hint: it settles content that several
/// protocols could have sent (a Redis inline `PING`), never overrides
/// content. The bytes must also decode without error under the protocol's
/// codec. `None`: no known protocol.
pub fn recognize(client: &[u8], server: &[u8], server_port: u16) -> Option<Recognition> {
    let mut weak = None;
    for protocol in AppProtocol::ALL {
        let evidence = match protocol {
            AppProtocol::Http => http::evidence(client, server),
            AppProtocol::Resp => resp::evidence(client, server),
            AppProtocol::Memcached => memcached::evidence(client, server),
            AppProtocol::Dns => dns::evidence(client, server),
            AppProtocol::Postgres => postgres::evidence(client, server),
        };
        let Some(evidence) = evidence else { continue };
        if !decodes(protocol, client, server) {
            continue;
        }
        match evidence {
            Evidence::Strong(reason) => return Some(Recognition { protocol, reason }),
            Evidence::Weak(reason) => {
                if weak.is_none() && protocol.hint_ports().contains(&server_port) {
                    weak = Some(Recognition {
                        protocol,
                        reason: format!("{reason}, and port {server_port}"),
                    });
                }
            }
        }
    }
    weak
}

/// Both bursts decode without error, and the client's holds a message or
/// the start of one.
fn decodes(protocol: AppProtocol, client: &[u8], server: &[u8]) -> bool {
    let mut s = Session::new(protocol);
    let (_, e) = decode_stream(&mut s, Direction::Request, client);
    if e.is_some() {
        return false;
    }
    let (_, e) = decode_stream(&mut s, Direction::Response, server);
    e.is_none()
}

/// Cuts a summary to [`MAX_SUMMARY`] characters, with an ellipsis.
fn cap_summary(s: &mut String) {
    if s.len() <= MAX_SUMMARY {
        return;
    }
    let mut end = MAX_SUMMARY - 1;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

#[cfg(test)]
mod tests;
