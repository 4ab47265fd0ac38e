//! Totals over a whole analysis: counts, bytes each way and latency
//! percentiles. Every format's summary comes from here, so the text summary
//! and the JSON `summary` object can never disagree.

use serde::Serialize;

use super::distribution::{Distribution, ExactBudget};
pub(crate) use super::distribution::{LatencySummary, percentile};

#[cfg(test)]
use crate::analyze::model::Analysis;
use crate::analyze::model::EventCounts;
use crate::analyze::model::{CloseKind, ConnState, Connection};
use crate::human::format_micros;
use crate::protocol::app::AppProtocol;

/// Most distinct operations counted one by one; the rest are summed up as
/// [`OTHER_OPERATIONS`] (a capture of many distinct URLs stays bounded).
pub(crate) const MAX_OPERATIONS: usize = 200;
/// The operation name that sums up operations past [`MAX_OPERATIONS`].
pub(crate) const OTHER_OPERATIONS: &str = "(other operations)";

/// Totals over every connection of an analysis (never capped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Number of TCP connections.
    pub connections: u64,
    /// Connections whose handshake was not captured (capture began mid-connection).
    pub connections_without_handshake: u64,
    /// Connections still open at the end of the capture (no FIN or RST seen).
    pub connections_open: u64,
    /// Connections ended by a reset.
    pub connections_reset: u64,
    /// Connections ended by the inactivity timeout (state `timed_out`).
    pub connections_timed_out: u64,
    /// Connections evicted to stay within the memory budget (state `evicted`).
    pub connections_evicted: u64,
    /// Request/response exchanges over all connections.
    pub exchanges: u64,
    /// Exchanges whose request got no response in the capture.
    pub exchanges_without_response: u64,
    /// TCP payload bytes client to server, summed over connections.
    pub bytes_client_to_server: u64,
    /// TCP payload bytes server to client, summed over connections.
    pub bytes_server_to_client: u64,
    /// Bytes missing from the capture (sum of all gaps).
    pub gap_bytes: u64,
    /// Latency percentiles over every exchange that has a latency.
    pub latency: LatencySummary,
    /// The network's share of those latencies (see
    /// [`Connection::latency_split`]), over the exchanges it could be told for.
    pub network: LatencySummary,
    /// The server's share, over the same exchanges.
    pub server: LatencySummary,
    /// Number of warnings of the analysis.
    pub warnings: u64,
    /// TCP events over all connections, by kind (every kind listed, zeros
    /// included; events beyond a connection's cap are not in these counts).
    pub tcp_events: EventCounts,
    /// TCP events beyond the per-connection cap, counted but not kept.
    pub tcp_events_dropped: u64,
    /// Per operation of an application protocol (`GET /index.html`,
    /// `INCR`), most frequent first: empty for the lab's framings.
    pub operations: Vec<OperationSummary>,
}

/// Totals for one operation of one application protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OperationSummary {
    /// The protocol.
    pub protocol: AppProtocol,
    /// The operation, as in each exchange's `operation`.
    pub operation: String,
    /// Exchanges of this operation.
    pub count: u64,
    /// Those whose response reported a failure.
    pub errors: u64,
    /// Request end to response end.
    pub latency: LatencySummary,
    /// Request end to the first byte of the response.
    pub first_byte_latency: LatencySummary,
}

/// One operation while counting.
#[derive(Debug, Clone, Default)]
struct OperationCounts {
    count: u64,
    errors: u64,
    latencies: Distribution,
    first_bytes: Distribution,
}

impl Summary {
    /// Computes the totals of `analysis`.
    #[cfg(test)]
    pub fn of(analysis: &Analysis) -> Summary {
        let mut builder = SummaryBuilder::default();
        for c in &analysis.connections {
            builder.add(c);
        }
        builder.finish(analysis.warnings.len() as u64)
    }
}

/// Builds a [`Summary`] one connection at a time, so a streamed analysis
/// never holds its connections: counters, plus the latency distributions
/// (every latency while they fit [`ExactBudget`], so percentiles are exact
/// on all but huge captures).
#[derive(Debug, Clone, Default)]
pub(crate) struct SummaryBuilder {
    summary: Summary,
    latencies: Distribution,
    network: Distribution,
    server: Distribution,
    exact_budget: ExactBudget,
    operations: std::collections::HashMap<(AppProtocol, String), OperationCounts>,
}

impl SummaryBuilder {
    /// Adds the totals of one connection.
    pub fn add(&mut self, c: &Connection) {
        let s = &mut self.summary;
        s.connections += 1;
        s.connections_without_handshake += u64::from(c.handshake.is_none());
        s.connections_open += u64::from(c.close.is_none());
        s.connections_reset +=
            u64::from(c.close.as_ref().is_some_and(|cl| cl.kind == CloseKind::Rst));
        s.connections_timed_out += u64::from(c.state == ConnState::TimedOut);
        s.connections_evicted += u64::from(c.state == ConnState::Evicted);
        s.exchanges += c.exchanges.len() as u64;
        s.bytes_client_to_server = s
            .bytes_client_to_server
            .saturating_add(c.bytes_client_to_server);
        s.bytes_server_to_client = s
            .bytes_server_to_client
            .saturating_add(c.bytes_server_to_client);
        s.gap_bytes = c
            .gaps
            .iter()
            .fold(s.gap_bytes, |acc, g| acc.saturating_add(g.len));
        for e in &c.events {
            s.tcp_events.add(e.kind, 1);
        }
        s.tcp_events_dropped = s.tcp_events_dropped.saturating_add(c.events_dropped);
        for e in &c.exchanges {
            s.exchanges_without_response += u64::from(e.response_last_time.is_none());
            let budget = &mut self.exact_budget;
            self.latencies.extend(e.latency_us, budget);
            if let Some(split) = c.latency_split(e)
                && split.network_us.is_finite()
                && split.server_us.is_finite()
            {
                self.network.push(split.network_us, budget);
                self.server.push(split.server_us, budget);
            }
            if let (Some(protocol), Some(op)) = (c.protocol, &e.operation) {
                let known = self.operations.contains_key(&(protocol, op.clone()));
                let key = if known || self.operations.len() < MAX_OPERATIONS {
                    (protocol, op.clone())
                } else {
                    (protocol, OTHER_OPERATIONS.to_owned())
                };
                let o = self.operations.entry(key).or_default();
                o.count += 1;
                o.errors += u64::from(e.error);
                o.latencies.extend(e.latency_us, budget);
                o.first_bytes.extend(e.first_byte_latency_us, budget);
            }
        }
    }

    /// Connections added so far.
    pub fn connections(&self) -> u64 {
        self.summary.connections
    }

    /// The totals, with the number of warnings of the analysis.
    pub fn finish(self, warnings: u64) -> Summary {
        let mut s = self.summary;
        s.latency = self.latencies.summary();
        s.network = self.network.summary();
        s.server = self.server.summary();
        let mut operations: Vec<OperationSummary> = self
            .operations
            .into_iter()
            .map(|((protocol, operation), o)| OperationSummary {
                protocol,
                operation,
                count: o.count,
                errors: o.errors,
                latency: o.latencies.summary(),
                first_byte_latency: o.first_bytes.summary(),
            })
            .collect();
        operations.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.protocol.name().cmp(b.protocol.name()))
                .then_with(|| a.operation.cmp(&b.operation))
        });
        s.operations = operations;
        s.warnings = warnings;
        s
    }
}

/// Formats an optional duration in microseconds as
/// [`format_micros`] does; `n/a` when absent.
pub(crate) fn format_opt_micros(us: Option<f64>) -> String {
    us.map_or_else(|| "n/a".to_owned(), format_micros)
}

/// Formats a byte count: `512 B`, `1,234,567 B`. Exact, with digit grouping,
/// because students compare it with Wireshark's numbers.
pub(crate) fn format_bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out.push_str(" B");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn summary_of_the_sample() {
        let s = Summary::of(&sample::analysis());
        assert_eq!(s.connections, 3);
        assert_eq!(s.connections_without_handshake, 1);
        assert_eq!(s.connections_open, 1);
        assert_eq!(s.connections_reset, 1);
        assert_eq!(s.exchanges, 3 + 2 + 1);
        assert_eq!(s.exchanges_without_response, 1);
        assert_eq!(s.bytes_client_to_server, 16 + 20 + 201);
        assert_eq!(s.bytes_server_to_client, 34 + 1224);
        assert_eq!(s.gap_bytes, 1200);
        // Latencies: 150, 210, 305 (conn 1), 400, 180 (conn 2), none (conn 3).
        // Sorted 150 180 210 305 400: p50 = rank 3 = 210, p99 = rank 5 = 400.
        assert_eq!(s.latency.count, 5);
        assert_eq!(s.latency.p50_us, Some(210.0));
        assert_eq!(s.latency.p99_us, Some(400.0));
        assert_eq!(s.latency.max_us, Some(400.0));
        assert_eq!(s.warnings, 1);
    }

    #[test]
    fn no_latency_means_none() {
        let s = Summary::of(&Analysis::default());
        assert_eq!(s.latency.count, 0);
        assert_eq!(s.latency.p50_us, None);
        assert_eq!(format_opt_micros(s.latency.p99_us), "n/a");
    }

    #[test]
    fn durations_and_bytes_read_well() {
        assert_eq!(format_opt_micros(Some(150.0)), "0.150 ms");
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1_234_567), "1,234,567 B");
    }
}
