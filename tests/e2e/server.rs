//! `reqresp server` end to end: the real binary, real sockets, real `nc`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, Server};

/// Longest any single read in these tests may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// A line-framed client: one connection, a buffered reader on it.
struct LineClient {
    reader: BufReader<TcpStream>,
}

impl LineClient {
    fn new(addr: SocketAddr) -> Self {
        LineClient {
            reader: BufReader::new(connect(addr)),
        }
    }

    fn send(&mut self, line: &str) {
        self.reader
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// The next response line without its newline, or None at end of stream.
    fn recv(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a response");
        if n == 0 {
            return None;
        }
        assert!(line.ends_with('\n'), "unterminated response {line:?}");
        line.pop();
        Some(line)
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.recv().expect("a response, not end of stream")
    }

    /// True when the server has closed the connection (end of stream or reset).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// A server started with its stderr captured, for tests that read its logs.
struct LoggedServer {
    server: Server,
    logs: Arc<Mutex<Vec<String>>>,
}

impl LoggedServer {
    fn start(args: &[&str]) -> Self {
        let mut child = support::reqresp()
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reqresp server");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read server stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("expected 'listening on', got {line:?}"))
            .parse()
            .unwrap();
        LoggedServer {
            server: Server {
                child,
                addr,
                stdout,
            },
            logs,
        }
    }

    /// Waits until a log line contains `needle` (at most 5 s); returns it.
    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} in:\n{}",
                self.logs.lock().unwrap().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn line_framing_answers_each_line_and_drops_carriage_returns() {
    let server = Server::start(&[]);
    let mut client = LineClient::new(server.addr);
    assert_eq!(client.ask("hello"), "Echo: hello");
    client
        .reader
        .get_mut()
        .write_all(b"dos line\r\n\n")
        .unwrap();
    assert_eq!(client.recv().unwrap(), "Echo: dos line");
    assert_eq!(client.recv().unwrap(), "Echo: ");
}

#[test]
fn length_framing_carries_binary_payloads() {
    let server = Server::start(&["--framing", "length"]);
    let mut stream = connect(server.addr);
    let payload: Vec<u8> = (0..=255u8).chain(b"\n\r\n".iter().copied()).collect();
    let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&payload);
    stream.write_all(&wire).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut expected = b"Echo: ".to_vec();
    expected.extend_from_slice(&payload);
    assert_eq!(body, expected);
}

#[test]
fn raw_framing_answers_each_read_like_the_original_lab() {
    let server = Server::start(&["--framing", "raw"]);
    let mut stream = connect(server.addr);
    for word in ["hello", "book ticket", "bye"] {
        stream.write_all(word.as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("Echo: {word}").as_bytes());
    }
}

#[test]
fn raw_framing_reads_at_most_1024_bytes_at_a_time() {
    let server = Server::start(&["--framing", "raw", "--prefix", "|"]);
    let mut stream = connect(server.addr);
    let sent = vec![b'x'; 3000];
    stream.write_all(&sent).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    // Each read of at most 1024 bytes is one request, answered as "|" + it.
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    let requests: Vec<&[u8]> = back.split(|&b| b == b'|').skip(1).collect();
    assert!(
        requests.len() >= 3,
        "3000 bytes need at least 3 reads of 1024"
    );
    assert!(requests.iter().all(|r| r.len() <= 1024));
    assert_eq!(
        requests.concat(),
        sent,
        "no byte lost, reordered or invented"
    );
}

#[test]
fn python_client_in_the_style_of_the_lab_talks_to_the_raw_server() {
    if !support::have("python3") {
        return support::skip("python3 is not installed");
    }
    let server = Server::start(&["--framing", "raw"]);
    // The original client: plain socket, send without framing, recv(1024).
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
for msg in ["hello", "world"]:
    s.send(msg.encode())
    print(s.recv(1024).decode())
s.close()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &server.addr.port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Echo: hello\nEcho: world\n"
    );
}

#[test]
fn prefix_can_be_changed_or_emptied() {
    let server = Server::start(&["--prefix", ">> "]);
    assert_eq!(LineClient::new(server.addr).ask("x"), ">> x");
    let pure = Server::start(&["--prefix", ""]);
    assert_eq!(LineClient::new(pure.addr).ask("same"), "same");
}

#[test]
fn tickets_exactly_the_stock_is_sold_to_60_concurrent_clients() {
    const CLIENTS: usize = 60;
    const STOCK: usize = 7;
    // In memory: this test is about concurrency, tests/e2e/tickets.rs about the ledger.
    let stock = STOCK.to_string();
    let server = Server::start(&[
        "--service",
        "tickets",
        "--tickets",
        &stock,
        "--tickets-db",
        ":memory:",
    ]);
    let addr = server.addr;
    let start = Arc::new(Barrier::new(CLIENTS));
    let answers: Vec<String> = (0..CLIENTS)
        .map(|_| {
            let start = start.clone();
            thread::spawn(move || {
                let mut client = LineClient::new(addr);
                start.wait();
                client.ask("  Book Ticket ")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut left: Vec<usize> = answers
        .iter()
        .filter_map(|a| a.strip_prefix("Booked one ticket, "))
        .map(|rest| rest.trim_end_matches(" left").parse().unwrap())
        .collect();
    left.sort_unstable();
    // Each of the 7 tickets was sold once: the counts left are 6, 5, ..., 0.
    assert_eq!(left, (0..STOCK).collect::<Vec<_>>(), "{answers:?}");
    let sold_out = answers
        .iter()
        .filter(|a| *a == "Sorry, no tickets left")
        .count();
    assert_eq!(sold_out, CLIENTS - STOCK, "{answers:?}");
    let mut late = LineClient::new(addr);
    assert_eq!(late.ask("book ticket"), "Sorry, no tickets left");
    assert!(late.ask("hello").contains("send 'book ticket'"));
}

#[test]
fn hundred_concurrent_clients_each_get_their_own_answers() {
    const CLIENTS: usize = 100;
    let server = Server::start(&[]);
    let addr = server.addr;
    // All connect first, so the 100 connections are open at the same time.
    let connected = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let connected = connected.clone();
            thread::spawn(move || {
                let mut client = LineClient::new(addr);
                connected.wait();
                for i in 0..20 {
                    let msg = format!("client {c} message {i}");
                    assert_eq!(client.ask(&msg), format!("Echo: {msg}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a client failed");
    }
}

#[test]
fn pipelined_requests_in_one_write_get_all_responses_in_order() {
    let server = Server::start(&[]);
    let mut client = LineClient::new(server.addr);
    let batch: String = (0..5000).map(|i| format!("req {i}\n")).collect();
    let writer = {
        let mut stream = client.reader.get_ref().try_clone().unwrap();
        thread::spawn(move || stream.write_all(batch.as_bytes()).unwrap())
    };
    for i in 0..5000 {
        assert_eq!(client.recv().unwrap(), format!("Echo: req {i}"));
    }
    writer.join().unwrap();
}

#[test]
fn oversize_request_gets_an_error_and_only_that_client_is_closed() {
    let server = LoggedServer::start(&["--max-request", "100"]);
    let addr = server.server.addr;
    let mut bystander = LineClient::new(addr);
    assert_eq!(bystander.ask("before"), "Echo: before");

    let mut big = LineClient::new(addr);
    assert_eq!(
        big.ask(&"a".repeat(100)),
        format!("Echo: {}", "a".repeat(100))
    );
    big.send(&"b".repeat(5000));
    let error = big.recv().expect("an error response");
    assert!(
        error.starts_with("error: request larger than the server's limit of 100 bytes"),
        "{error}"
    );
    assert!(big.closed(), "the oversize client must be disconnected");
    server.wait_log("bad request");

    assert_eq!(bystander.ask("after"), "Echo: after");
    assert_eq!(LineClient::new(addr).ask("new"), "Echo: new");
}

#[test]
fn oversize_length_prefix_is_refused_before_the_body_arrives() {
    let server = Server::start(&["--framing", "length", "--max-request", "1000"]);
    let mut stream = connect(server.addr);
    // Claims 4 GiB; the server must answer without waiting for (or allocating) it.
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("limit of 1000 bytes"));
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn idle_connections_are_closed_and_active_ones_are_not() {
    let server = Server::start(&["--idle-timeout", "0.5"]);
    let mut active = LineClient::new(server.addr);
    let mut idle = LineClient::new(server.addr);
    let opened = Instant::now();
    // The active client talks every 200 ms for 1.5 s: never idle for 0.5 s.
    for i in 0..8 {
        assert_eq!(active.ask(&i.to_string()), format!("Echo: {i}"));
        thread::sleep(Duration::from_millis(200));
    }
    assert!(idle.closed(), "the idle client must have been disconnected");
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(450),
        "closed too early: {waited:?}"
    );
    assert_eq!(active.ask("still here"), "Echo: still here");
}

#[test]
fn a_client_that_never_reads_its_responses_is_cut_off() {
    let prefix = "p".repeat(1000);
    let server = LoggedServer::start(&["--idle-timeout", "0.5", "--prefix", &prefix]);
    let stream = connect(server.server.addr);
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // 1 MB of requests, 500 MB of answers nobody reads: the server's
    // writes stall, and it must give up on this client instead of hanging.
    let writer = thread::spawn(move || {
        let _ = (&stream).write_all(&b"x\n".repeat(500_000));
        stream
    });
    let log = server.wait_log("did not read its responses");
    assert!(log.contains("0.5 s"), "{log}");
    assert_eq!(
        LineClient::new(server.server.addr).ask("other"),
        format!("{prefix}other")
    );
    drop(writer.join().unwrap());
}

#[test]
fn connections_over_the_limit_are_refused_cleanly_and_the_server_recovers() {
    let server = Server::start(&["--max-connections", "2"]);
    let addr = server.addr;
    let mut first = LineClient::new(addr);
    let mut second = LineClient::new(addr);
    assert_eq!(first.ask("1"), "Echo: 1");
    assert_eq!(second.ask("2"), "Echo: 2");

    let mut third = LineClient::new(addr);
    let refusal = third.recv().expect("a refusal message");
    assert!(refusal.starts_with("error: server busy"), "{refusal}");
    assert!(third.closed());

    // The two served clients are unaffected.
    assert_eq!(first.ask("still 1"), "Echo: still 1");
    drop(second);
    // A slot frees as soon as the server sees the close; then it serves again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut retry = LineClient::new(addr);
        retry.send("retry");
        match retry.recv() {
            Some(answer) if answer == "Echo: retry" => break,
            other => assert!(
                Instant::now() < deadline,
                "server did not recover: {other:?}"
            ),
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_leaving_mid_request_is_logged_and_harms_no_one() {
    let server = LoggedServer::start(&[]);
    let addr = server.server.addr;
    let mut stream = connect(addr);
    stream.write_all(b"done\nhalf a requ").unwrap();
    let mut line = [0u8; 11];
    stream.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"Echo: done\n");
    drop(stream);
    let log = server.wait_log("in the middle of a request");
    assert!(log.contains("11 bytes"), "{log}");
    // A reset in the middle of a request is survived too.
    let reset = connect(addr);
    reset.set_linger_zero();
    (&reset).write_all(b"partial").unwrap();
    drop(reset);
    assert_eq!(LineClient::new(addr).ask("next"), "Echo: next");
}

/// `SO_LINGER` 0: closing sends a reset instead of a FIN.
trait LingerZero {
    fn set_linger_zero(&self);
}

impl LingerZero for TcpStream {
    fn set_linger_zero(&self) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a correctly sized option value.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    }
}

#[test]
fn sigterm_answers_every_request_received_then_exits_0() {
    // Big responses to a burst of small requests: every request has reached
    // the server, which blocks writing answers the client does not read yet.
    // SIGTERM arrives while most answers are still owed (and most requests
    // not even taken from the socket yet): all must still be answered.
    const REQUESTS: usize = 5000;
    let prefix = "p".repeat(4000);
    let mut server = Server::start(&["--prefix", &prefix, "--drain-timeout", "30"]);
    let mut client = LineClient::new(server.addr);
    let burst: String = (0..REQUESTS).map(|i| format!("{i}\n")).collect();
    client.reader.get_mut().write_all(burst.as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(300));

    server.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited with responses still owed"
    );
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "a stopping server must not accept new connections"
    );
    for i in 0..REQUESTS {
        let answer = client.recv().unwrap_or_else(|| panic!("response {i} lost"));
        assert!(answer.len() == prefix.len() + i.to_string().len());
        assert!(
            answer.ends_with(&format!("p{i}")),
            "response {i} out of order"
        );
    }
    assert!(client.closed(), "the server closes after the last response");
    drop(client);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigint_with_idle_clients_exits_0_promptly() {
    let mut server = Server::start(&[]);
    let mut idle = LineClient::new(server.addr);
    assert_eq!(idle.ask("hi"), "Echo: hi");
    let asked = Instant::now();
    server.signal(libc::SIGINT);
    assert!(idle.closed());
    let status = server.wait_exit(Duration::from_secs(5)).expect("no exit");
    assert!(status.success());
    assert!(asked.elapsed() < Duration::from_secs(3));
}

#[test]
fn netcat_is_a_client() {
    if !support::have("nc") {
        return support::skip("nc (netcat-openbsd) is not installed");
    }
    let server = Server::start(&[]);
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "printf 'hi\\nthere\\r\\n' | nc -N -w 10 127.0.0.1 {}",
                server.addr.port()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Echo: hi\nEcho: there\n"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut server = LoggedServer::start(&["--log-format", "json", "-v"]);
    let mut client = LineClient::new(server.server.addr);
    assert_eq!(client.ask("logged"), "Echo: logged");
    drop(client);
    server.wait_log("connection closed");
    server.server.signal(libc::SIGTERM);
    let status = server.server.wait_exit(Duration::from_secs(5)).unwrap();
    assert!(status.success());
    server.wait_log("server stopped");
    let logs = server.logs.lock().unwrap();
    let events: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} event in {logs:?}"))
    };
    assert!(find("connection opened")["peer"].is_string());
    assert_eq!(find("request")["request"], "logged");
    let closed = find("connection closed");
    assert_eq!(closed["requests"], 1);
    assert_eq!(closed["reason"], "client closed");
    assert!(closed["duration_ms"].is_number());
}

#[test]
fn address_in_use_says_what_to_do() {
    let first = Server::start(&[]);
    let out = support::reqresp()
        .args(["server", "--listen", &first.addr.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when not listening"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains("--listen 127.0.0.1:0"), "{err}");
}

#[test]
fn a_bare_message_without_newline_gets_a_hint_in_the_log() {
    // The original lab's Python client sends "Hello, server!" with no
    // newline; a line-framed server must say why it does not answer.
    let server = LoggedServer::start(&[]);
    let mut stream = connect(server.server.addr);
    stream.write_all(b"Hello, server!").unwrap();
    let hint = server.wait_log("--framing raw");
    assert!(hint.contains("14 bytes"), "{hint}");
    // Completing the line still gets the answer.
    stream.write_all(b"\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "Echo: Hello, server!\n");
}
