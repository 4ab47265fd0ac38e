//! The flow tracker: TCP segments in, an [`Analysis`] out.
//!
//! Written by hand, on purpose: connection tracking is the heart of
//! `reqresp analyze`, and its rules are part of what the lab teaches.
//!
//! # Rules
//!
//! - **Connections** are keyed by their address pair, either direction. A
//!   SYN (without ACK) on a known pair starts a *new* connection (port reuse)
//!   unless it repeats the client's initial sequence number (a retransmitted
//!   SYN). Connections are listed in the order their first packet was seen.
//! - **Sides.** The sender of a SYN is the client; the receiver of a SYN-ACK
//!   is the client. With neither captured (the capture began mid-connection),
//!   the server is [`Options::server`] if it is one of the two addresses, else
//!   the end using [`Options::port`], else — a guess, noted on the
//!   connection — the end on port 2222 (the lab's), else the end with the
//!   lower port (well-known ports are low, ephemeral ones high), else the
//!   receiver of the first packet.
//! - **Handshake**: time of the first SYN, of the first SYN-ACK and of the
//!   client's first ACK acknowledging the SYN-ACK; `rtt_us` is SYN-ACK minus
//!   the last SYN sent before it (a retransmitted SYN does not count its
//!   timeout). Without a captured SYN, `handshake` is `null` and a note says
//!   so.
//! - **Teardown**: the first FIN of each side and the first RST of each
//!   side are the close events; the initiator is whoever sent the first one,
//!   the kind is `rst` if any RST was seen. A connection is *closed* after an
//!   RST, or after both FINs once every byte before them was reassembled;
//!   its buffers are then freed, it stays in the output, and later packets
//!   on its address pair (final ACKs, retransmissions) only move `last_seen`.
//! - **Streaming.** Bytes are decoded into messages as soon as they are in
//!   order, and then dropped; out-of-order bytes held per connection (both
//!   directions together) are bounded by [`Options::max_buffered_per_flow`]:
//!   past it, the oldest hole is given up on, reported as a gap and warned
//!   about.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::model::{
    Analysis, Close, CloseEvent, CloseKind, Connection, Gap, Handshake, Side, Timestamp,
};
use super::pairing::{FramingChoice, PairLimits, Pairer, side_name};
use super::reassembly::{Chunk, ChunkData, Reassembler};
use super::segment::TcpSegment;
use crate::protocol::Framing;

/// The lab's server port, taken for the server side when nothing else tells.
pub const LAB_PORT: u16 = 2222;

/// Most warnings kept; further ones are counted in a last warning.
const MAX_WARNINGS: usize = 100;

/// How to analyze a capture.
#[derive(Debug, Clone)]
pub struct Options {
    /// How to cut streams into messages.
    pub framing: FramingChoice,
    /// The server's address, for connections whose SYN was not captured.
    pub server: Option<SocketAddr>,
    /// The server's port, for connections whose SYN was not captured.
    pub port: Option<u16>,
    /// Largest message decoded from a buffer; bigger ones are streamed past
    /// (counted and previewed, not held whole).
    pub max_message: usize,
    /// Most out-of-order bytes held per connection before giving up on a hole.
    pub max_buffered_per_flow: usize,
    /// Characters of preview per message.
    pub preview_len: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            framing: FramingChoice::Auto,
            server: None,
            port: None,
            max_message: 1 << 20,
            max_buffered_per_flow: 4 << 20,
            preview_len: 40,
        }
    }
}

/// Address pair in a canonical order, the same for both directions.
type Key = (SocketAddr, SocketAddr);

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b { (a, b) } else { (b, a) }
}

/// The table entry of an address pair: its latest connection.
#[derive(Debug)]
struct Slot {
    /// Index in the output list.
    conn: usize,
    client: SocketAddr,
    /// The client's initial sequence number, when known (SYN or SYN-ACK).
    client_isn: Option<u32>,
    /// Live state; `None` once closed.
    flow: Option<Box<Flow>>,
}

/// Live state of an open connection.
#[derive(Debug)]
struct Flow {
    /// Client to server, server to client.
    streams: [Reassembler; 2],
    pairer: Pairer,
    server_isn: Option<u32>,
    /// Time of the last SYN before the SYN-ACK.
    last_syn: Option<Timestamp>,
    /// First FIN / RST seen from each side (client, server).
    fin: [bool; 2],
    rst: [bool; 2],
    /// A buffer-bound warning was given for this direction.
    warned_bound: [bool; 2],
}

fn slot_of(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Tracks every TCP connection of a capture, segment by segment.
///
/// ```
/// use reqresp::analyze::flows::{Analyzer, Options};
/// let analyzer = Analyzer::new(Options::default());
/// // for seg in reader { analyzer.push(&seg); }
/// let analysis = analyzer.finish();
/// assert!(analysis.connections.is_empty());
/// ```
#[derive(Debug)]
pub struct Analyzer {
    opts: Options,
    table: HashMap<Key, Slot>,
    connections: Vec<Connection>,
    warnings: Vec<String>,
    suppressed: u64,
    last_packet: u64,
}

impl Analyzer {
    /// An analyzer with nothing seen yet.
    pub fn new(opts: Options) -> Self {
        Analyzer {
            opts,
            table: HashMap::new(),
            connections: Vec::new(),
            warnings: Vec::new(),
            suppressed: 0,
            last_packet: 0,
        }
    }

    /// Connections seen so far.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Adds a warning (for the reader's own problems too), keeping at most
    /// 100 and counting the rest.
    pub fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.suppressed += 1;
        }
    }

    fn limits(&self) -> PairLimits {
        PairLimits {
            max_message: self.opts.max_message,
            preview_len: self.opts.preview_len,
        }
    }

    /// Takes the next segment of the capture (in capture order).
    pub fn push(&mut self, seg: &TcpSegment<'_>) {
        self.last_packet = self.last_packet.max(seg.number);
        let k = key(seg.src, seg.dst);
        let opening = seg.flags.syn && !seg.flags.ack && !seg.flags.rst;
        let new_needed = match self.table.get(&k) {
            None => true,
            Some(slot) => {
                opening && seg.src == slot.client && slot.client_isn != Some(seg.seq)
                    || opening && seg.src != slot.client && slot.flow.is_none()
            }
        };
        if new_needed {
            if let Some(old) = self.table.remove(&k) {
                self.close_flow(old, seg.time);
            }
            let slot = self.open(seg);
            self.table.insert(k, slot);
        }
        let Some(slot) = self.table.get_mut(&k) else {
            return;
        };
        let conn = &mut self.connections[slot.conn];
        conn.last_seen = conn.last_seen.max(seg.time);
        if slot.flow.is_none() {
            return;
        }
        let side = if seg.src == slot.client {
            Side::Client
        } else {
            Side::Server
        };
        let mut warnings = Vec::new();
        if track(&self.opts, slot, conn, side, seg, &mut warnings)
            && let Some(flow) = slot.flow.take()
        {
            finalize(*flow, conn, seg.time, seg.number);
        }
        for w in warnings {
            self.warn(w);
        }
    }

    /// Creates the connection a segment opens (or is the first seen of).
    fn open(&mut self, seg: &TcpSegment<'_>) -> Slot {
        let (client, server, how) = choose_sides(seg, &self.opts);
        let id = u32::try_from(self.connections.len() + 1).unwrap_or(u32::MAX);
        let mut conn = Connection {
            id,
            client,
            server,
            first_seen: seg.time,
            last_seen: seg.time,
            handshake: None,
            bytes_client_to_server: 0,
            bytes_server_to_client: 0,
            gaps: Vec::new(),
            framing: Framing::Raw,
            exchanges: Vec::new(),
            recv_pitfalls: Vec::new(),
            close: None,
            notes: Vec::new(),
        };
        if let Some(how) = how {
            conn.notes.push(format!(
                "the capture began after the handshake (first packet #{}); \
                 the server side was chosen {how}",
                seg.number
            ));
        }
        let pairer = Pairer::new(self.opts.framing, self.limits(), &mut conn);
        self.connections.push(conn);
        Slot {
            conn: self.connections.len() - 1,
            client,
            client_isn: None,
            flow: Some(Box::new(Flow {
                streams: [Reassembler::new(), Reassembler::new()],
                pairer,
                server_isn: None,
                last_syn: None,
                fin: [false; 2],
                rst: [false; 2],
                warned_bound: [false; 2],
            })),
        }
    }

    fn close_flow(&mut self, mut slot: Slot, time: Timestamp) {
        if let Some(flow) = slot.flow.take() {
            let conn = &mut self.connections[slot.conn];
            finalize(*flow, conn, time, 0);
        }
    }

    /// Ends the analysis: every connection still open is flushed (holes
    /// become gaps, unfinished messages are ended) and left with `close` as
    /// seen. `packets` is set to the highest packet number seen, a lower bound
    /// the reader should overwrite with its own count.
    pub fn finish(mut self) -> Analysis {
        for (_, slot) in std::mem::take(&mut self.table) {
            let time = self.connections[slot.conn].last_seen;
            self.close_flow(slot, time);
        }
        let framing = match self.opts.framing.fixed() {
            Some(f) => Some(f),
            None => {
                // Connections without data say nothing about the framing.
                let mut used = self
                    .connections
                    .iter()
                    .filter(|c| !c.exchanges.is_empty())
                    .map(|c| c.framing);
                let first = used.next();
                if used.all(|f| Some(f) == first) {
                    first
                } else {
                    None
                }
            }
        };
        if self.suppressed > 0 {
            self.warnings
                .push(format!("{} more warnings not shown", self.suppressed));
        }
        Analysis {
            packets: self.last_packet,
            framing,
            connections: self.connections,
            warnings: self.warnings,
        }
    }
}

/// Decides client and server for a connection's first segment; the third
/// value says how, when it was not a SYN or SYN-ACK.
fn choose_sides(seg: &TcpSegment<'_>, opts: &Options) -> (SocketAddr, SocketAddr, Option<String>) {
    let (a, b) = (seg.src, seg.dst);
    if seg.flags.syn && !seg.flags.rst {
        return if seg.flags.ack {
            (b, a, None)
        } else {
            (a, b, None)
        };
    }
    let server_is_src = |why: String| (b, a, Some(why));
    let server_is_dst = |why: String| (a, b, Some(why));
    if let Some(s) = opts.server {
        if s == a {
            return server_is_src(format!("by --server {s}"));
        }
        if s == b {
            return server_is_dst(format!("by --server {s}"));
        }
    }
    if let Some(p) = opts.port {
        if a.port() == p && b.port() != p {
            return server_is_src(format!("by --port {p}"));
        }
        if b.port() == p && a.port() != p {
            return server_is_dst(format!("by --port {p}"));
        }
    }
    let guess = "by a guess (say --server or --port to be sure)";
    if a.port() == LAB_PORT && b.port() != LAB_PORT {
        return server_is_src(format!("{guess}: port {LAB_PORT} is the lab's server port"));
    }
    if b.port() == LAB_PORT && a.port() != LAB_PORT {
        return server_is_dst(format!("{guess}: port {LAB_PORT} is the lab's server port"));
    }
    if a.port() < b.port() {
        return server_is_src(format!("{guess}: the lower port, {}", a.port()));
    }
    if b.port() < a.port() {
        return server_is_dst(format!("{guess}: the lower port, {}", b.port()));
    }
    server_is_dst(format!("{guess}: the receiver of the first packet"))
}

/// Applies one segment to a live connection. Returns whether the connection
/// is now closed.
fn track(
    opts: &Options,
    slot: &mut Slot,
    conn: &mut Connection,
    side: Side,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) -> bool {
    let Some(flow) = slot.flow.as_mut() else {
        return false;
    };
    let s = slot_of(side);
    let f = seg.flags;

    if f.rst {
        if !flow.rst[s] {
            flow.rst[s] = true;
            close_event(conn, side, CloseKind::Rst, seg.time);
        }
        return true;
    }

    if f.syn {
        match (side, f.ack) {
            (Side::Client, false) => {
                if slot.client_isn.is_none() {
                    slot.client_isn = Some(seg.seq);
                }
                flow.streams[0].syn(seg.seq);
                flow.last_syn = Some(seg.time);
                if conn.handshake.is_none() && flow.server_isn.is_none() {
                    conn.handshake = Some(Handshake {
                        syn: seg.time,
                        syn_ack: None,
                        ack: None,
                        rtt_us: None,
                    });
                }
            }
            (Side::Server, true) => {
                if flow.server_isn.is_none() {
                    flow.server_isn = Some(seg.seq);
                    flow.streams[1].syn(seg.seq);
                    let client_isn = seg.ack.wrapping_sub(1);
                    if slot.client_isn.is_none() {
                        slot.client_isn = Some(client_isn);
                        flow.streams[0].syn(client_isn);
                    }
                    match &mut conn.handshake {
                        Some(h) => {
                            h.syn_ack = Some(seg.time);
                            h.rtt_us = flow.last_syn.map(|t| seg.time.micros_since(t));
                        }
                        None => conn.notes.push(format!(
                            "the SYN was not captured (SYN-ACK at packet #{}), so no handshake is shown",
                            seg.number
                        )),
                    }
                }
            }
            // A SYN the wrong way round (simultaneous open): only anchors.
            _ => flow.streams[s].syn(seg.seq),
        }
    } else if side == Side::Client
        && f.ack
        && let (Some(h), Some(isn)) = (&mut conn.handshake, flow.server_isn)
        && h.syn_ack.is_some()
        && h.ack.is_none()
        && seg.ack == isn.wrapping_add(1)
    {
        h.ack = Some(seg.time);
    }

    let data_seq = seg.seq.wrapping_add(u32::from(f.syn));
    let other_held = flow.streams[1 - s].held_bytes();
    let budget = (opts.max_buffered_per_flow as u64).saturating_sub(other_held);
    let Flow {
        streams, pairer, ..
    } = &mut **flow;
    let outcome = streams[s].push(
        data_seq,
        seg.payload,
        seg.payload_len,
        f.fin,
        seg.time,
        seg.number,
        budget,
        &mut |chunk| deliver(pairer, conn, side, &chunk),
    );
    if outcome.given_up > 0 && !flow.warned_bound[s] {
        flow.warned_bound[s] = true;
        warnings.push(format!(
            "connection {} ({} -> {}): more than {} out-of-order bytes held at packet #{}; \
             gave up waiting for {} {} bytes, reported as a gap (raise the per-flow buffer \
             limit to wait longer; later ones on this connection are only reported as gaps)",
            conn.id,
            conn.client,
            conn.server,
            opts.max_buffered_per_flow,
            seg.number,
            outcome.given_up,
            side_name(side),
        ));
    }
    if outcome.ignored {
        warnings.push(format!(
            "packet #{}: sequence number {} is far outside the {} stream of connection {}; ignored",
            seg.number,
            seg.seq,
            side_name(side),
            conn.id
        ));
    }
    if f.fin && !flow.fin[s] {
        flow.fin[s] = true;
        close_event(conn, side, CloseKind::Fin, seg.time);
    }
    flow.fin == [true, true] && flow.streams.iter().all(|r| r.is_complete())
}

/// Hands an in-order chunk to the pairer, recording a gap if bytes are missing.
fn deliver(pairer: &mut Pairer, conn: &mut Connection, side: Side, chunk: &Chunk<'_>) {
    if let ChunkData::Missing(len) = chunk.data {
        match conn.gaps.last_mut() {
            Some(g) if g.from == side && g.offset + g.len == chunk.offset => g.len += len,
            _ => conn.gaps.push(Gap {
                from: side,
                offset: chunk.offset,
                len,
            }),
        }
    }
    pairer.push(side, chunk, conn);
}

fn close_event(conn: &mut Connection, from: Side, kind: CloseKind, time: Timestamp) {
    let close = conn.close.get_or_insert_with(|| Close {
        initiator: from,
        kind,
        events: Vec::new(),
    });
    if kind == CloseKind::Rst {
        close.kind = CloseKind::Rst;
    }
    close.events.push(CloseEvent { from, kind, time });
}

/// Ends a connection: gives up on its holes, ends its messages, records its
/// byte counts and frees its buffers (by consuming the flow).
fn finalize(mut flow: Flow, conn: &mut Connection, time: Timestamp, packet: u64) {
    let Flow {
        streams, pairer, ..
    } = &mut flow;
    for (s, side) in [(0, Side::Client), (1, Side::Server)] {
        streams[s].flush(time, packet, &mut |chunk| {
            deliver(pairer, conn, side, &chunk)
        });
    }
    pairer.finish(conn);
    conn.bytes_client_to_server = streams[0].bytes();
    conn.bytes_server_to_client = streams[1].bytes();
}
