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

use super::model::{PacketRecord, Timestamp};
use super::parked_form;

/// How far ahead of the next expected byte a segment may start before it is
/// taken for garbage (a bogus or foreign sequence number).
const MAX_AHEAD: u64 = 1 << 30;

/// Bytes of one direction handed out in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The segment that carried these bytes: its number, time and TCP
    /// header as Wireshark shows it (for missing bytes: only the number and
    /// time of the segment whose processing gave up on them).
    pub pkt: PacketRecord,
    /// The bytes, or how many are missing.
    pub data: ChunkData<'a>,
}

/// Captured bytes or a stretch that was not captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkData<'a> {
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
pub(crate) struct PushOutcome {
    /// Bytes given up on (handed out as missing) because holding the segment
    /// would have exceeded the budget.
    pub given_up: u64,
    /// The segment was ignored as garbage (too far ahead, or before the start).
    pub ignored: bool,
}

/// A held out-of-order piece: `[key, end)` in stream offsets.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug)]
struct Held {
    end: u64,
    /// `None`: the bytes were not captured (snaplen).
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_maybe_bytes",
        deserialize_with = "crate::analyze::parked_form::read_maybe_bytes"
    )]
    data: Option<Vec<u8>>,
    pkt: PacketRecord,
}

/// Reassembles one direction of a TCP connection.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Default)]
pub(crate) struct Reassembler {
    /// Next expected byte as (sequence number, stream offset); `None` until
    /// the first packet from this side.
    #[borsh(serialize_with = "write_next", deserialize_with = "read_next")]
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

/// The parked form of [`Reassembler::next`]: the sequence number near
/// the connection's anchors, the offset as a varint.
fn write_next<W: std::io::Write>(next: &Option<(u32, u64)>, w: &mut W) -> std::io::Result<()> {
    parked_form::write_maybe_seq(&next.map(|(seq, _)| seq), w)?;
    match next {
        Some((_, offset)) => parked_form::write_varint(*offset, w),
        None => Ok(()),
    }
}

fn read_next<R: std::io::Read>(r: &mut R) -> std::io::Result<Option<(u32, u64)>> {
    match parked_form::read_maybe_seq(r)? {
        Some(seq) => Ok(Some((seq, parked_form::read_varint(r)?))),
        None => Ok(None),
    }
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

    /// Payload bytes sent in this direction, each counted once: the highest
    /// offset reached by a segment (on-wire length) or by the FIN.
    pub fn bytes(&self) -> u64 {
        self.end.max(self.fin.unwrap_or(0))
    }

    /// Bytes currently held out of order.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Bytes the held pieces take on the heap: their data, the pieces and
    /// the tree's nodes (a leaf of up to 11 pieces is about 700 bytes).
    pub fn held_heap_bytes(&self) -> u64 {
        if self.held.is_empty() {
            return 0;
        }
        let pieces = self.held.len() as u64;
        self.held_bytes + pieces.div_ceil(11) * 700 + pieces * 32
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
    /// `budget` is how many out-of-order bytes this side may hold. `pkt`
    /// describes the segment; it comes back with each chunk of its bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        wire_len: u32,
        fin: bool,
        pkt: &PacketRecord,
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
            // Pure ACK, FIN, retransmission, keepalive: nothing new. (The
            // sequence number of an empty segment is not a byte sent: after
            // a FIN it is one past the last byte.)
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
            self.emit_missing(missing, pkt, out);
            self.drain(out);
        }

        if start > self.delivered() {
            self.hold(start, captured_end, end, payload, pkt);
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
                    pkt: *pkt,
                    data: ChunkData::Bytes(bytes),
                });
            } else {
                self.emit_missing(stop - cur, pkt, out);
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
        let pkt = PacketRecord::at(packet, time);
        let mut given_up = 0;
        while self.delivered() < target {
            let cur = self.delivered();
            match self.held.first_key_value() {
                Some((&k, _)) if k <= cur => self.drain(out),
                Some((&k, _)) => {
                    let n = k.min(target) - cur;
                    given_up += n;
                    self.emit_missing(n, &pkt, out);
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
        let pkt = PacketRecord::at(packet, time);
        while let Some((&k, _)) = self.held.first_key_value() {
            let from = self.delivered();
            if k > from {
                self.emit_missing(k - from, &pkt, out);
            }
            self.drain(out);
        }
        let target = self.bytes();
        let from = self.delivered();
        if target > from && self.next.is_some() {
            self.emit_missing(target - from, &pkt, out);
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

    fn emit_missing(&mut self, n: u64, pkt: &PacketRecord, out: &mut dyn FnMut(Chunk<'_>)) {
        if n == 0 {
            return;
        }
        let offset = self.delivered();
        self.advance(n);
        out(Chunk {
            offset,
            pkt: PacketRecord::at(pkt.frame, pkt.time),
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
                pkt: piece.pkt,
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
        pkt: &PacketRecord,
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
                self.insert(a, to, Some(bytes), pkt);
            }
            if b > captured_end {
                let from = a.max(captured_end);
                self.insert(from, b, None, pkt);
            }
        }
    }

    fn insert(&mut self, start: u64, end: u64, data: Option<Vec<u8>>, pkt: &PacketRecord) {
        if end <= start {
            return;
        }
        self.held_bytes += end - start;
        self.held.insert(
            start,
            Held {
                end,
                data,
                pkt: *pkt,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What came out of a reassembler: offsets, bytes, missing stretches.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Out {
        bytes: Vec<u8>,
        /// (offset, len) of each missing stretch.
        missing: Vec<(u64, u64)>,
        /// Offset expected next: chunks must be contiguous.
        next: u64,
    }

    impl Out {
        fn take(&mut self, c: Chunk<'_>) {
            assert_eq!(c.offset, self.next, "chunks must be contiguous");
            assert!(!c.data.is_empty(), "empty chunk");
            self.next += c.data.len();
            match c.data {
                ChunkData::Bytes(b) => self.bytes.extend_from_slice(b),
                ChunkData::Missing(n) => {
                    self.missing.push((c.offset, n));
                    // A placeholder so offsets line up with the stream.
                    self.bytes.extend(std::iter::repeat_n(b'?', n as usize));
                }
            }
        }
    }

    fn push(r: &mut Reassembler, out: &mut Out, seq: u32, data: &[u8]) -> PushOutcome {
        r.push(
            seq,
            data,
            data.len() as u32,
            false,
            &PacketRecord::at(1, Timestamp(0)),
            u64::MAX,
            &mut |c| out.take(c),
        )
    }

    #[test]
    fn in_order_bytes_pass_straight_through() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(99);
        push(&mut r, &mut out, 100, b"abc");
        push(&mut r, &mut out, 103, b"def");
        assert_eq!(out.bytes, b"abcdef");
        assert_eq!(r.bytes(), 6);
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn syn_and_fin_take_one_sequence_number_each() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(u32::MAX);
        // Offset 0 is ISN + 1, which wraps to 0.
        push(&mut r, &mut out, 0, b"ab");
        r.push(
            2,
            b"",
            0,
            true,
            &PacketRecord::at(2, Timestamp(0)),
            0,
            &mut |c| out.take(c),
        );
        assert_eq!(out.bytes, b"ab");
        assert_eq!(r.bytes(), 2);
        assert!(r.is_complete());
    }

    #[test]
    fn an_ack_after_the_fin_does_not_count_a_byte() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(10);
        push(&mut r, &mut out, 11, b"hi\n");
        r.push(
            14,
            b"",
            0,
            true,
            &PacketRecord::at(2, Timestamp(0)),
            0,
            &mut |c| out.take(c),
        );
        // The next segment from this side carries seq FIN + 1.
        push(&mut r, &mut out, 15, b"");
        r.flush(Timestamp(0), 4, &mut |c| out.take(c));
        assert_eq!(r.bytes(), 3);
        assert!(out.missing.is_empty());
    }

    #[test]
    fn stream_runs_across_the_wrap() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(u32::MAX - 5);
        let mut seq = u32::MAX - 4;
        let data: Vec<u8> = (0..40).collect();
        // Out of order across the wrap.
        push(&mut r, &mut out, seq.wrapping_add(10), &data[10..40]);
        push(&mut r, &mut out, seq, &data[..10]);
        assert_eq!(out.bytes, data);
        seq = seq.wrapping_add(40);
        push(&mut r, &mut out, seq, b"more");
        assert_eq!(r.bytes(), 44);
    }

    #[test]
    fn a_hole_is_held_then_given_up_only_on_flush() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(0);
        push(&mut r, &mut out, 1, b"ab");
        push(&mut r, &mut out, 6, b"fg");
        assert_eq!(out.bytes, b"ab");
        assert_eq!(r.held_bytes(), 2);
        r.flush(Timestamp(9), 9, &mut |c| out.take(c));
        assert_eq!(out.bytes, b"ab???fg");
        assert_eq!(out.missing, [(2, 3)]);
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn an_acknowledged_hole_is_given_up_at_once() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(0);
        push(&mut r, &mut out, 1, b"ab");
        push(&mut r, &mut out, 6, b"fg");
        // An ACK inside the hole says nothing final yet? It does: bytes
        // before it were received, so up to there the hole is final.
        assert_eq!(r.acked(5, Timestamp(1), 3, &mut |c| out.take(c)), 2);
        assert_eq!(out.missing, [(2, 2)]);
        // An ACK past the held bytes releases them, not beyond.
        assert_eq!(r.acked(100, Timestamp(1), 4, &mut |c| out.take(c)), 1);
        assert_eq!(out.bytes, b"ab???fg");
        assert_eq!(out.next, 7);
        // A duplicate ACK at the hole changes nothing.
        assert_eq!(r.acked(8, Timestamp(1), 5, &mut |c| out.take(c)), 0);
    }

    #[test]
    fn budget_exceeded_gives_up_the_oldest_hole() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(0);
        let o = r.push(
            4,
            b"cd",
            2,
            false,
            &PacketRecord::at(1, Timestamp(0)),
            3,
            &mut |c| out.take(c),
        );
        assert_eq!(o.given_up, 0);
        let o = r.push(
            7,
            b"fg",
            2,
            false,
            &PacketRecord::at(2, Timestamp(0)),
            3,
            &mut |c| out.take(c),
        );
        // Giving up the first hole is enough to make room.
        assert_eq!(o.given_up, 3);
        assert_eq!(out.bytes, b"???cd");
        assert_eq!(r.held_bytes(), 2);
        r.flush(Timestamp(0), 3, &mut |c| out.take(c));
        assert_eq!(out.bytes, b"???cd?fg");
        assert_eq!(out.missing, [(0, 3), (5, 1)]);
    }

    #[test]
    fn snaplen_cut_bytes_are_missing_and_counted() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(0);
        r.push(
            1,
            b"abc",
            10,
            false,
            &PacketRecord::at(1, Timestamp(0)),
            0,
            &mut |c| out.take(c),
        );
        // A later full copy does not replace what was first seen missing.
        push(&mut r, &mut out, 1, b"abcdefghij");
        push(&mut r, &mut out, 11, b"k");
        assert_eq!(out.bytes, b"abc???????k");
        assert_eq!(out.missing, [(3, 7)]);
        assert_eq!(r.bytes(), 11);
    }

    #[test]
    fn capture_starting_mid_stream_ignores_older_bytes() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        push(&mut r, &mut out, 5000, b"now");
        // A retransmission of bytes sent before the capture began.
        push(&mut r, &mut out, 4990, b"0123456789abc");
        assert_eq!(out.bytes, b"now");
        assert_eq!(r.bytes(), 3);
    }

    #[test]
    fn a_segment_absurdly_far_ahead_is_ignored() {
        let mut r = Reassembler::new();
        let mut out = Out::default();
        r.syn(0);
        let o = push(&mut r, &mut out, 1 << 31, b"junk");
        assert!(o.ignored);
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.held_bytes(), 0);
    }

    /// Cuts `len` bytes into segments at `cuts`, as (offset, end).
    fn segments(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        points.push(0);
        points.push(len);
        points.sort_unstable();
        points.dedup();
        points.windows(2).map(|w| (w[0], w[1])).collect()
    }

    proptest! {
        #[test]
        fn any_order_and_duplication_of_segments_gives_the_same_bytes(
            stream in prop::collection::vec(any::<u8>(), 1..1500),
            isn in any::<u32>(),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
            recuts in prop::collection::vec(any::<usize>(), 0..20),
            order in prop::collection::vec(any::<usize>(), 0..60),
        ) {
            // Two segmentations of the same stream (a retransmission may cut
            // differently), shuffled and repeated.
            let mut segs = segments(stream.len(), &cuts);
            segs.extend(segments(stream.len(), &recuts));
            let mut sent: Vec<(usize, usize)> = order.iter().map(|i| segs[i % segs.len()]).collect();
            sent.extend(segs.iter().copied());
            let mut r = Reassembler::new();
            let mut out = Out::default();
            r.syn(isn);
            for (a, b) in sent {
                let seq = isn.wrapping_add(1).wrapping_add(a as u32);
                push(&mut r, &mut out, seq, &stream[a..b]);
            }
            r.flush(Timestamp(0), 0, &mut |c| out.take(c));
            prop_assert_eq!(&out.bytes, &stream);
            prop_assert!(out.missing.is_empty());
            prop_assert_eq!(r.bytes(), stream.len() as u64);
        }

        #[test]
        fn with_a_tight_budget_and_lost_segments_nothing_is_invented(
            stream in prop::collection::vec(any::<u8>(), 1..800),
            isn in any::<u32>(),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
            keep in prop::collection::vec(any::<bool>(), 0..40),
            order in prop::collection::vec(any::<usize>(), 0..40),
            budget in 0u64..200,
        ) {
            let segs = segments(stream.len(), &cuts);
            let mut sent: Vec<(usize, usize)> = segs
                .iter()
                .enumerate()
                .filter(|(i, _)| keep.get(*i).copied().unwrap_or(true))
                .map(|(_, s)| *s)
                .collect();
            for i in &order {
                if !sent.is_empty() {
                    let j = i % sent.len();
                    sent.swap(0, j);
                }
            }
            let mut r = Reassembler::new();
            let mut out = Out::default();
            r.syn(isn);
            for &(a, b) in &sent {
                let seq = isn.wrapping_add(1).wrapping_add(a as u32);
                r.push(seq, &stream[a..b], (b - a) as u32, false, &PacketRecord::at(0, Timestamp(0)), budget, &mut |c| out.take(c));
                prop_assert!(r.held_bytes() <= budget.max((b - a) as u64));
            }
            r.flush(Timestamp(0), 0, &mut |c| out.take(c));
            // Every byte handed out is the stream's byte at that offset.
            let missing: std::collections::HashSet<u64> = out
                .missing
                .iter()
                .flat_map(|&(o, n)| o..o + n)
                .collect();
            prop_assert_eq!(out.next, r.bytes());
            for (i, &b) in out.bytes.iter().enumerate() {
                if !missing.contains(&(i as u64)) {
                    prop_assert_eq!(b, stream[i]);
                }
            }
        }
    }
}
