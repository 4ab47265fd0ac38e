//! The `json` report for graders: one object with the run's settings, the
//! counts, and every case with its result, reason, rule (both languages),
//! figures and, for failed cases, the evidence. The schema is documented in
//! docs/check.md and is `reqresp-check/1`; new fields may be added, none
//! is renamed or removed without a new schema name.

use serde_json::{Map, Value, json};

use super::{CheckReport, Evidence, Lang, Outcome};

/// The schema name written in every document.
pub(crate) const SCHEMA: &str = "reqresp-check/1";

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The report as a JSON value.
pub(crate) fn to_value(report: &CheckReport) -> Value {
    let cases: Vec<Value> = report
        .cases
        .iter()
        .map(|c| {
            let figures: Map<String, Value> = c
                .figures
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let failed = c.outcome == Outcome::Fail;
            let evidence = failed.then(|| {
                json!({
                    "connections": c.traces,
                    "ladder_file": c.ladder_file.as_ref().map(|p| p.display().to_string()),
                    "capture_file": c.capture.as_ref().and_then(|k| k.file.as_ref()).map(|p| p.display().to_string()),
                    "capture_packets": c.capture.as_ref().map(|k| k.packets),
                })
            });
            json!({
                "name": c.case.name(),
                "result": c.outcome,
                "strict_failure": c.strict_failure,
                "reason": c.reason,
                "rule": { "en": c.case.rule(Lang::En), "id": c.case.rule(Lang::Id) },
                "duration_ms": ms(c.duration),
                "figures": figures,
                "evidence": evidence,
            })
        })
        .collect();
    let evidence = match &report.evidence {
        Evidence::Client { why } => json!({ "source": "client", "why": why }),
        Evidence::Capture { interface, file } => json!({
            "source": "capture",
            "interface": interface,
            "file": file.as_ref().map(|p| p.display().to_string()),
        }),
    };
    json!({
        "schema": SCHEMA,
        "target": report.target,
        "server": report.server.to_string(),
        "framing": report.framing,
        "service": report.service_name(),
        "strict": report.strict,
        "passed": report.passed(),
        "counts": report.counts(),
        "duration_ms": ms(report.duration),
        "evidence": evidence,
        "notes": report.notes,
        "cases": cases,
    })
}

/// The report as pretty JSON text with a final newline.
pub fn render(report: &CheckReport) -> String {
    let mut text = serde_json::to_string_pretty(&to_value(report))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_documented() {
        let report = crate::check::text::tests::sample();
        let v: Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["passed"], false);
        assert_eq!(v["framing"], "line");
        assert_eq!(v["service"], "echo");
        assert_eq!(v["counts"]["fail"], 1);
        assert_eq!(v["counts"]["skip"], 1);
        assert_eq!(v["evidence"]["source"], "client");
        assert_eq!(v["notes"][0], "the server went away");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        let merged = &cases[1];
        assert_eq!(merged["name"], "merged");
        assert_eq!(merged["result"], "fail");
        assert!(
            merged["rule"]["id"]
                .as_str()
                .unwrap()
                .starts_with("Beberapa")
        );
        let events = &merged["evidence"]["connections"][0]["events"];
        assert_eq!(events[0]["event"], "connected");
        assert_eq!(events[1]["event"], "sent");
        assert_eq!(events[1]["bytes"], 27);
        assert_eq!(events[2]["event"], "timeout");
        assert_eq!(events[2]["waited_ms"], 2000.0);
        assert_eq!(cases[0]["evidence"], Value::Null);
        assert_eq!(cases[2]["figures"]["p99_ms"], 1.0);
        assert_eq!(cases[3]["result"], "skip");
    }
}
