//! The memcached text protocol (classic and meta commands).
//!
//! A request is a command line; storage commands (`set`, `add`, `replace`,
//! `append`, `prepend`, `cas`, meta `ms`) are followed by a data block of the
//! size their line gives, and `\r\n`. A response is one line, or `VALUE`
//! lines with their data blocks (or `STAT`/`ITEM` lines) up to `END`, or a
//! meta `VA` line with its data block. `noreply` requests get no response.
//! Data blocks are counted, never kept.

use super::lines::{Both, Lines, Stage};
use super::{
    AppError, AppMessage, AppProtocol, Block, Direction, Evidence, Kind, Line, malformed,
    parse_u64, show, size,
};

const P: AppProtocol = AppProtocol::Memcached;
/// Longest command or response line. memcached's own is 2048 (keys are at
/// most 250 bytes); `STAT` lines and meta flags stay well under this.
const MAX_LINE: usize = 8 * 1024;
/// Largest data block: memcached's item size limit is at most 1 GiB.
const MAX_DATA: u64 = 1 << 30;

/// Commands followed by a data block, and the index of its size among the
/// line's words.
fn data_size_word(command: &[u8]) -> Option<usize> {
    match command {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => Some(4),
        b"ms" => Some(2),
        _ => None,
    }
}

/// Commands the text protocol knows (for recognition; others are still read).
const COMMANDS: &[&[u8]] = &[
    b"get",
    b"gets",
    b"gat",
    b"gats",
    b"set",
    b"add",
    b"replace",
    b"append",
    b"prepend",
    b"cas",
    b"delete",
    b"incr",
    b"decr",
    b"touch",
    b"stats",
    b"version",
    b"flush_all",
    b"verbosity",
    b"quit",
    b"mg",
    b"ms",
    b"md",
    b"ma",
    b"mn",
    b"me",
    b"shutdown",
    b"cache_memlimit",
    b"lru_crawler",
    b"slabs",
    b"watch",
];

/// Single-line responses.
const ANSWERS: &[&[u8]] = &[
    b"STORED",
    b"NOT_STORED",
    b"EXISTS",
    b"NOT_FOUND",
    b"DELETED",
    b"TOUCHED",
    b"OK",
    b"END",
    b"ERROR",
    b"CLIENT_ERROR",
    b"SERVER_ERROR",
    b"VERSION",
    b"HD",
    b"NF",
    b"NS",
    b"EX",
    b"EN",
    b"MN",
    b"RESET",
    b"BUSY",
    b"BADCLASS",
    b"NOSPARE",
    b"NOTFULL",
    b"UNSAFE",
    b"SAME",
];

/// One direction.
#[derive(Debug)]
pub(crate) struct Half {
    state: Stage,
    line: Line,
    len: u64,
    msg: Option<AppMessage>,
    /// Inside a `VALUE`/`STAT` list that ends at `END`.
    listing: bool,
    values: u64,
    value_bytes: u64,
    stats: u64,
    /// The message ends with the data block.
    ends_with_data: bool,
}

impl Default for Half {
    fn default() -> Self {
        Half {
            state: Stage::Line,
            line: Line::default(),
            len: 0,
            msg: None,
            listing: false,
            values: 0,
            value_bytes: 0,
            stats: 0,
            ends_with_data: false,
        }
    }
}

/// Both directions of a memcached connection.
pub(crate) type Memcached = Both<Half>;

impl Lines for Half {
    const P: AppProtocol = P;
    const MAX_LINE: usize = MAX_LINE;
    const BLOCK: &'static str = "data block";

    fn parts(&mut self) -> (&mut Stage, &mut Line, &mut u64) {
        (&mut self.state, &mut self.line, &mut self.len)
    }

    fn on_line(&mut self, dir: Direction) -> Result<bool, AppError> {
        match dir {
            Direction::Request => self.request_line(),
            Direction::Response => self.response_line(),
        }
    }

    fn on_block_end(&mut self) -> bool {
        self.ends_with_data
    }

    fn end(&mut self, _dir: Direction) -> Option<AppMessage> {
        Some(self.end_message())
    }

    fn held(&self) -> u64 {
        self.len
    }

    fn cut(&mut self, _dir: Direction) -> Option<AppMessage> {
        let mut m = self.msg.take().unwrap_or_else(|| {
            let mut m = AppMessage::new(Kind::Response);
            m.summary = format!("incomplete line: {}", show(self.line.text(), 40));
            m
        });
        m.len = self.len;
        *self = Half::default();
        Some(m)
    }
}

impl Half {
    /// A request line: returns whether the request ended (no data block).
    fn request_line(&mut self) -> Result<bool, AppError> {
        let dir = Direction::Request;
        let line = self.line.text();
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .take(64)
            .collect();
        let Some(&cmd) = words.first() else {
            return Err(malformed(P, dir, "empty command line"));
        };
        if !cmd.iter().all(|b| b.is_ascii_lowercase() || *b == b'_') {
            return Err(malformed(
                P,
                dir,
                format!("not a command: {:?}", show(line, 40)),
            ));
        }
        let noreply = words.last() == Some(&&b"noreply"[..]);
        let mut m = AppMessage::new(Kind::Request {
            responses: if noreply || cmd == b"quit" { 0 } else { 1 },
        });
        m.op = String::from_utf8_lossy(cmd).into_owned();
        let mut summary = m.op.clone();
        let data = match data_size_word(cmd) {
            Some(i) => {
                let n = words.get(i).and_then(|w| parse_u64(w)).ok_or_else(|| {
                    malformed(
                        P,
                        dir,
                        format!("storage command without a data size: {:?}", show(line, 60)),
                    )
                })?;
                if n > MAX_DATA {
                    return Err(malformed(
                        P,
                        dir,
                        format!("data block of {n} bytes, more than memcached allows"),
                    ));
                }
                if let Some(key) = words.get(1) {
                    summary.push_str(&format!(" {} ({})", show(key, 40), size(n)));
                }
                Some(n)
            }
            None => {
                for w in words.iter().skip(1).take(3) {
                    summary.push(' ');
                    summary.push_str(&show(w, 40));
                }
                if words.len() > 4 {
                    summary.push_str(&format!(" …(+{})", words.len() - 4));
                }
                None
            }
        };
        m.summary = summary;
        self.msg = Some(m);
        Ok(match data {
            Some(n) => {
                self.state = Stage::Block(Block::new(n));
                self.ends_with_data = true;
                false
            }
            None => true,
        })
    }

    /// A response line: returns whether the response ended.
    fn response_line(&mut self) -> Result<bool, AppError> {
        let dir = Direction::Response;
        let line = self.line.text();
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let first = words.next().unwrap_or_default();
        match first {
            b"VALUE" => {
                // VALUE <key> <flags> <bytes> [<cas unique>]
                let n = words
                    .nth(2)
                    .and_then(parse_u64)
                    .filter(|&n| n <= MAX_DATA)
                    .ok_or_else(|| {
                        malformed(P, dir, format!("bad VALUE line {:?}", show(line, 60)))
                    })?;
                self.listing = true;
                self.values += 1;
                self.value_bytes += n;
                self.state = Stage::Block(Block::new(n));
                self.ends_with_data = false;
                Ok(false)
            }
            b"VA" => {
                let n = words
                    .next()
                    .and_then(parse_u64)
                    .filter(|&n| n <= MAX_DATA)
                    .ok_or_else(|| {
                        malformed(P, dir, format!("bad VA line {:?}", show(line, 60)))
                    })?;
                let mut m = AppMessage::new(Kind::Response);
                m.summary = format!("VA {}", size(n));
                self.msg = Some(m);
                self.state = Stage::Block(Block::new(n));
                self.ends_with_data = true;
                Ok(false)
            }
            b"STAT" | b"ITEM" => {
                self.listing = true;
                self.stats += 1;
                Ok(false)
            }
            b"END" => {
                let mut m = AppMessage::new(Kind::Response);
                m.summary = if self.values > 0 {
                    let s = if self.values == 1 { "" } else { "s" };
                    format!("{} value{s}, {}", self.values, size(self.value_bytes))
                } else if self.stats > 0 {
                    format!("{} STAT lines", self.stats)
                } else {
                    "END (no value)".into()
                };
                self.msg = Some(m);
                Ok(true)
            }
            _ if self.listing => Err(malformed(
                P,
                dir,
                format!("{:?} inside a VALUE list", show(line, 40)),
            )),
            _ if !first.is_empty()
                && (first.iter().all(u8::is_ascii_digit)
                    || first.iter().all(|b| b.is_ascii_uppercase() || *b == b'_')) =>
            {
                let mut m = AppMessage::new(Kind::Response);
                m.error = matches!(first, b"ERROR" | b"CLIENT_ERROR" | b"SERVER_ERROR");
                m.summary = show(line, 80);
                self.msg = Some(m);
                Ok(true)
            }
            _ => Err(malformed(
                P,
                dir,
                format!("not a response line: {:?}", show(line, 40)),
            )),
        }
    }

    /// The message that ended; the line buffer is kept for the next one.
    fn end_message(&mut self) -> AppMessage {
        let mut m = self
            .msg
            .take()
            .unwrap_or_else(|| AppMessage::new(Kind::Response));
        m.len = self.len;
        *self = Half {
            line: std::mem::take(&mut self.line),
            ..Half::default()
        };
        m
    }
}

/// Recognition: a known command (with a well-formed data block for
/// storage commands) ended by CR LF, and, when the server spoke, a known
/// answer. A command line alone is weak evidence.
pub(crate) fn evidence(client: &[u8], server: &[u8]) -> Option<Evidence> {
    if !client.first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let nl = memchr::memchr(b'\n', &client[..client.len().min(MAX_LINE)])?;
    if nl == 0 || client[nl - 1] != b'\r' {
        return None;
    }
    let line = &client[..nl - 1];
    let cmd = line.split(|&b| b == b' ').next().unwrap_or_default();
    if !COMMANDS.contains(&cmd) {
        return None;
    }
    let answer = {
        let end = memchr::memchr(b'\n', server).unwrap_or(0);
        let first = server[..end.saturating_sub(1)]
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default();
        server.get(end.wrapping_sub(1)) == Some(&b'\r')
            && (ANSWERS.contains(&first)
                || first == b"VALUE"
                || first == b"STAT"
                || first == b"VA"
                || (!first.is_empty() && first.iter().all(u8::is_ascii_digit)))
    };
    let name = String::from_utf8_lossy(cmd);
    if answer {
        return Some(Evidence::Strong(format!(
            "memcached text: `{name}` answered as memcached does"
        )));
    }
    if data_size_word(cmd).is_some() && client.len() > nl + 1 {
        // The data block's size matched (the decode check proves the rest).
        return Some(Evidence::Strong(format!(
            "memcached text: `{name}` with its data block"
        )));
    }
    Some(Evidence::Weak(format!(
        "memcached text: a `{name}` command line"
    )))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{decode, robust_behind, split_decode, summaries};
    use super::super::{Session, decode_stream};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn storage_retrieval_and_counters() {
        let reqs = b"set k 0 0 5\r\nhello\r\nget k nope\r\nincr n 1\r\nset q 0 0 1 noreply\r\nx\r\ndelete k\r\nstats\r\nmg k v\r\nms k 2 T0\r\nhi\r\n";
        let resps = b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\nNOT_FOUND\r\nDELETED\r\nSTAT pid 1\r\nSTAT uptime 2\r\nEND\r\nVA 2 f\r\nhi\r\nHD\r\n";
        let (req, resp) = decode(P, reqs, resps);
        assert_eq!(
            summaries(&req),
            [
                "set k (5 B)",
                "get k nope",
                "incr n 1",
                "set q (1 B)",
                "delete k",
                "stats",
                "mg k v",
                "ms k (2 B)"
            ]
        );
        assert_eq!(req[3].kind, Kind::Request { responses: 0 });
        assert_eq!(req.iter().map(|m| m.len).sum::<u64>(), reqs.len() as u64);
        assert_eq!(
            summaries(&resp),
            [
                "STORED",
                "1 value, 5 B",
                "NOT_FOUND",
                "DELETED",
                "2 STAT lines",
                "VA 2 B",
                "HD"
            ]
        );
        assert_eq!(resp.iter().map(|m| m.len).sum::<u64>(), resps.len() as u64);
    }

    #[test]
    fn multi_get_and_errors() {
        let (_, resp) = decode(
            P,
            b"",
            b"VALUE a 0 1\r\n1\r\nVALUE b 0 2 99\r\n22\r\nEND\r\nEND\r\nERROR\r\nCLIENT_ERROR bad data chunk\r\n",
        );
        assert_eq!(
            summaries(&resp),
            [
                "2 values, 3 B",
                "END (no value)",
                "ERROR",
                "CLIENT_ERROR bad data chunk"
            ]
        );
        assert!(resp[2].error && resp[3].error && !resp[0].error);
    }

    #[test]
    fn data_blocks_are_checked_and_bounded() {
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Request,
            b"set k 0 0 2\r\nabc\r\n",
        );
        assert!(matches!(e, Some(AppError::Malformed { .. })));
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Request,
            b"set k 0 0 99999999999\r\n",
        );
        assert!(matches!(e, Some(AppError::Malformed { .. })));
        let (_, e) = decode_stream(&mut Session::new(P), Direction::Request, b"set k 0 0\r\n");
        assert!(matches!(e, Some(AppError::Malformed { .. })));
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            b"VALUE a 0 1\r\nx\r\nSTORED\r\n",
        );
        assert!(matches!(e, Some(AppError::Malformed { .. })));
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            items in prop::collection::vec(("[a-z]{1,10}", prop::collection::vec(any::<u8>(), 0..40)), 0..10),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut reqs = Vec::new();
            let mut resps = Vec::new();
            for (k, v) in &items {
                reqs.extend_from_slice(format!("set {k} 0 0 {}\r\n", v.len()).as_bytes());
                reqs.extend_from_slice(v);
                reqs.extend_from_slice(b"\r\nget ");
                reqs.extend_from_slice(k.as_bytes());
                reqs.extend_from_slice(b"\r\n");
                resps.extend_from_slice(format!("STORED\r\nVALUE {k} 0 {}\r\n", v.len()).as_bytes());
                resps.extend_from_slice(v);
                resps.extend_from_slice(b"\r\nEND\r\n");
            }
            let whole = split_decode(P, &reqs, &resps, &[]);
            prop_assert_eq!(whole.0.len(), 2 * items.len());
            prop_assert_eq!(whole.1.len(), 2 * items.len());
            prop_assert_eq!(split_decode(P, &reqs, &resps, &cuts), whole);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..400),
            b in prop::collection::vec(any::<u8>(), 0..400),
            cut in any::<usize>(),
        ) {
            robust_behind(P, &a, &b, cut, b"", b"VALUE k 0 3\r\n");
        }
    }
}
