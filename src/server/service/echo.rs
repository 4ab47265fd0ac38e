//! The echo service: answers `<prefix><request>`, by default `Echo: <request>`
//! like the original lab's server.

use super::Service;

/// Prefix of the original lab's answers.
pub const DEFAULT_PREFIX: &str = "Echo: ";

/// Answers every request with a prefix followed by the request itself.
#[derive(Debug, Clone)]
pub struct Echo {
    prefix: Box<[u8]>,
}

impl Echo {
    /// An echo service answering `prefix` + request (an empty prefix echoes as is).
    pub fn new(prefix: &[u8]) -> Self {
        Echo {
            prefix: prefix.into(),
        }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Echo::new(DEFAULT_PREFIX.as_bytes())
    }
}

impl Service for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn respond(&self, request: &[u8], response: &mut Vec<u8>) {
        response.reserve(self.prefix.len() + request.len());
        response.extend_from_slice(&self.prefix);
        response.extend_from_slice(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(service: &Echo, request: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        service.respond(request, &mut out);
        out
    }

    #[test]
    fn answers_like_the_lab() {
        assert_eq!(answer(&Echo::default(), b"hello"), b"Echo: hello");
    }

    #[test]
    fn prefix_can_change_or_be_empty() {
        assert_eq!(answer(&Echo::new(b">> "), b"x"), b">> x");
        assert_eq!(answer(&Echo::new(b""), b"\x00\xffbin"), b"\x00\xffbin");
    }

    #[test]
    fn appends_after_earlier_responses() {
        let mut out = b"first\n".to_vec();
        Echo::default().respond(b"second", &mut out);
        assert_eq!(out, b"first\nEcho: second");
    }
}
