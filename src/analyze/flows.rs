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
//!   on its address pair (final ACKs, retransmissions) only move `last_seen`
//!   (until it is taken with [`Analyzer::drain_settled`]; after that they
//!   are ignored). The table forgets the address pair of a drained
//!   connection once it has been quiet for [`LINGER`] of capture time, so
//!   the table follows the live connections, not the whole capture.
//! - **Acknowledged holes.** When one side acknowledges bytes of the other
//!   side's stream beyond a hole, the receiver had them: no retransmission
//!   will be captured, so the hole is reported as a gap at once (and the
//!   exchanges keep their order).
//! - **Streaming.** Bytes are decoded into messages as soon as they are in
//!   order, and then dropped; out-of-order bytes held per connection (both
//!   directions together) are bounded by [`Options::max_buffered_per_flow`]:
//!   past it, the oldest hole is given up on, reported as a gap and warned
//!   about.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

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

/// How long (capture time) the address pair of a drained connection is
/// remembered, so that its stragglers (a retransmitted FIN whose ACK was
/// lost, a duplicate ACK, packets after an RST) are ignored instead of
/// opening a connection without handshake. Retransmissions come within a
/// few timeouts (200 ms, doubling); TCP's own TIME_WAIT is longer (60 s on
/// Linux) but would keep a busy capture's every pair. A SYN on the pair
/// still opens a new connection at any time.
pub const LINGER: Duration = Duration::from_secs(5);

/// Packets between two sweeps of the table for pairs to forget.
const SWEEP_EVERY: u64 = 1 << 16;

/// The flow table's hasher: foldhash is several times faster than std's
/// SipHash on these small keys, and seeded per process, so a crafted capture
/// cannot predict collisions (an unseeded hasher such as FxHash would let
/// one turn the table quadratic).
type Table = HashMap<Key, Slot, foldhash::fast::RandomState>;

/// How to analyze a capture. The defaults: `auto` framing, no server given,
/// 1 MiB messages, 4 MiB held per connection, 40-character previews.
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
///
/// IPv4 pairs (nearly every capture's) are two integers, address and port of
/// each end packed into 48 bits, so building, hashing and comparing a key
/// costs a few instructions; other pairs keep their `SocketAddr`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// Both ends IPv4: `ip << 16 | port` of each end, the lower first.
    V4(u64, u64),
    /// Anything else (IPv6), the lower end first.
    Other(SocketAddr, SocketAddr),
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Key::V4(a, b) => h.write_u128(u128::from(*a) << 64 | u128::from(*b)),
            Key::Other(a, b) => {
                a.hash(h);
                b.hash(h);
            }
        }
    }
}

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    match (a, b) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => {
            let pack =
                |s: std::net::SocketAddrV4| u64::from(s.ip().to_bits()) << 16 | u64::from(s.port());
            let (a, b) = (pack(a), pack(b));
            Key::V4(a.min(b), a.max(b))
        }
        _ if a <= b => Key::Other(a, b),
        _ => Key::Other(b, a),
    }
}

/// The table entry of an address pair: its latest connection.
#[derive(Debug)]
struct Slot {
    /// Number of the connection in the output list, from 0 (the drained
    /// ones included).
    conn: usize,
    client: SocketAddr,
    /// The client's initial sequence number, when known (SYN or SYN-ACK).
    client_isn: Option<u32>,
    /// Sequence number of each side's FIN, and whether the other side
    /// acknowledged it (client, server).
    fin_seq: [Option<u32>; 2],
    fin_acked: [bool; 2],
    /// An RST was seen.
    reset: bool,
    /// Live state; `None` once closed.
    flow: Option<Box<Flow>>,
    /// Capture time of the latest packet on the pair.
    last_time: Timestamp,
}

impl Slot {
    /// Closed, and nothing more is expected: reset, or every FIN sent was
    /// acknowledged.
    fn settled(&self) -> bool {
        self.flow.is_none()
            && (self.reset || (0..2).all(|s| self.fin_seq[s].is_none() || self.fin_acked[s]))
    }
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
/// Memory is the live connections' buffers plus the output (every
/// connection with its exchanges). To keep the output from growing with the
/// capture, take finished connections as you go with
/// [`Analyzer::drain_settled`] (as [`crate::analyze::analyze_stream`] does);
/// the flow table then forgets their address pairs after [`LINGER`].
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
    table: Table,
    /// Latest capture time seen (captures may go back in time).
    now: Timestamp,
    /// Packets since the last sweep of the table.
    since_sweep: u64,
    /// Connections not drained yet; the first is number `drained`.
    connections: VecDeque<Connection>,
    /// Per connection in `connections`: settled (see [`Slot::settled`]).
    settled: VecDeque<bool>,
    drained: usize,
    /// Framing of every drained connection with exchanges, if they agree:
    /// `None` before any, `Some(None)` once they disagree.
    framing_seen: Option<Option<Framing>>,
    warnings: Vec<String>,
    suppressed: u64,
    last_packet: u64,
}

impl Analyzer {
    /// An analyzer with nothing seen yet.
    pub fn new(opts: Options) -> Self {
        Analyzer {
            opts,
            table: Table::default(),
            now: Timestamp(0),
            since_sweep: 0,
            connections: VecDeque::new(),
            settled: VecDeque::new(),
            drained: 0,
            framing_seen: None,
            warnings: Vec::new(),
            suppressed: 0,
            last_packet: 0,
        }
    }

    /// Connections seen so far (drained ones included).
    pub fn connections(&self) -> usize {
        self.drained + self.connections.len()
    }

    /// Whether [`Analyzer::drain_settled`] has a connection to hand over.
    pub fn has_settled(&self) -> bool {
        self.settled.front() == Some(&true)
    }

    /// Takes the connections that are over, in order, up to the first one
    /// that is not: a connection is over after an RST, or once every FIN
    /// sent was acknowledged (or when a new connection reused its ports).
    /// They will not be in [`Analyzer::finish`]'s result; later packets of a
    /// drained connection are ignored. One long-lived connection holds back
    /// every later one, so memory then grows as without draining.
    pub fn drain_settled(&mut self) -> Vec<Connection> {
        std::iter::from_fn(|| self.next_settled()).collect()
    }

    /// The next connection [`Analyzer::drain_settled`] would hand over, one
    /// at a time (no list to allocate).
    pub fn next_settled(&mut self) -> Option<Connection> {
        if !self.has_settled() {
            return None;
        }
        self.settled.pop_front();
        self.drained += 1;
        let c = self.connections.pop_front()?;
        self.note_framing(&c);
        Some(c)
    }

    fn note_framing(&mut self, c: &Connection) {
        // Connections without data say nothing about the framing.
        if c.exchanges.is_empty() {
            return;
        }
        // A connection read by an application protocol's codec has no lab
        // framing: the capture-wide framing is then `null`.
        if c.protocol.is_some() {
            self.framing_seen = Some(None);
            return;
        }
        self.framing_seen = match self.framing_seen {
            None => Some(Some(c.framing)),
            Some(Some(f)) if f == c.framing => Some(Some(f)),
            Some(_) => Some(None),
        };
    }

    /// Marks the connection of `slot` settled if it is.
    fn settle(&mut self, slot_conn: usize, settled: bool) {
        if settled && let Some(i) = slot_conn.checked_sub(self.drained) {
            self.settled[i] = true;
        }
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
        self.now = self.now.max(seg.time);
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.sweep();
        }
        let k = key(seg.src, seg.dst);
        let opening = seg.flags.syn && !seg.flags.ack && !seg.flags.rst;
        // A new SYN from the client (not a retransmission), or a SYN from
        // the other end once the old connection is over.
        let new_needed = |slot: &Slot| {
            opening
                && if seg.src == slot.client {
                    slot.client_isn != Some(seg.seq)
                } else {
                    slot.flow.is_none()
                }
        };
        let mut warnings = Vec::new();
        // The common case in one table lookup: a packet of a known connection.
        let applied = match self.table.get_mut(&k) {
            Some(slot) if !new_needed(slot) => {
                apply(
                    slot,
                    &mut self.connections,
                    &mut self.settled,
                    self.drained,
                    &self.opts,
                    seg,
                    &mut warnings,
                );
                true
            }
            _ => false,
        };
        if !applied {
            if let Some(old) = self.table.remove(&k) {
                let n = old.conn;
                self.close_flow(old, seg.time);
                self.settle(n, true);
            }
            let slot = self.open(seg);
            let slot = self.table.entry(k).insert_entry(slot).into_mut();
            apply(
                slot,
                &mut self.connections,
                &mut self.settled,
                self.drained,
                &self.opts,
                seg,
                &mut warnings,
            );
        }
        for w in warnings {
            self.warn(w);
        }
    }

    /// Creates the connection a segment opens (or is the first seen of).
    fn open(&mut self, seg: &TcpSegment<'_>) -> Slot {
        let (client, server, how) = choose_sides(seg, &self.opts);
        let id = u32::try_from(self.connections() + 1).unwrap_or(u32::MAX);
        let mut conn = Connection::new(id, client, server, seg.time);
        if let Some(how) = how {
            conn.notes.push(format!(
                "the capture began after the handshake (first packet #{}); \
                 the server side was chosen {how}",
                seg.number
            ));
        }
        let pairer = Pairer::new(self.opts.framing, self.limits(), &mut conn);
        self.connections.push_back(conn);
        self.settled.push_back(false);
        Slot {
            conn: self.connections() - 1,
            client,
            client_isn: None,
            fin_seq: [None; 2],
            fin_acked: [false; 2],
            reset: false,
            last_time: seg.time,
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

    /// Forgets the address pairs of drained connections quiet for
    /// [`LINGER`]. Runs every [`SWEEP_EVERY`] packets: the cost is spread
    /// thin, and pairs linger at most that many packets longer.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let linger = u64::try_from(LINGER.as_nanos()).unwrap_or(u64::MAX);
        let (drained, now) = (self.drained, self.now);
        self.table.retain(|_, slot| {
            slot.conn >= drained || slot.last_time.0.saturating_add(linger) >= now.0
        });
    }

    /// Address pairs the flow table holds (live, settled, or lingering
    /// after being drained).
    pub fn tracked_pairs(&self) -> usize {
        self.table.len()
    }

    fn close_flow(&mut self, mut slot: Slot, time: Timestamp) {
        if let Some(flow) = slot.flow.take()
            && let Some(conn) = slot
                .conn
                .checked_sub(self.drained)
                .and_then(|i| self.connections.get_mut(i))
        {
            finalize(*flow, conn, time, 0);
        }
    }

    /// Ends the analysis: every connection still open is flushed (holes
    /// become gaps, unfinished messages are ended) and left with `close` as
    /// seen. `packets` is set to the highest packet number seen, a lower bound
    /// the reader should overwrite with its own count.
    pub fn finish(mut self) -> Analysis {
        for (_, slot) in std::mem::take(&mut self.table) {
            let time = slot
                .conn
                .checked_sub(self.drained)
                .and_then(|i| self.connections.get(i))
                .map_or(Timestamp(0), |c| c.last_seen);
            self.close_flow(slot, time);
        }
        let connections = std::mem::take(&mut self.connections);
        for c in &connections {
            self.note_framing(c);
        }
        let framing = self.opts.framing.fixed().or(self.framing_seen.flatten());
        if self.suppressed > 0 {
            self.warnings
                .push(format!("{} more warnings not shown", self.suppressed));
        }
        Analysis {
            packets: self.last_packet,
            framing,
            connections: connections.into(),
            warnings: self.warnings,
        }
    }
}

/// Applies a segment to the connection of its address pair (`slot`), which
/// is `connections[slot.conn - drained]` unless drained already; marks it in
/// `settled` once it is over. (A function of the analyzer's fields rather
/// than a method, so that the slot can stay borrowed from the table.)
fn apply(
    slot: &mut Slot,
    connections: &mut VecDeque<Connection>,
    settled: &mut VecDeque<bool>,
    drained: usize,
    opts: &Options,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) {
    slot.last_time = slot.last_time.max(seg.time);
    let Some(i) = slot.conn.checked_sub(drained) else {
        // Drained: over, nothing more to learn.
        return;
    };
    let Some(conn) = connections.get_mut(i) else {
        return;
    };
    conn.last_seen = conn.last_seen.max(seg.time);
    let side = if seg.src == slot.client {
        Side::Client
    } else {
        Side::Server
    };
    let peer = 1 - slot_of(side);
    if seg.flags.ack
        && let Some(fin) = slot.fin_seq[peer]
        && (seg.ack.wrapping_sub(fin.wrapping_add(1)) as i32) >= 0
    {
        slot.fin_acked[peer] = true;
    }
    if slot.flow.is_some()
        && track(opts, slot, conn, side, seg, warnings)
        && let Some(flow) = slot.flow.take()
    {
        finalize(*flow, conn, seg.time, seg.number);
    }
    if slot.settled() {
        settled[i] = true;
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
        slot.reset = true;
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

    let Flow {
        streams, pairer, ..
    } = &mut **flow;
    if f.ack {
        // What this side acknowledges, the other side's stream has delivered.
        let other = match side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        streams[1 - s].acked(seg.ack, seg.time, seg.number, &mut |chunk| {
            deliver(pairer, conn, other, &chunk)
        });
    }

    let data_seq = seg.seq.wrapping_add(u32::from(f.syn));
    let other_held = streams[1 - s].held_bytes();
    let budget = (opts.max_buffered_per_flow as u64).saturating_sub(other_held);
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
        slot.fin_seq[s] = Some(data_seq.wrapping_add(seg.payload_len));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analyze::model::PitfallKind;
    use crate::analyze::segment::TcpFlags;
    use proptest::prelude::*;

    /// An owned segment, to build captures by hand.
    #[derive(Debug, Clone)]
    pub struct Seg {
        pub time: u64,
        pub src: SocketAddr,
        pub dst: SocketAddr,
        pub seq: u32,
        pub ack: u32,
        pub flags: TcpFlags,
        pub payload: Vec<u8>,
        pub payload_len: u32,
    }

    impl Seg {
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
            }
        }
    }

    /// A TCP conversation written by hand; times are in microseconds.
    pub struct Script {
        pub client: SocketAddr,
        pub server: SocketAddr,
        /// Next sequence number of each side.
        pub cseq: u32,
        pub sseq: u32,
        pub segs: Vec<Seg>,
    }

    fn flags(syn: bool, ack: bool, fin: bool, rst: bool) -> TcpFlags {
        TcpFlags {
            syn,
            ack,
            fin,
            rst,
            psh: false,
        }
    }

    impl Script {
        pub fn new(cisn: u32, sisn: u32) -> Self {
            Script {
                client: "10.0.0.2:40000".parse().unwrap(),
                server: "10.0.0.1:2222".parse().unwrap(),
                cseq: cisn,
                sseq: sisn,
                segs: Vec::new(),
            }
        }

        fn seg(&mut self, t: u64, from: Side, f: TcpFlags, data: &[u8]) -> Seg {
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

        pub fn c(&mut self, t: u64, data: &[u8]) -> Seg {
            self.seg(t, Side::Client, flags(false, true, false, false), data)
        }

        pub fn s(&mut self, t: u64, data: &[u8]) -> Seg {
            self.seg(t, Side::Server, flags(false, true, false, false), data)
        }

        pub fn fin(&mut self, t: u64, from: Side) -> Seg {
            self.seg(t, from, flags(false, true, true, false), b"")
        }

        pub fn rst(&mut self, t: u64, from: Side) -> Seg {
            self.seg(t, from, flags(false, true, false, true), b"")
        }

        pub fn ack(&mut self, t: u64, from: Side) -> Seg {
            self.seg(t, from, flags(false, true, false, false), b"")
        }
    }

    pub fn analyze(opts: Options, segs: &[Seg]) -> Analysis {
        let mut a = Analyzer::new(opts);
        for (i, s) in segs.iter().enumerate() {
            a.push(&s.view(i as u64 + 1));
        }
        a.finish()
    }

    fn one(analysis: &Analysis) -> &Connection {
        assert_eq!(analysis.connections.len(), 1, "{analysis:#?}");
        &analysis.connections[0]
    }

    fn requests(c: &Connection) -> Vec<&str> {
        c.exchanges
            .iter()
            .map(|e| e.request_preview.as_str())
            .collect()
    }

    fn responses(c: &Connection) -> Vec<&str> {
        c.exchanges
            .iter()
            .map(|e| e.response_preview.as_str())
            .collect()
    }

    /// The lab's conversation: three echoes, closed by the client.
    fn echo() -> Script {
        let mut w = Script::new(1000, 5000);
        w.handshake(0, 100);
        w.c(1_000, b"hello\n");
        w.s(1_200, b"Echo: hello\n");
        w.c(2_000, b"second\n");
        w.s(2_300, b"Echo: second\n");
        w.c(3_000, b"third\n");
        w.s(3_250, b"Echo: third\n");
        w.fin(4_000, Side::Client);
        w.fin(4_100, Side::Server);
        w.ack(4_150, Side::Client);
        w
    }

    #[test]
    fn echo_connection_has_handshake_exchanges_latencies_and_teardown() {
        let w = echo();
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.client, w.client);
        assert_eq!(c.server, w.server);
        let h = c.handshake.as_ref().expect("handshake");
        assert_eq!(h.syn, Timestamp(0));
        assert_eq!(h.syn_ack, Some(Timestamp(100_000)));
        assert_eq!(h.ack, Some(Timestamp(110_000)));
        assert_eq!(h.rtt_us, Some(100.0));
        assert_eq!(c.framing, Framing::Line);
        assert_eq!(a.framing, Some(Framing::Line));
        assert_eq!(requests(c), ["hello", "second", "third"]);
        assert_eq!(responses(c), ["Echo: hello", "Echo: second", "Echo: third"]);
        let lat: Vec<_> = c.exchanges.iter().map(|e| e.latency_us).collect();
        assert_eq!(lat, [Some(200.0), Some(300.0), Some(250.0)]);
        let e = &c.exchanges[0];
        assert_eq!((e.request_bytes, e.response_bytes), (5, 11));
        assert_eq!(e.request_time, Timestamp(1_000_000));
        assert_eq!(e.response_first_time, Some(Timestamp(1_200_000)));
        assert_eq!(e.response_last_time, Some(Timestamp(1_200_000)));
        assert!(!e.incomplete);
        assert_eq!(c.bytes_client_to_server, 6 + 7 + 6);
        assert_eq!(c.bytes_server_to_client, 12 + 13 + 12);
        assert!(c.gaps.is_empty());
        assert!(c.recv_pitfalls.is_empty(), "{:?}", c.recv_pitfalls);
        let close = c.close.as_ref().expect("closed");
        assert_eq!(close.initiator, Side::Client);
        assert_eq!(close.kind, CloseKind::Fin);
        let ev: Vec<_> = close
            .events
            .iter()
            .map(|e| (e.from, e.kind, e.time))
            .collect();
        assert_eq!(
            ev,
            [
                (Side::Client, CloseKind::Fin, Timestamp(4_000_000)),
                (Side::Server, CloseKind::Fin, Timestamp(4_100_000))
            ]
        );
        assert_eq!(c.first_seen, Timestamp(0));
        assert_eq!(c.last_seen, Timestamp(4_150_000));
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn retransmitted_bytes_count_once_and_make_no_duplicate_message() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        let req = w.c(1_000, b"hello\n");
        let mut again = req.clone();
        again.time = 1_500;
        w.segs.push(again);
        w.s(1_600, b"Echo: hello\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.bytes_client_to_server, 6);
        assert_eq!(requests(c), ["hello"]);
        // The first capture of the bytes times the request.
        assert_eq!(c.exchanges[0].latency_us, Some(600.0));
        assert!(c.close.is_none());
    }

    #[test]
    fn reordered_segments_reassemble_and_time_the_request_when_complete() {
        let mut w = Script::new(7, 9);
        w.handshake(0, 50);
        w.c(1_000, b"hel");
        w.c(1_010, b"lo\n");
        w.segs.swap(3, 4); // "lo\n" captured before "hel"
        w.segs[3].time = 1_000;
        w.segs[4].time = 1_010;
        w.s(1_100, b"Echo: hello\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(requests(c), ["hello"]);
        assert_eq!(c.exchanges[0].request_time, Timestamp(1_010_000));
        assert_eq!(c.exchanges[0].latency_us, Some(90.0));
        assert!(c.gaps.is_empty());
        assert_eq!(c.recv_pitfalls.len(), 1);
        assert_eq!(c.recv_pitfalls[0].kind, PitfallKind::Split);
        assert_eq!(c.recv_pitfalls[0].count, 2);
    }

    #[test]
    fn overlapping_segments_keep_the_first_captured_bytes() {
        let mut w = Script::new(100, 200);
        w.handshake(0, 50);
        let start = w.cseq;
        w.c(1_000, b"abcdef");
        w.c(1_010, b"gh\n");
        // A later segment overlapping both with other contents.
        let mut liar = w.segs[4].clone();
        liar.seq = start + 3;
        liar.payload = b"XYZW".to_vec();
        liar.payload_len = 4;
        liar.time = 1_020;
        w.segs.push(liar);
        // And out of order: a segment ahead arrives first, then one
        // overlapping it.
        let s2 = w.cseq;
        let mut ahead = w.c(2_000, b"ZZZ\n");
        ahead.seq = s2 + 3;
        ahead.payload = b"mno\n".to_vec();
        let n = w.segs.len();
        w.segs[n - 1] = ahead;
        let mut early = w.segs[n - 1].clone();
        early.seq = s2;
        early.payload = b"jklMN".to_vec();
        early.payload_len = 5;
        early.time = 2_010;
        w.segs.push(early);
        w.cseq = s2 + 7;
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(requests(c), ["abcdefgh", "jklmno"]);
        assert_eq!(c.bytes_client_to_server, 9 + 7);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut w = Script::new(u32::MAX - 3, u32::MAX);
        w.handshake(0, 50);
        w.c(1_000, b"wrap");
        w.c(1_001, b"ping\n");
        w.s(1_100, b"Echo: wrapping\n");
        w.fin(2_000, Side::Server);
        w.fin(2_100, Side::Client);
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(requests(c), ["wrapping"]);
        assert_eq!(responses(c), ["Echo: wrapping"]);
        assert_eq!(c.bytes_client_to_server, 9);
        assert_eq!(c.bytes_server_to_client, 15);
        assert!(c.gaps.is_empty());
        assert_eq!(c.close.as_ref().unwrap().initiator, Side::Server);
    }

    #[test]
    fn reset_closes_the_connection() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"hello\n");
        w.rst(1_100, Side::Server);
        // Late packets change nothing but last_seen.
        w.c(1_200, b"more\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        let close = c.close.as_ref().unwrap();
        assert_eq!(
            (close.initiator, close.kind),
            (Side::Server, CloseKind::Rst)
        );
        assert_eq!(close.events.len(), 1);
        assert_eq!(requests(c), ["hello"]);
        assert_eq!(c.exchanges[0].response_first_time, None);
        assert_eq!(c.exchanges[0].latency_us, None);
        assert_eq!(c.bytes_client_to_server, 6);
        assert_eq!(c.last_seen, Timestamp(1_200_000));
    }

    /// An echo conversation captured from its second request on.
    fn mid_connection(client_port: u16, server_port: u16) -> Vec<Seg> {
        let mut w = Script::new(50_000, 90_000);
        w.client.set_port(client_port);
        w.server.set_port(server_port);
        w.handshake(0, 50);
        w.c(1_000, b"one\n");
        w.s(1_100, b"Echo: one\n");
        w.c(2_000, b"two\n");
        w.s(2_100, b"Echo: two\n");
        w.segs.split_off(5)
    }

    #[test]
    fn capture_starting_mid_connection_guesses_the_server_and_says_so() {
        let a = analyze(Options::default(), &mid_connection(40_000, 2222));
        let c = one(&a);
        assert!(c.handshake.is_none());
        assert_eq!(c.server.port(), 2222);
        assert_eq!(requests(c), ["two"]);
        assert_eq!(responses(c), ["Echo: two"]);
        assert_eq!(c.bytes_client_to_server, 4);
        assert!(c.gaps.is_empty());
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("guess"), "{}", c.notes[0]);

        // Not the lab's port: the lower port is taken for the server...
        let segs = mid_connection(9000, 5000);
        let c = &analyze(Options::default(), &segs).connections[0];
        assert_eq!(c.server.port(), 5000);
        // ... unless told otherwise, by port or by address.
        let segs = mid_connection(5000, 9000);
        let by_port = Options {
            port: Some(9000),
            ..Options::default()
        };
        let c = &analyze(by_port, &segs).connections[0];
        assert_eq!(c.server.port(), 9000);
        assert_eq!(requests(c), ["two"]);
        assert!(c.notes[0].contains("--port 9000"), "{}", c.notes[0]);
        let by_addr = Options {
            server: Some("10.0.0.1:9000".parse().unwrap()),
            ..Options::default()
        };
        let c = &analyze(by_addr, &segs).connections[0];
        assert_eq!(c.server.port(), 9000);
        assert!(c.notes[0].contains("--server"), "{}", c.notes[0]);
    }

    #[test]
    fn a_missing_segment_is_a_gap_and_no_message_is_invented() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"one\n");
        w.s(1_100, b"Echo: one\n");
        w.c(2_000, b"tw");
        w.c(2_001, b"o\nthr");
        w.c(2_002, b"ee\n");
        w.s(2_100, b"Echo: two\nEcho: three\n");
        w.fin(3_000, Side::Client);
        w.fin(3_100, Side::Server);
        w.segs.remove(6); // "o\nthr" never captured
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.gaps.len(), 1);
        let g = &c.gaps[0];
        assert_eq!((g.from, g.offset, g.len), (Side::Client, 6, 5));
        assert_eq!(c.bytes_client_to_server, 14);
        // "tw", 5 missing bytes, "ee\n": one damaged message, never "two".
        // The server's ACK beyond the hole declared it a gap before the
        // server's data, so the pairing keeps its order.
        assert_eq!(requests(c), ["one", "tw[5 bytes missing]…", ""]);
        assert_eq!(responses(c), ["Echo: one", "Echo: two", "Echo: three"]);
        assert!(c.exchanges[1].incomplete);
        assert_eq!(c.exchanges[1].request_bytes, 9);
        assert!(!c.exchanges[0].incomplete);
        // The answer to the request lost in the gap has no request.
        assert_eq!(c.exchanges[2].request_bytes, 0);
        assert_eq!(c.exchanges[2].latency_us, None);
        assert_eq!(c.close.as_ref().unwrap().events.len(), 2);
    }

    #[test]
    fn snaplen_cut_payload_counts_on_wire_bytes_and_is_a_gap() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        let mut big = vec![b'x'; 99];
        big.push(b'\n');
        let mut seg = w.c(1_000, &big);
        seg.payload.truncate(20);
        let n = w.segs.len();
        w.segs[n - 1] = seg;
        w.s(1_100, b"ok\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.bytes_client_to_server, 100);
        assert_eq!(c.gaps.len(), 1);
        assert_eq!((c.gaps[0].offset, c.gaps[0].len), (20, 80));
        let e = &c.exchanges[0];
        assert!(e.incomplete);
        assert!(
            e.request_preview.ends_with("[80 bytes missing]"),
            "{}",
            e.request_preview
        );
    }

    #[test]
    fn pipelined_requests_pair_in_order_and_merged_segment_is_a_pitfall() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"a\nb\nc\n");
        w.s(1_100, b"Echo: a\n");
        w.s(1_200, b"Echo: b\n");
        w.s(1_300, b"Echo: c\n");
        let a = analyze(
            Options {
                framing: FramingChoice::Line,
                ..Options::default()
            },
            &w.segs,
        );
        let c = one(&a);
        assert_eq!(requests(c), ["a", "b", "c"]);
        assert_eq!(responses(c), ["Echo: a", "Echo: b", "Echo: c"]);
        let lat: Vec<_> = c.exchanges.iter().map(|e| e.latency_us).collect();
        assert_eq!(lat, [Some(100.0), Some(200.0), Some(300.0)]);
        assert_eq!(c.recv_pitfalls.len(), 1);
        let p = &c.recv_pitfalls[0];
        assert_eq!(
            (p.from, p.kind, p.message, p.count),
            (Side::Client, PitfallKind::Merged, 0, 3)
        );
    }

    #[test]
    fn merged_and_split_pitfalls_on_the_server_side() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"a\n");
        w.c(1_001, b"b\n");
        // Responses: first one split, then one segment ending "a" and carrying all of "b".
        w.s(1_100, b"Echo");
        w.s(1_101, b": a\nEcho: b\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(responses(c), ["Echo: a", "Echo: b"]);
        let p: Vec<_> = c
            .recv_pitfalls
            .iter()
            .map(|p| (p.from, p.kind, p.message, p.count))
            .collect();
        assert_eq!(
            p,
            [
                (Side::Server, PitfallKind::Split, 0, 2),
                (Side::Server, PitfallKind::Merged, 0, 2)
            ]
        );
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Framing::Length.encode(msg, &mut out).unwrap();
        out
    }

    #[test]
    fn length_framing_is_decoded_and_auto_detected() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        let req = framed(b"bin\x00ary");
        w.c(1_000, &req[..3]);
        w.c(1_001, &req[3..]);
        w.s(1_100, &framed(b"Echo: bin\x00ary"));
        w.c(2_000, &framed(b""));
        w.s(2_050, &framed(b"Echo: "));
        for choice in [FramingChoice::Length, FramingChoice::Auto] {
            let a = analyze(
                Options {
                    framing: choice,
                    ..Options::default()
                },
                &w.segs,
            );
            let c = one(&a);
            assert_eq!(c.framing, Framing::Length);
            assert_eq!(requests(c), ["bin\\x00ary", ""]);
            assert_eq!(responses(c), ["Echo: bin\\x00ary", "Echo: "]);
            assert_eq!(c.exchanges[0].request_bytes, 7);
            assert_eq!(c.exchanges[0].latency_us, Some(99.0));
            assert_eq!(c.recv_pitfalls.len(), 1, "{:?}", c.recv_pitfalls);
            assert_eq!(c.recv_pitfalls[0].kind, PitfallKind::Split);
        }
    }

    #[test]
    fn auto_falls_back_to_turn_taking_for_unframed_binary() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"\x01\x02");
        w.c(1_010, b"\x03");
        w.s(1_100, b"\xff");
        w.s(1_150, b"\xfe\xfd");
        w.c(2_000, b"\x04");
        w.s(2_500, b"\xfc");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.framing, Framing::Raw);
        assert_eq!(requests(c), ["\\x01\\x02\\x03", "\\x04"]);
        assert_eq!(responses(c), ["\\xff\\xfe\\xfd", "\\xfc"]);
        let e = &c.exchanges[0];
        assert_eq!(e.request_time, Timestamp(1_010_000));
        assert_eq!(e.response_first_time, Some(Timestamp(1_100_000)));
        assert_eq!(e.response_last_time, Some(Timestamp(1_150_000)));
        assert_eq!(e.latency_us, Some(140.0));
        assert_eq!(c.exchanges[1].latency_us, Some(500.0));
        // Turn-taking does not judge recv() pitfalls.
        assert!(c.recv_pitfalls.is_empty());
    }

    #[test]
    fn a_server_greeting_is_an_exchange_without_request() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.s(500, b"220 ready\n");
        w.c(1_000, b"hello\n");
        w.s(1_100, b"Echo: hello\n");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.framing, Framing::Line);
        assert_eq!(requests(c), ["", "hello"]);
        assert_eq!(responses(c), ["220 ready", "Echo: hello"]);
        assert_eq!(c.exchanges[0].request_bytes, 0);
        assert_eq!(c.exchanges[0].latency_us, None);
        assert_eq!(c.exchanges[1].latency_us, Some(100.0));
    }

    #[test]
    fn exceeding_the_buffer_bound_gives_up_the_hole_and_warns() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"lost\n");
        w.c(1_001, b"0123456789\n");
        w.c(1_002, b"abcdefghij\n");
        w.segs.remove(3);
        let opts = Options {
            max_buffered_per_flow: 15,
            ..Options::default()
        };
        let a = analyze(opts, &w.segs);
        let c = one(&a);
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(
            a.warnings[0].contains("gave up waiting for 5 client bytes"),
            "{}",
            a.warnings[0]
        );
        assert_eq!(c.gaps.len(), 1);
        assert_eq!((c.gaps[0].offset, c.gaps[0].len), (0, 5));
        // The gap is taken to hold no newline: the line after it is damaged.
        assert_eq!(c.framing, Framing::Line);
        assert_eq!(requests(c), ["[5 bytes missing]…", "abcdefghij"]);
        assert_eq!(c.exchanges[0].request_bytes, 15);
        assert!(c.exchanges[0].incomplete);
        assert!(!c.exchanges[1].incomplete);
    }

    #[test]
    fn client_closing_before_the_answer_like_nc() {
        // `printf 'via nc\n' | nc -q 1 host 2222`: the client's FIN comes
        // before the answer; its next ACK carries the sequence number after
        // the FIN, which is not a byte.
        let mut w = Script::new(10, 20);
        w.handshake(0, 14);
        w.c(100, b"via nc\n");
        w.fin(110, Side::Client);
        w.s(1_790, b"Echo: via nc\n");
        w.ack(1_800, Side::Client);
        w.fin(1_850, Side::Server);
        w.ack(1_860, Side::Client);
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(
            (c.bytes_client_to_server, c.bytes_server_to_client),
            (7, 13)
        );
        assert!(c.gaps.is_empty(), "{:?}", c.gaps);
        assert_eq!(requests(c), ["via nc"]);
        assert_eq!(c.exchanges[0].latency_us, Some(1_690.0));
        let close = c.close.as_ref().unwrap();
        assert_eq!(close.initiator, Side::Client);
        assert_eq!(close.events.len(), 2);
        assert_eq!(c.last_seen, Timestamp(1_860_000));
    }

    #[test]
    fn keepalives_and_zero_window_probes_are_ignored() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.c(1_000, b"hi\n");
        w.s(1_100, b"Echo: hi\n");
        // Keepalive: one old byte at seq - 1.
        let mut ka = w.ack(5_000, Side::Client);
        ka.seq = ka.seq.wrapping_sub(1);
        ka.payload = vec![0];
        ka.payload_len = 1;
        let n = w.segs.len();
        w.segs[n - 1] = ka;
        w.ack(5_001, Side::Server);
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!(c.bytes_client_to_server, 3);
        assert_eq!(requests(c), ["hi"]);
        assert!(c.gaps.is_empty());
    }

    #[test]
    fn port_reuse_after_close_is_a_new_connection() {
        let mut w = echo();
        let mut second = Script::new(777_777, 888_888);
        second.handshake(10_000, 80);
        second.c(11_000, b"again\n");
        second.s(11_050, b"Echo: again\n");
        w.segs.extend(second.segs);
        let a = analyze(Options::default(), &w.segs);
        assert_eq!(a.connections.len(), 2);
        let c = &a.connections[1];
        assert_eq!(c.id, 2);
        assert_eq!(requests(c), ["again"]);
        assert_eq!(c.handshake.as_ref().unwrap().rtt_us, Some(80.0));
        assert!(c.close.is_none());
        assert_eq!(a.connections[0].exchanges.len(), 3);
    }

    #[test]
    fn settled_connections_can_be_drained_in_order() {
        let first = echo();
        let mut other = Script::new(5, 6);
        other.client.set_port(40001);
        other.handshake(500, 20);
        other.c(600, b"still open\n");
        let mut segs = first.segs.clone();
        // The second connection starts while the first is open.
        segs.splice(3..3, other.segs.clone());
        let mut an = Analyzer::new(Options::default());
        let mut drained = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            an.push(&s.view(i as u64 + 1));
            drained.extend(an.drain_settled());
            if i + 1 < segs.len() {
                // The first is not over before its last FIN is acknowledged.
                assert!(drained.is_empty(), "drained at packet {}", i + 1);
            }
        }
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].id, 1);
        assert_eq!(drained[0].exchanges.len(), 3);
        assert_eq!(drained[0].last_seen, Timestamp(4_150_000));
        // A late packet of a drained connection is ignored.
        let mut late = first.segs[first.segs.len() - 2].clone();
        late.time = 9_000;
        an.push(&late.view(99));
        assert!(an.drain_settled().is_empty());
        let rest = an.finish();
        assert_eq!(rest.connections.len(), 1);
        assert_eq!(rest.connections[0].id, 2);
        assert_eq!(rest.connections[0].exchanges.len(), 1);
        assert_eq!(rest.framing, Some(Framing::Line));
    }

    #[test]
    fn the_table_forgets_drained_pairs_so_memory_follows_live_connections() {
        // 20 000 short connections, one a millisecond (20 s of capture),
        // from as many client ports: the table must not keep them all.
        let mut an = Analyzer::new(Options::default());
        let mut number = 0;
        let mut drained = 0;
        let mut most = 0;
        for i in 0..20_000u64 {
            let mut w = Script::new(i as u32, 7);
            w.client.set_port(10_000 + i as u16);
            let t = i * 1_000;
            w.handshake(t, 20);
            w.c(t + 100, b"ping\n");
            w.s(t + 150, b"Echo: ping\n");
            w.fin(t + 200, Side::Client);
            w.fin(t + 210, Side::Server);
            w.ack(t + 220, Side::Client);
            for s in &w.segs {
                number += 1;
                an.push(&s.view(number));
                drained += an.drain_settled().len();
            }
            most = most.max(an.tracked_pairs());
        }
        assert_eq!(drained, 20_000);
        // 5 s of lingering pairs (5 000) plus at most one sweep interval
        // (65 536 packets, 8 192 connections).
        assert!(most <= 5_000 + 8_192 + 1, "table grew to {most} pairs");
        assert!(most >= 5_000, "pairs forgotten before LINGER: {most}");
        // A straggler of a connection drained but still lingering is ignored.
        let mut w = Script::new(19_999, 7);
        w.client.set_port(10_000 + 19_999);
        let mut late = w.ack(20_000_000, Side::Client);
        late.time = 20_000_000;
        an.push(&late.view(number + 1));
        assert!(an.finish().connections.is_empty());
    }

    #[test]
    fn a_reset_connection_is_settled_at_once() {
        let mut w = Script::new(1, 1);
        w.handshake(0, 50);
        w.rst(100, Side::Client);
        let mut an = Analyzer::new(Options::default());
        for (i, s) in w.segs.iter().enumerate() {
            an.push(&s.view(i as u64 + 1));
        }
        let drained = an.drain_settled();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].close.as_ref().unwrap().kind, CloseKind::Rst);
        assert!(an.finish().connections.is_empty());
    }

    #[test]
    fn a_refused_connection_is_a_syn_and_a_reset() {
        let mut w = Script::new(1, 0);
        w.seg(0, Side::Client, flags(true, false, false, false), b"");
        w.seg(30, Side::Server, flags(false, true, false, true), b"");
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        let h = c.handshake.as_ref().unwrap();
        assert_eq!((h.syn_ack, h.ack, h.rtt_us), (None, None, None));
        let close = c.close.as_ref().unwrap();
        assert_eq!(
            (close.initiator, close.kind),
            (Side::Server, CloseKind::Rst)
        );
        assert!(c.exchanges.is_empty());
        assert_eq!(a.framing, None);
    }

    #[test]
    fn a_syn_ack_without_its_syn_gives_sides_but_no_handshake() {
        let mut w = echo();
        w.segs.remove(0);
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        assert_eq!((c.client, c.server), (w.client, w.server));
        assert!(c.handshake.is_none());
        assert_eq!(c.notes.len(), 1);
        assert!(
            c.notes[0].contains("SYN was not captured"),
            "{}",
            c.notes[0]
        );
        // The client's stream is still anchored (ISN = SYN-ACK's ack - 1).
        assert_eq!(requests(c), ["hello", "second", "third"]);
        assert_eq!(c.bytes_client_to_server, 19);
    }

    #[test]
    fn retransmitted_syn_keeps_one_connection_and_rtt_from_the_last_syn() {
        let mut w = Script::new(1, 1);
        let syn = w.seg(0, Side::Client, flags(true, false, false, false), b"");
        let mut again = syn.clone();
        again.time = 1_000_000;
        w.segs.push(again);
        w.seg(
            1_000_040,
            Side::Server,
            flags(true, true, false, false),
            b"",
        );
        w.ack(1_000_050, Side::Client);
        let a = analyze(Options::default(), &w.segs);
        let h = one(&a).handshake.clone().unwrap();
        assert_eq!(h.syn, Timestamp(0));
        assert_eq!(h.rtt_us, Some(40.0));
    }

    proptest! {
        #[test]
        fn any_order_and_duplication_of_data_segments_gives_the_same_exchanges(
            msgs in prop::collection::vec("[a-z ]{0,12}", 1..12),
            cuts in prop::collection::vec(any::<usize>(), 0..16),
            order in prop::collection::vec(any::<usize>(), 0..40),
            isn in any::<u32>(),
        ) {
            let stream: Vec<u8> = msgs.iter().flat_map(|m| m.bytes().chain(*b"\n")).collect();
            let mut w = Script::new(isn, 77);
            w.handshake(0, 50);
            let base = w.cseq;
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            points.extend([0, stream.len()]);
            points.sort_unstable();
            points.dedup();
            let mut data: Vec<Seg> = points
                .windows(2)
                .map(|p| {
                    let mut seg = w.c(1_000 + p[0] as u64, &stream[p[0]..p[1]]);
                    seg.seq = base.wrapping_add(p[0] as u32);
                    seg
                })
                .collect();
            w.segs.truncate(3);
            // Shuffle, and send some segments twice.
            for (k, i) in order.iter().enumerate() {
                let j = i % data.len();
                if k % 3 == 0 {
                    let dup = data[j].clone();
                    data.push(dup);
                } else {
                    let n = data.len();
                    data.swap(k % n, j);
                }
            }
            w.segs.extend(data);
            w.cseq = base.wrapping_add(stream.len() as u32);
            for m in &msgs {
                w.s(5_000, format!("Echo: {m}\n").as_bytes());
            }
            let a = analyze(Options::default(), &w.segs);
            let c = one(&a);
            let expect: Vec<String> = msgs.to_vec();
            let got: Vec<String> = c.exchanges.iter().map(|e| e.request_preview.clone()).collect();
            prop_assert_eq!(got, expect);
            prop_assert!(c.gaps.is_empty());
            prop_assert_eq!(c.bytes_client_to_server, stream.len() as u64);
            prop_assert!(c.exchanges.iter().all(|e| e.response_bytes == e.request_bytes + 6));
        }

        #[test]
        fn arbitrary_segments_never_panic(
            segs in prop::collection::vec(
                (0u8..4, any::<u32>(), any::<u32>(), 0u8..32, prop::collection::vec(any::<u8>(), 0..40), 0u32..200),
                0..60,
            ),
            framing in prop::sample::select(vec![FramingChoice::Auto, FramingChoice::Line, FramingChoice::Length, FramingChoice::Raw]),
        ) {
            let addrs: [SocketAddr; 3] = ["10.0.0.1:2222".parse().unwrap(), "10.0.0.2:40000".parse().unwrap(), "[::1]:80".parse().unwrap()];
            let mut an = Analyzer::new(Options { framing, max_buffered_per_flow: 64, max_message: 16, ..Options::default() });
            for (i, (pair, seq, ack, f, payload, extra)) in segs.iter().enumerate() {
                let (src, dst) = match pair { 0 => (addrs[0], addrs[1]), 1 => (addrs[1], addrs[0]), 2 => (addrs[2], addrs[0]), _ => (addrs[0], addrs[2]) };
                let seg = TcpSegment {
                    number: i as u64 + 1,
                    time: Timestamp(i as u64 * 1000),
                    src, dst, seq: *seq % 256, ack: *ack % 256,
                    flags: TcpFlags { syn: f & 1 != 0, ack: f & 2 != 0, fin: f & 4 != 0, rst: f & 8 != 0, psh: f & 16 != 0 },
                    payload,
                    payload_len: payload.len() as u32 + extra % 3,
                };
                an.push(&seg);
            }
            let a = an.finish();
            for c in &a.connections {
                for e in &c.exchanges {
                    prop_assert!(e.request_preview.chars().count() <= 40 + 30);
                }
                let gaps: u64 = c.gaps.iter().map(|g| g.len).sum();
                prop_assert!(gaps <= c.bytes_client_to_server + c.bytes_server_to_client);
                if framing == FramingChoice::Raw {
                    // Turns account for every byte counted, once.
                    let req: u64 = c.exchanges.iter().map(|e| e.request_bytes).sum();
                    let resp: u64 = c.exchanges.iter().map(|e| e.response_bytes).sum();
                    prop_assert_eq!(req, c.bytes_client_to_server);
                    prop_assert_eq!(resp, c.bytes_server_to_client);
                }
            }
        }
    }
}
