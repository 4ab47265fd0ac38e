//! The `mermaid` format: one Mermaid `sequenceDiagram` for the whole
//! capture. Every address is one participant (a server shared by several
//! connections is one lifeline); each connection sits in its own shaded
//! `rect` opened by a note. GitHub renders it in a Markdown ```` ```mermaid ````
//! block or as a `.mmd` file.
//!
//! Arrows: `->>` for SYN, SYN-ACK, ACK and requests, `-->>` (dotted) for
//! responses, `-)` for FIN, `-x` for RST; latency is a note over the server.
//!
//! Escaping: Mermaid ends a message at `;` and `#`, reads `%%` as a comment,
//! `@{` as a config block and `<…>` as HTML (only our own `<br/>` line
//! breaks in notes are meant as such), so every character outside a
//! small safe set is written as a Mermaid entity code (`#59;` for `;`),
//! which Mermaid decodes back for display. Non-ASCII printable characters
//! pass unchanged.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

use super::ladder::{self, Row};
use super::stats::{format_bytes, format_opt_micros};
use super::{RenderOptions, Report, hidden_connections, plural, shown_connections};
use crate::analyze::model::{CloseKind, Connection, Side};
use crate::human::format_micros;

/// Message labels are cut to this many columns: Mermaid does not wrap them.
const LABEL_MAX: usize = 48;

/// Mermaid's line break inside a note.
const BR: &str = "<br/>";

/// Shades for alternate connections, light enough for black text.
const SHADES: [&str; 2] = ["rgb(236, 244, 255)", "rgb(240, 250, 236)"];

/// Writes the diagram.
pub(crate) fn render(
    report: &Report<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let shown = &report.connections[..shown_connections(report, options)];
    let s = report.summary;
    writeln!(out, "sequenceDiagram")?;
    writeln!(
        out,
        "    title {}",
        escape(&format!(
            "reqresp: {} connection{}, {} exchange{}, latency p50 {} · p99 {} · max {}",
            s.connections,
            plural(s.connections as usize),
            s.exchanges,
            plural(s.exchanges as usize),
            format_opt_micros(s.latency.p50_us),
            format_opt_micros(s.latency.p99_us),
            format_opt_micros(s.latency.max_us),
        ))
    )?;

    // Participants in order of first appearance, each address once.
    let mut ids: HashMap<SocketAddr, String> = HashMap::new();
    let mut order: Vec<SocketAddr> = Vec::new();
    let mut roles: HashMap<SocketAddr, (bool, bool)> = HashMap::new();
    for c in shown {
        for (addr, is_client) in [(c.client, true), (c.server, false)] {
            let r = roles.entry(addr).or_default();
            if is_client {
                r.0 = true;
            } else {
                r.1 = true;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(addr) {
                e.insert(format!("p{}", order.len() + 1));
                order.push(addr);
            }
        }
    }
    for addr in &order {
        let role = match roles[addr] {
            (true, false) => "client ",
            (false, true) => "server ",
            _ => "",
        };
        writeln!(
            out,
            "    participant {} as {}",
            ids[addr],
            escape(&format!("{role}{addr}"))
        )?;
    }
    if shown.is_empty() {
        writeln!(out, "    %% no TCP connection in the capture")?;
    }

    for (i, conn) in shown.iter().enumerate() {
        let c = &ids[&conn.client];
        let srv = &ids[&conn.server];
        writeln!(out, "    rect {}", SHADES[i % SHADES.len()])?;
        connection(out, conn, c, srv, options)?;
        writeln!(out, "    end")?;
    }
    if let (Some(note), Some(first), Some(last)) = (
        hidden_connections(report, options),
        order.first(),
        order.last(),
    ) {
        writeln!(
            out,
            "    Note over {},{}: {}",
            ids[first],
            ids[last],
            escape(&note)
        )?;
    }
    Ok(())
}

fn connection(
    out: &mut dyn Write,
    conn: &Connection,
    c: &str,
    s: &str,
    options: &RenderOptions,
) -> io::Result<()> {
    // Long notes break after a colon: Mermaid does not wrap them itself.
    let note = |out: &mut dyn Write, text: &str| {
        let lines: Vec<String> = text.splitn(2, ": ").map(escape).collect();
        writeln!(out, "        Note over {c},{s}: {}", lines.join(BR))
    };
    writeln!(
        out,
        "        Note over {c},{s}: {}",
        [
            format!(
                "Connection {} · {} framing",
                conn.id,
                ladder::framing_name(conn)
            ),
            format!(
                "{} client→server · {} server→client",
                format_bytes(conn.bytes_client_to_server),
                format_bytes(conn.bytes_server_to_client)
            ),
            ladder::close_summary(conn),
        ]
        .map(|l| escape(&l))
        .join(BR)
    )?;
    for row in ladder::rows_for(conn, options) {
        match row {
            Row::Syn(_) => writeln!(out, "        {c}->>{s}: SYN")?,
            Row::SynAck(_) => {
                writeln!(out, "        {s}->>{c}: SYN-ACK")?;
                if let Some(rtt) = conn.handshake.as_ref().and_then(|h| h.rtt_us) {
                    writeln!(
                        out,
                        "        Note over {s}: RTT {}",
                        escape(&format_micros(rtt))
                    )?;
                }
            }
            Row::Ack(_) => writeln!(out, "        {c}->>{s}: ACK")?,
            Row::NoHandshake => note(out, "capture began mid-connection: no handshake seen")?,
            Row::Gap(g) => note(out, &format!("≈ {}", ladder::gap_text(g)))?,
            Row::Request { exchange, .. } => writeln!(
                out,
                "        {c}->>{s}: {}",
                escape(&ladder::label(
                    exchange.request_summary.as_deref(),
                    &exchange.request_preview,
                    exchange.request_bytes,
                    LABEL_MAX
                ))
            )?,
            Row::Response { exchange, .. } => {
                writeln!(
                    out,
                    "        {s}-->>{c}: {}",
                    escape(&ladder::label(
                        exchange.response_summary.as_deref(),
                        &exchange.response_preview,
                        exchange.response_bytes,
                        LABEL_MAX
                    ))
                )?;
                writeln!(
                    out,
                    "        Note over {s}: latency {}",
                    escape(&format_opt_micros(exchange.latency_us))
                )?;
            }
            Row::Pitfall(p) => note(out, &format!("! {}", ladder::pitfall_text(p)))?,
            Row::More(n) => note(
                out,
                &format!("… {n} more exchange{} (counted in the summary)", plural(n)),
            )?,
            Row::NoExchanges => note(out, "no request or response seen")?,
            Row::Close(e) => {
                let (from, to) = sender_first(e.from, c, s);
                let arrow = match e.kind {
                    CloseKind::Fin => "-)",
                    CloseKind::Rst => "-x",
                };
                writeln!(
                    out,
                    "        {from}{arrow}{to}: {}",
                    ladder::close_name(e.kind)
                )?;
            }
            Row::StillOpen => note(out, "still open at end of capture: no FIN or RST")?,
            Row::Event(e) => {
                let (from, to) = sender_first(e.side, c, s);
                writeln!(
                    out,
                    "        {from}--x{to}: {}",
                    escape(&ladder::event_text(e))
                )?
            }
            Row::MoreEvents(n) => note(out, &format!("… {n} more TCP events (see --format json)"))?,
            Row::PureAck(a) => {
                let (from, to) = sender_first(a.from, c, s);
                writeln!(
                    out,
                    "        {from}->>{to}: {}",
                    escape(&ladder::ack_label(a, options.acks))
                )?;
            }
            Row::AcksNotDrawn(n) => note(out, &ladder::acks_not_drawn_text(n, options.acks))?,
        }
    }
    Ok(())
}

/// The participants of an arrow sent by `side`: sender, then receiver.
fn sender_first<'a>(side: Side, c: &'a str, s: &'a str) -> (&'a str, &'a str) {
    match side {
        Side::Client => (c, s),
        Side::Server => (s, c),
    }
}

/// `text` with every character Mermaid could misread written as an entity
/// code (`#59;`). Safe: ASCII letters and digits, space, `.,_-+*/()!?'=$^~|\`,
/// and printable non-ASCII characters.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let safe = ch.is_ascii_alphanumeric()
            || " .,_-+*/()!?'=$^~|\\".contains(ch)
            || (!ch.is_ascii() && !ch.is_control());
        if safe {
            out.push(ch);
        } else {
            out.push_str(&format!("#{};", u32::from(ch)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::model::Analysis;
    use crate::report::sample;

    fn mermaid(analysis: &Analysis, options: &RenderOptions) -> String {
        let mut out = Vec::new();
        crate::report::render(analysis, crate::report::Format::Mermaid, options, &mut out)
            .expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    /// Decodes Mermaid's numeric entity codes, as Mermaid does before display.
    fn decode(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('#') {
            out.push_str(&rest[..i]);
            let tail = &rest[i + 1..];
            let end = tail.find(';').expect("entity ends with ;");
            let code: u32 = tail[..end].parse().expect("numeric entity");
            out.push(char::from_u32(code).expect("valid char"));
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Checks what Mermaid's sequence lexer needs (see mermaid-js's
    /// SequenceLexer.g4): statements one per line, text never carrying
    /// `;`, a `#` that is not an entity code, `%%`, `<`, `>` or `@{`, and
    /// `rect` blocks balanced by `end`.
    fn assert_plausible_mermaid(out: &str) {
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("sequenceDiagram"));
        let mut depth = 0i32;
        let mut declared = Vec::new();
        for line in lines {
            let t = line.trim();
            assert!(!t.contains(';') || entity_only(t), "stray ; in {t:?}");
            assert!(
                !t.contains("%%") || t.starts_with("%%"),
                "comment inside {t:?}"
            );
            for bad in ['<', '>', '"', '{', '}', '&'] {
                let text = t.split_once(": ").map_or(t, |(_, x)| x).replace(BR, "");
                assert!(!text.contains(bad), "{bad} in text {t:?}");
            }
            if let Some(rest) = t.strip_prefix("participant ") {
                let (id, _) = rest.split_once(" as ").expect("participant id as label");
                assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
                declared.push(id.to_owned());
            } else if t.starts_with("rect ") {
                depth += 1;
            } else if t == "end" {
                depth -= 1;
                assert!(depth >= 0, "end without rect");
            } else if let Some(rest) = t.strip_prefix("Note over ") {
                let (who, _) = rest.split_once(": ").expect("note text");
                for p in who.split(',') {
                    assert!(declared.iter().any(|d| d == p), "undeclared {p}");
                }
            } else if t.starts_with("title ") || t.starts_with("%%") {
            } else {
                let (arrow_part, _) = t.split_once(": ").expect("message with text");
                let ok = ["-->>", "->>", "-)", "--x", "-x"].iter().any(|a| {
                    arrow_part.split_once(a).is_some_and(|(from, to)| {
                        declared.iter().any(|d| d == from) && declared.iter().any(|d| d == to)
                    })
                });
                assert!(ok, "not a message between declared participants: {t:?}");
            }
        }
        assert_eq!(depth, 0, "unbalanced rect/end");
    }

    /// True when every `;` in `t` closes an entity code.
    fn entity_only(t: &str) -> bool {
        let mut rest = t;
        while let Some(i) = rest.find(';') {
            let before = &rest[..i];
            let Some(h) = before.rfind('#') else {
                return false;
            };
            if before[h + 1..].is_empty() || !before[h + 1..].chars().all(|c| c.is_ascii_digit()) {
                return false;
            }
            rest = &rest[i + 1..];
        }
        true
    }

    #[test]
    fn echo_sequence_in_order() {
        let a = Analysis {
            connections: vec![sample::echo_connection()],
            ..sample::analysis()
        };
        let out = mermaid(&a, &RenderOptions::default());
        assert_plausible_mermaid(&out);
        assert!(out.contains("participant p1 as client 10.0.0.2#58;51234"));
        assert!(out.contains("participant p2 as server 10.0.0.3#58;2222"));
        let expected = [
            "p1->>p2: SYN",
            "p2->>p1: SYN-ACK",
            "Note over p2: RTT 0.045 ms",
            "p1->>p2: ACK",
            "p1->>p2: #34;hello#34; (5 B)",
            "p2-->>p1: #34;Echo#58; hello#34; (11 B)",
            "Note over p2: latency 0.150 ms",
            "p1->>p2: #34;world#34; (5 B)",
            "p1->>p2: #34;bye#34; (3 B)",
            "Note over p1,p2: ! 2 requests arrived in one segment<br/>one recv() would return them together",
            "p2-->>p1: #34;Echo#58; world#34; (11 B)",
            "Note over p2: latency 0.210 ms",
            "p2-->>p1: #34;Echo#58; bye#34; (9 B)",
            "Note over p2: latency 0.305 ms",
            "p1-)p2: FIN",
            "p2-)p1: FIN",
        ];
        let body: Vec<&str> = out
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("p1->>p2: SYN"))
            .take(expected.len())
            .collect();
        assert_eq!(body, expected);
    }

    #[test]
    fn shared_server_ipv6_and_reset() {
        let out = mermaid(&sample::analysis(), &RenderOptions::default());
        assert_plausible_mermaid(&out);
        // The server 10.0.0.3:2222 of connections 1 and 2 is one participant.
        assert_eq!(out.matches("participant").count(), 5);
        assert!(out.contains("participant p3 as client 10.0.0.4#58;40000"));
        assert!(out.contains(
            "participant p4 as client #91;2001#58;db8#58;85a3#58;#58;8a2e#58;370#58;7334#93;#58;50000"
        ));
        assert!(out.contains("p2-xp3: RST"));
        assert!(out.contains("capture began mid-connection"));
        assert_eq!(out.matches("    rect ").count(), 3);
        assert!(decode(&out).contains(&format!("\"{}…\" (200 B)", "A".repeat(37))));
    }

    #[test]
    fn hostile_previews_are_escaped_and_decode_back() {
        let hostile = "a;b#c<d>e\"f&g%%h@{i}:j\u{7}";
        let e = escape(hostile);
        for bad in [';', '<', '>', '"', '&', '@', '{', '}', ':', '\u{7}'] {
            assert!(
                !e.replace(|c: char| c.is_ascii_digit(), "")
                    .replace("#;", "")
                    .contains(bad),
                "{bad} left in {e}"
            );
        }
        assert!(!e.contains("%%"));
        assert_eq!(decode(&e), hostile);
        let out = mermaid(&sample::analysis(), &RenderOptions::default());
        assert_plausible_mermaid(&out);
        assert!(decode(&out).contains("\"x;#<b>\"&%%y\" (11 B)"));
    }

    #[test]
    fn caps() {
        let out = mermaid(
            &sample::many_exchanges(80),
            &RenderOptions {
                max_exchanges: Some(10),
                ..RenderOptions::default()
            },
        );
        assert_plausible_mermaid(&out);
        assert_eq!(out.matches("-->>").count(), 10);
        assert!(out.contains("… 70 more exchanges"));
        assert!(out.contains("title reqresp#58; 1 connection, 80 exchanges"));
        let out = mermaid(
            &sample::analysis(),
            &RenderOptions {
                max_connections: Some(1),
                ..RenderOptions::default()
            },
        );
        assert_plausible_mermaid(&out);
        assert_eq!(out.matches("    rect ").count(), 1);
        assert!(out.contains("… 2 more connections not drawn"));
    }

    #[test]
    fn empty_analysis_is_still_a_diagram() {
        let out = mermaid(&Analysis::default(), &RenderOptions::default());
        assert_plausible_mermaid(&out);
        assert!(out.contains("title reqresp#58; 0 connections"));
    }
}
