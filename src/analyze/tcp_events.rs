//! TCP events: retransmissions, duplicate ACKs, lost and unseen segments,
//! zero windows, keep-alives, resets and refused connections, found from the
//! sequence and acknowledgment numbers of one connection's segments.
//!
//! Written by hand, on purpose: what TCP does when the network misbehaves is
//! what the lab's fault scenarios teach, and the rules must be readable. They
//! follow the meaning of Wireshark's `tcp.analysis` flags (so a student can
//! compare both tools on one capture), with these choices made explicit:
//!
//! - A data segment (or SYN, or FIN) that does not advance its sender's
//!   highest sequence number is, in this order: a **keep-alive** (0 or 1 byte
//!   one below the next sequence number); a **spurious retransmission** (all
//!   of it was already acknowledged); a **fast retransmission** (it starts
//!   where the other side has repeated its acknowledgment at least twice,
//!   within 20 ms of the last one); **out of order** (it came within one
//!   initial round trip, or 3 ms when none is known, of the highest segment
//!   and does not end where that one did); else a **retransmission** after a
//!   timeout, with the time since the segment was first sent. A SYN sent
//!   again is a **SYN retransmission** (the handshake was retried).
//! - A segment starting past its sender's highest sequence number means the
//!   capture missed what came before: **lost segment**. An acknowledgment of
//!   bytes the capture never saw: **segment never seen** (`acked_unseen`).
//! - A pure ACK repeating the sender's last acknowledgment, window and
//!   sequence number: **duplicate ACK**, numbered (`#1`, `#2`, …).
//! - Window 0 on a segment without SYN/FIN/RST: **zero window**. One byte at
//!   the next sequence number while the other side's window is 0: **zero
//!   window probe**. Data reaching exactly the right edge of the receiver's
//!   advertised window (when window scaling is known from the handshake):
//!   **window full**.
//! - Every RST is an event, with who sent it; a RST answering a SYN that got
//!   no SYN-ACK is a **refused connection** instead.
//!
//! Memory per connection is fixed: two small direction states and a ring of
//! at most [`UNACKED_RING`] recent segments per direction for the time since
//! a retransmitted segment's original.

use super::model::{Side, TcpEvent, TcpEventKind, Timestamp};
use super::segment::TcpSegment;

/// Segments remembered per direction to time a retransmission against its
/// original; older ones fall back on the time of the highest segment.
const UNACKED_RING: usize = 16;

/// Out-of-order threshold when no handshake round trip is known (as Wireshark).
const DEFAULT_OOO_NS: u64 = 3_000_000;

/// How close to the last duplicate ACK a fast retransmission comes (as Wireshark).
const FAST_RETRANSMIT_NS: u64 = 20_000_000;

/// What one direction has sent, as far as the events need it.
#[derive(Debug, Clone, Default)]
struct Direction {
    /// The sender's initial sequence number, once its SYN was seen.
    isn: Option<u32>,
    /// Highest sequence number sent plus one (SYN and FIN count one); `None` before the first segment.
    next_seq: Option<u32>,
    /// When the segment that set `next_seq` was captured.
    next_seq_time: Timestamp,
    /// Highest in-order sequence number the other side can acknowledge without having missed something.
    max_to_be_acked: Option<u32>,
    /// Last acknowledgment number sent, with its time.
    last_ack: Option<u32>,
    last_ack_time: Timestamp,
    /// Last window advertised (unscaled, as on the wire).
    window: Option<u16>,
    /// Window scale from the SYN option; `None` when the SYN was not seen or had none.
    scale: Option<u8>,
    /// The SYN was seen (so `scale` is known).
    syn_seen: bool,
    /// When the first SYN was sent, to time its retries.
    first_syn: Option<Timestamp>,
    /// Duplicate ACKs in the current run (since the acknowledgment last moved).
    dup_acks: u32,
    /// The last segment was a zero-window probe or a keep-alive.
    last_was_probe: bool,
    last_was_keep_alive: bool,
    /// Recent segments with data: (start, end, first time sent), newest last.
    /// A ring of at most [`UNACKED_RING`], allocated at the first data
    /// segment (a connection that carries none costs nothing here).
    recent: Vec<(u32, u32, Timestamp)>,
    recent_next: usize,
}

impl Direction {
    fn remember(&mut self, start: u32, end: u32, time: Timestamp) {
        if self.recent.iter().any(|r| r.0 == start) {
            return; // a retransmission: keep the original's time
        }
        if self.recent.len() < UNACKED_RING {
            self.recent.push((start, end, time));
        } else {
            self.recent[self.recent_next] = (start, end, time);
        }
        self.recent_next = (self.recent_next + 1) % UNACKED_RING;
    }

    /// When the byte at `seq` was first sent, if it is still remembered.
    fn first_sent(&self, seq: u32) -> Option<Timestamp> {
        self.recent
            .iter()
            .filter(|r| !lt(seq, r.0) && lt(seq, r.1.max(r.0.wrapping_add(1))))
            .map(|r| r.2)
            .min()
    }

    /// Sequence number relative to the initial one.
    fn relative(&self, seq: u32) -> i64 {
        match self.isn {
            Some(isn) => i64::from(seq.wrapping_sub(isn)) - 1,
            None => i64::from(seq),
        }
    }

    /// Window scaling as Wireshark applies it: known only when both SYNs were seen.
    fn shift(&self, other: &Direction) -> Option<u8> {
        if !self.syn_seen || !other.syn_seen {
            return None;
        }
        Some(match (self.scale, other.scale) {
            (Some(s), Some(_)) => s.min(14),
            _ => 0,
        })
    }
}

/// `a < b` in sequence space (mod 2^32).
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Finds the TCP events of one connection, one segment at a time, in capture order.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventDetector {
    /// Client's direction, then server's.
    dirs: [Direction; 2],
    /// Time of the client's latest SYN, for the initial round trip.
    syn_time: Option<Timestamp>,
    /// Initial round trip: SYN to the ACK completing the handshake (Wireshark's iRTT).
    initial_rtt_ns: Option<u64>,
    /// A SYN-ACK was seen.
    syn_ack_seen: bool,
}

impl EventDetector {
    /// A detector with nothing seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes this detector holds on the heap (its rings of recent segments).
    pub fn heap_bytes(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| d.recent.capacity() * std::mem::size_of::<(u32, u32, Timestamp)>())
            .sum()
    }

    /// Gives back the spare room of its rings (an idle connection's, under
    /// memory pressure); what they remember stays.
    pub fn shrink(&mut self) {
        for d in &mut self.dirs {
            d.recent.shrink_to_fit();
        }
    }

    /// Examines one segment sent by `side`, appending its events to `out`.
    pub fn observe(&mut self, side: Side, seg: &TcpSegment<'_>, out: &mut impl Extend<TcpEvent>) {
        let [client, server] = &mut self.dirs;
        let (me, other) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        let rel = if seg.flags.syn {
            -1
        } else {
            me.relative(seg.seq)
        };
        let mut found = Vec::new();
        let mut emit = |kind, detail| {
            found.push(TcpEvent {
                time: seg.time,
                side,
                kind,
                frame: seg.number,
                seq: rel,
                len: seg.payload_len,
                detail,
            });
        };
        let hs = Handshake {
            syn_time: &mut self.syn_time,
            initial_rtt_ns: &mut self.initial_rtt_ns,
            syn_ack_seen: &mut self.syn_ack_seen,
        };
        hs.observe(side, seg, me, other, &mut emit);
        let marks = window_and_ack_checks(seg, me, other, &mut emit);
        let ooo_ns = self
            .initial_rtt_ns
            .filter(|&r| r > 0)
            .unwrap_or(DEFAULT_OOO_NS);
        if !marks.probe && !marks.keep_alive && !marks.answers_probe {
            repeat_kind(seg, me, other, ooo_ns, &mut emit);
        }
        update(seg, me, &marks);
        out.extend(found);
    }

    /// The initial round trip (SYN to the ACK completing the handshake) in
    /// microseconds, when the handshake was captured.
    pub fn initial_rtt_us(&self) -> Option<f64> {
        self.initial_rtt_ns.map(|ns| ns as f64 / 1_000.0)
    }
}

/// What a segment turned out to be, for the bookkeeping after it.
#[derive(Default)]
struct Marks {
    probe: bool,
    keep_alive: bool,
    /// It answers the other side's probe or keep-alive (not a loss signal).
    answers_probe: bool,
}

/// The connection-wide handshake state.
struct Handshake<'a> {
    syn_time: &'a mut Option<Timestamp>,
    initial_rtt_ns: &'a mut Option<u64>,
    syn_ack_seen: &'a mut bool,
}

impl Handshake<'_> {
    /// SYNs (and their retries), the initial round trip, RSTs and refusals.
    fn observe(
        self,
        side: Side,
        seg: &TcpSegment<'_>,
        me: &mut Direction,
        other: &Direction,
        emit: &mut impl FnMut(TcpEventKind, Option<f64>),
    ) {
        let f = seg.flags;
        if f.syn {
            // The round trip counts from the last SYN sent (as Wireshark's
            // iRTT): a retried handshake does not count its timeout.
            if !f.ack {
                *self.syn_time = Some(seg.time);
            }
            *self.syn_ack_seen |= f.ack;
            if me.isn == Some(seg.seq) {
                let since = me.first_syn.map(|t| seg.time.micros_since(t));
                emit(TcpEventKind::SynRetransmission, since);
            } else {
                me.first_syn = Some(seg.time);
            }
            me.isn = Some(seg.seq);
            me.syn_seen = true;
            me.scale = seg.window_scale;
        } else if f.ack
            && side == Side::Client
            && self.initial_rtt_ns.is_none()
            && *self.syn_ack_seen
            && other.isn.is_some_and(|isn| seg.ack == isn.wrapping_add(1))
        {
            *self.initial_rtt_ns = self.syn_time.map(|t| seg.time.0.saturating_sub(t.0));
        }
        if f.rst {
            let refused = side == Side::Server && !*self.syn_ack_seen && other.isn.is_some();
            emit(
                if refused {
                    TcpEventKind::ConnectionRefused
                } else {
                    TcpEventKind::Rst
                },
                None,
            );
        }
    }
}

/// Zero-window probes, zero windows, lost segments, keep-alives, full
/// windows, duplicate ACKs and acknowledgments of unseen data.
fn window_and_ack_checks(
    seg: &TcpSegment<'_>,
    me: &mut Direction,
    other: &mut Direction,
    emit: &mut impl FnMut(TcpEventKind, Option<f64>),
) -> Marks {
    let f = seg.flags;
    let (len, seq) = (seg.payload_len, seg.seq);
    let control = f.syn || f.fin || f.rst;
    let mut marks = Marks::default();
    if len == 1 && me.next_seq == Some(seq) && other.window == Some(0) {
        marks.probe = true;
        emit(TcpEventKind::ZeroWindowProbe, None);
    } else {
        if seg.window == 0 && !control {
            emit(TcpEventKind::ZeroWindow, None);
        }
        if me.next_seq.is_some_and(|next| lt(next, seq)) && !f.rst {
            emit(TcpEventKind::LostSegment, None);
        }
        if len <= 1 && me.next_seq == Some(seq.wrapping_add(1)) && !control {
            marks.keep_alive = true;
            emit(TcpEventKind::KeepAlive, None);
        }
        if len > 0
            && !control
            && let (Some(shift), Some(ack), Some(win)) =
                (other.shift(me), other.last_ack, other.window)
            && seq.wrapping_add(len) == ack.wrapping_add(u32::from(win) << shift)
        {
            emit(TcpEventKind::WindowFull, None);
        }
        let repeats = len == 0
            && !control
            && me.window == Some(seg.window)
            && me.next_seq == Some(seq)
            && me.last_ack == Some(seg.ack);
        if repeats && (other.last_was_keep_alive || other.last_was_probe) {
            marks.answers_probe = true;
        } else if repeats && seg.window != 0 {
            me.dup_acks += 1;
            emit(TcpEventKind::DuplicateAck, Some(f64::from(me.dup_acks)));
        }
    }
    if f.ack
        && let Some(max) = other.max_to_be_acked
        && lt(max, seg.ack)
    {
        emit(TcpEventKind::AckedUnseen, None);
        other.max_to_be_acked = other.next_seq;
    }
    marks
}

/// Data (or a FIN) that does not advance its sender's sequence: spurious,
/// fast, out of order, or a retransmission after a timeout.
fn repeat_kind(
    seg: &TcpSegment<'_>,
    me: &Direction,
    other: &Direction,
    ooo_ns: u64,
    emit: &mut impl FnMut(TcpEventKind, Option<f64>),
) {
    let f = seg.flags;
    let (len, seq, now) = (seg.payload_len, seg.seq, seg.time);
    if f.syn || (len == 0 && !f.fin) {
        return;
    }
    // More than one byte right after a probe's byte is new data.
    let not_advanced = me.next_seq.is_some_and(|next| lt(seq, next))
        && !(len > 1 && me.next_seq == Some(seq.wrapping_add(1)));
    if len > 0
        && let Some(acked) = other.last_ack
        && !lt(acked, seq.wrapping_add(len))
    {
        emit(TcpEventKind::SpuriousRetransmission, None);
    } else if not_advanced {
        let fast = other.dup_acks >= 2
            && other.last_ack == Some(seq)
            && now.0.saturating_sub(other.last_ack_time.0) < FAST_RETRANSMIT_NS;
        let since_highest = now.0.saturating_sub(me.next_seq_time.0);
        if fast {
            emit(TcpEventKind::FastRetransmission, None);
        } else if since_highest < ooo_ns && me.next_seq != Some(seq.wrapping_add(len)) {
            emit(TcpEventKind::OutOfOrder, None);
        } else {
            let first = me.first_sent(seq).unwrap_or(me.next_seq_time);
            emit(TcpEventKind::Retransmission, Some(now.micros_since(first)));
        }
    }
}

/// Moves the sender's state past the segment.
fn update(seg: &TcpSegment<'_>, me: &mut Direction, marks: &Marks) {
    let f = seg.flags;
    let end = seg
        .seq
        .wrapping_add(seg.payload_len + u32::from(f.syn) + u32::from(f.fin));
    if seg.payload_len > 0 || f.fin {
        me.remember(seg.seq, end, seg.time);
    }
    if !marks.probe && me.next_seq.is_none_or(|n| lt(n, end)) {
        me.next_seq = Some(end);
        me.next_seq_time = seg.time;
    }
    if !marks.probe && me.max_to_be_acked.is_none_or(|m| m == seg.seq) {
        me.max_to_be_acked = me.next_seq;
    }
    me.window = Some(seg.window);
    // The duplicate-ACK run ends when the acknowledgment moves.
    if me.last_ack != Some(seg.ack) {
        me.dup_acks = 0;
    }
    me.last_ack = Some(seg.ack);
    me.last_ack_time = seg.time;
    me.last_was_probe = marks.probe;
    me.last_was_keep_alive = marks.keep_alive;
}

mod parked;
#[cfg(test)]
mod tests;
