//! The result of an analysis: connections, their handshake, exchanges and
//! teardown. This is the contract between the analyzer and the report
//! formats, so fields are only ever added, never renamed or removed. The
//! JSON report (`report::json`, documented in docs/json-schema.md) is
//! written from it by hand: the serde form of a connection is what it
//! writes for each connection, but the document around them (key order,
//! `schema_version`, `summary`) is the report's, not this module's.

use serde::Serialize;
use std::net::SocketAddr;

use crate::protocol::Framing;
use crate::protocol::app::AppProtocol;

mod events;
pub(crate) use events::{EventCounts, TcpEvent, TcpEventKind};

/// A capture time: nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// In a parked form: relative to the connection's latest packet (see
/// `parked_form`).
impl borsh::BorshSerialize for Timestamp {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        crate::analyze::parked_form::write_time(self.0, w)
    }
}

impl borsh::BorshDeserialize for Timestamp {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        crate::analyze::parked_form::read_time(r).map(Timestamp)
    }
}

impl Timestamp {
    /// Microseconds from `earlier` to `self`, as a float (0 when `earlier` is later).
    pub fn micros_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1_000.0
    }
}

/// Which end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum Side {
    /// The end that opened the connection (sent the SYN), or was judged to.
    Client,
    /// The end that accepted it.
    Server,
}

impl Side {
    /// Both sides, client first (the order of [`Side::index`]).
    pub const BOTH: [Side; 2] = [Side::Client, Side::Server];

    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// 0 for the client, 1 for the server: the index of per-side arrays.
    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    /// `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    /// What reading the packets found besides the connections.
    pub capture: CaptureSummary,
}

/// What reading the packets found besides the connections: the format,
/// the packets that were TCP, those skipped and why, a cut-short file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    /// `pcap`, `pcap-ns` (nanosecond timestamps), `pcapng` or `live`;
    /// empty when not read from a source.
    pub format: String,
    /// Packets decoded into TCP segments.
    pub tcp_segments: u64,
    /// Packets skipped, by reason.
    pub skipped: SkipCounts,
    /// The file was cut short in the middle of a record (see the warnings).
    pub truncated: bool,
    /// Time of the capture's first packet (Wireshark's `frame.time_relative`
    /// counts from it); `None` when no packet was read.
    pub first_packet_time: Option<Timestamp>,
}

/// Skipped packets by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SkipCounts {
    /// Link layer carries something else than IP (ARP, LLC, ...).
    pub not_ip: u64,
    /// IP packets that are not TCP (UDP, ICMP, ...).
    pub not_tcp: u64,
    /// IP fragments (TCP over fragmented IP is not reassembled).
    pub fragments: u64,
    /// Packets of an interface whose link type is not supported.
    pub unsupported_link: u64,
    /// Packets whose headers the snaplen cut off.
    pub cut_by_snaplen: u64,
    /// Packets with invalid headers (each named in a warning).
    pub malformed: u64,
}

impl SkipCounts {
    /// Packets skipped in all.
    pub fn total(&self) -> u64 {
        self.not_ip
            + self.not_tcp
            + self.fragments
            + self.unsupported_link
            + self.cut_by_snaplen
            + self.malformed
    }
}

/// One TCP connection, seen from the capture.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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
    /// Where the analyzer left it: closed (a FIN or RST seen), still open
    /// at the end of the capture, timed out, or evicted for memory.
    pub state: ConnState,
    /// Remarks a reader should know to trust the rest: the start was not
    /// captured and how the server side was chosen, message boundaries lost
    /// after a gap, and the like.
    pub notes: Vec<String>,
    /// TCP events (retransmissions, duplicate ACKs, zero windows, resets, …)
    /// in capture order; at most `MAX_EVENTS` are kept, later ones are
    /// only counted in `events_dropped`.
    pub events: Vec<TcpEvent>,
    /// Events found beyond `MAX_EVENTS` and not kept.
    pub events_dropped: u64,
    /// Initial round trip as the capture saw it: the client's SYN to its ACK
    /// completing the handshake (Wireshark's iRTT), in microseconds; `null`
    /// without a captured handshake. The network's share of each exchange's latency.
    pub initial_rtt_us: Option<f64>,
    /// Pure ACKs (no data, no SYN, FIN or RST) other than the handshake's
    /// ACK and the teardown's last ACK, which have their own fields. The
    /// ladders draw none of them and say how many they left out.
    #[serde(skip)]
    pub pure_acks: u64,
    /// Every pure ACK (the handshake's and the teardown's last included),
    /// kept only when [`crate::analyze::Options::keep_acks`] asks for them
    /// (`--acks`), at most `MAX_ACKS_KEPT` per connection.
    #[serde(skip)]
    pub acks: Vec<AckEvent>,
    /// The teardown's last packet: the pure ACK of the second FIN, from the
    /// side that sent the first one.
    #[serde(skip)]
    pub last_ack: Option<AckEvent>,
}

/// Most ACKs kept per connection for `--acks`; later ones are only counted.
pub(crate) const MAX_ACKS_KEPT: usize = 10_000;

/// A segment that only acknowledges: no data, no SYN, FIN or RST.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckEvent {
    /// Who sent it.
    pub from: Side,
    /// When it was captured.
    pub time: Timestamp,
    /// The acknowledgment number relative to the other side's initial
    /// sequence number, as Wireshark shows it (`None` when that is
    /// unknown, the handshake not being captured).
    pub ack: Option<u32>,
}

/// Most TCP events kept per connection: enough for any lab run, bounded for
/// a capture of a connection that retransmits for hours.
pub(crate) const MAX_EVENTS: usize = 10_000;

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
            state: ConnState::Open,
            notes: Vec::new(),
            events: Vec::new(),
            events_dropped: 0,
            initial_rtt_us: None,
            pure_acks: 0,
            acks: Vec::new(),
            last_ack: None,
        }
    }

    /// Records a FIN or RST from `from` in [`Connection::close`]: the first
    /// one sets the initiator, and any RST makes the close a reset. Callers
    /// record only the first of each kind from each side.
    pub(crate) fn record_close(&mut self, from: Side, kind: CloseKind, time: Timestamp) {
        let close = self.close.get_or_insert_with(|| Close {
            initiator: from,
            kind,
            events: Vec::new(),
        });
        if kind == CloseKind::Rst {
            close.kind = CloseKind::Rst;
        }
        close.events.push(CloseEvent { from, kind, time });
    }
}

/// The three-way handshake.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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
    /// Capture frames (Wireshark's `frame.number`) that first carried bytes
    /// of the request, in order; retransmissions are not listed.
    pub request_frames: Frames,
    /// Same for the response.
    pub response_frames: Frames,
    /// Time of the first segment from the server acknowledging the whole
    /// request (a bare ACK, or the response carrying the acknowledgment);
    /// `null` when none was captured, or without a captured handshake (the
    /// relative sequence numbers are unknown). See [`Connection::latency_split`].
    pub request_ack_time: Option<Timestamp>,
    /// Relative sequence number just past the request's last segment: the
    /// acknowledgment number that covers it (for finding `request_ack_time`).
    #[serde(skip)]
    pub request_end_seq: Option<u32>,
}

impl Exchange {
    /// An exchange with nothing in it yet, its request at `request_time`:
    /// no bytes, no previews, no response, no latency, nothing known of the
    /// application protocol. Pairing fills it in.
    pub(crate) fn blank(request_time: Timestamp) -> Self {
        Exchange {
            request_bytes: 0,
            response_bytes: 0,
            request_preview: String::new(),
            response_preview: String::new(),
            request_time,
            response_first_time: None,
            response_last_time: None,
            latency_us: None,
            first_byte_latency_us: None,
            operation: None,
            request_summary: None,
            response_summary: None,
            error: false,
            incomplete: false,
            request_frames: Frames::default(),
            response_frames: Frames::default(),
            request_ack_time: None,
            request_end_seq: None,
        }
    }
}

/// An exchange's latency split into the network's share and the server's
/// (see [`Connection::latency_split`]). The two add up to the latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySplit {
    /// The round trip between the capture point and the server, plus the
    /// time the response took to arrive after its first byte, in µs.
    pub network_us: f64,
    /// Time to first byte less that round trip: the time the server spent
    /// before answering, in µs.
    pub server_us: f64,
    /// What gave the round trip.
    pub rtt_from: RttSource,
}

/// Where an exchange's network round trip was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RttSource {
    /// The server's acknowledgment of the request.
    Ack,
    /// The handshake: the client's SYN to the server's SYN-ACK.
    Handshake,
}

impl RttSource {
    /// `ack` or `handshake`.
    pub fn name(self) -> &'static str {
        match self {
            RttSource::Ack => "ack",
            RttSource::Handshake => "handshake",
        }
    }
}

impl Connection {
    /// Splits `ex`'s latency into network and server time, from what the
    /// capture shows of the round trip between the capture point and the
    /// server: the handshake's SYN to SYN-ACK, and the request to the
    /// server's acknowledgment of it. The smaller of the two is taken (a
    /// delayed ACK only ever adds time), and never more than the time to
    /// the response's first byte. Server time is the time to first byte less
    /// that round trip; network time is the rest of the latency (the round
    /// trip and the response's own transfer). `None` without a paired
    /// response, or when neither the handshake nor the ACK was captured.
    pub fn latency_split(&self, ex: &Exchange) -> Option<LatencySplit> {
        let latency = ex.latency_us?;
        let first_byte = ex.first_byte_latency_us?;
        let handshake = self.handshake.as_ref().and_then(|h| h.rtt_us);
        let ack = ex.request_ack_time.map(|t| t.micros_since(ex.request_time));
        let (rtt, rtt_from) = match (ack, handshake) {
            (Some(a), Some(h)) if h < a => (h, RttSource::Handshake),
            (Some(a), _) => (a, RttSource::Ack),
            (None, Some(h)) => (h, RttSource::Handshake),
            (None, None) => return None,
        };
        let server_us = (first_byte - rtt.min(first_byte)).max(0.0);
        Some(LatencySplit {
            network_us: (latency - server_us).max(0.0),
            server_us,
            rtt_from,
        })
    }
}

/// One packet that carried bytes of a message, with the fields Wireshark
/// shows for it (`frame.number`, `frame.time`, `tcp.flags`, `tcp.seq`,
/// `tcp.ack`, `tcp.len`).
#[derive(
    borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy, PartialEq, Eq, Default,
)]
pub struct PacketRecord {
    /// Wireshark's frame number (1-based).
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
    /// The TCP header's 12 flag bits, as Wireshark's `tcp.flags`
    /// (0x018 for PSH+ACK).
    pub flags: u16,
    /// Sequence number relative to the sender's initial sequence number,
    /// as Wireshark shows it (the SYN is 0, the first data byte 1); `None`
    /// when the handshake was not captured.
    pub seq: Option<u32>,
    /// Acknowledgment number relative to the receiver's initial sequence
    /// number; `None` without the ACK flag or a captured handshake.
    pub ack: Option<u32>,
    /// Payload bytes on the wire (`tcp.len`).
    pub len: u32,
}

impl PacketRecord {
    /// A record that knows only the packet's number and time (for bytes
    /// given up on, which no packet carried).
    pub fn at(frame: u64, time: Timestamp) -> Self {
        PacketRecord {
            frame,
            time,
            ..Self::default()
        }
    }
}

/// Frame numbers that carried a message: the first [`Frames::MAX`] distinct
/// ones, in order. Serialized as a JSON array of integers. A message in one
/// segment (nearly all) allocates nothing.
///
/// With packet records asked for ([`Frames::push_packet`] with `keep`),
/// it also holds the first [`Frames::MAX`] packets' [`PacketRecord`]s and
/// counts the distinct packets beyond them.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Frames {
    /// The first frame, 0 for none (frame numbers start at 1).
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    first: u64,
    /// The following ones, at most `MAX - 1`.
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frames",
        deserialize_with = "crate::analyze::parked_form::read_frames"
    )]
    rest: Vec<u64>,
    /// The packets' records, when kept (boxed: one pointer when not).
    packets: Option<Box<Packets>>,
}

/// Packet records of one message: at most [`Frames::MAX`], and how many
/// distinct packets carried it in all.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Default, PartialEq, Eq)]
struct Packets {
    list: Vec<PacketRecord>,
    total: u64,
    last: u64,
}

impl Frames {
    /// Most frames listed per message; a message that took more segments
    /// lists its first `MAX` (its `split` pitfall counts them all).
    pub const MAX: usize = 64;

    /// Adds frame `n` (1-based) unless it is the last one added or the
    /// list is full.
    pub fn push(&mut self, n: u64) {
        if self.first == 0 {
            self.first = n;
        } else if self.rest.last().copied().unwrap_or(self.first) != n
            && self.rest.len() < Self::MAX - 1
        {
            self.rest.push(n);
        }
    }

    /// Adds the packet's frame number, and with `keep` its record too (the
    /// first [`Frames::MAX`] distinct packets; later ones only counted).
    pub fn push_packet(&mut self, p: &PacketRecord, keep: bool) {
        self.push(p.frame);
        if !keep {
            return;
        }
        let k = self.packets.get_or_insert_with(Box::default);
        if k.total > 0 && k.last == p.frame {
            return;
        }
        k.total += 1;
        k.last = p.frame;
        if k.list.len() < Self::MAX {
            if k.list.capacity() == 0 {
                // Most messages take one packet: no spare room for three more.
                k.list.reserve_exact(1);
            }
            k.list.push(*p);
        }
    }

    /// Gives back the spare room of its lists (an idle connection's
    /// finished messages, under memory pressure).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.rest.shrink_to_fit();
        if let Some(k) = self.packets.as_deref_mut() {
            k.list.shrink_to_fit();
        }
    }

    /// Bytes its lists hold on the heap, as allocated.
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rest.capacity() * size_of::<u64>()
            + self.packets.as_deref().map_or(0, |k| {
                size_of::<Packets>() + k.list.capacity() * size_of::<PacketRecord>()
            })
    }

    /// Allocations its lists hold.
    pub(crate) fn allocations(&self) -> usize {
        usize::from(self.rest.capacity() > 0)
            + self
                .packets
                .as_deref()
                .map_or(0, |k| 1 + usize::from(k.list.capacity() > 0))
    }

    /// The packet records kept (empty unless asked for).
    pub fn packets(&self) -> &[PacketRecord] {
        self.packets.as_deref().map_or(&[], |k| &k.list)
    }

    /// Distinct packets that carried the message beyond those kept.
    pub fn packets_not_kept(&self) -> u64 {
        self.packets
            .as_deref()
            .map_or(0, |k| k.total - k.list.len() as u64)
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (self.first != 0)
            .then_some(self.first)
            .into_iter()
            .chain(self.rest.iter().copied())
    }

    /// Number of frames listed.
    pub fn len(&self) -> usize {
        usize::from(self.first != 0) + self.rest.len()
    }

    /// No frame listed (a message whose bytes were all missing, or no message).
    pub fn is_empty(&self) -> bool {
        self.first == 0
    }

    /// Appends `other`'s frames and records (a response read in parts).
    pub fn extend(&mut self, other: &Frames) {
        match other.packets.as_deref() {
            Some(k) => {
                for p in &k.list {
                    self.push_packet(p, true);
                }
                if let Some(mine) = self.packets.as_deref_mut() {
                    mine.total += k.total - k.list.len() as u64;
                }
            }
            None => {
                for n in other.iter() {
                    self.push(n);
                }
            }
        }
    }
}

impl Serialize for Frames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A message that one `recv()` per message would have misread.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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
#[derive(
    borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy, PartialEq, Eq, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PitfallKind {
    /// One segment carried several messages: a single `recv()` returns them as one.
    Merged,
    /// One message spanned several segments: a single `recv()` may return part of it.
    Split,
}

/// Where the analyzer left a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum ConnState {
    /// A FIN or RST was seen (see `close`).
    Closed,
    /// Still open at the end of the capture.
    #[default]
    Open,
    /// No packet for longer than the inactivity timeout (capture time):
    /// reported with what was seen.
    TimedOut,
    /// Evicted while idle to keep the analyzer within its memory budget
    /// (`--memcap`): reported with what was seen until then.
    Evicted,
}

impl ConnState {
    /// `closed`, `open`, `timed_out` or `evicted`, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Closed => "closed",
            ConnState::Open => "open",
            ConnState::TimedOut => "timed_out",
            ConnState::Evicted => "evicted",
        }
    }
}

/// How a connection ended.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
pub struct Close {
    /// The side that closed first.
    pub initiator: Side,
    /// `fin` for an orderly close, `rst` for a reset.
    pub kind: CloseKind,
    /// The first FIN and the first RST from each side, in capture order
    /// (a retransmitted FIN is not listed again).
    pub events: Vec<CloseEvent>,
}

/// Orderly close or reset.
#[derive(
    borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy, PartialEq, Eq, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CloseKind {
    /// A FIN: orderly close.
    Fin,
    /// A RST: the connection was aborted.
    Rst,
}

/// One FIN or RST.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_the_first_distinct_numbers_up_to_the_cap() {
        let mut f = Frames::default();
        assert!(f.is_empty());
        assert_eq!(serde_json::to_string(&f).expect("json"), "[]");
        for n in [4, 4, 6, 6, 9] {
            f.push(n);
        }
        assert_eq!(f.iter().collect::<Vec<_>>(), [4, 6, 9]);
        assert_eq!(serde_json::to_string(&f).expect("json"), "[4,6,9]");
        for n in 10..1000 {
            f.push(n);
        }
        assert_eq!(f.len(), Frames::MAX);
        assert_eq!(f.iter().last(), Some(10 + Frames::MAX as u64 - 4));
    }
}
