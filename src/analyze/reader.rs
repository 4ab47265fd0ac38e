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
//! The `pcap-parser` crate parses the contents of headers and blocks. This
//! module owns the buffer and the framing, because pcap-parser's streaming
//! readers (`LegacyPcapReader`, `PcapNGReader`) do not fit untrusted input:
//! they fill their buffer with a single `read` at start (a pipe may deliver
//! fewer bytes than the file header, so `tcpdump -w - | reqresp analyze -`
//! fails at random), they ask for more data forever (or report
//! `BufferTooSmall`) when an EPB's captured length exceeds its block, they do
//! not compare the trailing length of SHBs and SPBs, they silently stop
//! parsing options that run past their block, and they read `if_tsoffset`
//! little-endian in big-endian sections. So before pcap-parser sees a record
//! this module has checked every length against its bound, read the whole
//! record, and compared leading and trailing block lengths.
//!
//! # Untrusted input
//! Nothing is allocated from a length field: the buffer starts at
//! [`BUFFER_SIZE`] and no record larger than that is ever buffered (blocks
//! that are skipped stream through it). A file cut short mid-record ends the
//! read normally with a warning ([`CaptureReader::truncation`]); a
//! structurally corrupt file is refused with [`ReadError::Corrupt`] naming the
//! byte offset, as libpcap does.

use std::io::{self, IsTerminal, Read};
use std::ops::ControlFlow;

use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};
use pcap_parser::{PcapError, parse_pcap_frame_modified};

use super::decode::{Skip, decode};
use super::model::Timestamp;
use super::segment::TcpSegment;

/// Largest captured packet accepted (libpcap's `MAXIMUM_SNAPLEN`, 256 KiB).
pub const MAX_PACKET_LEN: u32 = 262_144;
/// Room allowed for the options of a packet block (libpcap allows 128 KiB).
const MAX_OPTIONS_LEN: u32 = 131_072;
/// Largest pcapng block that is parsed (and so buffered): an EPB with a
/// [`MAX_PACKET_LEN`] packet and [`MAX_OPTIONS_LEN`] of options.
const MAX_PARSED_BLOCK: u32 = 32 + MAX_PACKET_LEN + MAX_OPTIONS_LEN;
/// Largest pcapng block that is skipped (streamed, never buffered whole);
/// libpcap's initial limit for any block.
const MAX_SKIPPED_BLOCK: u32 = 16 * 1024 * 1024;
/// Interfaces allowed in one pcapng section (each costs a few bytes of state;
/// real captures have a handful).
const MAX_INTERFACES: usize = 65_536;
/// Size of the read buffer: the most memory the reader ever holds.
pub const BUFFER_SIZE: usize = 1024 * 1024;
/// Warnings kept in [`ReadSummary::warnings`]; later ones are only counted.
pub const MAX_WARNINGS: usize = 100;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_SPB: u32 = 0x0000_0003;
const PCAPNG_EPB: u32 = 0x0000_0006;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

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
        "not a capture file: the input has only {len} bytes, fewer than a pcap or pcapng header; \
         was the capture interrupted before it wrote anything?"
    )]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first four bytes are no pcap or pcapng magic number.
    #[error(
        "not a pcap or pcapng file: it starts with {magic:02x?}, expected a pcap magic \
         (a1b2c3d4 or a1b23c4d, either byte order) or the pcapng one (0a0d0d0a); \
         give a capture written by tcpdump, tshark, Wireshark or reqresp capture"
    )]
    UnknownFormat {
        /// The first bytes of the input.
        magic: [u8; 4],
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

/// One packet record as stored in the capture, borrowed from the reader's buffer.
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

/// What was read from a capture, besides the segments themselves.
#[derive(Debug, Clone)]
pub struct ReadSummary {
    /// The file format.
    pub format: CaptureFormat,
    /// Packet records read (every link type, TCP or not).
    pub packets: u64,
    /// Packets decoded into TCP segments and handed to the callback.
    pub tcp_segments: u64,
    /// Packets skipped, by reason.
    pub skipped: SkipCounts,
    /// Bytes of the input consumed.
    pub bytes: u64,
    /// True when the file was cut short mid-record (see the warnings).
    pub truncated: bool,
    /// The first [`MAX_WARNINGS`] warnings, in order.
    pub warnings: Vec<String>,
    /// How many warnings there were in all (may exceed `warnings.len()`).
    pub warnings_total: u64,
}

/// Skipped packets by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

impl ReadSummary {
    fn new(format: CaptureFormat) -> Self {
        ReadSummary {
            format,
            packets: 0,
            tcp_segments: 0,
            skipped: SkipCounts::default(),
            bytes: 0,
            truncated: false,
            warnings: Vec::new(),
            warnings_total: 0,
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message);
        }
    }

    /// The warnings, with a last line counting those not kept, ready for a report.
    pub fn into_warnings(self) -> Vec<String> {
        let mut warnings = self.warnings;
        let dropped = self.warnings_total - warnings.len() as u64;
        if dropped > 0 {
            warnings.push(format!("... and {dropped} more warnings not shown"));
        }
        warnings
    }
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
    on_progress: impl FnMut(u64),
) -> Result<ReadSummary, ReadError> {
    read_capture_until(
        input,
        |segment| {
            on_segment(segment);
            ControlFlow::Continue(())
        },
        on_progress,
    )
}

/// [`read_capture_with_progress`], stopping early when `on_segment` says
/// [`ControlFlow::Break`] (its consumer cannot go on, e.g. the output was
/// closed); the summary then covers the packets read so far.
pub fn read_capture_until<R: Read>(
    input: R,
    mut on_segment: impl FnMut(&TcpSegment<'_>) -> ControlFlow<()>,
    mut on_progress: impl FnMut(u64),
) -> Result<ReadSummary, ReadError> {
    const PROGRESS_STEP: u64 = 1 << 20;
    let mut reader = CaptureReader::new(input)?;
    let mut summary = ReadSummary::new(reader.format());
    let mut unsupported_links: Vec<u32> = Vec::new();
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
        summary.packets += 1;
        let number = packet.number;
        let skip = match decode(&packet) {
            Ok(segment) => {
                summary.tcp_segments += 1;
                if on_segment(&segment).is_break() {
                    break;
                }
                continue;
            }
            Err(skip) => skip,
        };
        let counts = &mut summary.skipped;
        match skip {
            Skip::NotIp => counts.not_ip += 1,
            Skip::NotTcp => counts.not_tcp += 1,
            Skip::Fragment => counts.fragments += 1,
            Skip::UnsupportedLink(link) => {
                counts.unsupported_link += 1;
                if !unsupported_links.contains(&link) && unsupported_links.len() < 16 {
                    unsupported_links.push(link);
                    summary.warn(format!(
                        "packet {number}: {skip}; packets with this link type are skipped"
                    ));
                }
            }
            Skip::CutBySnaplen(_) => {
                counts.cut_by_snaplen += 1;
                summary.warn(format!("packet {number} skipped: {skip}"));
            }
            Skip::Malformed(_) => {
                counts.malformed += 1;
                summary.warn(format!("packet {number} skipped: {skip}"));
            }
        }
    }
    if summary.skipped.fragments > 0 {
        summary.warn(format!(
            "{} IP fragments were skipped: IP reassembly is not supported, \
             so data they carry is missing from the streams",
            summary.skipped.fragments
        ));
    }
    if let Some(warning) = reader.truncation() {
        summary.truncated = true;
        summary.warn(warning.to_string());
    }
    summary.bytes = reader.bytes_consumed();
    on_progress(summary.bytes);
    Ok(summary)
}

/// A progress bar over `total` input bytes, or `None` when stderr is not a
/// terminal or the size is unknown (a pipe): progress output is for people.
pub fn progress_bar(total: Option<u64>) -> Option<indicatif::ProgressBar> {
    let total = total?;
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} reading capture {bytes}/{total_bytes} [{wide_bar}] {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
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

/// One pcapng interface (from an Interface Description Block).
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`).
    units_per_sec: u64,
    /// Seconds to add to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

#[derive(Debug)]
enum State {
    Pcap {
        big_endian: bool,
        nanosecond: bool,
        modified: bool,
        snaplen: u32,
        link_type: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Reads packet records one at a time from a pcap or pcapng stream.
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
    state: State,
    packets: u64,
    /// Bytes of the previous record still to consume before the next read.
    pending: usize,
    truncation: Option<Truncation>,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and recognises the format.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let mut input = Input::new(input);
        input.fill(24)?;
        let data = input.data();
        if data.len() < 4 {
            return Err(ReadError::TooShort { len: data.len() });
        }
        let magic = [data[0], data[1], data[2], data[3]];
        let state = match u32::from_le_bytes(magic) {
            PCAPNG_SHB => State::PcapNg {
                // Set by the Section Header Block, read as the first block.
                big_endian: false,
                interfaces: Vec::new(),
            },
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                if data.len() < 24 {
                    return Err(ReadError::TooShort { len: data.len() });
                }
                let corrupt = |what| ReadError::Corrupt {
                    format: "pcap",
                    offset: 0,
                    what,
                };
                let (_, header) = pcap_parser::parse_pcap_header(&data[..24])
                    .map_err(|e| corrupt(Corruption::Parser(nom_message(e))))?;
                if header.version_major != 2 {
                    return Err(corrupt(Corruption::Version(
                        "pcap",
                        header.version_major,
                        header.version_minor,
                    )));
                }
                let state = State::Pcap {
                    big_endian: header.is_bigendian(),
                    nanosecond: header.is_nanosecond_precision(),
                    modified: header.is_modified_format(),
                    snaplen: header.snaplen,
                    // The upper bits carry FCS information (LT_FCS_DATA); the
                    // link type proper is the low 28 bits (libpcap's LT_LINKTYPE).
                    link_type: (header.network.0 as u32) & 0x03FF_FFFF,
                };
                input.consume(24);
                state
            }
            _ => return Err(ReadError::UnknownFormat { magic }),
        };
        Ok(CaptureReader {
            input,
            state,
            packets: 0,
            pending: 0,
            truncation: None,
        })
    }

    /// The file format.
    pub fn format(&self) -> CaptureFormat {
        match self.state {
            State::Pcap {
                big_endian,
                nanosecond,
                ..
            } => CaptureFormat::Pcap {
                nanosecond,
                big_endian,
            },
            State::PcapNg { .. } => CaptureFormat::PcapNg,
        }
    }

    /// Bytes of the input consumed so far (for progress reporting).
    pub fn bytes_consumed(&self) -> u64 {
        self.input.offset + self.pending as u64
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Where the file was cut short, once [`Self::next_packet`] returned
    /// `Ok(None)` because the input ended mid-record.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// The next packet record, `Ok(None)` at the end of the input (or at a
    /// record the input cut short: see [`Self::truncation`]).
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, ReadError> {
        self.input.consume(self.pending);
        self.pending = 0;
        if self.truncation.is_some() {
            return Ok(None);
        }
        let found = match self.state {
            State::Pcap { .. } => self.next_pcap()?,
            State::PcapNg { .. } => self.next_pcapng()?,
        };
        let Some(found) = found else {
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

    /// Records that the input ended inside the record starting at `record_offset`.
    fn truncated(
        &mut self,
        record_offset: u64,
        packet_record: bool,
    ) -> Result<Option<Found>, ReadError> {
        self.truncation = Some(Truncation {
            end: self.input.offset + self.input.available() as u64,
            record_offset,
            packets: self.packets,
            packet_record,
        });
        Ok(None)
    }

    fn next_pcap(&mut self) -> Result<Option<Found>, ReadError> {
        let State::Pcap {
            big_endian,
            nanosecond,
            modified,
            snaplen,
            link_type,
        } = self.state
        else {
            unreachable!("next_pcap is only called on pcap files");
        };
        let header_len = if modified { 24 } else { 16 };
        if !self.input.fill(header_len)? {
            return if self.input.available() == 0 {
                Ok(None)
            } else {
                self.truncated(self.input.offset, true)
            };
        }
        let corrupt = |offset, what| ReadError::Corrupt {
            format: "pcap",
            offset,
            what,
        };
        let caplen = read_u32(&self.input.data()[8..12], big_endian);
        if caplen > MAX_PACKET_LEN {
            return Err(corrupt(
                self.input.offset,
                Corruption::TooLong {
                    record: "record",
                    claimed: caplen.into(),
                    limit: MAX_PACKET_LEN.into(),
                },
            ));
        }
        // A snaplen of 0 (written by some tools) means "not recorded".
        if snaplen != 0 && caplen > snaplen {
            return Err(corrupt(
                self.input.offset,
                Corruption::OverSnaplen {
                    claimed: caplen,
                    snaplen,
                },
            ));
        }
        let record_len = header_len + caplen as usize;
        if !self.input.fill(record_len)? {
            return self.truncated(self.input.offset, true);
        }
        let record = &self.input.data()[..record_len];
        // The classic 16-byte record header is read by hand: its caplen was
        // checked above and the record is all there, so nothing can fail,
        // and pcap-parser's nom parser was a tenth of the reading thread's
        // time. The modified format (24 bytes) still goes through it.
        let (ts_sec, ts_frac, orig_len) = if modified {
            let (_, frame) = parse_pcap_frame_modified(record)
                .map_err(|e| corrupt(self.input.offset, Corruption::Parser(nom_message(e))))?;
            (frame.ts_sec, frame.ts_usec, frame.origlen)
        } else {
            (
                read_u32(&record[0..4], big_endian),
                read_u32(&record[4..8], big_endian),
                read_u32(&record[12..16], big_endian),
            )
        };
        let fraction = if nanosecond {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1_000
        };
        Ok(Some(Found {
            record_len,
            data_start: header_len,
            data_len: caplen as usize,
            time: Timestamp(u64::from(ts_sec) * 1_000_000_000 + fraction),
            link_type,
            orig_len,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            if !self.input.fill(8)? {
                return if self.input.available() == 0 {
                    Ok(None)
                } else {
                    self.truncated(self.input.offset, false)
                };
            }
            let offset = self.input.offset;
            let corrupt = |offset, what| ReadError::Corrupt {
                format: "pcapng",
                offset,
                what,
            };
            let head = self.input.data();
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let State::PcapNg {
                big_endian,
                ref interfaces,
            } = self.state
            else {
                unreachable!("next_pcapng is only called on pcapng files");
            };
            let (block_type, big_endian) = if raw_type == PCAPNG_SHB {
                // The SHB's own byte-order magic tells how to read its length.
                if !self.input.fill(12)? {
                    return self.truncated(offset, false);
                }
                let head = self.input.data();
                let bom = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
                match bom {
                    PCAPNG_BOM => (PCAPNG_SHB, false),
                    b if b == PCAPNG_BOM.swap_bytes() => (PCAPNG_SHB, true),
                    _ => return Err(corrupt(offset + 8, Corruption::ByteOrder(bom))),
                }
            } else {
                if offset == 0 {
                    return Err(corrupt(0, Corruption::NoSection(raw_type)));
                }
                let block_type = if big_endian {
                    raw_type.swap_bytes()
                } else {
                    raw_type
                };
                (block_type, big_endian)
            };
            let head = self.input.data();
            let length = read_u32(&head[4..8], big_endian);
            let (minimum, limit) = match block_type {
                PCAPNG_SHB => (28, MAX_PARSED_BLOCK),
                PCAPNG_IDB => (20, MAX_PARSED_BLOCK),
                PCAPNG_EPB => (32, MAX_PARSED_BLOCK),
                PCAPNG_SPB => (16, MAX_PARSED_BLOCK),
                _ => (12, MAX_SKIPPED_BLOCK),
            };
            if !length.is_multiple_of(4) || length < minimum {
                return Err(corrupt(
                    offset,
                    Corruption::BadBlockLength {
                        block_type,
                        length,
                        minimum,
                    },
                ));
            }
            if length > limit {
                return Err(corrupt(
                    offset,
                    Corruption::TooLong {
                        record: "block",
                        claimed: length.into(),
                        limit: limit.into(),
                    },
                ));
            }
            let is_packet = matches!(block_type, PCAPNG_EPB | PCAPNG_SPB);
            if !matches!(
                block_type,
                PCAPNG_SHB | PCAPNG_IDB | PCAPNG_EPB | PCAPNG_SPB
            ) {
                // Skipped block (name resolution, statistics, secrets, custom,
                // unknown): stream it through, then check its trailing length.
                if !self.input.skip(u64::from(length) - 4)? || !self.input.fill(4)? {
                    return self.truncated(offset, false);
                }
                let trailing = read_u32(&self.input.data()[..4], big_endian);
                if trailing != length {
                    return Err(corrupt(
                        offset,
                        Corruption::LengthMismatch {
                            leading: length,
                            trailing,
                        },
                    ));
                }
                self.input.consume(4);
                continue;
            }
            let length = length as usize;
            if !self.input.fill(length)? {
                return self.truncated(offset, is_packet);
            }
            let block = &self.input.data()[..length];
            let trailing = read_u32(&block[length - 4..], big_endian);
            if trailing != length as u32 {
                return Err(corrupt(
                    offset,
                    Corruption::LengthMismatch {
                        leading: length as u32,
                        trailing,
                    },
                ));
            }
            let parser_error = |e| corrupt(offset, Corruption::Parser(nom_message(e)));
            match block_type {
                PCAPNG_SHB => {
                    check_options(&block[24..length - 4], big_endian, offset + 24, |_, _| {
                        Ok(())
                    })?;
                    let (_, shb) = parse_sectionheaderblock(block).map_err(parser_error)?;
                    if shb.major_version != 1 {
                        return Err(corrupt(
                            offset,
                            Corruption::Version("pcapng", shb.major_version, shb.minor_version),
                        ));
                    }
                    self.state = State::PcapNg {
                        big_endian,
                        interfaces: Vec::new(),
                    };
                }
                PCAPNG_IDB => {
                    if interfaces.len() >= MAX_INTERFACES {
                        return Err(corrupt(
                            offset,
                            Corruption::TooManyInterfaces(MAX_INTERFACES),
                        ));
                    }
                    let mut units_per_sec = 1_000_000;
                    let mut offset_secs = 0;
                    check_options(
                        &block[16..length - 4],
                        big_endian,
                        offset + 16,
                        |code, value| {
                            match code {
                                // if_tsresol
                                9 => units_per_sec = ts_resolution(value)?,
                                // if_tsoffset
                                14 => {
                                    let bytes: [u8; 8] = value.try_into().map_err(|_| {
                                        Corruption::BadInterfaceOption(format!(
                                            "if_tsoffset has {} bytes, expected 8",
                                            value.len()
                                        ))
                                    })?;
                                    offset_secs = if big_endian {
                                        i64::from_be_bytes(bytes)
                                    } else {
                                        i64::from_le_bytes(bytes)
                                    };
                                }
                                _ => {}
                            }
                            Ok(())
                        },
                    )?;
                    let parsed = if big_endian {
                        parse_interfacedescriptionblock_be(block)
                    } else {
                        parse_interfacedescriptionblock_le(block)
                    };
                    let (_, idb) = parsed.map_err(parser_error)?;
                    let interface = Interface {
                        link_type: idb.linktype.0 as u32,
                        snaplen: idb.snaplen,
                        units_per_sec,
                        offset_secs,
                    };
                    if let State::PcapNg { interfaces, .. } = &mut self.state {
                        interfaces.push(interface);
                    }
                }
                PCAPNG_EPB => {
                    let interface_id = read_u32(&block[8..12], big_endian);
                    let caplen = read_u32(&block[20..24], big_endian);
                    let Some(&interface) = interfaces.get(interface_id as usize) else {
                        return Err(corrupt(
                            offset + 8,
                            Corruption::UnknownInterface {
                                interface: interface_id,
                                known: interfaces.len(),
                            },
                        ));
                    };
                    check_caplen(caplen, interface.snaplen)
                        .map_err(|what| corrupt(offset, what))?;
                    let room = length as u32 - 32;
                    let padded = caplen.div_ceil(4) * 4;
                    if padded > room {
                        return Err(corrupt(
                            offset + 20,
                            Corruption::CaplenPastBlock { caplen, room },
                        ));
                    }
                    let options_start = 28 + padded as usize;
                    check_options(
                        &block[options_start..length - 4],
                        big_endian,
                        offset + options_start as u64,
                        |_, _| Ok(()),
                    )?;
                    let parsed = if big_endian {
                        parse_enhancedpacketblock_be(block)
                    } else {
                        parse_enhancedpacketblock_le(block)
                    };
                    let (_, epb) = parsed.map_err(parser_error)?;
                    let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    return Ok(Some(Found {
                        record_len: length,
                        data_start: 28,
                        data_len: caplen as usize,
                        time: ticks_to_time(ticks, interface.units_per_sec, interface.offset_secs),
                        link_type: interface.link_type,
                        orig_len: epb.origlen,
                    }));
                }
                _ => {
                    // PCAPNG_SPB: always interface 0, no timestamp.
                    let Some(&interface) = interfaces.first() else {
                        return Err(corrupt(
                            offset,
                            Corruption::UnknownInterface {
                                interface: 0,
                                known: 0,
                            },
                        ));
                    };
                    let parsed = if big_endian {
                        parse_simplepacketblock_be(block)
                    } else {
                        parse_simplepacketblock_le(block)
                    };
                    let (_, spb) = parsed.map_err(parser_error)?;
                    let mut caplen = spb.origlen.min(length as u32 - 16);
                    if interface.snaplen != 0 {
                        caplen = caplen.min(interface.snaplen);
                    }
                    check_caplen(caplen, 0).map_err(|what| corrupt(offset, what))?;
                    return Ok(Some(Found {
                        record_len: length,
                        data_start: 12,
                        data_len: caplen as usize,
                        // A Simple Packet Block has no timestamp; libpcap uses 0 too.
                        time: Timestamp(0),
                        link_type: interface.link_type,
                        orig_len: spb.origlen,
                    }));
                }
            }
            self.input.consume(length);
        }
    }
}

/// Where the packet found by `next_pcap`/`next_pcapng` lies in the buffer.
struct Found {
    /// Bytes of the whole record, consumed before the next one.
    record_len: usize,
    data_start: usize,
    data_len: usize,
    time: Timestamp,
    link_type: u32,
    orig_len: u32,
}

fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let bytes = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}

fn read_u16(bytes: &[u8], big_endian: bool) -> u16 {
    let bytes = [bytes[0], bytes[1]];
    if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    }
}

fn check_caplen(caplen: u32, snaplen: u32) -> Result<(), Corruption> {
    if caplen > MAX_PACKET_LEN {
        return Err(Corruption::TooLong {
            record: "packet",
            claimed: caplen.into(),
            limit: MAX_PACKET_LEN.into(),
        });
    }
    if snaplen != 0 && caplen > snaplen {
        return Err(Corruption::OverSnaplen {
            claimed: caplen,
            snaplen,
        });
    }
    Ok(())
}

/// Walks the options of a pcapng block (`options` ends before the trailing
/// length), refusing any that runs past the block, and calls `each` with the
/// code and value of every option up to `opt_endofopt`.
fn check_options(
    options: &[u8],
    big_endian: bool,
    file_offset: u64,
    mut each: impl FnMut(u16, &[u8]) -> Result<(), Corruption>,
) -> Result<(), ReadError> {
    let mut at = 0;
    while at < options.len() {
        let corrupt = |what| ReadError::Corrupt {
            format: "pcapng",
            offset: file_offset + at as u64,
            what,
        };
        let rest = &options[at..];
        if rest.len() < 4 {
            return Err(corrupt(Corruption::OptionPastBlock {
                code: 0,
                length: 0,
                room: rest.len(),
            }));
        }
        let code = read_u16(&rest[0..2], big_endian);
        let length = read_u16(&rest[2..4], big_endian);
        let padded = usize::from(length).div_ceil(4) * 4;
        if padded > rest.len() - 4 {
            return Err(corrupt(Corruption::OptionPastBlock {
                code,
                length,
                room: rest.len() - 4,
            }));
        }
        if code == 0 {
            // opt_endofopt: whatever follows is padding.
            break;
        }
        each(code, &rest[4..4 + usize::from(length)]).map_err(corrupt)?;
        at += 4 + padded;
    }
    Ok(())
}

/// Timestamp units per second from an `if_tsresol` value: 10^n, or 2^n when
/// the top bit is set.
fn ts_resolution(value: &[u8]) -> Result<u64, Corruption> {
    let &[resol] = value else {
        return Err(Corruption::BadInterfaceOption(format!(
            "if_tsresol has {} bytes, expected 1",
            value.len()
        )));
    };
    let units = if resol & 0x80 == 0 {
        10u64.checked_pow(u32::from(resol))
    } else {
        1u64.checked_shl(u32::from(resol & 0x7f))
    };
    units.ok_or_else(|| {
        Corruption::BadInterfaceOption(format!("if_tsresol {resol:#04x} is out of range"))
    })
}

/// Converts pcapng timestamp ticks to nanoseconds since the epoch, clamped to
/// the `Timestamp` range.
fn ticks_to_time(ticks: u64, units_per_sec: u64, offset_secs: i64) -> Timestamp {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(units_per_sec.max(1));
    let nanos = nanos as i128 + i128::from(offset_secs) * 1_000_000_000;
    Timestamp(nanos.clamp(0, i128::from(u64::MAX)) as u64)
}

/// pcap-parser's error without the input bytes its `Display` would dump.
fn nom_message(e: pcap_parser::nom::Err<PcapError<&[u8]>>) -> String {
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

/// Capture file builders shared by the unit tests of the `analyze` modules.
#[cfg(test)]
pub(crate) mod testing {
    /// A pcap file: `records` are (seconds, fraction, captured data, original length).
    pub fn pcap(
        nanosecond: bool,
        big_endian: bool,
        link_type: u32,
        snaplen: u32,
        records: &[(u32, u32, &[u8], u32)],
    ) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&u32b(if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend_from_slice(&u16b(2));
        out.extend_from_slice(&u16b(4));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&u32b(snaplen));
        out.extend_from_slice(&u32b(link_type));
        for &(sec, frac, data, orig_len) in records {
            for v in [sec, frac, data.len() as u32, orig_len] {
                out.extend_from_slice(&u32b(v));
            }
            out.extend_from_slice(data);
        }
        out
    }

    /// pcapng building blocks, in one byte order.
    pub struct Ng {
        /// Write big-endian.
        pub big_endian: bool,
    }

    impl Ng {
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        fn u32(&self, v: u32) -> [u8; 4] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        /// A block of `block_type` around `body` (padded to 4 bytes).
        pub fn block(&self, block_type: u32, body: &[u8]) -> Vec<u8> {
            let mut body = body.to_vec();
            body.resize(body.len().div_ceil(4) * 4, 0);
            let len = body.len() as u32 + 12;
            let mut out = self.u32(block_type).to_vec();
            out.extend_from_slice(&self.u32(len));
            out.extend_from_slice(&body);
            out.extend_from_slice(&self.u32(len));
            out
        }

        /// One option (code, value), padded, for a block body.
        pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
            let mut out = self.u16(code).to_vec();
            out.extend_from_slice(&self.u16(value.len() as u16));
            out.extend_from_slice(value);
            out.resize(4 + value.len().div_ceil(4) * 4, 0);
            out
        }

        /// A Section Header Block.
        pub fn shb(&self) -> Vec<u8> {
            let mut body = self.u32(0x1A2B_3C4D).to_vec();
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&[0xff; 8]);
            body.extend(self.option(4, b"reqresp tests"));
            body.extend(self.option(0, b""));
            self.block(0x0A0D_0D0A, &body)
        }

        /// An Interface Description Block with extra `options`.
        pub fn idb(&self, link_type: u16, snaplen: u32, options: &[u8]) -> Vec<u8> {
            let mut body = self.u16(link_type).to_vec();
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&self.u32(snaplen));
            body.extend_from_slice(options);
            self.block(1, &body)
        }

        /// An Enhanced Packet Block.
        pub fn epb(&self, interface: u32, ticks: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
            let mut body = self.u32(interface).to_vec();
            body.extend_from_slice(&self.u32((ticks >> 32) as u32));
            body.extend_from_slice(&self.u32(ticks as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(&self.u32(orig_len));
            body.extend_from_slice(data);
            body.resize(body.len().div_ceil(4) * 4, 0);
            body.extend(self.option(1, &self.u32(1))); // epb_flags: inbound
            self.block(6, &body)
        }

        /// A Simple Packet Block.
        pub fn spb(&self, data: &[u8]) -> Vec<u8> {
            let mut body = self.u32(data.len() as u32).to_vec();
            body.extend_from_slice(data);
            self.block(3, &body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::testing::{ether_frame, tcp_v4, tcp_v6};
    use super::testing::*;
    use super::*;
    use proptest::prelude::*;

    /// (number, time, src port, payload) of one segment.
    type Brief = (u64, u64, u16, Vec<u8>);

    /// Reads a capture, returning a [`Brief`] per segment.
    fn segments(bytes: &[u8]) -> Result<(Vec<Brief>, ReadSummary), ReadError> {
        let mut out = Vec::new();
        let summary = read_capture(bytes, |s| {
            out.push((s.number, s.time.0, s.src.port(), s.payload.to_vec()))
        })?;
        Ok((out, summary))
    }

    fn corrupt(bytes: &[u8]) -> (u64, Corruption, String) {
        match segments(bytes) {
            Err(e @ ReadError::Corrupt { .. }) => {
                let message = e.to_string();
                let ReadError::Corrupt { offset, what, .. } = e else {
                    unreachable!()
                };
                (offset, what, message)
            }
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
    }

    fn three_records(nanosecond: bool, big_endian: bool) -> Vec<u8> {
        let a = ether_frame(&tcp_v4(b"one"));
        let b = ether_frame(&tcp_v4(b"two"));
        let c = ether_frame(&tcp_v4(b"three"));
        pcap(
            nanosecond,
            big_endian,
            1,
            262_144,
            &[
                (1_700_000_000, 1, &a, a.len() as u32),
                (1_700_000_001, 999_999, &b, b.len() as u32),
                (1_700_000_002, 500, &c, c.len() as u32),
            ],
        )
    }

    #[test]
    fn pcap_micro_and_nano_both_byte_orders() {
        for big_endian in [false, true] {
            for nanosecond in [false, true] {
                let (segs, summary) = segments(&three_records(nanosecond, big_endian)).unwrap();
                assert_eq!(
                    summary.format,
                    CaptureFormat::Pcap {
                        nanosecond,
                        big_endian
                    }
                );
                let scale = if nanosecond { 1 } else { 1_000 };
                let times: Vec<u64> = segs.iter().map(|s| s.1).collect();
                assert_eq!(
                    times,
                    [
                        1_700_000_000_000_000_000 + scale,
                        1_700_000_001_000_000_000 + 999_999 * scale,
                        1_700_000_002_000_000_000 + 500 * scale
                    ]
                );
                let payloads: Vec<&[u8]> = segs.iter().map(|s| &s.3[..]).collect();
                assert_eq!(payloads, [&b"one"[..], b"two", b"three"]);
                assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
                assert_eq!((summary.packets, summary.tcp_segments), (3, 3));
                assert!(summary.warnings.is_empty() && !summary.truncated);
            }
        }
    }

    #[test]
    fn short_reads_from_a_pipe_give_the_same_result() {
        /// Hands out at most 3 bytes per read, as a slow pipe might.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let file = three_records(true, false);
        let mut count = 0;
        let summary = read_capture(Trickle(&file), |_| count += 1).unwrap();
        assert_eq!((count, summary.bytes), (3, file.len() as u64));
    }

    fn pcapng_two_sections() -> Vec<u8> {
        let mut file = Vec::new();
        let le = Ng { big_endian: false };
        file.extend(le.shb());
        // Interface 0: Ethernet, default microseconds.
        file.extend(le.idb(1, 65535, &le.option(0, b"")));
        // Interface 1: raw IP, nanoseconds, 100 s offset.
        let mut options = le.option(9, &[9]);
        options.extend(le.option(14, &100i64.to_le_bytes()));
        file.extend(le.idb(101, 262_144, &options));
        file.extend(le.block(0x0000_0004, b"name resolution, skipped"));
        file.extend(le.epb(0, 1_000_000_000_123_456, &ether_frame(&tcp_v4(b"if0")), 71));
        file.extend(le.epb(1, 1_000_000_000_123_456_789, &tcp_v4(b"if1"), 43));
        file.extend(le.block(0x4242_4242, &[7; 33]));
        // Second section, big-endian: interface 0 is raw IPv6 with 2^-20 s ticks.
        let be = Ng { big_endian: true };
        file.extend(be.shb());
        file.extend(be.idb(229, 0, &be.option(9, &[0x80 | 20])));
        file.extend(be.epb(0, (5 << 20) + (1 << 19), &tcp_v6(b"be"), 63));
        file.extend(be.spb(&tcp_v6(b"simple")));
        file
    }

    #[test]
    fn pcapng_sections_interfaces_resolutions_and_block_kinds() {
        let file = pcapng_two_sections();
        let (segs, summary) = segments(&file).unwrap();
        assert_eq!(summary.format, CaptureFormat::PcapNg);
        assert_eq!(
            segs,
            [
                (1, 1_000_000_000_123_456_000, 40000, b"if0".to_vec()),
                (2, 1_000_000_100_123_456_789, 40000, b"if1".to_vec()),
                (3, 5_500_000_000, 40000, b"be".to_vec()),
                (4, 0, 40000, b"simple".to_vec()),
            ]
        );
        assert_eq!(summary.bytes, file.len() as u64);
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    }

    #[test]
    fn large_skipped_block_streams_through_the_bounded_buffer() {
        let le = Ng { big_endian: false };
        let mut file = le.shb();
        file.extend(le.idb(101, 0, &[]));
        file.extend(le.block(0x0000_0bad, &vec![1; 3 * BUFFER_SIZE]));
        file.extend(le.epb(0, 1, &tcp_v4(b"after"), 45));
        let (segs, _) = segments(&file).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].3, b"after");
    }

    #[test]
    fn truncated_pcap_keeps_whole_packets_and_warns() {
        let file = three_records(false, false);
        // Cut inside the third record's data, then inside its header.
        let third = file.len() - (16 + 14 + 20 + 20 + 5);
        for cut in [file.len() - 2, third + 7] {
            let (segs, summary) = segments(&file[..cut]).unwrap();
            assert_eq!(segs.len(), 2);
            assert!(summary.truncated);
            assert_eq!(
                summary.warnings,
                [format!(
                    "capture file truncated at byte offset {cut}: the last packet (record at byte \
                     offset {third}) is incomplete; the 2 packets before it were read"
                )]
            );
        }
    }

    #[test]
    fn truncated_pcapng_keeps_whole_packets_and_warns() {
        let file = pcapng_two_sections();
        let (segs, summary) = segments(&file[..file.len() - 5]).unwrap();
        assert_eq!(segs.len(), 3);
        assert!(summary.truncated);
        assert!(
            summary.warnings[0].contains("the last packet"),
            "{:?}",
            summary.warnings
        );
        assert!(summary.warnings[0].contains("the 3 packets before it were read"));
    }

    #[test]
    fn every_prefix_of_a_valid_file_reads_or_is_too_short() {
        for file in [three_records(true, true), pcapng_two_sections()] {
            let full = segments(&file).unwrap().0;
            for cut in 0..file.len() {
                match segments(&file[..cut]) {
                    Ok((segs, summary)) => {
                        assert_eq!(segs[..], full[..segs.len()], "cut at {cut}");
                        assert_eq!(summary.truncated, !summary.warnings.is_empty());
                    }
                    Err(ReadError::TooShort { .. }) => assert!(cut < 28),
                    Err(e) => panic!("cut at {cut}: {e}"),
                }
            }
        }
    }

    #[test]
    fn pcap_record_over_the_limit_is_refused_with_its_offset() {
        let mut file = three_records(false, false);
        let second = 24 + 16 + 14 + 20 + 20 + 3;
        file[second + 8..second + 12].copy_from_slice(&300_000u32.to_le_bytes());
        let (offset, _, message) = corrupt(&file);
        assert_eq!(offset, second as u64);
        assert_eq!(
            message,
            format!(
                "corrupt pcap at byte offset {second}: record claims 300000 bytes, more than the \
                 262144-byte limit"
            )
        );
    }

    #[test]
    fn pcap_record_over_the_snaplen_is_refused() {
        let frame = ether_frame(&tcp_v4(b"long"));
        let file = pcap(false, true, 1, 50, &[(0, 0, &frame, frame.len() as u32)]);
        let (offset, what, message) = corrupt(&file);
        assert_eq!(offset, 24);
        assert_eq!(
            what,
            Corruption::OverSnaplen {
                claimed: 58,
                snaplen: 50
            }
        );
        assert_eq!(
            message,
            "corrupt pcap at byte offset 24: record claims 58 bytes, more than the snaplen of 50"
        );
    }

    /// A little-endian pcapng file: SHB, IDB (raw IP), then `blocks`.
    fn ng_file(blocks: &[Vec<u8>]) -> Vec<u8> {
        let le = Ng { big_endian: false };
        let mut file = le.shb();
        file.extend(le.idb(101, 0, &[]));
        for block in blocks {
            file.extend_from_slice(block);
        }
        file
    }

    #[test]
    fn pcapng_block_lengths_that_disagree_are_refused() {
        let le = Ng { big_endian: false };
        let good = le.epb(0, 1, &tcp_v4(b"x"), 41);
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&((n as u32) + 4).to_le_bytes());
        let file = ng_file(&[good.clone(), bad]);
        let (offset, what, message) = corrupt(&file);
        let at = file.len() - n;
        assert_eq!(offset, at as u64);
        assert_eq!(
            what,
            Corruption::LengthMismatch {
                leading: n as u32,
                trailing: n as u32 + 4
            }
        );
        assert!(message.starts_with(&format!("corrupt pcapng at byte offset {at}: block length")));
        // The same in a skipped block.
        let mut skipped = le.block(0x99, b"abcd");
        skipped[12..16].copy_from_slice(&24u32.to_le_bytes());
        let (_, what, _) = corrupt(&ng_file(&[skipped]));
        assert_eq!(
            what,
            Corruption::LengthMismatch {
                leading: 16,
                trailing: 24
            }
        );
    }

    #[test]
    fn pcapng_option_running_past_its_block_is_refused() {
        let le = Ng { big_endian: false };
        let mut options = le.option(2, b"eth0");
        options[2..4].copy_from_slice(&200u16.to_le_bytes());
        let mut file = le.shb();
        let idb_at = file.len();
        file.extend(le.idb(1, 0, &options));
        let (offset, what, _) = corrupt(&file);
        assert_eq!(offset, idb_at as u64 + 16);
        assert_eq!(
            what,
            Corruption::OptionPastBlock {
                code: 2,
                length: 200,
                room: 4
            }
        );
    }

    #[test]
    fn pcapng_structural_faults_are_refused() {
        let le = Ng { big_endian: false };
        // Captured length larger than the block.
        let mut epb = le.epb(0, 1, &tcp_v4(b"x"), 41);
        epb[20..24].copy_from_slice(&100u32.to_le_bytes());
        let (_, what, _) = corrupt(&ng_file(&[epb]));
        assert_eq!(
            what,
            Corruption::CaplenPastBlock {
                caplen: 100,
                room: 52
            }
        );
        // Captured length over 256 KiB.
        let mut epb = le.epb(0, 1, &tcp_v4(b"x"), 41);
        epb[20..24].copy_from_slice(&300_000u32.to_le_bytes());
        let (_, what, _) = corrupt(&ng_file(&[epb]));
        assert!(matches!(
            what,
            Corruption::TooLong {
                claimed: 300_000,
                ..
            }
        ));
        // Block length claiming 4 GiB: refused before anything is allocated.
        let mut huge = le.epb(0, 1, &tcp_v4(b"x"), 41);
        huge[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let (_, what, message) = corrupt(&ng_file(&[huge]));
        assert!(
            matches!(
                what,
                Corruption::TooLong {
                    claimed: 0xFFFF_FFF0,
                    ..
                }
            ),
            "{message}"
        );
        // Length not a multiple of 4.
        let mut odd = le.block(0x99, b"abcd");
        odd[4..8].copy_from_slice(&21u32.to_le_bytes());
        let (_, what, _) = corrupt(&ng_file(&[odd]));
        assert!(matches!(
            what,
            Corruption::BadBlockLength { length: 21, .. }
        ));
        // Packet on an interface that was never described.
        let file = ng_file(&[le.epb(3, 1, &tcp_v4(b"x"), 41)]);
        let (offset, what, _) = corrupt(&file);
        assert_eq!(
            what,
            Corruption::UnknownInterface {
                interface: 3,
                known: 1
            }
        );
        assert_eq!(offset, ng_file(&[]).len() as u64 + 8);
        // An if_tsresol beyond 10^19.
        let mut file = le.shb();
        file.extend(le.idb(1, 0, &le.option(9, &[20])));
        let (_, what, _) = corrupt(&file);
        assert!(matches!(what, Corruption::BadInterfaceOption(m) if m.contains("0x14")));
        // Not starting with a section header.
        let mut file = ng_file(&[]);
        file[8..12].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let (_, what, _) = corrupt(&file);
        assert_eq!(what, Corruption::ByteOrder(0x1234_5678));
    }

    #[test]
    fn not_a_capture() {
        let err = segments(b"GET / HTTP/1.1\r\n\r\nmore than twenty-four bytes").unwrap_err();
        assert!(matches!(err, ReadError::UnknownFormat { magic } if &magic == b"GET "));
        assert!(err.to_string().starts_with("not a pcap or pcapng file"));
        assert!(matches!(
            segments(b"").unwrap_err(),
            ReadError::TooShort { len: 0 }
        ));
        let header_only = &three_records(false, false)[..20];
        assert!(matches!(
            segments(header_only).unwrap_err(),
            ReadError::TooShort { len: 20 }
        ));
    }

    #[test]
    fn hostile_packets_are_skipped_with_a_warning_naming_them() {
        let good = tcp_v4(b"ok");
        let mut bad = tcp_v4(b"bad");
        bad[32] = 2 << 4; // TCP data offset 2
        let file = pcap(
            false,
            false,
            101,
            0,
            &[(0, 0, &good, 42), (0, 1, &bad, 43), (0, 2, &good, 42)],
        );
        let (segs, summary) = segments(&file).unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(summary.skipped.malformed, 1);
        assert_eq!(summary.warnings.len(), 1);
        assert!(
            summary.warnings[0].starts_with("packet 2 skipped: bad TCP header"),
            "{:?}",
            summary.warnings
        );
    }

    #[test]
    fn warnings_are_bounded_but_counted() {
        let mut bad = tcp_v4(b"");
        bad[32] = 0;
        let records: Vec<(u32, u32, &[u8], u32)> = (0..MAX_WARNINGS as u32 + 50)
            .map(|i| (i, 0, &bad[..], 40))
            .collect();
        let (_, summary) = segments(&pcap(false, false, 101, 0, &records)).unwrap();
        assert_eq!(summary.warnings.len(), MAX_WARNINGS);
        assert_eq!(summary.warnings_total, MAX_WARNINGS as u64 + 50);
        let all = summary.into_warnings();
        assert_eq!(all.last().unwrap(), "... and 50 more warnings not shown");
    }

    #[test]
    fn progress_reaches_the_file_size() {
        let big = vec![b'x'; 60_000];
        let frame = tcp_v4(&big);
        let records: Vec<(u32, u32, &[u8], u32)> = (0..40)
            .map(|i| (i, 0, &frame[..], frame.len() as u32))
            .collect();
        let file = pcap(false, false, 101, 0, &records);
        let mut reports = Vec::new();
        read_capture_with_progress(&file[..], |_| {}, |b| reports.push(b)).unwrap();
        assert!(reports.len() > 1, "{reports:?}");
        assert!(reports.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*reports.last().unwrap(), file.len() as u64);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_capture(&data[..], |_| {});
        }

        #[test]
        fn arbitrary_records_after_a_valid_header_never_panic(
            pcapng in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut file = if pcapng { ng_file(&[]) } else { three_records(false, false) };
            file.extend_from_slice(&tail);
            let _ = read_capture(&file[..], |_| {});
        }

        #[test]
        fn mutated_files_never_panic(
            pcapng in any::<bool>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut file = if pcapng { pcapng_two_sections() } else { three_records(true, true) };
            for (at, value) in flips {
                let at = at % file.len();
                file[at] = value;
            }
            let _ = read_capture(&file[..], |_| {});
        }
    }
}
