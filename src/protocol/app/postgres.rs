//! The PostgreSQL frontend/backend protocol, version 3.
//!
//! On the wire each message is a type byte and a 4-byte length (the
//! client's first messages — startup, SSL request, cancel — have no type
//! byte). What is paired is larger than one wire message:
//!
//! - a client request is the startup message, an SSL or GSS encryption
//!   request, a simple `Query`, an extended-protocol batch up to `Sync`
//!   (Parse, Bind, Describe, Execute), a password or SASL message, a
//!   `FunctionCall`, copy data up to `CopyDone` or `CopyFail`, or
//!   `Terminate` (which expects no answer);
//! - a server response is every message up to `ReadyForQuery`, or up to an
//!   authentication request that waits for the client, `CopyInResponse`,
//!   or an error during startup (the server then closes). A notification
//!   that arrives on its own is a push. The answer to an SSL request is one
//!   untyped byte; after `S` the connection is TLS (a tunnel).
//!
//! Only the first [`KEPT`] bytes of each wire message are kept, for the
//! summary (the query text, the command tag, the error).

use super::{
    AppError, AppMessage, AppProtocol, Direction, Evidence, Kind, Step, lost_sync, malformed, show,
    size,
};

const P: AppProtocol = AppProtocol::Postgres;
/// Bytes of a message body kept for the summary.
const KEPT: usize = 512;
/// Largest message: PostgreSQL's own allocation limit (1 GiB).
const MAX_MESSAGE: u32 = 1 << 30;
/// Largest startup packet PostgreSQL accepts.
const MAX_STARTUP: u32 = 10_000;
const PROTOCOL_3: u32 = 196_608;
/// Protocol 3.x: 3.0, and 3.2 that PostgreSQL 18 clients may ask for.
const PROTOCOL_3_X: std::ops::RangeInclusive<u32> = PROTOCOL_3..=PROTOCOL_3 + 99;
const SSL_REQUEST: u32 = 80_877_103;
const GSS_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Untyped messages next (client before startup).
    Untyped,
    Typed,
    /// One untyped byte answers an SSL/GSS request (server).
    SslAnswer,
    Tunnel,
}

/// One direction: the wire message being read, and the unit (request or
/// response) it belongs to.
#[derive(Debug)]
struct Half {
    phase: Phase,
    /// Header bytes seen: type byte (typed only) and length.
    header: [u8; 8],
    have: usize,
    /// Body bytes left in the current wire message.
    left: u64,
    body: Vec<u8>,
    /// The unit so far.
    len: u64,
    messages: u32,
    unit: Unit,
}

#[derive(Debug, Default)]
struct Unit {
    /// Query text of a Query or Parse.
    query: Option<String>,
    tags: Vec<String>,
    tag_count: u32,
    error: Option<String>,
    rows: u64,
    copy_bytes: u64,
    auth: Option<String>,
    ready: Option<u8>,
}

impl Default for Half {
    fn default() -> Self {
        Half {
            phase: Phase::Typed,
            header: [0; 8],
            have: 0,
            left: 0,
            body: Vec::new(),
            len: 0,
            messages: 0,
            unit: Unit::default(),
        }
    }
}

/// Both directions of a PostgreSQL connection.
#[derive(Debug)]
pub(crate) struct Postgres {
    halves: [Half; 2],
    /// The server said ReadyForQuery once: startup is over.
    ready_seen: bool,
}

impl Default for Postgres {
    fn default() -> Self {
        let client = Half {
            phase: Phase::Untyped,
            ..Half::default()
        };
        Postgres {
            halves: [client, Half::default()],
            ready_seen: false,
        }
    }
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

/// What one complete wire message does to its unit.
enum Outcome {
    Continue,
    End(AppMessage),
}

impl Postgres {
    pub(crate) fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
        let mut at = 0;
        while at < data.len() {
            let half = &mut self.halves[idx(dir)];
            match half.phase {
                Phase::Tunnel => {
                    let mut m = AppMessage::new(Kind::Tunnel);
                    m.len = (data.len() - at) as u64;
                    m.summary = format!("{} of TLS", size(m.len));
                    return Ok(Step {
                        consumed: data.len(),
                        message: Some(m),
                    });
                }
                Phase::SslAnswer => {
                    let b = data[at];
                    at += 1;
                    if b == b'E' {
                        // An old server answers with an error message.
                        half.phase = Phase::Typed;
                        half.header[0] = b;
                        half.have = 1;
                        half.len = 1;
                        continue;
                    }
                    let mut m = AppMessage::new(Kind::Response);
                    m.len = 1;
                    m.summary = match b {
                        b'S' => "encryption accepted (TLS follows)".into(),
                        b'G' => "GSS encryption accepted".into(),
                        b'N' => "encryption refused".into(),
                        _ => {
                            return Err(malformed(
                                P,
                                dir,
                                format!("answer {:?} to an SSL request", show(&[b], 4)),
                            ));
                        }
                    };
                    if b == b'N' {
                        half.phase = Phase::Typed;
                    } else {
                        for h in &mut self.halves {
                            h.phase = Phase::Tunnel;
                        }
                    }
                    return Ok(Step {
                        consumed: at,
                        message: Some(m),
                    });
                }
                Phase::Untyped | Phase::Typed => {
                    let header_len = if half.phase == Phase::Untyped { 8 } else { 5 };
                    if half.have < header_len {
                        let n = (header_len - half.have).min(data.len() - at);
                        half.header[half.have..half.have + n].copy_from_slice(&data[at..at + n]);
                        half.have += n;
                        at += n;
                        half.len += n as u64;
                        if half.have < header_len {
                            continue;
                        }
                        self.header(dir)?;
                    }
                    let half = &mut self.halves[idx(dir)];
                    let n = half.left.min((data.len() - at) as u64) as usize;
                    let keep = KEPT.saturating_sub(half.body.len()).min(n);
                    half.body.extend_from_slice(&data[at..at + keep]);
                    half.left -= n as u64;
                    at += n;
                    half.len += n as u64;
                    if half.left == 0
                        && let Outcome::End(m) = self.message(dir)?
                    {
                        return Ok(Step {
                            consumed: at,
                            message: Some(m),
                        });
                    }
                }
            }
        }
        Ok(Step {
            consumed: at,
            message: None,
        })
    }

    /// A header is complete: check its length.
    fn header(&mut self, dir: Direction) -> Result<(), AppError> {
        let half = &mut self.halves[idx(dir)];
        let h = half.header;
        if half.phase == Phase::Untyped {
            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            let ok = match code {
                c if PROTOCOL_3_X.contains(&c) => (9..=MAX_STARTUP).contains(&len),
                SSL_REQUEST | GSS_REQUEST => len == 8,
                CANCEL_REQUEST => len == 16,
                _ => false,
            };
            if !ok {
                return Err(malformed(
                    P,
                    dir,
                    format!("not a startup message (length {len}, code {code})"),
                ));
            }
            half.left = u64::from(len - 8);
        } else {
            let t = h[0];
            let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
            let known: &[u8] = match dir {
                Direction::Request => b"QPBDECHSpFdcfX",
                Direction::Response => b"RSKZTDCENAI123ntsGHWdcVv",
            };
            if !known.contains(&t) {
                return Err(malformed(
                    P,
                    dir,
                    format!("unknown message type {:?}", show(&[t], 4)),
                ));
            }
            if !(4..=MAX_MESSAGE).contains(&len) {
                return Err(malformed(
                    P,
                    dir,
                    format!("message {:?} of length {len}", t as char),
                ));
            }
            half.left = u64::from(len - 4);
        }
        Ok(())
    }

    /// A wire message is complete.
    fn message(&mut self, dir: Direction) -> Result<Outcome, AppError> {
        let ready_seen = self.ready_seen;
        let half = &mut self.halves[idx(dir)];
        let body = std::mem::take(&mut half.body);
        let h = half.header;
        let untyped = half.phase == Phase::Untyped;
        half.have = 0;
        half.messages += 1;
        let outcome = match dir {
            Direction::Request if untyped => {
                let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let (summary, op, responses) = match code {
                    c if PROTOCOL_3_X.contains(&c) => {
                        half.phase = Phase::Typed;
                        let mut words = body.split(|&b| b == 0);
                        let mut s = String::from("startup");
                        while let (Some(k), Some(v)) = (words.next(), words.next()) {
                            if k == b"user" || k == b"database" {
                                s.push_str(&format!(" {}={}", show(k, 20), show(v, 40)));
                            }
                        }
                        (s, "startup", 1)
                    }
                    SSL_REQUEST => ("SSLRequest".to_string(), "SSLRequest", 1),
                    GSS_REQUEST => ("GSSENCRequest".to_string(), "GSSENCRequest", 1),
                    _ => ("CancelRequest".to_string(), "CancelRequest", 0),
                };
                let mut m = AppMessage::new(Kind::Request { responses });
                m.summary = summary;
                m.op = op.into();
                Outcome::End(m)
            }
            Direction::Request => request_message(h[0], &body, &mut half.unit),
            Direction::Response => {
                let first = half.messages == 1;
                response_message(h[0], &body, &mut half.unit, first, ready_seen)
            }
        };
        let half = &mut self.halves[idx(dir)];
        half.body = body;
        half.body.clear();
        if half.body.capacity() > 4 * KEPT {
            half.body = Vec::new();
        }
        if let Outcome::End(m) = &outcome {
            let mut m = m.clone();
            m.len = half.len;
            half.len = 0;
            half.messages = 0;
            half.unit = Unit::default();
            if dir == Direction::Request && matches!(m.op.as_str(), "SSLRequest" | "GSSENCRequest")
            {
                self.halves[1].phase = Phase::SslAnswer;
            }
            if dir == Direction::Response && h[0] == b'Z' {
                self.ready_seen = true;
            }
            return Ok(Outcome::End(m));
        }
        Ok(outcome)
    }

    pub(crate) fn missing(
        &mut self,
        dir: Direction,
        n: u64,
    ) -> Result<Option<AppMessage>, AppError> {
        let half = &mut self.halves[idx(dir)];
        let header_len = if half.phase == Phase::Untyped { 8 } else { 5 };
        if matches!(half.phase, Phase::Typed | Phase::Untyped)
            && half.have == header_len
            && n <= half.left
        {
            // Kept bytes after a hole would be misplaced: keep no more.
            half.body.resize(KEPT.max(half.body.len()), 0);
            half.left -= n;
            half.len += n;
            if half.left == 0
                && let Outcome::End(m) = self.message(dir)?
            {
                return Ok(Some(m));
            }
            return Ok(None);
        }
        if half.phase == Phase::Tunnel {
            let mut m = AppMessage::new(Kind::Tunnel);
            m.len = n;
            m.complete = false;
            m.summary = format!("{} of TLS (not captured)", size(n));
            return Ok(Some(m));
        }
        Err(lost_sync(P, dir, n))
    }

    pub(crate) fn partial(&self, dir: Direction) -> bool {
        self.halves[idx(dir)].len > 0
    }

    pub(crate) fn finish(&mut self, dir: Direction) -> Option<AppMessage> {
        let half = &mut self.halves[idx(dir)];
        if half.len == 0 || half.phase == Phase::Tunnel {
            return None;
        }
        let unit = std::mem::take(&mut half.unit);
        let mut m = match dir {
            Direction::Request => request_summary(unit, "incomplete request"),
            Direction::Response => response_summary(unit, Kind::Response),
        };
        m.len = half.len;
        m.cut_short();
        *half = Half {
            phase: half.phase,
            ..Half::default()
        };
        Some(m)
    }
}

/// The first words of a query, whitespace collapsed.
fn first_words(q: &[u8]) -> String {
    let text =
        String::from_utf8_lossy(q.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
    let mut s = String::new();
    for w in text.split_whitespace() {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(w);
        if s.len() > 80 {
            break;
        }
    }
    s
}

fn request_message(t: u8, body: &[u8], unit: &mut Unit) -> Outcome {
    match t {
        b'Q' => {
            unit.query = Some(first_words(body));
            Outcome::End(request_summary(std::mem::take(unit), ""))
        }
        b'P' => {
            // Statement name, then the query.
            let query = body.splitn(2, |&b| b == 0).nth(1).unwrap_or_default();
            unit.query = Some(first_words(query));
            Outcome::Continue
        }
        b'S' => {
            let prepared = unit.query.is_none();
            let mut m = request_summary(std::mem::take(unit), "execute a prepared statement");
            if !prepared {
                m.summary.push_str(" (extended)");
            }
            Outcome::End(m)
        }
        b'p' => Outcome::End(request_summary(Unit::default(), "password or SASL message")),
        b'F' => Outcome::End(request_summary(Unit::default(), "FunctionCall")),
        b'd' => {
            unit.copy_bytes += body.len() as u64;
            Outcome::Continue
        }
        b'c' | b'f' => {
            let what = if t == b'c' {
                "COPY data"
            } else {
                "COPY failed"
            };
            let s = format!("{what}, {}", size(unit.copy_bytes));
            *unit = Unit::default();
            Outcome::End(request_summary(Unit::default(), &s))
        }
        b'X' => {
            let mut m = request_summary(Unit::default(), "Terminate");
            m.kind = Kind::Request { responses: 0 };
            Outcome::End(m)
        }
        _ => Outcome::Continue, // B, D, E, C, H
    }
}

fn request_summary(unit: Unit, otherwise: &str) -> AppMessage {
    let mut m = AppMessage::new(Kind::Request { responses: 1 });
    match unit.query {
        Some(q) => {
            m.op = q
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            m.summary = q;
        }
        None => {
            m.op = otherwise.split(',').next().unwrap_or_default().to_string();
            m.summary = otherwise.to_string();
        }
    }
    m
}

fn response_message(t: u8, body: &[u8], unit: &mut Unit, first: bool, ready_seen: bool) -> Outcome {
    match t {
        b'Z' => {
            unit.ready = body.first().copied();
            Outcome::End(response_summary(std::mem::take(unit), Kind::Response))
        }
        b'C' => {
            unit.tag_count += 1;
            if unit.tags.len() < 3 {
                unit.tags
                    .push(show(body.split(|&b| b == 0).next().unwrap_or_default(), 40));
            }
            Outcome::Continue
        }
        b'D' => {
            unit.rows += 1;
            Outcome::Continue
        }
        b'E' => {
            let mut code = "";
            let mut text = String::new();
            let mut severity = String::from("ERROR");
            for field in body.split(|&b| b == 0) {
                match field.split_first() {
                    Some((b'C', v)) => code = std::str::from_utf8(v).unwrap_or(""),
                    Some((b'M', v)) => text = show(v, 80),
                    Some((b'V', v)) => severity = show(v, 10),
                    _ => {}
                }
            }
            unit.error = Some(format!("{severity} {code}: {text}"));
            if ready_seen {
                Outcome::Continue
            } else {
                Outcome::End(response_summary(std::mem::take(unit), Kind::Response))
            }
        }
        b'R' => {
            let code = body
                .get(..4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            let (what, waits) = match code {
                Some(0) => ("authenticated".to_string(), false),
                Some(12) => ("SASL final".to_string(), false),
                Some(3) => ("cleartext password requested".to_string(), true),
                Some(5) => ("MD5 password requested".to_string(), true),
                Some(10) => (
                    format!(
                        "SASL {} requested",
                        show(
                            body.get(4..)
                                .unwrap_or_default()
                                .split(|&b| b == 0)
                                .next()
                                .unwrap_or_default(),
                            20
                        )
                    ),
                    true,
                ),
                Some(11) => ("SASL continue".to_string(), true),
                Some(c) => (format!("authentication request {c}"), true),
                None => ("authentication".to_string(), false),
            };
            unit.auth = Some(what);
            if waits {
                Outcome::End(response_summary(std::mem::take(unit), Kind::Response))
            } else {
                Outcome::Continue
            }
        }
        b'G' | b'W' => {
            unit.auth = Some("ready for COPY data".into());
            Outcome::End(response_summary(std::mem::take(unit), Kind::Response))
        }
        b'A' if first => {
            let mut m = AppMessage::new(Kind::Push);
            let mut parts = body.get(4..).unwrap_or_default().split(|&b| b == 0);
            m.summary = format!("NOTIFY {}", show(parts.next().unwrap_or_default(), 40));
            Outcome::End(m)
        }
        _ => Outcome::Continue,
    }
}

fn response_summary(unit: Unit, kind: Kind) -> AppMessage {
    let mut m = AppMessage::new(kind);
    m.error = unit.error.is_some();
    m.summary = if let Some(e) = unit.error {
        e
    } else if !unit.tags.is_empty() {
        let mut s = unit.tags.join("; ");
        if unit.tag_count > unit.tags.len() as u32 {
            s.push_str(&format!(
                "; +{} more",
                unit.tag_count - unit.tags.len() as u32
            ));
        }
        s
    } else if let Some(a) = unit.auth {
        match unit.ready {
            Some(_) => format!("{a}, ready"),
            None => a,
        }
    } else if unit.rows > 0 {
        format!("{} rows", unit.rows)
    } else if unit.ready.is_some() {
        "ready".into()
    } else {
        "no result".into()
    };
    m
}

/// Recognition: a startup message (protocol 3.0) or an SSL/GSS request.
pub(crate) fn evidence(client: &[u8], _server: &[u8]) -> Option<Evidence> {
    let h = client.get(..8)?;
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    match code {
        c if PROTOCOL_3_X.contains(&c)
            && (9..=MAX_STARTUP).contains(&len)
            && client
                .get(8..12)
                .is_some_and(|p| p.iter().all(|b| b.is_ascii_graphic())) =>
        {
            Some(Evidence::Strong(format!(
                "PostgreSQL: a startup message, protocol 3.{}",
                c - PROTOCOL_3
            )))
        }
        SSL_REQUEST if len == 8 => Some(Evidence::Strong("PostgreSQL: an SSL request".into())),
        GSS_REQUEST if len == 8 => Some(Evidence::Strong(
            "PostgreSQL: a GSS encryption request".into(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{decode, robust_behind, split_decode, summaries};
    use super::super::{Session, decode_stream};
    use super::*;
    use proptest::prelude::*;

    fn typed(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup(user: &str) -> Vec<u8> {
        let mut body = PROTOCOL_3.to_be_bytes().to_vec();
        body.extend_from_slice(format!("user\0{user}\0database\0db\0\0").as_bytes());
        let mut m = (body.len() as u32 + 4).to_be_bytes().to_vec();
        m.extend(body);
        m
    }

    fn ready() -> Vec<u8> {
        typed(b'Z', b"I")
    }

    #[test]
    fn startup_queries_and_errors() {
        let mut reqs = startup("alice");
        reqs.extend(typed(b'Q', b"SELECT  1,\n 2\0"));
        reqs.extend(typed(b'Q', b"select * from nope\0"));
        reqs.extend(typed(b'P', b"\0INSERT INTO t VALUES ($1)\0\0\0"));
        reqs.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
        reqs.extend(typed(b'E', b"\0\0\0\0\0"));
        reqs.extend(typed(b'S', b""));
        reqs.extend(typed(b'X', b""));
        let mut resps = typed(b'R', &0u32.to_be_bytes());
        resps.extend(typed(b'S', b"server_version\x0015\0"));
        resps.extend(typed(b'K', &[0; 8]));
        resps.extend(ready());
        resps.extend(typed(b'T', &[0, 0]));
        resps.extend(typed(b'D', &[0, 0]));
        resps.extend(typed(b'C', b"SELECT 1\0"));
        resps.extend(ready());
        resps.extend(typed(
            b'E',
            b"SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0",
        ));
        resps.extend(ready());
        resps.extend(typed(b'1', b""));
        resps.extend(typed(b'2', b""));
        resps.extend(typed(b'C', b"INSERT 0 1\0"));
        resps.extend(ready());
        let (req, resp) = decode(P, &reqs, &resps);
        assert_eq!(
            summaries(&req),
            [
                "startup user=alice database=db",
                "SELECT 1, 2",
                "select * from nope",
                "INSERT INTO t VALUES ($1) (extended)",
                "Terminate"
            ]
        );
        assert_eq!(req[2].op, "SELECT");
        assert_eq!(req[4].kind, Kind::Request { responses: 0 });
        assert_eq!(req.iter().map(|m| m.len).sum::<u64>(), reqs.len() as u64);
        assert_eq!(
            summaries(&resp),
            [
                "authenticated, ready",
                "SELECT 1",
                "ERROR 42P01: relation \"nope\" does not exist",
                "INSERT 0 1"
            ]
        );
        assert!(resp[2].error);
        assert_eq!(resp.iter().map(|m| m.len).sum::<u64>(), resps.len() as u64);
    }

    #[test]
    fn password_exchange_and_ssl_refusal() {
        let mut reqs = SSL_REQUEST_BYTES.to_vec();
        reqs.extend(startup("bob"));
        reqs.extend(typed(b'p', b"md5abc\0"));
        let mut resps = b"N".to_vec();
        let mut md5 = 5u32.to_be_bytes().to_vec();
        md5.extend_from_slice(b"salt");
        resps.extend(typed(b'R', &md5));
        resps.extend(typed(b'R', &0u32.to_be_bytes()));
        resps.extend(ready());
        let (req, resp) = decode(P, &reqs, &resps);
        assert_eq!(
            summaries(&req),
            [
                "SSLRequest",
                "startup user=bob database=db",
                "password or SASL message"
            ]
        );
        assert_eq!(
            summaries(&resp),
            [
                "encryption refused",
                "MD5 password requested",
                "authenticated, ready"
            ]
        );
    }

    const SSL_REQUEST_BYTES: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

    #[test]
    fn ssl_accepted_turns_to_tunnel_and_startup_error_ends_the_answer() {
        let mut s = Session::new(P);
        decode_stream(&mut s, Direction::Request, &SSL_REQUEST_BYTES);
        let (m, _) = decode_stream(&mut s, Direction::Response, b"S\x16\x03\x01");
        assert_eq!(
            m.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [Kind::Response, Kind::Tunnel]
        );
        let (_, resp) = decode(
            P,
            &startup("x"),
            &typed(b'E', b"SFATAL\0VFATAL\0C28000\0Mno such role\0\0"),
        );
        assert_eq!(summaries(&resp), ["FATAL 28000: no such role"]);
    }

    #[test]
    fn bad_lengths_are_refused_not_allocated() {
        for bad in [
            &[0u8, 0, 0, 4, 0, 3, 0, 0][..],
            &[0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0],
            &[0, 0, 0, 9, 1, 2, 3, 4],
        ] {
            let (_, e) = decode_stream(&mut Session::new(P), Direction::Request, bad);
            assert!(e.is_some(), "{bad:?}");
        }
        let mut reqs = startup("x");
        reqs.extend_from_slice(&[b'Q', 0x7f, 0xff, 0xff, 0xff]);
        let (_, e) = decode_stream(&mut Session::new(P), Direction::Request, &reqs);
        assert!(e.is_some());
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            &[b'Z', 0, 0, 0, 3],
        );
        assert!(e.is_some());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            queries in prop::collection::vec("[a-z ]{1,60}", 0..10),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut reqs = startup("u");
            let mut resps = typed(b'R', &0u32.to_be_bytes());
            resps.extend(ready());
            for q in &queries {
                let mut b = q.clone().into_bytes();
                b.push(0);
                reqs.extend(typed(b'Q', &b));
                resps.extend(typed(b'T', &[0, 0]));
                resps.extend(typed(b'D', &[0, 0]));
                resps.extend(typed(b'C', b"SELECT 1\0"));
                resps.extend(ready());
            }
            let whole = split_decode(P, &reqs, &resps, &[]);
            prop_assert_eq!(whole.0.len(), queries.len() + 1);
            prop_assert_eq!(whole.1.len(), queries.len() + 1);
            prop_assert_eq!(split_decode(P, &reqs, &resps, &cuts), whole);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..400),
            b in prop::collection::vec(any::<u8>(), 0..400),
            cut in any::<usize>(),
        ) {
            robust_behind(P, &a, &b, cut, &startup("u"), b"");
        }
    }
}
