//! The tickets race with a crash: clients race for the stock in two
//! rounds; in the middle of the first the server is killed (SIGKILL), then
//! restarted on the same ledger file for the second. The record compares
//! the bookings the ledger holds with the confirmations the clients got.

use std::io::Write;
use std::time::Duration;

use super::{Ctx, ScenarioError, short};
use crate::lab::scenario_record::{ClientRecord, TicketsLedger};
use crate::lab::{LabService, TICKETS_DB, process::Process};
use crate::protocol::DEFAULT_PORT;
use crate::server::service::ledger;

/// Longest a racing client may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(15);

impl Ctx<'_> {
    pub(super) fn tickets_race(
        &mut self,
        clients: usize,
        tickets: u64,
        out: &mut dyn Write,
    ) -> Result<(), ScenarioError> {
        let db = self.out.join(TICKETS_DB);
        let mut server = self.server(DEFAULT_PORT, LabService::Tickets, tickets, &[], out)?;
        self.start_clock();
        let first_round = clients.div_ceil(2);
        let _ = writeln!(out, "round 1: clients 1 to {first_round} race");
        let mut running = self.racers(1..=first_round)?;
        // As soon as one client has its answer, the rest are mid-race.
        let first_answer = running[0].0.wait_for_line("", CLIENT_LIMIT).ok();
        let pid = server.pid();
        let killed = server.stop(libc::SIGKILL, Duration::from_secs(2));
        let _ = writeln!(
            out,
            "server killed (SIGKILL, pid {pid}) in the middle of round 1, after the first answer"
        );
        if let Some(status) = killed {
            self.record
                .notes
                .push(format!("first server ended: {status}"));
        }
        let mut records = Vec::new();
        for (i, (client, record)) in running.drain(..).enumerate() {
            let first = if i == 0 {
                first_answer.as_deref()
            } else {
                None
            };
            records.push(finish_racer(client, record, first));
        }
        let unanswered = records.iter().filter(|r| r.responses.is_empty()).count();
        let db_arg = db.to_string_lossy().into_owned();
        let extra = ["--tickets-db".to_string(), db_arg];
        let mut server = self.server(DEFAULT_PORT, LabService::Tickets, tickets, &extra, out)?;
        let _ = writeln!(
            out,
            "server restarted on the same ledger; round 2: clients {} to {clients} race",
            first_round + 1
        );
        for (client, record) in self.racers(first_round + 1..=clients)? {
            records.push(finish_racer(client, record, None));
        }
        server.stop(libc::SIGTERM, Duration::from_secs(5));
        let confirmations = records
            .iter()
            .filter(|r| r.responses.first().is_some_and(|a| a.starts_with("Booked")))
            .count() as u64;
        self.record.clients.extend(records);
        let held = ledger::read(&db).map_err(|e| ScenarioError::Missing(e.to_string()))?;
        let record = TicketsLedger {
            path: db.display().to_string(),
            stock: held.stock.total,
            sold: held.stock.sold,
            bookings: held.bookings,
            by_server: held.by_pid.clone(),
            confirmations,
            unanswered: unanswered as u64,
        };
        for note in record.notes() {
            let _ = writeln!(out, "{note}");
            self.record.notes.push(note);
        }
        self.record.tickets_ledger = Some(record);
        Ok(())
    }

    /// Starts the clients numbered `range` at once, each booking one ticket.
    fn racers(
        &self,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<Vec<(Process, ClientRecord)>, ScenarioError> {
        range
            .map(|i| {
                self.once(
                    &format!("client {i}"),
                    DEFAULT_PORT,
                    &["--timeout", "10"],
                    &["book ticket".to_string()],
                    &[],
                )
            })
            .collect()
    }
}

/// Waits for a racing client; `first` is its answer when it was read
/// already (to time the kill).
fn finish_racer(client: Process, record: ClientRecord, first: Option<&str>) -> ClientRecord {
    let mut record = Ctx::finish(client, record, CLIENT_LIMIT, &[]);
    if let Some(first) = first {
        record.responses.insert(0, short(first));
        record.ok = record.error.is_none() && record.responses.len() == record.requests.len();
    }
    record
}
