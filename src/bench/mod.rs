//! The load generator behind `reqresp bench`: many connections sending
//! framed requests to a request/response server, with honest latency
//! percentiles.
//!
//! [`run`] takes a [`BenchConfig`], opens every connection first (a run
//! where some cannot connect is refused, with how many failed and why),
//! then drives each from its own task (`load`) and returns a
//! `BenchReport`. A run is always bounded: by a number of requests or by
//! a duration (at most `MAX_DURATION`), and each request by a timeout.
//!
//! - `latency`: the HDR histogram and its summary.
//! - `pacer`: the open-loop schedule and the thread that keeps it.
//! - `report`: the report and its text and JSON forms.
//!
//! Closed loop (the default) measures from each request's write to its
//! response. Open loop (`rate`) schedules requests at fixed intervals and
//! measures from when each was due, so a stalled server is not hidden by
//! the generator politely waiting for it (see `load` and
//! docs/benchmark-server.md).

pub(crate) mod latency;
pub(crate) mod load;
pub(crate) mod pacer;
pub(crate) mod report;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use load::Live;
pub(crate) use report::{BenchReport, ErrorCounts, LatencyFrom, Mode, Throughput};

use crate::client::with_default_port;
use crate::protocol::Framing;
use load::{ConnStats, Plan, Quota};

/// Connections opened unless told otherwise.
pub const DEFAULT_CONNECTIONS: usize = 16;
/// How long a run lasts when neither a count nor a duration is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Request payload size unless told otherwise.
pub const DEFAULT_SIZE: usize = 16;
/// How long a connection attempt and each request may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The response an echo server gives starts with this.
pub(crate) const DEFAULT_ECHO_PREFIX: &str = "Echo: ";

/// The longest run (measured part), and the cap on `-n` runs too.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The most requests one run may ask for.
pub(crate) const MAX_REQUESTS: u64 = 1_000_000_000;
/// The most connections one run may open.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;
/// The deepest pipeline.
pub(crate) const MAX_PIPELINE: usize = 4096;
/// The largest request payload.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// The most request bytes one connection may have in flight.
pub(crate) const MAX_INFLIGHT_BYTES: usize = 16 << 20;
/// The highest open-loop rate.
pub(crate) const MAX_RATE: f64 = 10_000_000.0;

/// Connection attempts made at once, so a large `-c` does not overflow the
/// server's listen backlog (dropped SYNs would cost a 1 s retransmit each).
const CONNECTS_AT_ONCE: usize = 64;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests (spread over the connections) are answered.
    Requests(u64),
    /// After this long (warmup not included).
    Duration(Duration),
}

/// What a response must look like to count as good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes (an echo server: `Echo: <request>`).
    Exact(Vec<u8>),
    /// Anything starting with these bytes (empty: any response).
    Prefix(Vec<u8>),
}

impl Expect {
    /// True when `response` is acceptable.
    pub fn accepts(&self, response: &[u8]) -> bool {
        match self {
            Expect::Exact(bytes) => response == bytes.as_slice(),
            Expect::Prefix(prefix) => response.starts_with(prefix),
        }
    }

    /// What is expected, for an error message.
    pub fn describe(&self) -> String {
        match self {
            Expect::Exact(bytes) => load::preview(bytes),
            Expect::Prefix(prefix) => format!("a response starting with {}", load::preview(prefix)),
        }
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Server address, `host:port` (a missing port means 2222).
    pub addr: String,
    /// Connections to open.
    pub connections: usize,
    /// When to stop.
    pub stop: Stop,
    /// Most requests in flight per connection (1: wait for each response).
    pub pipeline: usize,
    /// Open loop: requests per second over all connections.
    pub rate: Option<f64>,
    /// How messages are delimited.
    pub framing: Framing,
    /// The request payload sent every time.
    pub message: Vec<u8>,
    /// What a good response looks like.
    pub expect: Expect,
    /// Time run before measuring starts.
    pub warmup: Duration,
    /// Bound on connecting and on each request.
    pub timeout: Duration,
}

impl BenchConfig {
    /// A closed-loop run against an echo server at `addr` with the
    /// defaults of `reqresp bench`.
    pub fn new(addr: impl Into<String>) -> BenchConfig {
        let message = payload(DEFAULT_SIZE);
        BenchConfig {
            addr: addr.into(),
            connections: DEFAULT_CONNECTIONS,
            stop: Stop::Duration(DEFAULT_DURATION),
            pipeline: 1,
            rate: None,
            framing: Framing::Line,
            expect: Expect::Exact(echo_of(&message)),
            message,
            warmup: Duration::ZERO,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks that the run is bounded and representable; says what to change.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |reason: String| Err(BenchError::Invalid(reason));
        match self.stop {
            Stop::Requests(0) => return invalid("-n must be at least 1".into()),
            Stop::Requests(n) if n > MAX_REQUESTS => {
                return invalid(format!(
                    "-n {n} is more than the limit of {MAX_REQUESTS}; use --duration for long runs"
                ));
            }
            Stop::Duration(d) if d.is_zero() || d > MAX_DURATION => {
                return invalid(format!(
                    "--duration must be more than 0 and at most {} seconds",
                    MAX_DURATION.as_secs()
                ));
            }
            _ => {}
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return invalid(format!("-c must be between 1 and {MAX_CONNECTIONS}"));
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            return invalid(format!("--pipeline must be between 1 and {MAX_PIPELINE}"));
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate <= MAX_RATE)
        {
            return invalid(format!(
                "--rate must be more than 0 and at most {MAX_RATE} requests per second"
            ));
        }
        if self.message.len() > MAX_MESSAGE {
            return invalid(format!(
                "the request is {} bytes, more than the limit of {MAX_MESSAGE}",
                self.message.len()
            ));
        }
        if self.framing == Framing::Raw {
            if self.message.is_empty() {
                return invalid(
                    "an empty request cannot be sent with --framing raw: zero bytes never reach the server"
                        .into(),
                );
            }
            if self.pipeline > 1 {
                return invalid(
                    "--pipeline needs --framing line or length: raw framing cannot tell pipelined responses apart"
                        .into(),
                );
            }
        }
        let wire = self.request_wire()?;
        if wire.len().saturating_mul(self.pipeline) > MAX_INFLIGHT_BYTES {
            return invalid(format!(
                "--pipeline {} × {} bytes is more than {} MiB in flight per connection; lower one of them",
                self.pipeline,
                wire.len(),
                MAX_INFLIGHT_BYTES >> 20
            ));
        }
        if self.timeout.is_zero() || self.timeout > MAX_DURATION {
            return invalid(format!(
                "--timeout must be more than 0 and at most {} seconds",
                MAX_DURATION.as_secs()
            ));
        }
        if self.warmup > MAX_DURATION {
            return invalid(format!(
                "--warmup must be at most {} seconds",
                MAX_DURATION.as_secs()
            ));
        }
        Ok(())
    }

    fn request_wire(&self) -> Result<Vec<u8>, BenchError> {
        let mut wire = Vec::new();
        self.framing
            .encode(&self.message, &mut wire)
            .map_err(|e| BenchError::Invalid(format!("cannot send this request: {e}")))?;
        Ok(wire)
    }
}

/// A payload of `size` printable bytes: `0123456789abcdef…`, repeated.
pub fn payload(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    ALPHABET.iter().copied().cycle().take(size).collect()
}

/// What the echo server answers to `request`: `Echo: <request>`.
pub fn echo_of(request: &[u8]) -> Vec<u8> {
    let mut out = DEFAULT_ECHO_PREFIX.as_bytes().to_vec();
    out.extend_from_slice(request);
    out
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The settings are out of range or contradict each other.
    #[error("{0}")]
    Invalid(String),
    /// The host name did not resolve.
    #[error(
        "cannot resolve {target}: {reason} — check the host name and port, or give an IP address"
    )]
    Resolve {
        /// The address as given, with the default port added.
        target: String,
        /// What the resolver said.
        reason: String,
    },
    /// Some connections could not be opened.
    #[error(
        "cannot connect to {target}: {failed} of {total} connection(s) failed, the first with: {reason} — is the server running{}?",
        if *failed < *total { ", and does it accept that many connections (raise its --max-connections or lower -c)" } else { "" }
    )]
    Connect {
        /// The address as given.
        target: String,
        /// Connections that failed.
        failed: usize,
        /// Connections attempted.
        total: usize,
        /// Why the first one failed.
        reason: String,
    },
}

/// Runs a benchmark and returns its report.
pub async fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    run_with(config, Arc::new(Live::default())).await
}

/// Like [`run`], updating `live` as responses arrive (for a progress bar).
pub async fn run_with(config: &BenchConfig, live: Arc<Live>) -> Result<BenchReport, BenchError> {
    config.validate()?;
    let request_wire = config.request_wire()?;
    // Fewer requests than connections: the extra connections would idle.
    let connections = match config.stop {
        Stop::Requests(n) => config.connections.min(n as usize),
        Stop::Duration(_) => config.connections,
    };
    let (target, streams) = connect_all(&config.addr, connections, config.timeout).await?;

    let start = Instant::now();
    let measure_start = start + config.warmup;
    let stop_at = measure_start
        + match config.stop {
            Stop::Duration(d) => d,
            Stop::Requests(_) => MAX_DURATION,
        };
    let schedule = config
        .rate
        .map(|rate| pacer::Schedule::new(start, rate, connections));
    let plan = Arc::new(Plan {
        framing: config.framing,
        request_wire,
        expect: config.expect.clone(),
        depth: config.pipeline,
        schedule,
        timeout: config.timeout,
        measure_start,
        stop_at,
        live,
        latencies: latency::Latencies::new(),
    });

    let (pacer, mut wakers) = match schedule {
        Some(schedule) => {
            let (pacer, wakers) = pacer::Pacer::start(schedule, stop_at);
            (Some(pacer), wakers.into_iter().map(Some).collect())
        }
        None => (None, vec![None; connections]),
    };
    let mut tasks = JoinSet::new();
    for (index, stream) in streams.into_iter().enumerate() {
        let quota = match config.stop {
            Stop::Requests(n) => {
                let (share, extra) = (n / connections as u64, n % connections as u64);
                Quota::Requests(share + u64::from((index as u64) < extra))
            }
            Stop::Duration(_) => Quota::UntilStop,
        };
        let plan = plan.clone();
        let waker = wakers[index].take();
        tasks.spawn(async move { load::drive(stream, index, &plan, quota, waker).await });
    }
    let mut all = Vec::with_capacity(connections);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(stats) => all.push(stats),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {} // cancelled: only when the runtime shuts down
        }
    }
    let finished = Instant::now();
    if let Some(pacer) = pacer {
        pacer.stop();
    }
    Ok(summarize(
        config,
        &plan,
        target,
        connections,
        &all,
        finished,
    ))
}

/// Resolves `addr` and opens `count` connections, at most
/// [`CONNECTS_AT_ONCE`] attempts at a time, each bounded by `timeout`.
async fn connect_all(
    addr: &str,
    count: usize,
    timeout: Duration,
) -> Result<(SocketAddr, Vec<TcpStream>), BenchError> {
    let target = with_default_port(addr);
    let resolved =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(target.clone())).await {
            Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
            Ok(Err(error)) => {
                let text = error.to_string();
                let reason = text
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&text)
                    .to_lowercase();
                return Err(BenchError::Resolve { target, reason });
            }
            Err(_) => {
                return Err(BenchError::Resolve {
                    target,
                    reason: format!("no answer within {} s", timeout.as_secs_f64()),
                });
            }
        };
    // The first address that accepts one connection gets all of them.
    let mut chosen = None;
    let mut first_reason = String::from("the name has no address");
    let mut first_stream = None;
    for candidate in resolved {
        match connect_one(candidate, timeout).await {
            Ok(stream) => {
                chosen = Some(candidate);
                first_stream = Some(stream);
                break;
            }
            Err(reason) => first_reason = reason,
        }
    }
    let (Some(peer), Some(first)) = (chosen, first_stream) else {
        return Err(BenchError::Connect {
            target,
            failed: count,
            total: count,
            reason: first_reason,
        });
    };

    let permits = Arc::new(Semaphore::new(CONNECTS_AT_ONCE));
    let mut attempts = JoinSet::new();
    for index in 1..count {
        let permits = permits.clone();
        attempts.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, connect_one(peer, timeout).await)
        });
    }
    let mut streams: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
    streams[0] = Some(first);
    let mut failures: Vec<(usize, String)> = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok((index, Ok(stream))) => streams[index] = Some(stream),
            Ok((index, Err(reason))) => failures.push((index, reason)),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    if let Some((_, reason)) = failures.iter().min_by_key(|(index, _)| *index) {
        return Err(BenchError::Connect {
            target,
            failed: failures.len(),
            total: count,
            reason: reason.clone(),
        });
    }
    Ok((peer, streams.into_iter().flatten().collect()))
}

/// One connection attempt; the error is a reason in a user's words.
async fn connect_one(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Requests are small writes awaited by the server: Nagle's
            // algorithm would only add delay.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => Err(load::describe(&error)),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
    }
}

/// Adds up the connections' results into the report.
fn summarize(
    config: &BenchConfig,
    plan: &Plan,
    target: SocketAddr,
    connections: usize,
    all: &[ConnStats],
    finished: Instant,
) -> BenchReport {
    let sum = |f: fn(&ConnStats) -> u64| all.iter().map(f).sum::<u64>();
    let errors = ErrorCounts {
        mismatch: sum(|s| s.mismatches),
        timeout: sum(|s| s.timeouts),
        closed: sum(|s| s.closed),
        io: sum(|s| s.io),
        protocol: sum(|s| s.protocol),
        total: sum(ConnStats::errors),
    };
    let responses = sum(|s| s.responses);
    let bytes_sent = sum(|s| s.bytes_sent);
    let bytes_received = sum(|s| s.bytes_received);
    // Measured time ends with the last measured response; a run that got
    // none is measured until it ended.
    let end = all
        .iter()
        .filter_map(|s| s.last_response)
        .max()
        .unwrap_or(finished);
    let elapsed = end
        .saturating_duration_since(plan.measure_start)
        .as_secs_f64();
    let per_sec = |x: u64| {
        if elapsed > 0.0 {
            x as f64 / elapsed
        } else {
            0.0
        }
    };
    let first_error = all
        .iter()
        .filter_map(|s| s.first_error.as_ref())
        .min_by_key(|(at, _)| *at)
        .map(|(_, message)| message.clone());
    BenchReport {
        target: target.to_string(),
        framing: config.framing,
        connections,
        pipeline: config.pipeline,
        request_bytes: config.message.len(),
        mode: if config.rate.is_some() {
            Mode::OpenLoop
        } else {
            Mode::ClosedLoop
        },
        rate: config.rate,
        warmup_secs: config.warmup.as_secs_f64(),
        elapsed_secs: elapsed,
        planned: match config.stop {
            Stop::Requests(n) => Some(n),
            Stop::Duration(_) => None,
        },
        requests: sum(|s| s.sent),
        responses,
        unsent: sum(|s| s.unsent),
        errors,
        connections_lost: all.iter().filter(|s| s.lost.is_some()).count(),
        first_error,
        throughput: Throughput {
            requests_per_sec: per_sec(responses),
            sent_mb_per_sec: per_sec(bytes_sent) / 1e6,
            received_mb_per_sec: per_sec(bytes_received) / 1e6,
        },
        bytes_sent,
        bytes_received,
        latency: plan.latencies.summary(),
        latency_from: if config.rate.is_some() {
            LatencyFrom::Due
        } else {
            LatencyFrom::Sent
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_expect_the_echo() {
        let config = BenchConfig::new("127.0.0.1:2222");
        config.validate().unwrap();
        assert_eq!(config.message, b"0123456789abcdef");
        assert!(config.expect.accepts(b"Echo: 0123456789abcdef"));
        assert!(!config.expect.accepts(b"Echo: 0123456789abcde"));
    }

    #[test]
    fn unbounded_or_oversized_runs_are_refused() {
        let base = BenchConfig::new("x");
        let refused = |f: fn(&mut BenchConfig)| {
            let mut c = base.clone();
            f(&mut c);
            match c.validate() {
                Err(BenchError::Invalid(reason)) => reason,
                other => panic!("expected refusal, got {other:?}"),
            }
        };
        assert!(refused(|c| c.stop = Stop::Duration(Duration::from_secs(3601))).contains("3600"));
        assert!(refused(|c| c.stop = Stop::Duration(Duration::ZERO)).contains("--duration"));
        assert!(refused(|c| c.stop = Stop::Requests(0)).contains("-n"));
        assert!(refused(|c| c.stop = Stop::Requests(MAX_REQUESTS + 1)).contains("--duration"));
        assert!(refused(|c| c.connections = 0).contains("-c"));
        assert!(refused(|c| c.pipeline = 0).contains("--pipeline"));
        assert!(refused(|c| c.rate = Some(0.0)).contains("--rate"));
        assert!(refused(|c| c.rate = Some(f64::NAN)).contains("--rate"));
        assert!(refused(|c| c.timeout = Duration::ZERO).contains("--timeout"));
        assert!(refused(|c| c.message = b"a\nb".to_vec()).contains("newline"));
        assert!(
            refused(|c| {
                c.framing = Framing::Raw;
                c.pipeline = 2;
            })
            .contains("raw")
        );
        assert!(
            refused(|c| {
                c.message = payload(MAX_MESSAGE);
                c.pipeline = 64;
            })
            .contains("in flight")
        );
    }

    #[test]
    fn payload_is_printable_and_exactly_sized() {
        assert_eq!(payload(0), b"");
        assert_eq!(payload(40).len(), 40);
        assert!(payload(1000).iter().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn prefix_expectation() {
        let any = Expect::Prefix(Vec::new());
        assert!(any.accepts(b""));
        let ok = Expect::Prefix(b"OK".to_vec());
        assert!(ok.accepts(b"OK ticket 3"));
        assert!(!ok.accepts(b"SOLD OUT"));
        assert_eq!(ok.describe(), "a response starting with \"OK\"");
    }
}
