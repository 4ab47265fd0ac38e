//! Message framing: how a byte stream is cut into messages.
//!
//! TCP delivers a stream of bytes, not messages: one `read()` may return half
//! a message or three of them. A framing says where each message ends. These
//! are pure functions over byte slices, with no I/O, so the live server, the
//! client and the capture analyzer (on reassembled streams) share one codec.
//!
//! Written by hand rather than with `tokio_util::codec`: the analyzer needs the
//! same decoder over plain slices with no runtime, and the three framings are a
//! few lines each.

use std::fmt;
use std::ops::Range;

/// Size of the length prefix in [`Framing::Length`].
pub(crate) const LENGTH_PREFIX: usize = 4;

/// How messages are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum Framing {
    /// A message is the bytes up to `\n`; a trailing `\r` is dropped.
    /// Works with `nc` and telnet.
    #[default]
    Line,
    /// A 4-byte big-endian length, then that many bytes. For binary payloads.
    Length,
    /// Whatever one read returns is one message, like the original lab's
    /// `recv(1024)`. Unreliable: TCP may merge or split messages.
    Raw,
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Line => "line",
            Framing::Length => "length",
            Framing::Raw => "raw",
        })
    }
}

/// A complete message found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Where the message payload lies in the buffer (without delimiter or prefix).
    pub payload: Range<usize>,
    /// How many bytes of the buffer the message occupies, delimiter or prefix included.
    pub consumed: usize,
}

/// Why bytes cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message is larger than the configured maximum.
    #[error(
        "message of {size} bytes is larger than the limit of {limit} bytes (raise it with --max-request)"
    )]
    TooLarge {
        /// Size of the message, or a lower bound on it when its end was not seen yet.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A line-framed message would contain a newline and so be read as two.
    #[error(
        "a line-framed message cannot contain a newline (use --framing length for binary data)"
    )]
    NewlineInLine,
}

impl Framing {
    /// Looks for one complete message at the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed ("incomplete" is not an
    /// error). `max` bounds the payload: a message that is, or will be, larger
    /// is refused as soon as that is known, so no caller ever buffers more than
    /// `max` plus a prefix. With [`Framing::Raw`] every non-empty buffer is one
    /// message of at most `max` bytes.
    pub fn decode(self, buf: &[u8], max: usize) -> Result<Option<Frame>, FrameError> {
        match self {
            Framing::Line => {
                let window = &buf[..buf.len().min(max.saturating_add(2))];
                // memchr looks at a word (or a vector) at a time; a
                // byte-by-byte `position` was most of the analyzer's framing cost.
                match memchr::memchr(b'\n', window) {
                    Some(nl) => {
                        let end = if nl > 0 && buf[nl - 1] == b'\r' {
                            nl - 1
                        } else {
                            nl
                        };
                        if end > max {
                            return Err(FrameError::TooLarge {
                                size: end,
                                limit: max,
                            });
                        }
                        Ok(Some(Frame {
                            payload: 0..end,
                            consumed: nl + 1,
                        }))
                    }
                    // No newline yet. `max + 1` bytes could still be `max`
                    // bytes followed by "\r", so only more than that is fatal.
                    None if buf.len() > max.saturating_add(1) => Err(FrameError::TooLarge {
                        size: buf.len(),
                        limit: max,
                    }),
                    None => Ok(None),
                }
            }
            Framing::Length => {
                let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
                    return Ok(None);
                };
                let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
                if len > max {
                    return Err(FrameError::TooLarge {
                        size: len,
                        limit: max,
                    });
                }
                let end = LENGTH_PREFIX + len;
                if buf.len() < end {
                    return Ok(None);
                }
                Ok(Some(Frame {
                    payload: LENGTH_PREFIX..end,
                    consumed: end,
                }))
            }
            Framing::Raw => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = buf.len().min(max.max(1));
                Ok(Some(Frame {
                    payload: 0..n,
                    consumed: n,
                }))
            }
        }
    }

    /// Appends `payload` as one message to `out`.
    ///
    /// Fails when the payload cannot be represented in this framing: a newline
    /// inside a line, or more than `u32::MAX` bytes for a length prefix.
    pub fn encode(self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        match self {
            Framing::Line => {
                if payload.contains(&b'\n') {
                    return Err(FrameError::NewlineInLine);
                }
                out.reserve(payload.len() + 1);
                out.extend_from_slice(payload);
                out.push(b'\n');
            }
            Framing::Length => {
                let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
                    size: payload.len(),
                    limit: u32::MAX as usize,
                })?;
                out.reserve(LENGTH_PREFIX + payload.len());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(payload);
            }
            Framing::Raw => out.extend_from_slice(payload),
        }
        Ok(())
    }

    /// Decodes every complete message in `buf`, returning the payloads and
    /// the number of bytes consumed. Bytes of an incomplete last message stay
    /// unconsumed. Convenient for tests and the analyzer.
    pub fn decode_all(
        self,
        buf: &[u8],
        max: usize,
    ) -> (Vec<Range<usize>>, usize, Option<FrameError>) {
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            match self.decode(&buf[at..], max) {
                Ok(Some(frame)) => {
                    out.push(at + frame.payload.start..at + frame.payload.end);
                    at += frame.consumed;
                }
                Ok(None) => return (out, at, None),
                Err(e) => return (out, at, Some(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payloads(framing: Framing, buf: &[u8]) -> Vec<Vec<u8>> {
        let (ranges, _, err) = framing.decode_all(buf, 1 << 20);
        assert!(err.is_none(), "{err:?}");
        ranges.into_iter().map(|r| buf[r].to_vec()).collect()
    }

    #[test]
    fn line_drops_newline_and_carriage_return() {
        assert_eq!(
            payloads(Framing::Line, b"hello\r\nworld\n\npart"),
            vec![b"hello".to_vec(), b"world".to_vec(), b"".to_vec()]
        );
    }

    #[test]
    fn line_waits_for_newline() {
        assert_eq!(Framing::Line.decode(b"abc", 10), Ok(None));
    }

    #[test]
    fn line_refuses_overlong_line_before_its_end_arrives() {
        assert!(matches!(
            Framing::Line.decode(&[b'a'; 12], 10),
            Err(FrameError::TooLarge { limit: 10, .. })
        ));
        // Exactly the limit, with CRLF, is fine.
        let mut ok = vec![b'a'; 10];
        ok.extend_from_slice(b"\r\n");
        assert_eq!(
            Framing::Line.decode(&ok, 10).unwrap().unwrap().payload,
            0..10
        );
        assert!(Framing::Line.decode(&[b'a'; 11][..], 10).unwrap().is_none());
        let mut long = vec![b'a'; 11];
        long.push(b'\n');
        assert!(Framing::Line.decode(&long, 10).is_err());
    }

    #[test]
    fn length_prefix_is_big_endian() {
        let mut buf = Vec::new();
        Framing::Length.encode(b"hi", &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0, 2, b'h', b'i']);
        assert_eq!(payloads(Framing::Length, &buf), vec![b"hi".to_vec()]);
    }

    #[test]
    fn length_refuses_huge_claim_without_waiting_for_it() {
        let buf = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert_eq!(
            Framing::Length.decode(&buf, 1024),
            Err(FrameError::TooLarge {
                size: u32::MAX as usize,
                limit: 1024
            })
        );
    }

    #[test]
    fn line_encoder_refuses_embedded_newline() {
        assert_eq!(
            Framing::Line.encode(b"a\nb", &mut Vec::new()),
            Err(FrameError::NewlineInLine)
        );
    }

    #[test]
    fn raw_takes_what_is_there_up_to_the_limit() {
        assert_eq!(
            Framing::Raw.decode(b"abcdef", 4).unwrap().unwrap(),
            Frame {
                payload: 0..4,
                consumed: 4
            }
        );
        assert_eq!(Framing::Raw.decode(b"", 4), Ok(None));
    }

    /// Feeds `stream` to the decoder in the chunks given by `cuts`, as reads
    /// from a socket would arrive, and returns the messages decoded.
    fn decode_in_chunks(framing: Framing, stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut fed = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        for p in points {
            buf.extend_from_slice(&stream[fed..p.max(fed)]);
            fed = p.max(fed);
            while let Some(frame) = framing.decode(&buf, 1 << 20).unwrap() {
                out.push(buf[frame.payload.clone()].to_vec());
                buf.drain(..frame.consumed);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn line_any_split_yields_same_messages(
            msgs in prop::collection::vec("[^\n\r]{0,40}", 0..20),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut stream = Vec::new();
            for m in &msgs { Framing::Line.encode(m.as_bytes(), &mut stream).unwrap(); }
            let expected: Vec<Vec<u8>> = msgs.iter().map(|m| m.as_bytes().to_vec()).collect();
            prop_assert_eq!(decode_in_chunks(Framing::Line, &stream, &cuts), expected);
        }

        #[test]
        fn length_any_split_yields_same_messages(
            msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut stream = Vec::new();
            for m in &msgs { Framing::Length.encode(m, &mut stream).unwrap(); }
            prop_assert_eq!(decode_in_chunks(Framing::Length, &stream, &cuts), msgs);
        }

        #[test]
        fn raw_any_split_preserves_the_byte_stream(
            stream in prop::collection::vec(any::<u8>(), 0..2000),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
        ) {
            // Raw framing cannot keep message boundaries (that is its flaw),
            // but it never loses, reorders or invents a byte.
            let got: Vec<u8> = decode_in_chunks(Framing::Raw, &stream, &cuts).concat();
            prop_assert_eq!(got, stream);
        }

        #[test]
        fn decoders_never_panic_on_garbage(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            max in 0usize..512,
        ) {
            for f in [Framing::Line, Framing::Length, Framing::Raw] {
                let (ranges, consumed, _) = f.decode_all(&bytes, max);
                prop_assert!(consumed <= bytes.len());
                for r in ranges { prop_assert!(r.end - r.start <= max.max(1)); }
            }
        }
    }
}
