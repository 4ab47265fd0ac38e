//! Builders for tests, examples and fuzzing: TCP conversations written by
//! hand ([`Script`], [`Seg`]), the one pcap writer ([`PcapWriter`], with
//! `pcap()` for a whole file in memory) and pcapng blocks (`Ng`, both in unit tests only).
//!
//! For the unit tests only, the one home of what they share around the
//! analyzer: the lab's conversation (`hello`, `echo`), line framing
//! (`line_options`), running segments through an analyzer (`analyze`,
//! `push_all`, `push_with_events`) and reading what it found (`one`,
//! `requests`, `responses`).
//!
//! Public so that the end-to-end tests and `examples/gen_capture.rs` write
//! captures the same way the unit tests do; nothing in the analyzer uses it.

use std::io::{self, Write};
use std::net::SocketAddr;

#[cfg(test)]
use super::event::Event;
#[cfg(test)]
use super::flows::{Analyzer, Options};
#[cfg(test)]
use super::model::{Analysis, Connection};
use super::model::{Side, Timestamp};
use super::segment::{TcpFlags, TcpSegment};

/// The header fields of a classic pcap file.
#[derive(Debug, Clone, Copy)]
pub struct PcapFormat {
    /// Nanosecond timestamps (magic `a1b23c4d`), else microseconds.
    pub nanosecond: bool,
    /// Write big-endian.
    pub big_endian: bool,
    /// `LINKTYPE_*` of every packet.
    pub link_type: u32,
    /// The snaplen written in the header (0: not recorded).
    pub snaplen: u32,
}

impl PcapFormat {
    /// Microseconds, little-endian, as tcpdump writes: `link_type` and a
    /// 256 KiB snaplen.
    pub fn tcpdump(link_type: u32) -> Self {
        PcapFormat {
            nanosecond: false,
            big_endian: false,
            link_type,
            snaplen: 262_144,
        }
    }
}

/// Writes a classic pcap file, record by record. Written by hand: the
/// format is a 24-byte header and a 16-byte header per record, and
/// libpcap's dumper (the `pcap` crate's `Savefile`) would need a C
/// `pcap_pkthdr` and an FFI call per packet for the same bytes.
pub struct PcapWriter<W: Write> {
    out: W,
    format: PcapFormat,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, format: PcapFormat) -> io::Result<Self> {
        let magic: u32 = if format.nanosecond {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        };
        let mut header = Vec::with_capacity(24);
        let u32b = |v: u32| {
            if format.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if format.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        header.extend_from_slice(&u32b(magic));
        header.extend_from_slice(&u16b(2));
        header.extend_from_slice(&u16b(4));
        header.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        header.extend_from_slice(&u32b(format.snaplen));
        header.extend_from_slice(&u32b(format.link_type));
        out.write_all(&header)?;
        Ok(PcapWriter { out, format })
    }

    /// Writes one record as stored: seconds, fraction (micro- or
    /// nanoseconds as the format says), captured bytes and wire length.
    pub fn record(
        &mut self,
        secs: u32,
        fraction: u32,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let mut header = [0u8; 16];
        for (i, v) in [secs, fraction, data.len() as u32, orig_len]
            .into_iter()
            .enumerate()
        {
            let bytes = if self.format.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            header[i * 4..i * 4 + 4].copy_from_slice(&bytes);
        }
        self.out.write_all(&header)?;
        self.out.write_all(data)
    }

    /// Writes a whole packet captured at `time` (nanoseconds since the epoch).
    pub fn packet(&mut self, time: Timestamp, data: &[u8]) -> io::Result<()> {
        let secs = (time.0 / 1_000_000_000) as u32;
        let nanos = (time.0 % 1_000_000_000) as u32;
        let fraction = if self.format.nanosecond {
            nanos
        } else {
            nanos / 1_000
        };
        self.record(secs, fraction, data, data.len() as u32)
    }

    /// The output, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
/// A pcap file in memory: `records` are (seconds, fraction, captured data,
/// original length).
pub(crate) fn pcap(
    nanosecond: bool,
    big_endian: bool,
    link_type: u32,
    snaplen: u32,
    records: &[(u32, u32, &[u8], u32)],
) -> Vec<u8> {
    let format = PcapFormat {
        nanosecond,
        big_endian,
        link_type,
        snaplen,
    };
    let mut w = PcapWriter::new(Vec::new(), format).expect("writing to memory");
    for &(secs, fraction, data, orig_len) in records {
        w.record(secs, fraction, data, orig_len)
            .expect("writing to memory");
    }
    w.finish().expect("writing to memory")
}

/// Runs segments through an [`Analyzer`], numbered from 1 in order.
#[cfg(test)]
pub(crate) fn analyze(options: Options, segs: &[Seg]) -> Analysis {
    let mut a = Analyzer::new(options);
    push_all(&mut a, segs);
    a.finish()
}

/// Pushes segments into `analyzer`, numbered from 1 in order.
#[cfg(test)]
pub(crate) fn push_all(analyzer: &mut Analyzer, segs: &[Seg]) {
    for (i, s) in segs.iter().enumerate() {
        analyzer.push(&s.view(i as u64 + 1));
    }
}

/// Pushes segments into `analyzer`, numbered from 1 in order, handing each
/// event to `on_event` as it comes, with the number of the segment that
/// released it. Settled connections come out too (as
/// [`Event::Closed`]), so they are not in the analyzer's final analysis.
#[cfg(test)]
pub(crate) fn push_with_events(
    analyzer: &mut Analyzer,
    segs: &[Seg],
    mut on_event: impl FnMut(u64, Event),
) {
    for (i, s) in segs.iter().enumerate() {
        let number = i as u64 + 1;
        analyzer.push(&s.view(number));
        while let Some(event) = analyzer.next_event() {
            on_event(number, event);
        }
    }
}

/// Line framing: each exchange is settled as soon as its response is
/// whole (`auto` waits for the framing to be known).
#[cfg(test)]
pub(crate) fn line_options() -> Options {
    Options {
        framing: super::FramingChoice::Line,
        ..Options::default()
    }
}

/// The one connection of `analysis` (fails the test if there are others).
#[cfg(test)]
pub(crate) fn one(analysis: &Analysis) -> &Connection {
    assert_eq!(analysis.connections.len(), 1, "{analysis:#?}");
    &analysis.connections[0]
}

/// The request previews of `c`'s exchanges, in order.
#[cfg(test)]
pub(crate) fn requests(c: &Connection) -> Vec<&str> {
    c.exchanges
        .iter()
        .map(|e| e.request_preview.as_str())
        .collect()
}

/// The response previews of `c`'s exchanges, in order.
#[cfg(test)]
pub(crate) fn responses(c: &Connection) -> Vec<&str> {
    c.exchanges
        .iter()
        .map(|e| e.response_preview.as_str())
        .collect()
}

/// The lab's conversation as far as its first echo: the handshake (SYN
/// at 0, RTT 100 µs), then `hello` at 1 ms answered 200 µs later.
#[cfg(test)]
pub(crate) fn hello() -> Script {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    w.c(1_000, b"hello\n");
    w.s(1_200, b"Echo: hello\n");
    w
}

/// [`hello`], then `second` at 2 ms answered 300 µs later, and if `close`
/// closed by the client at 4 ms.
#[cfg(test)]
pub(crate) fn echo(close: bool) -> Script {
    let mut w = hello();
    w.c(2_000, b"second\n");
    w.s(2_300, b"Echo: second\n");
    if close {
        w.client_closes(4_000);
    }
    w
}

/// Segments as a raw-IP pcap (`LINKTYPE_RAW`, nanoseconds), each with
/// correct IP and TCP headers, timed as [`Seg::view`] times them.
#[cfg(test)]
pub(crate) fn segments_pcap(segs: &[Seg]) -> Vec<u8> {
    let format = PcapFormat {
        nanosecond: true,
        big_endian: false,
        link_type: super::decode::linktype::RAW,
        snaplen: 262_144,
    };
    let mut w = PcapWriter::new(Vec::new(), format).expect("writing to memory");
    for s in segs {
        w.packet(Timestamp(s.time * 1_000), &s.ip_packet())
            .expect("writing to memory");
    }
    w.finish().expect("writing to memory")
}

/// An owned segment, to build captures by hand.
#[derive(Debug, Clone)]
pub struct Seg {
    /// Capture time, microseconds.
    pub time: u64,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Captured payload.
    pub payload: Vec<u8>,
    /// Payload length on the wire.
    pub payload_len: u32,
}

impl Seg {
    /// The segment as the reader hands it out, numbered `number`, its
    /// time in nanoseconds.
    pub fn view(&self, number: u64) -> TcpSegment<'_> {
        TcpSegment {
            number,
            time: Timestamp(self.time * 1_000),
            src: self.src,
            dst: self.dst,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            payload: &self.payload,
            payload_len: self.payload_len,
            window: 502,
            window_scale: None,
        }
    }

    /// The segment as an IP packet (IPv4 or IPv6 by its addresses) with
    /// valid checksums.
    pub fn ip_packet(&self) -> Vec<u8> {
        let builder = match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                etherparse::PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64)
            }
            (s, d) => {
                let v6 = |a: SocketAddr| match a {
                    SocketAddr::V6(a) => a.ip().octets(),
                    SocketAddr::V4(a) => a.ip().to_ipv6_mapped().octets(),
                };
                etherparse::PacketBuilder::ipv6(v6(s), v6(d), 64)
            }
        };
        let mut b = builder.tcp(self.src.port(), self.dst.port(), self.seq, 65535);
        if self.flags.syn {
            b = b.syn();
        }
        if self.flags.ack {
            b = b.ack(self.ack);
        }
        if self.flags.fin {
            b = b.fin();
        }
        if self.flags.rst {
            b = b.rst();
        }
        if self.flags.psh {
            b = b.psh();
        }
        let mut out = Vec::new();
        b.write(&mut out, &self.payload)
            .expect("a segment built by hand fits in a packet");
        out
    }
}

/// A TCP conversation written by hand; times are in microseconds.
pub struct Script {
    /// The client's address (10.0.0.2:40000 unless changed).
    pub client: SocketAddr,
    /// The server's address (10.0.0.1:2222 unless changed).
    pub server: SocketAddr,
    /// Next sequence number of the client.
    pub cseq: u32,
    /// Next sequence number of the server.
    pub sseq: u32,
    /// The segments so far.
    pub segs: Vec<Seg>,
}

/// TCP flags without PSH.
pub(crate) fn flags(syn: bool, ack: bool, fin: bool, rst: bool) -> TcpFlags {
    TcpFlags::from_bits(
        u16::from(syn) << 1 | u16::from(ack) << 4 | u16::from(fin) | u16::from(rst) << 2,
    )
}

impl Script {
    /// A conversation between 10.0.0.2:40000 and 10.0.0.1:2222 with these
    /// initial sequence numbers.
    pub fn new(cisn: u32, sisn: u32) -> Self {
        Script {
            client: "10.0.0.2:40000".parse().unwrap(),
            server: "10.0.0.1:2222".parse().unwrap(),
            cseq: cisn,
            sseq: sisn,
            segs: Vec::new(),
        }
    }

    /// Appends a segment from `from` with flags `f`, advancing its sequence number.
    pub fn seg(&mut self, t: u64, from: Side, f: TcpFlags, data: &[u8]) -> Seg {
        let (src, dst, seq, ack) = match from {
            Side::Client => (self.client, self.server, self.cseq, self.sseq),
            Side::Server => (self.server, self.client, self.sseq, self.cseq),
        };
        let advance = data.len() as u32 + u32::from(f.syn) + u32::from(f.fin);
        match from {
            Side::Client => self.cseq = self.cseq.wrapping_add(advance),
            Side::Server => self.sseq = self.sseq.wrapping_add(advance),
        }
        let seg = Seg {
            time: t,
            src,
            dst,
            seq,
            ack,
            flags: f,
            payload: data.to_vec(),
            payload_len: data.len() as u32,
        };
        self.segs.push(seg.clone());
        seg
    }

    /// SYN at `t`, SYN-ACK `rtt` later, the client's ACK 10 µs after.
    pub fn handshake(&mut self, t: u64, rtt: u64) {
        self.seg(t, Side::Client, flags(true, false, false, false), b"");
        self.seg(t + rtt, Side::Server, flags(true, true, false, false), b"");
        self.seg(
            t + rtt + 10,
            Side::Client,
            flags(false, true, false, false),
            b"",
        );
    }

    /// Data from the client (ACK set).
    pub fn c(&mut self, t: u64, data: &[u8]) -> Seg {
        self.seg(t, Side::Client, flags(false, true, false, false), data)
    }

    /// Data from the server (ACK set).
    pub fn s(&mut self, t: u64, data: &[u8]) -> Seg {
        self.seg(t, Side::Server, flags(false, true, false, false), data)
    }

    /// A FIN (with ACK) from `from`.
    pub fn fin(&mut self, t: u64, from: Side) -> Seg {
        self.seg(t, from, flags(false, true, true, false), b"")
    }

    /// An RST (with ACK) from `from`.
    pub fn rst(&mut self, t: u64, from: Side) -> Seg {
        self.seg(t, from, flags(false, true, false, true), b"")
    }

    /// A bare ACK from `from`.
    pub fn ack(&mut self, t: u64, from: Side) -> Seg {
        self.seg(t, from, flags(false, true, false, false), b"")
    }

    /// An orderly close started by the client at `t`: its FIN, the
    /// server's FIN 100 µs later, the client's last ACK 50 µs after that.
    pub fn client_closes(&mut self, t: u64) {
        self.fin(t, Side::Client);
        self.fin(t + 100, Side::Server);
        self.ack(t + 150, Side::Client);
    }
}

/// pcapng building blocks, in one byte order.
#[cfg(test)]
pub(crate) struct Ng {
    /// Write big-endian.
    pub big_endian: bool,
}

#[cfg(test)]
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
