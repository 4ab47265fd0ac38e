//! What bounds the flow table: the sweeps (inactivity timeouts, address
//! pairs forgotten after [`LINGER`]) and the memory budget
//! ([`Options::memcap`], like Suricata's `stream.memcap`): past it the
//! oldest idle connections are evicted, each reported with what was seen
//! until then (state `evicted`), and one warning counts them.
//!
//! The bytes are an estimate, kept up to date packet by packet: the fixed
//! size of a table entry, a connection and its live state, plus what grows
//! (exchanges, TCP events, gaps, notes, out-of-order bytes held, bytes
//! buffered in the message decoders).

use std::mem::size_of;
use std::time::Duration;

use super::super::model::{ConnState, Connection, Timestamp};
use super::key::Key;
use super::{Analyzer, Flow, LINGER, SWEEP_EVERY, Slot, finalize, finish_slot, time_out};

/// A table entry: key and slot, with hashbrown's control byte and spare room.
const ENTRY_BYTES: usize = (size_of::<Key>() + size_of::<Slot>() + 1) * 8 / 7;
/// The heap strings of an exchange: two previews of about 40 characters,
/// and the summaries of an application protocol.
const EXCHANGE_STRINGS: usize = 2 * 48;
/// A note (a heap string of about 150 characters).
const NOTE_BYTES: usize = 160;
/// What the allocator adds to each allocation, on average.
const PER_ALLOCATION: usize = 16;

/// Bytes a connection's record holds, its vectors counted as allocated
/// (a first exchange allocates room for four).
pub(super) fn conn_bytes(c: &Connection) -> usize {
    fn vec<T>(v: &Vec<T>) -> usize {
        if v.capacity() == 0 {
            0
        } else {
            v.capacity() * size_of::<T>() + PER_ALLOCATION
        }
    }
    size_of::<Connection>()
        + PER_ALLOCATION
        + vec(&c.exchanges)
        + c.exchanges.len() * (EXCHANGE_STRINGS + 2 * PER_ALLOCATION)
        + vec(&c.events)
        + vec(&c.gaps)
        + vec(&c.notes)
        + c.notes.len() * (NOTE_BYTES + PER_ALLOCATION)
        + vec(&c.recv_pitfalls)
        + vec(&c.acks)
}

/// Bytes a live flow holds: its state, out-of-order bytes, decoder
/// buffers, the event detector's rings.
fn flow_bytes(f: &Flow) -> usize {
    size_of::<Flow>()
        + PER_ALLOCATION
        + (f.streams[0].held_heap_bytes() + f.streams[1].held_heap_bytes()) as usize
        + f.pairer.heap_bytes()
        + f.events.heap_bytes()
}

/// Bytes a table entry is counted for: itself, its connection while that
/// is in it, its live flow.
pub(super) fn slot_bytes(slot: &Slot) -> usize {
    ENTRY_BYTES
        + slot.conn.as_deref().map_or(0, conn_bytes)
        + slot.flow.as_deref().map_or(0, flow_bytes)
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

    /// The flow table is over its budget: evicts the connections idle the
    /// longest until it is 1/8 under, each flushed as at the end of the
    /// capture, noted, and handed over with state `evicted`. Their address
    /// pairs are forgotten: a later packet starts a new connection. If too
    /// little can be evicted (the bytes are in pairs lingering after their
    /// connection), tries again only [`SWEEP_EVERY`] packets later.
    pub(super) fn evict(&mut self, packet: u64) {
        let target = self.opts.memcap - self.opts.memcap / 8;
        let mut idle: Vec<(Timestamp, Key)> = self
            .table
            .iter()
            .filter(|(_, slot)| slot.conn.is_some())
            .map(|(k, slot)| (slot.last_time, *k))
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
