//! What the flow tracker owes its caller: connections that are over,
//! handed out in the order they opened, except that a connection still
//! open never holds back more than [`REORDER_WINDOW`] finished ones (or
//! [`REORDER_BYTES`] of them, or any for longer than [`REORDER_DELAY`] of
//! capture time): past that the finished ones go out ahead of it, so one
//! long-lived connection holds back neither the output nor the memory of
//! the connections that finished after it (Zeek writes its `conn.log` in
//! the order connections end, for the same reason).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::super::event::Event;
use super::super::model::{Connection, Timestamp};

/// Most finished connections held back, waiting for an older one still open.
pub(super) const REORDER_WINDOW: usize = 1024;
/// Most bytes (as [`super::memory`] estimates them) of finished connections
/// held back.
pub(super) const REORDER_BYTES: usize = 16 << 20;
/// Longest (capture time) a finished connection waits for an older one.
pub(super) const REORDER_DELAY: Duration = Duration::from_secs(5);
const REORDER_DELAY_NS: u64 = REORDER_DELAY.as_secs() * 1_000_000_000;

/// A connection over and not taken yet.
#[derive(Debug)]
pub(super) struct Ready {
    pub(super) conn: Box<Connection>,
    /// Its estimated bytes.
    bytes: usize,
    /// Capture time when it was over.
    since: Timestamp,
}

/// Connections that are over and not taken yet, the order they are owed
/// in, and the events of exchanges settled (when asked for).
#[derive(Debug, Default)]
pub(super) struct Output {
    /// Over and not taken yet, by connection number.
    pub(super) ready: BTreeMap<u32, Ready>,
    /// Bytes of the connections in `ready`.
    ready_bytes: usize,
    /// Per connection number from `open_base`: still open (not in `ready`
    /// nor taken). The front is always `true`: its number is the oldest
    /// connection still open.
    open: VecDeque<bool>,
    open_base: u32,
    /// Connections seen so far (the last number given).
    pub(super) seen: u32,
    /// [`Event::Opened`] and [`Event::Exchange`] not taken yet; `None`
    /// when they are not asked for.
    pub(super) events: Option<VecDeque<Event>>,
    /// Queue [`Event::Segment`] too.
    pub(super) segments: bool,
}

impl Output {
    /// Number of a new connection, counted as open.
    pub(super) fn open_next(&mut self) -> u32 {
        self.seen = self.seen.saturating_add(1);
        if self.open.is_empty() {
            self.open_base = self.seen;
        }
        self.open.push_back(true);
        self.seen
    }

    /// A connection is over: it waits in `ready` to be taken.
    pub(super) fn finished(&mut self, conn: Box<Connection>, bytes: usize, now: Timestamp) {
        let id = conn.id;
        if let Some(i) = id.checked_sub(self.open_base)
            && let Some(open) = self.open.get_mut(i as usize)
        {
            *open = false;
        }
        while self.open.front() == Some(&false) {
            self.open.pop_front();
            self.open_base += 1;
        }
        self.ready_bytes += bytes;
        self.ready.insert(
            id,
            Ready {
                conn,
                bytes,
                since: now,
            },
        );
    }

    /// Whether [`Output::take`] has a connection to hand over at capture
    /// time `now`.
    pub(super) fn has_next(&self, now: Timestamp) -> bool {
        if self.ready.is_empty() {
            return false; // the usual case, after most packets
        }
        let Some((&id, first)) = self.ready.first_key_value() else {
            return false;
        };
        let in_order = self.open.is_empty() || id < self.open_base;
        in_order
            || self.ready.len() > REORDER_WINDOW
            || self.ready_bytes > REORDER_BYTES
            || now.0.saturating_sub(first.since.0) > REORDER_DELAY_NS
    }

    /// The next connection owed at capture time `now` (see the module).
    pub(super) fn take(&mut self, now: Timestamp) -> Option<Box<Connection>> {
        if !self.has_next(now) {
            return None;
        }
        let (_, first) = self.ready.pop_first()?;
        self.ready_bytes -= first.bytes;
        Some(first.conn)
    }

    /// The first connection not taken yet, whatever holds it back.
    pub(super) fn take_first(&mut self) -> Option<Box<Connection>> {
        let (_, first) = self.ready.pop_first()?;
        self.ready_bytes -= first.bytes;
        Some(first.conn)
    }

    /// Every connection not taken yet, leaving none.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = Box<Connection>> + use<> {
        self.ready_bytes = 0;
        std::mem::take(&mut self.ready)
            .into_values()
            .map(|r| r.conn)
    }
}
