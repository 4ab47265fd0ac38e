//! Capture file reader: pcap and pcapng from any [`std::io::Read`], one
//! packet record at a time, in a bounded buffer.
//!
//! The entry point for the analyzer is [`read_capture`] (or
//! [`read_capture_with_progress`]): it reads records with a
//! [`CaptureReader`], decodes each with [`super::decode::decode`] and hands
//! every TCP segment to a callback, counting what it skipped.
//!
//! # Formats
//! - pcap: microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magic, both
//!   byte orders, and the "modified" (Kuznetzov) little-endian variant.
//! - pcapng: several sections (each with its own byte order), several
//!   interfaces per section with their own link type, snaplen, `if_tsresol`
//!   (powers of 10 and of 2) and `if_tsoffset`; Enhanced and Simple Packet
//!   Blocks; every other block is checked and skipped.
//!
//! # Who does what
//! [`pcap`] and [`pcapng`] are the container parsers: they do no I/O, they
//! take the bytes at hand and say "a packet, this long", "a block to skip",
//! "need N bytes" or "corrupt at byte offset X". [`CaptureReader`] owns the
//! one buffer and all the reads. The `pcap-parser` crate parses the contents
//! of headers and blocks. The framing is ours, because pcap-parser's streaming
//! readers (`LegacyPcapReader`, `PcapNGReader`) do not fit untrusted input:
//! they fill their buffer with a single `read` at start (a pipe may deliver
//! fewer bytes than the file header, so `tcpdump -w - | reqresp analyze -`
//! fails at random), they ask for more data forever (or report
//! `BufferTooSmall`) when an EPB's captured length exceeds its block, they do
//! not compare the trailing length of SHBs and SPBs, they silently stop
//! parsing options that run past their block, and they read `if_tsoffset`
//! little-endian in big-endian sections. So before pcap-parser sees a record
//! our parsers have checked every length against its bound, read the whole
//! record, and compared leading and trailing block lengths.
//!
//! # Untrusted input
//! Nothing is allocated from a length field: the buffer starts at
//! [`BUFFER_SIZE`] and no record larger than that is ever buffered (blocks
//! that are skipped stream through it). A file cut short mid-record ends the
//! read normally with a warning ([`CaptureReader::truncation`]); a
//! structurally corrupt file is refused with [`ReadError::Corrupt`] naming the
//! byte offset, as libpcap does.

use std::io::{self, Read};

use pcap_parser::PcapError;

use super::model::Timestamp;
use super::segment::{RawPacket, TcpSegment};

pub mod pcap;
pub mod pcapng;
mod summary;
#[cfg(test)]
mod tests;

use pcap::PcapHeader;
use pcapng::PcapNgParser;
pub use summary::{MAX_WARNINGS, ReadSummary, SkipCounts};

/// Largest captured packet accepted (libpcap's `MAXIMUM_SNAPLEN`, 256 KiB).
pub const MAX_PACKET_LEN: u32 = 262_144;
/// Size of the read buffer: the most memory the reader ever holds.
pub const BUFFER_SIZE: usize = 1024 * 1024;
/// Bytes of input between two calls of a progress callback.
pub const PROGRESS_STEP: u64 = 1 << 20;

/// The file formats [`CaptureReader`] understands.
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

/// Reads a whole capture, calling `on_segment` for each TCP segment in file order.
///
/// Returns `Ok` with a summary (also for a file cut short mid-record, with a
/// warning); `Err` when the input is not a capture or is structurally corrupt.
pub fn read_capture<R: Read>(
    input: R,
    on_segment: impl FnMut(&TcpSegment<'_>),
) -> Result<ReadSummary, ReadError> {
    read_capture_with_progress(input, on_segment, |_| {})
}

/// [`read_capture`], also calling `on_progress` with the bytes consumed so far
/// (about every MiB, and once at the end) to drive a progress bar.
pub fn read_capture_with_progress<R: Read>(
    input: R,
    mut on_segment: impl FnMut(&TcpSegment<'_>),
    mut on_progress: impl FnMut(u64),
) -> Result<ReadSummary, ReadError> {
    let mut reader = CaptureReader::new(input)?;
    let mut summary = ReadSummary::new(reader.format());
    let mut next_progress = PROGRESS_STEP;
    loop {
        let consumed = reader.bytes_consumed();
        if consumed >= next_progress {
            on_progress(consumed);
            next_progress = consumed + PROGRESS_STEP;
        }
        let Some(packet) = reader.next_packet()? else {
            break;
        };
        if let Some(segment) = summary.decode(&packet) {
            on_segment(&segment);
        }
    }
    summary.finish(reader.truncation(), reader.bytes_consumed());
    on_progress(summary.bytes);
    Ok(summary)
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

/// A bounded read buffer over the input that knows its file offset.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner,
            buf: vec![0; BUFFER_SIZE],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes at least `n` bytes available (`n` ≤ [`BUFFER_SIZE`], checked by
    /// callers); `Ok(false)` when the input ends first.
    #[inline]
    fn fill(&mut self, n: usize) -> Result<bool, ReadError> {
        debug_assert!(n <= self.buf.len());
        if self.available() >= n {
            return Ok(true);
        }
        self.refill(n)
    }

    /// The slow part of [`fill`](Self::fill): moves the unread bytes to the
    /// front and reads more.
    #[cold]
    fn refill(&mut self, n: usize) -> Result<bool, ReadError> {
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.available() < n {
            if self.eof {
                return Ok(false);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        offset: self.offset + self.available() as u64,
                        source,
                    });
                }
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.start += n;
        self.offset += n as u64;
    }

    /// Discards `n` bytes without keeping them; `Ok(false)` when the input ends first.
    fn skip(&mut self, mut n: u64) -> Result<bool, ReadError> {
        loop {
            let take = n.min(self.available() as u64) as usize;
            self.consume(take);
            n -= take as u64;
            if n == 0 {
                return Ok(true);
            }
            self.start = 0;
            self.end = 0;
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }
}

/// What a container parser ([`pcap::PcapHeader::next_record`],
/// [`pcapng::PcapNgParser::next_block`]) found at the start of its input.
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
    /// [`pcapng::PcapNgParser::check_trailer`].
    Discard {
        /// The block's length, checked against its bounds.
        length: u32,
    },
    /// The input ends inside the record: it needs `needed` bytes from the
    /// start of the input given (at most [`pcapng::MAX_PARSED_BLOCK`]).
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

/// The parser of a file, chosen from its first bytes.
#[derive(Debug)]
enum Container {
    Pcap(PcapHeader),
    PcapNg(PcapNgParser),
}

/// Reads packet records one at a time from a pcap or pcapng stream: owns
/// the buffer and the reads; the container parsers say what the bytes are.
///
/// ```no_run
/// # fn main() -> Result<(), reqresp::analyze::reader::ReadError> {
/// use reqresp::analyze::reader::CaptureReader;
/// let mut reader = CaptureReader::new(std::io::stdin().lock())?;
/// while let Some(packet) = reader.next_packet()? {
///     println!("{} {} bytes", packet.number, packet.data.len());
/// }
/// if let Some(cut) = reader.truncation() {
///     eprintln!("warning: {cut}");
/// }
/// # Ok(()) }
/// ```
pub struct CaptureReader<R> {
    input: Input<R>,
    container: Container,
    packets: u64,
    /// Bytes of the previous record still to consume before the next read.
    pending: usize,
    truncation: Option<Truncation>,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and recognises the format.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let mut input = Input::new(input);
        input.fill(pcap::HEADER_LEN)?;
        let data = input.data();
        if data.len() < 4 {
            return Err(ReadError::TooShort { len: data.len() });
        }
        let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let container = if magic == pcapng::MAGIC {
            Container::PcapNg(PcapNgParser::new())
        } else if PcapHeader::is_magic(magic) {
            if data.len() < pcap::HEADER_LEN {
                return Err(ReadError::TooShort { len: data.len() });
            }
            let header = PcapHeader::parse(data)?;
            input.consume(pcap::HEADER_LEN);
            Container::Pcap(header)
        } else {
            let head = data[..data.len().min(16)].to_vec();
            return Err(ReadError::UnknownFormat { head });
        };
        Ok(CaptureReader {
            input,
            container,
            packets: 0,
            pending: 0,
            truncation: None,
        })
    }

    /// The file format.
    pub fn format(&self) -> CaptureFormat {
        match self.container {
            Container::Pcap(h) => CaptureFormat::Pcap {
                nanosecond: h.nanosecond,
                big_endian: h.big_endian,
            },
            Container::PcapNg(_) => CaptureFormat::PcapNg,
        }
    }

    /// Bytes of the input consumed so far (for progress reporting).
    pub fn bytes_consumed(&self) -> u64 {
        self.input.offset + self.pending as u64
    }

    /// Where the file was cut short, once [`Self::next_packet`] returned
    /// `Ok(None)` because the input ended mid-record.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// The next packet record, `Ok(None)` at the end of the input (or at a
    /// record the input cut short: see [`Self::truncation`]).
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, ReadError> {
        self.input.consume(self.pending);
        self.pending = 0;
        if self.truncation.is_some() {
            return Ok(None);
        }
        let Some(found) = self.next_found()? else {
            return Ok(None);
        };
        self.packets += 1;
        self.pending = found.record_len;
        let data = &self.input.data()[found.data_start..found.data_start + found.data_len];
        Ok(Some(RawPacket {
            number: self.packets,
            time: found.time,
            link_type: found.link_type,
            data,
            orig_len: found.orig_len,
        }))
    }

    /// Parses records until a packet, reading as the parser asks; `None`
    /// at the end of the input (or where it was cut short).
    #[inline]
    fn next_found(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            let offset = self.input.offset;
            let parsed = match &mut self.container {
                Container::Pcap(header) => header.next_record(self.input.data(), offset)?,
                Container::PcapNg(parser) => parser.next_block(self.input.data(), offset)?,
            };
            match parsed {
                Parsed::Packet(found) => return Ok(Some(found)),
                Parsed::Block { len } => self.input.consume(len),
                Parsed::Discard { length } => self.discard(length, offset)?,
                Parsed::Incomplete { needed, packet } => {
                    if !self.input.fill(needed)? {
                        if self.input.available() > 0 {
                            self.truncated(offset, packet);
                        }
                        return Ok(None);
                    }
                }
            }
            if self.truncation.is_some() {
                return Ok(None);
            }
        }
    }

    /// Streams a skipped pcapng block of `length` bytes through the buffer,
    /// then checks its trailing length.
    fn discard(&mut self, length: u32, offset: u64) -> Result<(), ReadError> {
        if !self.input.skip(u64::from(length) - 4)? || !self.input.fill(4)? {
            self.truncated(offset, false);
            return Ok(());
        }
        if let Container::PcapNg(parser) = &self.container {
            parser.check_trailer(&self.input.data()[..4], length, offset)?;
        }
        self.input.consume(4);
        Ok(())
    }

    /// Records that the input ended inside the record starting at `record_offset`.
    fn truncated(&mut self, record_offset: u64, packet_record: bool) {
        self.truncation = Some(Truncation {
            end: self.input.offset + self.input.available() as u64,
            record_offset,
            packets: self.packets,
            packet_record,
        });
    }
}

pub(super) fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let bytes = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}

pub(super) fn read_u16(bytes: &[u8], big_endian: bool) -> u16 {
    let bytes = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    }
}

/// pcap-parser's error without the input bytes its `Display` would dump.
pub(super) fn nom_message(e: pcap_parser::nom::Err<PcapError<&[u8]>>) -> String {
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
