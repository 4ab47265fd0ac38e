//! TCP reassembly of one direction of one connection.
//!
//! Written by hand, on purpose: this is the heart of `reqresp analyze`, and
//! the policies below are what a student should be able to read and check.
//! (Crates such as `pcap`'s examples or `smoltcp` reassemble for a live
//! endpoint that can ask for retransmission; a capture analyzer must instead
//! say what it never saw.)
//!
//! # Policies
//!
//! - **Stream offsets.** Sequence numbers are `u32` and wrap; every byte is
//!   given a 64-bit stream offset instead: offset 0 is the first payload byte
//!   after the SYN (ISN + 1), or, when the SYN was not captured, the sequence
//!   number of the first packet seen from this side. A segment's offset is
//!   found from the signed 32-bit distance (wrapping arithmetic) to the next
//!   expected sequence number, so a stream can run across the wrap any number
//!   of times. SYN and FIN each consume one sequence number and no offset.
//! - **In order.** Bytes are handed out ([`Chunk`]) strictly in stream
//!   order, each exactly once. A retransmission, a keepalive or zero-window
//!   probe (one old byte at `next - 1`) brings nothing new and is ignored.
//! - **Out of order.** Bytes ahead of the next expected offset are held until
//!   the hole before them is filled, up to a byte budget given by the caller.
//! - **Overlap.** The first bytes captured for an offset win: a later segment
//!   overlapping held or delivered bytes contributes only the bytes no earlier
//!   segment carried (whatever it says about the others).
//! - **Missing bytes are never invented.** A hole is handed out as
//!   [`ChunkData::Missing`] only when it is given up on: when holding more
//!   would exceed the budget, and on [`Reassembler::flush`] (connection closed
//!   or capture ended). Bytes a short snaplen cut from a packet
//!   (`payload_len > payload.len()`) are missing from the start: first
//!   captured bytes win, so a later full copy of them is not used.
//! - **Counting.** [`Reassembler::bytes`] is the highest offset reached by any
//!   segment (payload length on the wire, captured or not) or by the FIN: the
//!   number of payload bytes sent, each counted once.
//! - **Sanity.** A segment claiming to start more than 1 GiB ahead of the
//!   stream, or that is entirely before offset 0, is ignored: it is garbage
//!   or belongs to something else, and must not inflate the byte count.

use std::collections::BTreeMap;

use super::model::Timestamp;

/// How far ahead of the next expected byte a segment may start before it is
/// taken for garbage (a bogus or foreign sequence number).
const MAX_AHEAD: u64 = 1 << 30;

/// Bytes of one direction handed out in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Stream offset of the first byte.
    pub offset: u64,
    /// Capture time of the segment that carried these bytes (for missing
    /// bytes: of the segment whose processing gave up on them).
    pub time: Timestamp,
    /// Capture packet number of that segment.
    pub packet: u64,
    /// The bytes, or how many are missing.
    pub data: ChunkData<'a>,
}

/// Captured bytes or a stretch that was not captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkData<'a> {
    /// Bytes as captured.
    Bytes(&'a [u8]),
    /// This many bytes were sent but not captured: a gap.
    Missing(u64),
}

impl ChunkData<'_> {
    /// Number of stream bytes this covers.
    pub fn len(&self) -> u64 {
        match self {
            ChunkData::Bytes(b) => b.len() as u64,
            ChunkData::Missing(n) => *n,
        }
    }

    /// Whether this covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`Reassembler::push`] did with a segment, beyond handing out bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Bytes given up on (handed out as missing) because holding the segment
    /// would have exceeded the budget.
    pub given_up: u64,
    /// The segment was ignored as garbage (too far ahead, or before the start).
    pub ignored: bool,
}

/// A held out-of-order piece: `[key, end)` in stream offsets.
#[derive(Debug)]
struct Held {
    end: u64,
    /// `None`: the bytes were not captured (snaplen).
    data: Option<Vec<u8>>,
    time: Timestamp,
    packet: u64,
}

/// Reassembles one direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Next expected byte as (sequence number, stream offset); `None` until
    /// the first packet from this side.
    next: Option<(u32, u64)>,
    /// Whether the start is anchored on a captured SYN.
    syn: bool,
    /// Highest stream offset reached by data or FIN.
    end: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    /// Out-of-order pieces, never overlapping each other, keyed by start.
    held: BTreeMap<u64, Held>,
    /// Bytes held in `held` (captured or not), against the budget.
    held_bytes: u64,
}

impl Reassembler {
    /// A reassembler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Anchors the stream on a SYN carrying `isn`: offset 0 is `isn + 1`.
    ///
    /// Ignored when the stream is already anchored on a SYN, or when bytes
    /// were already handed out from another anchor (too late to move it).
    pub fn syn(&mut self, isn: u32) {
        if self.syn {
            return;
        }
        if let Some((_, off)) = self.next
            && (off > 0 || !self.held.is_empty())
        {
            return;
        }
        self.syn = true;
        self.next = Some((isn.wrapping_add(1), 0));
    }

    /// Anchors the stream, when nothing anchors it yet, on `seq` as the
    /// sequence number of offset 0 (a packet from this side without SYN).
    pub fn anchor(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some((seq, 0));
        }
    }

    /// Whether the stream start was anchored on a captured SYN.
    pub fn has_syn(&self) -> bool {
        self.syn
    }

    /// Payload bytes sent in this direction, each counted once: the highest
    /// offset reached by a segment (on-wire length) or by the FIN.
    pub fn bytes(&self) -> u64 {
        self.end.max(self.fin.unwrap_or(0))
    }

    /// Bytes currently held out of order.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Stream offset of the next byte to hand out.
    pub fn delivered(&self) -> u64 {
        self.next.map_or(0, |(_, off)| off)
    }

    /// Whether a FIN was seen and every byte before it was handed out.
    pub fn is_complete(&self) -> bool {
        self.fin
            .is_some_and(|fin| self.held.is_empty() && self.delivered() >= fin)
    }

    /// Stream offset of `seq`, relative to the next expected byte; may be
    /// negative (before the start of the stream).
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let (next_seq, next_off) = self.next?;
        let rel = seq.wrapping_sub(next_seq) as i32 as i64;
        Some(next_off as i64 + rel)
    }

    /// Takes one segment: `seq` is the sequence number of its first payload
    /// byte (after the SYN, if it carries one), `payload` the captured bytes,
    /// `wire_len` the payload length on the wire, `fin` whether it carries
    /// FIN. Bytes that become contiguous are handed to `out` in order.
    /// `budget` is how many out-of-order bytes this side may hold.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        wire_len: u32,
        fin: bool,
        time: Timestamp,
        packet: u64,
        budget: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) -> PushOutcome {
        self.anchor(seq);
        let mut outcome = PushOutcome::default();
        let start = self.offset_of(seq).unwrap_or(0);
        let wire_len = u64::from(wire_len);
        let end = start + wire_len as i64;
        let next_off = self.delivered();
        if start > (next_off + MAX_AHEAD) as i64 {
            outcome.ignored = true;
            return outcome;
        }
        if end < 0 || (end == 0 && start < 0) {
            // Entirely before the start of the stream (captured mid-way).
            return outcome;
        }
        if fin && self.fin.is_none() && end >= 0 {
            self.fin = Some(end as u64);
        }
        if wire_len == 0 || end as u64 <= next_off {
            // Pure ACK, FIN, retransmission, keepalive: nothing new.
            self.end = self.end.max(end.max(0) as u64);
            return outcome;
        }
        self.end = self.end.max(end as u64);

        // Clip to offset 0 (bytes before the captured start are not ours).
        let clip = (-start).max(0) as u64;
        let start = start.max(0) as u64;
        let end = end as u64;
        let captured_end =
            (start + (payload.len() as u64).min(wire_len).saturating_sub(clip)).min(end);
        let payload = &payload[(clip as usize).min(payload.len())..];

        // Out of order and over budget: give up on holes until it fits or
        // becomes in order.
        let new_bytes = end - start.max(next_off);
        while start > self.delivered() && self.held_bytes + new_bytes > budget {
            let hole_end = match self.held.first_key_value() {
                Some((&k, _)) => k.min(start),
                None => start,
            };
            let from = self.delivered();
            let missing = hole_end - from;
            outcome.given_up += missing;
            self.emit_missing(missing, time, packet, out);
            self.drain(out);
        }

        if start > self.delivered() {
            self.hold(start, captured_end, end, payload, time, packet);
            return outcome;
        }

        // In order: hand out the new bytes, letting held bytes (which came
        // first) win where they overlap.
        loop {
            let cur = self.delivered();
            if cur >= end {
                break;
            }
            self.drain(out);
            let cur = self.delivered();
            if cur >= end {
                break;
            }
            let stop = match self.held.first_key_value() {
                Some((&k, _)) => k.min(end),
                None => end,
            };
            if cur < captured_end {
                let to = stop.min(captured_end);
                let bytes = &payload[(cur - start) as usize..(to - start) as usize];
                self.advance(to - cur);
                out(Chunk {
                    offset: cur,
                    time,
                    packet,
                    data: ChunkData::Bytes(bytes),
                });
            } else {
                self.emit_missing(stop - cur, time, packet, out);
            }
        }
        self.drain(out);
        outcome
    }

    /// The receiver acknowledged every byte before `ack`: it has them, so
    /// holes before that point will not be filled by a retransmission and are
    /// given up on now (held bytes after them are handed out). Only holes
    /// before bytes already seen are closed: bytes acknowledged beyond the
    /// last one seen are neither counted nor reported (the acknowledgment may
    /// cover a FIN that was not captured). Returns the bytes given up.
    pub fn acked(
        &mut self,
        ack: u32,
        time: Timestamp,
        packet: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) -> u64 {
        let Some(ack_off) = self.offset_of(ack) else {
            return 0;
        };
        let from = self.delivered();
        if ack_off <= from as i64 || self.held.is_empty() {
            return 0;
        }
        let target = (ack_off as u64).min(self.end).min(from + MAX_AHEAD);
        let mut given_up = 0;
        while self.delivered() < target {
            let cur = self.delivered();
            match self.held.first_key_value() {
                Some((&k, _)) if k <= cur => self.drain(out),
                Some((&k, _)) => {
                    let n = k.min(target) - cur;
                    given_up += n;
                    self.emit_missing(n, time, packet, out);
                }
                None => break,
            }
        }
        given_up
    }

    /// Gives up on every hole: hands out all held bytes in order, with the
    /// holes between them, and the bytes up to the FIN, as missing. Called
    /// when the connection is closed or the capture ends; frees the buffers.
    pub fn flush(&mut self, time: Timestamp, packet: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some((&k, _)) = self.held.first_key_value() {
            let from = self.delivered();
            if k > from {
                self.emit_missing(k - from, time, packet, out);
            }
            self.drain(out);
        }
        let target = self.bytes();
        let from = self.delivered();
        if target > from && self.next.is_some() {
            self.emit_missing(target - from, time, packet, out);
        }
        self.held = BTreeMap::new();
        self.held_bytes = 0;
    }

    fn advance(&mut self, n: u64) {
        if let Some((seq, off)) = &mut self.next {
            *seq = seq.wrapping_add(n as u32);
            *off += n;
        }
    }

    fn emit_missing(
        &mut self,
        n: u64,
        time: Timestamp,
        packet: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if n == 0 {
            return;
        }
        let offset = self.delivered();
        self.advance(n);
        out(Chunk {
            offset,
            time,
            packet,
            data: ChunkData::Missing(n),
        });
    }

    /// Hands out held pieces that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        loop {
            let cur = self.delivered();
            let Some(entry) = self.held.first_entry() else {
                return;
            };
            let key = *entry.key();
            if key > cur {
                return;
            }
            let piece = entry.remove();
            self.held_bytes -= piece.end - key;
            if piece.end <= cur {
                continue;
            }
            let skip = (cur - key) as usize;
            let n = piece.end - cur;
            self.advance(n);
            let data = match &piece.data {
                Some(bytes) => ChunkData::Bytes(&bytes[skip..]),
                None => ChunkData::Missing(n),
            };
            out(Chunk {
                offset: cur,
                time: piece.time,
                packet: piece.packet,
                data,
            });
        }
    }

    /// Holds `[start, end)` (captured up to `captured_end`) except where
    /// held pieces already cover it: the first bytes captured win.
    fn hold(
        &mut self,
        start: u64,
        captured_end: u64,
        end: u64,
        payload: &[u8],
        time: Timestamp,
        packet: u64,
    ) {
        // Uncovered stretches of [start, end).
        let mut free = Vec::new();
        let before = self
            .held
            .range(..=start)
            .next_back()
            .map_or(0, |(_, h)| h.end);
        let mut cur = start.max(before);
        for (&k, h) in self.held.range(start..end) {
            if k > cur {
                free.push((cur, k));
            }
            cur = cur.max(h.end);
        }
        if cur < end {
            free.push((cur, end));
        }
        for (a, b) in free {
            // Split each stretch at the end of the captured bytes.
            if a < captured_end {
                let to = b.min(captured_end);
                let bytes = payload[(a - start) as usize..(to - start) as usize].to_vec();
                self.insert(a, to, Some(bytes), time, packet);
            }
            if b > captured_end {
                let from = a.max(captured_end);
                self.insert(from, b, None, time, packet);
            }
        }
    }

    fn insert(
        &mut self,
        start: u64,
        end: u64,
        data: Option<Vec<u8>>,
        time: Timestamp,
        packet: u64,
    ) {
        if end <= start {
            return;
        }
        self.held_bytes += end - start;
        self.held.insert(
            start,
            Held {
                end,
                data,
                time,
                packet,
            },
        );
    }
}
