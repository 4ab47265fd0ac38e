//! The default `text` format: per connection a header and a ladder diagram
//! (client and server lifelines, one arrow per SYN, SYN-ACK, ACK, request,
//! response, FIN and RST, times relative to the connection's first packet,
//! latency in the right margin), then a summary over every connection.
//!
//! Every line fits the width given in [`RenderOptions`]: labels are cut with
//! `…`, notes are wrapped. Widths are measured in terminal columns
//! (`unicode-width`), so wide characters in previews do not break the layout.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::ladder::{self, Row, truncate, wrap};
use super::stats::{format_bytes, format_opt_micros};
use super::{RenderOptions, Report, hidden_connections, plural, shown_connections};
use crate::analyze::model::{CaptureSummary, CloseKind, Connection, Side};
use crate::human::format_micros;
use crate::protocol::app::AppProtocol;

/// The narrowest layout; a smaller [`RenderOptions::width`] is raised to it.
pub(crate) const MIN_WIDTH: usize = 50;

/// Columns of the time column, its trailing space included.
const TIME_W: usize = 12;
/// Columns of the latency column in the right margin.
const LAT_W: usize = 11;

/// Writes the ladder diagrams and the summary.
pub(crate) fn render(
    report: &Report<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut p = Printer {
        out,
        width: options.width.max(MIN_WIDTH),
        color: options.color,
    };
    if report.total_connections == 0 {
        p.line("No TCP connection in the capture.", Style::Bold)?;
        p.blank()?;
    }
    for conn in report
        .connections
        .iter()
        .take(shown_connections(report, options))
    {
        connection(&mut p, conn, options)?;
        p.blank()?;
    }
    if let Some(note) = hidden_connections(report, options) {
        p.wrapped(&note, 0, Style::Note)?;
        p.blank()?;
    }
    summary(&mut p, report)
}

/// Writes only the summary of `report`, as [`render`] ends: what
/// `reqresp watch` prints on quit.
pub fn render_summary(
    report: &Report<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut p = Printer {
        out,
        width: options.width.max(MIN_WIDTH),
        color: options.color,
    };
    summary(&mut p, report)
}

/// A piece of output's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// No colour.
    Plain,
    /// Headers.
    Bold,
    /// SYN, SYN-ACK, ACK.
    Handshake,
    /// A request.
    Request,
    /// A response.
    Response,
    /// A FIN.
    Fin,
    /// A RST.
    Rst,
    /// A note between the lifelines.
    Note,
    /// A TCP event.
    Event,
}

impl Style {
    /// The ANSI SGR code, if any. Written by hand: eight fixed codes do not
    /// justify a colour crate.
    fn sgr(self) -> Option<&'static str> {
        match self {
            Style::Plain => None,
            Style::Bold => Some("1"),
            Style::Handshake => Some("36"),
            Style::Request => Some("32"),
            Style::Response => Some("34"),
            Style::Fin => Some("33"),
            Style::Rst => Some("31"),
            Style::Note => Some("35"),
            Style::Event => Some("91"),
        }
    }
}

/// Writes lines cut to the width, with optional colour.
struct Printer<'a> {
    out: &'a mut dyn Write,
    width: usize,
    color: bool,
}

impl Printer<'_> {
    fn blank(&mut self) -> io::Result<()> {
        writeln!(self.out)
    }

    /// One line; `prefix` is never coloured, `body` is.
    fn styled(&mut self, prefix: &str, body: &str, style: Style) -> io::Result<()> {
        let line = truncate(&format!("{prefix}{body}"), self.width);
        let line = line.trim_end();
        match (self.color, style.sgr()) {
            (true, Some(code)) if line.len() > prefix.len() && line.starts_with(prefix) => {
                let (p, b) = line.split_at(prefix.len());
                writeln!(self.out, "{p}\x1b[{code}m{b}\x1b[0m")
            }
            _ => writeln!(self.out, "{line}"),
        }
    }

    fn line(&mut self, text: &str, style: Style) -> io::Result<()> {
        self.styled("", text, style)
    }

    /// `text` word-wrapped, continuation lines indented by `indent + 2`.
    fn wrapped(&mut self, text: &str, indent: usize, style: Style) -> io::Result<()> {
        let first = " ".repeat(indent);
        let rest = " ".repeat(indent + 2);
        for (i, l) in wrap(text, self.width - indent - 2).iter().enumerate() {
            let prefix = if i == 0 { &first } else { &rest };
            self.styled(prefix, l, style)?;
        }
        Ok(())
    }
}

/// Column positions of one ladder.
struct Ladder {
    /// Columns between the two lifelines.
    span: usize,
}

impl Ladder {
    fn new(width: usize) -> Ladder {
        // time | client lifeline | span | server lifeline | 2 spaces | latency
        Ladder {
            span: width - TIME_W - 1 - 1 - 2 - LAT_W,
        }
    }

    /// Space for a label inside an arrow (at least one `─` stays on each side).
    fn label_room(&self) -> usize {
        self.span - 5
    }

    /// `├── label ──▶│` (right) or `│◀── label ──┤` (left); `align` places
    /// the label: -1 near the sender's end, 0 centred.
    fn arrow(&self, rightwards: bool, label: &str, centred: bool) -> String {
        let label = truncate(label, self.label_room());
        let lw = label.width();
        let fill = self.span - lw - 4;
        let (before, after) = if centred {
            (fill / 2, fill - fill / 2)
        } else if rightwards {
            (0, fill)
        } else {
            (fill, 0)
        };
        let dash = |n| "─".repeat(n);
        if rightwards {
            format!("├─{} {label} {}▶│", dash(before), dash(after))
        } else {
            format!("│◀{} {label} {}─┤", dash(before), dash(after))
        }
    }

    /// A note between the lifelines, wrapped.
    fn note(&self, text: &str) -> Vec<String> {
        wrap(text, self.span - 2)
            .into_iter()
            .map(|l| {
                let pad = self.span - 2 - l.width();
                format!("│ {l}{} │", " ".repeat(pad))
            })
            .collect()
    }

    /// Empty lifelines.
    fn idle(&self) -> String {
        format!("│{}│", " ".repeat(self.span))
    }

    /// The `client … server` column header, each word centred on its lifeline.
    fn header(&self) -> String {
        let server_col = TIME_W + 1 + self.span;
        format!(
            "{}client{}server",
            " ".repeat(TIME_W - 3),
            " ".repeat(server_col - 3 - (TIME_W + 3))
        )
    }
}

fn time_col(conn: &Connection, t: Option<crate::analyze::model::Timestamp>) -> String {
    let s = t.map_or(String::new(), |t| ladder::relative(conn, t));
    format!("{s:>w$} ", w = TIME_W - 1)
}

fn connection(p: &mut Printer<'_>, conn: &Connection, options: &RenderOptions) -> io::Result<()> {
    let n = conn.exchanges.len();
    p.wrapped(
        &format!(
            "Connection {} · {} framing · {n} exchange{} · {}",
            conn.id,
            ladder::framing_name(conn),
            plural(n),
            ladder::close_summary(conn)
        ),
        0,
        Style::Bold,
    )?;
    if let Some(reason) = &conn.framing_reason {
        p.wrapped(&format!("framing: {reason}"), 2, Style::Plain)?;
    }
    p.wrapped(&format!("client {}", conn.client), 2, Style::Plain)?;
    p.wrapped(&format!("server {}", conn.server), 2, Style::Plain)?;
    let rtt = conn
        .handshake
        .as_ref()
        .and_then(|h| h.rtt_us)
        .map(|r| format!(" · handshake RTT {}", format_micros(r)))
        .unwrap_or_default();
    p.wrapped(
        &format!(
            "{} client→server · {} server→client{rtt}",
            format_bytes(conn.bytes_client_to_server),
            format_bytes(conn.bytes_server_to_client)
        ),
        2,
        Style::Plain,
    )?;
    p.blank()?;

    let l = Ladder::new(p.width);
    p.line(&l.header(), Style::Bold)?;
    for line in ladder_lines(conn, options, p.width) {
        p.styled(&line.time, &line.body, line.style)?;
    }
    Ok(())
}

/// One line of a connection's ladder: the time column, the drawing (arrow,
/// latency in the margin, or a note between the lifelines) and its colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderLine {
    /// The time column (`+1.150 ms`, or blank), its trailing space included.
    pub time: String,
    /// The lifelines with the arrow or note, then the latency if any.
    pub body: String,
    /// How it is coloured.
    pub style: Style,
}

/// The header above a ladder `width` columns wide (`client … server`).
pub fn ladder_header(width: usize) -> String {
    Ladder::new(width.max(MIN_WIDTH)).header()
}

/// The lines of `conn`'s ladder in `width` columns (at least
/// [`MIN_WIDTH`]), as `analyze` prints them under the header: the empty
/// lifelines, then one line per arrow or note line. `reqresp watch` draws
/// the same lines.
pub fn ladder_lines(conn: &Connection, options: &RenderOptions, width: usize) -> Vec<LadderLine> {
    let l = Ladder::new(width.max(MIN_WIDTH));
    let blank_time = " ".repeat(TIME_W);
    let mut out = vec![LadderLine {
        time: blank_time,
        body: l.idle(),
        style: Style::Plain,
    }];
    for row in ladder::rows_for(conn, options) {
        let time = time_col(conn, row.time());
        let Some((body, latency, style)) = arrow_row(&l, conn, options, &row) else {
            if let Some(text) = note_text(&row, options) {
                notes(&mut out, &l, &text);
            }
            continue;
        };
        let body = if latency.is_empty() {
            body
        } else {
            format!("{body}  {latency:>LAT_W$}")
        };
        out.push(LadderLine { time, body, style });
        if let Row::Response { exchange, .. } = &row
            && let Some(split) = conn.latency_split(exchange)
        {
            notes(&mut out, &l, &ladder::split_text(&split));
        }
    }
    out
}

/// A row drawn as an arrow: its body, latency column and style; `None` for
/// a note row.
fn arrow_row(
    l: &Ladder,
    conn: &Connection,
    options: &RenderOptions,
    row: &Row<'_>,
) -> Option<(String, String, Style)> {
    Some(match row {
        Row::Syn(_) => (l.arrow(true, "SYN", true), String::new(), Style::Handshake),
        Row::SynAck(_) => {
            let rtt = conn.handshake.as_ref().and_then(|h| h.rtt_us);
            (
                l.arrow(false, "SYN-ACK", true),
                rtt.map(format_micros).unwrap_or_default(),
                Style::Handshake,
            )
        }
        Row::Ack(_) => (l.arrow(true, "ACK", true), String::new(), Style::Handshake),
        Row::Request { exchange, .. } => {
            let unanswered =
                exchange.response_last_time.is_none() && exchange.response_first_time.is_none();
            (
                l.arrow(
                    true,
                    &ladder::label(
                        exchange.request_summary.as_deref(),
                        &exchange.request_preview,
                        exchange.request_bytes,
                        l.label_room(),
                    ),
                    false,
                ),
                if unanswered {
                    "no response".to_owned()
                } else {
                    String::new()
                },
                Style::Request,
            )
        }
        Row::Response { exchange, .. } => (
            l.arrow(
                false,
                &ladder::label(
                    exchange.response_summary.as_deref(),
                    &exchange.response_preview,
                    exchange.response_bytes,
                    l.label_room(),
                ),
                false,
            ),
            format_opt_micros(exchange.latency_us),
            Style::Response,
        ),
        Row::Close(e) => (
            l.arrow(e.from == Side::Client, ladder::close_name(e.kind), true),
            String::new(),
            if e.kind == CloseKind::Rst {
                Style::Rst
            } else {
                Style::Fin
            },
        ),
        Row::Event(e) => (
            l.arrow(e.side == Side::Client, &ladder::event_text(e), true),
            String::new(),
            Style::Event,
        ),
        Row::PureAck(a) => (
            l.arrow(
                a.from == Side::Client,
                &ladder::ack_label(a, options.acks),
                true,
            ),
            String::new(),
            Style::Handshake,
        ),
        _ => return None,
    })
}

/// The text of a row drawn as a note between the lifelines.
fn note_text(row: &Row<'_>, options: &RenderOptions) -> Option<String> {
    Some(match row {
        Row::MoreEvents(n) => format!(
            "… {n} more TCP event{} (all are in --format json)",
            plural(*n)
        ),
        Row::NoHandshake => "(capture began mid-connection: no handshake seen)".to_owned(),
        Row::Gap(g) => format!("≈ {}", ladder::gap_text(g)),
        Row::Pitfall(pf) => format!("! {}", ladder::pitfall_text(pf)),
        Row::More(n) => format!("… {n} more exchange{} (counted in the summary)", plural(*n)),
        Row::NoExchanges => "(no request or response seen)".to_owned(),
        Row::StillOpen => "(still open at end of capture: no FIN or RST)".to_owned(),
        Row::AcksNotDrawn(n) => ladder::acks_not_drawn_text(*n, options.acks),
        _ => return None,
    })
}

/// Wrapped note rows between the lifelines.
fn notes(out: &mut Vec<LadderLine>, l: &Ladder, text: &str) {
    for line in l.note(text) {
        out.push(LadderLine {
            time: " ".repeat(TIME_W),
            body: line,
            style: Style::Note,
        });
    }
}

fn summary(p: &mut Printer<'_>, report: &Report<'_>) -> io::Result<()> {
    let s = report.summary;
    p.line("Summary", Style::Bold)?;
    let mut details = Vec::new();
    if s.connections_without_handshake > 0 {
        details.push(format!(
            "{} without handshake",
            s.connections_without_handshake
        ));
    }
    if s.connections_open > 0 {
        details.push(format!("{} still open", s.connections_open));
    }
    if s.connections_reset > 0 {
        details.push(format!("{} reset", s.connections_reset));
    }
    if s.connections_timed_out > 0 {
        details.push(format!("{} timed out", s.connections_timed_out));
    }
    if s.connections_evicted > 0 {
        details.push(format!("{} evicted for memory", s.connections_evicted));
    }
    let paren = |v: Vec<String>| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.join(", "))
        }
    };
    let rows = [
        (
            "packets",
            format!(
                "{}{}",
                report.packets,
                paren(capture_details(report.capture))
            ),
        ),
        (
            "connections",
            format!("{}{}", s.connections, paren(details)),
        ),
        (
            "exchanges",
            format!(
                "{}{}",
                s.exchanges,
                paren(
                    (s.exchanges_without_response > 0)
                        .then(|| format!("{} without response", s.exchanges_without_response))
                        .into_iter()
                        .collect()
                )
            ),
        ),
        (
            "bytes",
            format!(
                "{} client→server · {} server→client{}",
                format_bytes(s.bytes_client_to_server),
                format_bytes(s.bytes_server_to_client),
                if s.gap_bytes > 0 {
                    format!(" ({} not captured)", format_bytes(s.gap_bytes))
                } else {
                    String::new()
                }
            ),
        ),
        (
            "latency",
            if s.latency.count == 0 {
                "p50 n/a · p99 n/a · max n/a (no exchange with a response)".to_owned()
            } else {
                format!(
                    "{} (over {} exchange{})",
                    percentiles(&s.latency),
                    s.latency.count,
                    plural(s.latency.count as usize)
                )
            },
        ),
        ("network", split_summary(&s.network)),
        ("server", split_summary(&s.server)),
        ("tcp events", event_counts(s)),
        ("warnings", format!("{}", s.warnings)),
    ];
    for (name, value) in rows {
        if value.is_empty() {
            continue;
        }
        p.wrapped(&format!("{name:<12} {value}"), 2, Style::Plain)?;
    }
    operations(p, s)?;
    for w in report.warnings {
        p.wrapped(&format!("! {}", ladder::visible(w)), 4, Style::Note)?;
    }
    Ok(())
}

/// The per-operation table of an application protocol's exchanges.
fn operations(p: &mut Printer<'_>, s: &crate::report::stats::Summary) -> io::Result<()> {
    if !s.operations.is_empty() {
        p.wrapped("operations", 2, Style::Plain)?;
    }
    for o in &s.operations {
        p.wrapped(&operation_line(o), 4, Style::Plain)?;
    }
    Ok(())
}

/// One share of the latency split (the network's or the server's), like
/// the latency row; "" when no exchange could be split.
fn split_summary(d: &crate::report::stats::LatencySummary) -> String {
    if d.count == 0 {
        return String::new();
    }
    format!(
        "{} ({} latenc{} split)",
        percentiles(d),
        d.count,
        if d.count == 1 { "y" } else { "ies" }
    )
}

/// `p50 … · p99 … · max …`, the percentiles marked `≈` when estimated
/// (too many latencies to keep each one).
fn percentiles(d: &crate::report::stats::LatencySummary) -> String {
    let about = if d.estimated { "≈" } else { "" };
    format!(
        "p50 {about}{} · p99 {about}{} · max {}",
        format_opt_micros(d.p50_us),
        format_opt_micros(d.p99_us),
        format_opt_micros(d.max_us),
    )
}

/// One operation's line in the summary: count, errors, latency and, for
/// HTTP, the time to first byte.
fn operation_line(o: &crate::report::stats::OperationSummary) -> String {
    let errors = if o.errors > 0 {
        format!(" · {} error{}", o.errors, plural(o.errors as usize))
    } else {
        String::new()
    };
    let latency = if o.latency.count == 0 {
        " · no response".to_owned()
    } else {
        format!(
            " · p50 {} · p99 {} · max {}",
            format_opt_micros(o.latency.p50_us),
            format_opt_micros(o.latency.p99_us),
            format_opt_micros(o.latency.max_us)
        )
    };
    // Time to first byte tells apart a slow server from a big body.
    let first_byte = match o.first_byte_latency.p50_us {
        Some(f) if o.protocol == AppProtocol::Http => {
            format!(" · first byte p50 {}", format_micros(f))
        }
        _ => String::new(),
    };
    format!(
        "{} {} {}×{errors}{latency}{first_byte}",
        o.protocol,
        ladder::visible(&o.operation),
        o.count
    )
}

/// The summary's TCP events line: "none", or each kind seen with its count
/// ("3 retransmission · 6 duplicate ACK").
fn event_counts(s: &crate::report::stats::Summary) -> String {
    let mut parts: Vec<String> = s
        .tcp_events
        .nonzero()
        .map(|(kind, n)| format!("{n} {}", kind.describe()))
        .collect();
    if s.tcp_events_dropped > 0 {
        parts.push(format!("{} more not listed", s.tcp_events_dropped));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// What the summary says of the reading: packets skipped by reason
/// (`12 non-TCP packets skipped`), a file cut short.
fn capture_details(c: &CaptureSummary) -> Vec<String> {
    let k = &c.skipped;
    let reasons: Vec<String> = [
        (k.not_tcp, "non-TCP"),
        (k.not_ip, "non-IP"),
        (k.fragments, "IP-fragment"),
        (k.unsupported_link, "unsupported-link"),
        (k.cut_by_snaplen, "snaplen-cut"),
        (k.malformed, "malformed"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let mut details = Vec::new();
    if !reasons.is_empty() {
        let total = k.total();
        details.push(format!(
            "{} packet{} skipped",
            reasons.join(", "),
            plural(total as usize)
        ));
    }
    if c.truncated {
        details.push("the file was cut short".to_owned());
    }
    details
}

#[cfg(test)]
mod tests;
