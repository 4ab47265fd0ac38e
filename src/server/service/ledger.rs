//! The tickets ledger: the stock and every booking, kept in an SQLite file so
//! that a booking confirmed to a client survives a crash, a `kill -9` or a
//! restart.
//!
//! - **Durable.** The file is in WAL mode with `synchronous=FULL`: `COMMIT`
//!   returns only once the write-ahead log is on disk (fsync). The service
//!   answers a booking only after its commit returned.
//! - **Shared.** Every booking batch is one `BEGIN IMMEDIATE` transaction that
//!   reads the count sold and writes it back, so servers that share one file
//!   take turns through SQLite's write lock (waiting up to
//!   [`BUSY_TIMEOUT`] for it) and can never sell the same ticket twice. The
//!   table also refuses `sold > total` itself.
//! - **Recognisable.** `PRAGMA application_id` marks the file as a reqresp
//!   ledger and `PRAGMA user_version` holds the layout ([`FORMAT`]): any other
//!   file, a damaged one, or one that cannot be written is refused at
//!   start-up with a [`LedgerError`] that says what to do, never replaced by
//!   a silent fresh stock.
//!
//! Layout (format 1):
//!
//! ```sql
//! stock(id INTEGER PRIMARY KEY CHECK (id = 1), total, sold, created_ms, opened_ms)
//! bookings(ticket INTEGER PRIMARY KEY, booked_ms, pid)   -- one row per ticket sold
//! ```
//!
//! Why SQLite: an embedded database needs no server to set up (the crate
//! builds its own copy, `bundled`), its WAL mode gives durable commits that
//! several processes share through file locks, and `sqlite3` or Python's
//! `sqlite3` module can read the ledger. sled and redb were not chosen:
//! neither lets two processes open one file at the same time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

/// Marks an SQLite file as a reqresp tickets ledger (`PRAGMA application_id`,
/// the bytes "RRTK").
pub(crate) const APPLICATION_ID: i32 = 0x5252_544B;

/// The ledger layout this build reads and writes (`PRAGMA user_version`).
pub(crate) const FORMAT: i32 = 1;

/// How long a booking waits for another server holding the ledger's write
/// lock before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the start-up found in the ledger file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// There was no ledger: a new stock was created.
    Created,
    /// The existing stock goes on where it stopped.
    Continued,
    /// `--reset-tickets`: the bookings were deleted and a fresh stock began.
    Reset {
        /// Bookings that the reset deleted.
        deleted: u64,
    },
}

/// The stock as the ledger holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stock {
    /// Tickets the stock started with.
    pub total: u64,
    /// Tickets sold so far.
    pub sold: u64,
}

impl Stock {
    /// Tickets still on sale.
    pub fn left(&self) -> u64 {
        self.total.saturating_sub(self.sold)
    }
}

/// The outcome of one booking transaction for `wanted` bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Granted {
    /// The stock before the transaction.
    pub before: Stock,
    /// How many of the bookings got a ticket (the first ones); the rest found
    /// the stock sold out.
    pub count: u64,
}

impl Granted {
    /// Tickets left after the `i`-th granted booking (0-based).
    pub fn left_after(&self, i: u64) -> u64 {
        self.before.left() - (i + 1)
    }
}

/// Why the ledger could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The path names a directory.
    #[error(
        "--tickets-db {path} is a directory; give a file path inside it, e.g. --tickets-db {path}/reqresp-tickets.db"
    )]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file (or the files beside it) cannot be created or written.
    #[error(
        "cannot write the tickets ledger {path}: {detail}. The directory must exist and be writable by this user \
         (SQLite also creates {path}-wal and {path}-shm beside the file); pick another place with --tickets-db PATH, \
         or --tickets-db :memory: for a stock that is not kept"
    )]
    Unwritable {
        /// The ledger file.
        path: PathBuf,
        /// What SQLite or the system said.
        detail: String,
    },
    /// The file is not an SQLite database, or not a reqresp ledger.
    #[error(
        "{path} is not a reqresp tickets ledger ({detail}); it was not changed. Move it away to start a new stock \
         there, or pick another file with --tickets-db PATH"
    )]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The ledger is damaged.
    #[error(
        "the tickets ledger {path} is corrupt ({detail}); it was not changed. Restore it from a backup, or move it \
         away (with its -wal and -shm files) to start a new stock"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
    /// The ledger was written by a newer reqresp.
    #[error(
        "the tickets ledger {path} has layout {found}, but this reqresp knows only layout {FORMAT}; run a newer reqresp, \
         or pick another file with --tickets-db PATH"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i32,
    },
    /// `--tickets` disagrees with the stock already in the ledger.
    #[error(
        "the tickets ledger {path} holds a stock of {total} tickets ({sold} sold, {left} left), but --tickets says {asked}: \
         leave out --tickets (or give --tickets {total}) to go on selling this stock, or add --reset-tickets to delete \
         its {sold} bookings and start over with {asked} tickets",
        left = total - sold
    )]
    StockMismatch {
        /// The file.
        path: PathBuf,
        /// The stock in the ledger.
        total: u64,
        /// Tickets sold from it.
        sold: u64,
        /// What `--tickets` asked for.
        asked: u64,
    },
    /// A stock SQLite's integers cannot hold.
    #[error("--tickets {0} is more than a ledger can hold (at most {max})", max = i64::MAX)]
    StockTooLarge(u64),
    /// Another server held the ledger's write lock for the whole busy timeout.
    #[error(
        "the tickets ledger {path} stayed locked by another process for {} s: {detail}",
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// Any other SQLite or disk failure.
    #[error("the tickets ledger {path} failed: {detail}")]
    Failed {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
}

impl LedgerError {
    /// Sorts an SQLite error into the variant that says what to do.
    fn from_sqlite(path: &Path, err: rusqlite::Error) -> LedgerError {
        let path = path.to_path_buf();
        let detail = err.to_string();
        match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => LedgerError::NotALedger {
                path,
                detail: format!("SQLite says: {detail}"),
            },
            Some(ErrorCode::DatabaseCorrupt) => LedgerError::Corrupt { path, detail },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
                LedgerError::Unwritable { path, detail }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                LedgerError::Busy { path, detail }
            }
            _ => LedgerError::Failed { path, detail },
        }
    }
}

/// An open ledger: one SQLite connection, used by one thread.
pub(crate) struct Ledger {
    conn: Connection,
    path: PathBuf,
    pid: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// SQLite integers are signed; every count in the ledger fits.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// What a ledger file holds, read without changing it (for reports such
/// as the lab's tickets race).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    /// The stock.
    pub stock: Stock,
    /// Rows in the bookings table (one per booking).
    pub bookings: u64,
    /// Bookings per server process id, by pid.
    pub by_pid: Vec<(u32, u64)>,
}

/// Reads the ledger at `path` read-only.
pub fn read(path: &Path) -> Result<Holdings, LedgerError> {
    let sql = |e| LedgerError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    let (total, sold): (i64, i64) = conn
        .query_row("SELECT total, sold FROM stock", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql)?;
    let bookings: i64 = conn
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .map_err(sql)?;
    let mut stmt = conn
        .prepare("SELECT pid, count(*) FROM bookings GROUP BY pid ORDER BY min(rowid)")
        .map_err(sql)?;
    let by_pid = stmt
        .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql)?
        .map(|row| row.map(|(pid, n)| (pid, n.max(0) as u64)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(Holdings {
        stock: Stock {
            total: total.max(0) as u64,
            sold: sold.max(0) as u64,
        },
        bookings: bookings.max(0) as u64,
        by_pid,
    })
}

impl Ledger {
    /// Opens the ledger at `path`, creating it with `stock` tickets (or
    /// `default_stock` when `stock` is `None`) when there is none.
    ///
    /// An existing ledger continues its stock; a `stock` that disagrees with
    /// it is an error unless `reset`, which deletes the bookings and starts
    /// over with `stock` (or the ledger's own total).
    pub fn open(
        path: &Path,
        stock: Option<u64>,
        default_stock: u64,
        reset: bool,
    ) -> Result<(Ledger, Stock, Opened), LedgerError> {
        for n in [stock, Some(default_stock)].into_iter().flatten() {
            if i64::try_from(n).is_err() {
                return Err(LedgerError::StockTooLarge(n));
            }
        }
        if path.is_dir() {
            return Err(LedgerError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let sql = |e| LedgerError::from_sqlite(path, e);
        // No URI interpretation: the path is a file name, whatever it looks like.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(sql)? {
            return Err(LedgerError::Unwritable {
                path: path.to_path_buf(),
                detail: "the file is read-only for this user".to_owned(),
            });
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // The first read of the file: garbage is refused here, before
        // anything is written to it.
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(sql)?;
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sql)?;
        let fresh = app_id == 0 && objects == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(LedgerError::NotALedger {
                path: path.to_path_buf(),
                detail: format!(
                    "an SQLite database with {objects} tables or indexes of something else (application_id {app_id:#x})"
                ),
            });
        }
        if !fresh {
            check_integrity(&conn).map_err(|detail| LedgerError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })?;
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Failed {
                path: path.to_path_buf(),
                detail: format!(
                    "SQLite cannot use its write-ahead log there (journal mode stays {mode}); put the ledger on a local file system"
                ),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
            pid: i64::from(std::process::id()),
        };
        let (stock, opened) = ledger
            .set_up(fresh, stock.unwrap_or(default_stock), stock, reset)
            .map_err(|e| match e {
                SetUpError::Sql(e) => sql(e),
                SetUpError::Ledger(e) => e,
            })?;
        Ok((ledger, stock, opened))
    }

    /// Creates, checks or resets the stock in one write transaction, which
    /// also proves at start-up that the ledger can be written.
    fn set_up(
        &mut self,
        fresh: bool,
        total: u64,
        asked: Option<u64>,
        reset: bool,
    ) -> Result<(Stock, Opened), SetUpError> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another server may have created the ledger since the first look.
        let app_id: i32 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let outcome = if fresh && app_id == 0 {
            tx.execute_batch(&format!(
                "CREATE TABLE stock (
                     id INTEGER PRIMARY KEY CHECK (id = 1),
                     total INTEGER NOT NULL CHECK (total >= 0),
                     sold INTEGER NOT NULL CHECK (sold >= 0 AND sold <= total),
                     created_ms INTEGER NOT NULL,
                     opened_ms INTEGER NOT NULL
                 );
                 CREATE TABLE bookings (
                     ticket INTEGER PRIMARY KEY,
                     booked_ms INTEGER NOT NULL,
                     pid INTEGER NOT NULL
                 );
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {FORMAT};"
            ))?;
            tx.execute(
                "INSERT INTO stock (id, total, sold, created_ms, opened_ms) VALUES (1, ?1, 0, ?2, ?2)",
                params![total as i64, now],
            )?;
            (Stock { total, sold: 0 }, Opened::Created)
        } else {
            let version: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > FORMAT {
                return Err(SetUpError::Ledger(LedgerError::NewerFormat {
                    path: self.path.clone(),
                    found: version,
                }));
            }
            let row: Option<(i64, i64)> = tx
                .query_row("SELECT total, sold FROM stock WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let Some((old_total, sold)) = row else {
                return Err(SetUpError::Ledger(LedgerError::Corrupt {
                    path: self.path.clone(),
                    detail: "its stock row is missing".to_owned(),
                }));
            };
            let existing = Stock {
                total: to_u64(old_total),
                sold: to_u64(sold),
            };
            if reset {
                let new_total = asked.unwrap_or(existing.total);
                tx.execute("DELETE FROM bookings", [])?;
                tx.execute(
                    "UPDATE stock SET total = ?1, sold = 0, created_ms = ?2, opened_ms = ?2 WHERE id = 1",
                    params![new_total as i64, now],
                )?;
                (
                    Stock {
                        total: new_total,
                        sold: 0,
                    },
                    Opened::Reset {
                        deleted: existing.sold,
                    },
                )
            } else {
                if let Some(asked) = asked
                    && asked != existing.total
                {
                    return Err(SetUpError::Ledger(LedgerError::StockMismatch {
                        path: self.path.clone(),
                        total: existing.total,
                        sold: existing.sold,
                        asked,
                    }));
                }
                tx.execute("UPDATE stock SET opened_ms = ?1 WHERE id = 1", [now])?;
                (existing, Opened::Continued)
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Books up to `wanted` tickets in one durable transaction: the first
    /// bookings get a ticket while any is left, the rest find the stock sold
    /// out. When this returns `Ok`, the tickets granted are on disk.
    pub fn book(&mut self, wanted: u64) -> rusqlite::Result<Granted> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (total, sold): (i64, i64) =
            tx.query_row("SELECT total, sold FROM stock WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let before = Stock {
            total: to_u64(total),
            sold: to_u64(sold),
        };
        let count = before.left().min(wanted);
        if count > 0 {
            let mut insert = tx.prepare_cached(
                "INSERT INTO bookings (ticket, booked_ms, pid) VALUES (?1, ?2, ?3)",
            )?;
            for i in 1..=count as i64 {
                insert.execute(params![sold + i, now, self.pid])?;
            }
            drop(insert);
            tx.execute(
                "UPDATE stock SET sold = ?1 WHERE id = 1",
                [sold + count as i64],
            )?;
        }
        // With nothing granted nothing was written: this commit costs no fsync.
        tx.commit()?;
        Ok(Granted { before, count })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

enum SetUpError {
    Sql(rusqlite::Error),
    Ledger(LedgerError),
}

impl From<rusqlite::Error> for SetUpError {
    fn from(e: rusqlite::Error) -> Self {
        SetUpError::Sql(e)
    }
}

/// `PRAGMA quick_check`: every page and record well formed. Returns the first
/// problems found.
fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| e.to_string())?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(rows.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(
        path: &Path,
        stock: Option<u64>,
        reset: bool,
    ) -> Result<(Ledger, Stock, Opened), LedgerError> {
        Ledger::open(path, stock, 5, reset)
    }

    #[test]
    fn a_new_ledger_starts_the_stock_and_a_reopened_one_continues_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (mut ledger, stock, opened) = open(&path, Some(3), false).unwrap();
        assert_eq!(
            (stock, opened),
            (Stock { total: 3, sold: 0 }, Opened::Created)
        );
        let granted = ledger.book(2).unwrap();
        assert_eq!(granted.count, 2);
        assert_eq!((granted.left_after(0), granted.left_after(1)), (2, 1));
        drop(ledger);
        let (mut ledger, stock, opened) = open(&path, None, false).unwrap();
        assert_eq!(
            (stock, opened),
            (Stock { total: 3, sold: 2 }, Opened::Continued)
        );
        let granted = ledger.book(4).unwrap();
        assert_eq!(granted.count, 1, "only one ticket was left");
        assert_eq!(ledger.book(1).unwrap().count, 0);
        let rows: i64 = ledger
            .conn
            .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }

    #[test]
    fn a_disagreeing_stock_is_refused_unless_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (mut ledger, _, _) = open(&path, Some(5), false).unwrap();
        ledger.book(2).unwrap();
        drop(ledger);
        let err = open(&path, Some(9), false).err().unwrap();
        assert!(matches!(
            err,
            LedgerError::StockMismatch {
                total: 5,
                sold: 2,
                asked: 9,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("--reset-tickets") && msg.contains("--tickets 5"),
            "{msg}"
        );
        // The same number continues; a reset starts over.
        assert_eq!(open(&path, Some(5), false).unwrap().2, Opened::Continued);
        let (_, stock, opened) = open(&path, Some(9), true).unwrap();
        assert_eq!(stock, Stock { total: 9, sold: 0 });
        assert_eq!(opened, Opened::Reset { deleted: 2 });
    }

    #[test]
    fn garbage_and_foreign_databases_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        let bytes = b"not a database at all\n".repeat(500);
        std::fs::write(&garbage, &bytes).unwrap();
        let err = open(&garbage, None, false).err().unwrap();
        assert!(matches!(err, LedgerError::NotALedger { .. }), "{err}");
        assert_eq!(std::fs::read(&garbage).unwrap(), bytes);

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let err = open(&foreign, None, false).err().unwrap();
        assert!(err.to_string().contains("something else"), "{err}");
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path(), None, false).err().unwrap();
        assert!(matches!(err, LedgerError::IsDirectory { .. }), "{err}");
        let err = open(&dir.path().join("no/such/dir/t.db"), None, false)
            .err()
            .unwrap();
        assert!(matches!(err, LedgerError::Unwritable { .. }), "{err}");
    }

    #[test]
    fn stock_beyond_sqlite_integers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(&dir.path().join("t.db"), Some(u64::MAX), false)
            .err()
            .unwrap();
        assert!(matches!(err, LedgerError::StockTooLarge(_)));
    }

    #[test]
    fn two_connections_on_one_file_never_oversell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        open(&path, Some(500), false).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let (mut ledger, _, _) = open(&path, None, false).unwrap();
                    (0..100).map(|_| ledger.book(3).unwrap().count).sum::<u64>()
                })
            })
            .collect();
        let sold: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sold, 500);
    }
}
