//! The `json` format: the analysis model as pretty-printed JSON, with a
//! `schema_version` first and a `summary` object last. The schema is
//! documented field by field in `docs/json-schema.md`; a test checks that the
//! document names every key this module produces, so the two cannot drift
//! apart. Caps do not apply: JSON always carries every connection and
//! exchange.
//!
//! The document is written while the capture is read: the opening, then each
//! connection as the analyzer hands it over (serialized by serde_json, at the
//! indentation of the array it sits in), then the fields known only at the
//! end. So a capture of any size is written in the memory of one connection.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

use super::Ending;
use super::stats::Summary;
use crate::analyze::model::Connection;

/// Version of the JSON schema; raised only when a field changes meaning or
/// disappears (adding fields keeps the version).
pub const SCHEMA_VERSION: u32 = 1;

/// Writes the opening of the document, up to the `connections` array.
pub fn begin(out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "{{\n  \"schema_version\": {SCHEMA_VERSION},\n  \"connections\": ["
    )
}

/// Writes one element of the `connections` array; `first` for the first
/// one. `scratch` is a reusable buffer: the connection is serialized into it
/// and written in one piece (serde_json's many tiny writes are much cheaper
/// into a `Vec` than through a `dyn Write`).
pub fn connection(
    out: &mut dyn Write,
    connection: &Connection,
    first: bool,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    scratch.clear();
    scratch.extend_from_slice(if first { b"\n    " } else { b",\n    " });
    value(&mut *scratch, connection, 2)?;
    out.write_all(scratch)
}

/// Closes the `connections` array (`any`: it has elements) and writes the
/// rest of the document and a final newline.
pub fn end(
    out: &mut dyn Write,
    any: bool,
    ending: &Ending<'_>,
    summary: &Summary,
) -> io::Result<()> {
    out.write_all(if any { b"\n  ]" } else { b"]" })?;
    field(out, "packets", &ending.packets)?;
    field(out, "framing", &ending.framing)?;
    field(out, "warnings", &ending.warnings)?;
    field(out, "summary", summary)?;
    out.write_all(b"\n}\n")
}

/// Writes `,\n  "key": value` at the top level of the document.
fn field<T: Serialize + ?Sized>(out: &mut dyn Write, key: &str, v: &T) -> io::Result<()> {
    write!(out, ",\n  \"{key}\": ")?;
    value(&mut *out, v, 1)
}

/// Serializes `v` pretty-printed as if nested `level` deep.
fn value<W: Write, T: Serialize + ?Sized>(out: W, v: &T, level: usize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, Nested::at(level));
    v.serialize(&mut ser).map_err(io::Error::from)
}

/// serde_json's `PrettyFormatter` (two spaces), starting at a given depth:
/// serde_json's own cannot, and the streamed pieces sit inside the document.
struct Nested {
    level: usize,
    has_value: bool,
}

impl Nested {
    fn at(level: usize) -> Self {
        Nested {
            level,
            has_value: false,
        }
    }

    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        const SPACES: &[u8; 64] =
            b"                                                                ";
        let mut n = self.level * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl Formatter for Nested {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::analyze::model::Analysis;
    use crate::report::sample;

    const SCHEMA_DOC: &str = include_str!("../../docs/json-schema.md");

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
