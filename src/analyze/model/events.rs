//! The TCP events of a connection, as the kinds Wireshark's `tcp.analysis`
//! flags name, and their counts. Found by [`crate::analyze::tcp_events`].

use serde::Serialize;

use super::{Side, Timestamp};

/// What happened, as the kinds Wireshark's `tcp.analysis` flags name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum TcpEventKind {
    /// Data sent again after a timeout (RTO).
    Retransmission,
    /// Data sent again after duplicate ACKs asked for it.
    FastRetransmission,
    /// Data sent again that the receiver had already acknowledged.
    SpuriousRetransmission,
    /// The SYN sent again: the handshake was retried.
    SynRetransmission,
    /// A segment that arrived after a later one.
    OutOfOrder,
    /// A pure ACK repeating the previous one: the receiver is missing data.
    DuplicateAck,
    /// The capture missed a segment before this one.
    LostSegment,
    /// An acknowledgment of data the capture never saw.
    AckedUnseen,
    /// The receiver's buffer is full: it advertises a window of 0.
    ZeroWindow,
    /// One byte sent into a zero window, to learn when it opens.
    ZeroWindowProbe,
    /// Data filled the receiver's advertised window exactly.
    WindowFull,
    /// An empty (or one-byte) segment below the next sequence number that keeps the connection alive.
    KeepAlive,
    /// A reset: the connection was aborted.
    Rst,
    /// A SYN answered by a RST: nothing listened on the port.
    ConnectionRefused,
}

impl TcpEventKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [TcpEventKind; 14] = [
        TcpEventKind::Retransmission,
        TcpEventKind::FastRetransmission,
        TcpEventKind::SpuriousRetransmission,
        TcpEventKind::SynRetransmission,
        TcpEventKind::OutOfOrder,
        TcpEventKind::DuplicateAck,
        TcpEventKind::LostSegment,
        TcpEventKind::AckedUnseen,
        TcpEventKind::ZeroWindow,
        TcpEventKind::ZeroWindowProbe,
        TcpEventKind::WindowFull,
        TcpEventKind::KeepAlive,
        TcpEventKind::Rst,
        TcpEventKind::ConnectionRefused,
    ];

    /// The JSON name (`snake_case`).
    pub fn name(self) -> &'static str {
        match self {
            TcpEventKind::Retransmission => "retransmission",
            TcpEventKind::FastRetransmission => "fast_retransmission",
            TcpEventKind::SpuriousRetransmission => "spurious_retransmission",
            TcpEventKind::SynRetransmission => "syn_retransmission",
            TcpEventKind::OutOfOrder => "out_of_order",
            TcpEventKind::DuplicateAck => "duplicate_ack",
            TcpEventKind::LostSegment => "lost_segment",
            TcpEventKind::AckedUnseen => "acked_unseen",
            TcpEventKind::ZeroWindow => "zero_window",
            TcpEventKind::ZeroWindowProbe => "zero_window_probe",
            TcpEventKind::WindowFull => "window_full",
            TcpEventKind::KeepAlive => "keep_alive",
            TcpEventKind::Rst => "rst",
            TcpEventKind::ConnectionRefused => "connection_refused",
        }
    }

    /// Words for a reader, as the ladders print them.
    pub fn describe(self) -> &'static str {
        match self {
            TcpEventKind::Retransmission => "retransmission",
            TcpEventKind::FastRetransmission => "fast retransmission",
            TcpEventKind::SpuriousRetransmission => "spurious retransmission",
            TcpEventKind::SynRetransmission => "SYN retransmitted",
            TcpEventKind::OutOfOrder => "out of order",
            TcpEventKind::DuplicateAck => "duplicate ACK",
            TcpEventKind::LostSegment => "previous segment not captured",
            TcpEventKind::AckedUnseen => "ACK of a segment never captured",
            TcpEventKind::ZeroWindow => "zero window",
            TcpEventKind::ZeroWindowProbe => "zero-window probe",
            TcpEventKind::WindowFull => "window full",
            TcpEventKind::KeepAlive => "keep-alive",
            TcpEventKind::Rst => "reset (RST)",
            TcpEventKind::ConnectionRefused => "connection refused (SYN answered by RST)",
        }
    }

    /// True for the kinds that send data again.
    pub fn is_retransmission(self) -> bool {
        matches!(
            self,
            TcpEventKind::Retransmission
                | TcpEventKind::FastRetransmission
                | TcpEventKind::SpuriousRetransmission
                | TcpEventKind::SynRetransmission
        )
    }
}

/// How many events of each kind; serialized as an object with every kind's
/// JSON name, zeros included, so consumers need not guess missing keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EventCounts(pub [u64; TcpEventKind::ALL.len()]);

impl EventCounts {
    /// Counts one more event of `kind`.
    pub fn add(&mut self, kind: TcpEventKind, n: u64) {
        self.0[kind as usize] = self.0[kind as usize].saturating_add(n);
    }

    /// The count for `kind`.
    pub fn get(&self, kind: TcpEventKind) -> u64 {
        self.0[kind as usize]
    }

    /// The kinds with a non-zero count, in report order.
    pub fn nonzero(&self) -> impl Iterator<Item = (TcpEventKind, u64)> + '_ {
        TcpEventKind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }
}

impl Serialize for EventCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(TcpEventKind::ALL.len()))?;
        for k in TcpEventKind::ALL {
            map.serialize_entry(k.name(), &self.get(k))?;
        }
        map.end()
    }
}

/// One TCP event on a connection.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, PartialEq, Serialize)]
pub struct TcpEvent {
    /// Capture time of the segment.
    pub time: Timestamp,
    /// Who sent the segment.
    pub side: Side,
    /// What it was.
    pub kind: TcpEventKind,
    /// The segment's packet number in the capture (1-based, as Wireshark's `frame.number`).
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    pub frame: u64,
    /// Sequence number relative to the sender's initial one (0 = first payload
    /// byte; the SYN is -1), or the raw number when the handshake was not captured.
    pub seq: i64,
    /// Payload bytes in the segment.
    pub len: u32,
    /// For a retransmission: microseconds since the segment was first sent.
    /// For a duplicate ACK: its number in the run (1, 2, …).
    pub detail: Option<f64>,
}
