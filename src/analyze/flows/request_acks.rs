//! When the server acknowledged each request: the first server segment
//! whose acknowledgment number covers the request's last byte. This is the
//! ACK half of an exchange's network/server split
//! ([`Connection::latency_split`]).
//!
//! Requests become exchanges only when their framing is known, which with
//! `auto` can be after the server's ACK was seen; so the ACKs that moved
//! forward are kept (a bounded few) until the requests they cover appear.

use std::collections::VecDeque;

use crate::analyze::model::{Connection, Timestamp};

/// Acknowledgments kept while waiting for the requests they cover.
const MAX_PENDING: usize = 64;

/// The server's acknowledgments, matched to the connection's requests.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Default)]
pub(super) struct RequestAcks {
    /// Relative acknowledgment numbers that moved forward, with their times,
    /// not yet matched to a request.
    pending: VecDeque<(u32, Timestamp)>,
    /// Exchanges before this one are settled (matched or skipped).
    next: usize,
    /// Exchanges of the connection at the last try, and whether an
    /// acknowledgment came since: nothing new, nothing to try.
    seen: usize,
    acked: bool,
}

impl RequestAcks {
    /// Gives back the spare room of its queue; what it holds stays.
    pub(super) fn shrink(&mut self) {
        self.pending.shrink_to_fit();
    }

    /// Bytes it holds on the heap, as allocated.
    pub(super) fn heap_bytes(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<(u32, Timestamp)>()
    }

    /// A server segment acknowledging up to relative sequence number `ack`
    /// (the client's ISN being 0).
    pub(super) fn server_ack(&mut self, ack: u32, time: Timestamp) {
        let forward = self
            .pending
            .back()
            .is_none_or(|&(last, _)| (ack.wrapping_sub(last) as i32) > 0);
        if forward {
            self.acked = true;
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back((ack, time));
        }
    }

    /// Gives each new request of `conn` the time of the first kept
    /// acknowledgment covering it, captured after the request was.
    #[inline]
    pub(super) fn settle(&mut self, conn: &mut Connection) {
        // Called for every segment: nearly always nothing new.
        let len = conn.exchanges.len();
        if (self.acked || len != self.seen) && self.next < len && !self.pending.is_empty() {
            self.match_requests(conn);
        }
        self.seen = len;
        self.acked = false;
    }

    fn match_requests(&mut self, conn: &mut Connection) {
        while let Some(ex) = conn.exchanges.get_mut(self.next) {
            let Some(end) = ex.request_end_seq.filter(|_| ex.request_bytes > 0) else {
                self.next += 1;
                continue;
            };
            let covering = self.pending.iter().position(|&(ack, time)| {
                (ack.wrapping_sub(end) as i32) >= 0 && time >= ex.request_time
            });
            let Some(i) = covering else {
                return;
            };
            ex.request_ack_time = Some(self.pending[i].1);
            // Later requests end later: older acknowledgments cannot cover them.
            self.pending.drain(..i);
            self.next += 1;
        }
    }
}
