//! The tickets service: one stock of tickets shared by every client, as in
//! the booking variant of the original lab (`book ticket`, stock of 5).
//!
//! The stock is one atomic counter decremented with compare-and-swap, so under
//! any number of concurrent clients exactly as many bookings succeed as there
//! were tickets, without a lock.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Service;

/// Tickets on sale when `--tickets` is not given (the lab's stock).
pub const DEFAULT_STOCK: u64 = 5;

/// Books tickets from a shared stock.
#[derive(Debug)]
pub struct Tickets {
    left: AtomicU64,
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Book,
    Other,
}

fn parse(request: &[u8]) -> Request {
    if request.trim_ascii().eq_ignore_ascii_case(b"book ticket") {
        Request::Book
    } else {
        Request::Other
    }
}

impl Tickets {
    /// A stock of `stock` tickets.
    pub fn new(stock: u64) -> Self {
        Tickets {
            left: AtomicU64::new(stock),
        }
    }

    /// Tickets still on sale.
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Acquire)
    }

    /// Takes one ticket if any is left; returns how many remain after it.
    pub fn book(&self) -> Option<u64> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|before| before - 1)
    }
}

impl Service for Tickets {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn respond(&self, request: &[u8], response: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match parse(request) {
            Request::Book => match self.book() {
                Some(left) => write!(response, "Booked one ticket, {left} left"),
                None => write!(response, "Sorry, no tickets left"),
            },
            Request::Other => write!(
                response,
                "Unknown request: send 'book ticket' to book one ({} left)",
                self.left()
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn answer(service: &Tickets, request: &[u8]) -> String {
        let mut out = Vec::new();
        service.respond(request, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn books_until_the_stock_is_gone() {
        let t = Tickets::new(2);
        assert_eq!(answer(&t, b"book ticket"), "Booked one ticket, 1 left");
        assert_eq!(answer(&t, b"book ticket"), "Booked one ticket, 0 left");
        assert_eq!(answer(&t, b"book ticket"), "Sorry, no tickets left");
        assert_eq!(t.left(), 0);
    }

    #[test]
    fn case_and_surrounding_spaces_are_ignored() {
        assert_eq!(parse(b"  BOOK Ticket \t"), Request::Book);
        assert_eq!(parse(b"book ticket\r"), Request::Book);
        assert_eq!(parse(b"book  ticket"), Request::Other);
        assert_eq!(parse(b"book tickets"), Request::Other);
        assert_eq!(parse(b""), Request::Other);
    }

    #[test]
    fn anything_else_gets_a_usage_hint_and_books_nothing() {
        let t = Tickets::new(3);
        assert_eq!(
            answer(&t, b"hello"),
            "Unknown request: send 'book ticket' to book one (3 left)"
        );
        assert_eq!(t.left(), 3);
    }

    #[test]
    fn exactly_the_stock_is_sold_under_contention() {
        let t = Arc::new(Tickets::new(1000));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..500).filter(|_| t.book().is_some()).count())
            })
            .collect();
        let sold: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sold, 1000);
        assert_eq!(t.left(), 0);
    }
}
