//! The two units of the pipeline: a [`RawPacket`] as a packet source
//! hands it out (a capture record, borrowed from the reader's buffer) and
//! the [`TcpSegment`] that [`super::decode`] makes of it for the flow
//! tracker (borrowing the same bytes, so decoding allocates nothing).

use std::net::SocketAddr;

use super::model::Timestamp;

/// TCP control flags that matter for connection tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// SYN: opens a connection.
    pub syn: bool,
    /// ACK: the acknowledgment number is valid.
    pub ack: bool,
    /// FIN: the sender has no more data.
    pub fin: bool,
    /// RST: the connection is aborted.
    pub rst: bool,
    /// PSH: the sender pushed this data.
    pub psh: bool,
    /// All 12 flag bits of the header as Wireshark's `tcp.flags` shows them
    /// (URG, ECE, CWR and AE included).
    pub bits: u16,
}

impl TcpFlags {
    /// The flags of a header whose 12 flag bits are `bits` (bytes 12 and
    /// 13 of the TCP header, the data offset masked off).
    pub fn from_bits(bits: u16) -> Self {
        let bits = bits & 0x0fff;
        TcpFlags {
            syn: bits & 0x02 != 0,
            ack: bits & 0x10 != 0,
            fin: bits & 0x01 != 0,
            rst: bits & 0x04 != 0,
            psh: bits & 0x08 != 0,
            bits,
        }
    }
}

/// One TCP segment as captured.
#[derive(Debug, Clone)]
pub struct TcpSegment<'a> {
    /// 1-based number of the packet in the capture file (as Wireshark numbers them).
    pub number: u64,
    /// Capture time.
    pub time: Timestamp,
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when `flags.ack`).
    pub ack: u32,
    /// Control flags.
    pub flags: TcpFlags,
    /// The payload bytes that were captured (may be shorter than `payload_len`
    /// when the snaplen cut the packet).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP header's length field.
    pub payload_len: u32,
    /// The advertised receive window as on the wire (not scaled).
    pub window: u16,
    /// The window scale option's shift, on a SYN that carries one.
    pub window_scale: Option<u8>,
}

/// One packet as stored in the capture (or delivered by a live capture),
/// borrowed from the source's buffer.
#[derive(Debug, Clone)]
pub struct RawPacket<'a> {
    /// 1-based packet number, as Wireshark numbers them.
    pub number: u64,
    /// Capture time.
    pub time: Timestamp,
    /// Link-layer header type (`LINKTYPE_*` value, e.g. 1 for Ethernet).
    pub link_type: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// Length of the packet on the wire (may exceed `data.len()` when the
    /// snaplen cut it).
    pub orig_len: u32,
}
