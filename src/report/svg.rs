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

use super::ladder::{self, Row, truncate, wrap};
use super::stats::{format_bytes, format_opt_micros};
use super::{RenderOptions, Report, hidden_connections, plural, shown_connections};
use crate::analyze::model::{CloseKind, Connection, Side};
use crate::human::format_micros;

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
    Event,
}

impl Ink {
    const ALL: [Ink; 6] = [
        Ink::Handshake,
        Ink::Request,
        Ink::Response,
        Ink::Fin,
        Ink::Rst,
        Ink::Event,
    ];

    fn colour(self) -> &'static str {
        match self {
            Ink::Handshake => "#7c3aed",
            Ink::Request => "#15803d",
            Ink::Response => "#1d4ed8",
            Ink::Fin => "#b45309",
            Ink::Rst => "#dc2626",
            Ink::Event => "#c2410c",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Ink::Handshake => "handshake",
            Ink::Request => "request",
            Ink::Response => "response",
            Ink::Fin => "fin",
            Ink::Rst => "rst",
            Ink::Event => "event",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Ink::Handshake => "handshake and ACKs",
            Ink::Request => "request",
            Ink::Response => "response",
            Ink::Fin => "FIN (orderly close)",
            Ink::Rst => "RST (reset)",
            Ink::Event => "TCP event (retransmission, duplicate ACK, …)",
        }
    }
}

/// Writes the SVG document.
pub(crate) fn render(
    report: &Report<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut body = String::new();
    let mut y = MARGIN;

    let title = options
        .title
        .clone()
        .unwrap_or_else(|| "Request/response ladder".to_owned());
    y = title_block(&mut body, report, &title, y);

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
    y = warnings_block(&mut body, report, y);
    y = legend(&mut body, y + 34.0);
    let height = (y + MARGIN).ceil();

    write_document(out, &title, height, &body)
}

/// The title, the summary line and the reading hint; returns the y below.
fn title_block(body: &mut String, report: &Report<'_>, title: &str, mut y: f64) -> f64 {
    let s = report.summary;
    y += 22.0;
    text(
        body,
        MARGIN,
        y,
        &fit(title, 18.0, true),
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
        body,
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
        body,
        MARGIN,
        y,
        "Rows evenly spaced; times relative to each connection's first packet; latency from end of request to end of response.",
        11.0,
        SANS,
        "start",
        "fill=\"#6b7280\"",
    );
    y += 16.0;

    y
}

/// The first warnings and how many more; returns the y below.
fn warnings_block(body: &mut String, report: &Report<'_>, mut y: f64) -> f64 {
    for w in report.warnings.iter().take(5) {
        y += 18.0;
        text(
            body,
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
            body,
            MARGIN,
            y,
            &format!("… {more} more warning{}", plural(more)),
            12.0,
            SANS,
            "start",
            "fill=\"#92400e\"",
        );
    }
    y
}

/// Writes the SVG document around `body`.
fn write_document(out: &mut dyn Write, title: &str, height: f64, body: &str) -> io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{SANS}">"#
    )?;
    writeln!(out, "<title>{}</title>", xml(title))?;
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
    let y = heading(b, conn, top);
    let lifeline_top = address_boxes(b, conn, y);
    let mut y = lifeline_top + 34.0;
    let mut rows = String::new();
    for row in ladder::rows_for(conn, options) {
        if let Some(arrow) = arrow_of(conn, &row, options) {
            let time = row.time().map(|t| ladder::relative(conn, t));
            draw_arrow(&mut rows, &arrow, time.as_deref(), y);
            y += ROW_H;
        } else if let Some((note, [fill, stroke, colour])) = note_of(&row, options) {
            y = note_box(&mut rows, &note, y - 14.0, fill, stroke, colour) + 22.0;
        }
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

/// The connection's heading and detail line; returns the y below them.
fn heading(b: &mut String, conn: &Connection, top: f64) -> f64 {
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
        top,
        &fit(&heading, 15.0, true),
        15.0,
        SANS,
        "start",
        "font-weight=\"bold\" fill=\"#111827\"",
    );
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
        top + 18.0,
        &fit(&detail, 12.0, false),
        12.0,
        SANS,
        "start",
        "fill=\"#4b5563\"",
    );
    top + 30.0
}

/// The client and server boxes at `box_top` and the column headings under
/// them; returns where the lifelines start.
fn address_boxes(b: &mut String, conn: &Connection, box_top: f64) -> f64 {
    for (x, side, addr) in [
        (CLIENT_X, Side::Client, conn.client),
        (SERVER_X, Side::Server, conn.server),
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
            side.name(),
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
    let y = box_top + 40.0;
    // Column headings under the boxes, clear of them and of the first label.
    let italic = "font-style=\"italic\" fill=\"#6b7280\"";
    text(b, TIME_X, y + 14.0, "time", 11.0, SANS, "end", italic);
    text(
        b,
        LATENCY_X,
        y + 14.0,
        "latency",
        11.0,
        SANS,
        "start",
        italic,
    );
    y
}

/// One arrow of the ladder: who sends, its label, its ink, and the text at
/// its right end (RTT, latency, "no response").
struct Arrow {
    from: Side,
    label: String,
    ink: Ink,
    right: Option<String>,
}

/// The arrow a row draws, `None` for rows drawn as notes.
fn arrow_of(conn: &Connection, row: &Row<'_>, options: &RenderOptions) -> Option<Arrow> {
    let arrow = |from, label: &str, ink, right| {
        Some(Arrow {
            from,
            label: label.to_owned(),
            ink,
            right,
        })
    };
    match row {
        Row::Syn(_) => arrow(Side::Client, "SYN", Ink::Handshake, None),
        Row::SynAck(_) => {
            let rtt = conn.handshake.as_ref().and_then(|h| h.rtt_us);
            let rtt = rtt.map(|r| format!("RTT {}", format_micros(r)));
            arrow(Side::Server, "SYN-ACK", Ink::Handshake, rtt)
        }
        Row::Ack(_) => arrow(Side::Client, "ACK", Ink::Handshake, None),
        Row::Request { exchange, .. } => {
            let unanswered =
                exchange.response_last_time.is_none() && exchange.response_first_time.is_none();
            let label = ladder::label(
                exchange.request_summary.as_deref(),
                &exchange.request_preview,
                exchange.request_bytes,
                label_room(),
            );
            let right = unanswered.then(|| "no response".to_owned());
            arrow(Side::Client, &label, Ink::Request, right)
        }
        Row::Response { exchange, .. } => {
            let label = ladder::label(
                exchange.response_summary.as_deref(),
                &exchange.response_preview,
                exchange.response_bytes,
                label_room(),
            );
            let latency = Some(format_opt_micros(exchange.latency_us));
            arrow(Side::Server, &label, Ink::Response, latency)
        }
        Row::Close(e) => {
            let ink = if e.kind == CloseKind::Rst {
                Ink::Rst
            } else {
                Ink::Fin
            };
            arrow(e.from, ladder::close_name(e.kind), ink, None)
        }
        Row::Event(e) => arrow(e.side, &ladder::event_text(e), Ink::Event, None),
        Row::PureAck(a) => arrow(
            a.from,
            &ladder::ack_label(a, options.acks),
            Ink::Handshake,
            None,
        ),
        _ => None,
    }
}

/// Draws `arrow` starting at `y`, with its time at the left.
fn draw_arrow(rows: &mut String, arrow: &Arrow, time: Option<&str>, y: f64) {
    let (x1, x2) = match arrow.from {
        Side::Client => (CLIENT_X, SERVER_X),
        Side::Server => (SERVER_X, CLIENT_X),
    };
    let ink = arrow.ink;
    let dash = match ink {
        Ink::Response => r#" stroke-dasharray="7 4""#,
        Ink::Event => r#" stroke-dasharray="2 3""#,
        _ => "",
    };
    let _ = writeln!(
        rows,
        r#"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{}" stroke="{}" stroke-width="1.6"{dash} marker-end="url(#head-{})"/>"#,
        y + SLANT,
        ink.colour(),
        ink.id()
    );
    let fill = format!("fill=\"{}\"", ink.colour());
    text(
        rows,
        (x1 + x2) / 2.0,
        y - 5.0,
        &arrow.label,
        FONT,
        MONO,
        "middle",
        &fill,
    );
    if let Some(t) = time {
        let y = y + SLANT / 2.0 + 4.0;
        text(rows, TIME_X, y, t, 11.0, MONO, "end", "fill=\"#374151\"");
    }
    if let Some(r) = &arrow.right {
        text(
            rows,
            LATENCY_X,
            y + SLANT + 4.0,
            r,
            11.0,
            MONO,
            "start",
            &fill,
        );
    }
}

/// The note a row draws, with its fill, stroke and text colours; `None`
/// for rows drawn as arrows.
fn note_of(row: &Row<'_>, options: &RenderOptions) -> Option<(String, [&'static str; 3])> {
    const GREY: [&str; 3] = ["#f3f4f6", "#9ca3af", "#374151"];
    Some(match row {
        Row::NoHandshake => (
            "capture began mid-connection: no handshake seen".to_owned(),
            GREY,
        ),
        Row::Gap(g) => (
            format!("≈ {}", ladder::gap_text(g)),
            ["#fee2e2", "#f87171", "#991b1b"],
        ),
        Row::Pitfall(p) => (
            format!("! {}", ladder::pitfall_text(p)),
            ["#fef3c7", "#f59e0b", "#92400e"],
        ),
        Row::More(n) => (
            format!("… {n} more exchange{} (counted in the summary)", plural(*n)),
            GREY,
        ),
        Row::NoExchanges => ("no request or response seen".to_owned(), GREY),
        Row::StillOpen => (
            "still open at end of capture: no FIN or RST".to_owned(),
            GREY,
        ),
        Row::MoreEvents(n) => (
            format!(
                "… {n} more TCP event{} (all are in --format json)",
                plural(*n)
            ),
            GREY,
        ),
        Row::AcksNotDrawn(n) => (ladder::acks_not_drawn_text(*n, options.acks), GREY),
        _ => return None,
    })
}

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
pub(crate) fn xml(s: &str) -> String {
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
mod tests;
