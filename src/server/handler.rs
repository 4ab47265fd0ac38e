//! One connection, from accept to close: read, answer every buffered request,
//! flush once, repeat; then close without losing a response.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use crate::protocol::connection::{Connection, ConnectionError, Fill};
use crate::protocol::{FrameError, Framing};

use super::config::Config;

/// Responses are flushed once this many bytes are waiting, even if more
/// requests are buffered: it bounds the write buffer.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// How long a closing connection waits for the peer to close its side.
/// Closing a TCP socket with unread bytes makes the kernel send a reset,
/// which can destroy the last responses still in flight; waiting briefly
/// while discarding what the peer sends avoids that.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// At most this many bytes are read and discarded while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// With line framing, how long part of a line may wait for its newline
/// before the log says why no answer comes: the original lab's Python
/// client sends bare messages and would otherwise hang without a clue.
const PARTIAL_LINE_HINT: Duration = Duration::from_secs(2);

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Close {
    /// The client closed its side between requests.
    PeerClosed,
    /// The client closed its side in the middle of a request.
    PeerClosedMidRequest { buffered: usize },
    /// The server is shutting down.
    Shutdown,
    /// Nothing was received for the idle timeout.
    Idle(Duration),
    /// A response could not be sent within the idle timeout (the client does not read).
    WriteStalled(Duration),
    /// A request over the size limit (or otherwise unframeable): answered
    /// with an error, then closed.
    BadRequest(FrameError),
    /// The socket failed (for example reset by the client).
    Io(io::Error),
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::PeerClosed => write!(f, "client closed"),
            Close::PeerClosedMidRequest { buffered } => write!(
                f,
                "client closed in the middle of a request ({buffered} bytes of it received, dropped)"
            ),
            Close::Shutdown => write!(f, "server shutting down"),
            Close::Idle(t) => write!(f, "idle for {} s", t.as_secs_f64()),
            Close::WriteStalled(t) => write!(
                f,
                "client did not read its responses for {} s",
                t.as_secs_f64()
            ),
            Close::BadRequest(e) => write!(f, "bad request: {e}"),
            Close::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The error line sent before closing a connection whose request was bad.
fn error_message(err: &FrameError) -> String {
    match err {
        FrameError::TooLarge { limit, .. } => {
            format!("error: request larger than the server's limit of {limit} bytes; closing")
        }
        FrameError::NewlineInLine => "error: bad request; closing".to_owned(),
    }
}

/// Serves one connection until it ends, logging its opening and closing.
/// Returns the number of requests answered.
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    config: &Config,
    shutdown: &mut broadcast::Receiver<()>,
) -> u64
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    info!(%peer, "connection opened");
    let mut conn = Connection::with_raw_read_size(
        stream,
        config.framing,
        config.max_request,
        config.raw_read_size,
    );
    let mut requests = 0u64;
    let close = exchange(&mut conn, peer, config, shutdown, &mut requests).await;
    let graceful = !matches!(close, Close::Io(_) | Close::WriteStalled(_));
    if graceful {
        // Send what is queued (an error line), then FIN, then wait briefly
        // for the client's FIN so that no reset can destroy those bytes.
        let _ = timeout(LINGER, async {
            conn.shutdown().await?;
            conn.discard_until_eof(LINGER_BYTES).await
        })
        .await;
    }
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &close {
        Close::BadRequest(_) | Close::PeerClosedMidRequest { .. } | Close::WriteStalled(_) => {
            warn!(%peer, requests, duration_ms, reason = %close, "connection closed")
        }
        _ => info!(%peer, requests, duration_ms, reason = %close, "connection closed"),
    }
    requests
}

/// The request/response loop. Returns why it ended; responses owed are
/// flushed before it returns, except when the socket itself failed.
async fn exchange<S>(
    conn: &mut Connection<S>,
    peer: SocketAddr,
    config: &Config,
    shutdown: &mut broadcast::Receiver<()>,
    requests: &mut u64,
) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let service = &*config.service;
    let mut draining = false;
    let mut hinted = false;
    loop {
        // Shutdown is only looked at here, between batches: every request
        // already read has been answered and flushed by then. From then on
        // the connection answers what has already arrived, without waiting
        // for more, and closes (the server's drain timeout bounds this).
        let filled = if draining {
            match conn.fill_now().await {
                Ok(Some(fill)) => Ok(Ok(fill)),
                Ok(None) => return Close::Shutdown,
                Err(e) => Ok(Err(e)),
            }
        } else {
            let partial = conn.buffered();
            let hint_due = !hinted && partial > 0 && config.framing == Framing::Line;
            tokio::select! {
                biased;
                _ = shutdown.recv() => {
                    draining = true;
                    continue;
                }
                _ = tokio::time::sleep(PARTIAL_LINE_HINT), if hint_due => {
                    hinted = true;
                    warn!(
                        %peer,
                        bytes = partial,
                        "no newline after {partial} bytes for {} s: line framing answers complete lines only; \
                         a client that sends bare messages (like the original lab's Python client) \
                         needs `reqresp server --framing raw`",
                        PARTIAL_LINE_HINT.as_secs()
                    );
                    continue;
                }
                filled = timeout(config.idle_timeout, conn.fill()) => filled,
            }
        };
        match filled {
            Err(_) => return Close::Idle(config.idle_timeout),
            Ok(Ok(Fill::Eof)) => return Close::PeerClosed,
            Ok(Ok(Fill::Data(_))) => {}
            Ok(Err(ConnectionError::ClosedMidMessage { buffered })) => {
                return Close::PeerClosedMidRequest { buffered };
            }
            Ok(Err(ConnectionError::Io(e))) => return Close::Io(e),
            Ok(Err(ConnectionError::Frame(e))) => return refuse(conn, e),
        }
        loop {
            let before_batch = *requests;
            let batch = conn.answer_buffered(WRITE_HIGH_WATER, |request, out| {
                let before = out.len();
                service.respond(request, out);
                *requests += 1;
                debug!(
                    %peer,
                    bytes = request.len(),
                    request = %request[..request.len().min(80)].escape_ascii(),
                    response_bytes = out.len() - before,
                    "request"
                );
            });
            let more = match batch {
                Ok(batch) => batch.more,
                Err(FrameError::NewlineInLine) => {
                    // The service produced a response line framing cannot
                    // carry; the client still gets one answer per request.
                    warn!(%peer, "response contains a newline; sent an error line instead");
                    let _ = conn.queue(b"error: the response cannot be sent as one line");
                    true
                }
                Err(e) => {
                    return refuse(conn, e);
                }
            };
            // `--delay`: a slow server, one delay per answer in this batch.
            let answered = u32::try_from(*requests - before_batch).unwrap_or(u32::MAX);
            if !config.delay.is_zero() && answered > 0 {
                tokio::time::sleep(config.delay.saturating_mul(answered)).await;
            }
            match timeout(config.idle_timeout, conn.flush()).await {
                Err(_) => return Close::WriteStalled(config.idle_timeout),
                Ok(Err(e)) => return Close::Io(e),
                Ok(Ok(())) => {}
            }
            if !more {
                break;
            }
        }
    }
}

/// Queues the error response for a bad request; the caller closes.
fn refuse<S>(conn: &mut Connection<S>, err: FrameError) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = conn.queue(error_message(&err).as_bytes());
    Close::BadRequest(err)
}

/// Answers a connection over the limit with an error message and closes it.
pub(crate) async fn refuse_busy<S>(stream: S, peer: SocketAddr, framing: Framing, limit: usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(stream, framing, 64);
    let message = format!(
        "error: server busy ({limit} connections, its --max-connections limit); try again later"
    );
    let _ = conn.queue(message.as_bytes());
    let _ = timeout(LINGER, async {
        conn.shutdown().await?;
        conn.discard_until_eof(LINGER_BYTES).await
    })
    .await;
    debug!(%peer, "refused connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::service::Echo;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    fn config(framing: Framing, max_request: usize) -> Config {
        Config {
            framing,
            max_request,
            service: Arc::new(Echo::default()),
            ..Config::default()
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[tokio::test]
    async fn answers_until_the_client_closes() {
        let (mut client, server) = duplex(4096);
        let (_tx, mut rx) = broadcast::channel(1);
        let cfg = config(Framing::Line, 1024);
        let task = tokio::spawn(async move { serve(server, peer(), &cfg, &mut rx).await });
        client.write_all(b"a\nb\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "Echo: a\nEcho: b\n");
        assert_eq!(task.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn oversize_request_gets_an_error_then_close() {
        let (mut client, server) = duplex(1 << 16);
        let (_tx, mut rx) = broadcast::channel(1);
        let cfg = config(Framing::Length, 8);
        let task = tokio::spawn(async move { serve(server, peer(), &cfg, &mut rx).await });
        let mut wire = Vec::new();
        Framing::Length.encode(b"ok", &mut wire).unwrap();
        Framing::Length.encode(&[0; 100], &mut wire).unwrap();
        client.write_all(&wire).await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let (msgs, _, _) = Framing::Length.decode_all(&got, 1024);
        let msgs: Vec<&[u8]> = msgs.into_iter().map(|r| &got[r]).collect();
        assert_eq!(msgs[0], b"Echo: ok");
        assert!(
            String::from_utf8_lossy(msgs[1]).contains("larger than the server's limit of 8 bytes")
        );
        assert_eq!(msgs.len(), 2);
        drop(client);
        assert_eq!(task.await.unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_is_closed() {
        let (mut client, server) = duplex(4096);
        let (_tx, mut rx) = broadcast::channel(1);
        let cfg = Config {
            idle_timeout: Duration::from_secs(30),
            ..config(Framing::Line, 1024)
        };
        let task = tokio::spawn(async move { serve(server, peer(), &cfg, &mut rx).await });
        client.write_all(b"hi\n").await.unwrap();
        let mut line = [0u8; 9];
        client.read_exact(&mut line).await.unwrap();
        // Paused time jumps ahead: the timeout fires without a real wait.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(task.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn shutdown_closes_an_idle_connection_cleanly() {
        let (mut client, server) = duplex(4096);
        let (tx, mut rx) = broadcast::channel(1);
        let cfg = config(Framing::Line, 1024);
        let task = tokio::spawn(async move { serve(server, peer(), &cfg, &mut rx).await });
        client.write_all(b"before\n").await.unwrap();
        let mut line = [0u8; 13];
        client.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"Echo: before\n");
        tx.send(()).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(client);
        assert_eq!(task.await.unwrap(), 1);
    }
}
