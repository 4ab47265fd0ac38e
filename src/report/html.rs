//! The `html` format: one self-contained interactive page (CSS, JavaScript
//! and data inline) that opens from `file://` in any current browser and
//! makes no network request. Layout, behaviour and the reasons for them are
//! in `docs/html-report.md`.
//!
//! The data is the `--format json` document, written by [`super::json`] and
//! embedded once in a `<script type="application/json">` element, so a field
//! added to the model reaches the page with no change here. Payload text is
//! hostile: the JSON is escaped so no byte sequence can end the element
//! (`<`, `>`, `&` become `\u003c`, `\u003e`, `\u0026`; U+2028 and U+2029
//! become `\u2028`, `\u2029`), and a Content-Security-Policy allows only the
//! page's own script (by its SHA-256) and inline styles, nothing to load.
//!
//! Large captures: past [`MAX_EXCHANGES`] exchanges the page keeps, beside
//! the summary (which always counts everything), the first
//! [`FIRST_PER_CONNECTION`] exchanges of each connection (while they number
//! fewer than [`MAX_EXCHANGES`] in all), the [`SLOWEST`] slowest and the
//! first [`FAILED`] failed ones, and says so. It lists the first
//! [`MAX_CONNECTIONS`] connections.
//! The kept part is collected while the capture streams, so memory stays
//! bounded whatever the capture.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Write};

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::stats::Summary;
use super::{Ending, RenderOptions, json};
use crate::analyze::model::{AckEvent, Connection, Exchange, Side};

/// Exchanges the page holds in full; past this it keeps a selection.
pub(crate) const MAX_EXCHANGES: usize = 50_000;
/// With a selection: exchanges kept from the start of each connection
/// (while the page holds fewer than [`MAX_EXCHANGES`] such).
pub(crate) const FIRST_PER_CONNECTION: usize = 200;
/// With a selection: the slowest exchanges of the capture, kept wherever they are.
pub(crate) const SLOWEST: usize = 1_000;
/// With a selection: failed exchanges (no response, or incomplete) kept.
pub(crate) const FAILED: usize = 1_000;
/// Connections the page lists; the summary counts the others.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;
/// With a selection: recv pitfalls, gaps and notes kept per connection.
const LISTS_PER_CONNECTION: usize = 200;
/// Pure ACKs drawn per connection with `--acks`.
const MAX_ACKS_PER_CONNECTION: usize = 2_000;

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// Collects the connections of an HTML report while the capture streams.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    kept: Vec<Kept>,
    /// Exchanges held in `kept` until a selection starts.
    held: usize,
    /// A selection is being kept (the capture passed [`MAX_EXCHANGES`]).
    trimming: bool,
    /// The slowest exchanges not otherwise kept: (latency, connection slot, index).
    slowest: BinaryHeap<Reverse<Slow>>,
    failed: usize,
    /// With a selection: exchanges kept as the first of their connection,
    /// at most [`MAX_EXCHANGES`] in all.
    first_kept: usize,
    exchanges_seen: u64,
    connections_seen: u64,
}

/// One connection on the page.
#[derive(Debug)]
struct Kept {
    conn: Connection,
    /// With a selection: the original index of each kept exchange.
    index: Option<Vec<u64>>,
    /// Exchanges of the connection in the capture.
    total: u64,
}

/// A candidate for the slowest list.
#[derive(Debug)]
struct Slow {
    latency: f64,
    slot: usize,
    index: u64,
    exchange: Exchange,
}

impl PartialEq for Slow {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Slow {}
impl PartialOrd for Slow {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Slow {
    fn cmp(&self, other: &Self) -> Ordering {
        self.latency
            .total_cmp(&other.latency)
            .then(self.slot.cmp(&other.slot))
            .then(self.index.cmp(&other.index))
    }
}

/// An exchange the page shows whatever the selection: no response to a
/// request, or bytes missing.
fn failed(e: &Exchange) -> bool {
    e.incomplete || (e.latency_us.is_none() && !e.request_frames.is_empty())
}

impl Collector {
    /// Adds the next connection of the analysis.
    pub(crate) fn add(&mut self, conn: Connection) {
        self.connections_seen += 1;
        self.exchanges_seen += conn.exchanges.len() as u64;
        if self.kept.len() >= MAX_CONNECTIONS {
            return;
        }
        let total = conn.exchanges.len() as u64;
        if !self.trimming && self.held + conn.exchanges.len() > MAX_EXCHANGES {
            self.trimming = true;
            for slot in 0..self.kept.len() {
                self.trim(slot);
            }
        }
        self.kept.push(Kept {
            conn,
            index: None,
            total,
        });
        if self.trimming {
            self.trim(self.kept.len() - 1);
        } else {
            self.held += total as usize;
        }
    }

    /// Keeps only the selection of the connection in `slot`.
    fn trim(&mut self, slot: usize) {
        let kept = &mut self.kept[slot];
        let exchanges = std::mem::take(&mut kept.conn.exchanges);
        let mut index = Vec::new();
        let first = FIRST_PER_CONNECTION.min(MAX_EXCHANGES.saturating_sub(self.first_kept));
        self.first_kept += first.min(exchanges.len());
        for (i, e) in exchanges.into_iter().enumerate() {
            let i = i as u64;
            if (i as usize) < first {
                kept.conn.exchanges.push(e);
                index.push(i);
            } else if failed(&e) && self.failed < FAILED {
                self.failed += 1;
                kept.conn.exchanges.push(e);
                index.push(i);
            } else if let Some(latency) = e.latency_us.filter(|l| l.is_finite()) {
                let full = self.slowest.len() >= SLOWEST;
                if full && self.slowest.peek().is_some_and(|m| m.0.latency >= latency) {
                    continue;
                }
                self.slowest.push(Reverse(Slow {
                    latency,
                    slot,
                    index: i,
                    exchange: e,
                }));
                if full {
                    self.slowest.pop();
                }
            }
        }
        let c = &mut kept.conn;
        c.recv_pitfalls.truncate(LISTS_PER_CONNECTION);
        c.gaps.truncate(LISTS_PER_CONNECTION);
        c.notes.truncate(LISTS_PER_CONNECTION);
        kept.index = Some(index);
    }

    /// The kept connections, the slowest put back in place.
    fn into_kept(mut self) -> (Vec<Kept>, Meta) {
        for Reverse(s) in std::mem::take(&mut self.slowest) {
            let k = &mut self.kept[s.slot];
            k.conn.exchanges.push(s.exchange);
            k.index.get_or_insert_with(Vec::new).push(s.index);
        }
        let mut exchanges_kept = 0;
        for k in &mut self.kept {
            if let Some(index) = &mut k.index {
                let mut pairs: Vec<(u64, Exchange)> = index
                    .drain(..)
                    .zip(std::mem::take(&mut k.conn.exchanges))
                    .collect();
                pairs.sort_by_key(|p| p.0);
                for (i, e) in pairs {
                    index.push(i);
                    k.conn.exchanges.push(e);
                }
            }
            exchanges_kept += k.conn.exchanges.len() as u64;
        }
        let meta = Meta {
            trimmed: self.trimming || self.connections_seen > self.kept.len() as u64,
            exchanges_seen: self.exchanges_seen,
            exchanges_kept,
            connections_seen: self.connections_seen,
            connections_kept: self.kept.len() as u64,
            limits: Limits {
                max_exchanges: MAX_EXCHANGES,
                first_per_connection: FIRST_PER_CONNECTION,
                slowest: SLOWEST,
                failed: FAILED,
                max_connections: MAX_CONNECTIONS,
            },
            kept: self
                .kept
                .iter()
                .filter(|k| k.conn.exchanges.len() as u64 != k.total)
                .filter_map(|k| {
                    k.index.as_ref().map(|index| KeptIndex {
                        id: k.conn.id,
                        total: k.total,
                        index: index.clone(),
                    })
                })
                .collect(),
            title: None,
            acks: Vec::new(),
            acks_all: false,
            version: env!("CARGO_PKG_VERSION"),
        };
        (self.kept, meta)
    }
}

/// What the page knows beside the JSON document: the selection, if any.
#[derive(Debug, Serialize)]
struct Meta {
    trimmed: bool,
    exchanges_seen: u64,
    exchanges_kept: u64,
    connections_seen: u64,
    connections_kept: u64,
    limits: Limits,
    /// Per connection with a selection: original indices of its exchanges.
    kept: Vec<KeptIndex>,
    title: Option<String>,
    /// Per connection with pure ACKs: those the ladder draws (the
    /// teardown's last one; every one kept with `--acks`) and how many not.
    acks: Vec<ConnAcks>,
    /// `--acks`: every pure ACK kept is drawn, with its number.
    acks_all: bool,
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct ConnAcks {
    id: u32,
    not_drawn: u64,
    acks: Vec<AckRow>,
}

#[derive(Debug, Serialize)]
struct AckRow {
    from: &'static str,
    time: u64,
    ack: Option<u32>,
}

/// The pure ACKs the page draws for `c`: every one the analysis kept with
/// `--acks` (`all`) but the handshake's, else only the teardown's last.
fn conn_acks(c: &Connection, all: bool) -> Option<ConnAcks> {
    let handshake_ack = c.handshake.as_ref().and_then(|h| h.ack);
    let drawn: Vec<&AckEvent> = if all {
        c.acks
            .iter()
            .filter(|a| !(a.from == Side::Client && Some(a.time) == handshake_ack))
            .take(MAX_ACKS_PER_CONNECTION)
            .collect()
    } else {
        c.last_ack.iter().collect()
    };
    let total = c.pure_acks + u64::from(c.last_ack.is_some());
    if total == 0 && drawn.is_empty() {
        return None;
    }
    Some(ConnAcks {
        id: c.id,
        not_drawn: total.saturating_sub(drawn.len() as u64),
        acks: drawn
            .into_iter()
            .map(|a| AckRow {
                from: a.from.name(),
                time: a.time.0,
                ack: a.ack,
            })
            .collect(),
    })
}

#[derive(Debug, Serialize)]
struct Limits {
    max_exchanges: usize,
    first_per_connection: usize,
    slowest: usize,
    failed: usize,
    max_connections: usize,
}

#[derive(Debug, Serialize)]
struct KeptIndex {
    id: u32,
    total: u64,
    index: Vec<u64>,
}

/// Writes the page.
pub(crate) fn render(
    collector: Collector,
    ending: &Ending<'_>,
    summary: &Summary,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (kept, mut meta) = collector.into_kept();
    meta.title = options.title.clone();
    meta.acks_all = options.acks;
    meta.acks = kept
        .iter()
        .filter_map(|k| conn_acks(&k.conn, options.acks))
        .collect();
    let mut doc = Vec::new();
    json::begin(&mut doc)?;
    let mut scratch = Vec::new();
    for (i, k) in kept.iter().enumerate() {
        json::connection(&mut doc, &k.conn, i == 0, &mut scratch)?;
    }
    json::end(&mut doc, !kept.is_empty(), ending, summary)?;
    let meta = serde_json::to_vec(&meta).map_err(io::Error::other)?;

    let title = options.title.as_deref().unwrap_or("capture");
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"generator\" content=\"reqresp {version}\">\n\
         <title>reqresp report: {title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <noscript><p class=\"noscript\">This report draws itself with JavaScript; \
         enable it for this file, or read the same data with \
         <code>reqresp analyze FILE --format text</code>.</p></noscript>\n\
         <div id=\"app\"></div>\n<script id=\"reqresp-data\" type=\"application/json\">",
        csp = content_security_policy(),
        version = env!("CARGO_PKG_VERSION"),
        title = escape_html(title),
    )?;
    write_json_for_html(out, &doc)?;
    out.write_all(b"</script>\n<script id=\"reqresp-meta\" type=\"application/json\">")?;
    write_json_for_html(out, &meta)?;
    write!(out, "</script>\n<script>{JS}</script>\n</body>\n</html>\n")
}

/// The page's Content-Security-Policy: nothing loads from anywhere, the
/// only script that runs is the page's own (by hash), styles are inline.
pub(crate) fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
         base-uri 'none'; form-action 'none'"
    )
}

/// Copies JSON text into a `<script>` element so that nothing in it can end
/// the element or read as HTML: `<`, `>` and `&` (only ever inside JSON
/// strings) become `\u` escapes, which JSON decodes back to the same text,
/// and so do U+2028 and U+2029 (line separators to some JavaScript parsers).
/// The pretty-printing whitespace between tokens is left out: a third of
/// the size of a large report, and of the time the browser takes to parse it.
fn write_json_for_html(out: &mut dyn Write, json: &[u8]) -> io::Result<()> {
    let mut start = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < json.len() {
        let b = json[i];
        let replace: Option<(&[u8], usize)> = match b {
            b'<' => Some((b"\\u003c", 1)),
            b'>' => Some((b"\\u003e", 1)),
            b'&' => Some((b"\\u0026", 1)),
            0xe2 if json.get(i + 1) == Some(&0x80) && json.get(i + 2) == Some(&0xa8) => {
                Some((b"\\u2028", 3))
            }
            0xe2 if json.get(i + 1) == Some(&0x80) && json.get(i + 2) == Some(&0xa9) => {
                Some((b"\\u2029", 3))
            }
            b' ' | b'\n' | b'\r' | b'\t' if !in_string => Some((b"", 1)),
            b'"' => {
                in_string = !in_string;
                None
            }
            // An escaped character (`\"`, `\\`) inside a string: skip it.
            b'\\' if in_string => {
                i += 2;
                continue;
            }
            _ => None,
        };
        match replace {
            Some((with, len)) => {
                out.write_all(&json[start..i])?;
                out.write_all(with)?;
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    out.write_all(&json[start..json.len().max(start)])
}

/// Text for HTML element content and attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::model::Analysis;
    use crate::report::{Format, render as render_any, sample};
    use serde_json::Value;

    fn page(a: &Analysis) -> String {
        let mut out = Vec::new();
        render_any(a, Format::Html, &RenderOptions::default(), &mut out).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    /// The text of the `<script>` element with this id.
    fn script<'a>(page: &'a str, id: &str) -> &'a str {
        let open = format!("<script id=\"{id}\" type=\"application/json\">");
        let start = page.find(&open).expect("script element") + open.len();
        let len = page[start..].find("</script>").expect("end of script");
        &page[start..start + len]
    }

    #[test]
    fn the_page_embeds_the_json_document_once() {
        let a = sample::analysis();
        let html = page(&a);
        let mut json = Vec::new();
        render_any(&a, Format::Json, &RenderOptions::default(), &mut json).expect("json");
        let embedded: Value = serde_json::from_str(script(&html, "reqresp-data")).expect("parses");
        let direct: Value = serde_json::from_slice(&json).expect("parses");
        assert_eq!(embedded, direct);
        assert_eq!(html.matches("\"schema_version\"").count(), 1);
        let meta: Value = serde_json::from_str(script(&html, "reqresp-meta")).expect("meta");
        assert_eq!(meta["trimmed"], false);
        assert!(html.contains("Content-Security-Policy"));
        // No address to load from; the SVG namespace is a name, not a request.
        let outside = html.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!outside.contains("http://") && !outside.contains("https://"));
        assert!(!outside.contains("src=") && !outside.contains("href="));
    }

    #[test]
    fn hostile_text_cannot_end_the_data_element() {
        let mut a = sample::analysis();
        let hostile = "</script><script>window.pwned=1</script><!-- \u{2028}\u{2029} & <img src=x onerror=alert(1)>";
        a.connections[0].exchanges[0].request_preview = hostile.to_owned();
        a.connections[0].notes.push("</SCRIPT >".to_owned());
        a.warnings.push(hostile.to_owned());
        let html = page(&a);
        let data = script(&html, "reqresp-data");
        for bad in ["<", ">", "\u{2028}", "\u{2029}"] {
            assert!(!data.contains(bad), "{bad:?} left in the data");
        }
        let v: Value = serde_json::from_str(data).expect("still JSON");
        assert_eq!(
            v["connections"][0]["exchanges"][0]["request_preview"],
            hostile
        );
        assert_eq!(v["warnings"][1], hostile);
        // Exactly the page's own script elements.
        assert_eq!(html.to_ascii_lowercase().matches("<script").count(), 3);
    }

    #[test]
    fn the_title_is_escaped() {
        let options = RenderOptions {
            title: Some("<b>\"x\"&'.pcap".to_owned()),
            ..RenderOptions::default()
        };
        let mut out = Vec::new();
        render_any(&sample::analysis(), Format::Html, &options, &mut out).expect("render");
        let html = String::from_utf8(out).expect("utf-8");
        assert!(
            html.contains("<title>reqresp report: &lt;b&gt;&quot;x&quot;&amp;&#39;.pcap</title>")
        );
    }

    #[test]
    fn the_policy_hashes_the_script_that_is_embedded() {
        let html = page(&Analysis::default());
        let csp = content_security_policy();
        assert!(html.contains(&csp));
        let start = html.rfind("<script>").expect("script") + "<script>".len();
        let end = start + html[start..].find("</script>").expect("end");
        let digest = Sha256::digest(&html.as_bytes()[start..end]);
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(csp.contains(&format!("'sha256-{hash}'")));
        assert!(csp.starts_with("default-src 'none'"));
    }

    #[test]
    fn a_huge_capture_keeps_a_selection_and_says_so() {
        let mut a = sample::many_exchanges(MAX_EXCHANGES + 10_000);
        let n = a.connections[0].exchanges.len();
        // One very slow exchange far in, and one without response.
        a.connections[0].exchanges[n - 5].latency_us = Some(9e9);
        a.connections[0].exchanges[n - 3].latency_us = None;
        a.connections[0].exchanges[n - 3]
            .request_frames
            .push(1_000_000);
        let html = page(&a);
        assert!(html.len() < 20_000_000, "{} bytes", html.len());
        let meta: Value = serde_json::from_str(script(&html, "reqresp-meta")).expect("meta");
        assert_eq!(meta["trimmed"], true);
        assert_eq!(meta["exchanges_seen"], n as u64);
        let data: Value = serde_json::from_str(script(&html, "reqresp-data")).expect("data");
        assert_eq!(
            data["summary"]["exchanges"], n as u64,
            "the summary counts all"
        );
        let kept = data["connections"][0]["exchanges"]
            .as_array()
            .expect("array");
        let index: Vec<u64> = meta["kept"][0]["index"]
            .as_array()
            .expect("index")
            .iter()
            .map(|v| v.as_u64().expect("integer"))
            .collect();
        assert_eq!(kept.len(), index.len());
        assert!(kept.len() <= FIRST_PER_CONNECTION + SLOWEST + FAILED);
        assert!(index.windows(2).all(|w| w[0] < w[1]), "in capture order");
        assert!(index.contains(&(n as u64 - 5)), "the slowest is kept");
        assert!(index.contains(&(n as u64 - 3)), "the failed one is kept");
        assert_eq!(&index[..3], &[0, 1, 2], "the first ones are kept");
        let pos = index.iter().position(|&i| i == n as u64 - 5).expect("kept");
        assert_eq!(kept[pos]["latency_us"], 9e9);
    }

    #[test]
    fn many_small_connections_stay_within_the_bounds() {
        let one = sample::many_exchanges(5).connections.remove(0);
        let mut a = Analysis::default();
        for id in 1..=15_000 {
            let mut c = one.clone();
            c.id = id;
            a.connections.push(c);
        }
        let html = page(&a);
        let meta: Value = serde_json::from_str(script(&html, "reqresp-meta")).expect("meta");
        assert_eq!(meta["trimmed"], true);
        assert_eq!(meta["connections_seen"], 15_000);
        assert_eq!(meta["connections_kept"], MAX_CONNECTIONS as u64);
        let kept = meta["exchanges_kept"].as_u64().expect("kept") as usize;
        assert!(kept <= MAX_EXCHANGES + SLOWEST + FAILED, "{kept}");
        let data: Value = serde_json::from_str(script(&html, "reqresp-data")).expect("data");
        assert_eq!(data["summary"]["exchanges"], 75_000);
        // Only connections that lost exchanges carry an index.
        let listed = meta["kept"].as_array().expect("kept").len();
        let whole = data["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .filter(|c| c["exchanges"].as_array().map(Vec::len) == Some(5))
            .count();
        assert_eq!(listed + whole, MAX_CONNECTIONS);
    }

    #[test]
    fn json_escaping_round_trips() {
        let s = "a<b>&c\u{2028}d\u{2029}é";
        let json = serde_json::to_vec(&s).expect("json");
        let mut out = Vec::new();
        write_json_for_html(&mut out, &json).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text, r#""a\u003cb\u003e\u0026c\u2028d\u2029é""#);
        assert_eq!(serde_json::from_str::<String>(&text).expect("parses"), s);
        // Whitespace between tokens goes, whitespace and quotes in strings stay.
        let v = serde_json::json!({"a b": [1, 2], "c": " \\\" x\n<", "d": {"e": null}});
        let pretty = serde_json::to_vec_pretty(&v).expect("json");
        let mut out = Vec::new();
        write_json_for_html(&mut out, &pretty).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            r#"{"a b":[1,2],"c":" \\\" x\n\u003c","d":{"e":null}}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&text).expect("parses"), v);
    }
}
