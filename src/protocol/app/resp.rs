//! RESP, the Redis serialization protocol (RESP2 and RESP3).
//!
//! A request is an array of bulk strings (`*2\r\n$4\r\nINCR\r\n$2\r\np1\r\n`)
//! or an inline command line (`PING\r\n`); a response is one value, however
//! nested. Aggregates are followed with a stack of element counts (at most
//! [`MAX_DEPTH`](super::MAX_DEPTH) deep); bulk strings are counted, and only
//! their first bytes kept for the summary.

use super::lines::{Both, Lines, Stage};
use super::{
    AppError, AppMessage, AppProtocol, Block, Direction, Evidence, Kind, Line, MAX_DEPTH, MAX_LINE,
    malformed, parse_i64, show, size, too_large,
};

const P: AppProtocol = AppProtocol::Resp;
/// Largest bulk string, Redis's `proto-max-bulk-len` default (512 MiB).
const MAX_BULK: u64 = 512 * 1024 * 1024;
/// Elements of a message shown in its summary.
const SHOWN: usize = 4;
/// Bytes of a bulk string kept to show it.
const KEPT: usize = 40;

/// One element seen, for the summary.
#[derive(Debug, Clone)]
enum Leaf {
    /// Bulk string: its first bytes and full length.
    Bulk(Vec<u8>, u64),
    /// A simple value line, with its type byte.
    Simple(Vec<u8>),
    /// A null.
    Null,
}

/// One direction.
#[derive(Debug)]
pub(crate) struct Half {
    state: Stage,
    line: Line,
    /// Elements left in each open aggregate, outermost first.
    stack: Vec<u64>,
    /// Bytes of the message so far.
    len: u64,
    /// Type byte of the top-level value (0 for an inline command).
    top: u8,
    /// Element count of the top-level aggregate.
    count: i64,
    leaves: Vec<Leaf>,
    /// Leaves seen (shown or not).
    leaf_count: u64,
    /// The bulk being read is one of the leaves kept: keep its first bytes.
    keeping: bool,
}

impl Default for Half {
    fn default() -> Self {
        Half {
            state: Stage::Line,
            line: Line::default(),
            stack: Vec::new(),
            len: 0,
            top: 0,
            count: 0,
            leaves: Vec::new(),
            leaf_count: 0,
            keeping: false,
        }
    }
}

/// Both directions of a RESP connection. Missing bytes are skipped
/// inside a bulk string's data (not its CR LF, which is checked).
pub(crate) type Resp = Both<Half>;

impl Lines for Half {
    const P: AppProtocol = P;
    const MAX_LINE: usize = MAX_LINE;
    const BLOCK: &'static str = "bulk string";

    fn parts(&mut self) -> (&mut Stage, &mut Line, &mut u64) {
        (&mut self.state, &mut self.line, &mut self.len)
    }

    fn on_line(&mut self, dir: Direction) -> Result<bool, AppError> {
        self.read_line(dir)
    }

    fn on_block_bytes(&mut self, content: &[u8]) {
        if self.keeping
            && let Some(Leaf::Bulk(kept, _)) = self.leaves.last_mut()
        {
            let take = KEPT.saturating_sub(kept.len()).min(content.len());
            kept.extend_from_slice(&content[..take]);
        }
    }

    fn on_block_end(&mut self) -> bool {
        self.element_done()
    }

    fn end(&mut self, dir: Direction) -> Option<AppMessage> {
        self.end_message(dir)
    }

    fn held(&self) -> u64 {
        self.len
    }

    fn cut(&mut self, dir: Direction) -> Option<AppMessage> {
        self.end_message(dir)
    }
}

impl Half {
    /// A complete line: returns whether the message ended.
    fn read_line(&mut self, dir: Direction) -> Result<bool, AppError> {
        let line = std::mem::take(&mut self.line);
        let r = self.on_text(dir, line.text());
        self.line = line;
        r
    }

    fn on_text(&mut self, dir: Direction, line: &[u8]) -> Result<bool, AppError> {
        let at_top = self.stack.is_empty() && self.top == 0 && self.leaf_count == 0;
        if at_top && line.is_empty() {
            return Ok(false); // empty lines between commands are ignored by Redis
        }
        let Some((&t, body)) = line.split_first() else {
            return Err(malformed(P, dir, "empty line inside a value"));
        };
        if at_top {
            self.top = t;
        }
        if dir == Direction::Request && at_top && t != b'*' {
            // Inline command: words separated by spaces.
            if line.iter().any(|&b| b < b' ' && b != b'\t') {
                return Err(malformed(
                    P,
                    dir,
                    format!("control bytes in an inline command {:?}", show(line, 30)),
                ));
            }
            self.top = 0;
            for w in line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|w| !w.is_empty())
            {
                self.leaf(Leaf::Bulk(w[..w.len().min(KEPT)].to_vec(), w.len() as u64));
            }
            return Ok(true);
        }
        if dir == Direction::Request && t != b'*' && t != b'$' {
            return Err(malformed(
                P,
                dir,
                format!("a command holds bulk strings, not {:?}", show(line, 30)),
            ));
        }
        match t {
            b'+' | b'-' | b':' | b',' | b'#' | b'(' => {
                if t == b':' && parse_i64(body).is_none() {
                    return Err(malformed(
                        P,
                        dir,
                        format!("bad integer {:?}", show(line, 30)),
                    ));
                }
                let kept = line[..line.len().min(KEPT + 1)].to_vec();
                self.leaf(Leaf::Simple(kept));
                Ok(self.element_done())
            }
            b'_' => {
                self.leaf(Leaf::Null);
                Ok(self.element_done())
            }
            b'$' | b'!' | b'=' => {
                let n = parse_i64(body)
                    .ok_or_else(|| malformed(P, dir, format!("bad length {:?}", show(line, 30))))?;
                if n == -1 && t == b'$' {
                    self.leaf(Leaf::Null);
                    return Ok(self.element_done());
                }
                let n =
                    u64::try_from(n).map_err(|_| malformed(P, dir, format!("bad length {n}")))?;
                if n > MAX_BULK {
                    return Err(too_large(P, dir, "bulk string", MAX_BULK as usize));
                }
                self.keeping = self.leaf(Leaf::Bulk(Vec::new(), n));
                self.state = Stage::Block(Block::new(n));
                Ok(false)
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_i64(body)
                    .ok_or_else(|| malformed(P, dir, format!("bad count {:?}", show(line, 30))))?;
                if at_top {
                    self.count = n;
                }
                if n == -1 && t == b'*' {
                    self.leaf(Leaf::Null);
                    return Ok(self.element_done());
                }
                let n =
                    u64::try_from(n).map_err(|_| malformed(P, dir, format!("bad count {n}")))?;
                let elements = match t {
                    b'%' => n.saturating_mul(2),
                    // An attribute's pairs, then the value it is about.
                    b'|' => n.saturating_mul(2).saturating_add(1),
                    _ => n,
                };
                if elements == 0 {
                    return Ok(self.element_done());
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_large(P, dir, "nesting of aggregates", MAX_DEPTH));
                }
                self.stack.push(elements);
                Ok(false)
            }
            _ => Err(malformed(
                P,
                dir,
                format!("unknown type byte {:?}", show(&[t], 4)),
            )),
        }
    }

    /// Records a leaf; returns whether it is kept for the summary.
    fn leaf(&mut self, leaf: Leaf) -> bool {
        self.leaf_count += 1;
        let keep = self.leaves.len() < SHOWN + 1;
        if keep {
            self.leaves.push(leaf);
        }
        keep
    }

    /// One element ended: close the aggregates it completes. Returns
    /// whether the whole message ended.
    fn element_done(&mut self) -> bool {
        while let Some(top) = self.stack.last_mut() {
            *top -= 1;
            if *top > 0 {
                return false;
            }
            self.stack.pop();
        }
        true
    }

    /// The message that just ended (or the one cut short).
    fn end_message(&mut self, dir: Direction) -> Option<AppMessage> {
        let leaves = std::mem::take(&mut self.leaves);
        let count = self.leaf_count;
        let mut m = AppMessage::new(Kind::Response);
        m.len = self.len;
        match dir {
            Direction::Request => {
                let name = match leaves.first() {
                    Some(Leaf::Bulk(b, _)) => String::from_utf8_lossy(b).to_ascii_uppercase(),
                    _ => String::new(),
                };
                let args = count.saturating_sub(1);
                let responses = match name.as_str() {
                    "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => args.max(1),
                    "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => args.max(1),
                    _ => 1,
                };
                m.kind = Kind::Request {
                    responses: u32::try_from(responses).unwrap_or(u32::MAX),
                };
                let mut s = show(name.as_bytes(), 40);
                for leaf in leaves.iter().skip(1).take(SHOWN - 1) {
                    s.push(' ');
                    s.push_str(&render(leaf, false));
                }
                if count > SHOWN as u64 {
                    s.push_str(&format!(" …(+{})", count - SHOWN as u64));
                }
                m.summary = s;
                m.op = name;
            }
            Direction::Response => {
                m.error = matches!(self.top, b'-' | b'!');
                if self.top == b'>' {
                    m.kind = Kind::Push;
                }
                m.summary = match self.top {
                    b'*' | b'~' | b'>' | b'%' | b'|' if self.count >= 0 => {
                        let mut s = format!("{}{}", self.top as char, self.count);
                        for leaf in leaves.iter().take(SHOWN) {
                            s.push(' ');
                            s.push_str(&render(leaf, true));
                        }
                        if count > SHOWN as u64 {
                            s.push_str(" …");
                        }
                        s
                    }
                    _ => leaves.first().map(|l| render(l, true)).unwrap_or_default(),
                };
            }
        }
        *self = Half {
            line: std::mem::take(&mut self.line),
            ..Half::default()
        };
        Some(m)
    }
}

/// A leaf for a summary: `p1`, `"hello"` (quoted in responses),
/// `<1.0 KiB>` when long or binary, `(nil)`, `:3`, `+OK`.
fn render(leaf: &Leaf, quote: bool) -> String {
    match leaf {
        Leaf::Null => "(nil)".into(),
        Leaf::Simple(s) => show(s, KEPT),
        Leaf::Bulk(b, total) => {
            let printable = b.iter().all(|c| (b' '..=b'~').contains(c));
            if *total > 32 || !printable || (b.len() as u64) < *total {
                format!("<{}>", size(*total))
            } else if quote {
                format!("\"{}\"", show(b, 32))
            } else {
                show(b, 32)
            }
        }
    }
}

/// Recognition: a command as an array of bulk strings is strong evidence;
/// an inline command answered by a RESP value is weak.
pub(crate) fn evidence(client: &[u8], server: &[u8]) -> Option<Evidence> {
    let array = client.first() == Some(&b'*')
        && client.len() >= 4
        && client[1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
            > 0
        && memchr::memmem::find(&client[..client.len().min(32)], b"\r\n$").is_some();
    if array {
        return Some(Evidence::Strong(
            "RESP: a command as an array of bulk strings".into(),
        ));
    }
    // The cheap test first: most connections fail it.
    if !matches!(
        server.first(),
        Some(b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'%')
    ) {
        return None;
    }
    let inline = client
        .iter()
        .take_while(|&&b| b != b'\r' && b != b'\n')
        .all(|&b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_' || b == b'-' || b == b':');
    let first_word = client
        .split(|&b| b == b' ' || b == b'\r')
        .next()
        .unwrap_or_default();
    if inline
        && client.contains(&b'\n')
        && first_word.iter().all(u8::is_ascii_alphabetic)
        && matches!(
            server.first(),
            Some(b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'%')
        )
        && server.ends_with(b"\r\n")
    {
        return Some(Evidence::Weak(
            "RESP: an inline command answered with a RESP value".into(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{decode, robust_behind, split_decode, summaries};
    use super::super::{Session, decode_stream};
    use super::*;
    use proptest::prelude::*;

    fn command(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn pipelined_commands_and_their_replies() {
        let mut reqs = command(&[b"INCR", b"p1"]);
        reqs.extend(command(&[b"set", b"k", &[b'x'; 100]]));
        reqs.extend_from_slice(b"PING\r\n");
        reqs.extend(command(&[b"GET", b"nope"]));
        reqs.extend(command(&[b"LRANGE", b"l", b"0", b"-1"]));
        let resps = b":3\r\n+OK\r\n+PONG\r\n$-1\r\n*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n";
        let (req, resp) = decode(P, &reqs, resps);
        assert_eq!(
            summaries(&req),
            [
                "INCR p1",
                "SET k <100 B>",
                "PING",
                "GET nope",
                "LRANGE l 0 -1"
            ]
        );
        assert_eq!(req[1].op, "SET");
        assert_eq!(
            summaries(&resp),
            [":3", "+OK", "+PONG", "(nil)", "*2 \"a\" :1 (nil)"]
        );
        assert_eq!(resp.iter().map(|m| m.len).sum::<u64>(), resps.len() as u64);
    }

    #[test]
    fn errors_nulls_and_resp3_types() {
        let (_, resp) = decode(
            P,
            b"",
            b"-ERR unknown command 'FOO'\r\n*-1\r\n%1\r\n+a\r\n:1\r\n|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyo\r\n_\r\n",
        );
        assert_eq!(
            summaries(&resp),
            [
                "-ERR unknown command 'FOO'",
                "(nil)",
                "%1 +a :1",
                "|1 +ttl :3 \"hi\"",
                ">3 \"message\" \"ch\" \"yo\"",
                "(nil)"
            ]
        );
        assert!(resp[0].error);
        assert_eq!(resp[4].kind, Kind::Push);
    }

    #[test]
    fn subscribe_expects_one_reply_per_channel() {
        let (req, _) = decode(P, &command(&[b"SUBSCRIBE", b"a", b"b"]), b"");
        assert_eq!(req[0].kind, Kind::Request { responses: 2 });
    }

    #[test]
    fn hostile_values_are_bounded() {
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        let (_, e) = decode_stream(&mut Session::new(P), Direction::Response, deep.as_bytes());
        assert!(matches!(e, Some(AppError::TooLarge { .. })));
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            b"$99999999999999\r\n",
        );
        assert!(matches!(e, Some(AppError::TooLarge { .. })));
        // A huge count is just a number: nothing allocated.
        let (m, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            b"*9223372036854775807\r\n:1\r\n",
        );
        assert!(m.is_empty() && e.is_none());
        let (_, e) = decode_stream(&mut Session::new(P), Direction::Response, b"$3\r\nabcXY");
        assert!(matches!(e, Some(AppError::Malformed { .. })));
    }

    #[test]
    fn missing_bulk_bytes_keep_sync() {
        let mut s = Session::new(P);
        s.feed(Direction::Response, b"$10\r\nab").unwrap();
        assert_eq!(s.missing(Direction::Response, 6).unwrap(), None);
        let step = s.feed(Direction::Response, b"ij\r\n:1\r\n").unwrap();
        assert_eq!(step.message.unwrap().summary, "<10 B>");
        assert_eq!(step.consumed, 4);
    }

    fn value(depth: u32) -> BoxedStrategy<Vec<u8>> {
        let leaf = prop_oneof![
            "[a-zA-Z ]{0,20}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
            any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
            prop::collection::vec(any::<u8>(), 0..60).prop_map(|b| {
                let mut out = format!("${}\r\n", b.len()).into_bytes();
                out.extend_from_slice(&b);
                out.extend_from_slice(b"\r\n");
                out
            }),
            Just(b"$-1\r\n".to_vec()),
            Just(b"*-1\r\n".to_vec()),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        prop_oneof![
            leaf,
            prop::collection::vec(value(depth - 1), 0..4).prop_map(|items| {
                let mut out = format!("*{}\r\n", items.len()).into_bytes();
                for i in items {
                    out.extend(i);
                }
                out
            }),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            cmds in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 1..5), 0..10),
            replies in prop::collection::vec(value(3), 0..10),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let reqs: Vec<u8> = cmds.iter().flat_map(|c| {
                let refs: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
                command(&refs)
            }).collect();
            let resps = replies.concat();
            let whole = split_decode(P, &reqs, &resps, &[]);
            prop_assert_eq!(whole.0.len(), cmds.len());
            prop_assert_eq!(whole.1.len(), replies.len());
            for (m, r) in whole.1.iter().zip(&replies) { prop_assert_eq!(m.len, r.len() as u64); }
            prop_assert_eq!(split_decode(P, &reqs, &resps, &cuts), whole);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..400),
            b in prop::collection::vec(any::<u8>(), 0..400),
            cut in any::<usize>(),
        ) {
            robust_behind(P, &a, &b, cut, b"", b"*3\r\n");
        }
    }
}
