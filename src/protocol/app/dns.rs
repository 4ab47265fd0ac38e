//! DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is a 2-byte
//! big-endian length, then the message.
//!
//! Responses carry the ID of their query and may come out of order, so
//! messages carry it as their pairing key. The first [`KEPT`] bytes of each
//! message are kept to summarise it (the question and the first answer);
//! the rest is counted.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    AppError, AppMessage, AppProtocol, Direction, Evidence, Kind, Step, lost_sync, malformed,
};

const P: AppProtocol = AppProtocol::Dns;
/// Bytes of a message kept for its summary.
const KEPT: usize = 2048;
/// The DNS header.
const HEADER: usize = 12;

#[derive(Debug, Default)]
struct Half {
    /// Bytes of the length prefix seen (0, 1 or 2) and their value.
    prefix: [u8; 2],
    have_prefix: usize,
    /// Message bytes left, once the prefix is read.
    left: u16,
    kept: Vec<u8>,
    len: u64,
    /// Bytes of this message were not captured: keep no more (they would
    /// be misplaced).
    gap: bool,
}

/// Both directions of a DNS-over-TCP connection.
#[derive(Debug, Default)]
pub(crate) struct Dns {
    halves: [Half; 2],
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl Dns {
    pub(crate) fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
        let half = &mut self.halves[idx(dir)];
        let mut at = 0;
        while at < data.len() {
            if half.have_prefix < 2 {
                half.prefix[half.have_prefix] = data[at];
                half.have_prefix += 1;
                at += 1;
                half.len += 1;
                if half.have_prefix == 2 {
                    let n = u16::from_be_bytes(half.prefix);
                    if usize::from(n) < HEADER {
                        return Err(malformed(
                            P,
                            dir,
                            format!("a message of {n} bytes, shorter than a DNS header"),
                        ));
                    }
                    half.left = n;
                }
                continue;
            }
            let n = usize::from(half.left).min(data.len() - at);
            let keep = if half.gap {
                0
            } else {
                KEPT.saturating_sub(half.kept.len()).min(n)
            };
            half.kept.extend_from_slice(&data[at..at + keep]);
            if half.kept.len() >= HEADER && half.kept.len() - keep < HEADER {
                check_header(&half.kept, dir)?;
            }
            half.left -= n as u16;
            at += n;
            half.len += n as u64;
            if half.left == 0 {
                let m = summarize(&half.kept, dir, half.len, true);
                *half = Half {
                    kept: std::mem::take(&mut half.kept),
                    ..Half::default()
                };
                half.kept.clear();
                return Ok(Step {
                    consumed: at,
                    message: Some(m),
                });
            }
        }
        Ok(Step {
            consumed: at,
            message: None,
        })
    }

    pub(crate) fn missing(
        &mut self,
        dir: Direction,
        n: u64,
    ) -> Result<Option<AppMessage>, AppError> {
        let half = &mut self.halves[idx(dir)];
        // Missing bytes past the header of a message of known length.
        if half.have_prefix == 2 && half.kept.len() >= HEADER && n <= u64::from(half.left) {
            half.left -= n as u16;
            half.len += n;
            half.gap = true;
            if half.left == 0 {
                let m = summarize(&half.kept, dir, half.len, false);
                *half = Half::default();
                return Ok(Some(m));
            }
            return Ok(None);
        }
        Err(lost_sync(P, dir, n))
    }

    pub(crate) fn partial(&self, dir: Direction) -> bool {
        self.halves[idx(dir)].len > 0
    }

    pub(crate) fn finish(&mut self, dir: Direction) -> Option<AppMessage> {
        let half = &mut self.halves[idx(dir)];
        if half.len == 0 {
            return None;
        }
        let mut m = summarize(&half.kept, dir, half.len, true);
        m.cut_short();
        *half = Half::default();
        Some(m)
    }
}

fn check_header(h: &[u8], dir: Direction) -> Result<(), AppError> {
    let qr = h[2] & 0x80 != 0;
    let opcode = (h[2] >> 3) & 0x0f;
    let qdcount = u16::from_be_bytes([h[4], h[5]]);
    if qr != (dir == Direction::Response) {
        return Err(malformed(
            P,
            dir,
            if qr {
                "a response from the client"
            } else {
                "a query from the server"
            },
        ));
    }
    if opcode > 6 || opcode == 3 {
        return Err(malformed(P, dir, format!("unknown opcode {opcode}")));
    }
    if dir == Direction::Request && opcode == 0 && qdcount != 1 {
        return Err(malformed(
            P,
            dir,
            format!("a query with {qdcount} questions"),
        ));
    }
    Ok(())
}

/// The message from its first bytes (`full`: all of it is there).
fn summarize(msg: &[u8], dir: Direction, len: u64, full: bool) -> AppMessage {
    let mut m = AppMessage::new(match dir {
        Direction::Request => Kind::Request { responses: 1 },
        Direction::Response => Kind::Response,
    });
    m.len = len;
    if msg.len() < HEADER {
        m.summary = "DNS message".into();
        return m;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    m.key = Some(u32::from(id));
    let rcode = msg[3] & 0x0f;
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = HEADER;
    let question = if qdcount > 0 {
        name(msg, &mut at).and_then(|n| {
            let t = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
            at += 4;
            Some(format!(
                "{} {}",
                type_name(t),
                if n.is_empty() { ".".into() } else { n }
            ))
        })
    } else {
        None
    };
    let question = question.unwrap_or_else(|| "(no question)".into());
    match dir {
        Direction::Request => {
            m.op = question.clone();
            m.summary = question;
        }
        Direction::Response => {
            m.error = rcode != 0;
            let mut s = format!("{} {question}", rcode_name(rcode));
            if ancount > 0 {
                let plural = if ancount == 1 { "" } else { "s" };
                s.push_str(&format!(", {ancount} answer{plural}"));
                if let Some(first) = (qdcount == 1).then(|| first_answer(msg, at)).flatten() {
                    s.push_str(&format!(": {first}"));
                }
            }
            if !full {
                s.push_str(" (partly captured)");
            }
            m.summary = s;
        }
    }
    m
}

/// A domain name at `*at`, following compression pointers (a bounded number
/// of times); `*at` moves past it.
fn name(msg: &[u8], at: &mut usize) -> Option<String> {
    let mut out = String::new();
    let mut pos = *at;
    let mut jumped = false;
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len {
            0 => {
                if !jumped {
                    *at = pos + 1;
                }
                return Some(out);
            }
            1..=63 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&super::show(label, 63));
                if out.len() > 255 {
                    return None;
                }
                pos += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let target = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(pos + 1)?]));
                if !jumped {
                    *at = pos + 2;
                }
                jumped = true;
                pos = target;
            }
            _ => return None,
        }
    }
    None
}

fn first_answer(msg: &[u8], mut at: usize) -> Option<String> {
    name(msg, &mut at)?;
    let field = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *msg.get(at + i)?,
            *msg.get(at + i + 1)?,
        ]))
    };
    let t = field(0)?;
    let rdlen = usize::from(field(8)?);
    let rdata_at = at + 10;
    let rdata = msg.get(rdata_at..rdata_at + rdlen)?;
    Some(match (t, rdata.len()) {
        (1, 4) => Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string(),
        (28, 16) => {
            let b: [u8; 16] = rdata.try_into().ok()?;
            Ipv6Addr::from(b).to_string()
        }
        (5 | 2 | 12, _) => {
            let mut p = rdata_at;
            format!("{} {}", type_name(t), name(msg, &mut p)?)
        }
        _ => format!("{} ({} B)", type_name(t), rdlen),
    })
}

fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        65 => "HTTPS".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

fn rcode_name(r: u8) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Recognition: a length that matches a query header with one question
/// whose name parses.
pub(crate) fn evidence(client: &[u8], _server: &[u8]) -> Option<Evidence> {
    let len = usize::from(u16::from_be_bytes([*client.first()?, *client.get(1)?]));
    let msg = client.get(2..2 + len)?;
    if len < HEADER + 5 || check_header(msg, Direction::Request).is_err() || msg[2] & 0x78 != 0 {
        return None;
    }
    let mut at = HEADER;
    name(msg, &mut at)?;
    (at + 4 <= len).then(|| {
        Evidence::Strong("DNS over TCP: a 2-byte length and a query with one question".into())
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{decode, robust, split_decode, summaries};
    use super::super::{Session, decode_stream};
    use super::*;
    use proptest::prelude::*;

    fn query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in qname.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    fn answer(q: &[u8], rcode: u8, addr: Option<[u8; 4]>) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        if let Some(a) = addr {
            m[7] = 1;
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            m.extend_from_slice(&a);
        }
        m
    }

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        msgs.iter()
            .flat_map(|m| {
                let mut f = (m.len() as u16).to_be_bytes().to_vec();
                f.extend_from_slice(m);
                f
            })
            .collect()
    }

    #[test]
    fn queries_and_answers_pair_by_id() {
        let q1 = query(7, "example.test", 1);
        let q2 = query(8, "nope.test", 28);
        let reqs = framed(&[q1.clone(), q2.clone()]);
        // Answered out of order.
        let resps = framed(&[answer(&q2, 3, None), answer(&q1, 0, Some([10, 0, 0, 1]))]);
        let (req, resp) = decode(P, &reqs, &resps);
        assert_eq!(summaries(&req), ["A example.test", "AAAA nope.test"]);
        assert_eq!(
            req.iter().map(|m| m.key).collect::<Vec<_>>(),
            [Some(7), Some(8)]
        );
        assert_eq!(
            summaries(&resp),
            [
                "NXDOMAIN AAAA nope.test",
                "NOERROR A example.test, 1 answer: 10.0.0.1"
            ]
        );
        assert_eq!(
            resp.iter().map(|m| m.key).collect::<Vec<_>>(),
            [Some(8), Some(7)]
        );
        assert!(resp[0].error && !resp[1].error);
    }

    #[test]
    fn bad_lengths_and_directions_are_refused() {
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Request,
            &[0, 5, 1, 2, 3, 4, 5],
        );
        assert!(e.is_some());
        let q = query(1, "a.b", 1);
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Request,
            &framed(&[answer(&q, 0, None)]),
        );
        assert!(e.is_some());
        // A compression loop is cut off, not followed forever.
        let mut looped = q.clone();
        looped.truncate(HEADER);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let (m, e) = decode_stream(&mut Session::new(P), Direction::Request, &framed(&[looped]));
        assert_eq!((m.len(), e), (1, None));
        assert_eq!(m[0].summary, "(no question)");
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            names in prop::collection::vec(("[a-z]{1,20}", any::<u16>()), 0..10),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let qs: Vec<Vec<u8>> = names.iter().map(|(n, id)| query(*id, &format!("{n}.test"), 1)).collect();
            let rs: Vec<Vec<u8>> = qs.iter().map(|q| answer(q, 0, Some([127, 0, 0, 1]))).collect();
            let (reqs, resps) = (framed(&qs), framed(&rs));
            let whole = split_decode(P, &reqs, &resps, &[]);
            prop_assert_eq!(whole.0.len(), qs.len());
            prop_assert_eq!(whole.1.len(), rs.len());
            prop_assert_eq!(split_decode(P, &reqs, &resps, &cuts), whole);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..400),
            b in prop::collection::vec(any::<u8>(), 0..400),
            cut in any::<usize>(),
        ) {
            robust(P, &a, &b, cut);
            // Random bodies behind valid headers exercise the name reader.
            let mut q = query(1, "x.y", 1);
            q.truncate(HEADER);
            q.extend_from_slice(&a);
            let mut r = q.clone();
            r[2] = 0x81;
            robust(P, &framed(&[q]), &framed(&[r]), cut);
        }
    }
}
