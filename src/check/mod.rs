//! `reqresp check`: judges any request/response server on the wire.
//!
//! A suite of named cases ([`CaseId`]) runs against a live server, one
//! after the other; each opens its own connections, is bounded in time and
//! ends as pass, warn, fail or skip with a one-line reason in plain words.
//! For a failed case the evidence is a ladder of its traffic: from a
//! capture when one is possible (root or CAP_NET_RAW), otherwise from the
//! client's own view (what was written, what each read returned).
//!
//! - `catalog`: the cases, their rules (English and Indonesian), when
//!   they apply.
//! - `cases`: what each case does on the wire (private).
//! - `expect`: what a good answer is, and why a bad one is bad.
//! - `trace`: the client-side trace and its ladder.
//! - `runner`: runs the suite, applies `--strict`, gathers evidence.
//! - [`capture`]: the capture on the interface that reaches the server and
//!   the per-case cuts of it.
//! - [`text`], [`json`], [`junit`]: the report formats.
//!
//! ```no_run
//! # async fn f() -> Result<(), reqresp::check::CheckError> {
//! use reqresp::check::{CheckConfig, run};
//! let report = run(&CheckConfig::new("127.0.0.1:2222"), |_| {}).await?;
//! println!("{}", reqresp::check::text::render(&report, Default::default()));
//! std::process::exit(if report.passed() { 0 } else { 1 });
//! # }
//! ```

pub mod capture;
mod cases;
pub(crate) mod catalog;
pub(crate) mod expect;
pub mod json;
pub mod junit;
pub(crate) mod probe;
pub(crate) mod runner;
pub mod text;
pub(crate) mod trace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use catalog::{CaseId, Lang, UnknownCase};
pub(crate) use expect::Expectation;
pub use runner::run;
pub(crate) use trace::ConnTrace;

use crate::protocol::Framing;
use crate::server::ServiceKind;

/// How long each connect, write and wait for an answer may take unless told.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// `latency` warns when p99 is above this unless told.
pub(crate) const DEFAULT_LATENCY_WARN: Duration = Duration::from_millis(50);
/// The longest `--timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Server address, `host:port` (a missing port means 2222).
    pub addr: String,
    /// The framing the server speaks.
    pub framing: Framing,
    /// The service the server runs: echo answers `<prefix><request>`,
    /// tickets books from a stock.
    pub service: ServiceKind,
    /// The echo service's prefix.
    pub prefix: String,
    /// Accept any answer that starts with these bytes instead of the
    /// service's exact answer (as `reqresp bench --expect`).
    pub expect: Option<Vec<u8>>,
    /// Run only these cases (`None`: all).
    pub only: Option<Vec<CaseId>>,
    /// Warns count as failures.
    pub strict: bool,
    /// Bound on each connect, write and wait for an answer.
    pub timeout: Duration,
    /// `latency` warns when p99 is above this.
    pub latency_warn: Duration,
    /// Try to capture the traffic for evidence (needs root or CAP_NET_RAW).
    pub capture: bool,
    /// Where failed cases' captures (or client-side ladders) are written.
    pub out: Option<PathBuf>,
}

impl CheckConfig {
    /// The whole suite against an echo server at `addr` in line framing,
    /// with the defaults of `reqresp check`.
    pub fn new(addr: impl Into<String>) -> CheckConfig {
        CheckConfig {
            addr: addr.into(),
            framing: Framing::Line,
            service: ServiceKind::Echo,
            prefix: crate::server::service::DEFAULT_PREFIX.to_string(),
            expect: None,
            only: None,
            strict: false,
            timeout: DEFAULT_TIMEOUT,
            latency_warn: DEFAULT_LATENCY_WARN,
            capture: true,
            out: None,
        }
    }

    /// Checks the settings; says what to change.
    pub fn validate(&self) -> Result<(), CheckError> {
        let invalid = |why: String| Err(CheckError::Invalid(why));
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return invalid(format!(
                "--timeout must be more than 0 and at most {} seconds",
                MAX_TIMEOUT.as_secs()
            ));
        }
        if self.framing == Framing::Line && self.prefix.contains('\n') {
            return invalid(
                "--prefix contains a newline, which line framing cannot carry in one answer".into(),
            );
        }
        if self.only.as_ref().is_some_and(|o| o.is_empty()) {
            return invalid("--only names no case".into());
        }
        Ok(())
    }

    /// What a good answer is under these settings.
    pub fn expectation(&self) -> Expectation {
        match (&self.expect, self.service) {
            (Some(prefix), _) => Expectation::Prefix(prefix.clone()),
            (None, ServiceKind::Tickets) => Expectation::Tickets,
            (None, ServiceKind::Echo) => Expectation::Echo {
                prefix: self.prefix.as_bytes().to_vec(),
            },
        }
    }
}

/// Why the check could not run at all (a failing server is not an error:
/// it is a report with failed cases).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The settings are inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The server's name does not resolve.
    #[error("cannot resolve {target}: {reason}; check the host name")]
    Resolve {
        /// The address as given.
        target: String,
        /// What the resolver said.
        reason: String,
    },
    /// `--out` cannot be created.
    #[error("cannot create the output directory {path}: {source}")]
    Output {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The server follows the rule.
    Pass,
    /// Works, but something is worth a look (slow, a lingering close).
    Warn,
    /// The server breaks the rule.
    Fail,
    /// The case does not apply to this framing or service.
    Skip,
}

impl Outcome {
    /// The word for the report.
    pub fn word(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Outcome::Pass, Lang::En) => "pass",
            (Outcome::Warn, Lang::En) => "warn",
            (Outcome::Fail, Lang::En) => "FAIL",
            (Outcome::Skip, Lang::En) => "skip",
            (Outcome::Pass, Lang::Id) => "lulus",
            (Outcome::Warn, Lang::Id) => "awas",
            (Outcome::Fail, Lang::Id) => "GAGAL",
            (Outcome::Skip, Lang::Id) => "lewati",
        }
    }
}

/// What a case decided.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub reason: String,
    pub figures: Vec<(String, f64)>,
}

impl Verdict {
    pub(crate) fn pass(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            reason: reason.into(),
            figures: Vec::new(),
        }
    }

    pub(crate) fn fail(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Fail,
            reason: reason.into(),
            figures: Vec::new(),
        }
    }

    pub(crate) fn with_figure(mut self, name: &str, value: f64) -> Verdict {
        self.figures.push((name.to_string(), value));
        self
    }
}

/// The capture-based evidence of one case.
#[derive(Debug, Clone, Default)]
pub struct CaseCapture {
    /// The case's packets as a pcap file, when `--out` was given.
    pub file: Option<PathBuf>,
    /// Packets in it.
    pub packets: usize,
    /// The ladder of those packets, as `reqresp analyze` draws it.
    pub ladder: Option<String>,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Which case.
    pub case: CaseId,
    /// How it ended (after `--strict`).
    pub outcome: Outcome,
    /// True when the case warned and `--strict` made that a failure.
    pub strict_failure: bool,
    /// One line in plain words.
    pub reason: String,
    /// Measured figures (`p50_ms`, `clients`, …).
    pub figures: Vec<(String, f64)>,
    /// How long the case took.
    pub duration: Duration,
    /// The client's view of each connection, in the order they were made.
    pub traces: Vec<ConnTrace>,
    /// The captured evidence, for failed cases when a capture ran.
    pub capture: Option<CaseCapture>,
    /// Where the client-side ladder was written, for failed cases with `--out`.
    pub ladder_file: Option<PathBuf>,
}

/// Where the evidence comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// From the client's own view; says why there is no capture.
    Client {
        /// Why no capture was made.
        why: String,
    },
    /// From a capture on this interface.
    Capture {
        /// The interface.
        interface: String,
        /// The whole run's capture, when `--out` was given.
        file: Option<PathBuf>,
    },
}

/// The result of a whole run.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The address as given.
    pub target: String,
    /// The address connected to.
    pub server: SocketAddr,
    /// The framing used.
    pub framing: Framing,
    /// The service assumed.
    pub service: ServiceKind,
    /// Whether warns counted as failures.
    pub strict: bool,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseResult>,
    /// How long the run took.
    pub duration: Duration,
    /// Where the evidence comes from.
    pub evidence: Evidence,
    /// Remarks about the run as a whole (the server went away mid-run).
    pub notes: Vec<String>,
}

/// How many cases ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Warned (and not failed by `--strict`).
    pub warn: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

impl CheckReport {
    /// True when no case failed: the exit status is 0 exactly then.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// How many cases ended each way.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for c in &self.cases {
            match c.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Warn => counts.warn += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Skip => counts.skip += 1,
            }
        }
        counts
    }

    /// The service's name, as `--service` spells it.
    pub fn service_name(&self) -> &'static str {
        match self.service {
            ServiceKind::Echo => "echo",
            ServiceKind::Tickets => "tickets",
        }
    }
}

/// Starts an in-process `reqresp server` (echo) for unit tests; it runs
/// until the test's runtime ends.
#[cfg(test)]
pub(crate) async fn test_server(framing: Framing) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = crate::server::Config {
        framing,
        ..crate::server::Config::default()
    };
    tokio::spawn(crate::server::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}
