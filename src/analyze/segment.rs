//! A decoded TCP segment: the unit the capture reader hands to the flow
//! tracker. Borrowed from the reader's buffer, so decoding allocates nothing.

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
