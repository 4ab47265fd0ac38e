//! Answers for a service whose answers may wait ([`Service::defers`]): a
//! connection starts every request it has buffered (a booking is queued for
//! the next group commit) before it waits for any answer, then frames the
//! answers in order as they come. The bookings a client pipelined thus
//! share one commit with each other and with other connections' bookings,
//! and no thread waits for the disk.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use crate::protocol::FrameError;
use crate::protocol::connection::{Batch, Connection};
use crate::server::service::{Deferred, Service};

/// Most requests started before their answers are awaited: bounds the
/// answers held and the write buffer.
pub(crate) const MAX_STARTED: usize = 1024;

/// One request's answer: ready now, or to wait for.
enum Answer {
    Now(Vec<u8>),
    Later(Deferred),
}

/// Starts the requests buffered on `conn` (at most [`MAX_STARTED`]), then
/// queues their answers in order into its write buffer, waiting for the
/// deferred ones. On a framing error the answers to the requests before the
/// bad one are queued all the same, and the error is returned.
pub(crate) async fn answer_round<S>(
    conn: &mut Connection<S>,
    service: &dyn Service,
    peer: SocketAddr,
    requests: &mut u64,
) -> Result<Batch, FrameError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut answers = Vec::new();
    let mut failed = None;
    while answers.len() < MAX_STARTED {
        let request = match conn.next_buffered() {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        *requests += 1;
        debug!(
            %peer,
            bytes = request.len(),
            request = %request[..request.len().min(80)].escape_ascii(),
            "request"
        );
        answers.push(match service.defer(request) {
            Some(later) => Answer::Later(later),
            None => {
                let mut now = Vec::new();
                service.respond(request, &mut now);
                Answer::Now(now)
            }
        });
    }
    let answered = answers.len();
    for answer in answers {
        let payload = match answer {
            Answer::Now(payload) => payload,
            Answer::Later(later) => later.await,
        };
        if let Err(FrameError::NewlineInLine) = conn.queue(&payload) {
            warn!(%peer, "response contains a newline; sent an error line instead");
            let _ = conn.queue(b"error: the response cannot be sent as one line");
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(Batch {
            answered,
            more: answered == MAX_STARTED && conn.buffered() > 0,
        }),
    }
}
