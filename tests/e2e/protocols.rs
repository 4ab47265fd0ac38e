//! The application-protocol codecs (`reqresp::protocol::app`) on captures of
//! real programs: curl and `python3 -m http.server`, redis-server with
//! redis-cli and a raw pipelining client, memcached, dnsmasq with dig, and
//! PostgreSQL with psql, each captured by tcpdump on loopback.
//!
//! Each capture is read with the analyzer's reader, the streams rebuilt in
//! capture order, recognised, decoded and paired with the codecs' own
//! rules; the tests assert the exact exchanges (operation and answer).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqresp::analyze::reader::read_capture;
use reqresp::protocol::app::{
    Answer, AppMessage, AppProtocol, Direction, Kind, Pairing, Session, recognize,
};

use crate::support::{self, run_ok};

/// A process this test started, killed (by its PID) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Proc {
    let program = format!("{:?}", cmd.get_program());
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}")),
    )
}

/// A port free on 127.0.0.1 right now (for servers that cannot take port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `python3 -m http.server` (HTTP/1.1, keep-alive) serving `root` on a free
/// loopback port, once it listens; with that port.
fn http_server(root: &Path) -> (Proc, u16) {
    let port = free_port();
    let server = spawn(
        Command::new("python3")
            .args(["-m", "http.server", "--protocol", "HTTP/1.1"])
            .args(["--bind", "127.0.0.1", "--directory"])
            .arg(root)
            .arg(port.to_string()),
    );
    wait_listening(port, "python3 -m http.server");
    (server, port)
}

/// Waits (at most 30 s) until something accepts connections on `port`.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if listening(port) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

/// Whether a socket listens on TCP `port`, read from /proc/net/tcp{,6}
/// rather than by connecting: a probe connection's teardown could reach the
/// capture that starts next and count as one more connection.
fn listening(port: u16) -> bool {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl, local_address, rem_address, st (0A = LISTEN)
                f.len() > 3 && f[1].ends_with(&local) && f[3] == "0A"
            })
        })
    })
}

/// Runs `attempt` until it returns true (its capture was whole), at most 4
/// times: on a loaded machine the kernel may drop packets now and then,
/// and a capture with holes cannot be compared with what was sent.
fn until_whole(mut attempt: impl FnMut() -> bool) {
    for _ in 0..4 {
        if attempt() {
            return;
        }
    }
    panic!("the kernel dropped packets in 4 captures in a row");
}

/// One TCP connection of a capture: its chunks of payload in capture
/// order, each byte once.
#[derive(Debug)]
struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    /// Direction, bytes, capture time (ns).
    chunks: Vec<(Direction, Vec<u8>, u64)>,
}

impl Conversation {
    /// The first burst of each side, as `auto` would see them.
    fn first_bursts(&self) -> (Vec<u8>, Vec<u8>) {
        let mut client = Vec::new();
        let mut server = Vec::new();
        let mut turns = 0;
        let mut last = None;
        for (dir, data, _) in &self.chunks {
            if last != Some(*dir) {
                turns += 1;
                last = Some(*dir);
            }
            match (dir, turns) {
                (Direction::Request, 1) => client.extend_from_slice(data),
                (Direction::Response, 1 | 2) => server.extend_from_slice(data),
                _ => {}
            }
            if turns > 2 {
                break;
            }
        }
        (client, server)
    }
}

/// The connections of a capture (made on loopback, so without loss).
fn conversations(file: &Path) -> Vec<Conversation> {
    let mut convs: Vec<Conversation> = Vec::new();
    // Next expected sequence number per (connection, direction).
    let mut next: BTreeMap<(usize, bool), u32> = BTreeMap::new();
    let bytes = std::fs::read(file).expect("read capture");
    read_capture(&bytes[..], |s| {
        let found = convs.iter().position(|c| {
            (c.client == s.src && c.server == s.dst) || (c.client == s.dst && c.server == s.src)
        });
        let at = match found {
            Some(i) => i,
            None => {
                // The capture starts before each connection (wait_listening
                // makes none): the SYN's sender is the client.
                assert!(
                    s.flags.syn && !s.flags.ack,
                    "connection without its SYN: {s:?}"
                );
                convs.push(Conversation {
                    client: s.src,
                    server: s.dst,
                    chunks: Vec::new(),
                });
                convs.len() - 1
            }
        };
        let from_client = convs[at].client == s.src;
        let seq_next = s
            .seq
            .wrapping_add(u32::from(s.flags.syn))
            .wrapping_add(s.payload.len() as u32);
        let expected = *next
            .entry((at, from_client))
            .or_insert(s.seq.wrapping_add(u32::from(s.flags.syn)));
        if s.payload.is_empty() {
            return;
        }
        assert_eq!(
            s.payload.len(),
            s.payload_len as usize,
            "snaplen cut a payload"
        );
        // Skip what was already seen (a retransmission), keep what is new.
        let skip = expected.wrapping_sub(s.seq) as usize;
        assert!(
            skip <= s.payload.len() || skip > 1 << 30,
            "a gap in a loopback capture"
        );
        if skip >= s.payload.len() {
            return;
        }
        next.insert((at, from_client), seq_next);
        let dir = if from_client {
            Direction::Request
        } else {
            Direction::Response
        };
        convs[at]
            .chunks
            .push((dir, s.payload[skip..].to_vec(), s.time.0));
    })
    .expect("the capture reads");
    convs
}

/// A request and what answered it.
#[derive(Debug)]
struct Exchange {
    request: AppMessage,
    /// Capture time of the request's last byte (ns).
    request_end: u64,
    /// Each answer with the capture times of its first and last bytes.
    answers: Vec<(AppMessage, u64, u64)>,
}

impl Exchange {
    /// `request summary → final answer summary`, the way a report shows it.
    fn line(&self) -> String {
        match self.answers.last() {
            Some((a, _, _)) => format!("{} → {}", self.request.summary, a.summary),
            None => format!("{} → (no answer)", self.request.summary),
        }
    }
}

/// Decodes and pairs one conversation, feeding chunks in capture order.
/// Returns the exchanges, and server messages that answered nothing.
fn pair(protocol: AppProtocol, conv: &Conversation) -> (Vec<Exchange>, Vec<AppMessage>) {
    let mut session = Session::new(protocol);
    let mut pairing = Pairing::default();
    let mut exchanges: Vec<Exchange> = Vec::new();
    let mut unpaired = Vec::new();
    // Answers that came while a request was still arriving: they answer it.
    let mut early: Vec<(AppMessage, u64, u64)> = Vec::new();
    // Capture time of the first byte of each side's current message.
    let mut started: [Option<u64>; 2] = [None, None];
    let mut take = |m: AppMessage,
                    dir: Direction,
                    first: u64,
                    last: u64,
                    partial: bool,
                    exchanges: &mut Vec<Exchange>| {
        match dir {
            Direction::Request => {
                let answers = std::mem::take(&mut early);
                if !answers.iter().any(|a| a.0.kind == Kind::Response) {
                    assert!(pairing.request(exchanges.len() as u64, &m).is_none());
                }
                exchanges.push(Exchange {
                    request: m,
                    request_end: last,
                    answers,
                });
            }
            Direction::Response => match pairing.response(&m) {
                Answer::Final(id) | Answer::Partial(id) => {
                    exchanges[id as usize].answers.push((m, first, last))
                }
                Answer::Unpaired if partial => early.push((m, first, last)),
                Answer::Unpaired => unpaired.push(m),
            },
        }
    };
    let side = |dir: Direction| usize::from(dir == Direction::Response);
    let mut last_time = 0;
    for (dir, data, time) in &conv.chunks {
        last_time = *time;
        let mut data = &data[..];
        while !data.is_empty() {
            let step = session
                .feed(*dir, data)
                .unwrap_or_else(|e| panic!("{e} (in {} {:?})", conv.client, dir));
            data = &data[step.consumed..];
            let first = *started[side(*dir)].get_or_insert(*time);
            if let Some(m) = step.message {
                started[side(*dir)] = None;
                let partial = session.partial(Direction::Request);
                take(m, *dir, first, *time, partial, &mut exchanges);
            }
        }
    }
    for dir in [Direction::Request, Direction::Response] {
        if let Some(m) = session.finish(dir) {
            let first = started[side(dir)].unwrap_or(last_time);
            take(m, dir, first, last_time, false, &mut exchanges);
        }
    }
    unpaired.extend(early.into_iter().map(|a| a.0));
    (exchanges, unpaired)
}

/// Recognises the conversation's protocol as `auto` would, checks it is
/// `protocol`, and returns its exchanges as report lines.
fn lines(protocol: AppProtocol, conv: &Conversation) -> Vec<String> {
    let (client, server) = conv.first_bursts();
    let r = recognize(&client, &server, conv.server.port()).unwrap_or_else(|| {
        panic!(
            "{protocol} not recognised in {:?}",
            String::from_utf8_lossy(&client)
        )
    });
    assert_eq!(r.protocol, protocol, "{}", r.reason);
    let (exchanges, unpaired) = pair(protocol, conv);
    assert!(
        unpaired.is_empty(),
        "answers without a request: {unpaired:?}"
    );
    exchanges.iter().map(Exchange::line).collect()
}

/// Latencies of each exchange, request end to the last byte of its final
/// answer, in µs.
fn latencies(exchanges: &[Exchange]) -> Vec<f64> {
    exchanges
        .iter()
        .filter_map(|e| {
            let (_, _, last) = e.answers.last()?;
            // An answer before the request ended (HTTP 100 Continue, then
            // an error): 0, as the analyzer counts it.
            Some(last.saturating_sub(e.request_end) as f64 / 1000.0)
        })
        .collect()
}

/// tshark's `http.time` (time since the request) of each HTTP response on
/// the connection of `client_port`, in capture order, in µs.
fn tshark_http_times(file: &Path, server_port: u16, client_port: u16) -> Vec<f64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-d", &format!("tcp.port=={server_port},http")])
        .args([
            "-Y",
            &format!("http.response && tcp.dstport == {client_port}"),
        ])
        .args(["-T", "fields", "-e", "http.time"])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            l.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("http.time {l:?}"))
                * 1e6
        })
        .collect()
}

/// `reqresp analyze FILE --format json` (framing `auto`), parsed.
fn analyze_json(file: &Path) -> serde_json::Value {
    let out = support::reqresp()
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .output()
        .expect("run reqresp analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// What `reqresp analyze` found on connection `i` (0-based): its protocol
/// and the exchanges as `request summary → response summary` lines.
fn analyzed(v: &serde_json::Value, i: usize) -> (String, Vec<String>) {
    let conn = &v["connections"][i];
    let protocol = conn["protocol"].as_str().unwrap_or("(none)").to_owned();
    assert!(
        conn["framing_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{conn}"
    );
    let lines = conn["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let request = e["request_summary"].as_str().unwrap_or("(none)");
            let response = e["response_summary"].as_str().unwrap_or("(no answer)");
            format!("{request} → {response}")
        })
        .collect();
    (protocol, lines)
}

/// Checks that `reqresp analyze` (framing `auto`) pairs every connection of
/// `file` as the codecs do here.
fn assert_analyzer_agrees(file: &Path, protocol: AppProtocol, convs: &[Conversation]) {
    let v = analyze_json(file);
    assert_eq!(v["connections"].as_array().unwrap().len(), convs.len());
    for (i, conv) in convs.iter().enumerate() {
        let (p, got) = analyzed(&v, i);
        assert_eq!(p, protocol.name());
        let (exchanges, unpaired) = pair(protocol, conv);
        let mut want: Vec<String> = exchanges.iter().map(Exchange::line).collect();
        want.extend(unpaired.iter().map(|m| format!("(none) → {}", m.summary)));
        assert_eq!(got, want, "connection {i}");
        let theirs: Vec<Option<f64>> = v["connections"][i]["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["latency_us"].as_f64())
            .collect();
        for (e, theirs) in exchanges.iter().zip(&theirs) {
            // After a 100 Continue, curl's body and http.server's 501 race;
            // this test takes the streams in capture order, the analyzer in
            // its reassembly's order, and they may put the two apart: the
            // latency of such an exchange is not compared.
            if e.answers.iter().any(|a| a.0.kind == Kind::Interim) {
                continue;
            }
            let ours = e
                .answers
                .last()
                .map(|a| a.2.saturating_sub(e.request_end) as f64 / 1000.0);
            match (ours, theirs) {
                (Some(a), Some(b)) => assert!((a - *b).abs() < 0.01, "connection {i}: {a} vs {b}"),
                (a, b) => assert_eq!(a, *b, "connection {i}"),
            }
        }
    }
}

fn have_tools(tools: &[&str]) -> bool {
    if !support::is_root() {
        support::skip("live capture needs root");
        return false;
    }
    for tool in tools {
        if !support::have(tool) {
            support::skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    true
}

#[test]
fn http_curl_keep_alive_post_and_continue_against_python_http_server() {
    if !have_tools(&["tcpdump", "tshark", "curl", "python3"]) {
        return;
    }
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("index.html"), "hello\n").unwrap();
        std::fs::write(root.join("a.txt"), vec![b'a'; 3000]).unwrap();
        let (_server, port) = http_server(&root);
        let file = dir.path().join("http.pcap");
        let capture = support::Tcpdump::start(&file, port);
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        // Three requests on one keep-alive connection (the 404 closes it).
        run_ok(
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-o",
                    "/dev/null",
                    "-o",
                    "/dev/null",
                ])
                .args([url("/index.html"), url("/a.txt"), url("/missing")]),
        );
        // A POST that asks for 100 Continue: http.server says 100, then
        // 501 (it has no POST) and closes; curl never sends the body.
        std::fs::write(dir.path().join("body"), vec![b'x'; 2000]).unwrap();
        run_ok(
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-H",
                    "Expect: 100-continue",
                    "--data-binary",
                ])
                .arg(format!("@{}", dir.path().join("body").display()))
                .arg(url("/up")),
        );
        // A POST (http.server has no POST: 501).
        run_ok(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-d", "name=x"])
                .arg(url("/form")),
        );
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        assert_eq!(convs.len(), 3, "{convs:#?}");
        assert_eq!(
            lines(AppProtocol::Http, &convs[0]),
            [
                "GET /index.html → 200 OK, 6 B body",
                "GET /a.txt → 200 OK, 2.9 KiB body",
                "GET /missing → 404 File not found, 335 B body",
            ]
        );
        // Latency as HTTP means it, request end to the response's last
        // byte, agrees with tshark's http.time (it pairs these correctly).
        let (keep_alive, _) = pair(AppProtocol::Http, &convs[0]);
        let ours = latencies(&keep_alive);
        let tshark = tshark_http_times(&file, port, convs[0].client.port());
        assert_eq!(ours.len(), 3);
        assert_eq!(tshark.len(), 3, "{tshark:?}");
        for (a, b) in ours.iter().zip(&tshark) {
            assert!((a - b).abs() < 1.0, "ours {ours:?} tshark {tshark:?}");
        }
        // 100 Continue is an interim answer.
        let (continued, unpaired) = pair(AppProtocol::Http, &convs[1]);
        assert!(unpaired.is_empty(), "{unpaired:?}");
        assert_eq!(continued.len(), 1);
        let answers: Vec<&str> = continued[0]
            .answers
            .iter()
            .map(|a| a.0.summary.as_str())
            .collect();
        assert_eq!(
            answers,
            [
                "100 Continue",
                "501 Unsupported method ('POST'), 357 B body"
            ]
        );
        assert_eq!(continued[0].answers[0].0.kind, Kind::Interim);
        assert!(continued[0].answers[1].0.error);
        // Whether curl sent its body before it read the 501 is a race.
        let request = &continued[0].request;
        if request.complete {
            assert_eq!(request.summary, "POST /up, 2.0 KiB body");
        } else {
            assert!(request.summary.starts_with("POST /up, "), "{request:?}");
            assert!(
                request.summary.ends_with(" of body before the end"),
                "{request:?}"
            );
        }
        let post = lines(AppProtocol::Http, &convs[2]);
        assert_eq!(post.len(), 1);
        assert!(
            post[0].starts_with("POST /form, 6 B body → 501 Unsupported method ('POST')"),
            "{post:?}"
        );
        assert_analyzer_agrees(&file, AppProtocol::Http, &convs);
        true
    });
}

#[test]
fn http_pipelined_get_head_get_in_one_write() {
    if !have_tools(&["tcpdump", "python3"]) {
        return;
    }
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hello\n").unwrap();
        let (_server, port) = http_server(dir.path());
        let file = dir.path().join("pipelined.pcap");
        let capture = support::Tcpdump::start(&file, port);
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n\
              HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        drop(conn);
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        assert_eq!(convs.len(), 1);
        assert_eq!(
            lines(AppProtocol::Http, &convs[0]),
            [
                "GET /index.html → 200 OK, 6 B body",
                "HEAD /index.html → 200 OK (HEAD)",
                "GET /index.html → 200 OK, 6 B body",
            ]
        );
        assert_analyzer_agrees(&file, AppProtocol::Http, &convs);
        true
    });
}

/// redis-server on a free port, without persistence.
fn redis_server(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let server = spawn(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir),
    );
    wait_listening(port, "redis-server");
    (server, port)
}

#[test]
fn redis_cli_sequential_and_a_pipelined_write() {
    if !have_tools(&["tcpdump", "redis-server", "redis-cli"]) {
        return;
    }
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        let (_server, port) = redis_server(dir.path());
        let file = dir.path().join("redis.pcap");
        let capture = support::Tcpdump::start(&file, port);
        // redis-cli reading commands from stdin sends each and awaits its reply.
        let mut cli = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        cli.stdin
            .take()
            .unwrap()
            .write_all(b"SET greeting hello\nINCR p1\nINCR p1\nGET nope\nXADD s 1-1 f v\nXRANGE s - +\nNOSUCH x\n")
            .unwrap();
        let out = cli.wait_with_output().unwrap();
        assert!(out.status.success());
        // 20 commands in one write, then the replies.
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let pipelined: Vec<u8> = (0..20)
            .flat_map(|_| b"*2\r\n$4\r\nINCR\r\n$2\r\np2\r\n".to_vec())
            .collect();
        conn.write_all(&pipelined).unwrap();
        let expected: usize = (1..=20).map(|n: usize| format!(":{n}\r\n").len()).sum();
        let mut replies = vec![0u8; expected];
        conn.read_exact(&mut replies).unwrap();
        drop(conn);
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        assert_eq!(convs.len(), 2);
        let sequential = lines(AppProtocol::Resp, &convs[0]);
        // redis-cli first asks for the command docs (its hints): a big
        // nested map, one exchange.
        assert!(
            sequential[0].starts_with("COMMAND DOCS → *"),
            "{sequential:?}"
        );
        assert_eq!(
            sequential[1..],
            [
                "SET greeting hello → +OK",
                "INCR p1 → :1",
                "INCR p1 → :2",
                "GET nope → (nil)",
                "XADD s 1-1 f …(+1) → \"1-1\"",
                "XRANGE s - + → *1 \"1-1\" \"f\" \"v\"",
                "NOSUCH x → -ERR unknown command 'NOSUCH', with args…",
            ]
        );
        let piped = lines(AppProtocol::Resp, &convs[1]);
        let want: Vec<String> = (1..=20).map(|n| format!("INCR p2 → :{n}")).collect();
        assert_eq!(piped, want);
        assert_analyzer_agrees(&file, AppProtocol::Resp, &convs);
        // The per-operation table: 2 INCR awaited and 20 pipelined.
        let v = analyze_json(&file);
        let ops = v["summary"]["operations"].as_array().unwrap();
        let op = |name: &str| ops.iter().find(|o| o["operation"] == name).cloned();
        let incr = op("INCR").expect("INCR in the operations");
        assert_eq!(
            (incr["protocol"].as_str(), incr["count"].as_u64()),
            (Some("resp"), Some(22))
        );
        assert_eq!(incr["latency"]["count"], 22);
        assert_eq!(incr["errors"], 0);
        assert_eq!(op("NOSUCH").expect("NOSUCH")["errors"], 1);
        assert_eq!(ops[0]["operation"], "INCR", "most frequent first");
        let text = support::reqresp()
            .arg("analyze")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("resp INCR 22× · p50 "), "{text}");
        assert!(text.contains("resp NOSUCH 1× · 1 error · p50 "), "{text}");
        assert!(
            text.contains("Connection 1 · resp framing · 8 exchanges"),
            "{text}"
        );
        assert!(
            text.contains("framing: RESP: a command as an array of bulk strings"),
            "{text}"
        );
        assert!(text.contains("INCR p1"), "{text}");
        true
    });
}

#[test]
fn memcached_storage_and_multi_line_answers() {
    if !have_tools(&["tcpdump", "memcached"]) {
        return;
    }
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let _server = spawn(
            Command::new("memcached")
                .args(["-l", "127.0.0.1", "-U", "0", "-u", "root"])
                .arg("-p")
                .arg(port.to_string()),
        );
        wait_listening(port, "memcached");
        let file = dir.path().join("memcached.pcap");
        let capture = support::Tcpdump::start(&file, port);
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let steps: &[(&[u8], &[u8])] = &[
            (b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n"),
            (b"get k nope\r\n", b"END\r\n"),
            (b"set n 0 0 1\r\n5\r\n", b"STORED\r\n"),
            (b"incr n 3\r\n", b"8\r\n"),
            (b"gets k n\r\n", b"END\r\n"),
            (b"delete k\r\n", b"DELETED\r\n"),
            (b"get k\r\n", b"END\r\n"),
            (b"bogus\r\n", b"ERROR\r\n"),
        ];
        // Each command awaited: read until its answer's last line.
        for (command, ends) in steps {
            conn.write_all(command).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(ends) {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "memcached closed");
                got.extend_from_slice(&buf[..n]);
            }
        }
        drop(conn);
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        assert_eq!(convs.len(), 1);
        assert_eq!(
            lines(AppProtocol::Memcached, &convs[0]),
            [
                "set k (5 B) → STORED",
                "get k nope → 1 value, 5 B",
                "set n (1 B) → STORED",
                "incr n 3 → 8",
                "gets k n → 2 values, 6 B",
                "delete k → DELETED",
                "get k → END (no value)",
                "bogus → ERROR",
            ]
        );
        assert_analyzer_agrees(&file, AppProtocol::Memcached, &convs);
        true
    });
}

#[test]
fn dns_over_tcp_dig_against_dnsmasq() {
    if !have_tools(&["tcpdump", "dnsmasq", "dig"]) {
        return;
    }
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let _server = spawn(Command::new("dnsmasq").args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file=",
            "--address=/example.test/10.1.2.3",
            &format!("--port={port}"),
        ]));
        wait_listening(port, "dnsmasq");
        let file = dir.path().join("dns.pcap");
        let capture = support::Tcpdump::start(&file, port);
        // One TCP connection for three queries (+keepopen).
        let out = run_ok(Command::new("dig").args([
            "+tcp",
            "+keepopen",
            "+short",
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "a.example.test",
            "A",
            "b.example.test",
            "A",
            "other.invalid",
            "A",
        ]));
        assert!(out.contains("10.1.2.3"), "{out}");
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        let all: Vec<String> = convs
            .iter()
            .flat_map(|c| lines(AppProtocol::Dns, c))
            .collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(
            all[0],
            "A a.example.test → NOERROR A a.example.test, 1 answer: 10.1.2.3"
        );
        assert_eq!(
            all[1],
            "A b.example.test → NOERROR A b.example.test, 1 answer: 10.1.2.3"
        );
        assert!(all[2].starts_with("A other.invalid → REFUSED"), "{all:?}");
        assert_analyzer_agrees(&file, AppProtocol::Dns, &convs);
        true
    });
}

#[test]
fn postgres_psql_startup_queries_and_an_error() {
    if !have_tools(&["tcpdump", "psql", "runuser"]) {
        return;
    }
    // Debian keeps the server binaries out of PATH, one directory per version.
    let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .find(|b| b.join("initdb").exists())
    else {
        return support::skip("no PostgreSQL server under /usr/lib/postgresql");
    };
    until_whole(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        // PostgreSQL refuses to run as root: its files belong to `postgres`.
        std::fs::create_dir(&data).unwrap();
        let chown = |p: &Path| {
            run_ok(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(p),
            )
        };
        chown(dir.path());
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data)
                .stdout(Stdio::null()),
        );
        let port = free_port();
        let _server = spawn(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .arg("-k")
                .arg(dir.path())
                .arg("-p")
                .arg(port.to_string()),
        );
        wait_listening(port, "postgres");
        let file = dir.path().join("pg.pcap");
        let capture = support::Tcpdump::start(&file, port);
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-X",
                "-q",
            ])
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "SELECT 1",
                "-c",
                "CREATE TABLE t (a int)",
                "-c",
                "INSERT INTO t VALUES (1), (2)",
            ])
            .args(["-c", "SELECT * FROM t", "-c", "SELECT * FROM nope"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // The last query fails: psql says so and exits 1.
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nope"),
            "{out:?}"
        );
        if !capture.stop() {
            return false;
        }
        let convs = conversations(&file);
        assert_eq!(convs.len(), 1, "{convs:#?}");
        assert_eq!(
            lines(AppProtocol::Postgres, &convs[0]),
            [
                "SSLRequest → encryption refused",
                "startup user=postgres database=postgres → authenticated, ready",
                "SELECT 1 → SELECT 1",
                "CREATE TABLE t (a int) → CREATE TABLE",
                "INSERT INTO t VALUES (1), (2) → INSERT 0 2",
                "SELECT * FROM t → SELECT 2",
                "SELECT * FROM nope → ERROR 42P01: relation \"nope\" does not exist",
                "Terminate → (no answer)",
            ]
        );
        assert_analyzer_agrees(&file, AppProtocol::Postgres, &convs);
        true
    });
}

#[test]
fn lab_conversations_are_recognised_as_no_known_protocol() {
    if !have_tools(&["tcpdump"]) {
        return;
    }
    // The lab's own server, line and length framed, echo and tickets:
    // `auto` must leave these to the lab's framings, whatever the port.
    for (framing, service, messages) in [
        (
            "line",
            "echo",
            vec![b"hello\n".to_vec(), b"GET me a coffee\n".to_vec()],
        ),
        (
            "line",
            "tickets",
            vec![b"book ticket\n".to_vec(), b"book ticket\n".to_vec()],
        ),
        (
            "length",
            "echo",
            vec![b"\0\0\0\x05hello".to_vec(), b"\0\0\0\x03set".to_vec()],
        ),
    ] {
        until_whole(|| {
            let server = support::Server::start(&["--framing", framing, "--service", service]);
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("lab.pcap");
            let capture = support::Tcpdump::start(&file, server.addr.port());
            let mut conn = TcpStream::connect(server.addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            for m in &messages {
                conn.write_all(m).unwrap();
                let mut buf = [0u8; 256];
                assert!(conn.read(&mut buf).unwrap() > 0, "the lab server answers");
            }
            drop(conn);
            if !capture.stop() {
                return false;
            }
            let convs = conversations(&file);
            assert_eq!(convs.len(), 1);
            let (client, server_burst) = convs[0].first_bursts();
            assert!(!client.is_empty() && !server_burst.is_empty());
            for port in [server.addr.port(), 80, 6379, 11211, 53, 5432] {
                assert_eq!(
                    recognize(&client, &server_burst, port),
                    None,
                    "{framing} {service} on port {port}"
                );
            }
            true
        });
    }
}
