//! What the analyzer hands out as a capture goes: a connection opened, an
//! exchange settled, a connection over. See [`super::pipeline`] for when
//! each comes and in what order.

use std::net::SocketAddr;

use super::model::{Connection, Exchange, LatencySplit, Side, TcpEvent, Timestamp};
use super::segment::{TcpFlags, TcpSegment};

/// Payload bytes a [`SegmentSeen`] carries: enough for a live view to show
/// what the packet held, without an allocation per packet.
pub const SEGMENT_HEAD: usize = 48;

/// One segment of a connection as the analyzer took it (only with packet
/// events on): what a live view needs to draw the handshake, closes and
/// each packet's size as they happen.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSeen {
    /// Id of its connection.
    pub connection: u32,
    /// Who sent it.
    pub from: Side,
    /// Packet number in the capture.
    pub number: u64,
    /// Capture time.
    pub time: Timestamp,
    /// Its control flags.
    pub flags: TcpFlags,
    /// Payload length on the wire.
    pub payload_len: u32,
    /// The first captured payload bytes (`head_len` of them).
    pub head: [u8; SEGMENT_HEAD],
    /// How many bytes of `head` are payload.
    pub head_len: u8,
}

impl SegmentSeen {
    /// What a live view is told of `seg`, a segment of connection
    /// `connection` sent by `from`: its header fields and the first
    /// [`SEGMENT_HEAD`] bytes of its payload.
    pub(crate) fn new(connection: u32, from: Side, seg: &TcpSegment<'_>) -> SegmentSeen {
        let mut head = [0; SEGMENT_HEAD];
        let n = seg.payload.len().min(SEGMENT_HEAD);
        head[..n].copy_from_slice(&seg.payload[..n]);
        SegmentSeen {
            connection,
            from,
            number: seg.number,
            time: seg.time,
            flags: seg.flags,
            payload_len: seg.payload_len,
            head,
            head_len: n as u8,
        }
    }

    /// The payload bytes kept (at most [`SEGMENT_HEAD`]).
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }
}

/// One step of an analysis as it happens.
///
/// The exchange and the connection are boxed: a live view takes an event
/// per packet, and each moves through queues and calls by value, so the
/// enum is kept small (a [`SegmentSeen`] and a few words).
#[derive(Debug, Clone)]
pub enum Event {
    /// A connection's first packet was seen (only with exchange events on).
    Opened {
        /// The connection's id, as in [`Connection::id`].
        id: u32,
        /// Client address (the end that sent the SYN, or was judged to).
        client: SocketAddr,
        /// Server address.
        server: SocketAddr,
        /// Time of the first packet.
        time: Timestamp,
    },
    /// An exchange is settled while its connection is still open: its
    /// response is complete (or it is a server message without request) and
    /// nothing later changes it (only with exchange events on).
    Exchange {
        /// Id of its connection.
        connection: u32,
        /// Its index in the connection's [`Connection::exchanges`].
        index: usize,
        /// The exchange, as it will be in the connection.
        exchange: Box<Exchange>,
        /// Its latency split into network and server time, as its
        /// connection splits it ([`Connection::latency_split`]).
        split: Option<LatencySplit>,
    },
    /// A TCP event (retransmission, RST, zero window, …) as it is found,
    /// while its connection is open (only with exchange events on). It is
    /// also in its connection's [`Connection::events`] at the close.
    Tcp {
        /// Id of its connection.
        connection: u32,
        /// The event.
        event: TcpEvent,
    },
    /// A segment of a connection not yet handed out (only with packet
    /// events on), before the events it caused.
    Segment(SegmentSeen),
    /// A connection is over (or the capture ended): the whole record, every
    /// exchange included, also those already handed out one by one.
    Closed(Box<Connection>),
    /// Every event of the packets read so far has been handed out: the
    /// pipeline says so after each batch (live, at most 20 ms of capture
    /// time) and at the end, when exchange events are on. A sink that
    /// buffers its output flushes here, so that it writes once per batch
    /// rather than once per event, and never holds an event back.
    BatchEnd,
}
