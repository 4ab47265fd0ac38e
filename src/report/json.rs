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

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use super::Ending;
use super::stats::Summary;
use crate::analyze::model::{
    CaptureSummary, Close, CloseKind, Connection, Exchange, Frames, LatencySplit, PitfallKind,
    Side, Timestamp,
};
use crate::protocol::Framing;

/// Version of the JSON schema; raised only when a field changes meaning or
/// disappears (adding fields keeps the version).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Writes the opening of the document, up to the `connections` array.
pub(crate) fn begin(out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "{{\n  \"schema_version\": {SCHEMA_VERSION},\n  \"connections\": ["
    )
}

/// Writes one element of the `connections` array; `first` for the first
/// one. `scratch` is a reusable buffer: the connection is serialized into it
/// and written in one piece (serde_json's many tiny writes are much cheaper
/// into a `Vec` than through a `dyn Write`).
pub(crate) fn connection(
    out: &mut dyn Write,
    connection: &Connection,
    first: bool,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    scratch.clear();
    scratch.extend_from_slice(if first { b"\n    " } else { b",\n    " });
    write_connection::<true>(scratch, connection);
    out.write_all(scratch)
}

/// `connection` as one JSON line (as serde_json writes compactly), after
/// `head`: the opening of a JSON object and its first fields, each
/// followed by `,`. A line of `reqresp watch`'s JSON-lines mode carries
/// exactly the fields of `analyze --format json`.
pub(crate) fn connection_line(out: &mut Vec<u8>, head: &[u8], connection: &Connection) {
    out.extend_from_slice(head);
    connection_fields::<false>(out, connection);
}

/// `exchange` (split as its connection splits it) as one JSON line, after
/// `head` (see [`connection_line`]).
pub(crate) fn exchange_line(
    out: &mut Vec<u8>,
    head: &[u8],
    split: Option<LatencySplit>,
    exchange_: &Exchange,
) {
    out.extend_from_slice(head);
    exchange_fields::<false>(out, split, exchange_);
}

/// A literal as the pretty layout has it (`P`), or without its spaces and
/// line breaks for one-line JSON (no literal given here has a space inside
/// a string): both forms are constants, and `P` a constant of the caller.
macro_rules! lit {
    ($pretty:literal) => {{
        const PRETTY: &[u8] = $pretty;
        const COMPACT: [u8; compact_len(PRETTY)] = compact(PRETTY);
        if P { PRETTY } else { &COMPACT }
    }};
}

/// Bytes of `pretty` that are neither spaces nor line breaks.
const fn compact_len(pretty: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < pretty.len() {
        if pretty[i] != b' ' && pretty[i] != b'\n' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// `pretty` without its spaces and line breaks (`N` from [`compact_len`]).
const fn compact<const N: usize>(pretty: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let (mut i, mut n) = (0, 0);
    while i < pretty.len() {
        if pretty[i] != b' ' && pretty[i] != b'\n' {
            out[n] = pretty[i];
            n += 1;
        }
        i += 1;
    }
    out
}

// Indentation of the connection's fields' items, at 3, 4 and 5 levels.
const I3: &str = "\n      ";
const I4: &str = "\n        ";
const I5: &str = "\n          ";

/// Appends `c` to `out` exactly as serde_json's pretty printer would at the
/// depth of the `connections` array (`P`), or as its compact printer would
/// (tests hold each byte for byte).
///
/// Written by hand because serde_json cost a third of the analyzer's CPU
/// time on large captures: its formatter escapes every key and goes through
/// `fmt` for each address; here keys are literals, IPv4 addresses and
/// integers are formatted directly, and only the previews and notes (text
/// from the capture) go through serde_json's string escaping.
fn write_connection<const P: bool>(out: &mut Vec<u8>, c: &Connection) {
    out.push(b'{');
    connection_fields::<P>(out, c);
}

/// A connection's fields and the object's closing brace, after its opening
/// one (or after a JSON line's first fields).
fn connection_fields<const P: bool>(out: &mut Vec<u8>, c: &Connection) {
    out.extend_from_slice(lit!(b"\n      \"id\": "));
    uint(out, u64::from(c.id));
    out.extend_from_slice(lit!(b",\n      \"client\": "));
    address(out, c.client);
    out.extend_from_slice(lit!(b",\n      \"server\": "));
    address(out, c.server);
    out.extend_from_slice(lit!(b",\n      \"first_seen\": "));
    uint(out, c.first_seen.0);
    out.extend_from_slice(lit!(b",\n      \"last_seen\": "));
    uint(out, c.last_seen.0);
    out.extend_from_slice(lit!(b",\n      \"handshake\": "));
    match &c.handshake {
        None => out.extend_from_slice(b"null"),
        Some(h) => {
            out.push(b'{');
            out.extend_from_slice(lit!(b"\n        \"syn\": "));
            uint(out, h.syn.0);
            out.extend_from_slice(lit!(b",\n        \"syn_ack\": "));
            opt_time(out, h.syn_ack);
            out.extend_from_slice(lit!(b",\n        \"ack\": "));
            opt_time(out, h.ack);
            out.extend_from_slice(lit!(b",\n        \"rtt_us\": "));
            opt_float(out, h.rtt_us);
            close::<P>(out, I3, b'}');
        }
    }
    out.extend_from_slice(lit!(b",\n      \"bytes_client_to_server\": "));
    uint(out, c.bytes_client_to_server);
    out.extend_from_slice(lit!(b",\n      \"bytes_server_to_client\": "));
    uint(out, c.bytes_server_to_client);
    out.extend_from_slice(lit!(b",\n      \"gaps\": "));
    array::<P, _>(out, &c.gaps, I4, I3, |out, g| {
        out.push(b'{');
        out.extend_from_slice(lit!(b"\n          \"from\": "));
        side(out, g.from);
        out.extend_from_slice(lit!(b",\n          \"offset\": "));
        uint(out, g.offset);
        out.extend_from_slice(lit!(b",\n          \"len\": "));
        uint(out, g.len);
        close::<P>(out, I4, b'}');
    });
    out.extend_from_slice(lit!(b",\n      \"framing\": "));
    out.extend_from_slice(match c.framing {
        Framing::Line => b"\"line\"".as_slice(),
        Framing::Length => b"\"length\"",
        Framing::Raw => b"\"raw\"",
    });
    out.extend_from_slice(lit!(b",\n      \"protocol\": "));
    match c.protocol {
        Some(p) => string(out, p.name()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(lit!(b",\n      \"framing_reason\": "));
    opt_string(out, c.framing_reason.as_deref());
    out.extend_from_slice(lit!(b",\n      \"exchanges\": "));
    array::<P, _>(out, &c.exchanges, I4, I3, |out, e| {
        exchange::<P>(out, c.latency_split(e), e)
    });
    out.extend_from_slice(lit!(b",\n      \"recv_pitfalls\": "));
    array::<P, _>(out, &c.recv_pitfalls, I4, I3, |out, p| {
        out.push(b'{');
        out.extend_from_slice(lit!(b"\n          \"from\": "));
        side(out, p.from);
        out.extend_from_slice(lit!(b",\n          \"kind\": "));
        out.extend_from_slice(match p.kind {
            PitfallKind::Merged => b"\"merged\"".as_slice(),
            PitfallKind::Split => b"\"split\"",
        });
        out.extend_from_slice(lit!(b",\n          \"message\": "));
        uint(out, p.message);
        out.extend_from_slice(lit!(b",\n          \"count\": "));
        uint(out, u64::from(p.count));
        close::<P>(out, I4, b'}');
    });
    out.extend_from_slice(lit!(b",\n      \"close\": "));
    match &c.close {
        None => out.extend_from_slice(b"null"),
        Some(cl) => write_close::<P>(out, cl),
    }
    out.extend_from_slice(lit!(b",\n      \"state\": \""));
    out.extend_from_slice(c.state.name().as_bytes());
    out.push(b'"');
    out.extend_from_slice(lit!(b",\n      \"notes\": "));
    array::<P, _>(out, &c.notes, I4, I3, |out, n| string(out, n));
    out.extend_from_slice(lit!(b",\n      \"events\": "));
    array::<P, _>(out, &c.events, I4, I3, |out, e| {
        out.extend_from_slice(lit!(b"{\n          \"time\": "));
        uint(out, e.time.0);
        out.extend_from_slice(lit!(b",\n          \"side\": "));
        side(out, e.side);
        out.extend_from_slice(lit!(b",\n          \"kind\": \""));
        out.extend_from_slice(e.kind.name().as_bytes());
        out.extend_from_slice(lit!(b"\",\n          \"frame\": "));
        uint(out, e.frame);
        out.extend_from_slice(lit!(b",\n          \"seq\": "));
        // Writing into a Vec cannot fail.
        let _ = CompactFormatter.write_i64(out, e.seq);
        out.extend_from_slice(lit!(b",\n          \"len\": "));
        uint(out, u64::from(e.len));
        out.extend_from_slice(lit!(b",\n          \"detail\": "));
        opt_float(out, e.detail);
        close::<P>(out, I4, b'}');
    });
    out.extend_from_slice(lit!(b",\n      \"events_dropped\": "));
    uint(out, c.events_dropped);
    out.extend_from_slice(lit!(b",\n      \"initial_rtt_us\": "));
    opt_float(out, c.initial_rtt_us);
    close::<P>(out, "\n    ", b'}');
}

/// A connection's `close` object: who began it, how, and each FIN or RST.
fn write_close<const P: bool>(out: &mut Vec<u8>, cl: &Close) {
    out.push(b'{');
    out.extend_from_slice(lit!(b"\n        \"initiator\": "));
    side(out, cl.initiator);
    out.extend_from_slice(lit!(b",\n        \"kind\": "));
    close_kind(out, cl.kind);
    out.extend_from_slice(lit!(b",\n        \"events\": "));
    array::<P, _>(out, &cl.events, I5, I4, |out, ev| {
        out.push(b'{');
        out.extend_from_slice(lit!(b"\n            \"from\": "));
        side(out, ev.from);
        out.extend_from_slice(lit!(b",\n            \"kind\": "));
        close_kind(out, ev.kind);
        out.extend_from_slice(lit!(b",\n            \"time\": "));
        uint(out, ev.time.0);
        close::<P>(out, I5, b'}');
    });
    close::<P>(out, I3, b'}');
}

/// One element of a connection's `exchanges` array.
fn exchange<const P: bool>(out: &mut Vec<u8>, split: Option<LatencySplit>, e: &Exchange) {
    out.push(b'{');
    exchange_fields::<P>(out, split, e);
}

/// An exchange's fields and the object's closing brace (see
/// [`connection_fields`]).
fn exchange_fields<const P: bool>(out: &mut Vec<u8>, split: Option<LatencySplit>, e: &Exchange) {
    out.extend_from_slice(lit!(b"\n          \"request_bytes\": "));
    uint(out, e.request_bytes);
    out.extend_from_slice(lit!(b",\n          \"response_bytes\": "));
    uint(out, e.response_bytes);
    out.extend_from_slice(lit!(b",\n          \"request_preview\": "));
    string(out, &e.request_preview);
    out.extend_from_slice(lit!(b",\n          \"response_preview\": "));
    string(out, &e.response_preview);
    out.extend_from_slice(lit!(b",\n          \"request_time\": "));
    uint(out, e.request_time.0);
    out.extend_from_slice(lit!(b",\n          \"response_first_time\": "));
    opt_time(out, e.response_first_time);
    out.extend_from_slice(lit!(b",\n          \"response_last_time\": "));
    opt_time(out, e.response_last_time);
    out.extend_from_slice(lit!(b",\n          \"latency_us\": "));
    opt_float(out, e.latency_us);
    out.extend_from_slice(lit!(b",\n          \"first_byte_latency_us\": "));
    opt_float(out, e.first_byte_latency_us);
    out.extend_from_slice(lit!(b",\n          \"operation\": "));
    opt_string(out, e.operation.as_deref());
    out.extend_from_slice(lit!(b",\n          \"request_summary\": "));
    opt_string(out, e.request_summary.as_deref());
    out.extend_from_slice(lit!(b",\n          \"response_summary\": "));
    opt_string(out, e.response_summary.as_deref());
    out.extend_from_slice(lit!(b",\n          \"error\": "));
    out.extend_from_slice(if e.error { b"true" } else { b"false" });
    out.extend_from_slice(lit!(b",\n          \"incomplete\": "));
    out.extend_from_slice(if e.incomplete { b"true" } else { b"false" });
    out.extend_from_slice(lit!(b",\n          \"request_frames\": "));
    frames::<P>(out, &e.request_frames);
    out.extend_from_slice(lit!(b",\n          \"response_frames\": "));
    frames::<P>(out, &e.response_frames);
    out.extend_from_slice(lit!(b",\n          \"request_ack_time\": "));
    opt_time(out, e.request_ack_time);
    out.extend_from_slice(lit!(b",\n          \"request_packets\": "));
    packets::<P>(out, &e.request_frames);
    out.extend_from_slice(lit!(b",\n          \"request_packets_not_kept\": "));
    uint(out, e.request_frames.packets_not_kept());
    out.extend_from_slice(lit!(b",\n          \"response_packets\": "));
    packets::<P>(out, &e.response_frames);
    out.extend_from_slice(lit!(b",\n          \"response_packets_not_kept\": "));
    uint(out, e.response_frames.packets_not_kept());
    out.extend_from_slice(lit!(b",\n          \"network_us\": "));
    opt_float(out, split.map(|s| s.network_us));
    out.extend_from_slice(lit!(b",\n          \"server_us\": "));
    opt_float(out, split.map(|s| s.server_us));
    out.extend_from_slice(lit!(b",\n          \"rtt_from\": "));
    opt_string(out, split.map(|s| s.rtt_from.name()));
    close::<P>(out, I4, b'}');
}

/// A string, or `null`.
fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// The closing bracket of a non-empty object or array, on its own line
/// at `indent` when pretty (`P`).
fn close<const P: bool>(out: &mut Vec<u8>, indent: &str, bracket: u8) {
    if P {
        out.extend_from_slice(indent.as_bytes());
    }
    out.push(bracket);
}

/// An array: `[]` when empty, else one item per line at `inner` when
/// pretty (`P`).
fn array<const P: bool, T>(
    out: &mut Vec<u8>,
    items: &[T],
    inner: &str,
    outer: &str,
    mut item: impl FnMut(&mut Vec<u8>, &T),
) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if P {
            out.extend_from_slice(inner.as_bytes());
        }
        item(out, t);
    }
    close::<P>(out, outer, b']');
}

/// A list of frame numbers, one per line at the depth of an exchange's field.
fn frames<const P: bool>(out: &mut Vec<u8>, f: &Frames) {
    exchange_list::<P, _>(out, f.iter(), uint);
}

/// A message's packet records, one compact object per line (a message may
/// list up to 64).
fn packets<const P: bool>(out: &mut Vec<u8>, f: &Frames) {
    exchange_list::<P, _>(out, f.packets().iter(), |out, p| {
        out.extend_from_slice(lit!(b"{\"frame\": "));
        uint(out, p.frame);
        out.extend_from_slice(lit!(b", \"time\": "));
        uint(out, p.time.0);
        out.extend_from_slice(lit!(b", \"flags\": "));
        uint(out, u64::from(p.flags));
        out.extend_from_slice(lit!(b", \"seq\": "));
        opt_uint(out, p.seq);
        out.extend_from_slice(lit!(b", \"ack\": "));
        opt_uint(out, p.ack);
        out.extend_from_slice(lit!(b", \"len\": "));
        uint(out, u64::from(p.len));
        out.push(b'}');
    });
}

/// An array in an exchange's field: `[]`, or one item per line.
fn exchange_list<const P: bool, T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    let mut any = false;
    for (i, t) in items.enumerate() {
        out.extend_from_slice(if i > 0 {
            lit!(b",\n            ")
        } else {
            lit!(b"[\n            ")
        });
        item(out, t);
        any = true;
    }
    out.extend_from_slice(if any { lit!(b"\n          ]") } else { b"[]" });
}

fn opt_uint(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        Some(v) => uint(out, u64::from(v)),
        None => out.extend_from_slice(b"null"),
    }
}

/// An unsigned integer, as serde_json writes it.
pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
    // Writing into a Vec cannot fail.
    let _ = CompactFormatter.write_u64(out, v);
}

fn opt_time(out: &mut Vec<u8>, t: Option<Timestamp>) {
    match t {
        Some(t) => uint(out, t.0),
        None => out.extend_from_slice(b"null"),
    }
}

/// A float as serde_json writes it (`null` when not finite).
fn opt_float(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            // Writing into a Vec cannot fail.
            let _ = CompactFormatter.write_f64(out, v);
        }
        _ => out.extend_from_slice(b"null"),
    }
}

/// A JSON string with serde_json's escaping: `"`, `\\` and control
/// characters below 0x20 (short forms where JSON has them, else `\u00xx`).
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (previews, notes) need no escaping at all, or only far
    // in: skip 8 bytes at a time while none of them needs it.
    let mut clean = 0;
    while let Some(word) = bytes.get(clean..clean + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if needs_escape(w) {
            break;
        }
        clean += 8;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the 8 bytes of `w` is a control character (below 0x20),
/// `"` or `\\` (the classic "has a byte less than / equal to" bit tricks;
/// may say yes for a byte ≥ 0x80 next to one that needs it, never no
/// wrongly, and the byte loop then decides).
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    (below_space | zero(quote) | zero(backslash)) != 0
}

fn side(out: &mut Vec<u8>, s: Side) {
    out.extend_from_slice(match s {
        Side::Client => b"\"client\"".as_slice(),
        Side::Server => b"\"server\"",
    });
}

fn close_kind(out: &mut Vec<u8>, k: CloseKind) {
    out.extend_from_slice(match k {
        CloseKind::Fin => b"\"fin\"".as_slice(),
        CloseKind::Rst => b"\"rst\"",
    });
}

/// `"ip:port"` (the `SocketAddr` display form); IPv4, the common case, is
/// formatted without `fmt`.
fn address(out: &mut Vec<u8>, a: SocketAddr) {
    out.push(b'"');
    match a {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                uint(out, u64::from(octet));
            }
            out.push(b':');
            uint(out, u64::from(v4.port()));
        }
        SocketAddr::V6(_) => {
            // Writing into a Vec cannot fail; the form has nothing to escape.
            let _ = write!(out, "{a}");
        }
    }
    out.push(b'"');
}

/// Closes the `connections` array (`any`: it has elements) and writes the
/// rest of the document and a final newline.
pub(crate) fn end(
    out: &mut dyn Write,
    any: bool,
    ending: &Ending<'_>,
    summary: &Summary,
) -> io::Result<()> {
    out.write_all(if any { b"\n  ]" } else { b"]" })?;
    field(out, "packets", &ending.packets)?;
    field(out, "framing", &ending.framing)?;
    field(out, "warnings", &ending.warnings)?;
    field(
        out,
        "summary",
        &WithCapture {
            summary,
            capture: ending.capture,
        },
    )?;
    out.write_all(b"\n}\n")
}

/// The `summary` object: totals over the connections, then what reading
/// the packets found.
#[derive(Serialize)]
struct WithCapture<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    capture: &'a CaptureSummary,
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
mod tests;
