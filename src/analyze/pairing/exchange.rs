//! Exchanges as an application protocol's codec fills them: a blank one
//! for a request or an unpaired answer, and a server message recorded as
//! (part of) its answer.

use super::decoder::Message;
use crate::analyze::model::{Connection, Exchange, Timestamp};
use crate::protocol::app::{AppMessage, Kind};

/// Appends an exchange with nothing in it yet; returns its index.
pub(super) fn blank_exchange(conn: &mut Connection, time: Timestamp) -> usize {
    conn.exchanges.push(Exchange::blank(time));
    conn.exchanges.len() - 1
}

/// Records a server message in the exchange it answers (`paired`: the
/// exchange has a request, so latencies mean something).
pub(super) fn answer(
    ex: &mut Exchange,
    msg: &Message,
    m: &AppMessage,
    preview_len: usize,
    paired: bool,
) {
    ex.incomplete |= msg.incomplete() || !m.complete;
    ex.error |= m.error;
    ex.response_bytes += msg.len;
    ex.response_frames.extend(&msg.frames);
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
