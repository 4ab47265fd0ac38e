//! What a scenario run records (`scenario.json`) and the section it adds
//! to the end of the text report: faults, clients, the exchanges a
//! retransmission delayed, the retransmission runs with their gaps, and the
//! explanation in English and Indonesian.
//!
//! The helpers read the analysis as `report.json` has it, so they see
//! exactly what a user of the JSON sees.

use std::fmt::Write as _;

use serde::Serialize;

use super::scenario::Lang;
use crate::human::format_micros;
use crate::report::ladder;

/// One client's run, as `scenario.json` records it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ClientRecord {
    /// Which client (`client 1`, `raw framing`, ...).
    pub label: String,
    /// Its command line.
    pub command: String,
    /// Requests sent (long ones cut for the record).
    pub requests: Vec<String>,
    /// Responses printed, in order (long ones cut).
    pub responses: Vec<String>,
    /// The response a correct server gives to each request, when the
    /// scenario checks it (`recv-bug`).
    pub expected: Vec<String>,
    /// True when every request got its (expected, when given) response and the client exited with 0.
    pub ok: bool,
    /// The client's error line, when it failed.
    pub error: Option<String>,
}

/// The tickets race's ledger after the kill and restart, against the
/// confirmations the clients received.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TicketsLedger {
    /// The ledger file.
    pub path: String,
    /// The stock.
    pub stock: u64,
    /// Tickets sold, as the stock row counts them.
    pub sold: u64,
    /// Rows in the bookings table.
    pub bookings: u64,
    /// Bookings per server process (pid, count), first server first.
    pub by_server: Vec<(u32, u64)>,
    /// Clients told "Booked".
    pub confirmations: u64,
    /// Clients of the first round that got no answer (the kill cut them off).
    pub unanswered: u64,
}

impl TicketsLedger {
    /// What the report says about it, one line each.
    pub fn notes(&self) -> Vec<String> {
        let servers: Vec<String> = self
            .by_server
            .iter()
            .map(|(pid, n)| format!("{n} by pid {pid}"))
            .collect();
        let mut notes = vec![
            format!(
                "ledger: {} bookings of a stock of {} ({}); {} clients were told \"Booked\"; \
                 {} of the first round got no answer (cut off by the kill)",
                self.bookings,
                self.stock,
                if servers.is_empty() {
                    "none".to_string()
                } else {
                    servers.join(", ")
                },
                self.confirmations,
                self.unanswered
            ),
            if self.bookings > self.stock || self.sold != self.bookings {
                format!(
                    "OVERSOLD or inconsistent: {} bookings, {} counted sold, stock {}",
                    self.bookings, self.sold, self.stock
                )
            } else {
                format!(
                    "no oversell across the restart: {} booked of {}",
                    self.bookings, self.stock
                )
            },
        ];
        notes.push(if self.bookings == self.confirmations {
            "bookings in the ledger = confirmations received: no confirmed booking was lost"
                .to_string()
        } else if self.bookings > self.confirmations {
            format!(
                "{} booking(s) reached the disk but their answer died with the server: \
                 those clients were charged and not told (never the other way round)",
                self.bookings - self.confirmations
            )
        } else {
            format!(
                "LOST: {} confirmation(s) have no booking in the ledger",
                self.confirmations - self.bookings
            )
        });
        notes
    }
}

/// The same segment sent again and again.
#[derive(Debug, Clone, Serialize)]
pub struct RetransmissionRun {
    /// Connection id in report.json.
    pub connection: u64,
    /// `client` or `server`.
    pub side: String,
    /// Relative sequence number.
    pub seq: i64,
    /// Capture times of the original and each resend, ns.
    pub times: Vec<u64>,
    /// Gaps between consecutive sends, ms.
    pub gaps_ms: Vec<f64>,
}

/// What a scenario run did, written to `scenario.json`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScenarioRecord {
    /// The scenario, or `custom`.
    pub scenario: String,
    /// The faults, as `--fault` writes them (`none`).
    pub fault: String,
    /// How each fault was made, with the commands.
    pub mechanisms: Vec<String>,
    /// `netem` or `nfqueue` when there was a delay.
    pub delay_mechanism: Option<String>,
    /// Packets the NFQUEUE handlers held.
    pub packets_held: u64,
    /// `reqresp server --delay`, ms.
    pub server_delay_ms: u64,
    /// When the partition began and ended, ms after the client started.
    pub partition_ms: Option<(Option<f64>, Option<f64>)>,
    /// Every client.
    pub clients: Vec<ClientRecord>,
    /// Retransmission runs found in the capture.
    pub retransmission_runs: Vec<RetransmissionRun>,
    /// Which exchanges were hit by a retransmission (one line each).
    pub exchanges_hit: Vec<String>,
    /// Notes of the runner (server exit, bytes sent by the slow reader...).
    pub notes: Vec<String>,
    /// The tickets race: what the ledger holds against what the clients
    /// were told.
    pub tickets_ledger: Option<TicketsLedger>,
    /// The explanation in English.
    pub explanation_en: String,
    /// The explanation in Indonesian.
    pub explanation_id: String,
}

/// The end of the report: faults, clients, what was hit, the explanation
/// (`lang` `None`: both languages).
pub(crate) fn scenario_section(record: &ScenarioRecord, lang: Option<Lang>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n── scenario {} (fault: {}) ──",
        record.scenario, record.fault
    );
    for line in &record.mechanisms {
        let _ = writeln!(s, "  {line}");
    }
    if record.packets_held > 0 {
        let _ = writeln!(
            s,
            "  NFQUEUE held and released {} packets",
            record.packets_held
        );
    }
    if record.server_delay_ms > 0 {
        let _ = writeln!(
            s,
            "  server: reqresp server --delay {}ms",
            record.server_delay_ms
        );
    }
    if let Some((began, ended)) = record.partition_ms {
        let show = |t: Option<f64>| t.map_or("-".to_string(), |ms| format_micros(ms * 1e3));
        let _ = writeln!(
            s,
            "  partition: from {} to {} after the client started",
            show(began),
            show(ended)
        );
    }
    for c in &record.clients {
        let status = if c.ok { "ok" } else { "FAILED" };
        let _ = writeln!(
            s,
            "  {}: {status}, {} of {} answered{}",
            c.label,
            c.responses.len(),
            c.requests.len(),
            c.error
                .as_ref()
                .map(|e| format!(" — error: {e}"))
                .unwrap_or_default()
        );
    }
    for line in &record.exchanges_hit {
        let _ = writeln!(s, "  {line}");
    }
    for run in &record.retransmission_runs {
        let gaps: Vec<String> = run
            .gaps_ms
            .iter()
            .map(|ms| format_micros(ms * 1e3))
            .collect();
        let _ = writeln!(
            s,
            "  connection {}: {} seq {} sent {} times, gaps {}",
            run.connection,
            run.side,
            run.seq,
            run.times.len(),
            gaps.join(", ")
        );
    }
    for note in &record.notes {
        let _ = writeln!(s, "  note: {note}");
    }
    match lang {
        Some(Lang::En) => {
            let _ = writeln!(s, "\nWhat happened:\n{}", wrap(&record.explanation_en));
        }
        Some(Lang::Id) => {
            let _ = writeln!(s, "\nApa yang terjadi:\n{}", wrap(&record.explanation_id));
        }
        None => {
            let _ = writeln!(s, "\nWhat happened:\n{}", wrap(&record.explanation_en));
            let _ = writeln!(s, "\nApa yang terjadi:\n{}", wrap(&record.explanation_id));
        }
    }
    s
}

/// Wraps text at 78 columns, indented by two.
fn wrap(text: &str) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return String::new();
    }
    ladder::wrap(&words, 76)
        .iter()
        .map(|line| format!("  {line}\n"))
        .collect()
}

const RESEND_KINDS: [&str; 4] = [
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "syn_retransmission",
];

/// Groups the retransmission events of report.json by segment: each run
/// is the original send (its time minus `detail`) and every resend.
pub(crate) fn retransmission_runs(report: &serde_json::Value) -> Vec<RetransmissionRun> {
    let mut runs: Vec<RetransmissionRun> = Vec::new();
    let empty = Vec::new();
    for conn in report["connections"].as_array().unwrap_or(&empty) {
        let id = conn["id"].as_u64().unwrap_or(0);
        for ev in conn["events"].as_array().unwrap_or(&empty) {
            let kind = ev["kind"].as_str().unwrap_or("");
            if !RESEND_KINDS.contains(&kind) {
                continue;
            }
            let (Some(time), Some(seq)) = (ev["time"].as_u64(), ev["seq"].as_i64()) else {
                continue;
            };
            let side = ev["side"].as_str().unwrap_or("?").to_string();
            match runs
                .iter_mut()
                .find(|r| r.connection == id && r.side == side && r.seq == seq)
            {
                Some(run) => run.times.push(time),
                None => {
                    let since_us = ev["detail"].as_f64().unwrap_or(0.0);
                    let first = time.saturating_sub((since_us * 1e3) as u64);
                    let mut times = vec![time];
                    if since_us > 0.0 {
                        times.insert(0, first);
                    }
                    runs.push(RetransmissionRun {
                        connection: id,
                        side,
                        seq,
                        times,
                        gaps_ms: Vec::new(),
                    });
                }
            }
        }
    }
    // A resend whose original the capture missed is a single time: no run.
    runs.retain(|r| r.times.len() >= 2);
    for run in &mut runs {
        run.gaps_ms = run
            .times
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
            .collect();
    }
    runs
}

/// One line per exchange that a retransmission delayed: the first exchange
/// of its connection that ended after the resend.
pub(crate) fn exchanges_hit(report: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    let empty = Vec::new();
    for conn in report["connections"].as_array().unwrap_or(&empty) {
        let exchanges = conn["exchanges"].as_array().unwrap_or(&empty);
        let mut hits = vec![0u32; exchanges.len()];
        for ev in conn["events"].as_array().unwrap_or(&empty) {
            if !RESEND_KINDS.contains(&ev["kind"].as_str().unwrap_or("")) {
                continue;
            }
            let t = ev["time"].as_u64().unwrap_or(0);
            let hit = exchanges.iter().position(|x| {
                x["response_last_time"]
                    .as_u64()
                    .or_else(|| x["request_time"].as_u64())
                    .is_some_and(|end| end >= t)
            });
            if let Some(i) = hit {
                hits[i] += 1;
            }
        }
        for (i, n) in hits.iter().enumerate().filter(|(_, n)| **n > 0) {
            let x = &exchanges[i];
            let latency = x["latency_us"]
                .as_f64()
                .map_or("no response".to_string(), |us| {
                    format!("latency {}", format_micros(us))
                });
            lines.push(format!(
                "connection {} exchange {} ({:?}): {n} retransmission(s), {latency}",
                conn["id"],
                i + 1,
                x["request_preview"].as_str().unwrap_or("")
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> serde_json::Value {
        serde_json::json!({
            "connections": [{
                "id": 1,
                "exchanges": [
                    {"request_preview": "a", "request_time": 1_000_000u64, "response_last_time": 2_000_000u64, "latency_us": 1000.0},
                    {"request_preview": "b", "request_time": 10_000_000u64, "response_last_time": 1_000_000_000u64, "latency_us": 990000.0}
                ],
                "events": [
                    {"kind": "retransmission", "side": "client", "seq": 2, "time": 210_000_000u64, "detail": 200000.0},
                    {"kind": "duplicate_ack", "side": "server", "seq": 1, "time": 211_000_000u64, "detail": 1.0},
                    {"kind": "retransmission", "side": "client", "seq": 2, "time": 610_000_000u64, "detail": 600000.0},
                    {"kind": "retransmission", "side": "client", "seq": 9, "time": 700_000_000u64, "detail": null}
                ]
            }]
        })
    }

    #[test]
    fn resends_of_one_segment_form_a_run_with_its_gaps() {
        let runs = retransmission_runs(&report());
        assert_eq!(
            runs.len(),
            1,
            "a resend without its original is no run: {runs:?}"
        );
        assert_eq!(runs[0].times, [10_000_000, 210_000_000, 610_000_000]);
        assert_eq!(runs[0].gaps_ms, [200.0, 400.0]);
        assert!(retransmission_runs(&serde_json::json!({"connections": 3})).is_empty());
    }

    #[test]
    fn the_exchange_a_resend_delayed_is_named() {
        let hit = exchanges_hit(&report());
        assert_eq!(hit.len(), 1, "{hit:?}");
        assert!(
            hit[0].contains("exchange 2 (\"b\"): 3 retransmission(s), latency 990.000 ms"),
            "{hit:?}"
        );
    }

    #[test]
    fn the_section_ends_with_the_explanation_in_the_chosen_language() {
        let record = ScenarioRecord {
            scenario: "loss".into(),
            fault: "loss=15%".into(),
            explanation_en: "English words ".repeat(20),
            explanation_id: "Kata Indonesia ".repeat(20),
            ..ScenarioRecord::default()
        };
        let en = scenario_section(&record, Some(Lang::En));
        assert!(en.contains("What happened:") && !en.contains("Apa yang terjadi:"));
        let id = scenario_section(&record, Some(Lang::Id));
        assert!(id.contains("Apa yang terjadi:") && !id.contains("What happened:"));
        let both = scenario_section(&record, None);
        assert!(both.contains("What happened:") && both.contains("Apa yang terjadi:"));
        assert!(both.lines().all(|l| l.chars().count() <= 80), "{both}");
    }
}
