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
//!   (until it is taken with [`Analyzer::next_settled`]; after that they
//!   are ignored). The table forgets the address pair of a drained
//!   connection once it has been quiet for `LINGER` of capture time, so
//!   the table follows the live connections, not the whole capture.
//! - **Timeouts**, in capture time, as Zeek has them: a connection with no
//!   packet for [`Options::inactivity_timeout`] (5 minutes), or for
//!   [`Options::syn_timeout`] (5 s) when only its SYN was seen, is over:
//!   flushed as at the end of the capture, noted on the connection, counted
//!   in one warning. Checked at each sweep of the table (every
//!   65,536 packets) and at each [`Analyzer::tick`].
//! - **Acknowledged holes.** When one side acknowledges bytes of the other
//!   side's stream beyond a hole, the receiver had them: no retransmission
//!   will be captured, so the hole is reported as a gap at once (and the
//!   exchanges keep their order).
//! - **Streaming.** Bytes are decoded into messages as soon as they are in
//!   order, and then dropped; out-of-order bytes held per connection (both
//!   directions together) are bounded by [`Options::max_buffered_per_flow`]:
//!   past it, the oldest hole is given up on, reported as a gap and warned
//!   about.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::event::{Event, SegmentSeen};
use super::model::{
    Analysis, CloseKind, ConnState, Connection, Gap, MAX_EVENTS, PacketRecord, Side, Timestamp,
};
use super::pairing::{PairLimits, Pairer};
use super::reassembly::{Chunk, ChunkData, Reassembler};
use super::segment::TcpSegment;
use super::tcp_events::EventDetector;
use super::warnings::Warnings;
use crate::protocol::Framing;
use ending::{close_flow, finalize, finish_slot, state_of, time_out};
use handshake::{handshake_ack, syn};
use key::{Key, key};
pub use memory::format_size;
use memory::step;
use options::choose_sides;
pub use options::{DEFAULT_MEMCAP, Options};
use output::Output;
use parking::Parking;
use pure_acks::count_pure_ack;
use request_acks::RequestAcks;

/// How long (capture time) the address pair of a drained connection is
/// remembered, so that its stragglers (a retransmitted FIN whose ACK was
/// lost, a duplicate ACK, packets after an RST) are ignored instead of
/// opening a connection without handshake. Retransmissions come within a
/// few timeouts (200 ms, doubling); TCP's own TIME_WAIT is longer (60 s on
/// Linux) but would keep a busy capture's every pair. A SYN on the pair
/// still opens a new connection at any time.
pub(crate) const LINGER: Duration = Duration::from_secs(5);

/// Packets between two sweeps of the table for pairs to forget.
const SWEEP_EVERY: u64 = 1 << 16;

/// The flow table's hasher: foldhash is several times faster than std's
/// SipHash on these small keys, and seeded per process, so a crafted capture
/// cannot predict collisions (an unseeded hasher such as FxHash would let
/// one turn the table quadratic).
type Table = HashMap<Key, Slot, foldhash::fast::RandomState>;

/// The table entry of an address pair: its latest connection.
#[derive(Debug)]
struct Slot {
    /// Number of the connection (`Connection::id`).
    id: u32,
    /// The connection until it is over (then it waits in the output).
    conn: Option<Box<Connection>>,
    client: SocketAddr,
    /// The client's initial sequence number, when known (SYN or SYN-ACK).
    client_isn: Option<u32>,
    /// The server's, when known (SYN-ACK), kept after the flow is over for
    /// the relative numbers of the last ACKs.
    server_isn: Option<u32>,
    /// Sequence number of each side's FIN, and whether the other side
    /// acknowledged it (client, server).
    fin_seq: [Option<u32>; 2],
    fin_acked: [bool; 2],
    /// An RST was seen.
    reset: bool,
    /// Ended by the inactivity timeout, or evicted for memory.
    ended: Option<ConnState>,
    /// Live state; `None` once closed.
    flow: Option<Box<Flow>>,
    /// Capture time of the latest packet on the pair.
    last_time: Timestamp,
    /// Bytes this entry is counted for in the memory budget.
    bytes: usize,
    /// Exchanges, TCP events, kept ACKs and gaps of the connection when
    /// `bytes` was counted.
    listed: u32,
    /// Exchanges settled and counted in `ex_bytes` (see [`memory`]).
    ex_counted: u32,
    /// Heap bytes of the first `ex_counted` exchanges.
    ex_bytes: usize,
    /// Its allocations were shrunk for the budget, and no packet came since.
    shrunk: bool,
    /// Exchanges whose own allocations were shrunk (see [`memory`]).
    ex_shrunk: u32,
    /// Its state has no parked form (an application protocol's codec):
    /// not tried again.
    unparkable: bool,
}

impl Slot {
    /// The slot of connection `conn` (its client at `client`), live with
    /// `flow`, its latest packet at `last_time`; nothing else known yet.
    fn new(conn: Box<Connection>, client: SocketAddr, flow: Flow, last_time: Timestamp) -> Slot {
        Slot {
            id: conn.id,
            conn: Some(conn),
            client,
            client_isn: None,
            server_isn: None,
            fin_seq: [None; 2],
            fin_acked: [false; 2],
            reset: false,
            ended: None,
            last_time,
            bytes: 0,
            listed: 0,
            ex_counted: 0,
            ex_bytes: 0,
            shrunk: false,
            ex_shrunk: 0,
            unparkable: false,
            flow: Some(Box::new(flow)),
        }
    }

    /// Closed, and nothing more is expected: reset, or every FIN sent was
    /// acknowledged.
    fn settled(&self) -> bool {
        self.flow.is_none()
            && (self.reset
                || self.ended.is_some()
                || (0..2).all(|s| self.fin_seq[s].is_none() || self.fin_acked[s]))
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
    /// Exchanges handed out as [`Event::Exchange`] so far.
    reported: usize,
    /// Finds retransmissions, duplicate ACKs, zero windows and the like.
    events: EventDetector,
    /// When the server acknowledged each request.
    request_acks: RequestAcks,
}

/// Tracks every TCP connection of a capture, segment by segment.
///
/// Memory is the tracked connections (their state, what they have paired
/// so far and their out-of-order bytes, bounded in all by
/// [`Options::memcap`]: past it the idle ones are shrunk, then the oldest
/// idle ones evicted) plus the
/// output not taken yet. Take finished connections as you go with
/// [`Analyzer::next_settled`] (as [`crate::analyze::analyze_stream`]
/// does); the flow table then forgets their address pairs after [`LINGER`].
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
    /// Latest capture time of a packet (`now` without the ticks): what
    /// parking goes by, so that it does not depend on when ticks come.
    packet_time: Timestamp,
    /// Packets since the last sweep of the table.
    since_sweep: u64,
    out: Output,
    /// Bytes of the flow table's entries, as [`memory`] estimates them.
    tracked_bytes: usize,
    /// No eviction before this packet count (after one that could not
    /// free enough).
    evict_after: u64,
    /// No early parking before this packet count (after one that could
    /// not park enough).
    park_after: u64,
    /// Framing of every drained connection with exchanges, if they agree:
    /// `None` before any, `Some(None)` once they disagree.
    framing_seen: Option<Option<Framing>>,
    warnings: Warnings,
    last_packet: u64,
    /// Connections closed by an inactivity timeout.
    timed_out: u64,
    /// Connections evicted for the memory budget.
    evicted: u64,
    /// Connections of the table still to hand out by
    /// [`Analyzer::next_remaining`], by number, highest first.
    remaining: Option<Vec<(u32, Key)>>,
    /// Idle connections parked as compressed bytes (see [`parking`]).
    parking: Parking,
    /// Tests: park every connection after each of its packets.
    #[cfg(test)]
    park_always: bool,
}

impl Analyzer {
    /// An analyzer with nothing seen yet.
    pub fn new(opts: Options) -> Self {
        Analyzer {
            opts,
            table: Table::default(),
            now: Timestamp(0),
            packet_time: Timestamp(0),
            since_sweep: 0,
            out: Output::default(),
            tracked_bytes: 0,
            evict_after: 0,
            park_after: 0,
            framing_seen: None,
            warnings: Warnings::default(),
            last_packet: 0,
            timed_out: 0,
            evicted: 0,
            remaining: None,
            parking: Parking::default(),
            // `REQRESP_PARK_ALWAYS=1 cargo nextest run --lib` runs every
            // analyzer test with each connection parked after each packet.
            #[cfg(test)]
            park_always: std::env::var_os("REQRESP_PARK_ALWAYS").is_some_and(|v| v == "1"),
        }
    }

    /// Also queue [`Event::Opened`] and [`Event::Exchange`] for
    /// [`Analyzer::next_event`], so that a live view can show a connection
    /// when it opens and each exchange as soon as it is settled. Off by
    /// default: it costs a copy of every exchange.
    pub fn with_exchange_events(mut self) -> Self {
        self.out.events.get_or_insert_with(VecDeque::new);
        self
    }

    /// Whether exchange events are queued (see [`Self::with_exchange_events`]).
    pub(crate) fn hands_out_exchanges(&self) -> bool {
        self.out.events.is_some()
    }

    /// Exchange events, and also [`Event::Segment`] for every segment of a
    /// connection not handed out yet: for a live view that draws the
    /// handshake and each packet as it comes. Costs a small copy per segment.
    pub fn with_packet_events(mut self) -> Self {
        self.out.segments = true;
        self.with_exchange_events()
    }

    /// The next event: the queued [`Event::Opened`] and [`Event::Exchange`]
    /// first (when asked for), then the next connection over as
    /// [`Event::Closed`] (see [`Analyzer::next_settled`]). Take them all
    /// after each [`Analyzer::push`] or [`Analyzer::tick`].
    pub fn next_event(&mut self) -> Option<Event> {
        if let Some(event) = self.out.events.as_mut().and_then(VecDeque::pop_front) {
            return Some(event);
        }
        self.next_settled().map(|c| Event::Closed(Box::new(c)))
    }

    /// Time passes without packets (a live capture that is quiet): the
    /// analyzer's clock moves to `now` if later, and the table forgets the
    /// address pairs of drained connections quiet for `LINGER`.
    pub fn tick(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        self.sweep();
    }

    /// Connections seen so far (drained ones included).
    pub fn connections(&self) -> usize {
        self.out.seen as usize
    }

    /// Whether [`Analyzer::next_settled`] has a connection to hand over.
    pub fn has_settled(&self) -> bool {
        self.out.has_next(self.now)
    }

    /// Takes the next connection that is over: a connection is over after
    /// an RST, once every FIN sent was acknowledged, when a new connection
    /// reused its ports, after its inactivity timeout, or when it was
    /// evicted for memory ([`Options::memcap`]). They come in the order
    /// the connections opened, except that one still open holds back at
    /// most [`output::REORDER_WINDOW`] finished ones (or 5 s of capture
    /// time): past that they come ahead of it. A taken connection will not
    /// be in [`Analyzer::finish`]'s result; its later packets are ignored.
    pub fn next_settled(&mut self) -> Option<Connection> {
        let mut c = self.out.take(self.now)?;
        c.state = state_of(&c, c.state);
        self.note_framing(&c);
        Some(*c)
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

    /// Adds a warning, under the one cap of [`Warnings`].
    pub fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// Adds the reader's warnings after the analyzer's, under the same cap.
    pub fn warn_all(&mut self, warnings: Warnings) {
        self.warnings.extend(warnings);
    }

    /// Takes the next segment of the capture (in capture order).
    pub fn push(&mut self, seg: &TcpSegment<'_>) {
        self.last_packet = self.last_packet.max(seg.number);
        self.now = self.now.max(seg.time);
        self.packet_time = self.packet_time.max(seg.time);
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
        let slot = match self.table.entry(k) {
            Entry::Occupied(e) if !new_needed(e.get()) => e.into_mut(),
            Entry::Occupied(e) => {
                let old = e.into_mut();
                self.tracked_bytes -= old.bytes;
                close_flow(old, seg.time);
                finish_slot(old, &mut self.out, self.now);
                *old = open(&mut self.out, &self.opts, seg);
                old
            }
            Entry::Vacant(e) => match self.parking.take(e.key()) {
                Some(old) if !new_needed(&old) => e.insert(old),
                Some(mut old) => {
                    close_flow(&mut old, seg.time);
                    finish_slot(&mut old, &mut self.out, self.now);
                    e.insert(open(&mut self.out, &self.opts, seg))
                }
                None => e.insert(open(&mut self.out, &self.opts, seg)),
            },
        };
        step(
            slot,
            &mut self.out,
            &mut self.tracked_bytes,
            &self.opts,
            seg,
            &mut warnings,
        );
        for w in warnings {
            self.warn(w);
        }
        #[cfg(test)]
        if self.park_always {
            self.park_now(&key(seg.src, seg.dst));
        }
        self.keep_within_budget(seg.number);
    }

    /// Ends the analysis: every connection still open is flushed (holes
    /// become gaps, unfinished messages are ended) and left with `close` as
    /// seen. `packets` is set to the highest packet number seen, a lower bound
    /// the reader should overwrite with its own count.
    pub fn finish(mut self) -> Analysis {
        let mut connections: Vec<Box<Connection>> = self.out.take_all().collect();
        for (_, mut slot) in std::mem::take(&mut self.table) {
            if let Some(time) = slot.conn.as_ref().map(|c| c.last_seen) {
                close_flow(&mut slot, time);
            }
            connections.extend(slot.conn.take());
        }
        loop {
            let before = self.parking.len();
            let slots = self.parking.take_oldest();
            if self.parking.len() == before {
                break;
            }
            for mut slot in slots {
                if let Some(time) = slot.conn.as_ref().map(|c| c.last_seen) {
                    close_flow(&mut slot, time);
                }
                connections.extend(slot.conn.take());
            }
        }
        connections.sort_unstable_by_key(|c| c.id);
        for c in &mut connections {
            c.state = state_of(c, c.state);
            self.note_framing(c);
        }
        let framing = self.opts.framing.fixed().or(self.framing_seen.flatten());
        self.end_warnings();
        Analysis {
            packets: self.last_packet,
            framing,
            connections: connections.into_iter().map(|c| *c).collect(),
            warnings: self.warnings.into_lines(),
            ..Analysis::default()
        }
    }
}

/// Creates the connection a segment opens (or is the first seen of).
fn open(out: &mut Output, opts: &Options, seg: &TcpSegment<'_>) -> Slot {
    let (client, server, how) = choose_sides(seg, opts);
    let id = out.open_next();
    let mut conn = Box::new(Connection::new(id, client, server, seg.time));
    if let Some(how) = how {
        conn.notes.push(format!(
            "the capture began after the handshake (first packet #{}); \
             the server side was chosen {how}",
            seg.number
        ));
    }
    let pairer = Pairer::new(
        opts.framing,
        PairLimits {
            max_message: opts.max_message,
            preview_len: opts.preview_len,
            packets: opts.keep_packets,
        },
        &mut conn,
    );
    if let Some(events) = &mut out.events {
        events.push_back(Event::Opened {
            id,
            client,
            server,
            time: seg.time,
        });
    }
    let flow = Flow {
        streams: [Reassembler::new(), Reassembler::new()],
        pairer,
        server_isn: None,
        last_syn: None,
        fin: [false; 2],
        rst: [false; 2],
        warned_bound: [false; 2],
        reported: 0,
        events: EventDetector::new(),
        request_acks: RequestAcks::default(),
    };
    Slot::new(conn, client, flow, seg.time)
}

/// Applies a segment to the connection of its address pair (`slot`): in
/// the slot while it is open, in the output once it is over (until taken;
/// after that the segment only moves the slot's clock), and queues the
/// events of exchanges it settled. (A function of the analyzer's fields
/// rather than a method, so that the slot can stay borrowed from the table.)
fn apply(
    slot: &mut Slot,
    out: &mut Output,
    opts: &Options,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) {
    slot.last_time = slot.last_time.max(seg.time);
    slot.shrunk = false;
    let mut own = slot.conn.take();
    let conn: &mut Connection = match own.as_deref_mut() {
        Some(conn) => conn,
        None => match out.ready.get_mut(&slot.id) {
            Some(ready) => &mut ready.conn,
            // Taken already: over, nothing more to learn.
            None => return,
        },
    };
    let segments = out.segments;
    apply_to(
        slot,
        conn,
        out.events.as_mut(),
        segments,
        opts,
        seg,
        warnings,
    );
    slot.conn = own;
}

/// [`apply`] once the connection is found.
fn apply_to(
    slot: &mut Slot,
    conn: &mut Connection,
    mut events: Option<&mut VecDeque<Event>>,
    segments: bool,
    opts: &Options,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) {
    conn.last_seen = conn.last_seen.max(seg.time);
    let side = if seg.src == slot.client {
        Side::Client
    } else {
        Side::Server
    };
    let peer = side.other().index();
    let f = seg.flags;
    let pure_ack = f.ack && !f.syn && !f.fin && !f.rst && seg.payload_len == 0;
    // The teardown's last ACK: a pure ACK of the other side's FIN, sent
    // after this side's own FIN (so it acknowledges the second FIN).
    let last_ack = pure_ack
        && !slot.fin_acked[peer]
        && slot.fin_seq[side.index()].is_some()
        && slot.fin_seq[peer].is_some_and(|fin| fin.wrapping_add(1) == seg.ack);
    if seg.flags.ack
        && let Some(fin) = slot.fin_seq[peer]
        && (seg.ack.wrapping_sub(fin.wrapping_add(1)) as i32) >= 0
    {
        slot.fin_acked[peer] = true;
    }
    let handshake_ack = |conn: &Connection| conn.handshake.as_ref().and_then(|h| h.ack);
    let before = handshake_ack(conn);
    if segments && let Some(events) = events.as_deref_mut() {
        events.push_back(Event::Segment(SegmentSeen::new(conn.id, side, seg)));
    }
    if slot.flow.is_some() {
        let events_before = conn.events.len();
        let closed = track(opts, slot, conn, side, seg, warnings);
        if let Some(events) = events.as_deref_mut() {
            events.extend(
                conn.events[events_before.min(conn.events.len())..]
                    .iter()
                    .map(|e| Event::Tcp {
                        connection: conn.id,
                        event: e.clone(),
                    }),
            );
        }
        if let Some(flow) = &mut slot.flow {
            slot.server_isn = slot.server_isn.or(flow.server_isn);
            if let Some(events) = events {
                report_settled(flow, conn, events);
            }
        }
        if closed && let Some(flow) = slot.flow.take() {
            finalize(*flow, conn, seg.time, seg.number);
        }
    }
    if pure_ack {
        count_pure_ack(slot, conn, opts, side, seg, last_ack, before);
    }
}

/// Runs the segment through the connection's TCP event detector, keeping at
/// most [`MAX_EVENTS`] events and counting the rest.
fn record_events(
    detector: &mut EventDetector,
    conn: &mut Connection,
    side: Side,
    seg: &TcpSegment<'_>,
) {
    let before = conn.events.len();
    detector.observe(side, seg, &mut conn.events);
    if conn.events.len() > MAX_EVENTS {
        let extra = conn.events.len() - MAX_EVENTS.max(before);
        conn.events.truncate(MAX_EVENTS.max(before));
        conn.events_dropped += extra as u64;
    }
    if conn.initial_rtt_us.is_none() {
        conn.initial_rtt_us = detector.initial_rtt_us();
    }
}

/// Queues an [`Event::Exchange`] for each exchange of `conn` settled since
/// the last call.
fn report_settled(flow: &mut Flow, conn: &Connection, events: &mut VecDeque<Event>) {
    let answered = flow.pairer.answered().min(conn.exchanges.len());
    for index in flow.reported..answered {
        events.push_back(Event::Exchange {
            connection: conn.id,
            index,
            exchange: Box::new(conn.exchanges[index].clone()),
            split: conn.latency_split(&conn.exchanges[index]),
        });
    }
    flow.reported = flow.reported.max(answered);
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
    let s = side.index();
    let f = seg.flags;
    record_events(&mut flow.events, conn, side, seg);
    if f.rst {
        slot.reset = true;
        if !flow.rst[s] {
            flow.rst[s] = true;
            conn.record_close(side, CloseKind::Rst, seg.time);
        }
        return true;
    }
    if f.syn {
        syn(flow, &mut slot.client_isn, conn, side, seg);
    } else if side == Side::Client && f.ack {
        handshake_ack(flow, conn, seg);
    }
    let own_isn = match side {
        Side::Client => slot.client_isn,
        Side::Server => flow.server_isn,
    };
    let peer_isn = match side {
        Side::Client => flow.server_isn,
        Side::Server => slot.client_isn,
    };
    let pkt = PacketRecord {
        frame: seg.number,
        time: seg.time,
        flags: f.bits,
        seq: own_isn.map(|isn| seg.seq.wrapping_sub(isn)),
        ack: peer_isn
            .filter(|_| f.ack)
            .map(|isn| seg.ack.wrapping_sub(isn)),
        len: seg.payload_len,
    };
    let data_seq = data(opts, flow, conn, side, seg, &pkt, warnings);
    if side == Side::Server
        && let Some(ack) = pkt.ack
    {
        flow.request_acks.server_ack(ack, seg.time);
    }
    flow.request_acks.settle(conn);
    if f.fin && !flow.fin[s] {
        flow.fin[s] = true;
        slot.fin_seq[s] = Some(data_seq.wrapping_add(seg.payload_len));
        conn.record_close(side, CloseKind::Fin, seg.time);
    }
    flow.fin == [true, true] && flow.streams.iter().all(|r| r.is_complete())
}

/// The segment's acknowledgment (delivering the other side's stream) and
/// payload (into this side's); returns the sequence number of its first
/// data byte.
fn data(
    opts: &Options,
    flow: &mut Flow,
    conn: &mut Connection,
    side: Side,
    seg: &TcpSegment<'_>,
    pkt: &PacketRecord,
    warnings: &mut Vec<String>,
) -> u32 {
    let (s, o) = (side.index(), side.other().index());
    let f = seg.flags;
    let Flow {
        streams, pairer, ..
    } = flow;
    if f.ack {
        // What this side acknowledges, the other side's stream has delivered.
        streams[o].acked(seg.ack, seg.time, seg.number, &mut |chunk| {
            deliver(pairer, conn, side.other(), &chunk)
        });
    }
    let data_seq = seg.seq.wrapping_add(u32::from(f.syn));
    let budget = (opts.max_buffered_per_flow as u64).saturating_sub(streams[o].held_bytes());
    let outcome = streams[s].push(
        data_seq,
        seg.payload,
        seg.payload_len,
        f.fin,
        pkt,
        budget,
        &mut |chunk| deliver(pairer, conn, side, &chunk),
    );
    if outcome.given_up > 0 && !flow.warned_bound[s] {
        flow.warned_bound[s] = true;
        warnings.push(format!(
            "connection {} ({} -> {}): more than {} out-of-order bytes held at packet #{}; \
             gave up waiting for {} {side} bytes, reported as a gap (raise the per-flow buffer \
             limit to wait longer; later ones on this connection are only reported as gaps)",
            conn.id,
            conn.client,
            conn.server,
            opts.max_buffered_per_flow,
            seg.number,
            outcome.given_up,
        ));
    }
    if outcome.ignored {
        warnings.push(format!(
            "packet #{}: sequence number {} is far outside the {side} stream of connection {}; ignored",
            seg.number, seg.seq, conn.id
        ));
    }
    data_seq
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

mod ending;
mod handshake;
mod key;
mod memory;
mod options;
mod output;
mod parking;
mod pure_acks;
mod request_acks;
#[cfg(test)]
mod tests;
