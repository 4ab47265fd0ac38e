//! The three-way handshake: the client's SYN and the server's SYN-ACK
//! anchor the two streams and time the round trip; the client's ACK of
//! the SYN-ACK completes it.

use super::super::model::{Connection, Handshake, Side};
use super::super::segment::TcpSegment;
use super::Flow;

/// A SYN or SYN-ACK: anchors the streams and times the handshake.
pub(super) fn syn(
    flow: &mut Flow,
    client_isn: &mut Option<u32>,
    conn: &mut Connection,
    side: Side,
    seg: &TcpSegment<'_>,
) {
    match (side, seg.flags.ack) {
        (Side::Client, false) => {
            client_isn.get_or_insert(seg.seq);
            flow.streams[0].syn(seg.seq);
            flow.last_syn = Some(seg.time);
            if conn.handshake.is_none() && flow.server_isn.is_none() {
                conn.handshake = Some(Handshake {
                    syn: seg.time,
                    syn_ack: None,
                    ack: None,
                    rtt_us: None,
                });
            }
        }
        (Side::Server, true) => {
            if flow.server_isn.is_some() {
                return;
            }
            flow.server_isn = Some(seg.seq);
            flow.streams[1].syn(seg.seq);
            let isn = seg.ack.wrapping_sub(1);
            if client_isn.is_none() {
                *client_isn = Some(isn);
                flow.streams[0].syn(isn);
            }
            match &mut conn.handshake {
                Some(h) => {
                    h.syn_ack = Some(seg.time);
                    h.rtt_us = flow.last_syn.map(|t| seg.time.micros_since(t));
                }
                None => conn.notes.push(format!(
                    "the SYN was not captured (SYN-ACK at packet #{}), so no handshake is shown",
                    seg.number
                )),
            }
        }
        // A SYN the wrong way round (simultaneous open): only anchors.
        _ => flow.streams[side.index()].syn(seg.seq),
    }
}

/// The client's ACK of the SYN-ACK completes the handshake.
pub(super) fn handshake_ack(flow: &Flow, conn: &mut Connection, seg: &TcpSegment<'_>) {
    if let (Some(h), Some(isn)) = (&mut conn.handshake, flow.server_isn)
        && h.syn_ack.is_some()
        && h.ack.is_none()
        && seg.ack == isn.wrapping_add(1)
    {
        h.ack = Some(seg.time);
    }
}
