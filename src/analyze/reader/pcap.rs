//! Classic pcap, parsed from bytes without I/O: the 24-byte file header
//! ([`PcapHeader::parse`]) and one packet record at a time
//! ([`PcapHeader::next_record`]), each either found whole, incomplete (with
//! the bytes it needs) or refused with the byte offset at fault.
//!
//! The record header is read by hand: its captured length is checked before
//! anything else, so nothing can fail once the record is all there, and
//! pcap-parser's nom parser was a tenth of the reading thread's time. The
//! modified (Kuznetzov) format, with its 24-byte record header, still goes
//! through pcap-parser.

use pcap_parser::parse_pcap_frame_modified;

use super::record::{Corruption, Found, MAX_PACKET_LEN, Parsed, ReadError, nom_message, read_u32};
use crate::analyze::model::Timestamp;

/// Bytes of the file header.
pub(crate) const HEADER_LEN: usize = 24;

/// What the file header of a classic pcap says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcapHeader {
    /// Written big-endian.
    pub big_endian: bool,
    /// Timestamps in nanoseconds (magic `a1b23c4d`), else microseconds.
    pub nanosecond: bool,
    /// The "modified" (Kuznetzov) format: 24-byte record headers.
    pub modified: bool,
    /// The snaplen of the file; 0 (written by some tools) means not recorded.
    pub snaplen: u32,
    /// Link type of every packet (the low 28 bits of the header's field).
    pub link_type: u32,
}

fn corrupt(offset: u64, what: Corruption) -> ReadError {
    ReadError::Corrupt {
        format: "pcap",
        offset,
        what,
    }
}

impl PcapHeader {
    /// Whether the first four bytes (read little-endian) are a pcap magic:
    /// micro- or nanosecond, either byte order, or the modified format.
    pub fn is_magic(magic: u32) -> bool {
        matches!(
            magic,
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1
        )
    }

    /// Parses the file header at the start of `data`, which holds at least
    /// [`HEADER_LEN`] bytes and starts with a pcap magic.
    pub fn parse(data: &[u8]) -> Result<Self, ReadError> {
        let (_, header) = pcap_parser::parse_pcap_header(&data[..HEADER_LEN])
            .map_err(|e| corrupt(0, Corruption::Parser(nom_message(e))))?;
        if header.version_major != 2 {
            return Err(corrupt(
                0,
                Corruption::Version("pcap", header.version_major, header.version_minor),
            ));
        }
        Ok(PcapHeader {
            big_endian: header.is_bigendian(),
            nanosecond: header.is_nanosecond_precision(),
            modified: header.is_modified_format(),
            snaplen: header.snaplen,
            // The upper bits carry FCS information (LT_FCS_DATA); the link
            // type proper is the low 28 bits (libpcap's LT_LINKTYPE).
            link_type: (header.network.0 as u32) & 0x03FF_FFFF,
        })
    }

    /// Bytes of each record header.
    fn record_header_len(&self) -> usize {
        if self.modified { 24 } else { 16 }
    }

    /// The packet record at the start of `data`, which lies at byte
    /// `offset` of the file: [`Parsed::Packet`] when it is all there,
    /// [`Parsed::Incomplete`] with the bytes it needs when not, an error
    /// naming `offset` when its header is impossible.
    #[inline]
    pub fn next_record(&self, data: &[u8], offset: u64) -> Result<Parsed, ReadError> {
        let header_len = self.record_header_len();
        if data.len() < header_len {
            return Ok(Parsed::Incomplete {
                needed: header_len,
                packet: true,
            });
        }
        let caplen = read_u32(&data[8..12], self.big_endian);
        if caplen > MAX_PACKET_LEN {
            return Err(corrupt(
                offset,
                Corruption::TooLong {
                    record: "record",
                    claimed: caplen.into(),
                    limit: MAX_PACKET_LEN.into(),
                },
            ));
        }
        if self.snaplen != 0 && caplen > self.snaplen {
            return Err(corrupt(
                offset,
                Corruption::OverSnaplen {
                    claimed: caplen,
                    snaplen: self.snaplen,
                },
            ));
        }
        let record_len = header_len + caplen as usize;
        if data.len() < record_len {
            return Ok(Parsed::Incomplete {
                needed: record_len,
                packet: true,
            });
        }
        let record = &data[..record_len];
        let (ts_sec, ts_frac, orig_len) = if self.modified {
            let (_, frame) = parse_pcap_frame_modified(record)
                .map_err(|e| corrupt(offset, Corruption::Parser(nom_message(e))))?;
            (frame.ts_sec, frame.ts_usec, frame.origlen)
        } else {
            (
                read_u32(&record[0..4], self.big_endian),
                read_u32(&record[4..8], self.big_endian),
                read_u32(&record[12..16], self.big_endian),
            )
        };
        let fraction = if self.nanosecond {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1_000
        };
        Ok(Parsed::Packet(Found {
            record_len,
            data_start: header_len,
            data_len: caplen as usize,
            time: Timestamp(u64::from(ts_sec) * 1_000_000_000 + fraction),
            link_type: self.link_type,
            orig_len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> PcapHeader {
        PcapHeader {
            big_endian: false,
            nanosecond: false,
            modified: false,
            snaplen: 100,
            link_type: 101,
        }
    }

    fn record(caplen: u32, data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [7u32, 8, caplen, 60] {
            r.extend(v.to_le_bytes());
        }
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn a_record_in_pieces_asks_for_what_it_needs() {
        let r = record(5, b"abcde");
        for cut in 0..16 {
            assert!(matches!(
                header().next_record(&r[..cut], 0),
                Ok(Parsed::Incomplete {
                    needed: 16,
                    packet: true
                })
            ));
        }
        for cut in 16..21 {
            assert!(matches!(
                header().next_record(&r[..cut], 0),
                Ok(Parsed::Incomplete { needed: 21, .. })
            ));
        }
        let Ok(Parsed::Packet(found)) = header().next_record(&r, 0) else {
            panic!("a whole record");
        };
        assert_eq!(
            (found.record_len, found.data_start, found.data_len),
            (21, 16, 5)
        );
        assert_eq!((found.time, found.orig_len), (Timestamp(7_000_008_000), 60));
    }

    #[test]
    fn an_impossible_length_is_refused_at_its_offset() {
        let r = record(101, b"");
        let err = header().next_record(&r, 4242).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Corrupt {
                offset: 4242,
                what: Corruption::OverSnaplen { claimed: 101, .. },
                ..
            }
        ));
    }
}
