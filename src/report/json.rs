//! The `json` format: the analysis model as pretty-printed JSON, with a
//! `schema_version` and a `summary` object in front. The schema is documented
//! field by field in `docs/json-schema.md`; a test checks that the document
//! names every key this module produces, so the two cannot drift apart.
//! Caps do not apply: JSON always carries every connection and exchange.

use std::io::{self, Write};

use serde::Serialize;

use super::RenderOptions;
use super::stats::Summary;
use crate::analyze::model::Analysis;

/// Version of the JSON schema; raised only when a field changes meaning or
/// disappears (adding fields keeps the version).
pub const SCHEMA_VERSION: u32 = 1;

/// The top-level JSON object.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    summary: Summary,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

/// Writes `analysis` as a pretty-printed JSON document and a final newline.
pub fn render(
    analysis: &Analysis,
    _options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        summary: Summary::of(analysis),
        analysis,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::report::sample;

    const SCHEMA_DOC: &str = include_str!("../../docs/json-schema.md");

    fn json(analysis: &Analysis) -> Value {
        let mut out = Vec::new();
        render(analysis, &RenderOptions::default(), &mut out).expect("render");
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
                            if ["from", "kind", "initiator", "framing"].contains(&k.as_str()) =>
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
        let v = json(&sample::analysis());
        let mut found = BTreeSet::new();
        keys(&v, "", &mut found);
        // Sanity: the sample exercises the nested objects.
        for must in [
            "connections.handshake.syn_ack",
            "connections.gaps.offset",
            "connections.close.events.time",
            "connections.recv_pitfalls.count",
            "summary.latency.count",
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
}
