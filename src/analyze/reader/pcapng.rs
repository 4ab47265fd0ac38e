//! pcapng, parsed from bytes without I/O: one block at a time
//! ([`PcapNgParser::next_block`]), each either read whole, incomplete (with
//! the bytes it needs), to be discarded unread (blocks that carry no packet
//! and no interface: streamed past by the reader, then their trailing length
//! checked with [`PcapNgParser::check_trailer`]), or refused with the byte
//! offset at fault.
//!
//! The parser holds what a file says before its packets: the byte order of
//! the current section and its interfaces (link type, snaplen, `if_tsresol`,
//! `if_tsoffset`). pcap-parser parses the contents of headers and blocks
//! once this module has checked every length against its bound and compared
//! leading and trailing block lengths (see the reader's doc for why).

use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};

use super::record::{
    Corruption, Found, MAX_PACKET_LEN, Parsed, ReadError, nom_message, read_u16, read_u32,
};
use crate::analyze::model::Timestamp;

/// Room allowed for the options of a packet block (libpcap allows 128 KiB).
const MAX_OPTIONS_LEN: u32 = 131_072;
/// Largest pcapng block that is parsed (and so buffered): an EPB with a
/// [`MAX_PACKET_LEN`] packet and 128 KiB of options.
pub(crate) const MAX_PARSED_BLOCK: u32 = 32 + MAX_PACKET_LEN + MAX_OPTIONS_LEN;
/// Largest pcapng block that is skipped (streamed, never buffered whole);
/// libpcap's initial limit for any block.
const MAX_SKIPPED_BLOCK: u32 = 16 * 1024 * 1024;
/// Interfaces allowed in one pcapng section (each costs a few bytes of state;
/// real captures have a handful).
const MAX_INTERFACES: usize = 65_536;

/// The first four bytes of a pcapng file (the Section Header Block type).
pub(crate) const MAGIC: u32 = 0x0A0D_0D0A;
const SHB: u32 = MAGIC;
const IDB: u32 = 0x0000_0001;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

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

/// Reads pcapng blocks; holds the current section's byte order and interfaces.
#[derive(Debug, Default)]
pub(crate) struct PcapNgParser {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

fn corrupt(offset: u64, what: Corruption) -> ReadError {
    ReadError::Corrupt {
        format: "pcapng",
        offset,
        what,
    }
}

impl PcapNgParser {
    /// A parser before the first Section Header Block.
    pub fn new() -> Self {
        PcapNgParser::default()
    }

    /// The block at the start of `data`, which lies at byte `offset` of the
    /// file.
    pub fn next_block(&mut self, data: &[u8], offset: u64) -> Result<Parsed, ReadError> {
        let (block_type, big_endian, length) = match self.block_header(data, offset)? {
            Ok(header) => header,
            Err(incomplete) => return Ok(incomplete),
        };
        if !matches!(block_type, SHB | IDB | EPB | SPB) {
            // Name resolution, statistics, secrets, custom, unknown.
            return Ok(Parsed::Discard { length });
        }
        let length = length as usize;
        if data.len() < length {
            return Ok(Parsed::Incomplete {
                needed: length,
                packet: matches!(block_type, EPB | SPB),
            });
        }
        let block = &data[..length];
        check_trailer(&block[length - 4..], length as u32, big_endian, offset)?;
        match block_type {
            SHB => self.section(block, big_endian, offset)?,
            IDB => self.interface(block, offset)?,
            EPB => return self.enhanced_packet(block, offset).map(Parsed::Packet),
            _ => return self.simple_packet(block, offset).map(Parsed::Packet),
        }
        Ok(Parsed::Block { len: length })
    }

    /// Checks the trailing length of the block of `length` bytes at
    /// `offset` (`trailer`: its last four bytes).
    pub fn check_trailer(&self, trailer: &[u8], length: u32, offset: u64) -> Result<(), ReadError> {
        check_trailer(trailer, length, self.big_endian, offset)
    }

    /// Type, byte order and checked length of the block at the start of
    /// `data`, or (as `Err` of the inner result) what more it needs.
    fn block_header(
        &self,
        data: &[u8],
        offset: u64,
    ) -> Result<Result<(u32, bool, u32), Parsed>, ReadError> {
        let incomplete = |needed| {
            Ok(Err(Parsed::Incomplete {
                needed,
                packet: false,
            }))
        };
        if data.len() < 8 {
            return incomplete(8);
        }
        let raw_type = read_u32(&data[0..4], false);
        let (block_type, big_endian) = if raw_type == SHB {
            // The SHB's own byte-order magic tells how to read its length.
            if data.len() < 12 {
                return incomplete(12);
            }
            match read_u32(&data[8..12], false) {
                BYTE_ORDER_MAGIC => (SHB, false),
                b if b == BYTE_ORDER_MAGIC.swap_bytes() => (SHB, true),
                b => return Err(corrupt(offset + 8, Corruption::ByteOrder(b))),
            }
        } else if offset == 0 {
            return Err(corrupt(0, Corruption::NoSection(raw_type)));
        } else if self.big_endian {
            (raw_type.swap_bytes(), true)
        } else {
            (raw_type, false)
        };
        let length = read_u32(&data[4..8], big_endian);
        let (minimum, limit) = match block_type {
            SHB => (28, MAX_PARSED_BLOCK),
            IDB => (20, MAX_PARSED_BLOCK),
            EPB => (32, MAX_PARSED_BLOCK),
            SPB => (16, MAX_PARSED_BLOCK),
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
        Ok(Ok((block_type, big_endian, length)))
    }

    /// A Section Header Block: a new section, with its byte order and no
    /// interfaces yet.
    fn section(&mut self, block: &[u8], big_endian: bool, offset: u64) -> Result<(), ReadError> {
        let length = block.len();
        check_options(&block[24..length - 4], big_endian, offset + 24, |_, _| {
            Ok(())
        })?;
        let (_, shb) = parse_sectionheaderblock(block)
            .map_err(|e| corrupt(offset, Corruption::Parser(nom_message(e))))?;
        if shb.major_version != 1 {
            return Err(corrupt(
                offset,
                Corruption::Version("pcapng", shb.major_version, shb.minor_version),
            ));
        }
        self.big_endian = big_endian;
        self.interfaces.clear();
        Ok(())
    }

    /// An Interface Description Block: one more interface in the section.
    fn interface(&mut self, block: &[u8], offset: u64) -> Result<(), ReadError> {
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(corrupt(
                offset,
                Corruption::TooManyInterfaces(MAX_INTERFACES),
            ));
        }
        let big_endian = self.big_endian;
        let mut units_per_sec = 1_000_000;
        let mut offset_secs = 0;
        let length = block.len();
        check_options(
            &block[16..length - 4],
            big_endian,
            offset + 16,
            |code, value| {
                match code {
                    9 => units_per_sec = ts_resolution(value)?,
                    14 => offset_secs = ts_offset(value, big_endian)?,
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
        let (_, idb) = parsed.map_err(|e| corrupt(offset, Corruption::Parser(nom_message(e))))?;
        self.interfaces.push(Interface {
            link_type: idb.linktype.0 as u32,
            snaplen: idb.snaplen,
            units_per_sec,
            offset_secs,
        });
        Ok(())
    }

    /// An Enhanced Packet Block.
    fn enhanced_packet(&self, block: &[u8], offset: u64) -> Result<Found, ReadError> {
        let big_endian = self.big_endian;
        let length = block.len();
        let interface_id = read_u32(&block[8..12], big_endian);
        let caplen = read_u32(&block[20..24], big_endian);
        let Some(&interface) = self.interfaces.get(interface_id as usize) else {
            return Err(corrupt(
                offset + 8,
                Corruption::UnknownInterface {
                    interface: interface_id,
                    known: self.interfaces.len(),
                },
            ));
        };
        check_caplen(caplen, interface.snaplen).map_err(|what| corrupt(offset, what))?;
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
        let (_, epb) = parsed.map_err(|e| corrupt(offset, Corruption::Parser(nom_message(e))))?;
        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
        Ok(Found {
            record_len: length,
            data_start: 28,
            data_len: caplen as usize,
            time: ticks_to_time(ticks, interface.units_per_sec, interface.offset_secs),
            link_type: interface.link_type,
            orig_len: epb.origlen,
        })
    }

    /// A Simple Packet Block: always interface 0, no timestamp.
    fn simple_packet(&self, block: &[u8], offset: u64) -> Result<Found, ReadError> {
        let length = block.len();
        let Some(&interface) = self.interfaces.first() else {
            return Err(corrupt(
                offset,
                Corruption::UnknownInterface {
                    interface: 0,
                    known: 0,
                },
            ));
        };
        let parsed = if self.big_endian {
            parse_simplepacketblock_be(block)
        } else {
            parse_simplepacketblock_le(block)
        };
        let (_, spb) = parsed.map_err(|e| corrupt(offset, Corruption::Parser(nom_message(e))))?;
        let mut caplen = spb.origlen.min(length as u32 - 16);
        if interface.snaplen != 0 {
            caplen = caplen.min(interface.snaplen);
        }
        check_caplen(caplen, 0).map_err(|what| corrupt(offset, what))?;
        Ok(Found {
            record_len: length,
            data_start: 12,
            data_len: caplen as usize,
            // A Simple Packet Block has no timestamp; libpcap uses 0 too.
            time: Timestamp(0),
            link_type: interface.link_type,
            orig_len: spb.origlen,
        })
    }
}

/// Compares a block's trailing length (`trailer`) with its leading one.
fn check_trailer(
    trailer: &[u8],
    length: u32,
    big_endian: bool,
    offset: u64,
) -> Result<(), ReadError> {
    let trailing = read_u32(trailer, big_endian);
    if trailing != length {
        return Err(corrupt(
            offset,
            Corruption::LengthMismatch {
                leading: length,
                trailing,
            },
        ));
    }
    Ok(())
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
        let corrupt = |what| corrupt(file_offset + at as u64, what);
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

/// Seconds from an `if_tsoffset` value (8 bytes in the section's byte order).
fn ts_offset(value: &[u8], big_endian: bool) -> Result<i64, Corruption> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        Corruption::BadInterfaceOption(format!("if_tsoffset has {} bytes, expected 8", value.len()))
    })?;
    Ok(if big_endian {
        i64::from_be_bytes(bytes)
    } else {
        i64::from_le_bytes(bytes)
    })
}

/// Converts pcapng timestamp ticks to nanoseconds since the epoch, clamped to
/// the `Timestamp` range.
fn ticks_to_time(ticks: u64, units_per_sec: u64, offset_secs: i64) -> Timestamp {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(units_per_sec.max(1));
    let nanos = nanos as i128 + i128::from(offset_secs) * 1_000_000_000;
    Timestamp(nanos.clamp(0, i128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::Ng;

    #[test]
    fn blocks_in_pieces_ask_for_what_they_need_and_need_no_io() {
        let le = Ng { big_endian: false };
        let mut file = le.shb();
        let shb_len = file.len();
        file.extend(le.idb(101, 0, &[]));
        let idb_len = file.len() - shb_len;
        file.extend(le.block(0x99, b"skipped"));
        let epb = le.epb(0, 1_500_000, b"data", 4);
        file.extend(&epb);
        let mut parser = PcapNgParser::new();
        for cut in 0..shb_len {
            let needed = match parser.next_block(&file[..cut], 0).unwrap() {
                Parsed::Incomplete { needed, packet } => {
                    assert!(!packet);
                    needed
                }
                other => panic!("cut at {cut}: {other:?}"),
            };
            assert!(needed > cut && needed <= shb_len, "cut at {cut}: {needed}");
        }
        let mut at = 0;
        let mut next = |parser: &mut PcapNgParser| {
            let parsed = parser.next_block(&file[at..], at as u64).unwrap();
            at += match &parsed {
                Parsed::Block { len } => *len,
                Parsed::Discard { length } => *length as usize,
                Parsed::Packet(found) => found.record_len,
                Parsed::Incomplete { .. } => 0,
            };
            parsed
        };
        assert!(matches!(next(&mut parser), Parsed::Block { len } if len == shb_len));
        assert!(matches!(next(&mut parser), Parsed::Block { len } if len == idb_len));
        assert!(matches!(next(&mut parser), Parsed::Discard { length: 20 }));
        let Parsed::Packet(found) = next(&mut parser) else {
            panic!("an EPB");
        };
        assert_eq!((found.data_start, found.data_len), (28, 4));
        assert_eq!(found.time, Timestamp(1_500_000_000));
        assert_eq!(at, file.len());
        let start = file.len() - epb.len();
        assert!(matches!(
            parser.next_block(&file[start..file.len() - 1], start as u64),
            Ok(Parsed::Incomplete { packet: true, needed }) if needed == epb.len()
        ));
    }
}
