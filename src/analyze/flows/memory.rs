//! What bounds the flow table: the sweeps (inactivity timeouts, address
//! pairs forgotten after [`LINGER`]) and the memory budget
//! ([`Options::memcap`], like Suricata's `stream.memcap`): past it the
//! oldest idle connections are evicted, each reported with what was seen
//! until then (state `evicted`), and one warning counts them. Before any
//! is evicted, the idle connections give back the spare room of their
//! allocations (see [`shrink`]), which changes nothing in the analysis.
//!
//! The bytes are an estimate, kept up to date packet by packet: the fixed
//! size of a table entry, a connection and its live state, plus what grows
//! (exchanges, TCP events, gaps, notes, out-of-order bytes held, bytes
//! buffered in the message decoders).

use std::mem::size_of;
use std::time::Duration;

use super::super::model::{ConnState, Connection, Exchange, Frames, Timestamp};
use super::super::segment::TcpSegment;
use super::key::Key;
use super::output::Output;
use super::{
    Analyzer, Flow, LINGER, Options, SWEEP_EVERY, Slot, apply, finalize, finish_slot, time_out,
};

/// A table entry: key and slot, with hashbrown's control byte and spare
/// room at a load of 7/8 (up to twice that just after the table grows;
/// an IPv6 pair's boxed key, 80 bytes more, is not counted).
const ENTRY_BYTES: usize = (size_of::<Key>() + size_of::<Slot>() + 1) * 8 / 7;
/// A note (a heap string of about 150 characters).
const NOTE_BYTES: usize = 160;
/// What the allocator adds to each allocation, on average.
const PER_ALLOCATION: usize = 16;
/// Exchanges still open to changes walked each time a slot is counted;
/// beyond them (a client pipelining thousands of requests) each is
/// counted as [`UNSETTLED_BYTES`].
const UNSETTLED_WALKED: usize = 8;
/// An unsettled exchange not walked: two previews and two packet lists.
const UNSETTLED_BYTES: usize = 2 * (48 + 64 + 3 * PER_ALLOCATION);

fn vec<T>(v: &Vec<T>) -> usize {
    if v.capacity() == 0 {
        0
    } else {
        v.capacity() * size_of::<T>() + PER_ALLOCATION
    }
}

fn string(s: &String) -> usize {
    if s.capacity() == 0 {
        0
    } else {
        s.capacity() + PER_ALLOCATION
    }
}

/// Heap bytes of one exchange: its strings and packet lists, as allocated.
fn exchange_heap(e: &Exchange) -> usize {
    let frames = |f: &Frames| f.heap_bytes() + f.allocations() * PER_ALLOCATION;
    string(&e.request_preview)
        + string(&e.response_preview)
        + [&e.operation, &e.request_summary, &e.response_summary]
            .into_iter()
            .flatten()
            .map(string)
            .sum::<usize>()
        + frames(&e.request_frames)
        + frames(&e.response_frames)
}

/// Bytes a connection's record holds but for its exchanges' own heap, its
/// vectors counted as allocated.
fn record_bytes(c: &Connection) -> usize {
    size_of::<Connection>()
        + PER_ALLOCATION
        + vec(&c.exchanges)
        + c.framing_reason.as_ref().map_or(0, string)
        + vec(&c.events)
        + vec(&c.gaps)
        + vec(&c.notes)
        + c.notes.len() * (NOTE_BYTES + PER_ALLOCATION)
        + vec(&c.recv_pitfalls)
        + vec(&c.acks)
        + c.close.as_ref().map_or(0, |close| vec(&close.events))
}

/// Bytes a connection's record holds, every exchange walked (as it leaves
/// the table, once).
pub(super) fn conn_bytes(c: &Connection) -> usize {
    record_bytes(c) + c.exchanges.iter().map(exchange_heap).sum::<usize>()
}

/// Bytes a live flow holds: its state, out-of-order bytes, decoder
/// buffers, the event detector's rings.
fn flow_bytes(f: &Flow) -> usize {
    size_of::<Flow>()
        + PER_ALLOCATION
        + (f.streams[0].held_heap_bytes() + f.streams[1].held_heap_bytes()) as usize
        + f.pairer.heap_bytes()
        + f.events.heap_bytes()
        + f.request_acks.heap_bytes()
}

/// How many of `c`'s exchanges are settled (nothing changes them any
/// more): those answered while its flow is live, all once it is gone.
fn settled(flow: Option<&Flow>, c: &Connection) -> usize {
    flow.map_or(c.exchanges.len(), |f| f.pairer.answered())
        .min(c.exchanges.len())
}

/// Bytes a table entry is counted for: itself, its connection while that
/// is in it, its live flow. The exchanges settled (which nothing changes
/// any more) are walked once and their bytes kept in the slot; the others
/// are walked each time (at most [`UNSETTLED_WALKED`] of them).
pub(super) fn slot_bytes(slot: &mut Slot) -> usize {
    let Some(c) = slot.conn.as_deref() else {
        return ENTRY_BYTES;
    };
    let settled = settled(slot.flow.as_deref(), c);
    let counted = (slot.ex_counted as usize).min(settled);
    slot.ex_bytes += c.exchanges[counted..settled]
        .iter()
        .map(exchange_heap)
        .sum::<usize>();
    slot.ex_counted = settled as u32;
    let unsettled = &c.exchanges[settled..];
    let walked = unsettled.len().min(UNSETTLED_WALKED);
    ENTRY_BYTES
        + record_bytes(c)
        + slot.ex_bytes
        + unsettled[..walked].iter().map(exchange_heap).sum::<usize>()
        + (unsettled.len() - walked) * UNSETTLED_BYTES
        + slot.flow.as_deref().map_or(0, flow_bytes)
}

/// Gives back the spare room of an idle connection's allocations (its
/// lists, strings, decoder buffers, rings), keeping everything in them:
/// the analysis comes out the same. Done to the idle connections before
/// any is evicted for the budget, once per idle spell.
///
/// Never more than linear over a connection's life, however often the
/// budget presses while it is still speaking: each settled exchange is
/// shrunk once (it never changes after), and a list keeps room for half
/// as many more, so a connection that speaks again grows its list after
/// `len / 2` more entries rather than copying it back at the next one (a
/// list that only doubles holds from none to as many spare; with an
/// eighth, a busy connection under pressure copied its list every `len /
/// 8` entries: 7 times the copying of a run without a budget).
fn shrink(slot: &mut Slot) {
    slot.shrunk = true;
    if let Some(c) = slot.conn.as_deref_mut() {
        let settled = settled(slot.flow.as_deref(), c);
        let counted = (slot.ex_counted as usize).min(settled);
        let from = (slot.ex_shrunk as usize).min(settled);
        for (i, e) in c.exchanges.iter_mut().enumerate().take(settled).skip(from) {
            let before = exchange_heap(e);
            e.request_preview.shrink_to_fit();
            e.response_preview.shrink_to_fit();
            e.request_frames.shrink_to_fit();
            e.response_frames.shrink_to_fit();
            if i < counted {
                slot.ex_bytes = slot.ex_bytes - before + exchange_heap(e);
            }
        }
        slot.ex_shrunk = settled as u32;
        tighten(&mut c.exchanges);
        if let Some(r) = c.framing_reason.as_mut() {
            r.shrink_to_fit();
        }
        tighten(&mut c.events);
        tighten(&mut c.gaps);
        tighten(&mut c.notes);
        tighten(&mut c.recv_pitfalls);
        tighten(&mut c.acks);
    }
    if let Some(f) = slot.flow.as_deref_mut() {
        f.pairer.shrink();
        f.events.shrink();
        f.request_acks.shrink();
    }
}

/// Shrinks `v` to its length and a half (see [`shrink`]).
fn tighten<T>(v: &mut Vec<T>) {
    v.shrink_to(v.len() + v.len() / 2);
}

/// Applies a segment to `slot`, hands its connection to the output once
/// it is over, and counts the slot's bytes anew in `tracked_bytes`.
pub(super) fn step(
    slot: &mut Slot,
    out: &mut Output,
    tracked_bytes: &mut usize,
    opts: &Options,
    seg: &TcpSegment<'_>,
    warnings: &mut Vec<String>,
) {
    apply(slot, out, opts, seg, warnings);
    let settled = slot.settled();
    if settled {
        finish_slot(slot, out, seg.time);
    }
    // The bytes change with what the connection lists (exchanges, TCP
    // events, ACKs kept for --acks), with payload (decoder buffers, bytes
    // held out of order), and at the SYN, FIN and RST: the sum is taken
    // again only then, sparing the pure ACKs.
    let f = seg.flags;
    let listed = slot.conn.as_ref().map_or(0, |c| {
        (c.exchanges.len() + c.events.len() + c.acks.len() + c.gaps.len()) as u32
    });
    let holding = slot
        .flow
        .as_ref()
        .is_some_and(|fl| fl.streams[0].held_bytes() + fl.streams[1].held_bytes() > 0);
    if settled
        || holding
        || seg.payload_len > 0
        || f.syn
        || f.fin
        || f.rst
        || listed != slot.listed
        || slot.bytes == 0
    {
        slot.listed = listed;
        let bytes = slot_bytes(slot);
        *tracked_bytes = *tracked_bytes + bytes - slot.bytes;
        slot.bytes = bytes;
    }
}

/// `n` bytes as a `--memcap` value: `256MiB`, `1GiB`, `1000B`.
pub fn format_size(n: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}B")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Analyzer {
    /// Ends the connections past their inactivity timeout, hands over the
    /// closed ones whose last FIN was never acknowledged once they have
    /// been quiet for [`LINGER`], and forgets the address pairs of
    /// connections handed over and quiet for [`LINGER`]. Runs every
    /// [`SWEEP_EVERY`] packets: the cost is spread thin, and pairs linger
    /// at most that many packets longer.
    pub(super) fn sweep(&mut self) {
        self.since_sweep = 0;
        let linger = nanos(LINGER);
        let (inactive, syn_only) = (
            nanos(self.opts.inactivity_timeout),
            nanos(self.opts.syn_timeout),
        );
        let now = self.now;
        let out = &mut self.out;
        let (mut timed_out, mut removed, mut added) = (0, 0, 0);
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
                    time_out(slot, limit);
                    timed_out += 1;
                    finish_slot(slot, out, now);
                }
            } else if slot.conn.is_some() && idle > linger {
                // Closed, but a FIN was never acknowledged: nothing more
                // will come.
                finish_slot(slot, out, now);
            }
            let keep = slot.conn.is_some() || idle <= linger || out.ready.contains_key(&slot.id);
            removed += slot.bytes;
            if keep {
                slot.bytes = slot_bytes(slot);
                added += slot.bytes;
            }
            keep
        });
        self.tracked_bytes = self.tracked_bytes + added - removed;
        self.timed_out += timed_out;
    }

    /// Shrinks the allocations of the connections not shrunk since their
    /// last packet (see [`shrink`]), the longest idle first, until the
    /// table is down to `target` bytes; returns whether it is.
    fn shrink_idle(&mut self, target: usize) -> bool {
        let mut idle: Vec<(Timestamp, Key)> = self
            .table
            .iter()
            .filter(|(_, slot)| slot.conn.is_some() && !slot.shrunk)
            .map(|(k, slot)| (slot.last_time, k.clone()))
            .collect();
        idle.sort_unstable_by_key(|&(time, _)| time);
        for (_, k) in idle {
            if self.tracked_bytes <= target {
                break;
            }
            if let Some(slot) = self.table.get_mut(&k) {
                shrink(slot);
                let bytes = slot_bytes(slot);
                self.tracked_bytes = self.tracked_bytes + bytes - slot.bytes;
                slot.bytes = bytes;
            }
        }
        self.tracked_bytes <= target
    }

    /// The flow table is over its budget: evicts the connections idle the
    /// longest until it is 1/8 under (once the idle ones are shrunk), each flushed as at the end of the
    /// capture, noted, and handed over with state `evicted`. Their address
    /// pairs are forgotten: a later packet starts a new connection. If too
    /// little can be evicted (the bytes are in pairs lingering after their
    /// connection), tries again only [`SWEEP_EVERY`] packets later.
    pub(super) fn evict(&mut self, packet: u64) {
        let target = self.opts.memcap - self.opts.memcap / 8;
        if self.shrink_idle(target) {
            return;
        }
        let mut idle: Vec<(Timestamp, Key)> = self
            .table
            .iter()
            .filter(|(_, slot)| slot.conn.is_some())
            .map(|(k, slot)| (slot.last_time, k.clone()))
            .collect();
        idle.sort_unstable_by_key(|&(time, _)| time);
        let memcap = format_size(self.opts.memcap);
        for (since, k) in idle {
            if self.tracked_bytes <= target {
                break;
            }
            let Some(mut slot) = self.table.remove(&k) else {
                continue;
            };
            self.tracked_bytes -= slot.bytes;
            slot.ended = Some(ConnState::Evicted);
            if let Some(conn) = slot.conn.as_deref_mut() {
                if let Some(flow) = slot.flow.take() {
                    finalize(*flow, conn, slot.last_time, 0);
                }
                conn.notes.push(format!(
                    "evicted at packet #{packet}, idle for {:.1} s of capture time, to keep the \
                     analyzer within --memcap {memcap}: reported with what was seen until then; \
                     later packets on its addresses start a new connection",
                    self.now.0.saturating_sub(since.0) as f64 / 1e9
                ));
            }
            finish_slot(&mut slot, &mut self.out, self.now);
            self.evicted += 1;
        }
        if self.tracked_bytes > target {
            self.evict_after = self.last_packet + SWEEP_EVERY;
        }
    }
}

#[cfg(test)]
mod tests;
