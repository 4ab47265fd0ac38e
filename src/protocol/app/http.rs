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
mod tests;
