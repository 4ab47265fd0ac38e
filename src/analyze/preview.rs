//! Printable previews of message payloads.
//!
//! A preview must be safe to print in a terminal, an SVG or a Mermaid
//! diagram and must never pretend to show bytes that were not captured:
//! printable ASCII is kept, everything else is escaped (`\n`, `\r`, `\t`,
//! `\\`, `\xNN`), the text is cut at a number of characters with `…`, and a
//! stretch of the stream that was not captured shows as `[N bytes missing]`,
//! after which nothing more is shown.
//!
//! Written by hand: `str::escape_debug` keeps non-ASCII Unicode and works on
//! `str` only, while payloads are arbitrary bytes.

use std::fmt::Write as _;

/// The first bytes of a message, collected while the message streams past,
/// so a preview never needs the whole message in memory.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, Clone, Default)]
pub(crate) struct PreviewBuf {
    /// The first captured bytes, up to the limit given to [`PreviewBuf::push`].
    head: Head,
    /// Whether bytes after `head` and before any gap exist (cut by the limit).
    more: bool,
    /// Missing bytes met right after `head` (nothing after a gap is kept).
    missing: Option<u64>,
    /// Whether anything (bytes or more gaps) follows the first gap.
    after_gap: bool,
}

/// Bytes kept in place before a [`Head`] needs the heap: the default
/// preview (40 characters) fits, so most messages allocate nothing for it.
const INLINE: usize = 48;

/// The kept bytes of a preview: inline while they fit in [`INLINE`] bytes,
/// on the heap beyond (a `--preview` longer than the default).
#[derive(Debug, Clone)]
struct Head {
    inline: [u8; INLINE],
    /// Bytes used in `inline`, when `heap` is empty.
    len: u8,
    heap: Vec<u8>,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            inline: [0; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }
}

/// A head's parked form is its bytes, set aside with the payloads.
impl borsh::BorshSerialize for Head {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        crate::analyze::parked_form::write_bytes(self.bytes(), w)
    }
}

impl borsh::BorshDeserialize for Head {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let mut head = Head::default();
        head.extend_from_slice(&crate::analyze::parked_form::read_bytes(r)?);
        Ok(head)
    }
}

impl Head {
    fn bytes(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &self.heap
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }

    fn extend_from_slice(&mut self, more: &[u8]) {
        let len = usize::from(self.len);
        if self.heap.is_empty() && len + more.len() <= INLINE {
            self.inline[len..len + more.len()].copy_from_slice(more);
            // At most INLINE (48), so it fits a u8.
            self.len = (len + more.len()) as u8;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..len]);
            }
            self.heap.extend_from_slice(more);
        }
    }
}

impl PreviewBuf {
    /// Adds captured message bytes, keeping at most `limit` of them in total.
    pub fn push(&mut self, bytes: &[u8], limit: usize) {
        if bytes.is_empty() {
            return;
        }
        if self.missing.is_some() {
            self.after_gap = true;
            return;
        }
        if self.head.len() >= limit {
            self.more = true;
            return;
        }
        let take = bytes.len().min(limit - self.head.len());
        self.head.extend_from_slice(&bytes[..take]);
        if take < bytes.len() {
            self.more = true;
        }
    }

    /// Records `len` bytes of the message that were not captured.
    pub fn push_missing(&mut self, len: u64) {
        match &mut self.missing {
            // Two gaps in a row are one.
            Some(m) if !self.after_gap => *m = m.saturating_add(len),
            Some(_) => self.after_gap = true,
            None => self.missing = Some(len),
        }
    }

    /// Renders the preview in at most `limit` characters plus the markers:
    /// `…` where bytes were left out, `[N bytes missing]` at the first gap.
    pub fn render(&self, limit: usize) -> String {
        let mut out = escape(self.head.bytes(), limit);
        if self.more && !out.ends_with('…') {
            out.push('…');
        }
        if let Some(missing) = self.missing {
            let unit = if missing == 1 { "byte" } else { "bytes" };
            let _ = write!(out, "[{missing} {unit} missing]");
            if self.after_gap {
                out.push('…');
            }
        }
        out
    }
}

/// Escapes `bytes` for printing and cuts the result at `limit` characters,
/// ending it with `…` when something was left out. An escape sequence is
/// never cut in half.
pub(crate) fn escape(bytes: &[u8], limit: usize) -> String {
    // Built as bytes (only ASCII and `…` go in) and checked once at the end.
    let mut out = Vec::with_capacity(bytes.len().min(limit) + 3);
    let mut chars = 0;
    let mut rest = bytes;
    while let Some(&b) = rest.first() {
        // A run of printable ASCII (but `\\`) is copied in one piece: most
        // previews are text, and byte-by-byte pushes dominated the profile.
        let run = printable_run(rest);
        if run > 0 {
            let room = limit - chars;
            let take = run.min(room);
            out.extend_from_slice(&rest[..take]);
            if run > room {
                out.extend_from_slice("…".as_bytes());
                return into_string(out);
            }
            chars += run;
            rest = &rest[run..];
            continue;
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let hex;
        let piece: &[u8] = match b {
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            b'\\' => b"\\\\",
            _ => {
                hex = [
                    b'\\',
                    b'x',
                    DIGITS[usize::from(b >> 4)],
                    DIGITS[usize::from(b & 0xf)],
                ];
                &hex
            }
        };
        // Every piece is ASCII, so its byte length is its character count.
        if chars + piece.len() > limit {
            out.extend_from_slice("…".as_bytes());
            return into_string(out);
        }
        out.extend_from_slice(piece);
        chars += piece.len();
        rest = &rest[1..];
    }
    into_string(out)
}

/// Length of the run of printable ASCII other than `\\` that starts `bytes`,
/// looked at 8 bytes at a time while they all are.
fn printable_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut n = 0;
    while let Some(word) = bytes.get(n..n + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // A byte below 0x20, at or above 0x80, 0x7f (DEL) or a backslash.
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let odd = below_space | (w & HIGH) | zero(w ^ (ONES * 0x7f)) | zero(w ^ (ONES * 0x5c));
        if odd != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..]
        .iter()
        .position(|&b| !(0x20..=0x7e).contains(&b) || b == b'\\')
        .unwrap_or(bytes.len() - n)
}

/// The escaped preview as a `String`: it holds only ASCII and `…`, so the
/// check cannot fail (and would lose nothing but that preview if it did).
fn into_string(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn printable_ascii_is_kept() {
        assert_eq!(escape(b"Echo: hello", 40), "Echo: hello");
    }

    #[test]
    fn control_and_high_bytes_are_escaped() {
        assert_eq!(
            escape(b"a\nb\r\t\\\x00\xff", 40),
            "a\\nb\\r\\t\\\\\\x00\\xff"
        );
    }

    #[test]
    fn long_text_is_cut_with_ellipsis() {
        assert_eq!(escape(b"abcdefgh", 5), "abcde…");
        assert_eq!(escape(b"abcde", 5), "abcde");
    }

    #[test]
    fn escapes_are_not_cut_in_half() {
        // "ab" then "\x00" (4 chars) does not fit in 5.
        assert_eq!(escape(b"ab\x00", 5), "ab…");
    }

    #[test]
    fn preview_buf_marks_missing_bytes_and_shows_nothing_after() {
        let mut p = PreviewBuf::default();
        p.push(b"hel", 40);
        p.push_missing(7);
        p.push(b"world", 40);
        assert_eq!(p.render(40), "hel[7 bytes missing]…");
        let mut p = PreviewBuf::default();
        p.push(b"hel", 40);
        p.push_missing(7);
        assert_eq!(p.render(40), "hel[7 bytes missing]");
        let mut p = PreviewBuf::default();
        p.push_missing(1);
        assert_eq!(p.render(40), "[1 byte missing]");
    }

    #[test]
    fn preview_buf_longer_than_inline_moves_to_the_heap() {
        let text = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut p = PreviewBuf::default();
        for piece in text.chunks(7) {
            p.push(piece, 100);
        }
        assert_eq!(p.render(100), std::str::from_utf8(text).unwrap());
        let mut p = PreviewBuf::default();
        p.push(&text[..INLINE], 100);
        p.push(&text[INLINE..], 100);
        assert_eq!(p.render(100), std::str::from_utf8(text).unwrap());
    }

    #[test]
    fn preview_buf_cut_by_limit_ends_with_ellipsis() {
        let mut p = PreviewBuf::default();
        p.push(b"hello ", 8);
        p.push(b"world", 8);
        assert_eq!(p.render(8), "hello wo…");
    }

    proptest! {
        #[test]
        fn escape_is_printable_and_bounded(bytes in prop::collection::vec(any::<u8>(), 0..200), limit in 0usize..80) {
            let s = escape(&bytes, limit);
            prop_assert!(s.chars().count() <= limit + 1);
            prop_assert!(s.chars().all(|c| c == '…' || (' '..='~').contains(&c)));
        }

        #[test]
        fn escape_matches_the_byte_by_byte_definition(
            bytes in prop::collection::vec(prop::sample::select(vec![b'a', b' ', b'~', b'\\', b'\n', 0u8, 0x7f, 0xff]), 0..60),
            limit in 0usize..50,
        ) {
            // The rules of the module doc, one byte at a time.
            let mut expect = String::new();
            for &b in &bytes {
                let piece = match b {
                    b'\n' => "\\n".to_owned(),
                    b'\r' => "\\r".to_owned(),
                    b'\t' => "\\t".to_owned(),
                    b'\\' => "\\\\".to_owned(),
                    0x20..=0x7e => (b as char).to_string(),
                    _ => format!("\\x{b:02x}"),
                };
                if expect.len() + piece.len() > limit {
                    expect.push('…');
                    break;
                }
                expect.push_str(&piece);
            }
            prop_assert_eq!(escape(&bytes, limit), expect);
        }
    }
}
