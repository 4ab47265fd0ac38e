//! Delay and jitter, each direction: netem where the kernel has it, else
//! packets held in userspace through NFQUEUE before they are accepted.
//!
//! `tc qdisc add dev eth0 root netem delay 50ms 10ms` in each host is the
//! usual tool. Many kernels (this project's CI, many containers) lack the
//! netem qdisc ("Specified qdisc kind is unknown"); there an iptables rule
//! `-j NFQUEUE --queue-bypass` in each host hands every TCP segment that
//! arrives on `eth0` to a thread of the lab, which holds it for the delay
//! (base ± a uniform jitter) and then gives the verdict ACCEPT.
//!
//! The `nfq` crate speaks the netlink protocol itself (it depends only on
//! libc); the older `nfqueue` crate binds the C libnetfilter_queue, which
//! would add a system library to the build. Verdicts are given in arrival
//! order: a packet never overtakes an earlier one (netem with jitter
//! reorders them, which TCP then reports as out-of-order segments and
//! duplicate ACKs that have nothing to do with the lesson). With
//! `--queue-bypass` and fail-open, a handler that is gone or overwhelmed
//! lets packets through undelayed rather than dropping them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns;
use super::rules::{self, Rule, RuleError};
use super::spec::{Delay, show};

/// The queue number used in every host (each namespace has its own queues).
pub(crate) const QUEUE_NUM: u16 = 1;
/// Most packets the kernel queues for one handler.
const QUEUE_MAX_LEN: u32 = 4096;
/// Longest sleep of the handler between two looks at the queue.
const TICK: Duration = Duration::from_millis(1);

/// The rule that hands what arrives at `netns` to the handler.
pub(crate) fn nfqueue_rule(netns: &str) -> Rule {
    let num = QUEUE_NUM.to_string();
    Rule::tcp_in(
        netns,
        &["-j", "NFQUEUE", "--queue-num", &num, "--queue-bypass"],
    )
}

/// The `ip` arguments of the netem qdisc for `delay` on a host's `eth0`.
pub(crate) fn netem_args(netns: &str, delay: Delay, action: &str) -> Vec<String> {
    let mut args: Vec<String> = ["-n", netns, "qdisc", action, "dev", "eth0", "root"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if action != "del" {
        args.extend(["netem".to_string(), "delay".to_string(), show(delay.base)]);
        if !delay.jitter.is_zero() {
            args.push(show(delay.jitter));
        }
    }
    args
}

/// Tries netem on `netns`: `Ok(true)` when it is in place, `Ok(false)` when
/// the kernel has no netem (so NFQUEUE must do it).
pub(crate) fn try_netem(netns: &str, delay: Delay, verbose: bool) -> Result<bool, RuleError> {
    match rules::ip(&netem_args(netns, delay, "add"), verbose) {
        Ok(()) => Ok(true),
        Err(RuleError::Failed { stderr, .. })
            if stderr.contains("unknown") || stderr.contains("No such file") =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Removes the netem qdisc of `netns`.
pub(crate) fn remove_netem(netns: &str, verbose: bool) -> Result<(), RuleError> {
    rules::ip(
        &netem_args(
            netns,
            Delay {
                base: Duration::ZERO,
                jitter: Duration::ZERO,
            },
            "del",
        ),
        verbose,
    )
}

/// A small xorshift generator for the jitter: the lab needs spread, not
/// cryptographic quality, and the crate stays free of `rand` for one call.
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    /// Seeded from `seed` (0 is replaced by a constant).
    pub fn new(seed: u64) -> Jitter {
        Jitter {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next delay, uniform in `base - jitter ..= base + jitter`.
    pub fn sample(&mut self, delay: Delay) -> Duration {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        if delay.jitter.is_zero() {
            return delay.base;
        }
        let span = delay.jitter.as_nanos() as u64 * 2 + 1;
        let offset = self.state % span;
        (delay.base - delay.jitter) + Duration::from_nanos(offset)
    }
}

/// The NFQUEUE handler of one host: a thread inside the host's namespace.
pub(crate) struct DelayQueue {
    stop: Arc<AtomicBool>,
    held: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Why the handler could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "the NFQUEUE handler for {netns} could not start: {source} (needs root and the kernel's nfnetlink_queue)"
)]
pub struct QueueError {
    /// The host.
    pub netns: String,
    /// Why.
    pub source: std::io::Error,
}

impl DelayQueue {
    /// Starts the handler for queue [`QUEUE_NUM`] in `netns`; returns once
    /// it is bound, so the rule can be added after it.
    pub fn start(netns: &str, delay: Delay, seed: u64) -> Result<DelayQueue, QueueError> {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = mpsc::channel();
        let thread = {
            let (stop, held, name) = (stop.clone(), held.clone(), netns.to_string());
            std::thread::Builder::new()
                .name(format!("nfqueue-{netns}"))
                .spawn(move || serve(&name, delay, seed, &stop, &held, ready_tx))
                .map_err(|source| QueueError {
                    netns: netns.to_string(),
                    source,
                })?
        };
        match ready.recv() {
            Ok(Ok(())) => Ok(DelayQueue {
                stop,
                held,
                thread: Some(thread),
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(QueueError {
                    netns: netns.to_string(),
                    source,
                })
            }
            Err(_) => Err(QueueError {
                netns: netns.to_string(),
                source: std::io::Error::other("the handler thread ended before it was ready"),
            }),
        }
    }

    /// Packets held and released so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Releases every packet still held and ends the handler.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DelayQueue {
    fn drop(&mut self) {
        self.stop();
    }
}

fn open(netns: &str) -> std::io::Result<nfq::Queue> {
    netns::enter(netns)?;
    let mut queue = nfq::Queue::open()?;
    queue.bind(QUEUE_NUM)?;
    // Metadata only: the verdict needs the packet's id, not its bytes.
    queue.set_copy_range(QUEUE_NUM, 0)?;
    queue.set_queue_max_len(QUEUE_NUM, QUEUE_MAX_LEN)?;
    queue.set_fail_open(QUEUE_NUM, true)?;
    queue.set_nonblocking(true);
    Ok(queue)
}

fn serve(
    netns: &str,
    delay: Delay,
    seed: u64,
    stop: &AtomicBool,
    held_count: &AtomicU64,
    ready: mpsc::Sender<std::io::Result<()>>,
) {
    let mut queue = match open(netns) {
        Ok(queue) => {
            let _ = ready.send(Ok(()));
            queue
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let mut jitter = Jitter::new(seed);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut last_due = Instant::now();
    let mut warned = false;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        loop {
            match queue.recv() {
                Ok(msg) => {
                    // In order: never before the packet ahead of it.
                    let due = (Instant::now() + jitter.sample(delay)).max(last_due);
                    last_due = due;
                    held.push_back((due, msg));
                    held_count.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // Once: a persistent error (ENOBUFS under a flood) must
                    // not fill the terminal every millisecond.
                    if !warned {
                        eprintln!("reqresp lab: NFQUEUE in {netns}: {err}");
                        warned = true;
                    }
                    break;
                }
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| stopping || *due <= now) {
            let (_, mut msg) = held.pop_front().expect("front exists");
            msg.set_verdict(nfq::Verdict::Accept);
            if let Err(err) = queue.verdict(msg)
                && !warned
            {
                eprintln!("reqresp lab: NFQUEUE verdict in {netns}: {err}");
                warned = true;
            }
        }
        if stopping {
            break;
        }
        let wait = held.front().map_or(TICK, |(due, _)| {
            due.saturating_duration_since(now).min(TICK)
        });
        std::thread::sleep(wait.max(Duration::from_micros(100)));
    }
    let _ = queue.unbind(QUEUE_NUM);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds_and_spreads() {
        let delay = Delay {
            base: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        };
        let mut j = Jitter::new(42);
        let samples: Vec<Duration> = (0..1000).map(|_| j.sample(delay)).collect();
        assert!(
            samples
                .iter()
                .all(|d| *d >= Duration::from_millis(40) && *d <= Duration::from_millis(60))
        );
        assert!(samples.iter().any(|d| *d < Duration::from_millis(45)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(55)));
        let none = Delay {
            jitter: Duration::ZERO,
            ..delay
        };
        assert_eq!(j.sample(none), Duration::from_millis(50));
    }

    #[test]
    fn netem_command_lines() {
        let delay = Delay {
            base: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        };
        assert_eq!(
            netem_args("rr-0-srv", delay, "add").join(" "),
            "-n rr-0-srv qdisc add dev eth0 root netem delay 50ms 10ms"
        );
        assert_eq!(
            netem_args("rr-0-srv", delay, "del").join(" "),
            "-n rr-0-srv qdisc del dev eth0 root"
        );
        assert!(
            nfqueue_rule("x")
                .display("-A")
                .ends_with("-j NFQUEUE --queue-num 1 --queue-bypass")
        );
    }
}
