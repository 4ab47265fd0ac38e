//! What the reader and its container parsers share: the formats, the
//! errors (each naming its byte offset), what a parser found
//! ([`Parsed`], [`Found`]), where a file was cut short, and byte-order
//! helpers. Re-exported by [`super`].

use std::io;

use pcap_parser::PcapError;

use crate::analyze::model::Timestamp;

/// Largest captured packet accepted (libpcap's `MAXIMUM_SNAPLEN`, 256 KiB).
pub const MAX_PACKET_LEN: u32 = 262_144;

/// The file formats [`super::CaptureReader`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps have nanosecond resolution (magic `a1b23c4d`).
        nanosecond: bool,
        /// The file was written big-endian.
        big_endian: bool,
    },
    /// pcapng (byte order may change from section to section).
    PcapNg,
    /// Packets from a live capture (libpcap), not from a file.
    Live,
}

/// Why a capture could not be read. Every variant says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input could not be read at all (I/O error).
    #[error("reading the capture failed at byte offset {offset}: {source}")]
    Io {
        /// Bytes successfully consumed before the error.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// The input is empty or shorter than a file header.
    #[error(
        "this is not a capture file: the input has only {len} bytes, fewer than a pcap or \
         pcapng header; was the capture interrupted before it wrote anything?"
    )]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first four bytes are no pcap or pcapng magic number.
    #[error(
        "this is not a capture file: it starts with {} ({}), while a pcap file starts with \
         a1b2c3d4 or a1b23c4d (either byte order) and a pcapng file with 0a0d0d0a; give a \
         capture written by tcpdump, tshark, Wireshark or reqresp capture",
        hex(head),
        printable(head)
    )]
    UnknownFormat {
        /// The first bytes of the input (up to 16).
        head: Vec<u8>,
    },
    /// A live capture failed (see [`crate::analyze::source::LiveSource`]).
    #[error("{what}: {source}")]
    Live {
        /// What was being done.
        what: String,
        /// libpcap's error.
        source: ::pcap::Error,
    },
    /// The file is structurally broken; nothing after `offset` can be trusted.
    #[error("corrupt {format} at byte offset {offset}: {what}")]
    Corrupt {
        /// "pcap" or "pcapng".
        format: &'static str,
        /// Byte offset of the record (or field) at fault.
        offset: u64,
        /// What is wrong.
        what: Corruption,
    },
}

/// Bytes as hex pairs separated by spaces: `47 45 54 20`.
fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

/// Bytes as text in quotes, each non-printable ASCII byte as `.`:
/// `"GET / HTTP/1.1.."`.
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{text:?}")
}

/// The structural faults that make a capture file unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// A record or block claims more bytes than any capture can hold.
    #[error("{record} claims {claimed} bytes, more than the {limit}-byte limit")]
    TooLong {
        /// "record", "block", "packet"...
        record: &'static str,
        /// The claimed length.
        claimed: u64,
        /// The bound it exceeds.
        limit: u64,
    },
    /// A packet claims more captured bytes than the snaplen of its file or interface.
    #[error("record claims {claimed} bytes, more than the snaplen of {snaplen}")]
    OverSnaplen {
        /// The claimed captured length.
        claimed: u32,
        /// The snaplen in force.
        snaplen: u32,
    },
    /// A pcapng block's trailing length differs from its leading one.
    #[error("block length {leading} at the start disagrees with {trailing} at the end")]
    LengthMismatch {
        /// Length at the start of the block.
        leading: u32,
        /// Length at the end of the block.
        trailing: u32,
    },
    /// A pcapng block length that is not a multiple of 4 or is below its minimum.
    #[error(
        "block type {block_type:#x} has invalid length {length} (must be a multiple of 4 and at least {minimum})"
    )]
    BadBlockLength {
        /// Block type.
        block_type: u32,
        /// The claimed length.
        length: u32,
        /// Minimum for this block type.
        minimum: u32,
    },
    /// An option's value runs past the end of its block.
    #[error("option {code} of {length} bytes runs past the end of its block ({room} bytes left)")]
    OptionPastBlock {
        /// Option code.
        code: u16,
        /// Claimed value length.
        length: u16,
        /// Bytes left in the block after the option header.
        room: usize,
    },
    /// A packet block's captured length does not fit its block.
    #[error("packet block claims {caplen} captured bytes but the block has room for {room}")]
    CaplenPastBlock {
        /// The claimed captured length.
        caplen: u32,
        /// Room in the block.
        room: u32,
    },
    /// A packet refers to an interface no IDB described.
    #[error(
        "packet on interface {interface}, but this section describes only {known} interface(s)"
    )]
    UnknownInterface {
        /// Interface id in the packet.
        interface: u32,
        /// Interfaces described so far in the section.
        known: usize,
    },
    /// Too many interfaces in a section.
    #[error("more than {0} interfaces in one section")]
    TooManyInterfaces(usize),
    /// A version this reader (and libpcap) does not know.
    #[error("unsupported {0} version {1}.{2}")]
    Version(&'static str, u16, u16),
    /// The pcapng byte-order magic is neither 1a2b3c4d nor its swap.
    #[error("section header has byte-order magic {0:#010x}, expected 0x1a2b3c4d")]
    ByteOrder(u32),
    /// The first block of a pcapng file is not a Section Header Block.
    #[error("block type {0:#x} before any Section Header Block")]
    NoSection(u32),
    /// An `if_tsresol` or `if_tsoffset` option with a bad value or size.
    #[error("interface option {0}")]
    BadInterfaceOption(String),
    /// pcap-parser refused a record that passed the framing checks.
    #[error("{0}")]
    Parser(String),
}

/// Where a capture file was cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Bytes in the input (where it ends).
    pub end: u64,
    /// Offset of the record or block that is incomplete.
    pub record_offset: u64,
    /// Whole packets read before it.
    pub packets: u64,
    /// The incomplete record was a packet (not another pcapng block).
    pub packet_record: bool,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.packet_record {
            "the last packet"
        } else {
            "the last block"
        };
        write!(
            f,
            "capture file truncated at byte offset {}: {what} (record at byte offset {}) is incomplete; \
             the {} packets before it were read",
            self.end, self.record_offset, self.packets
        )
    }
}

/// What a container parser (`super::pcap::PcapHeader::next_record`,
/// `super::pcapng::PcapNgParser::next_block`) found at the start of its input.
#[derive(Debug)]
pub enum Parsed {
    /// A packet record, all there.
    Packet(Found),
    /// A pcapng block that carries no packet, read whole: consume `len` bytes.
    Block {
        /// Bytes of the block.
        len: usize,
    },
    /// A pcapng block to discard unread (it may be larger than any buffer):
    /// skip `length - 4` bytes, then check the last four with
    /// `super::pcapng::PcapNgParser::check_trailer`.
    Discard {
        /// The block's length, checked against its bounds.
        length: u32,
    },
    /// The input ends inside the record: it needs `needed` bytes from the
    /// start of the input given (at most `super::pcapng::MAX_PARSED_BLOCK`).
    Incomplete {
        /// Bytes the record (or its header) needs in all.
        needed: usize,
        /// The record is a packet (for the truncation warning).
        packet: bool,
    },
}

/// Where a packet found by a parser lies in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Bytes of the whole record, consumed before the next one.
    pub record_len: usize,
    /// Offset of the captured bytes in the record.
    pub data_start: usize,
    /// Number of captured bytes.
    pub data_len: usize,
    /// Capture time.
    pub time: Timestamp,
    /// Link type of the packet's interface.
    pub link_type: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

pub(crate) fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let bytes = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}

pub(crate) fn read_u16(bytes: &[u8], big_endian: bool) -> u16 {
    let bytes = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    }
}

/// pcap-parser's error without the input bytes its `Display` would dump.
pub(crate) fn nom_message(e: pcap_parser::nom::Err<PcapError<&[u8]>>) -> String {
    use pcap_parser::nom::Err;
    match e {
        Err::Incomplete(_) => "pcap-parser: the record ends early".to_string(),
        Err::Error(PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind))
        | Err::Failure(PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind)) => {
            format!("pcap-parser rejected the record ({kind:?})")
        }
        Err::Error(e) | Err::Failure(e) => format!("pcap-parser: {e}"),
    }
}
