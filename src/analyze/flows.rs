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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::event::{Event, SEGMENT_HEAD, SegmentSeen};
use super::model::{
    Analysis, Close, CloseEvent, CloseKind, Connection, Gap, MAX_EVENTS, PacketRecord, Side,
    Timestamp,
};
use super::pairing::{PairLimits, Pairer};
use super::reassembly::{Chunk, ChunkData, Reassembler};
use super::segment::TcpSegment;
use super::tcp_events::EventDetector;
use super::warnings::Warnings;
use crate::protocol::Framing;
use handshake::{handshake_ack, syn};
use key::{Key, key};
pub use options::Options;
use options::choose_sides;
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
    /// Number of the connection in the output list, from 0 (the drained
    /// ones included).
    conn: usize,
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
    /// Closed by the inactivity timeout.
    timed_out: bool,
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
            && (self.reset
                || self.timed_out
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

/// What the analyzer owes its caller: the connections not taken yet, and
/// the events of exchange settled (when asked for).
#[derive(Debug, Default)]
struct Output {
    /// Connections not drained yet; the first is number `drained`.
    connections: VecDeque<Connection>,
    /// Per connection in `connections`: settled (see [`Slot::settled`]).
    settled: VecDeque<bool>,
    drained: usize,
    /// [`Event::Opened`], [`Event::Exchange`], [`Event::Tcp`] and
    /// [`Event::Segment`] not taken yet; `None` when they are not asked for.
    events: Option<VecDeque<Event>>,
    /// Queue [`Event::Segment`] too.
    segments: bool,
}

impl Output {
    /// The connection of `slot`, unless drained already.
    fn get_mut(&mut self, conn: usize) -> Option<&mut Connection> {
        conn.checked_sub(self.drained)
            .and_then(|i| self.connections.get_mut(i))
    }
}

/// Tracks every TCP connection of a capture, segment by segment.
///
/// Memory is the live connections' buffers plus the output (every
/// connection with its exchanges). To keep the output from growing with the
/// capture, take finished connections as you go with
/// [`Analyzer::next_settled`] (as [`crate::analyze::analyze_stream`] does);
/// the flow table then forgets their address pairs after `LINGER`.
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
    out: Output,
    /// Framing of every drained connection with exchanges, if they agree:
    /// `None` before any, `Some(None)` once they disagree.
    framing_seen: Option<Option<Framing>>,
    warnings: Warnings,
    last_packet: u64,
    /// Connections closed by an inactivity timeout.
    timed_out: u64,
}

impl Analyzer {
    /// An analyzer with nothing seen yet.
    pub fn new(opts: Options) -> Self {
        Analyzer {
            opts,
            table: Table::default(),
            now: Timestamp(0),
            since_sweep: 0,
            out: Output::default(),
            framing_seen: None,
            warnings: Warnings::default(),
            last_packet: 0,
            timed_out: 0,
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
        self.next_settled().map(Event::Closed)
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
        self.out.drained + self.out.connections.len()
    }

    /// Whether [`Analyzer::next_settled`] has a connection to hand over.
    pub fn has_settled(&self) -> bool {
        self.out.settled.front() == Some(&true)
    }

    /// Takes the next connection that is over, in order, if the first one
    /// not taken yet is: a connection is over after an RST, or once every
    /// FIN sent was acknowledged (or when a new connection reused its
    /// ports). It will not be in [`Analyzer::finish`]'s result; later
    /// packets of a taken connection are ignored. One long-lived connection
    /// holds back every later one, so memory then grows as without taking.
    pub fn next_settled(&mut self) -> Option<Connection> {
        if !self.has_settled() {
            return None;
        }
        self.out.settled.pop_front();
        self.out.drained += 1;
        let c = self.out.connections.pop_front()?;
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
        if settled && let Some(i) = slot_conn.checked_sub(self.out.drained) {
            self.out.settled[i] = true;
        }
    }

    /// Adds a warning, under the one cap of `Warnings`.
    pub fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// Adds the reader's warnings after the analyzer's, under the same cap.
    pub fn warn_all(&mut self, warnings: Warnings) {
        self.warnings.extend(warnings);
    }

    fn limits(&self) -> PairLimits {
        PairLimits {
            max_message: self.opts.max_message,
            preview_len: self.opts.preview_len,
            packets: self.opts.keep_packets,
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
                apply(slot, &mut self.out, &self.opts, seg, &mut warnings);
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
            apply(slot, &mut self.out, &self.opts, seg, &mut warnings);
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
        if let Some(events) = &mut self.out.events {
            events.push_back(Event::Opened {
                id,
                client,
                server,
                time: seg.time,
            });
        }
        self.out.connections.push_back(conn);
        self.out.settled.push_back(false);
        Slot {
            conn: self.connections() - 1,
            client,
            client_isn: None,
            server_isn: None,
            fin_seq: [None; 2],
            fin_acked: [false; 2],
            reset: false,
            timed_out: false,
            last_time: seg.time,
            flow: Some(Box::new(Flow {
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
            })),
        }
    }

    /// Forgets the address pairs of drained connections quiet for
    /// [`LINGER`]. Runs every [`SWEEP_EVERY`] packets: the cost is spread
    /// thin, and pairs linger at most that many packets longer.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let linger = nanos(LINGER);
        let (inactive, syn_only) = (
            nanos(self.opts.inactivity_timeout),
            nanos(self.opts.syn_timeout),
        );
        let now = self.now;
        let out = &mut self.out;
        let mut timed_out = 0;
        self.table.retain(|_, slot| {
            let idle = now.0.saturating_sub(slot.last_time.0);
            if let Some(flow) = &slot.flow {
                // A SYN and no answer: an attempt, given up on sooner.
                let attempt = flow.last_syn.is_some() && flow.server_isn.is_none();
                let limit = if attempt {
                    syn_only.min(inactive)
                } else {
                    inactive
                };
                if idle > limit {
                    time_out(slot, out, limit);
                    timed_out += 1;
                }
            }
            slot.conn >= out.drained || idle <= linger
        });
        self.timed_out += timed_out;
    }

    /// Address pairs the flow table holds (live, settled, or lingering
    /// after being drained).
    #[cfg(test)]
    pub(crate) fn tracked_pairs(&self) -> usize {
        self.table.len()
    }

    fn close_flow(&mut self, mut slot: Slot, time: Timestamp) {
        if let Some(flow) = slot.flow.take()
            && let Some(conn) = self.out.get_mut(slot.conn)
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
                .checked_sub(self.out.drained)
                .and_then(|i| self.out.connections.get(i))
                .map_or(Timestamp(0), |c| c.last_seen);
            self.close_flow(slot, time);
        }
        let connections = std::mem::take(&mut self.out.connections);
        for c in &connections {
            self.note_framing(c);
        }
        let framing = self.opts.framing.fixed().or(self.framing_seen.flatten());
        if self.timed_out > 0 {
            self.warn(format!(
                "{} connection(s) had no packet for longer than the inactivity timeout \
                 ({} s, {} s with only a SYN seen) and were reported as timed out, \
                 with what was seen (see each connection's notes)",
                self.timed_out,
                self.opts.inactivity_timeout.as_secs(),
                self.opts.syn_timeout.as_secs()
            ));
        }
        Analysis {
            packets: self.last_packet,
            framing,
            connections: connections.into(),
            warnings: self.warnings.into_lines(),
            ..Analysis::default()
        }
    }
}

/// Applies a segment to the connection of its address pair (`slot`), which
/// is `out.connections[slot.conn - drained]` unless drained already; marks
/// it settled once it is over, and queues the events of exchanges it
/// settled. (A function of the analyzer's fields rather than a method, so
/// that the slot can stay borrowed from the table.)
fn apply(
    slot: &mut Slot,
    out: &mut Output,
    opts: &Options,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) {
    slot.last_time = slot.last_time.max(seg.time);
    let Some(i) = slot.conn.checked_sub(out.drained) else {
        // Drained: over, nothing more to learn.
        return;
    };
    let Some(conn) = out.connections.get_mut(i) else {
        return;
    };
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
    if out.segments
        && let Some(events) = &mut out.events
    {
        events.push_back(Event::Segment(segment_seen(conn.id, side, seg)));
    }
    if slot.flow.is_some() {
        let events_before = conn.events.len();
        let closed = track(opts, slot, conn, side, seg, warnings);
        if let Some(events) = &mut out.events {
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
            if let Some(events) = &mut out.events {
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
    if slot.settled() {
        out.settled[i] = true;
    }
}

/// What a live view is told of a segment.
fn segment_seen(connection: u32, from: Side, seg: &TcpSegment<'_>) -> SegmentSeen {
    let mut head = [0; SEGMENT_HEAD];
    let n = seg.payload.len().min(SEGMENT_HEAD);
    head[..n].copy_from_slice(&seg.payload[..n]);
    SegmentSeen {
        connection,
        from,
        number: seg.number,
        time: seg.time,
        flags: seg.flags,
        payload_len: seg.payload_len,
        head,
        head_len: n as u8,
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
            exchange: conn.exchanges[index].clone(),
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
            close_event(conn, side, CloseKind::Rst, seg.time);
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
        close_event(conn, side, CloseKind::Fin, seg.time);
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

/// Ends the live connection of `slot`, quiet for more than its timeout of
/// `limit` ns of capture time: flushed as at the end of a capture, noted,
/// and settled.
fn time_out(slot: &mut Slot, out: &mut Output, limit: u64) {
    let Some(flow) = slot.flow.take() else {
        return;
    };
    slot.timed_out = true;
    let Some(i) = slot.conn.checked_sub(out.drained) else {
        return;
    };
    if let Some(conn) = out.connections.get_mut(i) {
        finalize(*flow, conn, slot.last_time, 0);
        conn.notes.push(format!(
            "no packet for more than {} s of capture time (the inactivity timeout): \
             reported as timed out, with what was seen",
            limit / 1_000_000_000
        ));
        out.settled[i] = true;
    }
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
        streams,
        pairer,
        request_acks,
        ..
    } = &mut flow;
    for side in Side::BOTH {
        streams[side.index()].flush(time, packet, &mut |chunk| {
            deliver(pairer, conn, side, &chunk)
        });
    }
    pairer.finish(conn);
    request_acks.settle(conn);
    conn.bytes_client_to_server = streams[0].bytes();
    conn.bytes_server_to_client = streams[1].bytes();
}

mod handshake;
mod key;
mod options;
mod pure_acks;
mod request_acks;
#[cfg(test)]
mod tests;
