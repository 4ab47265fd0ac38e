//! Runs the suite: resolves the server once, starts the evidence capture
//! when it can, runs each case in turn under its own time bound, applies
//! `--strict`, and gathers each failed case's evidence (the client-side
//! ladder, and with a capture the case's packets and their ladder).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::capture;
use super::cases::{self, Ctx};
use super::probe::Link;
use super::trace::{self, ConnTrace, EventKind};
use super::{
    CaseCapture, CaseId, CaseResult, CheckConfig, CheckError, CheckReport, Evidence, Outcome,
    Verdict,
};
use crate::client::with_default_port;

/// Connections drawn per failed case in a ladder.
pub(crate) const LADDER_CONNECTIONS: usize = 4;

/// The time bound of one case: generous for a failing server (every wait
/// of a case may time out), yet finite.
pub(crate) fn case_bound(timeout: Duration) -> Duration {
    timeout * 8 + Duration::from_secs(5)
}

/// Runs the suite against the server and returns the report; `on_case` is
/// called after each case (for progress). A server that fails is not an
/// error: its report has failed cases.
pub async fn run(
    config: &CheckConfig,
    mut on_case: impl FnMut(&CaseResult),
) -> Result<CheckReport, CheckError> {
    config.validate()?;
    let started = Instant::now();
    let server = resolve(&config.addr, config.timeout).await?;
    if let Some(out) = &config.out {
        std::fs::create_dir_all(out).map_err(|source| CheckError::Output {
            path: out.clone(),
            source,
        })?;
    }
    let (mut capture, mut evidence) = if config.capture {
        match capture::start(server, config.out.as_deref()) {
            Ok(c) => {
                let evidence = Evidence::Capture {
                    interface: c.interface().to_string(),
                    file: None,
                };
                (Some(c), evidence)
            }
            Err(why) => (None, Evidence::Client { why }),
        }
    } else {
        (
            None,
            Evidence::Client {
                why: "capture turned off (--no-capture)".into(),
            },
        )
    };

    let expect = config.expectation();
    let mut results: Vec<CaseResult> = Vec::new();
    let mut notes = Vec::new();
    // The last case in which a connection was accepted: when later cases
    // are refused, the server went away (a server that exits after one
    // client), which says nothing about what those cases check.
    let mut reached_in: Option<CaseId> = None;
    for case in CaseId::plan(config.only.as_deref(), config.service) {
        let result = match case.not_applicable(config.framing, config.service) {
            Some(why) => CaseResult {
                case,
                outcome: Outcome::Skip,
                strict_failure: false,
                reason: why.to_string(),
                figures: Vec::new(),
                duration: Duration::ZERO,
                traces: Vec::new(),
                capture: None,
                ladder_file: None,
            },
            None => run_case(case, config, server, &expect).await,
        };
        let mut result = result;
        let connected = result
            .traces
            .iter()
            .any(|t| t.events.iter().any(|e| e.kind == EventKind::Connected));
        if connected {
            reached_in = Some(case);
        } else if let Some(earlier) = reached_in
            && result.outcome == Outcome::Fail
            && refused(&result.traces)
        {
            result.reason.push_str(&format!(
                "; the server accepted connections in `{earlier}` and has stopped since"
            ));
            if notes.is_empty() {
                notes.push(format!(
                    "the server stopped accepting connections after `{earlier}` (does it exit after one client?); the cases after it could not look at anything else: restart the server and run them one at a time with --only to see how it handles each"
                ));
            }
        }
        on_case(&result);
        results.push(result);
    }

    if let Some(c) = capture.take() {
        match c.finish() {
            Ok(finished) => {
                for result in results.iter_mut().filter(|r| r.outcome == Outcome::Fail) {
                    result.capture = Some(cut_case(&finished, result, config));
                }
                evidence = Evidence::Capture {
                    interface: finished.interface.clone(),
                    file: finished.kept_file(),
                };
                finished.discard_temporary();
            }
            Err(why) => {
                evidence = Evidence::Client {
                    why: format!("the capture failed: {why}"),
                };
            }
        }
    }
    if let Some(out) = &config.out {
        write_ladders(&mut results, out, server);
    }

    Ok(CheckReport {
        target: config.addr.clone(),
        server,
        framing: config.framing,
        service: config.service,
        strict: config.strict,
        cases: results,
        duration: started.elapsed(),
        evidence,
        notes,
    })
}

/// Writes each failed case's client-side ladder to `out/CASE.ladder.txt`.
fn write_ladders(results: &mut [CaseResult], out: &std::path::Path, server: SocketAddr) {
    for result in results.iter_mut().filter(|r| r.outcome == Outcome::Fail) {
        let path = out.join(format!("{}.ladder.txt", result.case));
        let ladder = trace::ladder(&result.traces, &server.to_string(), usize::MAX);
        let text = format!("{}: {}\n\n{ladder}", result.case, result.reason);
        if std::fs::write(&path, text).is_ok() {
            result.ladder_file = Some(path);
        }
    }
}

/// True when the case's connections were all refused.
fn refused(traces: &[ConnTrace]) -> bool {
    !traces.is_empty()
        && traces.iter().all(|t| {
            t.events.iter().any(|e| {
                matches!(&e.kind, EventKind::ConnectFailed { reason } if reason.contains("refused"))
            })
        })
}

async fn resolve(addr: &str, timeout: Duration) -> Result<SocketAddr, CheckError> {
    let target = with_default_port(addr);
    let err = |reason: String| CheckError::Resolve {
        target: target.clone(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio::net::lookup_host(target.clone())).await {
        // One address is used for every case. IPv4 first: `localhost`
        // often lists ::1 first, and a server bound to 0.0.0.0 (like the
        // lab's Python server) refuses it. Trying each address with a
        // connection instead would spend the only client of a server that
        // serves one client and exits.
        Ok(Ok(addrs)) => {
            let mut addrs: Vec<SocketAddr> = addrs.collect();
            addrs.sort_by_key(|a| !a.is_ipv4());
            addrs
                .first()
                .copied()
                .ok_or_else(|| err("the name has no address".into()))
        }
        Ok(Err(e)) => Err(err(e.to_string())),
        Err(_) => Err(err(format!(
            "no answer from the resolver within {}",
            cases::secs(timeout)
        ))),
    }
}

async fn run_case(
    case: CaseId,
    config: &CheckConfig,
    server: SocketAddr,
    expect: &super::Expectation,
) -> CaseResult {
    let collector = Arc::new(Mutex::new(Vec::new()));
    let ctx = Ctx {
        link: Link {
            addr: server,
            framing: config.framing,
            timeout: config.timeout,
            start: Instant::now(),
            collector: collector.clone(),
        },
        expect: expect.clone(),
        latency_warn: config.latency_warn,
    };
    let bound = case_bound(config.timeout);
    let verdict = match tokio::time::timeout(bound, cases::run(case, &ctx)).await {
        Ok(v) => v,
        Err(_) => Verdict::fail(format!(
            "the case did not finish within its bound of {}",
            cases::secs(bound)
        )),
    };
    let duration = ctx.link.start.elapsed();
    drop(ctx);
    // Client tasks a timed-out case left behind are aborted; give them a
    // moment to drop their probes, whose traces then arrive.
    tokio::task::yield_now().await;
    let mut traces: Vec<ConnTrace> =
        std::mem::take(&mut *collector.lock().unwrap_or_else(|p| p.into_inner()));
    traces.sort_by_key(|t| t.events.first().map(|e| e.at));
    let (outcome, strict_failure) = match verdict.outcome {
        Outcome::Warn if config.strict => (Outcome::Fail, true),
        other => (other, false),
    };
    CaseResult {
        case,
        outcome,
        strict_failure,
        reason: verdict.reason,
        figures: verdict.figures,
        duration,
        traces,
        capture: None,
        ladder_file: None,
    }
}

/// The capture evidence of one failed case: its connections' packets, cut
/// out of the run's capture by the client ports, and their ladder.
fn cut_case(
    finished: &capture::Finished,
    result: &CaseResult,
    config: &CheckConfig,
) -> CaseCapture {
    let ports: Vec<u16> = result.traces.iter().filter_map(|t| t.local_port).collect();
    let mut evidence = CaseCapture::default();
    if ports.is_empty() {
        return evidence;
    }
    let (path, keep) = match &config.out {
        Some(out) => (out.join(format!("{}.pcap", result.case)), true),
        None => (
            std::env::temp_dir().join(format!(
                "reqresp-check-{}-{}.pcap",
                std::process::id(),
                result.case
            )),
            false,
        ),
    };
    match finished.cut(&ports, &path) {
        Ok(packets) => {
            evidence.packets = packets;
            evidence.ladder = Some(
                capture::packet_ladder(&path, finished.server, config.framing)
                    .unwrap_or_else(|why| format!("(the capture could not be analysed: {why})")),
            );
            if keep {
                evidence.file = Some(path);
            } else {
                remove(&path);
            }
        }
        Err(why) => {
            evidence.ladder = Some(format!("(the case's packets could not be cut out: {why})"));
            remove(&path);
        }
    }
    evidence
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_fails_every_applicable_case_quickly_and_skips_the_rest() {
        // Bind and drop: nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = CheckConfig::new(format!("127.0.0.1:{port}"));
        config.capture = false;
        config.timeout = Duration::from_millis(500);
        let mut seen = 0;
        let report = run(&config, |_| seen += 1).await.unwrap();
        assert_eq!(seen, CaseId::ALL.len());
        assert!(!report.passed());
        for c in &report.cases {
            match c.case {
                CaseId::Binary | CaseId::Tickets => assert_eq!(c.outcome, Outcome::Skip),
                _ => {
                    assert_eq!(c.outcome, Outcome::Fail, "{:?}", c.case);
                    assert!(c.reason.contains("connection refused"), "{}", c.reason);
                    assert!(c.traces.iter().any(|t| t.failed));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_every_case_within_its_bounds() {
        // Accepts every connection and holds it without reading or writing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut config = CheckConfig::new(addr.to_string());
        config.capture = false;
        config.timeout = Duration::from_millis(300);
        let report = run(&config, |_| {}).await.unwrap();
        for c in &report.cases {
            if c.outcome == Outcome::Skip {
                continue;
            }
            assert_eq!(c.outcome, Outcome::Fail, "{:?}: {}", c.case, c.reason);
            assert!(
                c.reason.contains("no answer within 0.3 s"),
                "{:?}: {}",
                c.case,
                c.reason
            );
            assert!(!c.reason.contains("did not finish within its bound"));
        }
    }

    #[tokio::test]
    async fn localhost_resolves_to_ipv4_first() {
        let addr = resolve("localhost:2222", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(addr.is_ipv4(), "{addr}");
        assert_eq!(addr.port(), 2222);
        let err = resolve("no-such-host.invalid:1", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot resolve no-such-host.invalid:1"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn strict_turns_warns_into_failures() {
        let server = super::super::test_server(crate::protocol::Framing::Line).await;
        let mut config = CheckConfig::new(server.to_string());
        config.capture = false;
        config.only = Some(vec![CaseId::Latency, CaseId::Echo]);
        // No server answers in zero time: every p99 is above 1 ns.
        config.latency_warn = Duration::from_nanos(1);
        let report = run(&config, |_| {}).await.unwrap();
        let latency = report
            .cases
            .iter()
            .find(|c| c.case == CaseId::Latency)
            .unwrap();
        assert_eq!(latency.outcome, Outcome::Warn, "{}", latency.reason);
        assert!(report.passed());
        config.strict = true;
        let report = run(&config, |_| {}).await.unwrap();
        let latency = report
            .cases
            .iter()
            .find(|c| c.case == CaseId::Latency)
            .unwrap();
        assert_eq!(latency.outcome, Outcome::Fail);
        assert!(latency.strict_failure);
        assert!(!report.passed());
    }
}
