//! What an answer must look like, and, when it does not, a guess at why in
//! plain words: an answer that holds the prefix every 1,024 bytes comes
//! from a server that answers each `recv(1024)`; an answer that is the
//! whole write echoed comes from a server with no framing.
//!
//! With raw framing an answer has no end marker, so [`Expectation::raw_complete`]
//! decides when the bytes received so far are a whole, correct answer.

use super::trace::preview;

/// How many characters of an answer a reason line quotes.
const QUOTE: usize = 40;

/// The ticket service's answer to a booking that succeeded starts with this.
pub(crate) const BOOKED: &str = "Booked one ticket";
/// The ticket service's answer once the stock is gone starts with this.
pub(crate) const SOLD_OUT: &str = "Sorry, no tickets left";

/// What a good answer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// An echo server: the prefix, then the request (`Echo: hello`).
    Echo {
        /// The text before the echoed request (may be empty).
        prefix: Vec<u8>,
    },
    /// Any answer that starts with these bytes (`--expect`; empty: any answer).
    Prefix(Vec<u8>),
    /// The ticket service: `book ticket` is answered with a booking or
    /// "sold out"; other requests with any answer.
    Tickets,
}

/// Why an answer is wrong, in words for a reason line.
pub(crate) type Mismatch = String;

impl Expectation {
    /// Checks one framed answer to `request`.
    pub fn check(&self, request: &[u8], answer: &[u8]) -> Result<(), Mismatch> {
        match self {
            Expectation::Echo { prefix } => {
                if answer.len() == prefix.len() + request.len()
                    && answer.starts_with(prefix)
                    && &answer[prefix.len()..] == request
                {
                    Ok(())
                } else {
                    Err(diagnose_echo(prefix, request, answer))
                }
            }
            Expectation::Prefix(prefix) => {
                if answer.starts_with(prefix) {
                    Ok(())
                } else {
                    Err(format!(
                        "the answer \"{}\" does not start with \"{}\"",
                        preview(answer, QUOTE),
                        preview(prefix, QUOTE)
                    ))
                }
            }
            Expectation::Tickets => {
                if !is_booking(request) {
                    return Ok(());
                }
                if answer.starts_with(BOOKED.as_bytes()) || answer.starts_with(SOLD_OUT.as_bytes())
                {
                    Ok(())
                } else {
                    Err(format!(
                        "the answer to \"book ticket\" was \"{}\", neither \"{BOOKED}, N left\" nor \"{SOLD_OUT}\"",
                        preview(answer, QUOTE)
                    ))
                }
            }
        }
    }

    /// Raw framing: true when `received` is a whole, correct answer to
    /// `request`. An echo server may answer each of its reads on its own
    /// (`Echo: hel` `Echo: lo`): every byte must come back once, in order,
    /// each piece after the prefix.
    pub fn raw_complete(&self, request: &[u8], received: &[u8]) -> bool {
        match self {
            Expectation::Echo { prefix } => covers(prefix, request, received),
            Expectation::Prefix(prefix) => received.starts_with(prefix),
            Expectation::Tickets => {
                !received.is_empty()
                    && (!is_booking(request)
                        || received.starts_with(BOOKED.as_bytes())
                        || received.starts_with(SOLD_OUT.as_bytes()))
            }
        }
    }

    /// The answer an echo server gives to `request`, if this is an echo.
    pub fn echo_of(&self, request: &[u8]) -> Option<Vec<u8>> {
        match self {
            Expectation::Echo { prefix } => {
                let mut out = prefix.clone();
                out.extend_from_slice(request);
                Some(out)
            }
            _ => None,
        }
    }

    /// The echo prefix, if this is an echo with a non-empty prefix.
    pub fn prefix(&self) -> Option<&[u8]> {
        match self {
            Expectation::Echo { prefix } if !prefix.is_empty() => Some(prefix),
            _ => None,
        }
    }
}

/// True for the ticket service's booking request.
pub(crate) fn is_booking(request: &[u8]) -> bool {
    request.trim_ascii().eq_ignore_ascii_case(b"book ticket")
}

/// The most steps [`covers`] takes before it gives up (an answer that
/// needs more is not accepted).
const MAX_COVER_STEPS: usize = 1 << 20;

/// True when `received` is `prefix + piece₁ + prefix + piece₂ + …` with
/// the pieces, in order, making up `request` exactly.
fn covers(prefix: &[u8], request: &[u8], received: &[u8]) -> bool {
    if prefix.is_empty() {
        return received == request;
    }
    // Depth-first over (position in received, position in request) at the
    // start of a piece. A piece ends where `received` holds the next prefix
    // or where both end together.
    let mut stack = vec![(0usize, 0usize)];
    let mut seen = std::collections::HashSet::new();
    let mut steps = 0;
    while let Some((i, j)) = stack.pop() {
        if !received[i..].starts_with(prefix) {
            continue;
        }
        let start = i + prefix.len();
        let same = received[start..]
            .iter()
            .zip(&request[j..])
            .take_while(|(a, b)| a == b)
            .count();
        for k in 1..=same {
            steps += 1;
            if steps > MAX_COVER_STEPS {
                return false;
            }
            let (ni, nj) = (start + k, j + k);
            if ni == received.len() && nj == request.len() {
                return true;
            }
            if received[ni..].starts_with(prefix) && seen.insert((ni, nj)) {
                stack.push((ni, nj));
            }
        }
    }
    false
}

/// Why an echo answer is wrong, with the likely cause when one fits.
fn diagnose_echo(prefix: &[u8], request: &[u8], answer: &[u8]) -> Mismatch {
    let expected_len = prefix.len() + request.len();
    let got = format!("\"{}\" ({} B)", preview(answer, QUOTE), answer.len());
    if !prefix.is_empty() {
        let copies = memchr::memmem::find_iter(answer, prefix).count();
        if copies > 1 && answer.starts_with(prefix) {
            let pieces = piece_sizes(prefix, answer);
            let largest = pieces.iter().copied().max().unwrap_or(0);
            let all_but_last_full =
                pieces.len() > 1 && pieces[..pieces.len() - 1].iter().all(|&p| p == largest);
            let cause = if largest <= 1 {
                "the server answered each piece as it arrived; it must keep reading until the whole message is in".to_string()
            } else if all_but_last_full {
                format!(
                    "the server answers every read as a message and reads at most {largest} bytes at a time (like recv({largest})); it must keep reading until the whole message is in"
                )
            } else {
                "the server answered each read as a message; it must keep reading until the whole message is in".to_string()
            };
            return format!(
                "the answer to a {}-byte message holds \"{}\" {copies} times (pieces of up to {largest} bytes): {cause}",
                request.len(),
                preview(prefix, QUOTE)
            );
        }
        if answer == request {
            return format!(
                "the answer {got} is the request without the prefix \"{}\"",
                preview(prefix, QUOTE)
            );
        }
    }
    if answer.len() < expected_len && expected_len > 0 {
        let mut expected = prefix.to_vec();
        expected.extend_from_slice(request);
        if expected.starts_with(answer) {
            return format!(
                "the answer was cut: {} of {expected_len} bytes arrived as one message",
                answer.len()
            );
        }
    }
    let mut expected = prefix.to_vec();
    expected.extend_from_slice(request);
    format!(
        "expected \"{}\" ({expected_len} B), got {got}",
        preview(&expected, QUOTE)
    )
}

/// The lengths of the pieces between copies of `prefix` in `answer`.
fn piece_sizes(prefix: &[u8], answer: &[u8]) -> Vec<usize> {
    let starts: Vec<usize> = memchr::memmem::find_iter(answer, prefix).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let end = starts.get(n + 1).copied().unwrap_or(answer.len());
            end.saturating_sub(s + prefix.len())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Expectation {
        Expectation::Echo {
            prefix: b"Echo: ".to_vec(),
        }
    }

    #[test]
    fn an_exact_echo_passes_and_anything_else_says_what_differs() {
        assert!(echo().check(b"hi", b"Echo: hi").is_ok());
        let why = echo().check(b"hi", b"Echo: ho").unwrap_err();
        assert!(why.contains("expected \"Echo: hi\""), "{why}");
        let why = echo().check(b"hello", b"hello").unwrap_err();
        assert!(why.contains("without the prefix"), "{why}");
        let why = echo().check(b"hello", b"Echo: he").unwrap_err();
        assert!(why.contains("cut: 8 of 11 bytes"), "{why}");
    }

    #[test]
    fn an_answer_per_recv_1024_is_named() {
        let request = vec![b'x'; 3000];
        let mut answer = Vec::new();
        for piece in request.chunks(1024) {
            answer.extend_from_slice(b"Echo: ");
            answer.extend_from_slice(piece);
        }
        let why = echo().check(&request, &answer).unwrap_err();
        assert!(why.contains("3 times"), "{why}");
        assert!(why.contains("recv(1024)"), "{why}");
    }

    #[test]
    fn byte_by_byte_answers_are_named() {
        let mut answer = Vec::new();
        for b in b"abc" {
            answer.extend_from_slice(b"Echo: ");
            answer.push(*b);
        }
        let why = echo().check(b"abc", &answer).unwrap_err();
        assert!(why.contains("each piece as it arrived"), "{why}");
    }

    #[test]
    fn raw_answers_may_come_in_pieces_but_must_cover_every_byte_once() {
        let e = echo();
        assert!(e.raw_complete(b"hello", b"Echo: hello"));
        assert!(e.raw_complete(b"hello", b"Echo: helEcho: lo"));
        assert!(e.raw_complete(b"hello", b"Echo: hEcho: eEcho: lEcho: lEcho: o"));
        assert!(!e.raw_complete(b"hello", b"Echo: hel"));
        assert!(!e.raw_complete(b"hello", b"Echo: helloEcho: "));
        assert!(!e.raw_complete(b"hello", b"Echo: heEcho: lo"));
        assert!(!e.raw_complete(b"hello", b"Echo: helEcho: llo"));
        // A request that contains the prefix itself is still decided right.
        assert!(e.raw_complete(b"Echo: x", b"Echo: Echo: x"));
        assert!(e.raw_complete(b"Echo: x", b"Echo: Echo: Echo: x"));
        let pure = Expectation::Echo { prefix: vec![] };
        assert!(pure.raw_complete(b"abc", b"abc"));
        assert!(!pure.raw_complete(b"abc", b"ab"));
    }

    #[test]
    fn tickets_judges_only_bookings() {
        let t = Expectation::Tickets;
        assert!(
            t.check(b"book ticket", b"Booked one ticket, 4 left")
                .is_ok()
        );
        assert!(t.check(b"book ticket", b"Sorry, no tickets left").is_ok());
        assert!(t.check(b"book ticket", b"ok").is_err());
        assert!(t.check(b"hello", b"anything").is_ok());
    }

    #[test]
    fn prefix_expectation_is_a_prefix() {
        let p = Expectation::Prefix(b"OK".to_vec());
        assert!(p.check(b"x", b"OK fine").is_ok());
        assert!(p.check(b"x", b"NO").is_err());
        assert!(Expectation::Prefix(vec![]).check(b"x", b"").is_ok());
    }
}
