//! HTTP/1.0 and HTTP/1.1 (RFC 9112): start line and headers, then a body by
//! `Transfer-Encoding: chunked`, `Content-Length`, or the close of the
//! connection.
//!
//! The header block is kept (at most [`MAX_HEAD`](super::MAX_HEAD)) to read
//! it; bodies are counted, never kept. Each request's method is remembered
//! until its response, because the response to `HEAD` has no body and a
//! successful `CONNECT` turns the connection into a tunnel.

use std::collections::VecDeque;

use super::{
    AppError, AppMessage, AppProtocol, Direction, Evidence, Kind, Line, MAX_HEAD, MAX_LINE, Step,
    lost_sync, malformed, show, size, too_large,
};

const P: AppProtocol = AppProtocol::Http;
/// Requests remembered while waiting for their responses; a deeper
/// pipeline's responses are read as answers to `GET`.
const MAX_PENDING: usize = 4096;

/// What a response needs to know of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

/// Where one direction is.
#[derive(Debug)]
enum State {
    /// Reading the start line and headers.
    Head,
    /// Body bytes left (Content-Length).
    Length(u64),
    /// Reading a chunk-size line.
    ChunkSize(Line),
    /// Bytes of chunk data left.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd(Line),
    /// Trailer fields up to an empty line.
    Trailer(Line),
    /// Body up to the end of the stream.
    Close,
    /// Another protocol after a switch.
    Tunnel,
}

/// One direction.
#[derive(Debug)]
struct Half {
    state: State,
    head: Vec<u8>,
    /// The message being read: its kind and summary known from its head.
    msg: Option<AppMessage>,
    /// Bytes of the message so far.
    len: u64,
    /// Body bytes (chunk data only, for chunked).
    body: u64,
    /// The body is framed (not none): say its size in the summary.
    has_body: bool,
    /// After this message, switch both directions to a tunnel.
    switch: bool,
}

impl Default for Half {
    fn default() -> Self {
        Half {
            state: State::Head,
            head: Vec::new(),
            msg: None,
            len: 0,
            body: 0,
            has_body: false,
            switch: false,
        }
    }
}

/// Both directions of an HTTP/1.x connection.
#[derive(Debug, Default)]
pub(crate) struct Http {
    halves: [Half; 2],
    /// Methods of requests whose final response has not started.
    pending: VecDeque<Method>,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl Http {
    pub(crate) fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
        let mut at = 0;
        loop {
            let rest = &data[at..];
            let half = &mut self.halves[idx(dir)];
            if rest.is_empty() {
                return Ok(Step {
                    consumed: at,
                    message: None,
                });
            }
            match &mut half.state {
                State::Head => {
                    let (n, done) = find_head_end(&half.head, rest);
                    if half.head.len() + n > MAX_HEAD {
                        return Err(too_large(P, dir, "header block", MAX_HEAD));
                    }
                    half.head.extend_from_slice(&rest[..n]);
                    half.len += n as u64;
                    at += n;
                    if !done {
                        continue;
                    }
                    if half.head.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        // Empty lines between messages (RFC 9112 2.2):
                        // counted with the next message.
                        half.head.clear();
                        continue;
                    }
                    let head = std::mem::take(&mut half.head);
                    self.start(dir, &head)?;
                    let half = &mut self.halves[idx(dir)];
                    half.head = head;
                    half.head.clear();
                    if half.head.capacity() > 4096 {
                        half.head = Vec::new();
                    }
                    if matches!(half.state, State::Head) {
                        return Ok(self.end(dir, at));
                    }
                }
                State::Length(left) => {
                    let n = (*left).min(rest.len() as u64);
                    *left -= n;
                    half.len += n;
                    half.body += n;
                    at += n as usize;
                    if *left == 0 {
                        return Ok(self.end(dir, at));
                    }
                }
                State::ChunkSize(line) => {
                    let (n, done) = line.feed(rest, MAX_LINE, P, dir, "chunk-size line")?;
                    half.len += n as u64;
                    at += n;
                    if done {
                        let size = parse_chunk_size(line.text()).ok_or_else(|| {
                            malformed(
                                P,
                                dir,
                                format!("bad chunk size {:?}", show(line.text(), 40)),
                            )
                        })?;
                        half.state = if size == 0 {
                            State::Trailer(Line::default())
                        } else {
                            State::ChunkData(size)
                        };
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min(rest.len() as u64);
                    *left -= n;
                    half.len += n;
                    half.body += n;
                    at += n as usize;
                    if *left == 0 {
                        half.state = State::ChunkEnd(Line::default());
                    }
                }
                State::ChunkEnd(line) => {
                    let (n, done) = line.feed(rest, 0, P, dir, "line after chunk data")?;
                    half.len += n as u64;
                    at += n;
                    if done {
                        half.state = State::ChunkSize(Line::default());
                    }
                }
                State::Trailer(line) => {
                    let (n, done) = line.feed(rest, MAX_LINE, P, dir, "trailer line")?;
                    half.len += n as u64;
                    at += n;
                    if done {
                        if line.text().is_empty() {
                            half.state = State::Head;
                            return Ok(self.end(dir, at));
                        }
                        line.clear();
                    }
                }
                State::Close => {
                    half.len += rest.len() as u64;
                    half.body += rest.len() as u64;
                    return Ok(Step {
                        consumed: data.len(),
                        message: None,
                    });
                }
                State::Tunnel => {
                    let mut m = AppMessage::new(Kind::Tunnel);
                    m.len = rest.len() as u64;
                    m.summary = format!("{} after the switch of protocols", size(m.len));
                    return Ok(Step {
                        consumed: data.len(),
                        message: Some(m),
                    });
                }
            }
        }
    }

    /// A header block was read: parse it and choose how the body is framed.
    fn start(&mut self, dir: Direction, head: &[u8]) -> Result<(), AppError> {
        let text = head.strip_suffix(b"\n").unwrap_or(head);
        let mut lines = text
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let first = lines.next().unwrap_or_default();
        let mut fields = Fields::default();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            fields.add(line).map_err(|what| malformed(P, dir, what))?;
        }
        match dir {
            Direction::Request => self.start_request(first, &fields),
            Direction::Response => self.start_response(first, &fields),
        }
    }

    fn start_request(&mut self, first: &[u8], fields: &Fields) -> Result<(), AppError> {
        let dir = Direction::Request;
        let (method, target, _version) = parse_request_line(first).ok_or_else(|| {
            malformed(P, dir, format!("not a request line: {:?}", show(first, 60)))
        })?;
        let m = match method {
            b"HEAD" => Method::Head,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        };
        if self.pending.len() < MAX_PENDING {
            self.pending.push_back(m);
        }
        let method = String::from_utf8_lossy(method);
        let target_text = show(target, 80);
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        let mut msg = AppMessage::new(Kind::Request { responses: 1 });
        msg.op = format!("{method} {}", show(path, 60));
        msg.summary = format!("{method} {target_text}");
        let half = &mut self.halves[0];
        half.msg = Some(msg);
        half.body = 0;
        half.has_body = true;
        half.state = if fields.chunked {
            State::ChunkSize(Line::default())
        } else if fields.transfer_encoding {
            return Err(malformed(
                P,
                dir,
                "a Transfer-Encoding other than chunked on a request",
            ));
        } else {
            match fields.length {
                Some(0) | None => {
                    half.has_body = false;
                    State::Head
                }
                Some(n) => State::Length(n),
            }
        };
        Ok(())
    }

    fn start_response(&mut self, first: &[u8], fields: &Fields) -> Result<(), AppError> {
        let dir = Direction::Response;
        let (status, reason) = parse_status_line(first).ok_or_else(|| {
            malformed(P, dir, format!("not a status line: {:?}", show(first, 60)))
        })?;
        let interim = (100..200).contains(&status) && status != 101;
        let method = if interim {
            Method::Other
        } else {
            self.pending.pop_front().unwrap_or(Method::Other)
        };
        let mut msg = AppMessage::new(if interim {
            Kind::Interim
        } else {
            Kind::Response
        });
        msg.error = status >= 400;
        msg.summary = format!("{status} {}", show(reason, 60))
            .trim_end()
            .to_string();
        let half = &mut self.halves[1];
        half.body = 0;
        half.has_body = true;
        half.switch = false;
        let no_body = method == Method::Head
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        let connected = method == Method::Connect && (200..300).contains(&status);
        half.state = if no_body || connected {
            half.has_body = false;
            half.switch = status == 101 || connected;
            State::Head
        } else if fields.chunked {
            State::ChunkSize(Line::default())
        } else if let Some(n) = fields.length.filter(|_| !fields.transfer_encoding) {
            if n == 0 {
                State::Head
            } else {
                State::Length(n)
            }
        } else {
            State::Close
        };
        if method == Method::Head {
            msg.summary.push_str(" (HEAD)");
        }
        half.msg = Some(msg);
        Ok(())
    }

    /// The message of `dir` ended after `at` bytes of this feed.
    fn end(&mut self, dir: Direction, at: usize) -> Step {
        let half = &mut self.halves[idx(dir)];
        let mut m = half
            .msg
            .take()
            .unwrap_or_else(|| AppMessage::new(Kind::Push));
        m.len = half.len;
        if half.has_body {
            m.summary.push_str(&format!(", {} body", size(half.body)));
        }
        half.len = 0;
        half.body = 0;
        half.state = State::Head;
        if half.switch {
            half.switch = false;
            for h in &mut self.halves {
                if matches!(h.state, State::Head) && h.head.is_empty() {
                    h.state = State::Tunnel;
                }
            }
        }
        Step {
            consumed: at,
            message: Some(m),
        }
    }

    pub(crate) fn missing(
        &mut self,
        dir: Direction,
        n: u64,
    ) -> Result<Option<AppMessage>, AppError> {
        let half = &mut self.halves[idx(dir)];
        match &mut half.state {
            State::Length(left) | State::ChunkData(left) if n <= *left => {
                *left -= n;
                half.len += n;
                half.body += n;
                if *left == 0 {
                    if matches!(half.state, State::Length(_)) {
                        return Ok(self.end(dir, 0).message);
                    }
                    half.state = State::ChunkEnd(Line::default());
                }
                Ok(None)
            }
            State::Close => {
                half.len += n;
                half.body += n;
                Ok(None)
            }
            State::Tunnel => {
                let mut m = AppMessage::new(Kind::Tunnel);
                m.len = n;
                m.complete = false;
                m.summary = format!("{} after the switch of protocols (not captured)", size(n));
                Ok(Some(m))
            }
            _ => Err(lost_sync(P, dir, n)),
        }
    }

    pub(crate) fn partial(&self, dir: Direction) -> bool {
        self.halves[idx(dir)].len > 0
    }

    pub(crate) fn finish(&mut self, dir: Direction) -> Option<AppMessage> {
        let half = &mut self.halves[idx(dir)];
        match half.state {
            State::Close => self.end(dir, 0).message,
            State::Head if half.head.iter().all(|b| *b == b'\r' || *b == b'\n') => None,
            State::Tunnel => None,
            _ => {
                let mut m = half.msg.take().unwrap_or_else(|| {
                    let mut m = AppMessage::new(match dir {
                        Direction::Request => Kind::Request { responses: 1 },
                        Direction::Response => Kind::Response,
                    });
                    m.summary = format!("incomplete header: {}", show(&half.head, 40));
                    m
                });
                m.len = half.len;
                m.complete = false;
                if half.has_body {
                    m.summary
                        .push_str(&format!(", {} of body before the end", size(half.body)));
                }
                *half = Half::default();
                Some(m)
            }
        }
    }
}

/// Where the header block ends in `data`, given `head` already read:
/// `(bytes to take, ended)`. The block ends at an empty line.
fn find_head_end(head: &[u8], data: &[u8]) -> (usize, bool) {
    let before = |i: usize, k: usize| -> Option<u8> {
        // The byte k places before data[i], looking into head if needed.
        if i >= k {
            Some(data[i - k])
        } else {
            let back = k - i;
            head.len().checked_sub(back).map(|j| head[j])
        }
    };
    for nl in memchr::memchr_iter(b'\n', data) {
        let empty = match before(nl, 1) {
            None => true,
            Some(b'\n') => true,
            Some(b'\r') => matches!(before(nl, 2), None | Some(b'\n')),
            Some(_) => false,
        };
        if empty {
            return (nl + 1, true);
        }
    }
    (data.len(), false)
}

/// What the header fields say about framing.
#[derive(Debug, Default)]
struct Fields {
    length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
}

impl Fields {
    fn add(&mut self, line: &[u8]) -> Result<(), String> {
        if line[0] == b' ' || line[0] == b'\t' {
            return Ok(()); // obsolete line folding: part of the previous value
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(format!("header line without a colon: {:?}", show(line, 40)));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(format!("bad header name {:?}", show(name, 40)));
        }
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = super::parse_u64(value)
                .ok_or_else(|| format!("bad Content-Length {:?}", show(value, 30)))?;
            if self.length.is_some_and(|l| l != n) {
                return Err("two different Content-Length values".into());
            }
            self.length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            self.chunked = last.eq_ignore_ascii_case(b"chunked");
        }
        Ok(())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `METHOD target HTTP/1.x`.
fn parse_request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some()
        || method.is_empty()
        || method.len() > 20
        || !method.iter().all(|&b| is_tchar(b))
        || target.is_empty()
        || !target.iter().all(|&b| b.is_ascii_graphic())
        || !is_version(version)
    {
        return None;
    }
    Some((method, target, version))
}

fn is_version(v: &[u8]) -> bool {
    v == b"HTTP/1.1" || v == b"HTTP/1.0"
}

/// `HTTP/1.x 200 Reason phrase` (the reason may be empty).
fn parse_status_line(line: &[u8]) -> Option<(u16, &[u8])> {
    let (version, rest) = line.split_at(line.iter().position(|&b| b == b' ')?);
    let rest = &rest[1..];
    if !is_version(version) || rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = rest[..3]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..600).contains(&status) {
        return None;
    }
    let reason = match rest.get(3) {
        None => &[][..],
        Some(b' ') => &rest[4..],
        Some(_) => return None,
    };
    Some((status, reason))
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?.trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        n = n * 16 + u64::from((b as char).to_digit(16)?);
    }
    Some(n)
}

/// Recognition: a request line with an HTTP/1.x version, or a status line.
pub(crate) fn evidence(client: &[u8], server: &[u8]) -> Option<Evidence> {
    // Methods are upper case, status lines start `HTTP/`: most connections
    // fail this at once.
    let upper = client.first().is_some_and(u8::is_ascii_uppercase);
    if !(upper || (client.is_empty() && server.starts_with(b"HTTP/"))) {
        return None;
    }
    fn line(b: &[u8]) -> Option<&[u8]> {
        let nl = memchr::memchr(b'\n', &b[..b.len().min(8192)])?;
        Some(b[..nl].strip_suffix(b"\r").unwrap_or(&b[..nl]))
    }
    if let Some(first) = line(client)
        && let Some((_, _, version)) = parse_request_line(first)
    {
        let v = String::from_utf8_lossy(version);
        return Some(Evidence::Strong(format!("{v}: request line and headers")));
    }
    if client.is_empty()
        && let Some(first) = line(server)
        && parse_status_line(first).is_some()
    {
        let v = String::from_utf8_lossy(&first[..8]);
        return Some(Evidence::Strong(format!("{v}: status line and headers")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{decode, robust, split_decode, summaries};
    use super::super::{Session, decode_stream};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keep_alive_requests_with_lengths() {
        let (req, resp) = decode(
            P,
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /a?b=1 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(summaries(&req), ["GET /index.html", "GET /a?b=1"]);
        assert_eq!(req[1].op, "GET /a");
        assert_eq!(req[0].len, 37);
        assert_eq!(
            summaries(&resp),
            ["200 OK, 6 B body", "404 Not Found, 0 B body"]
        );
        assert!(!resp[0].error && resp[1].error);
        assert_eq!(resp[0].kind, Kind::Response);
    }

    #[test]
    fn chunked_body_and_trailers() {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let (_, resp) = decode(P, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", body);
        assert_eq!(summaries(&resp), ["200 OK, 6 B body", "204 No Content"]);
        assert_eq!(resp[0].len + resp[1].len, body.len() as u64);
    }

    #[test]
    fn head_and_304_have_no_body_whatever_the_length_says() {
        let (_, resp) = decode(
            P,
            b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!(
            summaries(&resp),
            ["200 OK (HEAD)", "304 Not Modified", "200 OK, 2 B body"]
        );
    }

    #[test]
    fn continue_is_interim_and_post_body_by_length() {
        let (req, resp) = decode(
            P,
            b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(summaries(&req), ["POST /up, 3 B body"]);
        assert_eq!(
            resp.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [Kind::Interim, Kind::Response]
        );
        assert_eq!(summaries(&resp), ["100 Continue", "201 Created, 0 B body"]);
    }

    #[test]
    fn close_delimited_body_ends_with_the_stream() {
        let (_, resp) = decode(
            P,
            b"GET / HTTP/1.0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n<html>",
        );
        assert_eq!(summaries(&resp), ["200 OK, 6 B body"]);
        assert!(resp[0].complete);
    }

    #[test]
    fn upgrade_turns_to_tunnel() {
        let mut s = Session::new(P);
        let (r, e) = decode_stream(
            &mut s,
            Direction::Request,
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        );
        assert_eq!((r.len(), e), (1, None));
        let (r, e) = decode_stream(
            &mut s,
            Direction::Response,
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
        );
        assert_eq!(e, None);
        assert_eq!(
            r.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [Kind::Response, Kind::Tunnel]
        );
        let (r, _) = decode_stream(&mut s, Direction::Request, b"\x81\x85abcd1234");
        assert_eq!(r[0].kind, Kind::Tunnel);
    }

    #[test]
    fn truncated_message_is_reported_incomplete() {
        let (_, resp) = decode(
            P,
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        );
        assert_eq!(resp.len(), 1);
        assert!(!resp[0].complete);
        assert_eq!(resp[0].summary, "200 OK, 3 B of body before the end");
    }

    #[test]
    fn missing_body_bytes_keep_sync_missing_header_bytes_do_not() {
        let mut s = Session::new(P);
        s.feed(Direction::Request, b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        s.feed(
            Direction::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
        )
        .unwrap();
        assert_eq!(s.missing(Direction::Response, 5).unwrap(), None);
        let step = s.feed(Direction::Response, b"xyzHTTP").unwrap();
        assert_eq!(step.consumed, 3);
        assert_eq!(step.message.unwrap().summary, "200 OK, 10 B body");
        assert!(s.missing(Direction::Response, 2).is_err());
    }

    #[test]
    fn hostile_heads_are_refused_without_buffering_them() {
        let mut s = Session::new(P);
        let big = vec![b'a'; MAX_HEAD + 10];
        let (_, e) = decode_stream(&mut s, Direction::Request, &big);
        assert!(matches!(e, Some(AppError::TooLarge { .. })));
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            let (_, e) = decode_stream(&mut Session::new(P), Direction::Request, bad);
            assert!(matches!(e, Some(AppError::Malformed { .. })), "{bad:?}");
        }
        // A huge claimed length is just a count: nothing is allocated.
        let mut s = Session::new(P);
        s.feed(Direction::Request, b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let (m, e) = decode_stream(
            &mut s,
            Direction::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nxx",
        );
        assert!(m.is_empty() && e.is_none());
        let (m, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
        );
        assert!(m.is_empty() && e.is_none());
        let (_, e) = decode_stream(
            &mut Session::new(P),
            Direction::Response,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
        );
        assert!(e.is_some());
    }

    fn request() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec!["GET", "POST", "HEAD", "PUT"]),
            "/[a-z]{0,10}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..50)),
            any::<bool>(),
        )
            .prop_map(|(m, path, body, chunked)| {
                let mut out = format!("{m} {path} HTTP/1.1\r\nHost: x\r\n").into_bytes();
                match body {
                    Some(b) if chunked => {
                        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                        for c in b.chunks(7) {
                            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                            out.extend_from_slice(c);
                            out.extend_from_slice(b"\r\n");
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    Some(b) => {
                        out.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes(),
                        );
                        out.extend_from_slice(&b);
                    }
                    None => out.extend_from_slice(b"\r\n"),
                }
                out
            })
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            reqs in prop::collection::vec(request(), 0..8),
            resps in prop::collection::vec(request(), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            // Responses: reuse the request bodies behind status lines.
            let resps: Vec<Vec<u8>> = resps.iter().map(|r| {
                let line_end = r.iter().position(|&b| b == b'\n').unwrap();
                let mut out = b"HTTP/1.1 200 OK\r".to_vec();
                out.extend_from_slice(&r[line_end..]);
                // Without a length a response runs to the close: give one.
                if !r.windows(7).any(|w| w == b"chunked" || w == b"Length:") {
                    out.truncate(out.len() - 2);
                    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                }
                out
            }).collect();
            let n = reqs.len().min(resps.len());
            // Every request a GET so every response has its body.
            let reqs: Vec<u8> = (0..n).flat_map(|_| b"GET / HTTP/1.1\r\n\r\n".to_vec()).collect();
            let resps_bytes: Vec<u8> = resps[..n].concat();
            let whole = split_decode(P, &reqs, &resps_bytes, &[]);
            prop_assert_eq!(whole.0.len(), n);
            prop_assert_eq!(whole.1.len(), n);
            prop_assert_eq!(whole.1.iter().map(|m| m.len).sum::<u64>(), resps_bytes.len() as u64);
            let split = split_decode(P, &reqs, &resps_bytes, &cuts);
            prop_assert_eq!(split, whole);
        }

        #[test]
        fn requests_any_split(reqs in prop::collection::vec(request(), 0..8), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
            let bytes = reqs.concat();
            let whole = split_decode(P, &bytes, b"", &[]);
            prop_assert_eq!(whole.0.len(), reqs.len());
            for (m, r) in whole.0.iter().zip(&reqs) { prop_assert_eq!(m.len, r.len() as u64); }
            prop_assert_eq!(split_decode(P, &bytes, b"", &cuts), whole);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..400),
            b in prop::collection::vec(any::<u8>(), 0..400),
            cut in any::<usize>(),
        ) {
            robust(P, &a, &b, cut);
            let mut a2 = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            a2.extend_from_slice(&a);
            robust(P, &a2, &b, cut);
        }
    }
}
