//! The result of a run ([`BenchReport`]) and its two renderings: a short
//! text for people, JSON (the same fields, serde) for scripts.
//!
//! JSON keys, all always present (`null` where noted):
//!
//! | key | meaning |
//! |---|---|
//! | `target` | address the connections went to |
//! | `framing`, `connections`, `pipeline`, `request_bytes` | the settings |
//! | `mode` | `closed-loop` or `open-loop` |
//! | `rate` | requested req/s in open loop, else `null` |
//! | `warmup_secs` | seconds run before measuring |
//! | `elapsed_secs` | measured seconds: from the end of warmup to the last response |
//! | `planned` | requests asked for with `-n`, else `null` |
//! | `requests` | requests sent while measuring |
//! | `responses` | responses received to them |
//! | `unsent` | planned requests never sent (a connection was lost) |
//! | `errors` | `{total, mismatch, timeout, closed, io, protocol}` |
//! | `connections_lost` | connections that ended early |
//! | `first_error` | the first error's message, or `null` |
//! | `throughput` | `{requests_per_sec, sent_mb_per_sec, received_mb_per_sec}` (MB = 10⁶ bytes) |
//! | `bytes_sent`, `bytes_received` | on the wire, framing included |
//! | `latency` | `{count, min_us, mean_us, p50_us, p90_us, p99_us, p999_us, max_us}` or `null` when no response was measured |
//! | `latency_from` | `sent` (closed loop) or `due` (open loop: from when each request was scheduled) |

use std::fmt::Write as _;

use serde::Serialize;

use super::latency::{LatencySummary, three_digits};
use crate::human::format_micros;
use crate::protocol::Framing;

/// How requests were scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Each connection sends a new request as soon as a pipeline slot frees up.
    ClosedLoop,
    /// Requests are due at fixed intervals, whatever the server does.
    OpenLoop,
}

/// Where each latency is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyFrom {
    /// From the write of the request.
    Sent,
    /// From when the request was due by the schedule.
    Due,
}

/// Errors of a run, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// All of them.
    pub total: u64,
    /// Responses that did not match what was expected.
    pub mismatch: u64,
    /// Requests with no response within the timeout.
    pub timeout: u64,
    /// Requests lost because the server closed the connection.
    pub closed: u64,
    /// Requests lost to a socket error (reset, ...).
    pub io: u64,
    /// Responses that could not be framed, or came with no request.
    pub protocol: u64,
}

/// Requests per second and megabytes per second each way.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Responses per second of measured time.
    pub requests_per_sec: f64,
    /// Request bytes per second, in MB (10⁶ bytes).
    pub sent_mb_per_sec: f64,
    /// Response bytes per second, in MB (10⁶ bytes).
    pub received_mb_per_sec: f64,
}

/// Everything a run measured. See the module doc for the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The address the connections went to.
    pub target: String,
    /// The framing used.
    pub framing: Framing,
    /// Connections used.
    pub connections: usize,
    /// Most requests in flight per connection.
    pub pipeline: usize,
    /// Size of each request's payload in bytes.
    pub request_bytes: usize,
    /// How requests were scheduled.
    pub mode: Mode,
    /// Requested rate (req/s) in open loop.
    pub rate: Option<f64>,
    /// Seconds run before measuring.
    pub warmup_secs: f64,
    /// Measured seconds, from the end of warmup to the last response.
    pub elapsed_secs: f64,
    /// Requests asked for with `-n`.
    pub planned: Option<u64>,
    /// Requests sent while measuring.
    pub requests: u64,
    /// Responses received to them.
    pub responses: u64,
    /// Planned requests that were never sent.
    pub unsent: u64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Connections that ended early.
    pub connections_lost: usize,
    /// The first error's message.
    pub first_error: Option<String>,
    /// Rates over the measured time.
    pub throughput: Throughput,
    /// Request bytes sent, framing included.
    pub bytes_sent: u64,
    /// Response bytes received, framing included.
    pub bytes_received: u64,
    /// The latency distribution, if any response was measured.
    pub latency: Option<LatencySummary>,
    /// Where latencies are measured from.
    pub latency_from: LatencyFrom,
}

impl BenchReport {
    /// True when every planned request got a good response.
    pub fn is_clean(&self) -> bool {
        self.errors.total == 0 && self.unsent == 0 && self.connections_lost == 0
    }

    /// One line saying what went wrong, or `None` for a clean run.
    pub fn problem(&self) -> Option<String> {
        if self.is_clean() {
            return None;
        }
        let mut line = format!(
            "{} error(s) in {} requests",
            self.errors.total, self.requests
        );
        if let Some(kinds) = error_kinds(&self.errors) {
            let _ = write!(line, " ({kinds})");
        }
        if self.connections_lost > 0 {
            let _ = write!(line, ", {} connection(s) lost", self.connections_lost);
        }
        if self.unsent > 0 {
            let _ = write!(line, ", {} request(s) never sent", self.unsent);
        }
        if let Some(first) = &self.first_error {
            let _ = write!(line, "; first: {first}");
        }
        Some(line)
    }

    /// The report as JSON (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("a report is plain data and always serializes");
        text.push('\n');
        text
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let schedule = match (self.mode, self.rate) {
            (Mode::OpenLoop, Some(rate)) => format!("open loop at {} req/s", number(rate)),
            _ => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "reqresp bench {}: {} connection(s), {schedule}, pipeline {}, {} framing, {}-byte requests",
            self.target, self.connections, self.pipeline, self.framing, self.request_bytes
        );
        let warmup = if self.warmup_secs > 0.0 {
            format!(" after {} of warmup", secs(self.warmup_secs))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  requests     {} sent, {} answered, {} error(s) in {}{warmup}",
            self.requests,
            self.responses,
            self.errors.total,
            secs(self.elapsed_secs)
        );
        let _ = writeln!(
            out,
            "  throughput   {} req/s; {} MB/s sent, {} MB/s received",
            number(self.throughput.requests_per_sec),
            three_digits(self.throughput.sent_mb_per_sec),
            three_digits(self.throughput.received_mb_per_sec)
        );
        match &self.latency {
            Some(l) => {
                let from = match self.latency_from {
                    LatencyFrom::Sent => "from each request's write",
                    LatencyFrom::Due => "from when each request was due",
                };
                let _ = writeln!(
                    out,
                    "  latency      min {}, p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({from})",
                    format_micros(l.min_us),
                    format_micros(l.p50_us),
                    format_micros(l.p90_us),
                    format_micros(l.p99_us),
                    format_micros(l.p999_us),
                    format_micros(l.max_us)
                );
            }
            None => {
                let _ = writeln!(out, "  latency      no response measured");
            }
        }
        if let Some(kinds) = error_kinds(&self.errors) {
            let _ = writeln!(out, "  errors       {kinds}");
        }
        if self.connections_lost > 0 {
            let _ = writeln!(
                out,
                "  lost         {} of {} connection(s) ended early",
                self.connections_lost, self.connections
            );
        }
        if self.unsent > 0 {
            let _ = writeln!(
                out,
                "  unsent       {} of {} planned request(s)",
                self.unsent,
                self.planned.unwrap_or(self.requests + self.unsent)
            );
        }
        if let Some(first) = &self.first_error {
            let _ = writeln!(out, "  first error  {first}");
        }
        out
    }
}

/// `2 timeouts, 1 mismatch`, or `None` when there is no error.
fn error_kinds(e: &ErrorCounts) -> Option<String> {
    let kinds = [
        (e.timeout, "timeout", "timeouts"),
        (e.closed, "closed by the server", "closed by the server"),
        (e.io, "socket error", "socket errors"),
        (e.protocol, "protocol error", "protocol errors"),
        (e.mismatch, "mismatch", "mismatches"),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|&(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Seconds as a duration for people: `1.230 s`.
fn secs(s: f64) -> String {
    format_micros(s * 1e6)
}

/// A rate as a whole number when large, else with 3 significant digits.
fn number(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        three_digits(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BenchReport {
        BenchReport {
            target: "127.0.0.1:2222".into(),
            framing: Framing::Line,
            connections: 16,
            pipeline: 1,
            request_bytes: 16,
            mode: Mode::ClosedLoop,
            rate: None,
            warmup_secs: 0.0,
            elapsed_secs: 1.2345,
            planned: Some(100_000),
            requests: 100_000,
            responses: 100_000,
            unsent: 0,
            errors: ErrorCounts::default(),
            connections_lost: 0,
            first_error: None,
            throughput: Throughput {
                requests_per_sec: 81_004.45,
                sent_mb_per_sec: 1.377,
                received_mb_per_sec: 1.863,
            },
            bytes_sent: 1_700_000,
            bytes_received: 2_300_000,
            latency: Some(LatencySummary {
                count: 100_000,
                min_us: 12.03,
                mean_us: 190.0,
                p50_us: 180.2,
                p90_us: 240.1,
                p99_us: 1203.0,
                p999_us: 2100.0,
                max_us: 5003.0,
            }),
            latency_from: LatencyFrom::Sent,
        }
    }

    #[test]
    fn clean_run_as_text() {
        assert_eq!(
            sample().to_text(),
            "\
reqresp bench 127.0.0.1:2222: 16 connection(s), closed loop, pipeline 1, line framing, 16-byte requests
  requests     100000 sent, 100000 answered, 0 error(s) in 1.234 s
  throughput   81004 req/s; 1.38 MB/s sent, 1.86 MB/s received
  latency      min 0.012 ms, p50 0.180 ms, p90 0.240 ms, p99 1.203 ms, p99.9 2.100 ms, max 5.003 ms (from each request's write)
"
        );
        assert!(sample().is_clean());
        assert_eq!(sample().problem(), None);
    }

    #[test]
    fn failed_open_loop_run_as_text() {
        let mut r = sample();
        r.mode = Mode::OpenLoop;
        r.rate = Some(500.0);
        r.warmup_secs = 1.0;
        r.latency = None;
        r.latency_from = LatencyFrom::Due;
        r.responses = 0;
        r.requests = 20;
        r.unsent = 99_980;
        r.connections_lost = 16;
        r.errors = ErrorCounts {
            total: 20,
            timeout: 19,
            mismatch: 1,
            ..ErrorCounts::default()
        };
        r.first_error = Some("connection 0: no response within 5 s".into());
        let text = r.to_text();
        assert!(text.starts_with(
            "reqresp bench 127.0.0.1:2222: 16 connection(s), open loop at 500 req/s,"
        ));
        assert!(text.contains("0 answered, 20 error(s) in 1.234 s after 1.000 s of warmup\n"));
        assert!(text.contains("  latency      no response measured\n"));
        assert!(text.contains("  errors       19 timeouts, 1 mismatch\n"));
        assert!(text.contains("  lost         16 of 16 connection(s) ended early\n"));
        assert!(text.contains("  unsent       99980 of 100000 planned request(s)\n"));
        assert!(text.ends_with("  first error  connection 0: no response within 5 s\n"));
        assert_eq!(
            r.problem().unwrap(),
            "20 error(s) in 20 requests (19 timeouts, 1 mismatch), 16 connection(s) lost, \
             99980 request(s) never sent; first: connection 0: no response within 5 s"
        );
    }

    #[test]
    fn json_has_the_documented_keys() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in [
            "target",
            "framing",
            "connections",
            "pipeline",
            "request_bytes",
            "mode",
            "rate",
            "warmup_secs",
            "elapsed_secs",
            "planned",
            "requests",
            "responses",
            "unsent",
            "errors",
            "connections_lost",
            "first_error",
            "throughput",
            "bytes_sent",
            "bytes_received",
            "latency",
            "latency_from",
        ] {
            assert!(keys.contains(&key), "missing {key} in {keys:?}");
        }
        assert_eq!(keys.len(), 21, "undocumented key in {keys:?}");
        assert_eq!(json["mode"], "closed-loop");
        assert_eq!(json["framing"], "line");
        assert_eq!(json["latency_from"], "sent");
        assert_eq!(json["latency"]["p999_us"], 2100.0);
        assert_eq!(json["errors"]["total"], 0);
        assert_eq!(json["throughput"]["requests_per_sec"], 81_004.45);
    }
}
