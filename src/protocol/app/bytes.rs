//! Byte-level pieces the codecs share: a bounded line reader, a counted
//! block that ends in CR LF, decimal numbers, and bytes or sizes shown in
//! summaries.

use super::{AppError, AppProtocol, Direction, too_large};

/// Bytes shown as text: printable ASCII as is, the rest escaped, at most
/// `max` input bytes (then `…`).
pub(crate) fn show(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b' '..=b'~' => s.push(b as char),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// A byte count for summaries: `6 B`, `12.3 KiB`, `4.0 MiB`.
pub(crate) fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// A line being read: bytes up to `\n`, bounded.
#[derive(Debug, Default)]
pub(crate) struct Line {
    buf: Vec<u8>,
    done: bool,
}

impl Line {
    /// Takes bytes from `data` up to and including `\n`: returns how many,
    /// and whether the line is now complete ([`Line::text`]). A line longer
    /// than `limit` is an error.
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        limit: usize,
        protocol: AppProtocol,
        dir: Direction,
        what: &'static str,
    ) -> Result<(usize, bool), AppError> {
        debug_assert!(!self.done, "Line::clear after a complete line");
        let room = limit.saturating_add(2).saturating_sub(self.buf.len());
        match memchr::memchr(b'\n', &data[..data.len().min(room)]) {
            Some(nl) => {
                self.buf.extend_from_slice(&data[..nl]);
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                if self.buf.len() > limit {
                    return Err(too_large(protocol, dir, what, limit));
                }
                self.done = true;
                Ok((nl + 1, true))
            }
            None if data.len() >= room => Err(too_large(protocol, dir, what, limit)),
            None => {
                self.buf.extend_from_slice(data);
                Ok((data.len(), false))
            }
        }
    }

    /// The complete line, without `\r\n` or `\n`.
    pub(crate) fn text(&self) -> &[u8] {
        &self.buf
    }

    /// Ready for the next line. Keeps a small buffer, frees a big one.
    pub(crate) fn clear(&mut self) {
        self.done = false;
        if self.buf.capacity() > 4096 {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

/// A counted block of bytes whose last two must be CR LF: a RESP bulk
/// string or a memcached data block, announced by a line before it.
#[derive(Debug)]
pub(crate) struct Block {
    /// Bytes left, the CR LF included.
    left: u64,
    /// The last two bytes, as they arrive.
    tail: [u8; 2],
}

impl Block {
    /// A block of `content` bytes and its CR LF.
    pub(crate) fn new(content: u64) -> Self {
        Block {
            left: content.saturating_add(2),
            tail: [0; 2],
        }
    }

    /// Takes the block's bytes from the front of `data`: how many, and the
    /// part of them that is content (the CR LF left out).
    pub(crate) fn feed<'a>(&mut self, data: &'a [u8]) -> (usize, &'a [u8]) {
        let before = self.left;
        let n = before.min(data.len() as u64) as usize;
        for (i, &b) in data[..n].iter().enumerate() {
            let pos = before - i as u64;
            if pos <= 2 {
                self.tail[2 - pos as usize] = b;
            }
        }
        self.left -= n as u64;
        let content = before.saturating_sub(2).min(n as u64) as usize;
        (n, &data[..content])
    }

    /// Every byte has arrived.
    pub(crate) fn complete(&self) -> bool {
        self.left == 0
    }

    /// A complete block ended in CR LF.
    pub(crate) fn well_ended(&self) -> bool {
        self.tail == *b"\r\n"
    }

    /// Skips `n` content bytes that the capture lost; `false` when they
    /// would reach into the CR LF (which must be seen to be checked).
    pub(crate) fn skip(&mut self, n: u64) -> bool {
        if n.saturating_add(2) > self.left {
            return false;
        }
        self.left -= n;
        true
    }
}

/// Parses an unsigned decimal number (no sign, no spaces).
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses a signed decimal number.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', rest)) => parse_u64(rest).and_then(|n| 0i64.checked_sub_unsigned(n)),
        Some((b'+', rest)) => parse_u64(rest).and_then(|n| i64::try_from(n).ok()),
        _ => parse_u64(s).and_then(|n| i64::try_from(n).ok()),
    }
}
