//! Parked connections: idle ones kept as compressed bytes while the
//! memory budget presses ([`Options::memcap`](super::Options::memcap)),
//! and taken back whole at their next packet, their timeout, their
//! eviction or the end of the capture. Parking changes nothing in the
//! analysis; it only lets the budget hold many more idle connections
//! before any is evicted.
//!
//! A parked connection is its table slot (live state and record) written
//! by borsh's derives (see [`crate::analyze::parked_form`]) in sections,
//! behind a small header (number, latest packet time, address pair): its
//! *form* (see `form`). Forms are gathered into an open block; a full
//! block is compressed with zstd as one frame, so what connections have
//! in common (addresses, times, flags, payload words, the many fields
//! still empty) is stored about once: a form is about a quarter of its
//! raw size, a seventh of the connection live. Blocks stay in the order
//! they were parked: the oldest block is the first evicted. An index
//! finds a form from its address pair in 8 bytes per connection, and the
//! last few blocks decompressed are kept for the next lookups.

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::mem::size_of;

use hashbrown::HashTable;

use super::super::model::Timestamp;
use super::Slot;
use super::key::Key;
use form::{Forms, Header};

/// Bytes of forms gathered before a block is compressed: enough for zstd
/// to find what forms share (at 48 KiB a million idle connections fit in
/// the default budget; at 32 KiB, 1.7 % of them did not), small enough
/// that taking one form back (decompressing its block) costs microseconds.
const BLOCK_BYTES: usize = 48 * 1024;

/// zstd's level: 3, its default; level 1 stores about a fifth more.
const LEVEL: i32 = 3;

/// What zstd's two contexts hold, counted in [`Parking::bytes`].
const CONTEXT_BYTES: usize = 256 * 1024;

/// What the blocks kept decompressed take (their forms, each in buffers
/// of its size, and the bytes of the last, with room for the form that
/// took a block past [`BLOCK_BYTES`]), counted in [`Parking::bytes`] as
/// a constant: it changes with the lookups, and the budget must not (a
/// live view, which looks up at other times, then evicts at the same
/// packets as `analyze`).
const CACHE_BYTES: usize = (CACHE_BLOCKS + 2) * BLOCK_BYTES;

/// Blocks kept decompressed: connections taken back one after the other
/// (at the end of a capture, in the order they opened) were parked in
/// nearly that order, a few blocks apart.
const CACHE_BLOCKS: usize = 4;

/// A compressed block of forms, numbered `first..first + count`.
struct Block {
    first: u64,
    count: u32,
    /// Forms not taken back yet.
    live: u32,
    /// `live` when the block was last compressed: once half of those are
    /// taken, it is compressed again without them.
    compressed_live: u32,
    raw_len: usize,
    /// Earliest latest-packet time of its live forms, and of those with
    /// only a SYN seen (for the sweeps' timeouts).
    oldest: Timestamp,
    oldest_attempt: Option<Timestamp>,
    data: Box<[u8]>,
}

/// Where a form is: in the open block, or in a sealed one (by position).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Open,
    Sealed(usize),
}

/// The parked connections of the flow table.
pub(super) struct Parking {
    /// Sealed blocks, oldest first.
    blocks: VecDeque<Block>,
    /// Forms not sealed yet.
    open: Forms,
    /// Number of the open block's first form.
    open_first: u64,
    open_oldest: Timestamp,
    open_oldest_attempt: Option<Timestamp>,
    /// Forms of the open block taken back already.
    open_taken: u32,
    /// Number of the next form parked.
    next: u64,
    /// One entry per live form: the tag of its address pair's hash (high
    /// 32 bits) and the low 32 bits of its number.
    index: HashTable<u64>,
    hasher: foldhash::fast::RandomState,
    /// Live forms.
    len: usize,
    /// Forms that could not be read back (never expected: a fault in the
    /// parked form), for a warning.
    pub(super) lost: u64,
    /// Bytes of the sealed blocks' data.
    sealed: usize,
    /// The last blocks decompressed, the latest last: each its first
    /// form's number, and its forms.
    cache: VecDeque<(u64, Forms)>,
    /// The bytes of the last block decompressed.
    unpacked: Vec<u8>,
    /// Blocks are not compressed again as forms are taken: the whole
    /// block is being taken (`Some` of its first form's number), or every
    /// block is (the end of the capture: `Some(u64::MAX)`).
    draining: Option<u64>,
    scratch: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl fmt::Debug for Parking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parking")
            .field("len", &self.len)
            .field("blocks", &self.blocks.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Default for Parking {
    fn default() -> Self {
        Parking {
            blocks: VecDeque::new(),
            open: Forms::default(),
            open_first: 0,
            open_oldest: Timestamp(u64::MAX),
            open_oldest_attempt: None,
            open_taken: 0,
            next: 0,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            len: 0,
            lost: 0,
            sealed: 0,
            cache: VecDeque::new(),
            unpacked: Vec::new(),
            draining: None,
            scratch: Vec::new(),
            // zstd's contexts allocate only when used; creating them
            // fails only without memory.
            compressor: zstd::bulk::Compressor::new(LEVEL).expect("a zstd context"),
            decompressor: zstd::bulk::Decompressor::new().expect("a zstd context"),
        }
    }
}

/// The table's hash of an entry (or of a tag): the tag in both halves, so
/// hashbrown's bucket (low bits) and control byte (high bits) both come
/// from it.
fn spread(tag: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(tag)
}

fn entry(tag: u32, number: u64) -> u64 {
    u64::from(tag) << 32 | (number & 0xffff_ffff)
}

fn entry_hash(e: &u64) -> u64 {
    spread((e >> 32) as u32)
}

impl Parking {
    /// Connections parked.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held, counted against the budget: the blocks, the open one,
    /// the index, the cache and zstd's contexts. Only what parking and
    /// taking back change counts, never what a lookup that finds nothing
    /// changes: the index by its entries (hashbrown's room at 7/8 load),
    /// the cache as a constant.
    pub(super) fn bytes(&self) -> usize {
        if self.len == 0 && self.blocks.is_empty() {
            return 0;
        }
        let buckets = (self.len + self.len / 7 + 1).next_power_of_two();
        self.sealed
            + self.blocks.capacity() * size_of::<Block>()
            + self.open.capacity()
            + buckets * (size_of::<u64>() + 1)
            + self.scratch.capacity()
            + CACHE_BYTES
            + CONTEXT_BYTES
    }

    fn tag(&self, key: &Key) -> u32 {
        let h = self.hasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    /// Number of the oldest form that may still be live.
    fn base(&self) -> u64 {
        self.blocks.front().map_or(self.open_first, |b| b.first)
    }

    /// The full number of a form from its low 32 bits: forms live span
    /// less than 2^32 numbers (see [`Parking::park`]).
    fn number(&self, low: u64) -> u64 {
        let base = self.base();
        base + (low as u32).wrapping_sub(base as u32) as u64
    }

    /// Whether form `n`, parked under `key`, is live (not taken back).
    fn is_live(&self, key: &Key, n: u64) -> bool {
        let e = entry(self.tag(key), n);
        self.index.find(entry_hash(&e), |&x| x == e).is_some()
    }

    /// Parks the connection of `slot` (live, idle) under `key`; the caller
    /// then drops the slot. Returns `false`, parking nothing, when its
    /// state has no parked form (an application protocol's codec).
    pub(super) fn park(&mut self, key: &Key, slot: &Slot) -> bool {
        if self.next - self.base() >= u64::from(u32::MAX) {
            return false;
        }
        let attempt = slot.flow.as_deref().is_some_and(super::memory::is_attempt);
        let header = Header {
            id: slot.id,
            last_time: slot.last_time,
            attempt,
            key: key.clone(),
        };
        if !self.open.write(&header, slot) {
            return false;
        }
        self.open_oldest = self.open_oldest.min(slot.last_time);
        if attempt {
            self.open_oldest_attempt = Some(
                self.open_oldest_attempt
                    .map_or(slot.last_time, |t| t.min(slot.last_time)),
            );
        }
        let tag = self.tag(key);
        self.index
            .insert_unique(spread(tag), entry(tag, self.next), entry_hash);
        self.next += 1;
        self.len += 1;
        if self.open.raw_len() >= BLOCK_BYTES {
            self.seal();
        }
        true
    }

    /// Compresses the open block into a sealed one.
    fn seal(&mut self) {
        let count = (self.next - self.open_first) as u32;
        if count == 0 {
            return;
        }
        self.open.encode(&mut self.scratch);
        let data = match self.compressor.compress(&self.scratch) {
            Ok(data) => data.into_boxed_slice(),
            // Only without memory: the block stays open, to try again.
            Err(_) => return,
        };
        self.sealed += data.len();
        let live = count - self.open_taken;
        self.open_taken = 0;
        self.blocks.push_back(Block {
            first: self.open_first,
            count,
            live,
            compressed_live: live,
            raw_len: self.scratch.len(),
            oldest: self.open_oldest,
            oldest_attempt: self.open_oldest_attempt,
            data,
        });
        self.open.clear();
        self.scratch.clear();
        if self.scratch.capacity() > 2 * BLOCK_BYTES {
            self.scratch.shrink_to(2 * BLOCK_BYTES);
        }
        self.open_first = self.next;
        self.open_oldest = Timestamp(u64::MAX);
        self.open_oldest_attempt = None;
        if live == 0 {
            self.drop_block(self.blocks.len() - 1);
        }
    }

    /// Where form `n` is, if it was parked and its block is still here.
    fn place(&self, n: u64) -> Option<Place> {
        if n >= self.open_first {
            return (n < self.next).then_some(Place::Open);
        }
        let i = self
            .blocks
            .partition_point(|b| b.first + u64::from(b.count) <= n);
        let b = self.blocks.get(i)?;
        (n >= b.first).then_some(Place::Sealed(i))
    }

    /// The forms of the block at `place`, decompressed into the cache if
    /// sealed; with the number of its first form.
    fn forms(&mut self, place: Place) -> Option<(u64, &Forms)> {
        let b = match place {
            Place::Open => return Some((self.open_first, &self.open)),
            Place::Sealed(i) => self.blocks.get(i)?,
        };
        let first = b.first;
        let at = match self.cache.iter().position(|(f, _)| *f == first) {
            Some(at) => at,
            None => {
                if self.cache.len() >= CACHE_BLOCKS {
                    self.cache.pop_front();
                }
                // Not the buffers of the block dropped: they may be
                // larger than this one needs, and the cache is counted
                // by blocks.
                let mut forms = Forms::default();
                self.unpacked.clear();
                self.unpacked.reserve(b.raw_len);
                self.decompressor
                    .decompress_to_buffer(&b.data, &mut self.unpacked)
                    .ok()?;
                forms.decode(&self.unpacked)?;
                self.cache.push_back((first, forms));
                self.cache.len() - 1
            }
        };
        self.cache.get(at).map(|(first, forms)| (*first, forms))
    }

    /// Takes the forms of the block whose first form is `first` out of the
    /// cache.
    fn uncache(&mut self, first: u64) -> Option<Forms> {
        let at = self.cache.iter().position(|(f, _)| *f == first)?;
        self.cache.remove(at).map(|(_, forms)| forms)
    }

    /// Takes back the connection parked under `key`, if any.
    pub(super) fn take(&mut self, key: &Key) -> Option<Slot> {
        if self.len == 0 {
            return None;
        }
        let tag = self.tag(key);
        let candidates: Vec<u64> = self
            .index
            .iter_hash(spread(tag))
            .filter(|&&e| (e >> 32) as u32 == tag)
            .map(|&e| self.number(e))
            .collect();
        for n in candidates {
            let Some(place) = self.place(n) else {
                continue;
            };
            let (first, forms) = self.forms(place)?;
            if forms
                .header((n - first) as usize)
                .is_some_and(|h| h.key == *key)
            {
                return self.take_number(place, n, tag);
            }
        }
        None
    }

    /// Takes back form `n` (live, with index tag `tag`) of the block at
    /// `place`, whose bytes are loaded.
    fn take_number(&mut self, place: Place, n: u64, tag: u32) -> Option<Slot> {
        let e = entry(tag, n);
        if let Ok(found) = self.index.find_entry(entry_hash(&e), |&x| x == e) {
            found.remove();
        }
        self.len -= 1;
        let slot = self
            .forms(place)
            .and_then(|(first, forms)| form::read(forms.get((n - first) as usize)?))
            .map(|(_, slot)| slot);
        if slot.is_none() {
            self.lost += 1;
        }
        if place == Place::Open {
            self.open_taken += 1;
        }
        if let Place::Sealed(i) = place {
            let b = &mut self.blocks[i];
            b.live -= 1;
            if b.live == 0 {
                self.drop_block(i);
            } else if b.live * 2 <= b.compressed_live
                && b.count >= 8
                && self.draining.is_none_or(|d| d != b.first && d != u64::MAX)
            {
                self.recompress(i);
            }
        }
        slot
    }

    fn drop_block(&mut self, i: usize) {
        if let Some(b) = self.blocks.remove(i) {
            self.sealed -= b.data.len();
            self.uncache(b.first);
        }
    }

    /// Compresses block `i` again without the forms taken back since, and
    /// notes its oldest times anew.
    fn recompress(&mut self, i: usize) {
        let Some(first) = self.forms(Place::Sealed(i)).map(|(first, _)| first) else {
            return;
        };
        let Some(forms) = self.uncache(first) else {
            return;
        };
        let mut kept = Forms::default();
        for (k, parts) in forms.iter().enumerate() {
            let live = parts.filter(|&parts| {
                Header::read_from(parts).is_some_and(|h| self.is_live(&h.key, first + k as u64))
            });
            kept.push(live);
        }
        kept.encode(&mut self.scratch);
        let Ok(data) = self.compressor.compress(&self.scratch) else {
            return;
        };
        let b = &mut self.blocks[i];
        self.sealed = self.sealed - b.data.len() + data.len();
        b.data = data.into_boxed_slice();
        b.raw_len = self.scratch.len();
        b.compressed_live = b.live;
        self.scratch.clear();
        kept.shrink_to_fit();
        self.cache.push_back((first, kept));
        if self.cache.len() > CACHE_BLOCKS {
            self.cache.pop_front();
        }
        self.note_oldest(Place::Sealed(i), first);
    }

    /// The live forms of the block at `place`: number, header.
    fn live_forms(&mut self, place: Place) -> Vec<(u64, Header)> {
        let Some((first, forms)) = self.forms(place) else {
            return Vec::new();
        };
        let headers: Vec<(u64, Header)> = forms
            .iter()
            .enumerate()
            .filter_map(|(k, parts)| Some((first + k as u64, Header::read_from(parts?)?)))
            .collect();
        headers
            .into_iter()
            .filter(|(n, h)| self.is_live(&h.key, *n))
            .collect()
    }

    /// Takes back every connection of the oldest block (the open one when
    /// none is sealed): the ones parked the longest ago.
    pub(super) fn take_oldest(&mut self) -> Vec<Slot> {
        if self.blocks.is_empty() {
            self.seal();
        }
        if self.blocks.is_empty() {
            return Vec::new();
        }
        let live = self.live_forms(Place::Sealed(0));
        let mut slots = Vec::with_capacity(live.len());
        let first = self.blocks[0].first;
        self.draining = Some(first);
        for (n, h) in live {
            let tag = self.tag(&h.key);
            // Taking the last one drops the block.
            if self.blocks.front().is_none_or(|b| b.first != first) {
                break;
            }
            slots.extend(self.take_number(Place::Sealed(0), n, tag));
        }
        if self.draining == Some(first) {
            self.draining = None;
        }
        slots
    }

    /// Takes back the connections quiet for longer than their timeout at
    /// `now`: `syn_limit` ns with only a SYN seen, else `limit` ns.
    pub(super) fn take_expired(&mut self, now: Timestamp, limit: u64, syn_limit: u64) -> Vec<Slot> {
        let expired = |t: Timestamp, l: u64| now.0.saturating_sub(t.0) > l;
        let mut places: Vec<(Place, u64)> = self
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                expired(b.oldest, limit) || b.oldest_attempt.is_some_and(|t| expired(t, syn_limit))
            })
            .map(|(i, b)| (Place::Sealed(i), b.first))
            .collect();
        if expired(self.open_oldest, limit)
            || self
                .open_oldest_attempt
                .is_some_and(|t| expired(t, syn_limit))
        {
            places.push((Place::Open, self.open_first));
        }
        let mut slots = Vec::new();
        // Latest blocks first, so that dropping one leaves the positions
        // of those still to visit as they were.
        for (place, first) in places.into_iter().rev() {
            for (n, h) in self.live_forms(place) {
                if !expired(h.last_time, if h.attempt { syn_limit } else { limit }) {
                    continue;
                }
                let tag = self.tag(&h.key);
                if let Place::Sealed(i) = place
                    && self.blocks.get(i).is_none_or(|b| b.first != first)
                {
                    break;
                }
                slots.extend(self.take_number(place, n, tag));
            }
            self.note_oldest(place, first);
        }
        slots
    }

    /// Notes the oldest times of the live forms of the block at `place`
    /// anew (after some were taken back; nothing if the block is gone).
    fn note_oldest(&mut self, place: Place, first: u64) {
        if let Place::Sealed(i) = place
            && self.blocks.get(i).is_none_or(|b| b.first != first)
        {
            return;
        }
        let live = self.live_forms(place);
        let oldest = live.iter().map(|(_, h)| h.last_time).min();
        let oldest_attempt = live
            .iter()
            .filter(|(_, h)| h.attempt)
            .map(|(_, h)| h.last_time)
            .min();
        let oldest = oldest.unwrap_or(Timestamp(u64::MAX));
        match place {
            Place::Open => {
                self.open_oldest = oldest;
                self.open_oldest_attempt = oldest_attempt;
            }
            Place::Sealed(i) => {
                self.blocks[i].oldest = oldest;
                self.blocks[i].oldest_attempt = oldest_attempt;
            }
        }
    }

    /// Number and address pair of every parked connection.
    pub(super) fn list(&mut self) -> Vec<(u32, Key)> {
        self.draining = Some(u64::MAX);
        let mut all = Vec::with_capacity(self.len);
        let places: Vec<Place> = (0..self.blocks.len())
            .map(Place::Sealed)
            .chain([Place::Open])
            .collect();
        for place in places {
            all.extend(
                self.live_forms(place)
                    .into_iter()
                    .map(|(_, h)| (h.id, h.key)),
            );
        }
        all
    }
}

mod form;
#[cfg(test)]
mod tests;
