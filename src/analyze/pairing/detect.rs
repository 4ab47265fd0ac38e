//! How `auto` picks one of the lab's framings from the first burst of each
//! side (the rules are in the parent module's doc), and why, for the report.

use crate::protocol::Framing;

/// Why `auto` chose one of the lab's framings, for the report.
pub(super) fn detect_reason(framing: Framing) -> String {
    match framing {
        Framing::Line => "line: the first messages are text lines".into(),
        Framing::Length => "length: the first messages are length-prefixed".into(),
        Framing::Raw => "raw (turns): no known protocol or framing fits the first messages".into(),
    }
}

/// The first burst of one side, as `auto` sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Every captured byte of the burst, gaps left out.
    pub text: &'a [u8],
    /// The bytes before its first gap.
    pub clean: &'a [u8],
    /// Whether the burst ended (the other side spoke, or the connection
    /// ended) rather than the detection window filled up in its middle.
    pub whole: bool,
}

/// Picks a framing from the first burst of each side (see the module doc).
/// A burst cut by the detection window passes the line test with at least
/// one `\n`, and the length test with at least one whole message and a
/// plausible start of the next.
pub fn detect(sides: [Sample<'_>; 2], max_message: usize) -> Framing {
    let speaking = || sides.iter().filter(|s| !s.text.is_empty());
    if speaking().next().is_none() {
        return Framing::Raw;
    }
    if speaking().all(|s| looks_like_lines(s.text, s.whole)) {
        return Framing::Line;
    }
    if speaking().all(|s| looks_length_framed(s.clean, s.whole, max_message)) {
        Framing::Length
    } else {
        Framing::Raw
    }
}

/// Printable UTF-8 text (tabs and line ends allowed) ending in `\n` (or,
/// when cut, containing one).
fn looks_like_lines(b: &[u8], whole: bool) -> bool {
    let lines = if whole {
        b.last() == Some(&b'\n')
    } else {
        b.contains(&b'\n')
    };
    if !lines {
        return false;
    }
    // Fast path: printable ASCII and line ends (the usual text protocol)
    // need neither UTF-8 decoding nor a walk over `char`s.
    if b.iter()
        .all(|&c| (0x20..0x7f).contains(&c) || matches!(c, b'\n' | b'\r' | b'\t'))
    {
        return true;
    }
    // A cut burst may end in the middle of a UTF-8 character.
    let text = match std::str::from_utf8(b) {
        Ok(t) => t,
        Err(e) if !whole && e.error_len().is_none() => {
            std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// A whole number (at least one) of length-prefixed messages, each within
/// `max` (when cut: at least one, then the start of one within `max`).
fn looks_length_framed(b: &[u8], whole: bool, max: usize) -> bool {
    let (msgs, consumed, err) = Framing::Length.decode_all(b, max);
    err.is_none() && !msgs.is_empty() && (consumed == b.len() || !whole)
}
