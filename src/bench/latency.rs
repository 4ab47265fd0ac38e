//! Latency recording: one HDR histogram for the whole run, and the summary
//! (min, percentiles, max) taken from it.
//!
//! Latencies are recorded in nanoseconds with 3 significant digits, so every
//! reported value is within 0.1 % of the true one whatever its size, from a
//! few microseconds on loopback to seconds behind a stalled server, up to a
//! day (longer than any run can last), in one fixed histogram of ~300 kB.
//!
//! Connections do not lock the shared histogram per response: each keeps a
//! small batch of samples and adds it under the lock when it is full.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits the histogram keeps.
pub(crate) const SIGNIFICANT_DIGITS: u8 = 3;

/// The highest latency tracked exactly: a day, in nanoseconds. A run is at
/// most an hour of warmup, an hour of measuring and an hour of timeout.
const HIGHEST_NS: u64 = 24 * 3600 * 1_000_000_000;

/// Samples a connection gathers before taking the shared lock.
const BATCH: usize = 1024;

/// The run's histogram of latencies in nanoseconds, shared by every connection.
#[derive(Debug)]
pub(crate) struct Latencies {
    histogram: Mutex<Histogram<u64>>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
            .expect("1 ns to a day at 3 significant digits is a valid histogram");
        Latencies {
            histogram: Mutex::new(histogram),
        }
    }

    /// A recorder for one connection, adding its samples here in batches.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            shared: self,
            batch: Vec::with_capacity(BATCH),
        }
    }

    fn add(&self, samples: &[u64]) {
        // A poisoned lock only means another connection panicked mid-add;
        // its counts are still consistent enough to keep recording.
        let mut histogram = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        for &ns in samples {
            histogram.saturating_record(ns);
        }
    }

    /// The summary of everything recorded so far, or `None` when nothing was.
    pub fn summary(&self) -> Option<LatencySummary> {
        let histogram = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        LatencySummary::of(&histogram)
    }
}

/// Gathers one connection's samples and hands them to [`Latencies`] in
/// batches; the rest on drop.
#[derive(Debug)]
pub(crate) struct Recorder<'a> {
    shared: &'a Latencies,
    batch: Vec<u64>,
}

impl Recorder<'_> {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.batch
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.shared.add(&self.batch);
        self.batch.clear();
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if !self.batch.is_empty() {
            self.flush();
        }
    }
}

/// The latency distribution of a run, in microseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Responses measured.
    pub count: u64,
    /// Fastest response.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median: half of the responses were at least this fast.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest response.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarizes a histogram of nanoseconds; `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<LatencySummary> {
        if histogram.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        // Each percentile is the highest value equivalent to the recorded
        // ones (hdrhistogram's convention), so it never understates.
        let at = |q: f64| us(histogram.value_at_quantile(q));
        Some(LatencySummary {
            count: histogram.len(),
            min_us: us(histogram.min()),
            mean_us: histogram.mean() / 1000.0,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: us(histogram.highest_equivalent(histogram.max())),
        })
    }
}

/// A number with 3 significant digits (no exponent): `1.25`, `31.2`, `180`,
/// `4521` (integers of 4 digits or more are shown whole).
pub(crate) fn three_digits(value: f64) -> String {
    if value >= 99.95 {
        format!("{value:.0}")
    } else if value >= 9.995 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_never_shows_four_digits_below_a_hundred() {
        assert_eq!(three_digits(9.999), "10.0");
        assert_eq!(three_digits(99.96), "100");
        assert_eq!(three_digits(0.0), "0.00");
    }

    #[test]
    fn percentiles_are_ordered_and_within_precision() {
        let latencies = Latencies::new();
        {
            let mut rec = latencies.recorder();
            // 1..=10_000 µs, uniformly.
            for i in 1..=10_000u64 {
                rec.record(Duration::from_micros(i));
            }
        }
        let s = latencies.summary().unwrap();
        assert_eq!(s.count, 10_000);
        let ordered = [s.min_us, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us];
        assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "{ordered:?}");
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.min_us, 1.0), "{s:?}");
        assert!(close(s.p50_us, 5000.0), "{s:?}");
        assert!(close(s.p90_us, 9000.0), "{s:?}");
        assert!(close(s.p99_us, 9900.0), "{s:?}");
        assert!(close(s.p999_us, 9990.0), "{s:?}");
        assert!(close(s.max_us, 10_000.0), "{s:?}");
        assert!(close(s.mean_us, 5000.5), "{s:?}");
    }

    #[test]
    fn one_slow_response_shows_in_the_tail_only() {
        let latencies = Latencies::new();
        let mut rec = latencies.recorder();
        for _ in 0..999 {
            rec.record(Duration::from_micros(50));
        }
        rec.record(Duration::from_secs(3));
        drop(rec);
        let s = latencies.summary().unwrap();
        assert!((s.p99_us - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.max_us - 3_000_000.0).abs() <= 3000.0, "{s:?}");
    }

    #[test]
    fn samples_of_several_recorders_are_all_counted() {
        let latencies = Latencies::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let mut rec = latencies.recorder();
                    for i in 0..2500u64 {
                        rec.record(Duration::from_nanos(1000 + i));
                    }
                });
            }
        });
        assert_eq!(latencies.summary().unwrap().count, 10_000);
    }

    #[test]
    fn nothing_recorded_has_no_summary() {
        assert_eq!(Latencies::new().summary(), None);
    }
}
