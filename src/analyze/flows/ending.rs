//! How a connection leaves the flow tracker: its live state flushed
//! (holes become gaps, unfinished messages are ended), its close events,
//! its state (closed, open, timed out, evicted), and its hand-over to the
//! output.

use super::super::model::{ConnState, Connection, Side, Timestamp};
use super::output::Output;
use super::{Analyzer, Flow, Slot, deliver, memory};

/// The state a connection leaves the analyzer in: `ended` (timed out,
/// evicted) if set, else closed when a FIN or RST was seen, else open.
pub(super) fn state_of(c: &Connection, ended: ConnState) -> ConnState {
    match ended {
        ConnState::TimedOut | ConnState::Evicted => ended,
        _ if c.close.is_some() => ConnState::Closed,
        _ => ConnState::Open,
    }
}

/// Moves the connection of a settled (or ended) slot to the output.
pub(super) fn finish_slot(slot: &mut Slot, out: &mut Output, now: Timestamp) {
    if let Some(mut conn) = slot.conn.take() {
        if let Some(ended) = slot.ended {
            conn.state = ended;
        }
        let bytes = memory::conn_bytes(&conn);
        out.finished(conn, bytes, now);
    }
}

/// Ends the live flow of `slot` (if any) as at the end of the capture.
pub(super) fn close_flow(slot: &mut Slot, time: Timestamp) {
    if let (Some(flow), Some(conn)) = (slot.flow.take(), slot.conn.as_deref_mut()) {
        finalize(*flow, conn, time, 0);
    }
}

/// Ends the live connection of `slot`, quiet for more than its timeout of
/// `limit` ns of capture time: flushed as at the end of a capture, noted,
/// and marked timed out.
pub(super) fn time_out(slot: &mut Slot, limit: u64) {
    let Some(flow) = slot.flow.take() else {
        return;
    };
    slot.ended = Some(ConnState::TimedOut);
    if let Some(conn) = slot.conn.as_deref_mut() {
        finalize(*flow, conn, slot.last_time, 0);
        conn.notes.push(format!(
            "no packet for more than {} s of capture time (the inactivity timeout): \
             reported as timed out, with what was seen",
            limit / 1_000_000_000
        ));
    }
}

/// Ends a connection: gives up on its holes, ends its messages, records its
/// byte counts and frees its buffers (by consuming the flow).
pub(super) fn finalize(mut flow: Flow, conn: &mut Connection, time: Timestamp, packet: u64) {
    let Flow {
        streams,
        pairer,
        request_acks,
        ..
    } = &mut flow;
    for side in Side::BOTH {
        streams[side.index()].flush(time, packet, &mut |chunk| {
            deliver(pairer, conn, side, &chunk)
        });
    }
    pairer.finish(conn);
    request_acks.settle(conn);
    conn.bytes_client_to_server = streams[0].bytes();
    conn.bytes_server_to_client = streams[1].bytes();
}

impl Analyzer {
    /// Once the capture is read: the next connection not taken yet, in the
    /// order they opened, each still open flushed as [`Analyzer::finish`]
    /// flushes it, but only when its turn comes, so that they are not all
    /// flushed (and grown) in memory at once. Take them until `None`, then
    /// call [`Analyzer::finish`] for the rest of the analysis (it then
    /// lists no connection).
    pub fn next_remaining(&mut self) -> Option<Connection> {
        if self.remaining.is_none() {
            let mut open: Vec<_> = self
                .table
                .iter()
                .filter(|(_, slot)| slot.conn.is_some())
                .map(|(k, slot)| (slot.id, k.clone()))
                .collect();
            open.extend(self.parking.list());
            // Highest first, taken from the end.
            open.sort_unstable_by_key(|&(id, _)| std::cmp::Reverse(id));
            self.remaining = Some(open);
        }
        let mut c = loop {
            let order = self.remaining.as_mut()?;
            let ready = self.out.ready.first_key_value().map(|(&id, _)| id);
            let from_table = order
                .last()
                .is_some_and(|&(id, _)| ready.is_none_or(|r| id < r));
            if !from_table {
                break self.out.take_first()?;
            }
            let (_, k) = order.pop()?;
            // Parked ones are taken back only now, one at a time.
            let mut parked = None;
            let slot = match self.table.get_mut(&k) {
                Some(slot) => {
                    self.tracked_bytes -= slot.bytes;
                    slot.bytes = 0;
                    slot
                }
                // None: counted as lost, in a warning.
                None => match parked.insert(self.parking.take(&k)) {
                    Some(slot) => slot,
                    None => continue,
                },
            };
            if let Some(time) = slot.conn.as_ref().map(|c| c.last_seen) {
                close_flow(slot, time);
            }
            if let Some(c) = slot.conn.take() {
                break c;
            }
        };
        c.state = state_of(&c, c.state);
        self.note_framing(&c);
        Some(*c)
    }
}
