//! The open-loop schedule and the thread that keeps it.
//!
//! Request `j` of connection `k` (of `c`) is due at
//! `start + j × interval + k × interval / c`: each connection sends at a
//! fixed interval, and the connections are spread evenly over it.
//!
//! Why a thread and not `tokio::time::sleep`: tokio's timer wheel ticks
//! every millisecond and rounds deadlines up to the next tick, so a request
//! due in 300 µs would go out up to a millisecond late, and since open-loop
//! latency counts from when a request was due, that lateness would be added
//! to every sample — larger than a whole request/response on loopback. A
//! plain thread sleeping with `nanosleep` and a timer slack of 1 µs wakes
//! within tens of microseconds, then wakes the connection whose request is
//! due through a [`Notify`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest single sleep, so the thread notices [`Pacer::stop`] soon.
const MAX_NAP: Duration = Duration::from_millis(20);

/// When each request of an open-loop run is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// When the first request of connection 0 is due.
    pub start: Instant,
    /// Time between two requests of one connection, in nanoseconds.
    pub interval_ns: u64,
    /// Connections sharing the schedule.
    pub connections: u64,
}

impl Schedule {
    /// A schedule of `rate` requests per second spread over `connections`.
    pub fn new(start: Instant, rate: f64, connections: usize) -> Schedule {
        let interval_ns = (connections as f64 * 1e9 / rate).round().max(1.0) as u64;
        Schedule {
            start,
            interval_ns,
            connections: connections.max(1) as u64,
        }
    }

    /// When request `j` of connection `k` is due. The connections and the
    /// pacer both use this, so they agree to the nanosecond.
    pub fn due(&self, k: usize, j: u64) -> Instant {
        let offset = j as u128 * self.interval_ns as u128
            + (k as u128 * self.interval_ns as u128) / self.connections as u128;
        self.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }
}

/// A thread that wakes each connection when its next request is due.
#[derive(Debug)]
pub(crate) struct Pacer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts the thread for `schedule` until `stop_at`; returns it and one
    /// [`Notify`] per connection.
    pub fn start(schedule: Schedule, stop_at: Instant) -> (Pacer, Vec<Arc<Notify>>) {
        let wakers: Vec<Arc<Notify>> = (0..schedule.connections)
            .map(|_| Arc::new(Notify::new()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let wakers = wakers.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("reqresp-pacer".into())
                .spawn(move || pace(schedule, stop_at.into_std(), &wakers, &stop))
                .expect("spawning the pacer thread")
        };
        (
            Pacer {
                stop,
                thread: Some(thread),
            },
            wakers,
        )
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn pace(
    schedule: Schedule,
    stop_at: std::time::Instant,
    wakers: &[Arc<Notify>],
    stop: &AtomicBool,
) {
    // The kernel may delay a sleeping thread's wakeup by its "timer slack"
    // (50 µs by default) to batch wakeups; ask for 1 µs.
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
    for j in 0.. {
        for (k, waker) in wakers.iter().enumerate() {
            let due = schedule.due(k, j).into_std();
            if due >= stop_at {
                return;
            }
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let now = std::time::Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(MAX_NAP));
            }
            waker.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_spread_over_one_interval() {
        let start = Instant::now();
        let s = Schedule::new(start, 1000.0, 4); // 4 ms per connection
        assert_eq!(s.interval_ns, 4_000_000);
        let offsets: Vec<u128> = [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (3, 2)]
            .iter()
            .map(|&(k, j)| (s.due(k, j) - start).as_nanos())
            .collect();
        assert_eq!(
            offsets,
            [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 11_000_000]
        );
    }

    #[tokio::test]
    async fn every_connection_is_woken_on_time_until_the_end() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 2000.0, 2); // 1 ms apart per connection
        let stop_at = start + Duration::from_millis(50);
        let (pacer, wakers) = Pacer::start(schedule, stop_at);
        let mut handles = Vec::new();
        for (k, waker) in wakers.into_iter().enumerate() {
            // The last request of this connection due before the stop.
            let final_due = (0..)
                .map(|j| schedule.due(k, j))
                .take_while(|due| *due < stop_at)
                .last()
                .unwrap();
            handles.push(tokio::spawn(async move {
                let mut woken = 0u64;
                // Until woken for the last request: the timeout only bounds
                // a test whose pacer stopped early.
                while tokio::time::timeout(Duration::from_secs(10), waker.notified())
                    .await
                    .is_ok()
                {
                    // Never woken before the request is due (wake-ups that
                    // merged while this task was slow make `woken` lag, which
                    // only makes the check looser).
                    assert!(Instant::now() >= schedule.due(k, woken));
                    woken += 1;
                    if Instant::now() >= final_due {
                        return woken;
                    }
                }
                panic!("connection {k} was not woken for its last request, after {woken} wake-ups");
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        pacer.stop();
        // 50 ms at 2000 req/s: 100 requests, never more wake-ups than that.
        // How many fewer is not checked: on a loaded machine a slow task
        // sees several wake-ups as one stored permit.
        assert!((2..=100).contains(&total), "{total}");
    }
}
