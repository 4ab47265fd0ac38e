//! Tests of `report::json`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::analyze::model::{Analysis, PacketRecord};
use crate::report::sample;

const SCHEMA_DOC: &str = include_str!("../../../docs/json-schema.md");

fn json(analysis: &Analysis) -> Value {
    let mut out = Vec::new();
    crate::report::render(
        analysis,
        crate::report::Format::Json,
        &crate::report::RenderOptions::default(),
        &mut out,
    )
    .expect("render");
    assert!(out.ends_with(b"}\n"));
    serde_json::from_slice(&out).expect("output parses back as JSON")
}

/// Every object key in `v`, as `parent.key` paths with array indices
/// dropped, e.g. `connections.exchanges.latency_us`.
fn keys(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                keys(child, &p, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, path, out)),
        _ => {}
    }
}

/// Every string value of an enum-like field (side, kind, framing).
fn enum_values(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match child {
                    Value::String(s)
                        if ["from", "kind", "initiator", "framing", "protocol"]
                            .contains(&k.as_str()) =>
                    {
                        out.insert(s.clone());
                    }
                    _ => enum_values(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| enum_values(i, out)),
        _ => {}
    }
}

#[test]
fn top_level_shape_and_summary() {
    let v = json(&sample::analysis());
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["packets"], 42);
    assert_eq!(v["framing"], "line");
    let s = &v["summary"];
    assert_eq!(s["connections"], 3);
    assert_eq!(s["exchanges"], 6);
    assert_eq!(s["bytes_client_to_server"], 237);
    assert_eq!(s["bytes_server_to_client"], 1258);
    assert_eq!(s["latency"]["p50_us"], 210.0);
    assert_eq!(s["latency"]["p99_us"], 400.0);
    assert_eq!(s["latency"]["max_us"], 400.0);
    assert_eq!(v["warnings"].as_array().expect("warnings").len(), 1);
}

#[test]
fn connections_carry_the_issue_fields() {
    let v = json(&sample::analysis());
    let c = &v["connections"];
    assert_eq!(c[0]["client"], "10.0.0.2:51234");
    assert_eq!(c[0]["server"], "10.0.0.3:2222");
    assert_eq!(c[2]["client"], "[2001:db8:85a3::8a2e:370:7334]:50000");
    assert_eq!(c[0]["handshake"]["rtt_us"], 45.0);
    assert_eq!(
        c[0]["handshake"]["syn"],
        Value::from(sample::BASE_NS),
        "timestamps are integer nanoseconds"
    );
    assert!(c[1]["handshake"].is_null());
    assert!(c[2]["close"].is_null());
    assert_eq!(c[1]["close"]["kind"], "rst");
    assert_eq!(c[1]["close"]["initiator"], "server");
    assert_eq!(c[1]["gaps"][0]["len"], 1200);
    let e = &c[0]["exchanges"][0];
    assert_eq!(e["request_bytes"], 5);
    assert_eq!(e["response_bytes"], 11);
    assert_eq!(e["request_preview"], "hello");
    assert_eq!(e["response_preview"], "Echo: hello");
    assert_eq!(e["latency_us"], 150.0);
    assert_eq!(c[1]["exchanges"][1]["request_preview"], "x;#<b>\"&%%y");
    assert!(c[2]["exchanges"][0]["latency_us"].is_null());
    assert_eq!(c[0]["recv_pitfalls"][0]["kind"], "merged");
}

#[test]
fn keys_come_in_the_documented_order() {
    let mut out = Vec::new();
    crate::report::render(
        &sample::analysis(),
        crate::report::Format::Json,
        &crate::report::RenderOptions::default(),
        &mut out,
    )
    .expect("render");
    let text = String::from_utf8(out).expect("utf-8");
    let order = [
        "schema_version",
        "connections",
        "packets",
        "framing",
        "warnings",
        "summary",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\n  \"{k}\": ")).expect(k))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    assert!(SCHEMA_DOC.contains(
        "`schema_version`, `connections`, `packets`,\n  `framing`, `warnings`, `summary`"
    ));
    // Nested values are indented as in one pretty-printed document.
    assert!(text.contains("\n  \"connections\": [\n    {\n      \"id\": 1,\n"));
    assert!(text.contains("\n        {\n          \"request_bytes\": 5,"));
}

/// The hand-written connection writer is byte for byte serde_json's
/// pretty printer at the same depth.
#[test]
fn connections_are_written_as_serde_json_would() {
    let mut analyses = vec![sample::analysis(), sample::many_exchanges(3)];
    // Every optional part present and absent, odd strings and floats.
    let mut odd = sample::analysis();
    for c in &mut odd.connections {
        c.notes
            .push("a \"quoted\" note\\ with \u{1}control\n".to_owned());
        if let Some(h) = &mut c.handshake {
            h.syn_ack = None;
            h.rtt_us = Some(f64::NAN);
        }
        for e in &mut c.exchanges {
            e.latency_us = e.latency_us.map(|l| l / 3.0 + 1e-7);
            e.request_preview.push_str("é…\t");
            e.request_frames.push(3);
            e.request_frames.push(5);
            e.response_frames.push(7);
            e.request_frames.push_packet(
                &PacketRecord {
                    frame: 8,
                    time: Timestamp(5),
                    flags: 0x018,
                    seq: Some(1),
                    ack: None,
                    len: 6,
                },
                true,
            );
            e.request_ack_time = Some(e.request_time);
        }
    }
    analyses.push(odd);
    for analysis in &analyses {
        for c in &analysis.connections {
            let mut ours = Vec::new();
            write_connection::<true>(&mut ours, c);
            let mut compact = Vec::new();
            connection_line(&mut compact, b"{", c);
            let mut wanted = Vec::new();
            one_line(&mut wanted, b"{", &ours);
            assert_eq!(
                String::from_utf8(compact).expect("utf-8"),
                String::from_utf8(wanted).expect("utf-8"),
                "one line, connection {}",
                c.id
            );
            let mut theirs = Vec::new();
            value(&mut theirs, c, 2).expect("serialize");
            let ours = String::from_utf8(ours).expect("utf-8");
            check_derived_fields(c, &ours);
            assert_eq!(
                without_derived_fields(&ours),
                String::from_utf8(theirs).expect("utf-8"),
                "connection {}",
                c.id
            );
        }
    }
}

/// The exchange fields that are not the model's serde form: packet
/// records and the latency split (written after `request_ack_time`,
/// last in each exchange).
fn without_derived_fields(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(",\n          \"request_packets\": ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let rtt = tail.find("\"rtt_from\": ").expect("rtt_from follows");
        let end = tail[rtt..].find('\n').map_or(tail.len(), |n| rtt + n);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The derived fields hold the model's packet records and split.
fn check_derived_fields(c: &Connection, text: &str) {
    let v: Value = serde_json::from_str(text).expect("a connection parses as JSON");
    for (e, j) in c
        .exchanges
        .iter()
        .zip(v["exchanges"].as_array().expect("exchanges"))
    {
        for (frames, key) in [
            (&e.request_frames, "request_packets"),
            (&e.response_frames, "response_packets"),
        ] {
            let want: Vec<Value> = frames
                .packets()
                .iter()
                .map(|p| {
                    serde_json::json!({"frame": p.frame, "time": p.time.0, "flags": p.flags,
                            "seq": p.seq, "ack": p.ack, "len": p.len})
                })
                .collect();
            assert_eq!(j[key], Value::Array(want), "{key}");
            assert_eq!(j[format!("{key}_not_kept")], frames.packets_not_kept());
        }
        let split = c.latency_split(e);
        assert_eq!(j["network_us"].as_f64(), split.map(|s| s.network_us));
        assert_eq!(j["server_us"].as_f64(), split.map(|s| s.server_us));
        assert_eq!(j["rtt_from"].as_str(), split.map(|s| s.rtt_from.name()));
    }
}

proptest::proptest! {
    #[test]
    fn strings_are_escaped_as_serde_json_does(s in "(?s).{0,40}", bytes in proptest::collection::vec(0u8..0x80, 0..40)) {
        for s in [s, String::from_utf8(bytes).expect("ASCII")] {
            let mut ours = Vec::new();
            string(&mut ours, &s);
            proptest::prop_assert_eq!(String::from_utf8(ours).expect("utf-8"), serde_json::to_string(&s).expect("serialize"));
        }
    }
}

#[test]
fn caps_do_not_apply() {
    let v = json(&sample::many_exchanges(120));
    assert_eq!(
        v["connections"][0]["exchanges"].as_array().map(Vec::len),
        Some(120)
    );
}

#[test]
fn empty_analysis_has_null_percentiles() {
    let v = json(&Analysis::default());
    assert_eq!(v["summary"]["connections"], 0);
    assert!(v["summary"]["latency"]["p50_us"].is_null());
    assert_eq!(v["connections"], Value::Array(vec![]));
}

#[test]
fn schema_document_names_every_key_and_value() {
    let mut a = sample::analysis();
    // Packet records are kept only when asked for: give the sample some.
    let e = &mut a.connections[0].exchanges[0];
    for (frames, frame) in [(&mut e.request_frames, 4), (&mut e.response_frames, 6)] {
        let p = PacketRecord {
            frame,
            time: Timestamp(sample::BASE_NS),
            flags: 0x018,
            seq: Some(1),
            ack: Some(1),
            len: 6,
        };
        frames.push_packet(&p, true);
    }
    let v = json(&a);
    let mut found = BTreeSet::new();
    keys(&v, "", &mut found);
    // Sanity: the sample exercises the nested objects.
    for must in [
        "connections.handshake.syn_ack",
        "connections.gaps.offset",
        "connections.close.events.time",
        "connections.recv_pitfalls.count",
        "summary.latency.count",
        "connections.exchanges.request_packets.seq",
        "connections.exchanges.response_packets.len",
    ] {
        assert!(found.contains(must), "sample lacks {must}");
    }
    let missing: Vec<_> = found
        .iter()
        .filter(|path| !SCHEMA_DOC.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json-schema.md does not document {missing:?}"
    );
    let mut values = BTreeSet::new();
    enum_values(&v, &mut values);
    values.extend(["length".to_owned(), "raw".to_owned(), "split".to_owned()]);
    for value in values {
        assert!(
            SCHEMA_DOC.contains(&format!("`\"{value}\"`")),
            "docs/json-schema.md does not list the value \"{value}\""
        );
    }
    assert!(SCHEMA_DOC.contains(&format!("`schema_version` | integer | `{SCHEMA_VERSION}`")));
}

/// Appends, after `head` (the opening of a JSON object and its first
/// fields, each followed by `,`), the fields of `body` (an object laid out
/// over lines) compactly, as serde_json writes: the reference the one-line
/// writer is checked against. Spaces and line breaks outside strings are
/// layout and dropped; inside a string every byte is kept.
fn one_line(out: &mut Vec<u8>, head: &[u8], body: &[u8]) {
    out.extend_from_slice(head);
    let body = body.strip_prefix(b"{").unwrap_or(body);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if b != b' ' && b != b'\n' {
            out.push(b);
        }
    }
}

#[test]
fn exchanges_in_one_line_are_the_compact_form_of_the_pretty_ones() {
    for analysis in [sample::analysis(), sample::many_exchanges(5)] {
        for c in &analysis.connections {
            for e in &c.exchanges {
                let mut pretty = Vec::new();
                exchange::<true>(&mut pretty, c.latency_split(e), e);
                let (mut ours, mut wanted) = (Vec::new(), Vec::new());
                exchange_line(
                    &mut ours,
                    b"{\"event\":\"exchange\",",
                    c.latency_split(e),
                    e,
                );
                one_line(&mut wanted, b"{\"event\":\"exchange\",", &pretty);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(wanted).unwrap()
                );
            }
        }
    }
}

#[test]
fn one_line_drops_layout_and_keeps_every_byte_of_strings() {
    let body = "{\n  \"a\": \"x \\\" : y\\\\\",\n  \"b\": [1, 2],\n  \"c\": \" \\n \"\n}";
    let mut out = Vec::new();
    one_line(&mut out, b"{\"event\":\"e\",", body.as_bytes());
    let line = String::from_utf8(out).unwrap();
    assert_eq!(
        line,
        "{\"event\":\"e\",\"a\":\"x \\\" : y\\\\\",\"b\":[1,2],\"c\":\" \\n \"}"
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["a"], "x \" : y\\");
    assert_eq!(v["c"], " \n ");
}

proptest::proptest! {
    /// Any object serde_json lays out over lines comes out as serde_json
    /// writes it compactly: layout dropped, every byte of strings kept
    /// (quotes, backslashes, spaces, escapes, non-ASCII).
    #[test]
    fn one_line_is_serde_jsons_compact_form(
        pairs in proptest::collection::vec(("[a-z \"\\\\\n:,{}é]{0,12}", "[ -~\n\té\"\\\\]{0,24}", -1e6f64..1e6), 0..6)
    ) {
        let mut object = serde_json::Map::new();
        for (k, s, n) in pairs {
            object.insert(k.clone(), serde_json::json!([s, n, {"inner": s, "list": [1, 2]}]));
        }
        let value = Value::Object(object);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let mut out = Vec::new();
        one_line(&mut out, b"{", pretty.as_bytes());
        proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&value).unwrap());
    }
}
