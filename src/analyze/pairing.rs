//! From the reassembled bytes of both directions to request/response
//! exchanges.
//!
//! Written by hand, on purpose: pairing is the heart of `reqresp analyze`
//! and the lab's lesson (TCP is a byte stream; messages exist only through a
//! framing), so the rules are kept here where they can be read:
//!
//! - **Line and length framing** decode each direction with the same codec
//!   as the server ([`Framing::decode`]). Request *i* pairs with response
//!   *i*, which is what pipelining needs. A server message that arrives while
//!   no request waits is an exchange of its own, without request.
//! - **Raw framing** takes turns: everything the client sends until the
//!   server sends data is one request, everything the server sends until the
//!   client speaks again is its response.
//! - **Auto** holds the first bytes of a connection (at most
//!   [`DETECT_WINDOW`]) until each side has finished a first burst (the other
//!   side spoke after it), the window is full, or the connection ends; then
//!   picks `line` when every first burst is printable UTF-8 text ending in
//!   `\n`, `length` when every first burst is a whole number of
//!   length-prefixed messages (each within `max_message`), otherwise `raw`.
//! - **Big messages** are not buffered whole: past `max_message` a message is
//!   streamed (its size counted, its first bytes kept for the preview), so
//!   memory per direction stays under `max_message`.
//! - **Gaps.** A message with missing bytes is marked incomplete and its
//!   preview says where bytes are missing. Line framing finds its footing
//!   again at the next `\n` (a gap is taken to hold no newline). Length
//!   framing knows where a message ends if its prefix was captured and the
//!   gap ends inside it; otherwise the boundaries are lost and the rest of the
//!   side's burst is taken as one incomplete message (noted on the
//!   connection), decoding restarting when that side next speaks.
//! - **Recv pitfalls** (line and length only, messages without gaps): a
//!   segment carrying bytes of several messages is `merged` (count: messages
//!   touched); a message whose bytes came in several segments is `split`
//!   (count: segments). Framing bytes (`\n`, the prefix) count as the
//!   message's.

use std::collections::VecDeque;

use super::model::{Connection, Exchange, PitfallKind, RecvPitfall, Side, Timestamp};
use super::preview::PreviewBuf;
use super::reassembly::{Chunk, ChunkData};
use crate::protocol::app::{
    self, Answer, AppMessage, AppProtocol, Direction, Kind, Pairing, Session,
};
use crate::protocol::framing::LENGTH_PREFIX;
use crate::protocol::{FrameError, Framing};

/// Most bytes held per connection while `auto` decides on a framing.
pub const DETECT_WINDOW: usize = 64 * 1024;

/// The `--framing` choice: a framing, or `auto` to recognise it per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum FramingChoice {
    /// Messages end with `\n`.
    Line,
    /// Messages start with a 4-byte big-endian length.
    Length,
    /// Turn-taking: a client burst, then a server burst, is one exchange.
    Raw,
    /// HTTP/1.x requests and responses.
    Http,
    /// RESP (Redis) commands and replies.
    Resp,
    /// The memcached text protocol.
    Memcached,
    /// DNS over TCP.
    Dns,
    /// PostgreSQL frontend/backend messages.
    Postgres,
    /// Recognise a known protocol by its content (the port only a hint),
    /// or line or length framing, per connection; else take turns.
    #[default]
    Auto,
}

impl FramingChoice {
    /// The fixed framing, or `None` for `auto`.
    pub fn fixed(self) -> Option<Framing> {
        match self {
            FramingChoice::Line => Some(Framing::Line),
            FramingChoice::Length => Some(Framing::Length),
            FramingChoice::Raw => Some(Framing::Raw),
            _ => None,
        }
    }

    /// The application protocol asked for, or `None`.
    pub fn protocol(self) -> Option<AppProtocol> {
        match self {
            FramingChoice::Http => Some(AppProtocol::Http),
            FramingChoice::Resp => Some(AppProtocol::Resp),
            FramingChoice::Memcached => Some(AppProtocol::Memcached),
            FramingChoice::Dns => Some(AppProtocol::Dns),
            FramingChoice::Postgres => Some(AppProtocol::Postgres),
            _ => None,
        }
    }
}

/// Sizes that bound pairing.
#[derive(Debug, Clone, Copy)]
pub struct PairLimits {
    /// Largest message buffered whole to decode it.
    pub max_message: usize,
    /// Characters of preview per message.
    pub preview_len: usize,
}

/// A message (or a turn) found in one direction.
#[derive(Debug, Clone)]
struct Message {
    /// Payload bytes, missing ones included.
    len: u64,
    first_time: Timestamp,
    last_time: Timestamp,
    preview: PreviewBuf,
    /// Some bytes were not captured.
    gap: bool,
    /// The stream ended before the message did.
    unterminated: bool,
    /// First and last capture packet that carried bytes of it, and how many
    /// distinct packets did (0 when all its bytes are missing).
    first_packet: u64,
    last_packet: u64,
    segments: u32,
}

impl Message {
    fn new(time: Timestamp) -> Self {
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
        }
    }

    fn touch(&mut self, time: Timestamp, packet: u64) {
        self.last_time = self.last_time.max(time);
        if self.segments == 0 {
            self.first_packet = packet;
            self.segments = 1;
        } else if packet != self.last_packet {
            self.segments = self.segments.saturating_add(1);
        }
        self.last_packet = packet;
    }

    /// Adds payload bytes (all of them count; at most `limit` are kept).
    fn add(&mut self, bytes: &[u8], limit: usize) {
        self.len += bytes.len() as u64;
        self.preview.push(bytes, limit);
    }

    fn add_missing(&mut self, n: u64, time: Timestamp) {
        self.len += n;
        self.gap = true;
        self.last_time = self.last_time.max(time);
        self.preview.push_missing(n);
    }

    fn incomplete(&self) -> bool {
        self.gap || self.unterminated
    }
}

/// Bytes of the decode buffer that one packet delivered.
#[derive(Debug, Clone, Copy)]
struct Run {
    packet: u64,
    time: Timestamp,
    len: usize,
}

/// What a streamed (not buffered) message runs until.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The next `\n` (line framing).
    Newline,
    /// This many more bytes (length framing, size known).
    Remaining(u64),
    /// The end of this side's burst (length framing, boundaries lost).
    BurstEnd,
}

/// One direction decoded with line or length framing.
#[derive(Debug)]
struct Decoder {
    framing: Framing,
    limits: PairLimits,
    /// Undecoded bytes are `buf[start..]`; always the start of a message.
    buf: Vec<u8>,
    start: usize,
    runs: VecDeque<Run>,
    /// A message being streamed past instead of buffered.
    streaming: Option<(Until, Message)>,
    /// Boundaries were lost at least once (for a note).
    lost_sync: bool,
}

impl Decoder {
    fn new(framing: Framing, limits: PairLimits) -> Self {
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

    fn undecoded(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Builds a message from the first `consumed` undecoded bytes, whose
    /// payload is `payload` (relative to the undecoded start), and drops them.
    fn take(&mut self, payload: std::ops::Range<usize>, consumed: usize) -> Message {
        let mut msg = Message::new(self.runs.front().map_or(Timestamp(0), |r| r.time));
        let mut left = consumed;
        while left > 0 {
            let Some(run) = self.runs.front_mut() else {
                break;
            };
            msg.touch(run.time, run.packet);
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
    fn compact(&mut self) {
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

    fn push(&mut self, mut data: &[u8], time: Timestamp, packet: u64, out: &mut Vec<Message>) {
        // Fast path: nothing buffered, so whole messages at the start of
        // this chunk are decoded where they lie, without copying them into
        // the buffer (as they would be, one run of one packet). The rest
        // (a partial or oversized message) takes the general path below.
        if self.streaming.is_none() && self.undecoded() == 0 {
            while let Ok(Some(frame)) = self.framing.decode(data, self.limits.max_message) {
                let mut msg = Message::new(time);
                msg.touch(time, packet);
                msg.add(&data[frame.payload], self.limits.preview_len);
                out.push(msg);
                data = &data[frame.consumed..];
            }
        }
        while !data.is_empty() {
            if let Some((until, msg)) = &mut self.streaming {
                msg.touch(time, packet);
                let take = match until {
                    Until::Newline => match data.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            let end = if nl > 0 && data[nl - 1] == b'\r' {
                                nl - 1
                            } else {
                                nl
                            };
                            msg.add(&data[..end], self.limits.preview_len);
                            let msg = self.streaming.take().map(|(_, m)| m);
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
                        out.extend(self.streaming.take().map(|(_, m)| m));
                    }
                }
                data = &data[take..];
                continue;
            }
            // Buffer and decode, but never more than one message's worth.
            self.compact();
            self.buf.extend_from_slice(data);
            self.runs.push_back(Run {
                packet,
                time,
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
    fn decode(&mut self, out: &mut Vec<Message>) {
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
                            self.streaming = Some((Until::Remaining(total - have as u64), msg));
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
                                self.streaming = Some((Until::Newline, msg));
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
    fn missing(&mut self, n: u64, time: Timestamp, out: &mut Vec<Message>) {
        if let Some((until, msg)) = &mut self.streaming {
            match until {
                Until::Newline | Until::BurstEnd => msg.add_missing(n, time),
                Until::Remaining(r) if n < *r => {
                    *r -= n;
                    msg.add_missing(n, time);
                }
                Until::Remaining(r) => {
                    let r = *r;
                    msg.add_missing(r, time);
                    out.extend(self.streaming.take().map(|(_, m)| m));
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
                    self.streaming = Some((Until::Remaining(rest - n), msg));
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
                self.streaming = Some((Until::BurstEnd, msg));
            }
            _ => {
                let mut msg = self.take(0..have, have);
                msg.add_missing(n, time);
                self.streaming = Some((Until::Newline, msg));
            }
        }
        self.compact();
    }

    fn lose_sync(&mut self, n: u64, time: Timestamp) {
        let mut msg = Message::new(time);
        msg.add_missing(n, time);
        self.lost_sync = true;
        self.streaming = Some((Until::BurstEnd, msg));
    }

    /// The other side spoke: a message with lost boundaries ends here.
    fn burst_end(&mut self, out: &mut Vec<Message>) {
        if matches!(self.streaming, Some((Until::BurstEnd, _))) {
            out.extend(self.streaming.take().map(|(_, m)| m));
        }
    }

    /// The stream ended: whatever is left is an unterminated message.
    fn finish(&mut self, out: &mut Vec<Message>) {
        if let Some((until, mut msg)) = self.streaming.take() {
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

/// Messages of one side sharing a segment, for `merged` pitfalls.
#[derive(Debug, Clone, Copy)]
struct MergeGroup {
    packet: u64,
    first: u64,
    count: u32,
}

/// One held event while `auto` has not decided yet.
#[derive(Debug)]
struct Held {
    side: Side,
    /// Where its bytes are in the held buffer; `None` for missing bytes.
    data: Option<std::ops::Range<usize>>,
    missing: u64,
    time: Timestamp,
    packet: u64,
}

#[derive(Debug)]
enum Mode {
    /// `auto`, not decided yet.
    Detecting {
        held: Vec<Held>,
        /// The bytes of every held chunk, one after the other (one buffer,
        /// not one allocation per chunk).
        buf: Vec<u8>,
        bytes: usize,
        /// Bursts seen so far (counted up to 3): runs of chunks of one side.
        bursts: usize,
    },
    /// Line or length framing, one decoder per side (client, server).
    Framed(Box<[Decoder; 2]>),
    /// Turn-taking: the open burst of each side.
    Turns(Box<[Option<Message>; 2]>),
    /// An application protocol's codec (`protocol::app`).
    App(Box<AppMode>),
}

/// An application protocol's codec over both sides of a connection.
#[derive(Debug)]
struct AppMode {
    session: Session,
    pairing: Pairing,
    /// The message each side is in the middle of (client, server).
    open: [Option<Message>; 2],
    /// Answers that came while a request was still arriving (an HTTP error
    /// before the body): they answer that request once it ends.
    early: Vec<(Message, AppMessage)>,
}

/// Most answers held for a request still arriving.
const MAX_EARLY: usize = 64;

fn direction(side: Side) -> Direction {
    match side {
        Side::Client => Direction::Request,
        Side::Server => Direction::Response,
    }
}

/// Why `auto` chose one of the lab's framings, for the report.
fn detect_reason(framing: Framing) -> String {
    match framing {
        Framing::Line => "line: the first messages are text lines".into(),
        Framing::Length => "length: the first messages are length-prefixed".into(),
        Framing::Raw => "raw (turns): no known protocol or framing fits the first messages".into(),
    }
}

/// Appends an exchange with nothing in it yet; returns its index.
fn blank_exchange(conn: &mut Connection, time: Timestamp) -> usize {
    conn.exchanges.push(Exchange {
        request_bytes: 0,
        response_bytes: 0,
        request_preview: String::new(),
        response_preview: String::new(),
        request_time: time,
        response_first_time: None,
        response_last_time: None,
        latency_us: None,
        first_byte_latency_us: None,
        incomplete: false,
        operation: None,
        request_summary: None,
        response_summary: None,
        error: false,
    });
    conn.exchanges.len() - 1
}

/// Records a server message in the exchange it answers (`paired`: the
/// exchange has a request, so latencies mean something).
fn answer(ex: &mut Exchange, msg: &Message, m: &AppMessage, preview_len: usize, paired: bool) {
    ex.incomplete |= msg.incomplete() || !m.complete;
    ex.error |= m.error;
    ex.response_bytes += msg.len;
    if m.kind == Kind::Interim {
        // `100 Continue`: its bytes count, its times are not the answer's.
        return;
    }
    if ex.response_first_time.is_none() {
        ex.response_first_time = Some(msg.first_time);
        ex.response_preview = msg.preview.render(preview_len);
        if paired {
            ex.first_byte_latency_us = Some(msg.first_time.micros_since(ex.request_time));
        }
    }
    ex.response_last_time = Some(msg.last_time);
    if paired {
        ex.latency_us = Some(msg.last_time.micros_since(ex.request_time));
    }
    ex.response_summary = Some(m.summary.clone());
}

/// Pairs the messages of one connection into exchanges, writing them into
/// its [`Connection`].
#[derive(Debug)]
pub struct Pairer {
    limits: PairLimits,
    mode: Mode,
    /// Side of the last data (or gap) handed in, to see turns.
    last_side: Option<Side>,
    /// Exchanges whose request waits for a response: those from this index
    /// to the end of the connection's list (a server message without a
    /// waiting request gets an exchange only when none waits, and moves this
    /// past it).
    unanswered: usize,
    /// Messages seen per side (client, server).
    index: [u64; 2],
    merge: [Option<MergeGroup>; 2],
    /// A note about lost boundaries was added to the connection.
    noted_lost_sync: bool,
    scratch: Vec<Message>,
}

fn slot(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// `client` or `server`, for messages.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

impl Pairer {
    /// A pairer for one connection. With a fixed framing, sets `conn.framing`.
    pub fn new(choice: FramingChoice, limits: PairLimits, conn: &mut Connection) -> Self {
        let mode = match (choice.protocol(), choice.fixed()) {
            (Some(p), _) => {
                conn.protocol = Some(p);
                conn.framing_reason = Some(format!("{p}: asked for with --framing"));
                Self::app_mode(p)
            }
            (None, Some(f)) => {
                conn.framing = f;
                conn.framing_reason = Some(format!("{f}: asked for with --framing"));
                Self::mode_for(f, limits)
            }
            // Room for the first bursts of a typical text exchange, so
            // they do not grow the buffers chunk by chunk.
            (None, None) => Mode::Detecting {
                held: Vec::with_capacity(4),
                buf: Vec::with_capacity(256),
                bytes: 0,
                bursts: 0,
            },
        };
        Pairer {
            limits,
            mode,
            last_side: None,
            unanswered: conn.exchanges.len(),
            index: [0; 2],
            merge: [None; 2],
            noted_lost_sync: false,
            scratch: Vec::new(),
        }
    }

    fn app_mode(p: AppProtocol) -> Mode {
        Mode::App(Box::new(AppMode {
            session: Session::new(p),
            pairing: Pairing::default(),
            open: [None, None],
            early: Vec::new(),
        }))
    }

    fn mode_for(f: Framing, limits: PairLimits) -> Mode {
        match f {
            Framing::Raw => Mode::Turns(Box::new([None, None])),
            f => Mode::Framed(Box::new([Decoder::new(f, limits), Decoder::new(f, limits)])),
        }
    }

    /// Bytes held while detecting, or buffered in decoders (for memory accounting).
    pub fn buffered(&self) -> usize {
        match &self.mode {
            Mode::Detecting { bytes, .. } => *bytes,
            Mode::Framed(d) => d[0].buf.len() + d[1].buf.len(),
            Mode::Turns(_) | Mode::App(_) => 0,
        }
    }

    /// Takes the next in-order chunk of `side`'s stream.
    pub fn push(&mut self, side: Side, chunk: &Chunk<'_>, conn: &mut Connection) {
        if chunk.data.is_empty() {
            return;
        }
        if let Mode::Detecting {
            held,
            buf,
            bytes,
            bursts,
        } = &mut self.mode
        {
            if held.last().map(|h| h.side) != Some(side) && *bursts < 3 {
                *bursts += 1;
            }
            let data = match chunk.data {
                ChunkData::Bytes(b) => {
                    *bytes += b.len();
                    let start = buf.len();
                    buf.extend_from_slice(b);
                    Some(start..buf.len())
                }
                ChunkData::Missing(_) => None,
            };
            held.push(Held {
                side,
                data,
                missing: chunk.data.len(),
                time: chunk.time,
                packet: chunk.packet,
            });
            if *bursts >= 3 || *bytes >= DETECT_WINDOW {
                self.decide(conn, false);
            }
            return;
        }
        self.process(side, &chunk.data, chunk.time, chunk.packet, conn);
    }

    /// Chooses a framing from the held bytes, then replays them. `ended`:
    /// the connection is over, so every burst held is whole.
    fn decide(&mut self, conn: &mut Connection, ended: bool) {
        let Mode::Detecting { held, buf, .. } = &mut self.mode else {
            return;
        };
        let held = std::mem::take(held);
        let buf = std::mem::take(buf);
        // The first burst of each side: all of its bytes (for the line
        // test, which a gap does not disturb) and those before its first gap
        // (for the length test, which a gap would derail).
        // A first burst is a run of held chunks of one side, so its bytes
        // lie one after the other in `buf`: ranges, not copies.
        let mut text: [Option<std::ops::Range<usize>>; 2] = [None, None];
        let mut clean = [0usize; 2];
        let mut gap = [false; 2];
        let mut done = [false; 2];
        let mut prev: Option<Side> = None;
        for h in &held {
            if let Some(p) = prev
                && p != h.side
            {
                done[slot(p)] = true;
            }
            prev = Some(h.side);
            let s = slot(h.side);
            if done[s] {
                continue;
            }
            match &h.data {
                Some(d) => {
                    let t = text[s].get_or_insert(d.start..d.start);
                    debug_assert_eq!(t.end, d.start, "a burst is contiguous in the buffer");
                    t.end = d.end;
                    if !gap[s] {
                        clean[s] = t.len();
                    }
                }
                None => gap[s] = true,
            }
        }
        let sample = |s: usize| {
            let t = text[s].clone().map_or(&[][..], |t| &buf[t]);
            Sample {
                text: t,
                clean: &t[..clean[s]],
                whole: done[s] || ended,
            }
        };
        if let Some(r) = app::recognize(sample(0).text, sample(1).text, conn.server.port()) {
            conn.protocol = Some(r.protocol);
            conn.framing_reason = Some(r.reason);
            self.mode = Self::app_mode(r.protocol);
        } else {
            let framing = detect([sample(0), sample(1)], self.limits.max_message);
            conn.framing = framing;
            conn.framing_reason = Some(detect_reason(framing));
            self.mode = Self::mode_for(framing, self.limits);
        }
        for h in held {
            let data = match &h.data {
                Some(d) => ChunkData::Bytes(&buf[d.clone()]),
                None => ChunkData::Missing(h.missing),
            };
            self.process(h.side, &data, h.time, h.packet, conn);
        }
    }

    fn process(
        &mut self,
        side: Side,
        data: &ChunkData<'_>,
        time: Timestamp,
        packet: u64,
        conn: &mut Connection,
    ) {
        if let Some(prev) = self.last_side
            && prev != side
        {
            self.burst_end(prev, conn);
        }
        self.last_side = Some(side);
        let mut out = std::mem::take(&mut self.scratch);
        match &mut self.mode {
            Mode::Framed(dec) => {
                let d = &mut dec[slot(side)];
                match data {
                    ChunkData::Bytes(b) => d.push(b, time, packet, &mut out),
                    ChunkData::Missing(n) => d.missing(*n, time, &mut out),
                }
                if d.lost_sync && !self.noted_lost_sync {
                    self.noted_lost_sync = true;
                    conn.notes.push(format!(
                        "bytes missing from the {} stream hid where length-prefixed messages \
                         end; the rest of each such burst counts as one incomplete message",
                        side_name(side)
                    ));
                }
            }
            Mode::Turns(open) => {
                let msg = open[slot(side)].get_or_insert_with(|| Message::new(time));
                match data {
                    ChunkData::Bytes(b) => {
                        msg.touch(time, packet);
                        msg.add(b, self.limits.preview_len);
                    }
                    ChunkData::Missing(n) => msg.add_missing(*n, time),
                }
            }
            Mode::App(_) => {
                self.scratch = out;
                return self.process_app(side, data, time, packet, conn);
            }
            Mode::Detecting { .. } => {}
        }
        for msg in out.drain(..) {
            self.message(side, msg, conn);
        }
        self.scratch = out;
    }

    /// Bytes (or a gap) of `side` under an application protocol's codec.
    /// If the codec fails, the connection is paired by turns from there on,
    /// with a note saying why.
    fn process_app(
        &mut self,
        side: Side,
        data: &ChunkData<'_>,
        time: Timestamp,
        packet: u64,
        conn: &mut Connection,
    ) {
        let Mode::App(a) = &mut self.mode else {
            return;
        };
        let s = slot(side);
        let dir = direction(side);
        let preview_len = self.limits.preview_len;
        let mut done: Vec<(Message, AppMessage)> = Vec::new();
        let mut failed = None;
        match data {
            ChunkData::Bytes(b) => {
                let mut b: &[u8] = b;
                while !b.is_empty() {
                    match a.session.feed(dir, b) {
                        Ok(step) => {
                            let msg = a.open[s].get_or_insert_with(|| Message::new(time));
                            msg.touch(time, packet);
                            msg.add(&b[..step.consumed], preview_len);
                            b = &b[step.consumed..];
                            if let Some(m) = step.message
                                && let Some(msg) = a.open[s].take()
                            {
                                done.push((msg, m));
                            }
                        }
                        Err(e) => {
                            failed = Some((e, ChunkData::Bytes(b)));
                            break;
                        }
                    }
                }
            }
            ChunkData::Missing(n) => match a.session.missing(dir, *n) {
                Ok(end) => {
                    a.open[s]
                        .get_or_insert_with(|| Message::new(time))
                        .add_missing(*n, time);
                    if let Some(m) = end
                        && let Some(msg) = a.open[s].take()
                    {
                        done.push((msg, m));
                    }
                }
                Err(e) => failed = Some((e, ChunkData::Missing(*n))),
            },
        }
        for (msg, m) in done {
            self.app_message(side, msg, m, conn);
        }
        if let Some((e, rest)) = failed {
            conn.notes
                .push(format!("{e}; from there on, paired by turns"));
            let Mode::App(a) =
                std::mem::replace(&mut self.mode, Mode::Turns(Box::new([None, None])))
            else {
                return;
            };
            let AppMode { open, early, .. } = *a;
            for (msg, m) in early {
                self.app_message(Side::Server, msg, m, conn);
            }
            self.mode = Mode::Turns(Box::new(open));
            // Turns pair from here: nothing before waits for them.
            self.unanswered = conn.exchanges.len();
            self.process(side, &rest, time, packet, conn);
        }
    }

    /// A whole message of `side` read by an application protocol's codec.
    fn app_message(&mut self, side: Side, msg: Message, m: AppMessage, conn: &mut Connection) {
        let index = self.index[slot(side)];
        self.index[slot(side)] += 1;
        self.pitfalls(side, index, &msg, conn);
        let preview_len = self.limits.preview_len;
        let app = match &mut self.mode {
            Mode::App(a) => Some(a),
            _ => None,
        };
        match side {
            Side::Client => {
                let id = blank_exchange(conn, msg.first_time);
                let ex = &mut conn.exchanges[id];
                ex.request_bytes = msg.len;
                ex.request_preview = msg.preview.render(preview_len);
                ex.request_time = msg.last_time;
                ex.incomplete = msg.incomplete() || !m.complete;
                ex.operation = Some(m.op.clone()).filter(|o| !o.is_empty());
                ex.request_summary = Some(m.summary.clone());
                let early = app.map(|a| {
                    let early = std::mem::take(&mut a.early);
                    // Answered already (early), or dropped past the bound of
                    // waiting requests: either way not waiting.
                    if !early.iter().any(|(_, e)| e.kind == Kind::Response) {
                        let _ = a.pairing.request(id as u64, &m);
                    }
                    early
                });
                for (msg, m) in early.unwrap_or_default() {
                    answer(&mut conn.exchanges[id], &msg, &m, preview_len, true);
                }
            }
            Side::Server => {
                let answered = app.map(|a| match a.pairing.response(&m) {
                    Answer::Final(id) | Answer::Partial(id) => Some(id as usize),
                    Answer::Unpaired
                        if a.session.partial(Direction::Request) && a.early.len() < MAX_EARLY =>
                    {
                        a.early.push((msg.clone(), m.clone()));
                        None
                    }
                    Answer::Unpaired => Some(usize::MAX),
                });
                match answered {
                    Some(Some(id)) if id < conn.exchanges.len() => {
                        answer(&mut conn.exchanges[id], &msg, &m, preview_len, true);
                    }
                    Some(None) => {}
                    _ => {
                        // Answers no request: an exchange of its own.
                        let id = blank_exchange(conn, msg.first_time);
                        answer(&mut conn.exchanges[id], &msg, &m, preview_len, false);
                    }
                }
            }
        }
    }

    /// `side` stopped sending: the other side spoke.
    fn burst_end(&mut self, side: Side, conn: &mut Connection) {
        let mut out = std::mem::take(&mut self.scratch);
        match &mut self.mode {
            Mode::Framed(dec) => dec[slot(side)].burst_end(&mut out),
            Mode::Turns(open) => out.extend(open[slot(side)].take()),
            Mode::App(_) | Mode::Detecting { .. } => {}
        }
        for msg in out.drain(..) {
            self.message(side, msg, conn);
        }
        self.scratch = out;
    }

    /// A whole message (or turn) from `side`.
    fn message(&mut self, side: Side, msg: Message, conn: &mut Connection) {
        let index = self.index[slot(side)];
        self.index[slot(side)] += 1;
        if matches!(self.mode, Mode::Framed(_)) {
            self.pitfalls(side, index, &msg, conn);
        }
        let preview_len = self.limits.preview_len;
        match side {
            Side::Client => {
                conn.exchanges.push(Exchange {
                    request_bytes: msg.len,
                    response_bytes: 0,
                    request_preview: msg.preview.render(preview_len),
                    response_preview: String::new(),
                    request_time: msg.last_time,
                    response_first_time: None,
                    response_last_time: None,
                    latency_us: None,
                    first_byte_latency_us: None,
                    incomplete: msg.incomplete(),
                    operation: None,
                    request_summary: None,
                    response_summary: None,
                    error: false,
                });
            }
            Side::Server => {
                let waiting = self.unanswered;
                let (ex, latency) = match conn.exchanges.get_mut(waiting) {
                    Some(ex) => {
                        self.unanswered += 1;
                        let latency = msg.last_time.micros_since(ex.request_time);
                        (ex, Some(latency))
                    }
                    None => {
                        conn.exchanges.push(Exchange {
                            request_bytes: 0,
                            response_bytes: 0,
                            request_preview: String::new(),
                            response_preview: String::new(),
                            request_time: msg.first_time,
                            response_first_time: None,
                            response_last_time: None,
                            latency_us: None,
                            first_byte_latency_us: None,
                            incomplete: false,
                            operation: None,
                            request_summary: None,
                            response_summary: None,
                            error: false,
                        });
                        self.unanswered = conn.exchanges.len();
                        (conn.exchanges.last_mut().expect("just pushed"), None)
                    }
                };
                ex.response_bytes = msg.len;
                ex.response_preview = msg.preview.render(preview_len);
                ex.response_first_time = Some(msg.first_time);
                ex.response_last_time = Some(msg.last_time);
                ex.latency_us = latency;
                ex.first_byte_latency_us =
                    latency.map(|_| msg.first_time.micros_since(ex.request_time));
                ex.incomplete |= msg.incomplete();
            }
        }
    }

    fn pitfalls(&mut self, side: Side, index: u64, msg: &Message, conn: &mut Connection) {
        let s = slot(side);
        if msg.gap || msg.segments == 0 {
            // Cannot judge what a reader would have received.
            self.close_group(side, conn);
            return;
        }
        if msg.segments > 1 {
            conn.recv_pitfalls.push(RecvPitfall {
                from: side,
                kind: PitfallKind::Split,
                message: index,
                count: msg.segments,
            });
        }
        match &mut self.merge[s] {
            Some(g) if g.packet == msg.first_packet => {
                g.count = g.count.saturating_add(1);
                if msg.last_packet != msg.first_packet {
                    self.close_group(side, conn);
                    self.merge[s] = Some(MergeGroup {
                        packet: msg.last_packet,
                        first: index,
                        count: 1,
                    });
                }
            }
            _ => {
                self.close_group(side, conn);
                self.merge[s] = Some(MergeGroup {
                    packet: msg.last_packet,
                    first: index,
                    count: 1,
                });
            }
        }
    }

    fn close_group(&mut self, side: Side, conn: &mut Connection) {
        if let Some(g) = self.merge[slot(side)].take()
            && g.count > 1
        {
            conn.recv_pitfalls.push(RecvPitfall {
                from: side,
                kind: PitfallKind::Merged,
                message: g.first,
                count: g.count,
            });
        }
    }

    /// Both streams ended: decide if still undecided, end open messages and
    /// turns, and order the pitfalls.
    pub fn finish(&mut self, conn: &mut Connection) {
        if matches!(self.mode, Mode::Detecting { .. }) {
            self.decide(conn, true);
        }
        // The last speaker's burst ends first, then the other's.
        let order = match self.last_side {
            Some(s) => [s, other(s)],
            None => [Side::Client, Side::Server],
        };
        for side in order {
            let mut out = std::mem::take(&mut self.scratch);
            match &mut self.mode {
                Mode::Framed(dec) => {
                    let d = &mut dec[slot(side)];
                    d.burst_end(&mut out);
                    d.finish(&mut out);
                }
                Mode::Turns(open) => out.extend(open[slot(side)].take()),
                Mode::App(a) => {
                    let open = a.open[slot(side)].take();
                    if let Some(m) = a.session.finish(direction(side)) {
                        let mut msg = open.unwrap_or_else(|| Message::new(conn.last_seen));
                        msg.unterminated = !m.complete;
                        self.app_message(side, msg, m, conn);
                    }
                }
                Mode::Detecting { .. } => {}
            }
            for msg in out.drain(..) {
                self.message(side, msg, conn);
            }
            self.scratch = out;
        }
        if let Mode::App(a) = &mut self.mode {
            // Answers to a request that never ended: exchanges of their own.
            for (msg, m) in std::mem::take(&mut a.early) {
                let id = blank_exchange(conn, msg.first_time);
                answer(
                    &mut conn.exchanges[id],
                    &msg,
                    &m,
                    self.limits.preview_len,
                    false,
                );
            }
        }
        self.close_group(Side::Client, conn);
        self.close_group(Side::Server, conn);
        conn.recv_pitfalls
            .sort_by_key(|p| (slot(p.from), p.message));
        self.scratch = Vec::new();
    }
}

/// The first burst of one side, as `auto` sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Every captured byte of the burst, gaps left out.
    pub text: &'a [u8],
    /// The bytes before its first gap.
    pub clean: &'a [u8],
    /// Whether the burst ended (the other side spoke, or the connection
    /// ended) rather than the detection window filled up in its middle.
    pub whole: bool,
}

/// Picks a framing from the first burst of each side (see the module doc).
/// A burst cut by the detection window passes the line test with at least
/// one `\n`, and the length test with at least one whole message and a
/// plausible start of the next.
pub fn detect(sides: [Sample<'_>; 2], max_message: usize) -> Framing {
    let speaking = || sides.iter().filter(|s| !s.text.is_empty());
    if speaking().next().is_none() {
        return Framing::Raw;
    }
    if speaking().all(|s| looks_like_lines(s.text, s.whole)) {
        return Framing::Line;
    }
    if speaking().all(|s| looks_length_framed(s.clean, s.whole, max_message)) {
        Framing::Length
    } else {
        Framing::Raw
    }
}

/// Printable UTF-8 text (tabs and line ends allowed) ending in `\n` (or,
/// when cut, containing one).
fn looks_like_lines(b: &[u8], whole: bool) -> bool {
    let lines = if whole {
        b.last() == Some(&b'\n')
    } else {
        b.contains(&b'\n')
    };
    if !lines {
        return false;
    }
    // Fast path: printable ASCII and line ends (the usual text protocol)
    // need neither UTF-8 decoding nor a walk over `char`s.
    if b.iter()
        .all(|&c| (0x20..0x7f).contains(&c) || matches!(c, b'\n' | b'\r' | b'\t'))
    {
        return true;
    }
    // A cut burst may end in the middle of a UTF-8 character.
    let text = match std::str::from_utf8(b) {
        Ok(t) => t,
        Err(e) if !whole && e.error_len().is_none() => {
            std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// A whole number (at least one) of length-prefixed messages, each within
/// `max` (when cut: at least one, then the start of one within `max`).
fn looks_length_framed(b: &[u8], whole: bool, max: usize) -> bool {
    let (msgs, consumed, err) = Framing::Length.decode_all(b, max);
    err.is_none() && !msgs.is_empty() && (consumed == b.len() || !whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        Connection::new(
            1,
            "10.0.0.2:40000".parse().unwrap(),
            "10.0.0.1:2222".parse().unwrap(),
            Timestamp(0),
        )
    }

    /// Feeds chunks to a pairer: (side, bytes or missing count), packet
    /// numbers and times (µs) counting up from 1.
    fn run(
        choice: FramingChoice,
        max_message: usize,
        chunks: &[(Side, Result<&[u8], u64>)],
    ) -> Connection {
        let mut c = conn();
        let limits = PairLimits {
            max_message,
            preview_len: 20,
        };
        let mut p = Pairer::new(choice, limits, &mut c);
        let mut offset = [0u64; 2];
        for (i, (side, data)) in chunks.iter().enumerate() {
            let data = match data {
                Ok(b) => ChunkData::Bytes(b),
                Err(n) => ChunkData::Missing(*n),
            };
            let chunk = Chunk {
                offset: offset[slot(*side)],
                time: Timestamp((i as u64 + 1) * 1000),
                packet: i as u64 + 1,
                data,
            };
            offset[slot(*side)] += chunk.data.len();
            p.push(*side, &chunk, &mut c);
            assert!(p.buffered() <= max_message + 64 + DETECT_WINDOW);
        }
        p.finish(&mut c);
        c
    }

    fn reqs(c: &Connection) -> Vec<(String, u64, bool)> {
        c.exchanges
            .iter()
            .map(|e| (e.request_preview.clone(), e.request_bytes, e.incomplete))
            .collect()
    }

    fn len_msg(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        Framing::Length.encode(payload, &mut v).unwrap();
        v
    }

    use Side::{Client as C, Server as S};

    fn whole<'a>(client: &'a [u8], server: &'a [u8]) -> [Sample<'a>; 2] {
        [client, server].map(|b| Sample {
            text: b,
            clean: b,
            whole: true,
        })
    }

    #[test]
    fn detection_of_line_length_and_turns() {
        let none: &[u8] = b"";
        assert_eq!(detect(whole(b"hi\n", b"Echo: hi\n"), 100), Framing::Line);
        assert_eq!(detect(whole(b"h\xc3\xa9\r\n", none), 100), Framing::Line);
        // Text without its newline, or with control bytes, is not lines.
        assert_eq!(detect(whole(b"hi", none), 100), Framing::Raw);
        assert_eq!(detect(whole(b"\x1b[0m\n", none), 100), Framing::Raw);
        let m = [len_msg(b"ab"), len_msg(b"")].concat();
        assert_eq!(detect(whole(&m, none), 100), Framing::Length);
        // A claimed length beyond the limit, or not matching the burst, is not.
        assert_eq!(detect(whole(&m[..5], none), 100), Framing::Raw);
        let huge = [0x7f, 0, 0, 0, 1];
        assert_eq!(detect(whole(&huge, none), 100), Framing::Raw);
        // Both sides must agree.
        assert_eq!(detect(whole(b"hi\n", &m), 100), Framing::Raw);
        assert_eq!(detect(whole(none, none), 100), Framing::Raw);
    }

    #[test]
    fn detection_of_a_burst_cut_by_the_window() {
        let cut = |b: &'static [u8]| Sample {
            text: b,
            clean: b,
            whole: false,
        };
        let none = cut(b"");
        // Lines so far, the last one not finished yet (even mid-character).
        assert_eq!(detect([cut(b"one\ntwo \xc3"), none], 100), Framing::Line);
        assert_eq!(detect([cut(b"no newline yet"), none], 100), Framing::Raw);
        assert_eq!(
            detect([cut(b"\0\0\0\x02ab\0\0\0\x09abc"), none], 100),
            Framing::Length
        );
        assert_eq!(detect([cut(b"\0\0\0\x02"), none], 100), Framing::Raw);
    }

    fn summaries(c: &Connection) -> Vec<(Option<&str>, Option<&str>)> {
        c.exchanges
            .iter()
            .map(|e| (e.request_summary.as_deref(), e.response_summary.as_deref()))
            .collect()
    }

    #[test]
    fn auto_recognises_http_and_pairs_pipelined_requests_with_times() {
        let c = run(
            FramingChoice::Auto,
            1000,
            &[
                (C, Ok(b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n")),
                (S, Ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")),
                (S, Ok(b"okHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")),
            ],
        );
        assert_eq!(c.protocol, Some(AppProtocol::Http));
        assert_eq!(
            c.framing_reason.as_deref(),
            Some("HTTP/1.1: request line and headers")
        );
        assert_eq!(
            summaries(&c),
            [
                (Some("GET /a"), Some("200 OK, 2 B body")),
                (Some("HEAD /b"), Some("200 OK (HEAD)"))
            ]
        );
        let e = &c.exchanges[0];
        // Request complete at 1 µs; response from 2 µs (first byte) to 3 µs.
        assert_eq!(
            (e.first_byte_latency_us, e.latency_us),
            (Some(1.0), Some(2.0))
        );
        assert_eq!(e.operation.as_deref(), Some("GET /a"));
        assert_eq!(c.exchanges[1].latency_us, Some(2.0));
    }

    #[test]
    fn an_answer_before_the_request_ends_answers_it() {
        let c = run(
            FramingChoice::Http,
            1000,
            &[
                (C, Ok(b"POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\n")),
                (S, Ok(b"HTTP/1.1 100 Continue\r\n\r\n")),
                (
                    S,
                    Ok(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"),
                ),
                (C, Ok(b"ab")),
            ],
        );
        assert_eq!(
            summaries(&c),
            [(
                Some("POST /u, 2 B of body before the end"),
                Some("413 Too Large, 0 B body")
            )]
        );
        assert!(c.exchanges[0].error && c.exchanges[0].incomplete);
    }

    #[test]
    fn a_codec_error_falls_back_to_turns_with_a_note() {
        let c = run(
            FramingChoice::Resp,
            1000,
            &[
                (C, Ok(b"*1\r\n$4\r\nPING\r\n")),
                (S, Ok(b"+PONG\r\n")),
                (C, Ok(b"*1\r\n$4\r\nPINGxx garbage")),
                (S, Ok(b"whatever")),
            ],
        );
        assert_eq!(c.exchanges.len(), 2);
        assert_eq!(summaries(&c)[0], (Some("PING"), Some("+PONG")));
        assert!(
            c.notes[0].contains("bulk string not followed by CR LF"),
            "{:?}",
            c.notes
        );
        assert!(c.notes[0].ends_with("from there on, paired by turns"));
        assert_eq!(c.exchanges[1].response_preview, "whatever");
    }

    #[test]
    fn a_line_longer_than_max_message_is_streamed_and_counted() {
        let c = run(
            FramingChoice::Line,
            8,
            &[
                (C, Ok(b"0123456789")),
                (C, Ok(b"abcdef\nok\n")),
                (S, Ok(b"yes\n")),
            ],
        );
        assert_eq!(
            reqs(&c),
            [
                ("0123456789abcdef".into(), 16, false),
                ("ok".into(), 2, false)
            ]
        );
        assert_eq!(c.exchanges[0].response_preview, "yes");
        assert_eq!(c.exchanges[0].request_time, Timestamp(2000));
    }

    #[test]
    fn a_line_in_many_segments_is_one_split_message() {
        let line: Vec<u8> = [b'z'; 999].iter().chain(b"\n").copied().collect();
        let chunks: Vec<(Side, Result<&[u8], u64>)> = line.chunks(10).map(|c| (C, Ok(c))).collect();
        let c = run(FramingChoice::Line, 2000, &chunks);
        assert_eq!(c.exchanges.len(), 1);
        assert_eq!(c.exchanges[0].request_bytes, 999);
        assert_eq!(c.exchanges[0].request_time, Timestamp(100_000));
        let p = &c.recv_pitfalls[..];
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].kind, p[0].count), (PitfallKind::Split, 100));
    }

    #[test]
    fn a_length_message_longer_than_max_message_is_streamed_and_counted() {
        let big = len_msg(&[b'x'; 30]);
        let next = len_msg(b"ok");
        let c = run(
            FramingChoice::Length,
            8,
            &[
                (C, Ok(&big[..10])),
                (C, Ok(&[&big[10..], &next[..]].concat())),
            ],
        );
        assert_eq!(
            reqs(&c),
            [
                ("xxxxxxxxxxxxxxxxxxxx…".into(), 30, false),
                ("ok".into(), 2, false)
            ]
        );
    }

    #[test]
    fn a_gap_inside_a_length_message_keeps_the_boundaries() {
        let m = len_msg(b"0123456789");
        let next = len_msg(b"ok");
        let c = run(
            FramingChoice::Length,
            100,
            &[
                (C, Ok(&m[..6])),
                (C, Err(4)),
                (C, Ok(&[&m[10..], &next[..]].concat())),
            ],
        );
        assert_eq!(
            reqs(&c),
            [
                ("01[4 bytes missing]…".into(), 10, true),
                ("ok".into(), 2, false)
            ]
        );
        assert!(c.notes.is_empty());
    }

    #[test]
    fn a_gap_hiding_a_length_prefix_loses_the_burst_but_not_the_next() {
        let a = len_msg(b"first");
        let b = len_msg(b"second");
        let c = len_msg(b"third");
        let conn = run(
            FramingChoice::Length,
            100,
            &[
                (C, Ok(&a)),
                (C, Err(3)),
                (C, Ok(&b[3..])),
                (S, Ok(&len_msg(b"r1"))),
                (C, Ok(&c)),
                (S, Ok(&len_msg(b"r2"))),
            ],
        );
        assert_eq!(
            reqs(&conn),
            [
                ("first".into(), 5, false),
                ("[3 bytes missing]…".into(), 10, true),
                ("third".into(), 5, false)
            ]
        );
        assert_eq!(conn.exchanges[0].response_preview, "r1");
        assert_eq!(conn.exchanges[1].response_preview, "r2");
        assert_eq!(conn.exchanges[2].response_bytes, 0);
        assert_eq!(conn.notes.len(), 1);
        assert!(conn.notes[0].contains("client"), "{}", conn.notes[0]);
    }

    #[test]
    fn a_message_cut_by_the_end_of_the_stream_is_incomplete() {
        let c = run(FramingChoice::Line, 100, &[(C, Ok(b"done\nhalf"))]);
        assert_eq!(
            reqs(&c),
            [("done".into(), 4, false), ("half".into(), 4, true)]
        );
        let c = run(
            FramingChoice::Length,
            100,
            &[(C, Ok(&len_msg(b"abcdef")[..7]))],
        );
        assert_eq!(reqs(&c), [("abc".into(), 3, true)]);
    }

    #[test]
    fn auto_waits_for_both_first_bursts() {
        // The client's first burst alone looks like lines, but the server
        // answers in binary: turn-taking.
        let c = run(
            FramingChoice::Auto,
            100,
            &[
                (C, Ok(b"hi\n")),
                (S, Ok(b"\x00\x01")),
                (C, Ok(b"again\n")),
                (S, Ok(b"\x02")),
            ],
        );
        assert_eq!(c.framing, Framing::Raw);
        assert_eq!(
            reqs(&c),
            [("hi\\n".into(), 3, false), ("again\\n".into(), 6, false)]
        );
        assert_eq!(c.exchanges[1].response_preview, "\\x02");
    }

    #[test]
    fn auto_decides_on_a_long_first_burst_once_the_window_is_full() {
        let line = [b'y'; 999]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let chunks: Vec<(Side, Result<&[u8], u64>)> =
            (0..100).map(|_| (C, Ok(&line[..]))).collect();
        let c = run(FramingChoice::Auto, 2000, &chunks);
        assert_eq!(c.framing, Framing::Line);
        assert_eq!(c.exchanges.len(), 100);
        assert!(
            c.exchanges
                .iter()
                .all(|e| e.request_bytes == 999 && !e.incomplete)
        );
    }

    #[test]
    fn auto_decides_at_the_end_of_a_short_connection() {
        let c = run(FramingChoice::Auto, 100, &[(C, Ok(b"only\n"))]);
        assert_eq!(c.framing, Framing::Line);
        assert_eq!(reqs(&c), [("only".into(), 4, false)]);
    }
}
