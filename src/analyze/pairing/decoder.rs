//! One direction of a connection cut into messages: [`Message`] (a
//! message or a turn, with its size, times, preview and gaps) and
//! [`Decoder`] (line or length framing over a bounded buffer, streaming
//! messages longer than `max_message`).

use std::collections::VecDeque;

use crate::analyze::model::{Frames, PacketRecord, Timestamp};
use crate::analyze::preview::PreviewBuf;
use crate::protocol::framing::LENGTH_PREFIX;
use crate::protocol::{FrameError, Framing};

/// Sizes that bound pairing.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy)]
pub(crate) struct PairLimits {
    /// Largest message buffered whole to decode it.
    pub max_message: usize,
    /// Characters of preview per message.
    pub preview_len: usize,
    /// Keep each message's packet records, not only its frame numbers.
    pub packets: bool,
}

/// A message (or a turn) found in one direction.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone)]
pub(super) struct Message {
    /// Payload bytes, missing ones included.
    pub(super) len: u64,
    pub(super) first_time: Timestamp,
    pub(super) last_time: Timestamp,
    pub(super) preview: PreviewBuf,
    /// Some bytes were not captured.
    pub(super) gap: bool,
    /// The stream ended before the message did.
    pub(super) unterminated: bool,
    /// First and last capture packet that carried bytes of it, and how many
    /// distinct packets did (0 when all its bytes are missing).
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    pub(super) first_packet: u64,
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    pub(super) last_packet: u64,
    pub(super) segments: u32,
    /// The frames that carried it, for the report's packet list.
    pub(super) frames: Frames,
    /// Relative sequence number just past the last packet that carried it
    /// (`None` without a captured handshake).
    pub(super) end_seq: Option<u32>,
}

impl Message {
    pub(super) fn new(time: Timestamp) -> Self {
        Message {
            len: 0,
            first_time: time,
            last_time: time,
            preview: PreviewBuf::default(),
            gap: false,
            unterminated: false,
            first_packet: 0,
            last_packet: 0,
            segments: 0,
            frames: Frames::default(),
            end_seq: None,
        }
    }

    /// Packet `pkt` carried bytes of this message; `keep`: keep its record.
    pub(super) fn touch(&mut self, pkt: &PacketRecord, keep: bool) {
        let packet = pkt.frame;
        self.last_time = self.last_time.max(pkt.time);
        if self.segments == 0 {
            self.first_packet = packet;
            self.segments = 1;
        } else if packet != self.last_packet {
            self.segments = self.segments.saturating_add(1);
        }
        self.last_packet = packet;
        self.end_seq = pkt.seq.map(|s| s.wrapping_add(pkt.len));
        self.frames.push_packet(pkt, keep);
    }

    /// Adds payload bytes (all of them count; at most `limit` are kept).
    pub(super) fn add(&mut self, bytes: &[u8], limit: usize) {
        self.len += bytes.len() as u64;
        self.preview.push(bytes, limit);
    }

    pub(super) fn add_missing(&mut self, n: u64, time: Timestamp) {
        self.len += n;
        self.gap = true;
        self.last_time = self.last_time.max(time);
        self.preview.push_missing(n);
    }

    pub(super) fn incomplete(&self) -> bool {
        self.gap || self.unterminated
    }
}

/// Bytes of the decode buffer that one packet delivered.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy)]
pub(super) struct Run {
    pub(super) pkt: PacketRecord,
    pub(super) len: usize,
}

/// What a streamed (not buffered) message runs until.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// The next `\n` (line framing).
    Newline,
    /// This many more bytes (length framing, size known).
    Remaining(u64),
    /// The end of this side's burst (length framing, boundaries lost).
    BurstEnd,
}

/// One direction decoded with line or length framing.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug)]
pub(super) struct Decoder {
    pub(super) framing: Framing,
    pub(super) limits: PairLimits,
    /// Undecoded bytes are `buf[start..]`; always the start of a message.
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_bytes",
        deserialize_with = "crate::analyze::parked_form::read_bytes"
    )]
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) runs: VecDeque<Run>,
    /// A message being streamed past instead of buffered.
    /// Boxed: rare (a message past `max_message`, or cut by a gap), and
    /// a `Message` would double the decoder's size in every connection.
    pub(super) streaming: Option<Box<(Until, Message)>>,
    /// Boundaries were lost at least once (for a note).
    pub(super) lost_sync: bool,
}

impl Decoder {
    pub(super) fn new(framing: Framing, limits: PairLimits) -> Self {
        Decoder {
            framing,
            limits,
            buf: Vec::new(),
            start: 0,
            runs: VecDeque::new(),
            streaming: None,
            lost_sync: false,
        }
    }

    pub(super) fn undecoded(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Builds a message from the first `consumed` undecoded bytes, whose
    /// payload is `payload` (relative to the undecoded start), and drops them.
    pub(super) fn take(&mut self, payload: std::ops::Range<usize>, consumed: usize) -> Message {
        let mut msg = Message::new(self.runs.front().map_or(Timestamp(0), |r| r.pkt.time));
        let mut left = consumed;
        while left > 0 {
            let Some(run) = self.runs.front_mut() else {
                break;
            };
            msg.touch(&run.pkt, self.limits.packets);
            let n = run.len.min(left);
            run.len -= n;
            left -= n;
            if run.len == 0 {
                self.runs.pop_front();
            }
        }
        let base = self.start;
        msg.add(
            &self.buf[base + payload.start..base + payload.end],
            self.limits.preview_len,
        );
        self.start += consumed;
        msg
    }

    /// Frees consumed bytes at the front of the buffer.
    pub(super) fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > 64 * 1024 {
                self.buf = Vec::new();
            }
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Frees the buffers' spare room, keeping every undecoded byte.
    pub(super) fn shrink(&mut self) {
        self.compact();
        self.buf.shrink_to_fit();
        self.runs.shrink_to_fit();
    }

    pub(super) fn push(&mut self, mut data: &[u8], pkt: &PacketRecord, out: &mut Vec<Message>) {
        let keep = self.limits.packets;
        // Fast path: nothing buffered, so whole messages at the start of
        // this chunk are decoded where they lie, without copying them into
        // the buffer (as they would be, one run of one packet). The rest
        // (a partial or oversized message) takes the general path below.
        if self.streaming.is_none() && self.undecoded() == 0 {
            while let Ok(Some(frame)) = self.framing.decode(data, self.limits.max_message) {
                let mut msg = Message::new(pkt.time);
                msg.touch(pkt, keep);
                msg.add(&data[frame.payload], self.limits.preview_len);
                out.push(msg);
                data = &data[frame.consumed..];
            }
        }
        while !data.is_empty() {
            if let Some((until, msg)) = self.streaming.as_deref_mut() {
                msg.touch(pkt, keep);
                let take = match until {
                    Until::Newline => match data.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            let end = if nl > 0 && data[nl - 1] == b'\r' {
                                nl - 1
                            } else {
                                nl
                            };
                            msg.add(&data[..end], self.limits.preview_len);
                            let msg = self.streaming.take().map(|s| s.1);
                            out.extend(msg);
                            data = &data[nl + 1..];
                            continue;
                        }
                        None => data.len(),
                    },
                    Until::Remaining(r) => (*r).min(data.len() as u64) as usize,
                    Until::BurstEnd => data.len(),
                };
                msg.add(&data[..take], self.limits.preview_len);
                if let Until::Remaining(r) = until {
                    *r -= take as u64;
                    if *r == 0 {
                        out.extend(self.streaming.take().map(|s| s.1));
                    }
                }
                data = &data[take..];
                continue;
            }
            // Buffer and decode, but never more than one message's worth.
            self.compact();
            self.buf.extend_from_slice(data);
            self.runs.push_back(Run {
                pkt: *pkt,
                len: data.len(),
            });
            // A line cannot end before a newline arrives: skip rescanning
            // the buffered part of a long line for each new segment.
            let waiting = self.framing == Framing::Line
                && !data.contains(&b'\n')
                && self.undecoded() <= self.limits.max_message.saturating_add(1);
            data = &[];
            if !waiting {
                // Either leaves an incomplete message in the buffer, or
                // starts streaming a big one with the whole buffer consumed.
                self.decode(out);
            }
        }
    }

    /// Decodes every complete message in the buffer.
    pub(super) fn decode(&mut self, out: &mut Vec<Message>) {
        loop {
            let pending = &self.buf[self.start..];
            match self.framing.decode(pending, self.limits.max_message) {
                Ok(Some(frame)) => {
                    let msg = self.take(frame.payload, frame.consumed);
                    out.push(msg);
                }
                Ok(None) => return,
                Err(FrameError::TooLarge { size, .. }) => {
                    // Too big to buffer: stream it past.
                    let have = pending.len();
                    match self.framing {
                        Framing::Length => {
                            let total = LENGTH_PREFIX as u64 + size as u64;
                            if total <= have as u64 {
                                let msg = self.take(LENGTH_PREFIX..total as usize, total as usize);
                                out.push(msg);
                                continue;
                            }
                            let msg = self.take(LENGTH_PREFIX..have, have);
                            self.streaming =
                                Some(Box::new((Until::Remaining(total - have as u64), msg)));
                        }
                        _ => match pending.iter().position(|&b| b == b'\n') {
                            Some(nl) => {
                                let end = if nl > 0 && pending[nl - 1] == b'\r' {
                                    nl - 1
                                } else {
                                    nl
                                };
                                let msg = self.take(0..end, nl + 1);
                                out.push(msg);
                                continue;
                            }
                            None => {
                                let msg = self.take(0..have, have);
                                self.streaming = Some(Box::new((Until::Newline, msg)));
                            }
                        },
                    }
                    self.compact();
                    return;
                }
                // Decoding never reports this; stop rather than spin.
                Err(FrameError::NewlineInLine) => return,
            }
        }
    }

    /// `n` bytes of this direction were not captured.
    pub(super) fn missing(&mut self, n: u64, time: Timestamp, out: &mut Vec<Message>) {
        if let Some((until, msg)) = self.streaming.as_deref_mut() {
            match until {
                Until::Newline | Until::BurstEnd => msg.add_missing(n, time),
                Until::Remaining(r) if n < *r => {
                    *r -= n;
                    msg.add_missing(n, time);
                }
                Until::Remaining(r) => {
                    let r = *r;
                    msg.add_missing(r, time);
                    out.extend(self.streaming.take().map(|s| s.1));
                    if n > r {
                        self.lose_sync(n - r, time);
                    }
                }
            }
            return;
        }
        let have = self.undecoded();
        match self.framing {
            Framing::Length if have >= LENGTH_PREFIX => {
                let p = &self.buf[self.start..self.start + LENGTH_PREFIX];
                let total =
                    LENGTH_PREFIX as u64 + u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                let mut msg = self.take(LENGTH_PREFIX..have, have);
                let rest = total - have as u64;
                msg.add_missing(n.min(rest), time);
                if n < rest {
                    self.streaming = Some(Box::new((Until::Remaining(rest - n), msg)));
                } else {
                    out.push(msg);
                    if n > rest {
                        self.lose_sync(n - rest, time);
                    }
                }
            }
            Framing::Length => {
                // The prefix itself is (partly) missing: no way to know
                // where this or the next messages end.
                let mut msg = self.take(0..0, have);
                msg.add_missing(n, time);
                msg.len += have as u64;
                self.lost_sync = true;
                self.streaming = Some(Box::new((Until::BurstEnd, msg)));
            }
            _ => {
                let mut msg = self.take(0..have, have);
                msg.add_missing(n, time);
                self.streaming = Some(Box::new((Until::Newline, msg)));
            }
        }
        self.compact();
    }

    pub(super) fn lose_sync(&mut self, n: u64, time: Timestamp) {
        let mut msg = Message::new(time);
        msg.add_missing(n, time);
        self.lost_sync = true;
        self.streaming = Some(Box::new((Until::BurstEnd, msg)));
    }

    /// The other side spoke: a message with lost boundaries ends here.
    pub(super) fn burst_end(&mut self, out: &mut Vec<Message>) {
        if matches!(self.streaming.as_deref(), Some((Until::BurstEnd, _))) {
            out.extend(self.streaming.take().map(|s| s.1));
        }
    }

    /// The stream ended: whatever is left is an unterminated message.
    pub(super) fn finish(&mut self, out: &mut Vec<Message>) {
        if let Some(streamed) = self.streaming.take() {
            let (until, mut msg) = *streamed;
            msg.unterminated = until != Until::BurstEnd;
            out.push(msg);
        }
        let have = self.undecoded();
        if have > 0 {
            let payload = match self.framing {
                Framing::Length => LENGTH_PREFIX.min(have)..have,
                _ => 0..have,
            };
            let mut msg = self.take(payload, have);
            msg.unterminated = true;
            out.push(msg);
        }
        self.buf = Vec::new();
        self.start = 0;
        self.runs.clear();
    }
}
