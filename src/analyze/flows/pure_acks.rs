//! Pure ACKs (no data, SYN, FIN or RST): counted on the connection, the
//! teardown's last one kept apart, and every one kept with `--acks`.

use super::{Options, Slot};
use crate::analyze::model::{AckEvent, Connection, MAX_ACKS_KEPT, Side, Timestamp};
use crate::analyze::segment::TcpSegment;

/// Counts a pure ACK (`--acks` keeps it too); the teardown's last one has a
/// field of its own, and so has the handshake's (`handshake.ack`).
pub(super) fn count_pure_ack(
    slot: &Slot,
    conn: &mut Connection,
    opts: &Options,
    side: Side,
    seg: &TcpSegment<'_>,
    last_ack: bool,
    handshake_ack_before: Option<Timestamp>,
) {
    let isn = match side {
        Side::Client => slot.server_isn,
        Side::Server => slot.client_isn,
    };
    let event = AckEvent {
        from: side,
        time: seg.time,
        ack: isn.map(|isn| seg.ack.wrapping_sub(isn)),
    };
    let handshake_ack = conn.handshake.as_ref().and_then(|h| h.ack);
    if last_ack && conn.last_ack.is_none() {
        conn.last_ack = Some(event);
    } else if handshake_ack_before.is_some() || handshake_ack.is_none() {
        conn.pure_acks += 1;
    }
    if opts.keep_acks && conn.acks.len() < MAX_ACKS_KEPT {
        conn.acks.push(event);
    }
}
