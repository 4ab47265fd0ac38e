//! A partition: DROP rules at the top of both hosts' INPUT chains from a
//! start time for a length of time, then deleted again.
//!
//! A timer thread adds and removes them; dropping [`PartitionTimer`] stops
//! it early and removes the rules if they are in place. The rules live in
//! the hosts' namespaces, so a lab killed mid-partition leaves them only in
//! namespaces that `reqresp lab --down` deletes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::rules::Rule;
use super::spec::Partition;

/// The rule that cuts `netns` off.
pub(crate) fn rule(netns: &str) -> Rule {
    Rule::tcp_in(netns, &["-j", "DROP"])
}

/// When the partition began and ended, seen from the lab's clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PartitionLog {
    /// When the DROP rules were in place.
    pub began: Option<Instant>,
    /// When they were removed.
    pub ended: Option<Instant>,
}

/// A partition under way (or scheduled).
pub(crate) struct PartitionTimer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    log: Arc<Mutex<PartitionLog>>,
    errors: Arc<Mutex<Vec<String>>>,
}

/// Step of the timer's sleep, so a stop is noticed quickly.
const TICK: Duration = Duration::from_millis(10);

fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < deadline {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(TICK.min(deadline.saturating_duration_since(Instant::now())));
    }
    true
}

impl PartitionTimer {
    /// Schedules `partition` between the hosts `netns`, counted from now.
    pub fn start(partition: Partition, netns: &[String], verbose: bool) -> PartitionTimer {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(PartitionLog::default()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let rules: Vec<Rule> = netns.iter().map(|n| rule(n)).collect();
        let t0 = Instant::now();
        let thread = {
            let (stop, log, errors) = (stop.clone(), log.clone(), errors.clone());
            std::thread::spawn(move || {
                let note = |e: String| errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                if !sleep_until(t0 + partition.start, &stop) {
                    return;
                }
                let mut added = Vec::new();
                for rule in &rules {
                    match rule.add("-I", verbose) {
                        Ok(()) => added.push(rule),
                        Err(e) => note(e.to_string()),
                    }
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).began = Some(Instant::now());
                sleep_until(t0 + partition.start + partition.length, &stop);
                for rule in added {
                    if let Err(e) = rule.delete(verbose) {
                        note(e.to_string());
                    }
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).ended = Some(Instant::now());
            })
        };
        PartitionTimer {
            stop,
            thread: Some(thread),
            log,
            errors,
        }
    }

    /// When it began and ended so far.
    pub fn log(&self) -> PartitionLog {
        *self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the timer, removing the rules if they are in place; returns
    /// the errors met on the way.
    pub fn finish(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for PartitionTimer {
    fn drop(&mut self) {
        for err in self.finish() {
            eprintln!("reqresp lab: partition: {err}");
        }
    }
}
