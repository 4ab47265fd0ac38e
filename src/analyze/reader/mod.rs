//! Capture file reader: pcap and pcapng from any [`std::io::Read`], one
//! packet record at a time, in a bounded buffer.
//!
//! The entry point for the analyzer is [`read_capture`] (or
//! `read_capture_with_progress`): it reads records with a
//! [`CaptureReader`], decodes each with `super::decode::decode` and hands
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
//! `pcap` and `pcapng` are the container parsers: they do no I/O, they
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
//! `BUFFER_SIZE` and no record larger than that is ever buffered (blocks
//! that are skipped stream through it). A file cut short mid-record ends the
//! read normally with a warning ([`CaptureReader::truncation`]); a
//! structurally corrupt file is refused with [`ReadError::Corrupt`] naming the
//! byte offset, as libpcap does.

use std::io::{self, Read};

use super::segment::{RawPacket, TcpSegment};

pub(crate) mod pcap;
pub(crate) mod pcapng;
mod record;
mod summary;
#[cfg(test)]
mod tests;

use pcap::PcapHeader;
use pcapng::PcapNgParser;
pub use record::{CaptureFormat, Corruption, Found, MAX_PACKET_LEN, Parsed, ReadError, Truncation};
pub use summary::ReadSummary;

/// Size of the read buffer: the most memory the reader ever holds.
pub(crate) const BUFFER_SIZE: usize = 1024 * 1024;
/// Bytes of input between two calls of a progress callback.
pub(crate) const PROGRESS_STEP: u64 = 1 << 20;

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
pub(crate) fn read_capture_with_progress<R: Read>(
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
