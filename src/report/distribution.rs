//! A latency distribution that stays exact while it is small and bounded
//! when it is not: every value is kept (8 bytes each, so the percentiles
//! are values of the data, never estimates) until the values kept across
//! all the distributions of one summary reach a shared budget; past it,
//! the distribution that wants to grow folds its values into an HDR
//! histogram (3 significant digits, as `bench` uses) and its percentiles
//! are then estimates within 0.1 %, said in the summary (`estimated`).
//!
//! Why: a capture of 2,000,000 connections exchanging three times held
//! 6,000,000 latencies per distribution, about 150 MB in vectors that
//! double, past the analyzer's whole memory target (issue 9).

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency distribution, in microseconds; `null` values when no exchange had a latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// How many latencies the percentiles are computed from.
    pub count: u64,
    /// Median (nearest-rank 50th percentile), in µs.
    pub p50_us: Option<f64>,
    /// Nearest-rank 99th percentile, in µs.
    pub p99_us: Option<f64>,
    /// Largest latency, in µs.
    pub max_us: Option<f64>,
    /// True when there were too many latencies to keep each one, so p50
    /// and p99 are estimates within 0.1 % (see [`Distribution`]);
    /// absent from the JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// The nearest-rank percentile `p` (0–100) of `sorted`, which must be sorted
/// ascending: the smallest value such that at least `p`% of the values are
/// less than or equal to it. `None` for an empty slice. An exact value of
/// the data, never interpolated.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Values kept exactly, over all the distributions of one summary:
/// 4 Mi values, 32 MiB.
pub(crate) const EXACT_VALUES: usize = 4 << 20;

/// How many exact values a summary may still keep.
#[derive(Debug, Clone)]
pub(crate) struct ExactBudget {
    left: usize,
}

impl Default for ExactBudget {
    fn default() -> Self {
        ExactBudget::new(EXACT_VALUES)
    }
}

impl ExactBudget {
    /// A budget of `values` exact values.
    pub(crate) fn new(values: usize) -> Self {
        ExactBudget { left: values }
    }
}

/// Latencies in microseconds, exact or folded into a histogram.
#[derive(Debug, Clone, Default)]
pub(crate) struct Distribution {
    exact: Vec<f64>,
    folded: Option<Folded>,
}

/// The histogram a distribution folds into, with what it cannot tell.
#[derive(Debug, Clone)]
struct Folded {
    /// Nanoseconds, 3 significant digits.
    histogram: Histogram<u64>,
    /// The largest value, exact.
    max: f64,
}

impl Folded {
    fn new() -> Self {
        Folded {
            // 1 ns .. 2 ns growing as needed: never fails to record.
            histogram: Histogram::new(3).expect("3 significant digits are valid"),
            max: f64::NEG_INFINITY,
        }
    }

    fn record(&mut self, us: f64) {
        self.max = self.max.max(us);
        // Negative or non-finite values never reach here (see push), and
        // u64 nanoseconds cover 584 years.
        let ns = (us * 1000.0).round().max(0.0) as u64;
        // Records grow the histogram (auto-resize); only a value past
        // what it can ever track is clamped.
        if self.histogram.record(ns).is_err() {
            self.histogram.saturating_record(ns);
        }
    }
}

impl Distribution {
    /// Adds a latency in µs; a value that is not finite is ignored.
    pub(crate) fn push(&mut self, us: f64, budget: &mut ExactBudget) {
        if !us.is_finite() {
            return;
        }
        if let Some(folded) = &mut self.folded {
            folded.record(us);
        } else if budget.left > 0 {
            budget.left -= 1;
            self.exact.push(us);
        } else {
            let mut folded = Folded::new();
            budget.left += self.exact.len();
            for v in std::mem::take(&mut self.exact) {
                folded.record(v);
            }
            folded.record(us);
            self.folded = Some(folded);
        }
    }

    /// Adds every value of `values`.
    pub(crate) fn extend(&mut self, values: impl IntoIterator<Item = f64>, b: &mut ExactBudget) {
        for v in values {
            self.push(v, b);
        }
    }

    /// p50, p99 and max: nearest-rank values of the data while exact,
    /// hdrhistogram's highest equivalent values once folded.
    pub(crate) fn summary(mut self) -> LatencySummary {
        let Some(folded) = self.folded else {
            self.exact.sort_unstable_by(f64::total_cmp);
            return LatencySummary {
                count: self.exact.len() as u64,
                p50_us: percentile(&self.exact, 50.0),
                p99_us: percentile(&self.exact, 99.0),
                max_us: self.exact.last().copied(),
                estimated: false,
            };
        };
        let h = &folded.histogram;
        // Never above the exact maximum, which the histogram's bucket
        // rounding could overstate.
        let at = |q: f64| Some((h.value_at_quantile(q) as f64 / 1000.0).min(folded.max));
        LatencySummary {
            count: h.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: Some(folded.max),
            estimated: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_known_data() {
        // The textbook example: 15, 20, 35, 40, 50.
        let data = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&data, 5.0), Some(15.0));
        assert_eq!(percentile(&data, 30.0), Some(20.0));
        assert_eq!(percentile(&data, 40.0), Some(20.0));
        assert_eq!(percentile(&data, 50.0), Some(35.0));
        assert_eq!(percentile(&data, 100.0), Some(50.0));
        assert_eq!(percentile(&data, 0.0), Some(15.0));
    }

    #[test]
    fn p99_of_a_hundred_values_is_the_ninety_ninth() {
        let data: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&data, 50.0), Some(50.0));
        assert_eq!(percentile(&data, 99.0), Some(99.0));
        let data: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&data, 99.0), Some(990.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn summary_of(values: impl IntoIterator<Item = f64>, budget: usize) -> LatencySummary {
        let mut budget = ExactBudget::new(budget);
        let mut d = Distribution::default();
        d.extend(values, &mut budget);
        d.summary()
    }

    #[test]
    fn within_the_budget_the_percentiles_are_values_of_the_data() {
        let s = summary_of((1..=1000).map(f64::from), 1000);
        assert!(!s.estimated);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, Some(500.0));
        assert_eq!(s.p99_us, Some(990.0));
        assert_eq!(s.max_us, Some(1000.0));
    }

    #[test]
    fn past_the_budget_they_are_estimates_within_a_thousandth() {
        let values = (1..=100_000).map(|i| f64::from(i) * 1.234);
        let exact = summary_of(values.clone(), usize::MAX);
        let folded = summary_of(values, 10);
        assert!(folded.estimated);
        assert_eq!(folded.count, exact.count);
        assert_eq!(folded.max_us, exact.max_us);
        for (e, f) in [(exact.p50_us, folded.p50_us), (exact.p99_us, folded.p99_us)] {
            let (e, f) = (e.unwrap(), f.unwrap());
            assert!((f - e).abs() <= e * 0.001 + 0.001, "{e} vs {f}");
        }
    }

    #[test]
    fn distributions_share_one_budget_and_give_back_what_they_fold() {
        let mut budget = ExactBudget::new(5);
        let (mut a, mut b) = (Distribution::default(), Distribution::default());
        a.extend([1.0, 2.0, 3.0, 4.0], &mut budget);
        b.extend([5.0], &mut budget);
        // The budget is spent: the next value folds `a`, whose 4 values
        // go back to the budget for `b`.
        a.push(6.0, &mut budget);
        b.extend([7.0, 8.0, 9.0, 10.0], &mut budget);
        let (a, b) = (a.summary(), b.summary());
        assert!(a.estimated && !b.estimated);
        assert_eq!(a.count, 5);
        assert_eq!(b.count, 5);
        assert_eq!(b.p50_us, Some(8.0));
    }

    #[test]
    fn values_that_are_not_finite_or_huge_never_panic() {
        let s = summary_of([f64::NAN, f64::INFINITY, 0.0, 1e15, -0.0], 1);
        assert!(s.estimated);
        assert_eq!(s.count, 3);
        assert_eq!(s.max_us, Some(1e15));
    }
}
