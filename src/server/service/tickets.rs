//! The tickets service: one stock of tickets shared by every client, as in
//! the booking variant of the original lab (`book ticket`, stock of 5).
//!
//! The stock lives in one of two places ([`TicketsDb`]):
//!
//! - **A ledger file** (the default, `reqresp-tickets.db`): an SQLite file
//!   (see [`super::ledger`]) that keeps the stock and every booking. A booking
//!   is confirmed only once it is on disk, a restart goes on with the same
//!   stock, and servers sharing the file never sell the same ticket twice.
//!   Bookings that arrive together share one commit ([`super::group_commit`]).
//! - **Memory** (`--tickets-db :memory:`): one atomic counter decremented with
//!   compare-and-swap, so under any number of concurrent clients exactly as
//!   many bookings succeed as there were tickets, without a lock; lost when
//!   the server stops.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{info, warn};

use super::group_commit::{GroupCommit, Outcome};
use super::ledger::{Ledger, LedgerError, Opened};
use super::{Deferred, Service};

/// Tickets on sale when `--tickets` is not given and no ledger exists yet
/// (the lab's stock).
pub const DEFAULT_STOCK: u64 = 5;

/// The ledger file used when `--tickets-db` is not given, in the working
/// directory.
pub const DEFAULT_DB: &str = "reqresp-tickets.db";

/// The `--tickets-db` value that keeps the stock in memory only.
pub const MEMORY_DB: &str = ":memory:";

/// Where the stock is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketsDb {
    /// In memory only: lost when the server stops (`--tickets-db :memory:`).
    Memory,
    /// In an SQLite ledger file.
    File(PathBuf),
}

impl TicketsDb {
    /// `:memory:` means [`TicketsDb::Memory`], anything else is a file path.
    pub fn from_path(path: impl Into<PathBuf>) -> TicketsDb {
        let path = path.into();
        if path.as_os_str() == MEMORY_DB {
            TicketsDb::Memory
        } else {
            TicketsDb::File(path)
        }
    }
}

impl Default for TicketsDb {
    fn default() -> Self {
        TicketsDb::File(PathBuf::from(DEFAULT_DB))
    }
}

/// Books tickets from a shared stock.
pub struct Tickets {
    store: Store,
}

enum Store {
    Memory(AtomicU64),
    Ledger(GroupCommit),
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match self.store {
            Store::Memory(_) => "memory",
            Store::Ledger(_) => "ledger",
        };
        f.debug_struct("Tickets")
            .field("store", &store)
            .field("left", &self.left())
            .finish()
    }
}

/// Why a booking could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ledger failed ({0})")]
pub struct BookingError(String);

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
    /// A stock of `stock` tickets kept in memory only.
    pub fn new(stock: u64) -> Self {
        Tickets {
            store: Store::Memory(AtomicU64::new(stock)),
        }
    }

    /// Opens the stock kept in `db`, logging where it is and what it holds.
    ///
    /// `stock` is `--tickets`: the stock of a new ledger ([`DEFAULT_STOCK`]
    /// when `None`); for an existing ledger it must match, unless `reset`
    /// deletes its bookings and starts over. See `Ledger` for the errors.
    pub fn open(db: &TicketsDb, stock: Option<u64>, reset: bool) -> Result<Self, LedgerError> {
        match db {
            TicketsDb::Memory => {
                let stock = stock.unwrap_or(DEFAULT_STOCK);
                warn!(
                    stock,
                    "tickets kept in memory only (--tickets-db {MEMORY_DB}): bookings are lost when the server stops, \
                     and a restart sells the whole stock again"
                );
                Ok(Tickets::new(stock))
            }
            TicketsDb::File(path) => Self::open_file(path, stock, reset),
        }
    }

    fn open_file(path: &Path, stock: Option<u64>, reset: bool) -> Result<Self, LedgerError> {
        let (ledger, now, opened) = Ledger::open(path, stock, DEFAULT_STOCK, reset)?;
        let how = match opened {
            Opened::Created => "new stock".to_owned(),
            Opened::Continued => "continuing its stock".to_owned(),
            Opened::Reset { deleted } => {
                format!("reset by --reset-tickets: {deleted} bookings deleted")
            }
        };
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        info!(
            ledger = %shown.display(),
            total = now.total,
            sold = now.sold,
            left = now.left(),
            "tickets ledger opened ({how}); a booking is confirmed once it is on disk"
        );
        let commits = GroupCommit::start(ledger, now.left()).map_err(|e| LedgerError::Failed {
            path: path.to_path_buf(),
            detail: format!("cannot start the ledger thread: {e}"),
        })?;
        Ok(Tickets {
            store: Store::Ledger(commits),
        })
    }

    /// Tickets still on sale (with a shared ledger: as of this server's last
    /// booking).
    pub fn left(&self) -> u64 {
        match &self.store {
            Store::Memory(left) => left.load(Ordering::Acquire),
            Store::Ledger(commits) => commits.left(),
        }
    }

    /// Takes one ticket if any is left; returns how many remain after it, or
    /// `None` when the stock is sold out. With a ledger this returns once the
    /// booking is on disk.
    pub fn book(&self) -> Result<Option<u64>, BookingError> {
        match &self.store {
            Store::Memory(left) => Ok(left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .ok()
                .map(|before| before - 1)),
            Store::Ledger(commits) => from_outcome(commits.book()),
        }
    }
}

/// The answer to a booking.
fn booked(result: Result<Option<u64>, BookingError>, response: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = match result {
        Ok(Some(left)) => write!(response, "Booked one ticket, {left} left"),
        Ok(None) => write!(response, "Sorry, no tickets left"),
        Err(e) => write!(
            response,
            "error: booking not confirmed: {e}; try again later"
        ),
    };
}

/// A ledger's outcome as [`Tickets::book`] gives it.
fn from_outcome(outcome: Outcome) -> Result<Option<u64>, BookingError> {
    match outcome {
        Outcome::Booked { left } => Ok(Some(left)),
        Outcome::SoldOut => Ok(None),
        Outcome::Failed(reason) => Err(BookingError(reason.replace(['\n', '\r'], " "))),
    }
}

impl Service for Tickets {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn defers(&self) -> bool {
        matches!(self.store, Store::Ledger(_))
    }

    /// With a ledger, a booking is queued for the next group commit at
    /// once and answered when it is on disk.
    fn defer(&self, request: &[u8]) -> Option<Deferred> {
        let Store::Ledger(commits) = &self.store else {
            return None;
        };
        if parse(request) != Request::Book {
            return None;
        }
        let outcome = commits.book_async();
        Some(Box::pin(async move {
            let mut response = Vec::with_capacity(32);
            booked(from_outcome(outcome.await), &mut response);
            response
        }))
    }

    fn respond(&self, request: &[u8], response: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match parse(request) {
            Request::Book => {
                booked(self.book(), response);
                Ok(())
            }
            Request::Other => write!(
                response,
                "Unknown request: send 'book ticket' to book one ({} left)",
                self.left()
            ),
        };
    }

    /// A booking in the ledger waits for its commit (an fsync).
    fn blocks(&self) -> bool {
        matches!(self.store, Store::Ledger(_))
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
                std::thread::spawn(move || (0..500).filter(|_| t.book().unwrap().is_some()).count())
            })
            .collect();
        let sold: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sold, 1000);
        assert_eq!(t.left(), 0);
    }

    #[test]
    fn a_ledger_keeps_the_stock_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketsDb::File(dir.path().join("t.db"));
        let t = Tickets::open(&db, Some(3), false).unwrap();
        assert_eq!(answer(&t, b"book ticket"), "Booked one ticket, 2 left");
        assert_eq!(
            answer(&t, b"hello"),
            "Unknown request: send 'book ticket' to book one (2 left)"
        );
        drop(t);
        let t = Tickets::open(&db, None, false).unwrap();
        assert_eq!(t.left(), 2);
        assert_eq!(answer(&t, b"book ticket"), "Booked one ticket, 1 left");
        assert_eq!(answer(&t, b"book ticket"), "Booked one ticket, 0 left");
        assert_eq!(answer(&t, b"book ticket"), "Sorry, no tickets left");
        drop(t);
        assert!(matches!(
            Tickets::open(&db, Some(4), false),
            Err(LedgerError::StockMismatch { .. })
        ));
        let t = Tickets::open(&db, Some(4), true).unwrap();
        assert_eq!(t.left(), 4);
    }

    #[test]
    fn memory_db_is_spelled_like_sqlite() {
        assert_eq!(TicketsDb::from_path(":memory:"), TicketsDb::Memory);
        assert_eq!(
            TicketsDb::from_path("x.db"),
            TicketsDb::File(PathBuf::from("x.db"))
        );
        let t = Tickets::open(&TicketsDb::Memory, None, false).unwrap();
        assert_eq!(t.left(), DEFAULT_STOCK);
    }
}
