//! What `reqresp watch` knows, updated from the pipeline's events: every
//! connection on screen with its status, its ladder model and its latest
//! packets, the TCP event strip, the latency samples of the sparkline and
//! the counters. Bounded: at most [`MAX_CONNECTIONS`] connections (the
//! oldest finished ones go first), [`MAX_EXCHANGES`] exchanges and
//! [`MAX_PACKETS`] packets per connection; the analyzer's own timeouts end
//! connections that go quiet.
//!
//! While a connection is open its model is built here from the events
//! (handshake and closes from the segments, exchanges and TCP events as
//! the analyzer settles them); when the analyzer hands out the connection
//! whole ([`Event::Closed`]) that record replaces it, so what is shown in
//! the end is exactly what `analyze` reports.

use std::collections::{BTreeMap, VecDeque};

use crate::analyze::Event;
use crate::analyze::event::SegmentSeen;
use crate::analyze::model::{
    CloseKind, ConnState, Connection, Exchange, Handshake, Side, TcpEvent, Timestamp,
};
use crate::report::stats::SummaryBuilder;

/// Connections kept on screen.
pub const MAX_CONNECTIONS: usize = 256;
/// Exchanges kept per connection for its ladder: the newest, between this
/// and twice as many.
pub const MAX_EXCHANGES: usize = 400;
/// TCP events kept per connection for its ladder.
pub const MAX_CONN_EVENTS: usize = 200;
/// Packets kept per connection for the detail view (the newest).
pub const MAX_PACKETS: usize = 1024;
/// TCP events kept in the strip.
pub const MAX_STRIP: usize = 64;
/// Latencies kept for the sparkline.
pub const MAX_LATENCIES: usize = 240;

/// Where a connection is, as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// SYN seen, handshake not complete.
    Handshake,
    /// Handshake complete (or not seen), no FIN or RST yet.
    Open,
    /// A FIN was seen; the other side may still send.
    Closing,
    /// Both sides closed with FIN.
    Closed,
    /// A RST ended it.
    Reset,
    /// No packet for the inactivity timeout.
    TimedOut,
    /// Ended by the analyzer's memory budget (`--memcap`); later packets
    /// on its addresses show as a new connection.
    Evicted,
}

impl Status {
    /// The word in the connection list.
    pub fn name(self) -> &'static str {
        match self {
            Status::Handshake => "handshake",
            Status::Open => "open",
            Status::Closing => "closing",
            Status::Closed => "closed",
            Status::Reset => "reset",
            Status::TimedOut => "timed out",
            Status::Evicted => "evicted",
        }
    }
}

/// One connection on screen.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The model its ladder is drawn from (the newest [`MAX_EXCHANGES`]).
    pub model: Connection,
    /// Where it is.
    pub status: Status,
    /// The analyzer handed it out whole: the model is final.
    pub done: bool,
    /// Exchanges in all (kept or not).
    pub exchanges: u64,
    /// Exchanges left out of the model (the oldest).
    pub exchanges_hidden: u64,
    /// Latency of the newest exchange with one, in µs.
    pub last_latency_us: Option<f64>,
    /// The newest packets.
    pub packets: VecDeque<SegmentSeen>,
    /// Packets seen in all.
    pub packets_seen: u64,
}

impl Conn {
    fn new(
        id: u32,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        t: Timestamp,
    ) -> Self {
        Conn {
            model: Connection::new(id, client, server, t),
            status: Status::Open,
            done: false,
            exchanges: 0,
            exchanges_hidden: 0,
            last_latency_us: None,
            packets: VecDeque::new(),
            packets_seen: 0,
        }
    }

    /// p99 of the latencies of the exchanges kept.
    pub fn p99_us(&self) -> Option<f64> {
        let mut l: Vec<f64> = self
            .model
            .exchanges
            .iter()
            .filter_map(|e| e.latency_us)
            .filter(|l| l.is_finite())
            .collect();
        l.sort_unstable_by(f64::total_cmp);
        crate::report::stats::percentile(&l, 99.0)
    }

    /// The packet numbered `n`, if still kept.
    pub fn packet(&self, n: u64) -> Option<&SegmentSeen> {
        self.packets.iter().find(|p| p.number == n)
    }

    fn segment(&mut self, s: &SegmentSeen) {
        self.packets_seen += 1;
        if self.packets.len() == MAX_PACKETS {
            self.packets.pop_front();
        }
        self.packets.push_back(*s);
        if self.done {
            return;
        }
        let m = &mut self.model;
        m.last_seen = m.last_seen.max(s.time);
        let f = s.flags;
        match s.from {
            Side::Client => m.bytes_client_to_server += u64::from(s.payload_len),
            Side::Server => m.bytes_server_to_client += u64::from(s.payload_len),
        }
        if f.rst {
            close_event(m, s.from, CloseKind::Rst, s.time);
            self.status = Status::Reset;
            return;
        }
        match (s.from, f.syn, f.ack) {
            (Side::Client, true, false) => {
                if m.handshake.is_none() {
                    m.handshake = Some(Handshake {
                        syn: s.time,
                        syn_ack: None,
                        ack: None,
                        rtt_us: None,
                    });
                }
                self.status = Status::Handshake;
            }
            (Side::Server, true, true) => {
                if let Some(h) = &mut m.handshake
                    && h.syn_ack.is_none()
                {
                    h.syn_ack = Some(s.time);
                    h.rtt_us = Some(s.time.micros_since(h.syn));
                }
            }
            (Side::Client, false, true) => {
                if let Some(h) = &mut m.handshake
                    && h.syn_ack.is_some()
                    && h.ack.is_none()
                {
                    h.ack = Some(s.time);
                }
                if self.status == Status::Handshake {
                    self.status = Status::Open;
                }
            }
            _ => {}
        }
        if f.fin {
            close_event(m, s.from, CloseKind::Fin, s.time);
            let both = m.close.as_ref().is_some_and(|c| {
                Side::BOTH
                    .iter()
                    .all(|side| c.events.iter().any(|e| e.from == *side))
            });
            self.status = if both {
                Status::Closed
            } else {
                Status::Closing
            };
        }
    }

    fn exchange(&mut self, index: usize, exchange: Exchange) {
        if self.done || (index as u64) < self.exchanges {
            return;
        }
        self.exchanges = index as u64 + 1;
        if exchange.latency_us.is_some() {
            self.last_latency_us = exchange.latency_us;
        }
        self.model.exchanges.push(exchange);
        // Cut in halves, not one by one: a busy connection settles
        // thousands of exchanges a second.
        if self.model.exchanges.len() >= 2 * MAX_EXCHANGES {
            let cut = self.model.exchanges.len() - MAX_EXCHANGES;
            self.model.exchanges.drain(..cut);
            self.exchanges_hidden += cut as u64;
        }
    }

    /// The whole record: it replaces the model built so far, cut to the caps.
    fn closed(&mut self, mut c: Connection) {
        self.exchanges = c.exchanges.len() as u64;
        self.last_latency_us = c
            .exchanges
            .iter()
            .rev()
            .find_map(|e| e.latency_us)
            .or(self.last_latency_us);
        let hide = c.exchanges.len().saturating_sub(MAX_EXCHANGES);
        c.exchanges.drain(..hide);
        self.exchanges_hidden = hide as u64;
        let extra = c.events.len().saturating_sub(MAX_CONN_EVENTS);
        c.events.drain(..extra);
        c.recv_pitfalls.clear();
        // Draining keeps the allocation: give back the room of what was
        // hidden (a busy connection's record lists every exchange).
        c.exchanges.shrink_to_fit();
        c.events.shrink_to_fit();
        c.recv_pitfalls.shrink_to_fit();
        self.status = match &c.close {
            Some(close) if close.kind == CloseKind::Rst => Status::Reset,
            Some(_) => Status::Closed,
            None => match c.state {
                ConnState::TimedOut => Status::TimedOut,
                ConnState::Evicted => Status::Evicted,
                // The capture ended with the connection open.
                ConnState::Open | ConnState::Closed => Status::Open,
            },
        };
        self.model = c;
        self.done = true;
    }
}

/// A FIN or RST in the live model, recorded as the analyzer records them:
/// the first of each kind from each side.
fn close_event(m: &mut Connection, from: Side, kind: CloseKind, time: Timestamp) {
    let seen = m
        .close
        .as_ref()
        .is_some_and(|c| c.events.iter().any(|e| e.from == from && e.kind == kind));
    if !seen {
        m.record_close(from, kind, time);
    }
}

/// A TCP event in the strip, with its connection.
#[derive(Debug, Clone)]
pub struct StripEvent {
    /// Id of its connection.
    pub connection: u32,
    /// The event.
    pub event: TcpEvent,
}

/// Everything `reqresp watch` shows, as of the last event.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Connections on screen by id (ids grow with time).
    pub conns: BTreeMap<u32, Conn>,
    /// Connections seen in all.
    pub connections_seen: u64,
    /// The newest TCP events.
    pub strip: VecDeque<StripEvent>,
    /// The newest latencies, in µs.
    pub latencies: VecDeque<f64>,
    /// Segments analyzed.
    pub segments: u64,
    /// Exchanges settled.
    pub exchanges: u64,
    /// Capture time of the newest packet.
    pub now: Timestamp,
    /// The source ended (shown in the title).
    pub ended: bool,
    /// Capture time of the newest response shown, for the
    /// capture-to-screen delay.
    pub newest_response: Option<Timestamp>,
    /// Raised on every change, for the screen to know when to redraw.
    pub generation: u64,
    /// Totals over every connection handed out whole, for the summary.
    pub summary: SummaryBuilder,
}

impl State {
    /// Takes one event of the pipeline.
    pub fn apply(&mut self, event: Event) {
        match event {
            // Nothing changed: no new generation, no redraw.
            Event::BatchEnd => return,
            Event::Opened {
                id,
                client,
                server,
                time,
            } => {
                self.connections_seen += 1;
                self.conns.insert(id, Conn::new(id, client, server, time));
                self.evict();
            }
            Event::Segment(s) => {
                self.segments += 1;
                self.now = self.now.max(s.time);
                if let Some(c) = self.conns.get_mut(&s.connection) {
                    c.segment(&s);
                }
            }
            Event::Exchange {
                connection,
                index,
                exchange,
                ..
            } => {
                self.exchanges += 1;
                self.latency(exchange.latency_us);
                self.newest_response = exchange.response_last_time.or(self.newest_response);
                if let Some(c) = self.conns.get_mut(&connection) {
                    c.exchange(index, *exchange);
                }
            }
            Event::Tcp { connection, event } => {
                if let Some(c) = self.conns.get_mut(&connection)
                    && c.model.events.len() < MAX_CONN_EVENTS
                {
                    c.model.events.push(event.clone());
                }
                if self.strip.len() == MAX_STRIP {
                    self.strip.pop_front();
                }
                self.strip.push_back(StripEvent { connection, event });
            }
            Event::Closed(c) => self.closed(*c),
        }
        self.generation += 1;
    }

    fn closed(&mut self, c: Connection) {
        self.summary.add(&c);
        let conn = self
            .conns
            .entry(c.id)
            .or_insert_with(|| Conn::new(c.id, c.client, c.server, c.first_seen));
        // Exchanges settled only by the close were never handed out.
        let live = usize::try_from(conn.exchanges).unwrap_or(usize::MAX);
        let late: Vec<Option<f64>> = c
            .exchanges
            .iter()
            .skip(live)
            .map(|e| e.latency_us)
            .collect();
        self.exchanges += late.len() as u64;
        conn.closed(c);
        for l in late {
            self.latency(l);
        }
    }

    fn latency(&mut self, l: Option<f64>) {
        if let Some(l) = l.filter(|l| l.is_finite()) {
            if self.latencies.len() == MAX_LATENCIES {
                self.latencies.pop_front();
            }
            self.latencies.push_back(l);
        }
    }

    /// Keeps at most [`MAX_CONNECTIONS`]: the oldest finished first, else
    /// the oldest.
    fn evict(&mut self) {
        while self.conns.len() > MAX_CONNECTIONS {
            let victim = self
                .conns
                .iter()
                .find(|(_, c)| c.done)
                .or_else(|| self.conns.iter().next())
                .map(|(id, _)| *id);
            match victim {
                Some(id) => self.conns.remove(&id),
                None => break,
            };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
