//! The `text` report: a table of the cases, a summary line, then for each
//! failed case its rule, its reason and the evidence (the client-side
//! ladder, and the captured packets' ladder when there is a capture).

use std::fmt::Write as _;

use super::runner::LADDER_CONNECTIONS;
use super::trace;
use super::{CaseResult, CheckReport, Evidence, Lang, Outcome};
use crate::human::format_duration;

/// The fixed words of the report in one language.
struct Words {
    case: &'static str,
    result: &'static str,
    time: &'static str,
    reason: &'static str,
    cases: &'static str,
    rule: &'static str,
    client_view: &'static str,
    packets: &'static str,
    written: &'static str,
    evidence_client: &'static str,
    evidence_capture: &'static str,
    strict: &'static str,
    verdict_ok: &'static str,
    verdict_bad: &'static str,
    note: &'static str,
}

const EN: Words = Words {
    case: "case",
    result: "result",
    time: "time",
    reason: "reason",
    cases: "cases",
    rule: "rule",
    client_view: "what the client saw",
    packets: "the packets",
    written: "written to",
    evidence_client: "evidence from the client's view (no capture",
    evidence_capture: "evidence captured on",
    strict: "a warning, failed by --strict",
    verdict_ok: "no case failed",
    verdict_bad: "the server failed",
    note: "note",
};

const ID: Words = Words {
    case: "kasus",
    result: "hasil",
    time: "waktu",
    reason: "alasan",
    cases: "kasus",
    rule: "aturan",
    client_view: "yang dilihat klien",
    packets: "paket-paketnya",
    written: "ditulis ke",
    evidence_client: "bukti dari sisi klien (tanpa capture",
    evidence_capture: "bukti di-capture pada",
    strict: "peringatan, digagalkan oleh --strict",
    verdict_ok: "tidak ada kasus yang gagal",
    verdict_bad: "server gagal pada",
    note: "catatan",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Id => &ID,
    }
}

/// The whole text report.
pub fn render(report: &CheckReport, lang: Lang) -> String {
    let w = words(lang);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "reqresp check {} ({}): {} framing, {} service",
        report.target,
        report.server,
        report.framing,
        report.service_name()
    );
    let _ = writeln!(out);
    let name_w = report
        .cases
        .iter()
        .map(|c| c.case.name().len())
        .max()
        .unwrap_or(4)
        .max(w.case.len());
    let _ = writeln!(
        out,
        "  {:<name_w$}  {:<6}  {:>10}  {}",
        w.case, w.result, w.time, w.reason
    );
    for c in &report.cases {
        let time = if c.outcome == Outcome::Skip {
            "-".to_string()
        } else {
            format_duration(c.duration)
        };
        let _ = writeln!(
            out,
            "  {:<name_w$}  {:<6}  {:>10}  {}",
            c.case.name(),
            c.outcome.word(lang),
            time,
            c.reason
        );
    }
    let counts = report.counts();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} {}: {} {}, {} {}, {} {}, {} {} ({})",
        report.cases.len(),
        if report.cases.len() == 1 {
            w.case
        } else {
            w.cases
        },
        counts.pass,
        Outcome::Pass.word(lang),
        counts.warn,
        Outcome::Warn.word(lang),
        counts.fail,
        Outcome::Fail.word(lang),
        counts.skip,
        Outcome::Skip.word(lang),
        format_duration(report.duration)
    );
    match &report.evidence {
        Evidence::Client { why } => {
            let _ = writeln!(out, "{}: {why})", w.evidence_client);
        }
        Evidence::Capture { interface, file } => {
            let _ = write!(out, "{} {interface}", w.evidence_capture);
            if let Some(file) = file {
                let _ = write!(out, ", {} {}", w.written, file.display());
            }
            let _ = writeln!(out);
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "{}: {note}", w.note);
    }

    for c in report
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Warn))
    {
        case_detail(&mut out, c, &report.server.to_string(), lang);
    }
    let _ = writeln!(out);
    if report.passed() {
        let _ = writeln!(out, "{}.", w.verdict_ok);
    } else {
        let failed: Vec<&str> = report
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.case.name())
            .collect();
        let _ = writeln!(out, "{}: {}.", w.verdict_bad, failed.join(", "));
    }
    out
}

/// The section of a failed or warned case: its rule and reason, then for a
/// failure the client's ladder and the packets the capture kept.
fn case_detail(out: &mut String, c: &CaseResult, server: &str, lang: Lang) {
    let w = words(lang);
    let _ = writeln!(out);
    let title = format!("{}: {}", c.case.name(), c.outcome.word(lang));
    let _ = writeln!(
        out,
        "── {title} {}",
        "─".repeat(60usize.saturating_sub(title.len()))
    );
    let _ = writeln!(out, "{}: {}", w.rule, c.case.rule(lang));
    let _ = writeln!(out, "{}: {}", w.reason, c.reason);
    if c.strict_failure {
        let _ = writeln!(out, "({})", w.strict);
    }
    if c.outcome != Outcome::Fail {
        return;
    }
    if !c.traces.is_empty() {
        let _ = writeln!(out, "\n{}:", w.client_view);
        out.push_str(&trace::ladder(&c.traces, server, LADDER_CONNECTIONS));
    }
    if let Some(path) = &c.ladder_file {
        let _ = writeln!(out, "({} {})", w.written, path.display());
    }
    if let Some(capture) = &c.capture {
        let _ = write!(out, "\n{} ({} packets", w.packets, capture.packets);
        if let Some(file) = &capture.file {
            let _ = write!(out, ", {} {}", w.written, file.display());
        }
        let _ = writeln!(out, "):");
        if let Some(ladder) = &capture.ladder {
            out.push_str(ladder);
            if !ladder.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::trace::{ConnTrace, EventKind};
    use crate::check::{CaseId, CaseResult};
    use crate::protocol::Framing;
    use crate::server::ServiceKind;

    /// A report with one pass, one failure with a trace, one warn and one skip.
    pub(crate) fn sample() -> CheckReport {
        let case = |case, outcome, reason: &str| CaseResult {
            case,
            outcome,
            strict_failure: false,
            reason: reason.into(),
            figures: Vec::new(),
            duration: Duration::from_micros(1500),
            traces: Vec::new(),
            capture: None,
            ladder_file: None,
        };
        let mut merged = case(
            CaseId::Merged,
            Outcome::Fail,
            "3 messages sent in one write got one answer <&> \"quoted\"",
        );
        let mut t = ConnTrace::new("client");
        t.push(Duration::ZERO, EventKind::Connected);
        t.push(
            Duration::from_micros(100),
            EventKind::Sent {
                bytes: 27,
                text: "merged 1\\nmerged 2\\nmerged 3\\n".into(),
            },
        );
        t.push(
            Duration::from_millis(2000),
            EventKind::Timeout {
                waited: Duration::from_secs(2),
                waiting_for: "answer".into(),
            },
        );
        t.failed = true;
        t.local_port = Some(40000);
        merged.traces.push(t);
        let mut latency = case(CaseId::Latency, Outcome::Warn, "p99 1 ms is above 0.5 ms");
        latency.figures = vec![("p50_ms".into(), 0.05), ("p99_ms".into(), 1.0)];
        CheckReport {
            target: "localhost:2222".into(),
            server: "127.0.0.1:2222".parse().unwrap(),
            framing: Framing::Line,
            service: ServiceKind::Echo,
            strict: false,
            cases: vec![
                case(CaseId::Echo, Outcome::Pass, "2 requests answered"),
                merged,
                latency,
                case(CaseId::Binary, Outcome::Skip, "needs --framing length"),
            ],
            duration: Duration::from_millis(2100),
            evidence: Evidence::Client {
                why: "no permission".into(),
            },
            notes: vec!["the server went away".into()],
        }
    }

    #[test]
    fn table_summary_and_evidence_of_failed_cases() {
        let text = render(&sample(), Lang::En);
        assert!(text.starts_with(
            "reqresp check localhost:2222 (127.0.0.1:2222): line framing, echo service"
        ));
        assert!(text.contains("  echo "), "{text}");
        assert!(text.contains("FAIL"));
        assert!(
            text.contains("4 cases: 1 pass, 1 warn, 1 FAIL, 1 skip"),
            "{text}"
        );
        assert!(text.contains("── merged: FAIL"));
        assert!(text.contains(CaseId::Merged.rule(Lang::En)));
        assert!(text.contains("what the client saw:"));
        assert!(text.contains("note: the server went away"));
        assert!(text.contains("write 27 B"));
        // A warn shows its rule and reason, but no ladder.
        assert!(text.contains("── latency: warn"));
        assert!(text.trim_end().ends_with("the server failed: merged."));
    }

    #[test]
    fn indonesian_words_and_rules() {
        let text = render(&sample(), Lang::Id);
        assert!(text.contains("GAGAL"));
        assert!(text.contains("aturan: "));
        assert!(text.contains(CaseId::Merged.rule(Lang::Id)));
        assert!(text.contains("yang dilihat klien:"));
    }
}
