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

use super::ladder::{self, Row, truncate};
use super::stats::{format_bytes, format_micros, format_opt_micros};
use super::{RenderOptions, Report, hidden_connections, plural, shown_connections};
use crate::analyze::model::{CaptureSummary, CloseKind, Connection, Side};
use crate::protocol::app::AppProtocol;

/// The narrowest layout; a smaller [`RenderOptions::width`] is raised to it.
pub const MIN_WIDTH: usize = 50;

/// Columns of the time column, its trailing space included.
const TIME_W: usize = 12;
/// Columns of the latency column in the right margin.
const LAT_W: usize = 11;

/// Writes the ladder diagrams and the summary.
pub fn render(report: &Report<'_>, options: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
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

/// A piece of output's colour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Bold,
    Handshake,
    Request,
    Response,
    Fin,
    Rst,
    Note,
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
    let blank_time = " ".repeat(TIME_W);
    p.styled(&blank_time, &l.idle(), Style::Plain)?;
    for row in ladder::rows_for(conn, options) {
        let time = time_col(conn, row.time());
        let (body, latency, style) = match &row {
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
            Row::MoreEvents(n) => {
                notes(
                    p,
                    &l,
                    &format!(
                        "… {n} more TCP event{} (all are in --format json)",
                        plural(*n)
                    ),
                )?;
                continue;
            }
            Row::NoHandshake => {
                notes(p, &l, "(capture began mid-connection: no handshake seen)")?;
                continue;
            }
            Row::Gap(g) => {
                notes(p, &l, &format!("≈ {}", ladder::gap_text(g)))?;
                continue;
            }
            Row::Pitfall(pf) => {
                notes(p, &l, &format!("! {}", ladder::pitfall_text(pf)))?;
                continue;
            }
            Row::More(n) => {
                notes(
                    p,
                    &l,
                    &format!("… {n} more exchange{} (counted in the summary)", plural(*n)),
                )?;
                continue;
            }
            Row::NoExchanges => {
                notes(p, &l, "(no request or response seen)")?;
                continue;
            }
            Row::StillOpen => {
                notes(p, &l, "(still open at end of capture: no FIN or RST)")?;
                continue;
            }
            Row::PureAck(a) => (
                l.arrow(
                    a.from == Side::Client,
                    &ladder::ack_label(a, options.acks),
                    true,
                ),
                String::new(),
                Style::Handshake,
            ),
            Row::AcksNotDrawn(n) => {
                notes(p, &l, &ladder::acks_not_drawn_text(*n, options.acks))?;
                continue;
            }
        };
        let body = if latency.is_empty() {
            body
        } else {
            format!("{body}  {latency:>LAT_W$}")
        };
        p.styled(&time, &body, style)?;
    }
    Ok(())
}

/// Wrapped note rows between the lifelines.
fn notes(p: &mut Printer<'_>, l: &Ladder, text: &str) -> io::Result<()> {
    let blank_time = " ".repeat(TIME_W);
    for line in l.note(text) {
        p.styled(&blank_time, &line, Style::Note)?;
    }
    Ok(())
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
                    "p50 {} · p99 {} · max {} (over {} exchange{})",
                    format_opt_micros(s.latency.p50_us),
                    format_opt_micros(s.latency.p99_us),
                    format_opt_micros(s.latency.max_us),
                    s.latency.count,
                    plural(s.latency.count as usize)
                )
            },
        ),
        ("tcp events", event_counts(s)),
        ("warnings", format!("{}", s.warnings)),
    ];
    for (name, value) in rows {
        p.wrapped(&format!("{name:<12} {value}"), 2, Style::Plain)?;
    }
    if !s.operations.is_empty() {
        p.wrapped("operations", 2, Style::Plain)?;
    }
    for o in &s.operations {
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
        p.wrapped(
            &format!(
                "{} {} {}×{errors}{latency}{first_byte}",
                o.protocol,
                ladder::visible(&o.operation),
                o.count
            ),
            4,
            Style::Plain,
        )?;
    }
    for w in report.warnings {
        p.wrapped(&format!("! {}", ladder::visible(w)), 4, Style::Note)?;
    }
    Ok(())
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

/// Word-wraps `text` into lines of at most `max` columns; words longer than
/// a line are cut.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let word = truncate(word, max);
        if cur.is_empty() {
            cur = word;
        } else if cur.width() + 1 + word.width() <= max {
            cur.push(' ');
            cur.push_str(&word);
        } else {
            lines.push(std::mem::replace(&mut cur, word));
        }
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::model::Analysis;
    use crate::report::sample;

    fn text(analysis: &Analysis, options: &RenderOptions) -> String {
        let mut out = Vec::new();
        crate::report::render(analysis, crate::report::Format::Text, options, &mut out)
            .expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    fn opts(width: usize) -> RenderOptions {
        RenderOptions {
            width,
            ..RenderOptions::default()
        }
    }

    /// Index of the first line at or after `from` containing `needle`.
    fn find(lines: &[&str], from: usize, needle: &str) -> usize {
        from + lines[from..]
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not found after line {from}"))
    }

    #[test]
    fn echo_ladder_in_order() {
        let a = Analysis {
            connections: vec![sample::echo_connection()],
            ..sample::analysis()
        };
        let out = text(&a, &opts(100));
        let lines: Vec<&str> = out.lines().collect();
        let mut i = find(
            &lines,
            0,
            "Connection 1 · line framing · 3 exchanges · closed by client (FIN)",
        );
        i = find(&lines, i, "client 10.0.0.2:51234");
        i = find(&lines, i, "server 10.0.0.3:2222");
        let syn = find(&lines, i, " SYN ");
        assert!(lines[syn].contains("+0.000 ms") && lines[syn].contains("▶│"));
        let synack = find(&lines, syn, "SYN-ACK");
        assert!(lines[synack].contains("+0.045 ms") && lines[synack].contains("│◀"));
        assert!(lines[synack].trim_end().ends_with("0.045 ms"));
        let ack = find(&lines, synack, " ACK ");
        assert!(lines[ack].contains("+0.060 ms"));
        let hello = find(&lines, ack, "\"hello\" (5 B)");
        assert!(lines[hello].contains("+1.000 ms") && lines[hello].contains("▶│"));
        let echo = find(&lines, hello, "\"Echo: hello\" (11 B)");
        assert!(lines[echo].contains("+1.150 ms"));
        assert!(
            lines[echo].trim_end().ends_with("0.150 ms"),
            "{}",
            lines[echo]
        );
        let world = find(&lines, echo, "\"world\" (5 B)");
        let bye = find(&lines, world, "\"bye\" (3 B)");
        let pit = find(&lines, bye, "! 2 requests arrived in one segment");
        let echo_world = find(&lines, pit, "\"Echo: world\"");
        assert!(lines[echo_world].trim_end().ends_with("0.210 ms"));
        let echo_bye = find(&lines, echo_world, "\"Echo: bye\"");
        assert!(lines[echo_bye].trim_end().ends_with("0.305 ms"));
        let fin_c = find(&lines, echo_bye, " FIN ");
        assert!(lines[fin_c].contains("▶│"), "client FIN goes right");
        let fin_s = find(&lines, fin_c + 1, " FIN ");
        assert!(lines[fin_s].contains("│◀"), "server FIN goes left");
    }

    #[test]
    fn midstream_reset_and_ipv6_open() {
        let out = text(&sample::analysis(), &opts(90));
        assert!(out.contains("Connection 2 · line framing · 2 exchanges · closed by server (RST)"));
        assert!(out.contains("capture began mid-connection: no handshake seen"));
        assert!(out.contains("≈ 1,200 B from server not captured"));
        assert!(out.contains("response 2 took 3 segments"));
        let rst = out.lines().find(|l| l.contains(" RST ")).expect("RST row");
        assert!(rst.contains("│◀") && rst.contains("+5.000 ms"), "{rst}");
        assert!(out.contains("client [2001:db8:85a3::8a2e:370:7334]:50000"));
        assert!(out.contains("server [2001:db8::1]:2222"));
        assert!(out.contains("still open at end of capture"));
        let long = out
            .lines()
            .find(|l| l.contains("AAAA"))
            .expect("long request");
        assert!(long.contains('…') && long.contains("no response"), "{long}");
    }

    #[test]
    fn summary_is_exact() {
        let out = text(&sample::analysis(), &opts(100));
        let summary = &out[out.find("Summary").expect("summary")..];
        assert!(summary.contains("connections  3 (1 without handshake, 1 still open, 1 reset)"));
        assert!(summary.contains("exchanges    6 (1 without response)"));
        assert!(
            summary.contains("237 B client→server · 1,258 B server→client (1,200 B not captured)")
        );
        assert!(summary.contains("p50 0.210 ms · p99 0.400 ms · max 0.400 ms (over 5 exchanges)"));
        assert!(summary.contains("warnings     1"));
        assert!(summary.contains("! packet 17: TCP data offset 3"));
    }

    #[test]
    fn lines_never_exceed_the_width() {
        let mut a = sample::analysis();
        a.connections[0].exchanges[0].response_preview = "漢字".repeat(80);
        a.warnings.push("w".repeat(300));
        for width in [0, 30, MIN_WIDTH, 61, 80, 100, 133, 200] {
            let out = text(&a, &opts(width));
            for line in out.lines() {
                assert!(
                    line.width() <= width.max(MIN_WIDTH),
                    "width {width}: {} columns: {line}",
                    line.width()
                );
            }
            // Both lifelines line up on every ladder row (rows holding wide
            // characters have fewer chars than columns and are skipped).
            let span = Ladder::new(width.max(MIN_WIDTH)).span;
            let mut ladder_rows = 0;
            for line in out.lines() {
                let cols: Vec<char> = line.chars().collect();
                if line.width() != cols.len() || cols.len() <= TIME_W {
                    continue;
                }
                if "│├".contains(cols[TIME_W]) {
                    ladder_rows += 1;
                    let server = cols.get(TIME_W + 1 + span).copied();
                    assert!(
                        server.is_some_and(|c| "│┤".contains(c)),
                        "width {width}: server lifeline off: {line}"
                    );
                }
            }
            assert!(ladder_rows > 20, "only {ladder_rows} ladder rows checked");
        }
    }

    #[test]
    fn cap_keeps_the_summary_complete() {
        let a = sample::many_exchanges(120);
        let out = text(
            &a,
            &RenderOptions {
                max_exchanges: Some(50),
                ..opts(100)
            },
        );
        assert!(out.contains("\"msg 49\""));
        assert!(!out.contains("\"msg 50\""));
        assert!(out.contains("… 70 more exchanges"));
        assert!(out.contains("exchanges    120"));
        assert_eq!(out.lines().filter(|l| l.contains(" FIN ")).count(), 2);
        let all = text(
            &a,
            &RenderOptions {
                max_exchanges: None,
                ..opts(100)
            },
        );
        assert!(all.contains("\"msg 119\"") && !all.contains("more exchanges"));
    }

    #[test]
    fn zero_connections_and_no_latency() {
        let out = text(&Analysis::default(), &opts(80));
        assert!(out.contains("No TCP connection in the capture."));
        assert!(out.contains("p50 n/a · p99 n/a · max n/a"));
        let mut a = sample::analysis();
        a.connections.truncate(1);
        a.connections[0].exchanges.clear();
        a.connections[0].recv_pitfalls.clear();
        let out = text(&a, &opts(80));
        assert!(out.contains("0 exchanges"));
        assert!(out.contains("(no request or response seen)"));
    }

    #[test]
    fn connection_cap_is_announced() {
        let out = text(
            &sample::analysis(),
            &RenderOptions {
                max_connections: Some(1),
                ..opts(100)
            },
        );
        assert!(out.contains("Connection 1 "));
        assert!(!out.contains("Connection 2 "));
        assert!(out.contains("… 2 more connections not drawn"));
        assert!(out.contains("connections  3"));
    }

    #[test]
    fn colour_only_when_asked_and_escapes_are_neutralised() {
        let mut a = sample::analysis();
        a.connections[0].exchanges[0].request_preview = "\x1b[2Jboom".into();
        let plain = text(&a, &opts(100));
        assert!(!plain.contains('\x1b'), "no raw ESC without colour");
        assert!(plain.contains("\\x{1b}[2Jboom"));
        let coloured = text(
            &a,
            &RenderOptions {
                color: true,
                ..opts(100)
            },
        );
        assert!(coloured.contains("\x1b[32m"));
        assert!(!coloured.contains("\x1b[2J"));
    }

    #[test]
    fn snapshot_of_a_small_ladder() {
        let mut c = sample::echo_connection();
        c.exchanges.truncate(1);
        c.recv_pitfalls.clear();
        let a = Analysis {
            packets: 9,
            framing: c.framing.into(),
            connections: vec![c],
            warnings: vec![],
            capture: Default::default(),
        };
        let expected = "\
Connection 1 · line framing · 1 exchange · closed by client (FIN)
  framing: line: the first messages are text lines
  client 10.0.0.2:51234
  server 10.0.0.3:2222
  16 B client→server · 34 B server→client · handshake RTT 0.045 ms

         client                                                server
            │                                                     │
  +0.000 ms ├──────────────────────── SYN ───────────────────────▶│
  +0.045 ms │◀───────────────────── SYN-ACK ──────────────────────┤     0.045 ms
  +0.060 ms ├──────────────────────── ACK ───────────────────────▶│
  +1.000 ms ├─ \"hello\" (5 B) ────────────────────────────────────▶│
  +1.150 ms │◀───────────────────────────── \"Echo: hello\" (11 B) ─┤     0.150 ms
  +3.000 ms ├──────────────────────── FIN ───────────────────────▶│
  +3.050 ms │◀─────────────────────── FIN ────────────────────────┤

Summary
  packets      9
  connections  1
  exchanges    1
  bytes        16 B client→server · 34 B server→client
  latency      p50 0.150 ms · p99 0.150 ms · max 0.150 ms (over 1 exchange)
  tcp events   none
  warnings     0
";
        let got = text(&a, &opts(80));
        assert_eq!(got, expected);
    }

    #[test]
    fn the_summary_says_which_packets_were_skipped() {
        let mut a = sample::analysis();
        let summary_line = |a: &Analysis| {
            let got = text(a, &opts(100));
            let line = got.lines().find(|l| l.starts_with("  packets"));
            line.expect("a packets line").to_owned()
        };
        assert_eq!(
            summary_line(&a),
            "  packets      42 (3 non-TCP, 1 malformed packets skipped)"
        );
        a.capture.skipped = Default::default();
        a.capture.skipped.not_tcp = 12;
        a.capture.truncated = true;
        assert_eq!(
            summary_line(&a),
            "  packets      42 (12 non-TCP packets skipped, the file was cut short)"
        );
        a.capture = Default::default();
        assert_eq!(summary_line(&a), "  packets      42");
    }
}
