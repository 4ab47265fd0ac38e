//! End-to-end tests of `reqresp client`: the real binary against the real
//! `reqresp server`, against the original lab's Python server and client
//! (contrib/lab-python), against tiny misbehaving servers written here, and
//! driven through a pseudo-terminal for the interactive mode.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{self, Server};

/// Runs the binary under `timeout 30` (so a hung client fails the test
/// instead of hanging it) with `stdin` fed in, and returns its output.
fn client_with_stdin<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Output {
    let mut child = Command::new("timeout")
        .arg("30")
        .arg(support::bin())
        .arg("client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reqresp client");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_ne!(output.status.code(), Some(124), "reqresp client hung");
    output
}

fn client<S: AsRef<OsStr>>(args: &[S]) -> Output {
    client_with_stdin(args, b"")
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> &str {
    std::str::from_utf8(&out.stderr).expect("utf-8 stderr")
}

/// Asserts a failed run: non-zero exit, nothing on stdout, exactly one line
/// on stderr, which is returned.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure: {out:?}");
    assert_eq!(stdout(out), "", "stdout must stay empty on failure");
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line on stderr, got {err:?}");
    assert!(err.ends_with('\n'));
    err.trim_end().to_string()
}

fn addr_of(server: &Server) -> String {
    server.addr.to_string()
}

#[test]
fn scripted_messages_print_one_response_per_line_and_nothing_else() {
    let server = Server::start(&[]);
    let out = client(&[&addr_of(&server), "hello", "book ticket", "  spaces  "]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "Echo: hello\nEcho: book ticket\nEcho:   spaces  \n"
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn stdin_lines_are_requests_crlf_included() {
    let server = Server::start(&[]);
    let out = client_with_stdin(&[addr_of(&server)], b"a\r\nb\n\nlast without newline");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "Echo: a\nEcho: b\nEcho: \nEcho: last without newline\n"
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn empty_stdin_connects_and_leaves_cleanly() {
    let server = Server::start(&[]);
    let out = client_with_stdin(&[addr_of(&server)], b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"");
}

#[test]
fn line_framing_against_reqresp_server() {
    let server = Server::start(&["--framing", "line"]);
    let out = client(&["--framing", "line", &addr_of(&server), "one", "two"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "Echo: one\nEcho: two\n");
}

#[test]
fn length_framing_carries_binary_bytes_exactly() {
    let server = Server::start(&["--framing", "length"]);
    let addr = addr_of(&server);
    // A request with bytes that are not UTF-8 and a newline inside it,
    // impossible in line framing.
    let binary = OsStr::from_bytes(&[0xff, b'\n', 0x01, b'x']);
    let out = client(&[
        OsStr::new("--framing"),
        OsStr::new("length"),
        OsStr::new(&addr),
        binary,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"Echo: \xff\n\x01x\n");

    let out = client_with_stdin(&["--framing", "length", &addr], b"\xfe\xfd\nplain\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"Echo: \xfe\xfd\nEcho: plain\n");
}

#[test]
fn raw_framing_against_reqresp_server() {
    let server = Server::start(&["--framing", "raw"]);
    let out = client(&["--framing", "raw", &addr_of(&server), "hello", "world"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "Echo: hello\nEcho: world\n");
}

#[test]
fn mismatched_framing_times_out_with_a_hint() {
    // A line-framed request to a length-framed server: the server waits for
    // the rest of a "message" whose prefix is the bytes `hi\n`... so no answer.
    let server = Server::start(&["--framing", "length"]);
    let out = client(&["--timeout", "1", &addr_of(&server), "hi"]);
    let err = one_line_failure(&out);
    assert!(err.contains("is the server using --framing line?"), "{err}");
}

#[test]
fn host_names_resolve_and_each_address_is_tried() {
    // `localhost` may resolve to ::1 before 127.0.0.1; the server listens on
    // 127.0.0.1 only, so this also checks that the next address is tried.
    let server = Server::start(&[]);
    let out = client(&[format!("localhost:{}", server.addr.port()), "hi".into()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "Echo: hi\n");
}

#[test]
fn unreachable_server_is_one_line_with_a_fix() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = client(&[addr.to_string(), "hi".into()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line_failure(&out),
        format!(
            "reqresp: error: cannot connect to {addr}: connection refused — is `reqresp server` running?"
        )
    );
}

#[test]
fn unresolvable_name_is_one_line() {
    let out = client(&["no-such-host.invalid:2222", "hi"]);
    let err = one_line_failure(&out);
    assert!(
        err.starts_with("reqresp: error: cannot resolve no-such-host.invalid:2222"),
        "{err}"
    );
}

/// A server that accepts one connection and hands it to `then`.
fn tiny_server(then: impl FnOnce(std::net::TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((sock, _)) = listener.accept() {
            then(sock);
        }
    });
    addr
}

#[test]
fn server_closing_before_answering_is_one_line() {
    let addr = tiny_server(|mut sock| {
        let mut buf = [0u8; 3];
        let _ = sock.read_exact(&mut buf);
        // Closes with a FIN, having read the request: no answer.
    });
    let out = client(&[addr.to_string(), "hi".into()]);
    assert_eq!(
        one_line_failure(&out),
        format!(
            "reqresp: error: {addr} closed the connection before answering — did the server stop, or does it use another --framing?"
        )
    );
}

#[test]
fn server_closing_mid_response_is_one_line() {
    let addr = tiny_server(|mut sock| {
        let mut buf = [0u8; 3];
        let _ = sock.read_exact(&mut buf);
        let _ = sock.write_all(b"Echo: h");
    });
    let out = client(&[addr.to_string(), "hi".into(), "never sent".into()]);
    let err = one_line_failure(&out);
    assert!(
        err.contains("closed the connection in the middle of a response (7 bytes received)"),
        "{err}"
    );
}

#[test]
fn server_closing_at_once_is_one_line() {
    // Accept and close without reading: the request may meet a FIN or a
    // RST, depending on timing; either way one clear line and a failure.
    let addr = tiny_server(drop);
    let out = client(&[addr.to_string(), "hi".into()]);
    let err = one_line_failure(&out);
    assert!(
        err.contains("closed the connection") || err.contains("reset by the server"),
        "{err}"
    );
}

#[test]
fn silent_server_times_out_after_timeout() {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let addr = tiny_server(move |sock| {
        let _ = hold.recv_timeout(Duration::from_secs(20));
        drop(sock);
    });
    let started = Instant::now();
    let out = client(&["--timeout", "1", &addr.to_string(), "hi"]);
    let took = started.elapsed();
    let _ = release.send(());
    assert_eq!(
        one_line_failure(&out),
        format!(
            "reqresp: error: no response from {addr} within 1 s — is the server using --framing line? (raise the limit with --timeout)"
        )
    );
    assert!(took >= Duration::from_secs(1), "gave up after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn bad_timeout_is_refused_by_the_parser() {
    let closed = format!("127.0.0.1:{}", support::closed_port());
    let out = client(&["--timeout", "0", &closed, "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the timeout must be more than 0 seconds"));
}

// ---------------------------------------------------------------------------
// Interoperation with the original lab's Python programs.

fn lab_python(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/lab-python")
        .join(script)
}

/// The lab's Python server on a free loopback port, killed if still running
/// when dropped (it exits by itself after its one client).
struct PythonServer {
    child: Child,
    port: u16,
    stdout: BufReader<std::process::ChildStdout>,
}

impl PythonServer {
    fn start() -> PythonServer {
        let mut child = Command::new("python3")
            .arg(lab_python("server.py"))
            .args(["0", "127.0.0.1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3 server.py");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        PythonServer {
            child,
            port,
            stdout,
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn raw_client_talks_to_the_lab_python_server() {
    if !support::have("python3") {
        return support::skip("python3 is not installed");
    }
    let mut server = PythonServer::start();
    let out = client(&[
        "--framing".to_string(),
        "raw".into(),
        format!("127.0.0.1:{}", server.port),
        "Hello, server!".into(),
        "book ticket".into(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "Echo: Hello, server!\nEcho: book ticket\n");
    // The Python server saw both messages and the client's clean close.
    let mut log = String::new();
    server.stdout.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("Received: Hello, server!\nReceived: book ticket\n"),
        "{log}"
    );
    assert!(log.contains("Client left, server stops"), "{log}");
    assert!(server.child.wait().unwrap().success());
}

#[test]
fn lab_python_client_talks_to_raw_reqresp_server() {
    if !support::have("python3") {
        return support::skip("python3 is not installed");
    }
    let server = Server::start(&["--framing", "raw"]);
    let out = Command::new("timeout")
        .args(["30", "python3"])
        .arg(lab_python("client.py"))
        .args(["--host", "127.0.0.1", "--port"])
        .arg(server.addr.port().to_string())
        .args(["Hello, server!", "How are you?"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("Received: Echo: Hello, server!\n"), "{text}");
    assert!(text.contains("Received: Echo: How are you?\n"), "{text}");
}

// ---------------------------------------------------------------------------
// Interactive mode, through a real pseudo-terminal.

/// The client running on the slave side of a pty; everything it writes is
/// collected from the master side by a thread.
struct Terminal {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(addr: &str) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given ints; no name buffer,
        // default termios, a valid winsize.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned here alone. The
        // master must not leak into the child.
        let (master, slave) = unsafe {
            libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
            (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
        };
        let mut command = Command::new(support::bin());
        // SAFETY: setsid and ioctl are async-signal-safe. The client gets
        // its own session with the pty as controlling terminal, as in a real
        // terminal, so Ctrl-C outside the editor's raw mode raises SIGINT.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .args(["client", addr])
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn reqresp client on a pty");
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the client has exited and closed the slave.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            master,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits (at most 10 s) until the screen holds `n` occurrences of `text`.
    fn wait_for(&self, text: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.screen().matches(text).count() < n {
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} x{n}; the screen shows {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Waits (at most 10 s) for the client to exit; returns its status.
    fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "client did not exit; screen: {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-connection line echo server that reports whether the client ended
/// the connection with a clean FIN (true) rather than a reset.
fn echo_reporting_close() -> (SocketAddr, std::sync::mpsc::Receiver<bool>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = tiny_server(move |sock| {
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut writer = sock;
        let mut line = String::new();
        let clean = loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break true,
                Ok(_) => {
                    let _ = writer.write_all(format!("Echo: {line}").as_bytes());
                }
                Err(_) => break false,
            }
        };
        let _ = tx.send(clean);
    });
    (addr, rx)
}

#[test]
fn interactive_prompt_shows_response_with_rtt_and_quits_cleanly() {
    let server = Server::start(&[]);
    let mut term = Terminal::start(&addr_of(&server));
    term.wait_for(&format!("connected to {}", server.addr), 1);
    term.wait_for("`quit`, `exit` or Ctrl-D to leave", 1);
    term.wait_for("> ", 1);
    term.type_keys(b"hello there\r");
    term.wait_for("Echo: hello there   (", 1);
    term.wait_for(" ms)", 1);
    // History: arrow up brings the last request back.
    term.wait_for("> ", 2);
    term.type_keys(b"\x1b[A\r");
    term.wait_for("Echo: hello there   (", 2);
    term.wait_for("> ", 3);
    term.type_keys(b"quit\r");
    let status = term.exit_status();
    assert!(status.success(), "{status:?}; screen: {:?}", term.screen());
    let screen = term.screen();
    let rtt_line = screen
        .lines()
        .find(|l| l.contains("Echo: hello there"))
        .unwrap();
    // `Echo: hello there   (0.210 ms)`: the RTT is a number of ms or s.
    let rtt = rtt_line
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(['\r', ')']);
    let (value, unit) = rtt.split_once(' ').unwrap();
    assert!(
        value.parse::<f64>().is_ok() && ["ms", "s"].contains(&unit),
        "{rtt_line:?}"
    );
}

#[test]
fn interactive_ctrl_d_leaves_with_a_clean_close() {
    let (addr, closed_cleanly) = echo_reporting_close();
    let mut term = Terminal::start(&addr.to_string());
    term.wait_for("> ", 1);
    term.type_keys(b"ping\r");
    term.wait_for("Echo: ping   (", 1);
    term.wait_for("> ", 2);
    term.type_keys(b"\x04");
    assert!(term.exit_status().success(), "{:?}", term.screen());
    assert_eq!(
        closed_cleanly.recv_timeout(Duration::from_secs(5)),
        Ok(true),
        "the client must close with a FIN, not a reset"
    );
}

#[test]
fn interactive_ctrl_c_clears_then_leaves() {
    let (addr, closed_cleanly) = echo_reporting_close();
    let mut term = Terminal::start(&addr.to_string());
    term.wait_for("> ", 1);
    term.type_keys(b"half typed\x03");
    term.wait_for("(Ctrl-C again, Ctrl-D or `quit` to leave)", 1);
    term.wait_for("> ", 2);
    // The cleared line was not sent: the next request is answered alone.
    term.type_keys(b"x\r");
    term.wait_for("Echo: x   (", 1);
    assert!(!term.screen().contains("Echo: half"), "{:?}", term.screen());
    term.wait_for("> ", 3);
    term.type_keys(b"\x03");
    term.wait_for("(Ctrl-C again", 2);
    // Between prompts the terminal is not in raw mode and a Ctrl-C would not
    // reach the editor: wait for the prompt before the second one.
    term.wait_for("> ", 4);
    term.type_keys(b"\x03");
    assert!(term.exit_status().success(), "{:?}", term.screen());
    assert_eq!(
        closed_cleanly.recv_timeout(Duration::from_secs(5)),
        Ok(true)
    );
}

#[test]
fn interactive_ctrl_c_while_waiting_gives_up_and_leaves() {
    let (got_request, wait_request) = std::sync::mpsc::channel();
    let (closed, closed_cleanly) = std::sync::mpsc::channel();
    let addr = tiny_server(move |mut sock| {
        let mut buf = [0u8; 5];
        let _ = sock.read_exact(&mut buf);
        let _ = got_request.send(());
        // Never answers; reports how the client leaves.
        let _ = closed.send(sock.read_to_end(&mut Vec::new()).is_ok());
    });
    let mut term = Terminal::start(&addr.to_string());
    term.wait_for("> ", 1);
    term.type_keys(b"slow\r");
    wait_request
        .recv_timeout(Duration::from_secs(10))
        .expect("the request reached the server");
    term.type_keys(b"\x03");
    term.wait_for("interrupted: no longer waiting for the response", 1);
    assert!(term.exit_status().success(), "{:?}", term.screen());
    assert_eq!(
        closed_cleanly.recv_timeout(Duration::from_secs(5)),
        Ok(true)
    );
}

/// Runs `reqresp client ARGS` with stdout on a pseudo-terminal (stdin empty);
/// returns what the terminal received.
fn client_on_terminal_stdout(args: &[String]) -> Vec<u8> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the given ints; no name buffer,
    // default termios and window size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned here alone.
    let (master, slave) = unsafe {
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    };
    let mut child = Command::new(support::bin())
        .arg("client")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reqresp client");
    let mut master = std::fs::File::from(master);
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    // Ends with EIO once the client has exited and the slave is closed.
    while let Ok(n @ 1..) = master.read(&mut buf) {
        screen.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    screen
}

/// A server answering every line with terminal escape sequences.
fn hostile_answers() -> SocketAddr {
    tiny_server(|sock| {
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut writer = sock;
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(1..)) {
            let _ = writer.write_all(b"\x1b]0;owned\x07title\x1b[2Jcleared\n");
            line.clear();
        }
    })
}

#[test]
fn scripted_output_on_a_terminal_escapes_control_characters() {
    let addr = hostile_answers();
    let screen = client_on_terminal_stdout(&[addr.to_string(), "hi".into()]);
    let text = String::from_utf8_lossy(&screen);
    assert!(
        !screen.contains(&0x1b),
        "raw escape reached the terminal: {text:?}"
    );
    assert!(text.contains("\\u{1b}]0;owned\\u{7}title"), "{text:?}");
}

#[test]
fn scripted_output_to_a_pipe_is_byte_exact() {
    let addr = hostile_answers();
    let out = client(&[addr.to_string(), "hi".into()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"\x1b]0;owned\x07title\x1b[2Jcleared\n");
}

#[test]
fn a_response_over_the_limit_names_the_client_option() {
    let addr = tiny_server(|mut sock| {
        let mut buf = [0u8; 3];
        let _ = sock.read_exact(&mut buf);
        let _ = sock.write_all(&[b'x'; 5000]);
        let _ = sock.write_all(b"\n");
    });
    let out = client(&[
        addr.to_string(),
        "--max-response".into(),
        "100".into(),
        "hi".into(),
    ]);
    let err = one_line_failure(&out);
    assert!(err.contains("limit of 100 bytes"), "{err}");
    assert!(err.contains("--max-response"), "{err}");
    assert!(!err.contains("--max-request"), "{err}");
}
