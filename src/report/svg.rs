//! The `svg` format: a self-contained ladder diagram for a report. A title
//! and the summary, then per connection (stacked vertically) a heading, two
//! labelled lifelines (client, server) and one slanted arrow per packet event
//! of interest, labelled above with its preview and size; the time of each
//! row on the left, the latency of each response on the right; a legend at
//! the bottom.
//!
//! Rows are evenly spaced rather than proportional to time: in a capture the
//! handshake takes microseconds and the pause before a request may take
//! seconds, so a proportional axis would pile the handshake into one pixel
//! and spread idle time over pages. Every row carries its real time
//! (relative to the connection's first packet) instead; the slant of the
//! arrows only says "time passes downwards".
//!
//! Text widths are estimated from the font size (labels use a monospace
//! font, so the estimate holds) and labels are cut with `…` to stay between
//! the lifelines. Everything is written by hand: an SVG crate would add a
//! dependency for a few dozen elements.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::ladder::{self, Row, truncate};
use super::stats::{format_bytes, format_micros, format_opt_micros};
use super::{RenderOptions, Report, hidden_connections, plural, shown_connections};
use crate::analyze::model::{CloseKind, Connection, Side};

const WIDTH: f64 = 900.0;
const MARGIN: f64 = 20.0;
/// Right edge of the time labels.
const TIME_X: f64 = 118.0;
const CLIENT_X: f64 = 270.0;
const SERVER_X: f64 = 670.0;
/// Left edge of the latency labels.
const LATENCY_X: f64 = 690.0;
/// Vertical distance between rows.
const ROW_H: f64 = 38.0;
/// How far an arrow drops from sender to receiver.
const SLANT: f64 = 12.0;
/// Label font size and the advance of one monospace character at that size
/// (DejaVu Sans Mono: 0.602 em).
const FONT: f64 = 12.0;
const CHAR_W: f64 = FONT * 0.61;
/// Width of the address boxes atop the lifelines.
const BOX_W: f64 = 300.0;

const MONO: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";
const SANS: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

/// The colour of each kind of row.
#[derive(Clone, Copy)]
enum Ink {
    Handshake,
    Request,
    Response,
    Fin,
    Rst,
}

impl Ink {
    const ALL: [Ink; 5] = [
        Ink::Handshake,
        Ink::Request,
        Ink::Response,
        Ink::Fin,
        Ink::Rst,
    ];

    fn colour(self) -> &'static str {
        match self {
            Ink::Handshake => "#7c3aed",
            Ink::Request => "#15803d",
            Ink::Response => "#1d4ed8",
            Ink::Fin => "#b45309",
            Ink::Rst => "#dc2626",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Ink::Handshake => "handshake",
            Ink::Request => "request",
            Ink::Response => "response",
            Ink::Fin => "fin",
            Ink::Rst => "rst",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Ink::Handshake => "handshake (SYN, SYN-ACK, ACK)",
            Ink::Request => "request",
            Ink::Response => "response",
            Ink::Fin => "FIN (orderly close)",
            Ink::Rst => "RST (reset)",
        }
    }
}

/// Writes the SVG document.
pub fn render(report: &Report<'_>, options: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut body = String::new();
    let mut y = MARGIN;
    let s = report.summary;

    let title = options
        .title
        .clone()
        .unwrap_or_else(|| "Request/response ladder".to_owned());
    y += 22.0;
    text(
        &mut body,
        MARGIN,
        y,
        &fit(&title, 18.0, true),
        18.0,
        SANS,
        "start",
        "font-weight=\"bold\" fill=\"#111827\"",
    );
    y += 22.0;
    let sub = format!(
        "{} connection{} · {} exchange{} · latency p50 {} · p99 {} · max {}",
        s.connections,
        plural(s.connections as usize),
        s.exchanges,
        plural(s.exchanges as usize),
        format_opt_micros(s.latency.p50_us),
        format_opt_micros(s.latency.p99_us),
        format_opt_micros(s.latency.max_us),
    );
    text(
        &mut body,
        MARGIN,
        y,
        &fit(&sub, 13.0, false),
        13.0,
        SANS,
        "start",
        "fill=\"#374151\"",
    );
    y += 18.0;
    text(
        &mut body,
        MARGIN,
        y,
        "Rows evenly spaced; times relative to each connection's first packet; latency from end of request to end of response.",
        11.0,
        SANS,
        "start",
        "fill=\"#6b7280\"",
    );
    y += 16.0;

    let shown = shown_connections(report, options);
    if report.total_connections == 0 {
        y += 24.0;
        text(
            &mut body,
            WIDTH / 2.0,
            y,
            "No TCP connection in the capture.",
            14.0,
            SANS,
            "middle",
            "fill=\"#374151\"",
        );
        y += 10.0;
    }
    for conn in &report.connections[..shown] {
        y = connection(&mut body, conn, options, y + 26.0);
    }
    if let Some(note) = hidden_connections(report, options) {
        y += 26.0;
        text(
            &mut body,
            MARGIN,
            y,
            &fit(&note, 13.0, false),
            13.0,
            SANS,
            "start",
            "fill=\"#92400e\"",
        );
    }
    for w in report.warnings.iter().take(5) {
        y += 18.0;
        text(
            &mut body,
            MARGIN,
            y,
            &fit(&format!("! {w}"), 12.0, false),
            12.0,
            SANS,
            "start",
            "fill=\"#92400e\"",
        );
    }
    if report.warnings.len() > 5 {
        y += 18.0;
        let more = report.warnings.len() - 5;
        text(
            &mut body,
            MARGIN,
            y,
            &format!("… {more} more warning{}", plural(more)),
            12.0,
            SANS,
            "start",
            "fill=\"#92400e\"",
        );
    }
    y = legend(&mut body, y + 34.0);
    let height = (y + MARGIN).ceil();

    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{SANS}">"#
    )?;
    writeln!(out, "<title>{}</title>", xml(&title))?;
    writeln!(out, "<defs>")?;
    for ink in Ink::ALL {
        writeln!(
            out,
            r#"<marker id="head-{}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            ink.id(),
            ink.colour()
        )?;
    }
    writeln!(out, "</defs>")?;
    writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    )?;
    out.write_all(body.as_bytes())?;
    writeln!(out, "</svg>")
}

/// Draws one connection from `top`; returns the y below it.
fn connection(b: &mut String, conn: &Connection, options: &RenderOptions, top: f64) -> f64 {
    let mut y = top;
    let n = conn.exchanges.len();
    let heading = format!(
        "Connection {} · {} framing · {n} exchange{} · {}",
        conn.id,
        ladder::framing_name(conn),
        plural(n),
        ladder::close_summary(conn)
    );
    text(
        b,
        MARGIN,
        y,
        &fit(&heading, 15.0, true),
        15.0,
        SANS,
        "start",
        "font-weight=\"bold\" fill=\"#111827\"",
    );
    y += 18.0;
    let rtt = conn
        .handshake
        .as_ref()
        .and_then(|h| h.rtt_us)
        .map(|r| format!(" · handshake RTT {}", format_micros(r)))
        .unwrap_or_default();
    let detail = format!(
        "{} client→server · {} server→client{rtt}",
        format_bytes(conn.bytes_client_to_server),
        format_bytes(conn.bytes_server_to_client)
    );
    text(
        b,
        MARGIN,
        y,
        &fit(&detail, 12.0, false),
        12.0,
        SANS,
        "start",
        "fill=\"#4b5563\"",
    );
    y += 12.0;

    // Address boxes and column headings.
    let box_top = y;
    for (x, role, addr) in [
        (CLIENT_X, "client", conn.client),
        (SERVER_X, "server", conn.server),
    ] {
        let _ = writeln!(
            b,
            r##"<rect x="{}" y="{box_top}" width="{BOX_W}" height="40" rx="6" fill="#f3f4f6" stroke="#9ca3af"/>"##,
            x - BOX_W / 2.0
        );
        text(
            b,
            x,
            box_top + 16.0,
            role,
            12.0,
            SANS,
            "middle",
            "font-weight=\"bold\" fill=\"#111827\"",
        );
        let addr = truncate(&addr.to_string(), ((BOX_W - 12.0) / CHAR_W) as usize);
        text(
            b,
            x,
            box_top + 32.0,
            &addr,
            FONT,
            MONO,
            "middle",
            "fill=\"#111827\"",
        );
    }
    y = box_top + 40.0;
    let lifeline_top = y;
    // Column headings under the boxes, clear of them and of the first label.
    text(
        b,
        TIME_X,
        y + 14.0,
        "time",
        11.0,
        SANS,
        "end",
        "font-style=\"italic\" fill=\"#6b7280\"",
    );
    text(
        b,
        LATENCY_X,
        y + 14.0,
        "latency",
        11.0,
        SANS,
        "start",
        "font-style=\"italic\" fill=\"#6b7280\"",
    );
    y += 34.0;

    let mut rows = String::new();
    for row in ladder::rows(conn, options.max_exchanges) {
        let time = row.time().map(|t| ladder::relative(conn, t));
        let arrow = match &row {
            Row::Syn(_) => Some((Side::Client, "SYN".to_owned(), Ink::Handshake, None)),
            Row::SynAck(_) => Some((
                Side::Server,
                "SYN-ACK".to_owned(),
                Ink::Handshake,
                conn.handshake
                    .as_ref()
                    .and_then(|h| h.rtt_us)
                    .map(|r| format!("RTT {}", format_micros(r))),
            )),
            Row::Ack(_) => Some((Side::Client, "ACK".to_owned(), Ink::Handshake, None)),
            Row::Request { exchange, .. } => {
                let unanswered =
                    exchange.response_last_time.is_none() && exchange.response_first_time.is_none();
                Some((
                    Side::Client,
                    ladder::label(
                        exchange.request_summary.as_deref(),
                        &exchange.request_preview,
                        exchange.request_bytes,
                        label_room(),
                    ),
                    Ink::Request,
                    unanswered.then(|| "no response".to_owned()),
                ))
            }
            Row::Response { exchange, .. } => Some((
                Side::Server,
                ladder::label(
                    exchange.response_summary.as_deref(),
                    &exchange.response_preview,
                    exchange.response_bytes,
                    label_room(),
                ),
                Ink::Response,
                Some(format_opt_micros(exchange.latency_us)),
            )),
            Row::Close(e) => Some((
                e.from,
                ladder::close_name(e.kind).to_owned(),
                if e.kind == CloseKind::Rst {
                    Ink::Rst
                } else {
                    Ink::Fin
                },
                None,
            )),
            _ => None,
        };
        if let Some((from, label, ink, right)) = arrow {
            let (x1, x2) = match from {
                Side::Client => (CLIENT_X, SERVER_X),
                Side::Server => (SERVER_X, CLIENT_X),
            };
            let dash = if matches!(ink, Ink::Response) {
                r#" stroke-dasharray="7 4""#
            } else {
                ""
            };
            let _ = writeln!(
                rows,
                r#"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{}" stroke="{}" stroke-width="1.6"{dash} marker-end="url(#head-{})"/>"#,
                y + SLANT,
                ink.colour(),
                ink.id()
            );
            text(
                &mut rows,
                (x1 + x2) / 2.0,
                y - 5.0,
                &label,
                FONT,
                MONO,
                "middle",
                &format!("fill=\"{}\"", ink.colour()),
            );
            if let Some(t) = time {
                text(
                    &mut rows,
                    TIME_X,
                    y + SLANT / 2.0 + 4.0,
                    &t,
                    11.0,
                    MONO,
                    "end",
                    "fill=\"#374151\"",
                );
            }
            if let Some(r) = right {
                text(
                    &mut rows,
                    LATENCY_X,
                    y + SLANT + 4.0,
                    &r,
                    11.0,
                    MONO,
                    "start",
                    &format!("fill=\"{}\"", ink.colour()),
                );
            }
            y += ROW_H;
            continue;
        }
        let (note, fill, stroke, colour) = match &row {
            Row::NoHandshake => (
                "capture began mid-connection: no handshake seen".to_owned(),
                "#f3f4f6",
                "#9ca3af",
                "#374151",
            ),
            Row::Gap(g) => (
                format!("≈ {}", ladder::gap_text(g)),
                "#fee2e2",
                "#f87171",
                "#991b1b",
            ),
            Row::Pitfall(p) => (
                format!("! {}", ladder::pitfall_text(p)),
                "#fef3c7",
                "#f59e0b",
                "#92400e",
            ),
            Row::More(n) => (
                format!("… {n} more exchange{} (counted in the summary)", plural(*n)),
                "#f3f4f6",
                "#9ca3af",
                "#374151",
            ),
            Row::NoExchanges => (
                "no request or response seen".to_owned(),
                "#f3f4f6",
                "#9ca3af",
                "#374151",
            ),
            Row::StillOpen => (
                "still open at end of capture: no FIN or RST".to_owned(),
                "#f3f4f6",
                "#9ca3af",
                "#374151",
            ),
            _ => continue,
        };
        y = note_box(&mut rows, &note, y - 14.0, fill, stroke, colour) + 22.0;
    }
    let bottom = y - 10.0;
    for x in [CLIENT_X, SERVER_X] {
        let _ = writeln!(
            b,
            r##"<line x1="{x}" y1="{lifeline_top}" x2="{x}" y2="{bottom}" stroke="#9ca3af" stroke-width="2"/>"##
        );
    }
    b.push_str(&rows);
    bottom
}

/// A note between the lifelines, wrapped over as many lines as it needs;
/// returns the y of its bottom edge.
fn note_box(b: &mut String, note: &str, top: f64, fill: &str, stroke: &str, colour: &str) -> f64 {
    let inner = SERVER_X - CLIENT_X - 40.0;
    let lines = wrap(note, (inner / CHAR_W) as usize);
    let h = 10.0 + 16.0 * lines.len() as f64;
    let _ = writeln!(
        b,
        r#"<rect x="{}" y="{top}" width="{}" height="{h}" rx="4" fill="{fill}" stroke="{stroke}"/>"#,
        CLIENT_X + 14.0,
        SERVER_X - CLIENT_X - 28.0
    );
    for (i, line) in lines.iter().enumerate() {
        text(
            b,
            (CLIENT_X + SERVER_X) / 2.0,
            top + 18.0 + 16.0 * i as f64,
            line,
            FONT,
            MONO,
            "middle",
            &format!("fill=\"{colour}\""),
        );
    }
    top + h
}

/// The legend: one sample arrow per colour, in two columns.
fn legend(b: &mut String, top: f64) -> f64 {
    text(
        b,
        MARGIN,
        top,
        "Legend",
        12.0,
        SANS,
        "start",
        "font-weight=\"bold\" fill=\"#111827\"",
    );
    let mut y = top;
    for (i, ink) in Ink::ALL.iter().enumerate() {
        let col = (i % 3) as f64;
        if i % 3 == 0 {
            y += 20.0;
        }
        let x = MARGIN + col * 290.0;
        let dash = if matches!(ink, Ink::Response) {
            r#" stroke-dasharray="7 4""#
        } else {
            ""
        };
        let _ = writeln!(
            b,
            r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.6"{dash} marker-end="url(#head-{})"/>"#,
            y - 4.0,
            x + 40.0,
            y - 4.0,
            ink.colour(),
            ink.id()
        );
        text(
            b,
            x + 50.0,
            y,
            ink.legend(),
            12.0,
            SANS,
            "start",
            "fill=\"#111827\"",
        );
    }
    y += 20.0;
    let _ = writeln!(
        b,
        r##"<rect x="{MARGIN}" y="{}" width="40" height="14" rx="3" fill="#fef3c7" stroke="#f59e0b"/>"##,
        y - 11.0
    );
    text(
        b,
        MARGIN + 50.0,
        y,
        "note: what one recv() per message would get wrong",
        12.0,
        SANS,
        "start",
        "fill=\"#111827\"",
    );
    let x = MARGIN + 2.0 * 290.0;
    let _ = writeln!(
        b,
        r##"<rect x="{x}" y="{}" width="40" height="14" rx="3" fill="#fee2e2" stroke="#f87171"/>"##,
        y - 11.0
    );
    text(
        b,
        x + 50.0,
        y,
        "bytes not captured",
        12.0,
        SANS,
        "start",
        "fill=\"#111827\"",
    );
    y
}

/// Columns available for an arrow label between the lifelines.
fn label_room() -> usize {
    ((SERVER_X - CLIENT_X - 24.0) / CHAR_W) as usize
}

/// `s` cut to the drawing's width at `size` (an estimate: 0.62 em per
/// character for proportional fonts, more for bold).
fn fit(s: &str, size: f64, bold: bool) -> String {
    let em = if bold { 0.66 } else { 0.6 };
    truncate(s, ((WIDTH - 2.0 * MARGIN) / (size * em)) as usize)
}

/// Word-wraps `s` into lines of at most `max` columns (long words are cut).
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        let word = truncate(word, max);
        if cur.is_empty() {
            cur = word;
        } else if cur.chars().count() + 1 + word.chars().count() <= max {
            cur.push(' ');
            cur.push_str(&word);
        } else {
            lines.push(std::mem::replace(&mut cur, word));
        }
    }
    lines.push(cur);
    lines
}

/// Appends a `<text>` element.
#[allow(clippy::too_many_arguments)]
fn text(
    b: &mut String,
    x: f64,
    y: f64,
    s: &str,
    size: f64,
    family: &str,
    anchor: &str,
    attrs: &str,
) {
    let _ = writeln!(
        b,
        r#"<text x="{x}" y="{y}" font-size="{size}" font-family="{family}" text-anchor="{anchor}" {attrs} xml:space="preserve">{}</text>"#,
        xml(s)
    );
}

/// `s` escaped for XML text and attributes. Characters XML 1.0 forbids
/// (controls other than tab and newline) become `�`.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(ch),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::analyze::model::Analysis;
    use crate::report::sample;

    fn svg(analysis: &Analysis, options: &RenderOptions) -> String {
        let mut out = Vec::new();
        crate::report::render(analysis, crate::report::Format::Svg, options, &mut out)
            .expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    /// The text content of every `<text>` element, in document order.
    fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect()
    }

    fn position(texts: &[String], from: usize, needle: &str) -> usize {
        from + texts[from..]
            .iter()
            .position(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not found after text {from}"))
    }

    #[test]
    fn well_formed_with_the_story_in_order() {
        let out = svg(&sample::analysis(), &RenderOptions::default());
        let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let height: f64 = root
            .attribute("height")
            .expect("height")
            .parse()
            .expect("number");
        let t = texts(&doc);
        let mut i = position(
            &t,
            0,
            "3 connections · 6 exchanges · latency p50 0.210 ms · p99 0.400 ms · max 0.400 ms",
        );
        i = position(&t, i, "Connection 1 · line framing");
        i = position(&t, i, "10.0.0.2:51234");
        i = position(&t, i, "10.0.0.3:2222");
        i = position(&t, i, "SYN");
        i = position(&t, i, "SYN-ACK");
        i = position(&t, i, "RTT 0.045 ms");
        i = position(&t, i, "ACK");
        i = position(&t, i, "\"hello\" (5 B)");
        i = position(&t, i, "+1.000 ms");
        i = position(&t, i, "\"Echo: hello\" (11 B)");
        i = position(&t, i, "0.150 ms");
        i = position(&t, i, "2 requests arrived in one segment");
        i = position(&t, i, "FIN");
        i = position(&t, i, "Connection 2");
        i = position(&t, i, "capture began mid-connection");
        i = position(&t, i, "1,200 B from server not captured");
        i = position(&t, i, "\"x;#<b>\"&%%y\" (11 B)");
        i = position(&t, i, "RST");
        i = position(&t, i, "[2001:db8:85a3::8a2e:370:7334]:50000");
        i = position(&t, i, "no response");
        i = position(&t, i, "still open at end of capture");
        i = position(&t, i, "! packet 17");
        position(&t, i, "Legend");

        // Nothing is drawn outside the canvas.
        for n in doc.descendants().filter(|n| n.is_element()) {
            for attr in ["x", "x1", "x2"] {
                if let Some(v) = n.attribute(attr).and_then(|v| v.parse::<f64>().ok()) {
                    assert!((0.0..=WIDTH).contains(&v), "{attr}={v} outside");
                }
            }
            for attr in ["y", "y1", "y2"] {
                if let Some(v) = n.attribute(attr).and_then(|v| v.parse::<f64>().ok()) {
                    assert!((0.0..=height).contains(&v), "{attr}={v} outside");
                }
            }
        }
        // Arrows: 3 handshake + 3 requests + 3 responses + 2 FIN (conn 1),
        // 2 + 2 + RST (conn 2), 3 handshake + 1 request (conn 3), 5 in the legend.
        let arrows = doc
            .descendants()
            .filter(|n| n.has_tag_name("line") && n.attribute("marker-end").is_some())
            .count();
        assert_eq!(arrows, 11 + 5 + 4 + 5);
    }

    #[test]
    fn labels_stay_between_the_lifelines() {
        let mut a = sample::analysis();
        a.connections[0].exchanges[0].request_preview = "W".repeat(500);
        let out = svg(&a, &RenderOptions::default());
        let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
        for n in doc.descendants().filter(|n| n.has_tag_name("text")) {
            let family = n.attribute("font-family").unwrap_or_default();
            if family != MONO || n.attribute("text-anchor") != Some("middle") {
                continue;
            }
            let x: f64 = n.attribute("x").expect("x").parse().expect("number");
            let size: f64 = n
                .attribute("font-size")
                .expect("size")
                .parse()
                .expect("number");
            let w = n.text().unwrap_or_default().chars().count() as f64 * size * 0.602;
            if (x - (CLIENT_X + SERVER_X) / 2.0).abs() < 1.0 {
                assert!(
                    x - w / 2.0 >= CLIENT_X && x + w / 2.0 <= SERVER_X,
                    "label too wide: {:?}",
                    n.text()
                );
            }
        }
        assert!(out.contains("WWWW…&quot; (5 B)"));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let mut a = sample::analysis();
        a.connections[0].exchanges[0].request_preview =
            "</text><script>x()</script>\u{1}&amp;".into();
        let out = svg(
            &a,
            &RenderOptions {
                title: Some("a <b> & \"c\"\u{1}".into()),
                ..RenderOptions::default()
            },
        );
        assert!(!out.contains("<script>"));
        let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
        let t = texts(&doc);
        assert!(
            t.iter()
                .any(|s| s.contains("</text><script>x()</script>\\x{1}&amp;"))
        );
        assert_eq!(t[0], "a <b> & \"c\"\u{FFFD}");
    }

    #[test]
    fn caps_and_empty() {
        let out = svg(
            &sample::many_exchanges(200),
            &RenderOptions {
                max_exchanges: Some(20),
                ..RenderOptions::default()
            },
        );
        let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
        let t = texts(&doc);
        assert!(t.iter().any(|s| s.contains("… 180 more exchanges")));
        assert!(t.iter().any(|s| s.contains("1 connection · 200 exchanges")));
        let out = svg(&Analysis::default(), &RenderOptions::default());
        let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
        assert!(
            texts(&doc)
                .iter()
                .any(|s| s == "No TCP connection in the capture.")
        );
    }

    /// Renders with librsvg, as a student's report tool would.
    #[test]
    fn rsvg_convert_renders_it() {
        if Command::new("rsvg-convert")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "SKIP rsvg_convert_renders_it: rsvg-convert not installed (Debian: librsvg2-bin)"
            );
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let svg_path = dir.path().join("ladder.svg");
        let png_path = dir.path().join("ladder.png");
        std::fs::write(
            &svg_path,
            svg(&sample::analysis(), &RenderOptions::default()),
        )
        .expect("write svg");
        let status = Command::new("rsvg-convert")
            .arg("-o")
            .arg(&png_path)
            .arg(&svg_path)
            .status()
            .expect("run rsvg-convert");
        assert!(status.success());
        let png = std::fs::read(&png_path).expect("png written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // PNG IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
        let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
        assert_eq!(w, WIDTH as u32);
        assert!(h > 600, "three connections make a tall picture, got {h}");
        if let Ok(keep) = std::env::var("REQRESP_KEEP_SVG") {
            std::fs::copy(&svg_path, format!("{keep}.svg")).expect("keep svg");
            std::fs::copy(&png_path, format!("{keep}.png")).expect("keep png");
        }
    }
}
