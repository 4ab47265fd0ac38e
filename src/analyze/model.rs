//! The result of an analysis: connections, their handshake, exchanges and
//! teardown. This is the contract between the analyzer and the report
//! formats; its serde form *is* the documented JSON schema (`--format json`),
//! so fields are only ever added, never renamed or removed.

use serde::Serialize;
use std::net::SocketAddr;

use crate::protocol::Framing;
use crate::protocol::app::AppProtocol;

/// A capture time: nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Microseconds from `earlier` to `self`, as a float (0 when `earlier` is later).
    pub fn micros_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1_000.0
    }
}

/// Which end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The end that opened the connection (sent the SYN), or was judged to.
    Client,
    /// The end that accepted it.
    Server,
}

/// Everything found in one capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    /// Packets read from the capture, including those that are not TCP.
    pub packets: u64,
    /// Framing used to cut streams into messages: the one asked for, or with
    /// `auto` the one every connection with exchanges was found to use;
    /// `null` when they differ or none had any (see each connection).
    pub framing: Option<Framing>,
    /// Every TCP connection, in the order its first packet was seen.
    pub connections: Vec<Connection>,
    /// Problems met while reading (truncated file, skipped packets, dropped data).
    pub warnings: Vec<String>,
}

/// One TCP connection, seen from the capture.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// 1-based number in order of appearance.
    pub id: u32,
    /// Client address: `ip:port`, IPv6 as `[addr]:port` (the `SocketAddr` display form).
    #[serde(serialize_with = "display")]
    pub client: SocketAddr,
    /// Server address, same form as `client`.
    #[serde(serialize_with = "display")]
    pub server: SocketAddr,
    /// Time of the first packet of this connection in the capture.
    pub first_seen: Timestamp,
    /// Time of the last packet of this connection in the capture.
    pub last_seen: Timestamp,
    /// The three-way handshake, or `null` when the capture began after it.
    pub handshake: Option<Handshake>,
    /// TCP payload bytes client to server as sent on the wire: each byte once,
    /// however often it was retransmitted, including bytes not captured (snaplen).
    pub bytes_client_to_server: u64,
    /// Same, server to client.
    pub bytes_server_to_client: u64,
    /// Stretches of the streams that were not captured.
    pub gaps: Vec<Gap>,
    /// Framing used to pair messages on this connection (`raw` when an
    /// application protocol cut them: see `protocol`).
    pub framing: Framing,
    /// The application protocol whose codec cut and paired the messages
    /// (recognised by `auto`, or asked for with `--framing`); `null` for
    /// the lab's framings.
    pub protocol: Option<AppProtocol>,
    /// Why this framing or protocol was chosen: "HTTP/1.1: request line and
    /// headers", "line: the first messages are text lines".
    pub framing_reason: Option<String>,
    /// Requests paired with their responses, in order.
    pub exchanges: Vec<Exchange>,
    /// Places where a reader taking one `recv()` per message would be wrong.
    pub recv_pitfalls: Vec<RecvPitfall>,
    /// How the connection ended, or `null` when it was still open at the end of the capture.
    pub close: Option<Close>,
    /// Remarks a reader should know to trust the rest: the start was not
    /// captured and how the server side was chosen, message boundaries lost
    /// after a gap, and the like.
    pub notes: Vec<String>,
}

impl Connection {
    /// A connection with nothing seen yet but its first packet: no
    /// handshake, bytes, gaps, exchanges or close. Fields are only ever
    /// added to the model; building through here keeps callers compiling.
    pub fn new(id: u32, client: SocketAddr, server: SocketAddr, first_seen: Timestamp) -> Self {
        Connection {
            id,
            client,
            server,
            first_seen,
            last_seen: first_seen,
            handshake: None,
            bytes_client_to_server: 0,
            bytes_server_to_client: 0,
            gaps: Vec::new(),
            framing: Framing::Raw,
            protocol: None,
            framing_reason: None,
            exchanges: Vec::new(),
            recv_pitfalls: Vec::new(),
            close: None,
            notes: Vec::new(),
        }
    }
}

/// The three-way handshake.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// Time of the client's SYN.
    pub syn: Timestamp,
    /// Time of the server's SYN-ACK, if captured.
    pub syn_ack: Option<Timestamp>,
    /// Time of the client's ACK completing the handshake, if captured.
    pub ack: Option<Timestamp>,
    /// Round trip SYN to SYN-ACK in microseconds, if both were captured.
    pub rtt_us: Option<f64>,
}

/// Bytes missing from one direction of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Which side sent the missing bytes.
    pub from: Side,
    /// Offset of the first missing byte in that side's stream (0 = first payload byte).
    pub offset: u64,
    /// Number of missing bytes.
    pub len: u64,
}

/// One request and the response to it.
///
/// Times are capture times of the segments that carried the bytes, each
/// byte timed by the first segment that carried it (retransmissions do not
/// move it). A message is *complete* at the time of its latest-captured byte:
/// normally the segment carrying its last byte, later when a hole in it was
/// filled by a retransmission.
///
/// How messages are cut depends on the connection's `framing`: with `line`
/// and `length`, request *i* pairs with response *i* (pipelining); a server
/// message sent while no request is waiting (a greeting) gets an exchange of
/// its own with `request_bytes` 0, an empty request preview, `request_time`
/// equal to its first byte's time and no latency. With `raw` (turn-taking),
/// the request is everything the client sent until the server sent data, the
/// response everything the server sent until the client spoke again.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Size of the request payload in bytes (framing overhead excluded),
    /// including bytes that were not captured when the framing tells them.
    pub request_bytes: u64,
    /// Size of the response payload in bytes; 0 when no response was seen.
    pub response_bytes: u64,
    /// Printable preview of the request (non-printable bytes escaped, cut with `…`).
    pub request_preview: String,
    /// Printable preview of the response.
    pub response_preview: String,
    /// Time the request was complete (its last byte captured).
    pub request_time: Timestamp,
    /// Time the first byte of the response was captured; `null` without response.
    pub response_first_time: Option<Timestamp>,
    /// Time the response was complete (its last byte captured); `null` without response.
    pub response_last_time: Option<Timestamp>,
    /// `response_last_time - request_time` in microseconds (0 if the capture
    /// clock went backwards); `null` without response or without request.
    pub latency_us: Option<f64>,
    /// `response_first_time - request_time` in microseconds: time to the
    /// first byte of the response; `null` like `latency_us`.
    pub first_byte_latency_us: Option<f64>,
    /// The operation, for per-operation statistics (`GET /index.html`,
    /// `INCR`, `SELECT`); `null` unless an application protocol was read.
    pub operation: Option<String>,
    /// One line saying what the request was (`GET /index.html`, `INCR
    /// p1`); `null` unless an application protocol was read.
    pub request_summary: Option<String>,
    /// One line saying what the response was (`200 OK, 6 B body`, `:3`);
    /// `null` without response or application protocol.
    pub response_summary: Option<String>,
    /// The response reports a failure (HTTP 4xx/5xx, a Redis or SQL error,
    /// a DNS error code); always `false` for the lab's framings.
    pub error: bool,
    /// The request or the response is not whole: bytes of it were not
    /// captured (a gap; its preview shows `[N bytes missing]` there), or the
    /// stream ended in the middle of it.
    pub incomplete: bool,
}

/// A message that one `recv()` per message would have misread.
#[derive(Debug, Clone, Serialize)]
pub struct RecvPitfall {
    /// Which side sent the message(s).
    pub from: Side,
    /// What went wrong.
    pub kind: PitfallKind,
    /// Index (0-based) in that side's messages of the first message concerned.
    pub message: u64,
    /// How many messages one segment carried (`merged`) or how many segments one message took (`split`).
    pub count: u32,
}

/// How TCP segments and messages failed to line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PitfallKind {
    /// One segment carried several messages: a single `recv()` returns them as one.
    Merged,
    /// One message spanned several segments: a single `recv()` may return part of it.
    Split,
}

/// How a connection ended.
#[derive(Debug, Clone, Serialize)]
pub struct Close {
    /// The side that closed first.
    pub initiator: Side,
    /// `fin` for an orderly close, `rst` for a reset.
    pub kind: CloseKind,
    /// Every FIN and RST seen, in order.
    pub events: Vec<CloseEvent>,
}

/// Orderly close or reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseKind {
    /// A FIN: orderly close.
    Fin,
    /// A RST: the connection was aborted.
    Rst,
}

/// One FIN or RST.
#[derive(Debug, Clone, Serialize)]
pub struct CloseEvent {
    /// Who sent it.
    pub from: Side,
    /// FIN or RST.
    pub kind: CloseKind,
    /// When it was captured.
    pub time: Timestamp,
}

fn display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
