//! Tests of `report::text`.

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
    assert!(summary.contains("237 B client→server · 1,258 B server→client (1,200 B not captured)"));
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
            │ network 0.055 ms · server 0.095 ms                  │
  +3.000 ms ├──────────────────────── FIN ───────────────────────▶│
  +3.050 ms │◀─────────────────────── FIN ────────────────────────┤

Summary
  packets      9
  connections  1
  exchanges    1
  bytes        16 B client→server · 34 B server→client
  latency      p50 0.150 ms · p99 0.150 ms · max 0.150 ms (over 1 exchange)
  network      p50 0.055 ms · p99 0.055 ms · max 0.055 ms (1 latency split)
  server       p50 0.095 ms · p99 0.095 ms · max 0.095 ms (1 latency split)
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

#[test]
fn estimated_percentiles_are_marked_and_exact_ones_are_not() {
    use crate::report::stats::LatencySummary;
    let mut d = LatencySummary {
        count: 5_000_000,
        p50_us: Some(150.0),
        p99_us: Some(2_000.0),
        max_us: Some(9_000.0),
        estimated: false,
    };
    assert_eq!(
        percentiles(&d),
        "p50 0.150 ms · p99 2.000 ms · max 9.000 ms"
    );
    d.estimated = true;
    assert_eq!(
        percentiles(&d),
        "p50 ≈0.150 ms · p99 ≈2.000 ms · max 9.000 ms"
    );
}
