//! A framed, buffered connection over any async byte stream.
//!
//! [`Connection`] owns two buffers that live as long as the connection and are
//! reused for every message, so steady-state traffic allocates nothing:
//!
//! - a read buffer, bounded by the largest message the framing may carry
//!   (plus its prefix or delimiter); it starts small and grows only up to that
//!   bound, so a peer can never make it larger;
//! - a write buffer, where responses are framed in place and sent with one
//!   flush. A client that pipelines many requests gets all the answers to the
//!   requests already buffered in one write, not one write per answer.
//!
//! The framing itself is the pure codec of `crate::protocol::framing`; this
//! module only moves bytes between it and the socket.

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::framing::{FrameError, Framing, LENGTH_PREFIX};

/// How many bytes a raw-framed connection asks for per read, as the original
/// lab's `recv(1024)` does.
pub const DEFAULT_RAW_READ_SIZE: usize = 1024;

/// First size of the read buffer; it grows (up to the bound) only when a
/// message larger than this arrives.
const INITIAL_READ_CAPACITY: usize = 4096;

/// Why a connection stopped delivering messages.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed (reset by the peer, broken pipe, ...).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes received cannot be framed (for example a message over the limit).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer closed its side in the middle of a message.
    #[error(
        "peer closed the connection in the middle of a message ({buffered} bytes of it received)"
    )]
    ClosedMidMessage {
        /// Bytes of the unfinished message that were received.
        buffered: usize,
    },
}

/// What one read from the socket brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// This many new bytes are buffered.
    Data(usize),
    /// The peer closed its side cleanly, between messages.
    Eof,
}

/// Result of [`Connection::answer_buffered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Requests answered into the write buffer.
    pub answered: usize,
    /// True when answering stopped because the write buffer reached its high
    /// water mark while complete requests were still buffered: flush, then
    /// call again before reading more.
    pub more: bool,
}

/// The read side: a bounded buffer with the unconsumed bytes in `start..end`.
#[derive(Debug)]
struct ReadBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The buffer never grows beyond this many bytes.
    bound: usize,
}

impl ReadBuffer {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes room for at least one more byte, without exceeding the bound.
    /// Returns false when the buffer is full of unconsumed bytes.
    fn make_room(&mut self) -> bool {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.bound {
                return false;
            }
            let grown = (self.buf.len() * 2)
                .max(INITIAL_READ_CAPACITY)
                .min(self.bound);
            self.buf.resize(grown, 0);
        }
        true
    }
}

/// A byte stream with a framing, a bounded read buffer and a write buffer.
///
/// Generic over the stream so it runs on a `TcpStream` in production and on
/// an in-memory `tokio::io::duplex` pipe in unit tests.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    framing: Framing,
    max_message: usize,
    /// Upper bound of one read (raw framing: one read is one message).
    read_size: usize,
    read: ReadBuffer,
    write: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps `stream`; messages larger than `max_message` bytes are refused.
    ///
    /// With [`Framing::Raw`] each read asks for at most
    /// [`DEFAULT_RAW_READ_SIZE`] bytes (see [`Connection::with_raw_read_size`]).
    pub fn new(stream: S, framing: Framing, max_message: usize) -> Self {
        Self::with_raw_read_size(stream, framing, max_message, DEFAULT_RAW_READ_SIZE)
    }

    /// Like [`Connection::new`], choosing how many bytes one raw read (and so
    /// one raw message) may be. Ignored by the other framings.
    pub fn with_raw_read_size(
        stream: S,
        framing: Framing,
        max_message: usize,
        raw_read_size: usize,
    ) -> Self {
        let max_message = max_message.max(1);
        let (bound, read_size, max_message) = match framing {
            // Payload, then "\r\n".
            Framing::Line => (max_message.saturating_add(2), usize::MAX, max_message),
            Framing::Length => (
                max_message.saturating_add(LENGTH_PREFIX),
                usize::MAX,
                max_message,
            ),
            Framing::Raw => {
                let size = raw_read_size.clamp(1, max_message);
                (size, size, size)
            }
        };
        Connection {
            stream,
            framing,
            max_message,
            read_size,
            read: ReadBuffer {
                buf: Vec::new(),
                start: 0,
                end: 0,
                bound,
            },
            write: Vec::new(),
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The largest message payload this connection accepts.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Bytes received but not yet consumed as a complete message.
    pub fn buffered(&self) -> usize {
        self.read.end - self.read.start
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads once from the stream into the read buffer.
    ///
    /// Cancel safe: if the future is dropped before it completes, no bytes
    /// are lost. At end of stream, returns [`Fill::Eof`] when no partial
    /// message is buffered and [`ConnectionError::ClosedMidMessage`] when one
    /// is. A full buffer with no complete message in it is reported as
    /// [`FrameError::TooLarge`] (the codec normally says so earlier).
    pub async fn fill(&mut self) -> Result<Fill, ConnectionError> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Like [`Connection::fill`], but only takes bytes that have already
    /// arrived: `Ok(None)` when a read would have to wait.
    pub async fn fill_now(&mut self) -> Result<Option<Fill>, ConnectionError> {
        poll_fn(|cx| {
            Poll::Ready(match self.poll_fill(cx) {
                Poll::Ready(result) => result.map(Some),
                Poll::Pending => Ok(None),
            })
        })
        .await
    }

    /// One read attempt into the read buffer.
    fn poll_fill(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Fill, ConnectionError>> {
        if self.framing == Framing::Raw && self.buffered() > 0 {
            // One read is one raw message: never append to a previous one.
            return Poll::Ready(Ok(Fill::Data(0)));
        }
        if !self.read.make_room() {
            return Poll::Ready(Err(FrameError::TooLarge {
                size: self.buffered(),
                limit: self.max_message,
            }
            .into()));
        }
        let end = self.read.end;
        let upto = self.read.buf.len().min(end.saturating_add(self.read_size));
        let mut rb = ReadBuf::new(&mut self.read.buf[end..upto]);
        let n = match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) => rb.filled().len(),
        };
        if n == 0 {
            return Poll::Ready(match self.buffered() {
                0 => Ok(Fill::Eof),
                buffered => Err(ConnectionError::ClosedMidMessage { buffered }),
            });
        }
        self.read.end += n;
        Poll::Ready(Ok(Fill::Data(n)))
    }

    /// Cuts the next complete message out of the read buffer, if there is one.
    /// Returns the payload's position in the buffer.
    fn next_frame(&mut self) -> Result<Option<Range<usize>>, FrameError> {
        let start = self.read.start;
        match self.framing.decode(self.read.pending(), self.max_message)? {
            Some(frame) => {
                self.read.start += frame.consumed;
                Ok(Some(start + frame.payload.start..start + frame.payload.end))
            }
            None => Ok(None),
        }
    }

    /// Answers every complete request already buffered.
    ///
    /// For each request, `respond(request, out)` appends the response payload
    /// to `out`, which is the connection's write buffer; the framing around
    /// it is added here, in place, so a response is never copied. Stops early
    /// (with [`Batch::more`]) once the write buffer holds `high_water` bytes,
    /// which bounds it. Nothing is sent until [`Connection::flush`].
    ///
    /// On a framing error the responses to the requests before the bad one
    /// stay in the write buffer, so the caller can still flush them.
    pub fn answer_buffered<F>(
        &mut self,
        high_water: usize,
        mut respond: F,
    ) -> Result<Batch, FrameError>
    where
        F: FnMut(&[u8], &mut Vec<u8>),
    {
        let mut answered = 0;
        loop {
            if self.write.len() >= high_water && self.buffered() > 0 {
                return Ok(Batch {
                    answered,
                    more: true,
                });
            }
            let Some(payload) = self.next_frame()? else {
                return Ok(Batch {
                    answered,
                    more: false,
                });
            };
            let request = &self.read.buf[payload];
            encode_with(self.framing, &mut self.write, |out| respond(request, out))?;
            answered += 1;
        }
    }

    /// The next complete message already buffered, without reading: its
    /// payload (borrowing the read buffer until the next call), or `None`.
    pub fn next_buffered(&mut self) -> Result<Option<&[u8]>, FrameError> {
        Ok(self.next_frame()?.map(|payload| &self.read.buf[payload]))
    }

    /// Waits for the next complete message and returns its payload, or
    /// `None` when the peer closed cleanly between messages. The payload
    /// borrows the read buffer until the next call.
    pub async fn read_message(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        loop {
            if let Some(payload) = self.next_frame()? {
                return Ok(Some(&self.read.buf[payload]));
            }
            if self.fill().await? == Fill::Eof {
                return Ok(None);
            }
        }
    }

    /// Frames `payload` into the write buffer. Sent by [`Connection::flush`].
    pub fn queue(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        self.framing.encode(payload, &mut self.write)
    }

    /// Bytes waiting in the write buffer.
    pub fn unflushed(&self) -> usize {
        self.write.len()
    }

    /// Sends everything in the write buffer, in one write when the socket
    /// accepts it, and empties the buffer (keeping its memory for reuse).
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write.is_empty() {
            let result = self.stream.write_all(&self.write).await;
            self.write.clear();
            result?;
        }
        self.stream.flush().await
    }

    /// Flushes, then closes the sending side (a TCP FIN): the peer reads the
    /// last responses and then end of stream.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
    }

    /// Reads and throws away whatever the peer still sends, until it closes
    /// or `limit` bytes were discarded. Call after [`Connection::shutdown`],
    /// under a timeout: closing a TCP socket with unread bytes makes the
    /// kernel send a reset, which can destroy responses still in flight.
    pub async fn discard_until_eof(&mut self, limit: usize) -> io::Result<usize> {
        self.read.start = 0;
        self.read.end = 0;
        if self.read.buf.is_empty() {
            self.read
                .buf
                .resize(INITIAL_READ_CAPACITY.min(self.read.bound), 0);
        }
        let mut discarded = 0;
        while discarded < limit {
            let buf = &mut self.read.buf[..];
            let stream = &mut self.stream;
            let n = poll_fn(|cx| {
                let mut rb = ReadBuf::new(buf);
                Pin::new(&mut *stream)
                    .poll_read(cx, &mut rb)
                    .map_ok(|()| rb.filled().len())
            })
            .await?;
            if n == 0 {
                break;
            }
            discarded += n;
        }
        Ok(discarded)
    }
}

/// Appends one framed message to `out`, letting `build` write the payload in
/// place. On error `out` is left as it was.
fn encode_with(
    framing: Framing,
    out: &mut Vec<u8>,
    build: impl FnOnce(&mut Vec<u8>),
) -> Result<(), FrameError> {
    let start = out.len();
    match framing {
        Framing::Line => {
            build(out);
            // The memchr crate's search, about a third of core's generic
            // `contains` on short responses (measured with callgrind).
            if memchr::memchr(b'\n', &out[start..]).is_some() {
                out.truncate(start);
                return Err(FrameError::NewlineInLine);
            }
            out.push(b'\n');
        }
        Framing::Length => {
            out.extend_from_slice(&[0; LENGTH_PREFIX]);
            build(out);
            let len = out.len() - start - LENGTH_PREFIX;
            let Ok(len32) = u32::try_from(len) else {
                out.truncate(start);
                return Err(FrameError::TooLarge {
                    size: len,
                    limit: u32::MAX as usize,
                });
            };
            out[start..start + LENGTH_PREFIX].copy_from_slice(&len32.to_be_bytes());
        }
        Framing::Raw => build(out),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};

    fn echo(req: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"Echo: ");
        out.extend_from_slice(req);
    }

    /// A stream that counts the writes reaching it.
    struct CountingWrites {
        inner: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for CountingWrites {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingWrites {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_one_write() {
        let (mut client, server) = duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let stream = CountingWrites {
            inner: server,
            writes: writes.clone(),
        };
        let mut conn = Connection::new(stream, Framing::Line, 1024);
        let mut sent = Vec::new();
        for i in 0..50 {
            sent.extend_from_slice(format!("req {i}\n").as_bytes());
        }
        client.write_all(&sent).await.unwrap();
        let mut answered = 0;
        while answered < 50 {
            conn.fill().await.unwrap();
            answered += conn.answer_buffered(1 << 20, echo).unwrap().answered;
        }
        conn.flush().await.unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 1);
        drop(conn);
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        let expected: String = (0..50).map(|i| format!("Echo: req {i}\n")).collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn messages_split_across_reads_are_reassembled() {
        let (mut client, server) = duplex(64);
        let mut conn = Connection::new(server, Framing::Length, 1024);
        let mut wire = Vec::new();
        Framing::Length.encode(&[7u8; 300], &mut wire).unwrap();
        Framing::Length.encode(b"", &mut wire).unwrap();
        let writer = tokio::spawn(async move {
            for chunk in wire.chunks(7) {
                client.write_all(chunk).await.unwrap();
            }
            client
        });
        assert_eq!(conn.read_message().await.unwrap().unwrap(), &[7u8; 300][..]);
        assert_eq!(conn.read_message().await.unwrap().unwrap(), b"");
        drop(writer.await.unwrap());
        assert!(conn.read_message().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversize_line_is_refused_without_buffering_it() {
        let (mut client, server) = duplex(1 << 16);
        let mut conn = Connection::new(server, Framing::Line, 16);
        client.write_all(b"ok\n").await.unwrap();
        client.write_all(&[b'x'; 1000]).await.unwrap();
        let mut answered = 0;
        let err = loop {
            match conn.fill().await {
                Ok(_) => match conn.answer_buffered(1024, echo) {
                    Ok(b) => answered += b.answered,
                    Err(e) => break e,
                },
                Err(e) => panic!("unexpected {e}"),
            }
        };
        assert_eq!(answered, 1);
        assert!(matches!(err, FrameError::TooLarge { limit: 16, .. }));
        // The buffer never grew past the bound: 16 payload bytes + "\r\n".
        assert!(conn.read.buf.len() <= 18);
        // The answer to the request before the bad one is still queued.
        assert_eq!(conn.unflushed(), b"Echo: ok\n".len());
    }

    #[tokio::test]
    async fn eof_inside_a_message_is_reported() {
        let (mut client, server) = duplex(1024);
        let mut conn = Connection::new(server, Framing::Line, 1024);
        client.write_all(b"complete\npart").await.unwrap();
        drop(client);
        assert_eq!(conn.read_message().await.unwrap().unwrap(), b"complete");
        match conn.read_message().await {
            Err(ConnectionError::ClosedMidMessage { buffered: 4 }) => {}
            other => panic!("expected ClosedMidMessage, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn raw_message_is_one_read_of_at_most_the_read_size() {
        let (mut client, server) = duplex(1 << 16);
        let mut conn = Connection::new(server, Framing::Raw, 1 << 20);
        client.write_all(&[b'a'; 1500]).await.unwrap();
        let first = conn.read_message().await.unwrap().unwrap().len();
        assert_eq!(first, DEFAULT_RAW_READ_SIZE);
        let second = conn.read_message().await.unwrap().unwrap().len();
        assert_eq!(second, 1500 - DEFAULT_RAW_READ_SIZE);
    }

    #[tokio::test]
    async fn high_water_mark_bounds_the_write_buffer() {
        let (mut client, server) = duplex(1 << 16);
        let mut conn = Connection::new(server, Framing::Line, 1024);
        client
            .write_all(&b"0123456789\n".repeat(100))
            .await
            .unwrap();
        conn.fill().await.unwrap();
        let batch = conn.answer_buffered(64, echo).unwrap();
        assert!(batch.more);
        assert!(batch.answered < 100);
        assert!(conn.unflushed() < 64 + 20);
    }

    #[test]
    fn in_place_framing_matches_the_codec() {
        for framing in [Framing::Line, Framing::Length, Framing::Raw] {
            let mut direct = Vec::new();
            encode_with(framing, &mut direct, |out| out.extend_from_slice(b"hello")).unwrap();
            let mut codec = Vec::new();
            framing.encode(b"hello", &mut codec).unwrap();
            assert_eq!(direct, codec, "{framing}");
        }
        let mut out = b"kept".to_vec();
        assert_eq!(
            encode_with(Framing::Line, &mut out, |o| o.extend_from_slice(b"a\nb")),
            Err(FrameError::NewlineInLine)
        );
        assert_eq!(out, b"kept");
    }

    #[tokio::test]
    async fn read_buffer_memory_is_reused() {
        let (mut client, server) = duplex(1 << 16);
        let mut conn = Connection::new(server, Framing::Line, 1024);
        let mut buffers = None;
        for _ in 0..200 {
            client.write_all(b"ping\nping\n").await.unwrap();
            let mut answered = 0;
            while answered < 2 {
                conn.fill().await.unwrap();
                answered += conn.answer_buffered(1 << 16, echo).unwrap().answered;
            }
            conn.flush().await.unwrap();
            let mut back = [0u8; 22];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"Echo: ping\nEcho: ping\n");
            // After the first round neither buffer is ever reallocated.
            let now = (conn.read.buf.as_ptr(), conn.write.as_ptr());
            assert_eq!(*buffers.get_or_insert(now), now);
        }
    }
}
