//! What bounds the flow table: the sweeps (inactivity timeouts, address
//! pairs forgotten after [`LINGER`]) and the memory budget
//! ([`Options::memcap`], like Suricata's `stream.memcap`): past it the
//! oldest idle connections are evicted, each reported with what was seen
//! until then (state `evicted`), and one warning counts them. Before any
//! is evicted, the idle connections give back the spare room of their
//! allocations (see [`shrink`]) and are parked (see [`super::parking`]),
//! which changes nothing in the analysis; past half the budget the quiet
//! ones are parked already (see [`Analyzer::park_early`]).
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

/// A SYN and no answer: an attempt, given up on sooner.
pub(super) fn is_attempt(flow: &Flow) -> bool {
    flow.last_syn.is_some() && flow.server_isn.is_none()
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
        let timeout = |flow: &Flow| {
            if is_attempt(flow) {
                syn_only.min(inactive)
            } else {
                inactive
            }
        };
        let now = self.now;
        let out = &mut self.out;
        let (mut timed_out, mut removed, mut added) = (0, 0, 0);
        self.table.retain(|_, slot| {
            let idle = now.0.saturating_sub(slot.last_time.0);
            let mut changed = false;
            if let Some(flow) = &slot.flow {
                let limit = timeout(flow);
                if idle > limit {
                    time_out(slot, limit);
                    timed_out += 1;
                    finish_slot(slot, out, now);
                    changed = true;
                }
            } else if slot.conn.is_some() && idle > linger {
                // Closed, but a FIN was never acknowledged: nothing more
                // will come.
                finish_slot(slot, out, now);
                changed = true;
            }
            let keep = slot.conn.is_some() || idle <= linger || out.ready.contains_key(&slot.id);
            // Only what the sweep changed is counted again: the bytes then
            // follow the packets alone, whenever sweeps come (a live view
            // sweeps at each tick), and a budget evicts at the same packets.
            if !keep || changed {
                removed += slot.bytes;
            }
            if keep && changed {
                slot.bytes = slot_bytes(slot);
                added += slot.bytes;
            }
            keep
        });
        self.tracked_bytes = self.tracked_bytes + added - removed;
        let parked = self
            .parking
            .take_expired(now, inactive, syn_only.min(inactive));
        // Their address pairs do not linger (nor do those of live ones
        // timed out): a later packet on one starts a new connection.
        for mut slot in parked {
            let limit = slot.flow.as_deref().map_or(inactive, timeout);
            time_out(&mut slot, limit);
            timed_out += 1;
            finish_slot(&mut slot, &mut self.out, now);
        }
        self.timed_out += timed_out;
    }

    /// Parks the connection of `k` if it is live (tests: after each packet).
    #[cfg(test)]
    pub(super) fn park_now(&mut self, k: &Key) {
        if let Some(slot) = self.table.get(k)
            && parkable(slot)
            && self.parking.park(k, slot)
            && let Some(slot) = self.table.remove(k)
        {
            self.tracked_bytes -= slot.bytes;
        }
    }

    /// After each packet: parks early (see [`Analyzer::park_early`]) past
    /// half the budget, evicts (see [`Analyzer::evict`]) past all of it.
    pub(super) fn keep_within_budget(&mut self, packet: u64) {
        if self.tracked_bytes > self.opts.memcap / 2 && self.last_packet >= self.park_after {
            self.park_early();
        }
        if self.tracked_bytes + self.parking.bytes() > self.opts.memcap
            && self.last_packet >= self.evict_after
        {
            self.evict(packet);
        }
    }

    /// Live connections hold half the budget: the idle ones quiet enough
    /// are parked until they hold 3/8 of it. Parked forms are several
    /// times smaller, and the allocator keeps the pages that live state
    /// once took, so holding less live state lowers the peak memory, not
    /// only the count. If too few can be parked, tries again only
    /// [`SWEEP_EVERY`] packets later.
    pub(super) fn park_early(&mut self) {
        let target = self.opts.memcap / 2 - self.opts.memcap / 8;
        let parked = self.parking.bytes();
        if !self.park_idle(target + parked, true) {
            self.park_after = self.last_packet + SWEEP_EVERY;
        }
    }

    /// Parks the idle connections (with `quiet`, only those quiet enough:
    /// see [`quiet_enough_to_park`]), the longest idle first, until the
    /// flow table and the parked ones are down to `target` bytes; returns
    /// whether they are.
    fn park_idle(&mut self, target: usize, quiet: bool) -> bool {
        let now = self.packet_time;
        let idle = self.oldest_first(|slot| {
            parkable(slot) && !slot.unparkable && (!quiet || quiet_enough_to_park(slot, now))
        });
        for k in idle {
            if self.tracked_bytes + self.parking.bytes() <= target {
                break;
            }
            let Some(slot) = self.table.get_mut(&k) else {
                continue;
            };
            if !self.parking.park(&k, slot) {
                slot.unparkable = true;
                continue;
            }
            if let Some(slot) = self.table.remove(&k) {
                self.tracked_bytes -= slot.bytes;
            }
        }
        self.tracked_bytes + self.parking.bytes() <= target
    }

    /// Shrinks the allocations of the connections not shrunk since their
    /// last packet (see [`shrink`]), the longest idle first, until the
    /// table is down to `target` bytes; returns whether it is.
    fn shrink_idle(&mut self, target: usize) -> bool {
        let target = target.saturating_sub(self.parking.bytes());
        for k in self.oldest_first(|slot| slot.conn.is_some() && !slot.shrunk) {
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

    /// The flow table and the parked connections are over their budget:
    /// shrinks the idle ones, parks them, and only then evicts the
    /// connections idle the longest (the parked ones first, oldest block
    /// first) until it is 1/8 under, each flushed as at the end of the
    /// capture, noted, and handed over with state `evicted`. Their address
    /// pairs are forgotten: a later packet starts a new connection. If too
    /// little can be evicted (the bytes are in pairs lingering after their
    /// connection), tries again only [`SWEEP_EVERY`] packets later.
    pub(super) fn evict(&mut self, packet: u64) {
        let target = self.opts.memcap - self.opts.memcap / 8;
        // Parking a connection that speaks again soon costs more than it
        // saves, but less than evicting it.
        if self.shrink_idle(target) || self.park_idle(target, true) || self.park_idle(target, false)
        {
            return;
        }
        let memcap = format_size(self.opts.memcap);
        // The parked ones first, the oldest block first: idle the longest.
        while self.tracked_bytes + self.parking.bytes() > target && self.parking.len() > 0 {
            let before = self.parking.len();
            let slots = self.parking.take_oldest();
            if self.parking.len() == before {
                break;
            }
            for slot in slots {
                self.evict_slot(slot, packet, &memcap);
            }
        }
        for k in self.oldest_first(|slot| slot.conn.is_some()) {
            if self.tracked_bytes + self.parking.bytes() <= target {
                break;
            }
            let Some(slot) = self.table.remove(&k) else {
                continue;
            };
            self.tracked_bytes -= slot.bytes;
            self.evict_slot(slot, packet, &memcap);
        }
        if self.tracked_bytes + self.parking.bytes() > target {
            self.evict_after = self.last_packet + SWEEP_EVERY;
        }
    }

    /// Address pairs the flow table holds (live, settled, or lingering
    /// after being drained).
    #[cfg(test)]
    pub(crate) fn tracked_pairs(&self) -> usize {
        self.table.len()
    }

    /// Bytes the flow table is counted for against [`Options::memcap`].
    #[cfg(test)]
    pub(crate) fn tracked_bytes(&self) -> usize {
        self.tracked_bytes + self.parking.bytes()
    }

    /// Connections parked.
    #[cfg(test)]
    pub(crate) fn parked(&self) -> usize {
        self.parking.len()
    }

    /// The warnings that count what the timeouts and the budget ended.
    pub(super) fn end_warnings(&mut self) {
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
        if self.evicted > 0 {
            self.warn(format!(
                "{} connection(s) were evicted to keep the analyzer's memory within --memcap {}: \
                 the oldest idle ones, each reported as evicted with what was seen until then \
                 (state \"evicted\"); later packets of one start a new connection. \
                 Raise --memcap to keep more connections open",
                self.evicted,
                format_size(self.opts.memcap)
            ));
        }
        if self.parking.lost > 0 {
            self.warn(format!(
                "{} parked connection(s) could not be read back and are missing from the \
                 report: a fault in reqresp, please report it (raising --memcap avoids parking)",
                self.parking.lost
            ));
        }
    }

    /// Tests: parks every connection after each of its packets and takes
    /// it back at the next, so that a test sees the parked form change
    /// nothing.
    #[cfg(test)]
    pub(crate) fn parking_always(mut self) -> Self {
        self.park_always = true;
        self
    }

    /// The address pairs of the table's connections that `pick` picks,
    /// the longest idle first.
    fn oldest_first(&self, pick: impl Fn(&Slot) -> bool) -> Vec<Key> {
        // Ties in time go by connection number, never by the table's
        // order (its hasher is seeded at random): the same capture must
        // give the same report.
        let mut idle: Vec<(Timestamp, u32, Key)> = self
            .table
            .iter()
            .filter(|(_, slot)| pick(slot))
            .map(|(k, slot)| (slot.last_time, slot.id, k.clone()))
            .collect();
        idle.sort_unstable_by_key(|&(time, id, _)| (time, id));
        idle.into_iter().map(|(_, _, k)| k).collect()
    }

    /// Ends the connection of `slot` as evicted (see [`Analyzer::evict`]).
    fn evict_slot(&mut self, mut slot: Slot, packet: u64, memcap: &str) {
        let since = slot.last_time;
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
}

/// Whether `slot` holds a live connection (its record and live state),
/// the only kind parked.
fn parkable(slot: &Slot) -> bool {
    slot.conn.is_some() && slot.flow.is_some() && slot.ended.is_none()
}

/// Whether an idle connection has been quiet long enough to be parked:
/// 100 ms of capture time, plus 1 ns per byte it holds. A connection
/// still speaking would be taken back at its next packet, and parking it
/// again and again costs far more than it saves (a busy one holding
/// 1 MB waits a millisecond longer).
fn quiet_enough_to_park(slot: &Slot, now: Timestamp) -> bool {
    const QUIET_NS: u64 = 100_000_000;
    now.0.saturating_sub(slot.last_time.0) >= QUIET_NS + slot.bytes as u64
}

#[cfg(test)]
mod tests;
