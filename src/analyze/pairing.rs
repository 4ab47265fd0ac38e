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

use super::model::{Connection, Exchange, Frames, PacketRecord, PitfallKind, RecvPitfall, Side};
use super::reassembly::{Chunk, ChunkData};
use crate::protocol::Framing;
use crate::protocol::app::{
    self, Answer, AppMessage, AppProtocol, Direction, Kind, Pairing, Session,
};

/// Most bytes held per connection while `auto` decides on a framing.
pub(crate) const DETECT_WINDOW: usize = 64 * 1024;

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

mod decoder;
mod detect;
mod exchange;
mod parked;

pub(crate) use decoder::PairLimits;
use decoder::{Decoder, Message};
use detect::detect_reason;
pub use detect::{Sample, detect};
use exchange::{answer, blank_exchange};

/// Messages of one side sharing a segment, for `merged` pitfalls.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Copy)]
struct MergeGroup {
    #[borsh(
        serialize_with = "crate::analyze::parked_form::write_frame",
        deserialize_with = "crate::analyze::parked_form::read_frame"
    )]
    packet: u64,
    first: u64,
    count: u32,
}

/// One held event while `auto` has not decided yet.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug)]
struct Held {
    side: Side,
    /// Where its bytes are in the held buffer; `None` for missing bytes.
    data: Option<std::ops::Range<usize>>,
    missing: u64,
    pkt: PacketRecord,
}

#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug)]
enum Mode {
    /// `auto`, not decided yet.
    Detecting {
        held: Vec<Held>,
        /// The bytes of every held chunk, one after the other (one buffer,
        /// not one allocation per chunk).
        #[borsh(
            serialize_with = "crate::analyze::parked_form::write_bytes",
            deserialize_with = "crate::analyze::parked_form::read_bytes"
        )]
        buf: Vec<u8>,
        bytes: usize,
        /// Bursts seen so far (counted up to 3): runs of chunks of one side.
        bursts: usize,
    },
    /// Line or length framing, one decoder per side (client, server).
    Framed(#[borsh(deserialize_with = "crate::analyze::parked_form::boxed")] Box<[Decoder; 2]>),
    /// Turn-taking: the open burst of each side.
    Turns(
        #[borsh(deserialize_with = "crate::analyze::parked_form::boxed")] Box<[Option<Message>; 2]>,
    ),
    /// An application protocol's codec (`protocol::app`).
    App(#[borsh(deserialize_with = "crate::analyze::parked_form::boxed")] Box<AppMode>),
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

/// Pairs the messages of one connection into exchanges, writing them into
/// its [`Connection`].
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug)]
pub(crate) struct Pairer {
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
            // Nothing allocated before the first byte: a connection that
            // never carries data (a SYN flood) costs no buffer.
            (None, None) => Mode::Detecting {
                held: Vec::new(),
                buf: Vec::new(),
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

    /// Exchanges of the connection that are settled: those before the
    /// first one still waiting for its response. Nothing changes them any
    /// more.
    pub fn answered(&self) -> usize {
        self.unanswered
    }

    /// Bytes held while detecting, or buffered in decoders.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        match &self.mode {
            Mode::Detecting { bytes, .. } => *bytes,
            Mode::Framed(d) => d[0].buf.len() + d[1].buf.len(),
            Mode::Turns(_) | Mode::App(_) => 0,
        }
    }

    /// Bytes this pairer holds on the heap, as allocated (for the flow
    /// tracker's memory budget; an estimate for the application codecs).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.scratch.capacity() * size_of::<Message>()
            + match &self.mode {
                Mode::Detecting { held, buf, .. } => {
                    held.capacity() * size_of::<Held>() + buf.capacity()
                }
                Mode::Framed(d) => {
                    size_of::<[Decoder; 2]>()
                        + d.iter()
                            .map(|d| {
                                d.buf.capacity()
                                    + d.runs.capacity() * size_of::<decoder::Run>()
                                    + d.streaming
                                        .as_ref()
                                        .map_or(0, |_| size_of::<(decoder::Until, Message)>())
                            })
                            .sum::<usize>()
                }
                Mode::Turns(_) => size_of::<[Option<Message>; 2]>() + 128,
                Mode::App(_) => size_of::<AppMode>() + 512,
            }
    }

    /// Gives back the spare room of its buffers, keeping everything they
    /// hold: for an idle connection, under memory pressure.
    pub(crate) fn shrink(&mut self) {
        self.scratch.shrink_to_fit();
        match &mut self.mode {
            Mode::Detecting { held, buf, .. } => {
                held.shrink_to_fit();
                buf.shrink_to_fit();
            }
            Mode::Framed(d) => d.iter_mut().for_each(Decoder::shrink),
            Mode::Turns(_) => {}
            Mode::App(a) => a.early.shrink_to_fit(),
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
            if held.capacity() == 0 {
                // Room for the first bursts of a typical text exchange, so
                // they do not grow the buffers chunk by chunk.
                held.reserve(4);
                buf.reserve(256);
            }
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
                pkt: chunk.pkt,
            });
            if *bursts >= 3 || *bytes >= DETECT_WINDOW {
                self.decide(conn, false);
            }
            return;
        }
        self.process(side, &chunk.data, &chunk.pkt, conn);
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
                done[p.index()] = true;
            }
            prev = Some(h.side);
            let s = h.side.index();
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
            self.process(h.side, &data, &h.pkt, conn);
        }
    }

    fn process(
        &mut self,
        side: Side,
        data: &ChunkData<'_>,
        pkt: &PacketRecord,
        conn: &mut Connection,
    ) {
        let time = pkt.time;
        if let Some(prev) = self.last_side
            && prev != side
        {
            self.burst_end(prev, conn);
        }
        self.last_side = Some(side);
        let mut out = std::mem::take(&mut self.scratch);
        match &mut self.mode {
            Mode::Framed(dec) => {
                let d = &mut dec[side.index()];
                match data {
                    ChunkData::Bytes(b) => d.push(b, pkt, &mut out),
                    ChunkData::Missing(n) => d.missing(*n, time, &mut out),
                }
                if d.lost_sync && !self.noted_lost_sync {
                    self.noted_lost_sync = true;
                    conn.notes.push(format!(
                        "bytes missing from the {} stream hid where length-prefixed messages \
                         end; the rest of each such burst counts as one incomplete message",
                        side.name()
                    ));
                }
            }
            Mode::Turns(open) => {
                let msg = open[side.index()].get_or_insert_with(|| Message::new(time));
                match data {
                    ChunkData::Bytes(b) => {
                        msg.touch(pkt, self.limits.packets);
                        msg.add(b, self.limits.preview_len);
                    }
                    ChunkData::Missing(n) => msg.add_missing(*n, time),
                }
            }
            Mode::App(_) => {
                self.scratch = out;
                return self.process_app(side, data, pkt, conn);
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
        pkt: &PacketRecord,
        conn: &mut Connection,
    ) {
        let time = pkt.time;
        let keep = self.limits.packets;
        let Mode::App(a) = &mut self.mode else {
            return;
        };
        let s = side.index();
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
                            msg.touch(pkt, keep);
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
            self.process(side, &rest, pkt, conn);
        }
    }

    /// A whole message of `side` read by an application protocol's codec.
    fn app_message(&mut self, side: Side, msg: Message, m: AppMessage, conn: &mut Connection) {
        let index = self.index[side.index()];
        self.index[side.index()] += 1;
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
                ex.request_frames = msg.frames.clone();
                ex.request_end_seq = msg.end_seq;
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
            Mode::Framed(dec) => dec[side.index()].burst_end(&mut out),
            Mode::Turns(open) => out.extend(open[side.index()].take()),
            Mode::App(_) | Mode::Detecting { .. } => {}
        }
        for msg in out.drain(..) {
            self.message(side, msg, conn);
        }
        self.scratch = out;
    }

    /// A whole message (or turn) from `side`.
    fn message(&mut self, side: Side, mut msg: Message, conn: &mut Connection) {
        let index = self.index[side.index()];
        self.index[side.index()] += 1;
        if matches!(self.mode, Mode::Framed(_)) {
            self.pitfalls(side, index, &msg, conn);
        }
        let preview_len = self.limits.preview_len;
        match side {
            Side::Client => {
                // Written out, not `..Exchange::blank()`: the update syntax
                // costs some 35 instructions a request here (callgrind).
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
                    request_frames: std::mem::take(&mut msg.frames),
                    response_frames: Frames::default(),
                    request_ack_time: None,
                    request_end_seq: msg.end_seq,
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
                        conn.exchanges.push(Exchange::blank(msg.first_time));
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
                ex.response_frames = std::mem::take(&mut msg.frames);
            }
        }
    }

    fn pitfalls(&mut self, side: Side, index: u64, msg: &Message, conn: &mut Connection) {
        let s = side.index();
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
        if let Some(g) = self.merge[side.index()].take()
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
            Some(s) => [s, s.other()],
            None => [Side::Client, Side::Server],
        };
        for side in order {
            let mut out = std::mem::take(&mut self.scratch);
            match &mut self.mode {
                Mode::Framed(dec) => {
                    let d = &mut dec[side.index()];
                    d.burst_end(&mut out);
                    d.finish(&mut out);
                }
                Mode::Turns(open) => out.extend(open[side.index()].take()),
                Mode::App(a) => {
                    let open = a.open[side.index()].take();
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
            .sort_by_key(|p| (p.from.index(), p.message));
        self.scratch = Vec::new();
    }
}

#[cfg(test)]
mod tests;
