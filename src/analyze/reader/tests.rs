//! Tests of the capture reader: formats, truncation, corruption, hostile input.

use super::*;
use crate::analyze::decode::testing::{ether_frame, tcp_v4, tcp_v6};
use crate::analyze::testing::{Ng, pcap};
use crate::analyze::warnings::MAX_WARNINGS;
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
            summary.warnings[..],
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
    assert!(matches!(&err, ReadError::UnknownFormat { head } if head == b"GET / HTTP/1.1\r\n"));
    assert_eq!(
        err.to_string(),
        "this is not a capture file: it starts with 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d \
         0a (\"GET / HTTP/1.1..\"), while a pcap file starts with a1b2c3d4 or a1b23c4d (either \
         byte order) and a pcapng file with 0a0d0d0a; give a capture written by tcpdump, tshark, \
         Wireshark or reqresp capture"
    );
    assert!(matches!(
        segments(b"").unwrap_err(),
        ReadError::TooShort { len: 0 }
    ));
    let header_only = &three_records(false, false)[..20];
    let err = segments(header_only).unwrap_err();
    assert!(matches!(err, ReadError::TooShort { len: 20 }));
    assert!(err.to_string().starts_with("this is not a capture file"));
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
    assert_eq!(summary.warnings.total(), MAX_WARNINGS as u64 + 50);
    let all = summary.warnings.into_lines();
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

/// Drives a container parser alone over `data`, as the reader would but
/// without any I/O, checking what it says of the bytes at hand.
fn parse_alone(data: &[u8], pcapng: bool) {
    use super::pcap::PcapHeader;
    use super::pcapng::{MAX_PARSED_BLOCK, PcapNgParser};
    let header = PcapHeader {
        big_endian: false,
        nanosecond: false,
        modified: false,
        snaplen: 0,
        link_type: 1,
    };
    let mut ng = PcapNgParser::new();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let parsed = if pcapng {
            ng.next_block(rest, at as u64)
        } else {
            header.next_record(rest, at as u64)
        };
        let len = match parsed {
            Err(ReadError::Corrupt { offset, .. }) => {
                assert!(offset >= at as u64 && offset < data.len() as u64 + 12);
                return;
            }
            Err(e) => panic!("a parser does no I/O: {e}"),
            Ok(Parsed::Incomplete { needed, .. }) => {
                assert!(needed > rest.len(), "asks for more than it has");
                assert!(needed <= MAX_PARSED_BLOCK as usize, "bounded");
                return;
            }
            Ok(Parsed::Packet(found)) => {
                assert!(found.data_start + found.data_len <= found.record_len);
                assert!(found.record_len <= rest.len());
                found.record_len
            }
            Ok(Parsed::Block { len }) => len,
            Ok(Parsed::Discard { length }) => length as usize,
        };
        assert!(len > 0, "always moves on");
        at += len;
    }
}

proptest! {
    #[test]
    fn the_parsers_alone_never_panic_and_ask_only_for_what_they_need(
        pcapng in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let mut file = if pcapng { pcapng_two_sections() } else { three_records(true, false)[24..].to_vec() };
        for (at, value) in flips {
            let at = at % file.len();
            file[at] = value;
        }
        parse_alone(&file, pcapng);
    }

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
