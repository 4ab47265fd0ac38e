//! Group commit: one thread owns the ledger and books, in one durable
//! transaction, every booking that arrived while the previous commit was on
//! its way to disk.
//!
//! A connection asking for a ticket sends a [`Job`] down a channel and waits
//! for its answer; the ledger thread takes the first job, then everything
//! else already queued (up to [`MAX_BATCH`]), waits briefly for the clients
//! it has just answered when they have not all come back yet ([`gather`]),
//! commits them together and answers each. Under load a commit (one fsync) is
//! shared by about as many bookings as there are connections booking, so
//! durability costs little per booking; a lone booking waits for exactly one
//! commit and never for more bookings.
//!
//! A connection of the server books with [`GroupCommit::book_async`]: the
//! booking is queued at once and its answer comes back through a future, so
//! the connection goes on queueing the other bookings its client pipelined
//! (they join the same commit) and no thread waits. [`GroupCommit::book`]
//! waits on the calling thread instead (for callers outside the server); on
//! tokio's multi-threaded runtime it goes through
//! [`tokio::task::block_in_place`], which hands that worker's other
//! connections to another thread for the time of the wait.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;
use tracing::{error, info};

use super::ledger::Ledger;

/// Most bookings in one transaction; bounds the time one commit holds the
/// ledger's write lock.
pub(crate) const MAX_BATCH: usize = 4096;

/// Longest wait for more bookings before a commit (see [`gather`]).
const MAX_GATHER: Duration = Duration::from_millis(10);

/// The wait for more bookings is at most the last commit's time divided by this.
const GATHER_FRACTION: u32 = 2;

/// The answer to one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Booked and on disk; this many tickets are left after it.
    Booked { left: u64 },
    /// No ticket was left.
    SoldOut,
    /// The ledger failed; nothing is confirmed.
    Failed(Arc<str>),
}

/// One booking waiting for its commit, and who waits for it.
struct Job {
    waiter: Waiter,
}

/// A waiting thread parks; the ledger thread fills in the outcome and
/// unparks it (no std channel per booking: those spin and yield before they
/// sleep, which costs much with hundreds of waiting threads). A waiting task
/// gets the outcome through a oneshot channel (`None` once answered).
enum Waiter {
    Thread(Arc<Slot>),
    Task(Option<oneshot::Sender<Outcome>>),
}

struct Slot {
    outcome: Mutex<Option<Outcome>>,
    done: AtomicBool,
    waiter: Thread,
}

impl Job {
    fn new() -> (Job, Arc<Slot>) {
        let slot = Arc::new(Slot {
            outcome: Mutex::new(None),
            done: AtomicBool::new(false),
            waiter: std::thread::current(),
        });
        (
            Job {
                waiter: Waiter::Thread(slot.clone()),
            },
            slot,
        )
    }

    fn answer(mut self, outcome: Outcome) {
        self.set(outcome);
    }

    fn set(&mut self, outcome: Outcome) {
        match &mut self.waiter {
            Waiter::Thread(slot) => slot.set(outcome),
            Waiter::Task(tx) => {
                if let Some(tx) = tx.take() {
                    // A task that went away no longer waits.
                    let _ = tx.send(outcome);
                }
            }
        }
    }

    fn answered(&self) -> bool {
        match &self.waiter {
            Waiter::Thread(slot) => slot.done.load(Ordering::Acquire),
            Waiter::Task(tx) => tx.is_none(),
        }
    }
}

impl Drop for Job {
    /// A job dropped unanswered (the ledger thread stopped or panicked)
    /// still wakes its waiter, with a failure.
    fn drop(&mut self) {
        if !self.answered() {
            self.set(Outcome::Failed(STOPPED.into()));
        }
    }
}

/// Why a booking failed when the ledger thread is gone.
const STOPPED: &str = "the ledger thread has stopped";

impl Slot {
    fn set(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        self.done.store(true, Ordering::Release);
        self.waiter.unpark();
    }

    /// Parks until the outcome is set.
    fn wait(&self) -> Outcome {
        while !self.done.load(Ordering::Acquire) {
            std::thread::park();
        }
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Outcome::Failed("no answer from the ledger thread".into()))
    }
}

/// The handle the service holds: submits bookings, joins the ledger thread
/// when dropped.
pub(crate) struct GroupCommit {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    left: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the ledger thread; `left` is the stock left at start-up.
    pub fn start(ledger: Ledger, left: u64) -> std::io::Result<GroupCommit> {
        let (jobs, queue) = mpsc::channel();
        let left = Arc::new(AtomicU64::new(left));
        let shared = left.clone();
        let thread = std::thread::Builder::new()
            .name("tickets-ledger".into())
            .spawn(move || commit_loop(ledger, queue, &shared))?;
        Ok(GroupCommit {
            jobs: Some(jobs),
            thread: Some(thread),
            left,
        })
    }

    /// Tickets left as of this server's last commit (another server sharing
    /// the ledger may have sold some since).
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Acquire)
    }

    /// Queues one booking now; the future gives its outcome once it is on
    /// disk (or failed). Bookings queued together share a commit.
    pub fn book_async(&self) -> impl Future<Output = Outcome> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        if let Some(jobs) = &self.jobs {
            // A send that fails drops the job, which answers it.
            let _ = jobs.send(Job {
                waiter: Waiter::Task(Some(tx)),
            });
        }
        async move { rx.await.unwrap_or_else(|_| Outcome::Failed(STOPPED.into())) }
    }

    /// Books one ticket and waits until the booking is on disk (or failed).
    pub fn book(&self) -> Outcome {
        let Some(jobs) = &self.jobs else {
            return Outcome::Failed(STOPPED.into());
        };
        wait_blocking(move || {
            // Made on the thread that waits: it is the one to unpark.
            let (job, slot) = Job::new();
            // A send that fails drops the job, which answers it.
            let _ = jobs.send(job);
            slot.wait()
        })
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue is empty; it
        // then closes the ledger cleanly (checkpointing its WAL).
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `wait`, which blocks, without stalling the other tasks of a
/// multi-threaded tokio runtime. On a current-thread runtime, or outside
/// tokio, it simply blocks (the ledger runs on its own thread, so it still
/// finishes).
fn wait_blocking<T>(wait: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// Adds to `batch` every booking already queued; then, when fewer than the
/// last commit held have come, waits a little for the rest (like
/// PostgreSQL's `commit_delay`).
///
/// The clients answered by the last commit are on their way back with their
/// next booking; a commit started without them makes them wait for the whole
/// next one. Waiting up to a fraction of a commit time for them makes each
/// commit hold about as many bookings as there are clients waiting, which
/// is what makes a slow disk affordable. A lone client never waits (the last
/// commit held one booking), and the wait never exceeds [`MAX_GATHER`].
fn gather(
    queue: &mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    last_size: usize,
    last_time: Duration,
) {
    let take_queued = |batch: &mut Vec<Job>| {
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    };
    take_queued(batch);
    let target = last_size.min(MAX_BATCH);
    if batch.len() >= target {
        return;
    }
    let deadline = Instant::now() + (last_time / GATHER_FRACTION).min(MAX_GATHER);
    while batch.len() < target {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        match queue.recv_timeout(left) {
            Ok(job) => {
                batch.push(job);
                take_queued(batch);
            }
            Err(_) => return,
        }
    }
}

fn commit_loop(mut ledger: Ledger, queue: mpsc::Receiver<Job>, left: &AtomicU64) {
    let mut batch = Vec::with_capacity(64);
    let (mut commits, mut bookings, mut largest) = (0u64, 0u64, 0usize);
    let mut busy = Duration::ZERO;
    // The last commit: how many bookings it held and how long it took.
    let (mut last_size, mut last_time) = (0usize, Duration::ZERO);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        gather(&queue, &mut batch, last_size, last_time);
        let started = Instant::now();
        let result = ledger.book(batch.len() as u64);
        last_time = started.elapsed();
        last_size = batch.len();
        busy += last_time;
        commits += 1;
        bookings += batch.len() as u64;
        largest = largest.max(batch.len());
        match result {
            Ok(granted) => {
                left.store(granted.before.left() - granted.count, Ordering::Release);
                for (i, job) in batch.drain(..).enumerate() {
                    let i = i as u64;
                    let outcome = if i < granted.count {
                        Outcome::Booked {
                            left: granted.left_after(i),
                        }
                    } else {
                        Outcome::SoldOut
                    };
                    // A connection that went away no longer waits; its
                    // booking stands in the ledger.
                    job.answer(outcome);
                }
            }
            Err(e) => {
                error!(
                    ledger = %ledger.path().display(),
                    bookings = batch.len(),
                    error = %e,
                    "tickets ledger: commit failed; these bookings were not confirmed"
                );
                let reason: Arc<str> = e.to_string().into();
                for job in batch.drain(..) {
                    job.answer(Outcome::Failed(reason.clone()));
                }
            }
        }
    }
    if commits > 0 {
        info!(
            ledger = %ledger.path().display(),
            bookings,
            commits,
            mean_batch = format!("{:.1}", bookings as f64 / commits as f64),
            largest_batch = largest,
            mean_commit_ms = format!("{:.2}", busy.as_secs_f64() * 1000.0 / commits as f64),
            "tickets ledger closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(stock: u64) -> (tempfile::TempDir, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, stock, _) =
            Ledger::open(&dir.path().join("t.db"), Some(stock), 5, false).unwrap();
        let commits = GroupCommit::start(ledger, stock.left()).unwrap();
        (dir, commits)
    }

    #[test]
    fn books_until_sold_out_and_counts_down() {
        let (_dir, commits) = start(2);
        assert_eq!(commits.book(), Outcome::Booked { left: 1 });
        assert_eq!(commits.book(), Outcome::Booked { left: 0 });
        assert_eq!(commits.book(), Outcome::SoldOut);
        assert_eq!(commits.left(), 0);
    }

    #[test]
    fn concurrent_bookings_sell_exactly_the_stock_each_left_count_once() {
        let (_dir, commits) = start(150);
        let commits = Arc::new(commits);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let commits = commits.clone();
                std::thread::spawn(move || (0..25).map(|_| commits.book()).collect::<Vec<_>>())
            })
            .collect();
        let outcomes: Vec<Outcome> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let mut left: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Booked { left } => Some(*left),
                _ => None,
            })
            .collect();
        left.sort_unstable();
        assert_eq!(left, (0..150).collect::<Vec<_>>());
        assert_eq!(
            outcomes.iter().filter(|o| **o == Outcome::SoldOut).count(),
            50
        );
    }

    #[tokio::test]
    async fn bookings_queued_at_once_are_answered_in_queue_order() {
        let (_dir, commits) = start(3);
        let pending: Vec<_> = (0..5).map(|_| commits.book_async()).collect();
        let mut outcomes = Vec::new();
        for p in pending {
            outcomes.push(p.await);
        }
        assert_eq!(
            outcomes,
            [
                Outcome::Booked { left: 2 },
                Outcome::Booked { left: 1 },
                Outcome::Booked { left: 0 },
                Outcome::SoldOut,
                Outcome::SoldOut
            ]
        );
        drop(commits);
    }

    #[tokio::test]
    async fn a_booking_queued_after_the_ledger_stopped_fails() {
        let (_dir, mut commits) = start(3);
        drop(commits.jobs.take());
        assert!(matches!(commits.book_async().await, Outcome::Failed(_)));
    }

    #[test]
    fn a_job_dropped_unanswered_wakes_its_waiter_with_a_failure() {
        let (job, slot) = Job::new();
        let dropper = std::thread::spawn(move || drop(job));
        assert!(matches!(slot.wait(), Outcome::Failed(_)));
        dropper.join().unwrap();
        let (job, slot) = Job::new();
        job.answer(Outcome::SoldOut);
        assert_eq!(
            slot.wait(),
            Outcome::SoldOut,
            "an answered job stays answered"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_inside_the_runtime_does_not_stall_it() {
        let (_dir, commits) = start(64);
        let commits = Arc::new(commits);
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let commits = commits.clone();
                tokio::spawn(async move { commits.book() })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Outcome::Booked { .. }));
        }
        assert_eq!(commits.book(), Outcome::SoldOut);
    }
}
