//! Writes a large synthetic pcap for the benchmark (`benches/analyze.sh`):
//! many short line-framed echo conversations, as a capture on the server's
//! side of a busy lab would see them.
//!
//! ```text
//! cargo run --release --example gen_capture -- --packets 2400000 -o /tmp/big.pcap
//! ```
//!
//! Each connection: SYN, SYN-ACK, ACK; 1–5 exchanges of a request line
//! (`PSH,ACK`), its `Echo: ` response and the client's ACK; then FIN, FIN,
//! ACK: 6 + 3 × exchanges packets. Clients come from 2 000 addresses in
//! 10.1.0.0/16 with increasing ephemeral ports; the server is 10.0.0.1:2222.
//! Connections arrive at random (Poisson, 3 000 per second by default) and
//! overlap, so packets of a few hundred connections interleave; round-trip
//! times, server delays and think times are drawn per connection and per
//! message. Sequence and acknowledgement numbers, IP and TCP checksums are
//! all correct, so tshark and tcptrace read the file without complaint.
//! The same `--seed` gives the same file.
//!
//! Other shapes for the analyzer's memory (`benches/analyze-memory.sh`):
//! `--shape syn-only`, `never-close` and `hole`, `--connections N` instead
//! of a packet count, `--exchanges N`, and `--longlived` (one connection
//! opened first that talks once a second and never closes).
//!
//! With `--mix`, connections speak one of four protocols in turn: the lab's
//! echo lines, HTTP/1.1 (`GET` and a `Content-Length` body), RESP (`GET key`
//! and a bulk string) and the memcached text protocol (`get key` and a
//! `VALUE … END` answer), all on the same port: `reqresp analyze --framing
//! auto` must recognise each by its content.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use etherparse::{PacketBuilder, TcpOptionElement};
use reqresp::analyze::model::Timestamp;
use reqresp::analyze::testing::{PcapFormat, PcapWriter};

/// Generate a synthetic capture of many short request/response connections.
#[derive(Parser)]
struct Args {
    /// Packets to write (connections are never cut short, so the file may
    /// hold one or two fewer).
    #[arg(long, default_value_t = 2_400_000)]
    packets: u64,
    /// Output pcap file.
    #[arg(short, long)]
    output: PathBuf,
    /// Seed of the random generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mean rate of new connections per second.
    #[arg(long, default_value_t = 3000.0)]
    rate: f64,
    /// What each connection does: `echo` (the lab's conversations),
    /// `syn-only` (one SYN never answered: a scan or a SYN flood),
    /// `never-close` (handshake and exchanges, then silence: no FIN),
    /// `hole` (handshake, then 1 KiB of data sent after 100 bytes that
    /// were not captured, then silence).
    #[arg(long, value_enum, default_value_t = Shape::Echo)]
    shape: Shape,
    /// Mix HTTP/1.1, RESP and memcached conversations in with the echo ones.
    #[arg(long)]
    mix: bool,
    /// Write this many connections (then `--packets` is not a limit).
    #[arg(long)]
    connections: Option<u64>,
    /// Exchanges per connection (default: 1 to 5 at random).
    #[arg(long)]
    exchanges: Option<u32>,
    /// Open one long-lived connection first: it exchanges once a second for
    /// the whole capture and is never closed.
    #[arg(long)]
    longlived: bool,
}

/// What each generated connection does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Shape {
    /// Handshake, 1–5 exchanges, FIN/FIN/ACK.
    Echo,
    /// A SYN and nothing else.
    SynOnly,
    /// Handshake and 1–5 exchanges, never closed.
    NeverClose,
    /// Handshake, then 1 KiB beyond a hole of 100 bytes, never closed.
    Hole,
}

impl Shape {
    /// Packets of a connection with `exchanges` exchanges.
    fn packets(self, exchanges: u64) -> u64 {
        match self {
            Shape::Echo => 6 + 3 * exchanges,
            Shape::SynOnly => 1,
            Shape::NeverClose => 3 + 3 * exchanges,
            Shape::Hole => 4,
        }
    }
}

/// Start of the capture: 2024-05-01 10:00:00 UTC.
const START_NS: u64 = 1_714_557_600 * 1_000_000_000;
const SERVER_IP: [u8; 4] = [10, 0, 0, 1];
const SERVER_PORT: u16 = 2222;
const SERVER_MAC: [u8; 6] = [0x02, 0x42, 0x0a, 0x00, 0x00, 0x01];
const CLIENT_ADDRESSES: u64 = 2000;
const LINKTYPE_ETHERNET: u32 = 1;
const WORDS: &[&str] = &[
    "hello", "ticket", "order", "status", "ping", "weather", "lab", "request", "response", "tcp",
    "socket", "server", "client", "echo", "message", "bytes", "stream", "frame",
];

/// splitmix64: a tiny seeded generator, enough for reproducible test data
/// (the `rand` crate is not a dependency of reqresp, and this is 10 lines).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Exponentially distributed with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        -mean * (1.0 - u).ln()
    }
}

/// Where a connection is in its life: the packet it sends next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Syn,
    SynAck,
    HandshakeAck,
    Request,
    Response,
    ResponseAck,
    ClientFin,
    ServerFin,
    LastAck,
}

struct Conn {
    client_ip: [u8; 4],
    client_mac: [u8; 6],
    client_port: u16,
    /// Next sequence number of each side.
    client_seq: u32,
    server_seq: u32,
    exchanges_left: u32,
    rtt_ns: u64,
    step: Step,
    request: Vec<u8>,
    shape: Shape,
    /// What it speaks: 0 echo lines, 1 HTTP/1.1, 2 RESP, 3 memcached.
    protocol: u8,
    /// The long-lived connection: a request every second, never closed.
    long: bool,
}

/// One packet: direction, flags, payload.
struct Segment<'a> {
    from_client: bool,
    syn: bool,
    fin: bool,
    psh: bool,
    ack: bool,
    payload: &'a [u8],
}

impl Conn {
    /// Builds the packet of the current step into `out` and moves on;
    /// returns the delay to the next packet, or `None` when the connection
    /// is over.
    fn emit(&mut self, rng: &mut Rng, out: &mut Vec<u8>) -> Option<u64> {
        let (segment, next, delay): (Segment, Option<Step>, u64) = match self.step {
            Step::Syn => (
                Segment::control(true, true, false, false),
                Some(Step::SynAck),
                rng.range(15_000, 40_000),
            ),
            Step::SynAck => (
                Segment::control(false, true, false, true),
                Some(Step::HandshakeAck),
                self.rtt_ns,
            ),
            Step::HandshakeAck => (
                Segment::control(true, false, false, true),
                Some(Step::Request),
                rng.range(50_000, 5_000_000),
            ),
            Step::Request => {
                self.request = request(self.protocol, rng);
                (
                    Segment::data(true),
                    Some(Step::Response),
                    rng.range(20_000, 300_000),
                )
            }
            Step::Response => (Segment::data(false), Some(Step::ResponseAck), self.rtt_ns),
            Step::ResponseAck => {
                self.exchanges_left -= 1;
                if self.exchanges_left > 0 {
                    (
                        Segment::control(true, false, false, true),
                        Some(Step::Request),
                        rng.range(200_000, 20_000_000),
                    )
                } else {
                    (
                        Segment::control(true, false, false, true),
                        Some(Step::ClientFin),
                        rng.range(50_000, 2_000_000),
                    )
                }
            }
            Step::ClientFin => (
                Segment::control(true, false, true, true),
                Some(Step::ServerFin),
                rng.range(20_000, 100_000),
            ),
            Step::ServerFin => (
                Segment::control(false, false, true, true),
                Some(Step::LastAck),
                self.rtt_ns,
            ),
            Step::LastAck => (Segment::control(true, false, false, true), None, 0),
        };
        if self.shape == Shape::Hole && self.step == Step::Request {
            // 100 bytes sent and not captured, then 1 KiB held beyond them.
            self.client_seq = self.client_seq.wrapping_add(100);
            let data = [b'x'; 1024];
            let segment = Segment {
                payload: &data,
                ..Segment::data(true)
            };
            self.write(&segment, out);
            return None;
        }
        if self.long && self.step == Step::ResponseAck {
            self.exchanges_left = 2;
            self.write(&Segment::control(true, false, false, true), out);
            self.step = Step::Request;
            return Some(1_000_000_000);
        }
        let next = match (self.shape, self.step) {
            (Shape::SynOnly, Step::Syn) => None,
            (Shape::NeverClose, Step::ResponseAck) if self.exchanges_left == 0 => None,
            _ => next,
        };
        let payload: Vec<u8> = match self.step {
            Step::Request => self.request.clone(),
            Step::Response => response(self.protocol, &self.request),
            _ => Vec::new(),
        };
        let segment = Segment {
            payload: &payload,
            psh: !payload.is_empty(),
            ..segment
        };
        self.write(&segment, out);
        next.map(|step| {
            self.step = step;
            delay
        })
    }

    fn write(&mut self, s: &Segment, out: &mut Vec<u8>) {
        let (src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port) = if s.from_client {
            (
                self.client_mac,
                SERVER_MAC,
                self.client_ip,
                SERVER_IP,
                self.client_port,
                SERVER_PORT,
            )
        } else {
            (
                SERVER_MAC,
                self.client_mac,
                SERVER_IP,
                self.client_ip,
                SERVER_PORT,
                self.client_port,
            )
        };
        let (seq, ack) = if s.from_client {
            (self.client_seq, self.server_seq)
        } else {
            (self.server_seq, self.client_seq)
        };
        // Window: unscaled in SYNs, then 502 << 7 ≈ 64 KiB as Linux shows it.
        let window = if s.syn { 64_240 } else { 502 };
        let mut tcp = PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv4(src_ip, dst_ip, 64)
            .tcp(src_port, dst_port, seq, window);
        if s.syn {
            tcp = tcp
                .options(&[
                    TcpOptionElement::MaximumSegmentSize(1460),
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                    TcpOptionElement::Noop,
                    TcpOptionElement::WindowScale(7),
                ])
                .expect("SYN options fit in a TCP header");
        }
        if s.syn {
            tcp = tcp.syn();
        }
        if s.fin {
            tcp = tcp.fin();
        }
        if s.psh {
            tcp = tcp.psh();
        }
        if s.ack {
            tcp = tcp.ack(ack);
        }
        out.clear();
        tcp.write(out, s.payload)
            .expect("writing a packet into a Vec cannot fail");
        let advance = s.payload.len() as u32 + u32::from(s.syn) + u32::from(s.fin);
        if s.from_client {
            self.client_seq = self.client_seq.wrapping_add(advance);
        } else {
            self.server_seq = self.server_seq.wrapping_add(advance);
        }
    }
}

impl Segment<'static> {
    fn control(from_client: bool, syn: bool, fin: bool, ack: bool) -> Self {
        Segment {
            from_client,
            syn,
            fin,
            psh: false,
            ack,
            payload: &[],
        }
    }

    /// A data segment; its payload is filled in by [`Conn::emit`].
    fn data(from_client: bool) -> Self {
        Segment {
            from_client,
            syn: false,
            fin: false,
            psh: true,
            ack: true,
            payload: &[],
        }
    }
}

/// A request in `protocol` (see [`Conn::protocol`]).
fn request(protocol: u8, rng: &mut Rng) -> Vec<u8> {
    let word = WORDS[rng.range(0, WORDS.len() as u64 - 1) as usize];
    let n = rng.range(1, 99_999);
    match protocol {
        1 => format!("GET /{word}/{n} HTTP/1.1\r\nHost: lab\r\n\r\n").into_bytes(),
        2 => {
            let key = format!("{word}:{n}");
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
        }
        3 => format!("get {word}:{n}\r\n").into_bytes(),
        _ => message(rng),
    }
}

/// The answer to `request` in `protocol`: the request echoed, as a body or
/// value.
fn response(protocol: u8, request: &[u8]) -> Vec<u8> {
    let value = request.split(|&b| b == b'\r').next().unwrap_or_default();
    match protocol {
        1 => [
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", value.len()).as_bytes(),
            value,
        ]
        .concat(),
        2 => [format!("${}\r\n", value.len()).as_bytes(), value, b"\r\n"].concat(),
        3 => [
            format!("VALUE k 0 {}\r\n", value.len()).as_bytes(),
            value,
            b"\r\nEND\r\n",
        ]
        .concat(),
        _ => [b"Echo: ".as_slice(), request].concat(),
    }
}

/// A request line of 2–8 words, newline-terminated.
fn message(rng: &mut Rng) -> Vec<u8> {
    let words = rng.range(2, 8);
    let mut line = Vec::with_capacity(64);
    for i in 0..words {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(WORDS[rng.range(0, WORDS.len() as u64 - 1) as usize].as_bytes());
    }
    line.extend_from_slice(format!(" {}\n", rng.range(1, 99_999)).as_bytes());
    line
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.packets >= 9,
        "--packets must be at least 9 (one connection)"
    );
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let started = Instant::now();
    let file = File::create(&args.output)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.output.display()))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let mut pcap = PcapWriter::new(out, PcapFormat::tcpdump(LINKTYPE_ETHERNET))?;
    let mut rng = Rng(args.seed);

    let mean_gap_ns = 1e9 / args.rate;
    let packets = if args.connections.is_some() {
        u64::MAX
    } else {
        args.packets
    };
    let connections = args.connections.unwrap_or(u64::MAX);
    let mut next_ports: HashMap<u64, u16> = HashMap::new();
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut next_arrival = Some(START_NS);
    let (mut committed, mut written, mut opened, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut packet = Vec::with_capacity(256);

    loop {
        let next_event = queue.peek().map(|Reverse((t, _))| *t);
        match (next_arrival, next_event) {
            (Some(arrival), event) if event.is_none_or(|e| arrival <= e) => {
                let shape = args.shape;
                let remaining = packets - committed;
                let least = shape.packets(1);
                if remaining < least || opened >= connections {
                    next_arrival = None;
                    continue;
                }
                let fits = (remaining - shape.packets(0)) / 3;
                let mut exchanges = match args.exchanges {
                    Some(n) => u64::from(n.max(1)),
                    None => rng.range(1, 5),
                }
                .min(fits);
                if shape != Shape::SynOnly && remaining - shape.packets(exchanges) < least {
                    // Nothing would fit after this one: take up the rest.
                    exchanges = fits;
                }
                committed += shape.packets(exchanges);
                let exchanges = exchanges as u32;
                let address = rng.range(0, CLIENT_ADDRESSES - 1);
                let port = next_ports
                    .entry(address)
                    .or_insert_with(|| rng.range(32_768, 50_000) as u16);
                *port = if *port >= 60_999 { 32_768 } else { *port + 1 };
                let client_ip = [10, 1, (address / 250) as u8, (address % 250) as u8 + 1];
                conns.insert(
                    opened,
                    Conn {
                        client_ip,
                        client_mac: [0x02, 0x42, 10, 1, client_ip[2], client_ip[3]],
                        client_port: *port,
                        client_seq: rng.next() as u32,
                        server_seq: rng.next() as u32,
                        exchanges_left: exchanges,
                        rtt_ns: rng.range(100_000, 2_000_000),
                        step: Step::Syn,
                        request: Vec::new(),
                        shape: if args.longlived && opened == 0 {
                            Shape::Echo
                        } else {
                            shape
                        },
                        protocol: if args.mix { (opened % 4) as u8 } else { 0 },
                        long: args.longlived && opened == 0,
                    },
                );
                queue.push(Reverse((arrival, opened)));
                opened += 1;
                next_arrival = Some(arrival + rng.exp(mean_gap_ns).max(1.0) as u64);
            }
            (_, Some(_)) => {
                if next_arrival.is_none() && args.longlived && conns.len() == 1 {
                    break; // only the long-lived one is left: it is never closed
                }
                let Reverse((time, id)) = queue.pop().expect("peeked");
                let conn = conns.get_mut(&id).expect("queued connections exist");
                match conn.emit(&mut rng, &mut packet) {
                    Some(delay) => queue.push(Reverse((time + delay, id))),
                    None => {
                        conns.remove(&id);
                    }
                }
                pcap.packet(Timestamp(time), &packet)?;
                written += 1;
                bytes += packet.len() as u64;
            }
            (None, None) => break,
            (Some(_), None) => unreachable!("handled by the first arm"),
        }
    }
    pcap.finish()?;
    eprintln!(
        "wrote {} packets ({} connections, {:.1} MB of packet data) to {} in {:.1} s",
        written,
        opened,
        bytes as f64 / 1e6,
        args.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
