//! The event detector's parked form (see `flows::parking`), written by
//! hand rather than derived: its sequence numbers are written relative to
//! an anchor of their direction (the initial sequence number, or the
//! highest sent), so that a connection's dozen of them take a few bytes
//! that compress, not four random ones each (about 30 bytes less per
//! parked connection, compressed).

use std::io::{Read, Result, Write};

use borsh::{BorshDeserialize, BorshSerialize};

use super::{Direction, EventDetector};
use crate::analyze::model::Timestamp;
use crate::analyze::parked_form;

impl EventDetector {
    /// The anchors of the connection's sequence numbers (client, server),
    /// for its parked form.
    pub(crate) fn seq_anchors(&self) -> [u32; 2] {
        self.dirs.each_ref().map(anchor)
    }
}

/// The anchor of a direction's sequence numbers.
fn anchor(d: &Direction) -> u32 {
    d.isn.or(d.next_seq).unwrap_or(0)
}

/// `seq` relative to `base`, and back.
fn rel(seq: Option<u32>, base: u32) -> Option<u32> {
    seq.map(|s| s.wrapping_sub(base))
}

fn abs(seq: Option<u32>, base: u32) -> Option<u32> {
    seq.map(|s| s.wrapping_add(base))
}

fn write_direction<W: Write>(d: &Direction, own: u32, other: u32, w: &mut W) -> Result<()> {
    (rel(d.isn, own), rel(d.next_seq, own), d.next_seq_time).serialize(w)?;
    (
        rel(d.max_to_be_acked, own),
        rel(d.last_ack, other),
        d.last_ack_time,
    )
        .serialize(w)?;
    (d.window, d.scale, d.syn_seen, d.first_syn, d.dup_acks).serialize(w)?;
    (d.last_was_probe, d.last_was_keep_alive, d.recent_next).serialize(w)?;
    let recent: Vec<(u32, u32, Timestamp)> = d
        .recent
        .iter()
        .map(|&(start, end, time)| (start.wrapping_sub(own), end.wrapping_sub(own), time))
        .collect();
    recent.serialize(w)
}

fn read_direction<R: Read>(own: u32, other: u32, r: &mut R) -> Result<Direction> {
    let (isn, next_seq, next_seq_time): (Option<u32>, Option<u32>, Timestamp) =
        BorshDeserialize::deserialize_reader(r)?;
    let (max_to_be_acked, last_ack, last_ack_time): (Option<u32>, Option<u32>, Timestamp) =
        BorshDeserialize::deserialize_reader(r)?;
    let (window, scale, syn_seen, first_syn, dup_acks) = BorshDeserialize::deserialize_reader(r)?;
    let (last_was_probe, last_was_keep_alive, recent_next) =
        BorshDeserialize::deserialize_reader(r)?;
    let recent: Vec<(u32, u32, Timestamp)> = BorshDeserialize::deserialize_reader(r)?;
    Ok(Direction {
        isn: abs(isn, own),
        next_seq: abs(next_seq, own),
        next_seq_time,
        max_to_be_acked: abs(max_to_be_acked, own),
        last_ack: abs(last_ack, other),
        last_ack_time,
        window,
        scale,
        syn_seen,
        first_syn,
        dup_acks,
        last_was_probe,
        last_was_keep_alive,
        recent: recent
            .into_iter()
            .map(|(start, end, time)| (start.wrapping_add(own), end.wrapping_add(own), time))
            .collect(),
        recent_next,
    })
}

impl BorshSerialize for EventDetector {
    fn serialize<W: Write>(&self, w: &mut W) -> Result<()> {
        let [client, server] = &self.dirs;
        let [c, s] = self.seq_anchors();
        parked_form::write_seq(c, w)?;
        parked_form::write_seq(s, w)?;
        write_direction(client, c, s, w)?;
        write_direction(server, s, c, w)?;
        (self.syn_time, self.initial_rtt_ns, self.syn_ack_seen).serialize(w)
    }
}

impl BorshDeserialize for EventDetector {
    fn deserialize_reader<R: Read>(r: &mut R) -> Result<Self> {
        let (c, s) = (parked_form::read_seq(r)?, parked_form::read_seq(r)?);
        let client = read_direction(c, s, r)?;
        let server = read_direction(s, c, r)?;
        let (syn_time, initial_rtt_ns, syn_ack_seen) = BorshDeserialize::deserialize_reader(r)?;
        Ok(EventDetector {
            dirs: [client, server],
            syn_time,
            initial_rtt_ns,
            syn_ack_seen,
        })
    }
}
