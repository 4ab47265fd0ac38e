//! End-to-end tests of `reqresp capture`: the real binary captures real
//! loopback traffic, and Debian's tshark and tcpdump read the files back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::support::{self, have, is_root, reqresp, skip};

/// Why the live tests cannot run here, if they cannot.
fn cannot_capture() -> Option<&'static str> {
    if !is_root() {
        Some("capture tests need root (CAP_NET_RAW)")
    } else if !have("tshark") || !have("tcpdump") {
        Some("capture tests need tshark and tcpdump")
    } else {
        None
    }
}

/// A running `reqresp capture`, killed (by PID) if the test ends early.
struct Capturing {
    child: Child,
    stderr: mpsc::Receiver<String>,
    ready_line: String,
}

impl Capturing {
    /// Starts `reqresp capture <args>` and waits (at most 10 s) for its
    /// "capturing on" line on stderr.
    fn start(args: &[&str]) -> Capturing {
        Capturing::start_with_stdout(args, Stdio::null())
    }

    fn start_with_stdout(args: &[&str], stdout: Stdio) -> Capturing {
        let mut child = reqresp()
            .arg("capture")
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reqresp capture");
        let stderr = forward_lines(child.stderr.take().unwrap());
        let mut capturing = Capturing {
            child,
            stderr,
            ready_line: String::new(),
        };
        let line = capturing
            .stderr
            .recv_timeout(Duration::from_secs(10))
            .expect("reqresp capture printed nothing on stderr within 10 s");
        assert!(
            line.starts_with("capturing on "),
            "unexpected first line: {line}"
        );
        capturing.ready_line = line;
        capturing
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits (at most `limit`) for the exit; returns whether it succeeded,
    /// its remaining stderr lines and how long it took.
    fn finish(mut self, limit: Duration) -> (bool, Vec<String>, Duration) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < limit,
                "reqresp capture did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        // The reader thread may still be forwarding the last lines: read
        // until it sees end of file.
        let mut lines = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        (status.success(), lines, took)
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The packet count of the final "N packets captured, M dropped by kernel".
fn reported_count(lines: &[String]) -> u64 {
    let last = lines.last().expect("no final line on stderr");
    let (count, rest) = last.split_once(' ').expect("final line has words");
    assert!(
        rest.starts_with("packet")
            && rest.contains("captured, ")
            && rest.ends_with("dropped by kernel"),
        "unexpected final line: {last}"
    );
    count.parse().expect("packet count in final line")
}

/// A loopback port nobody listens on, and a listener bound to it.
fn free_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Runs `connections` line-framed echo conversations of `exchanges`
/// request/response pairs each against a tiny echo server on `listener`,
/// and waits until both sides have closed.
fn echo_traffic(listener: TcpListener, connections: usize, exchanges: usize) {
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            for line in BufReader::new(stream).lines() {
                let line = line.unwrap();
                writer
                    .write_all(format!("Echo: {line}\n").as_bytes())
                    .unwrap();
            }
        }
    });
    for c in 0..connections {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        for e in 0..exchanges {
            writer
                .write_all(format!("hello {c}.{e}\n").as_bytes())
                .unwrap();
            let mut reply = String::new();
            reader.read_line(&mut reply).unwrap();
            assert_eq!(reply, format!("Echo: hello {c}.{e}\n"));
        }
        writer.shutdown(Shutdown::Write).unwrap();
        // Read to EOF: the server has closed its side too.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
    }
    server.join().unwrap();
}

/// Runs tshark with `args` on `file`; returns its stdout lines and its
/// stderr minus the notice tshark always prints when run as root.
fn tshark(file: &Path, args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (lines(&out.stdout), without_root_notice(&out.stderr))
}

fn without_root_notice(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user \"root\""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_string)
        .collect()
}

fn tcpdump_read(file: &Path) -> Output {
    Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .expect("run tcpdump")
}

#[test]
fn sigint_stops_cleanly_and_tshark_reads_every_counted_packet() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.pcap");
    let (listener, port) = free_listener();
    let filter = format!("tcp port {port}");
    let cap = Capturing::start(&["-i", "lo", "-f", &filter, "-w", file.to_str().unwrap()]);
    assert!(
        cap.ready_line.contains(&format!("filter '{filter}'")) && cap.ready_line.contains("Ctrl-C"),
        "ready line: {}",
        cap.ready_line
    );

    let (connections, exchanges) = (4, 3);
    echo_traffic(listener, connections, exchanges);
    // Traffic on another port must not be captured.
    let (other, _) = free_listener();
    echo_traffic(other, 1, 2);

    cap.signal(libc::SIGINT);
    let (ok, lines, took) = cap.finish(Duration::from_secs(5));
    assert!(ok, "capture exited with failure: {lines:?}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    let counted = reported_count(&lines);

    let (frames, warnings) = tshark(&file, &["-T", "fields", "-e", "frame.number"]);
    assert_eq!(warnings, "", "tshark warned about the file");
    assert_eq!(
        frames.len() as u64,
        counted,
        "tshark and reqresp disagree on the count"
    );

    // Every conversation is complete: one SYN per connection, every
    // request and response as a data segment, both FINs of each.
    let (syns, _) = tshark(&file, &["-Y", "tcp.flags.syn==1 && tcp.flags.ack==0"]);
    assert_eq!(syns.len(), connections);
    let (data, _) = tshark(
        &file,
        &["-Y", "tcp.len>0", "-T", "fields", "-e", "tcp.srcport"],
    );
    assert_eq!(data.len(), connections * exchanges * 2);
    let (fins, _) = tshark(&file, &["-Y", "tcp.flags.fin==1"]);
    assert_eq!(
        fins.len(),
        connections * 2,
        "a FIN is missing: the last packets were not flushed"
    );
    let (ports, _) = tshark(&file, &["-T", "fields", "-e", "tcp.port"]);
    assert!(
        ports
            .iter()
            .all(|p| p.split(',').any(|p| p == port.to_string()))
    );

    let out = tcpdump_read(&file);
    assert!(
        out.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_of(&out.stdout), counted);
    assert!(String::from_utf8_lossy(&out.stderr).contains("link-type EN10MB"));
}

fn lines_of(bytes: &[u8]) -> u64 {
    lines(bytes).len() as u64
}

#[test]
fn sigterm_with_no_traffic_exits_promptly_with_an_empty_valid_file() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiet.pcap");
    let (_listener, port) = free_listener();
    let cap = Capturing::start(&[
        "-i",
        "lo",
        "-f",
        &format!("tcp port {port}"),
        "-w",
        file.to_str().unwrap(),
    ]);
    // Idle: every thread of the capture is blocked, waiting for a packet.
    support::wait_until(
        "reqresp capture is idle (all its threads asleep)",
        Duration::from_secs(10),
        || all_threads_asleep(cap.child.id()),
    );
    cap.signal(libc::SIGTERM);
    let (ok, lines, took) = cap.finish(Duration::from_secs(5));
    assert!(ok, "{lines:?}");
    assert!(
        took < Duration::from_secs(1),
        "stopping an idle capture took {took:?}"
    );
    assert_eq!(reported_count(&lines), 0);
    let (frames, warnings) = tshark(&file, &[]);
    assert_eq!((frames.len(), warnings.as_str()), (0, ""));
}

/// True when every thread of process `pid` is in state S (asleep in the
/// kernel, as when blocked on a read), read from /proc.
fn all_threads_asleep(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.map_while(Result::ok).all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // "tid (comm) S ...": the state follows the last ')'.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
        })
    })
}

/// Keeps loopback traffic flowing on `listener` until `stop` is set (and
/// at most 10 s): one short echo conversation after another.
fn background_traffic(listener: TcpListener, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let Ok(mut client) = TcpStream::connect(("127.0.0.1", port)) else {
                break;
            };
            let _ = client.write_all(b"ping\n");
            if let Ok((mut conn, _)) = listener.accept() {
                let _ = conn.write_all(b"Echo: ping\n");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn count_stops_at_exactly_that_many_packets() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("count.pcap");
    let (listener, port) = free_listener();
    let cap = Capturing::start(&[
        "-i",
        "lo",
        "-f",
        &format!("tcp port {port}"),
        "-c",
        "7",
        "-w",
        file.to_str().unwrap(),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = background_traffic(listener, Arc::clone(&stop));
    let (ok, lines, _) = cap.finish(Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();
    assert!(ok, "{lines:?}");
    assert_eq!(reported_count(&lines), 7);
    let (frames, warnings) = tshark(&file, &[]);
    assert_eq!(warnings, "");
    assert_eq!(frames.len(), 7);
}

#[test]
fn duration_stops_by_itself() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("duration.pcap");
    let started = Instant::now();
    let cap = Capturing::start(&[
        "-i",
        "lo",
        "--duration",
        "1",
        "-f",
        &format!("tcp port {}", support::closed_port()),
        "-w",
        file.to_str().unwrap(),
    ]);
    let (ok, lines, _) = cap.finish(Duration::from_secs(5));
    let took = started.elapsed();
    assert!(ok, "{lines:?}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "--duration 1 took {took:?}"
    );
    assert_eq!(reported_count(&lines), 0);
    assert!(tcpdump_read(&file).status.success());
}

#[test]
fn any_interface_writes_linux_cooked_headers() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("any.pcap");
    let (listener, port) = free_listener();
    let cap = Capturing::start(&[
        "-i",
        "any",
        "-f",
        &format!("tcp port {port}"),
        "-w",
        file.to_str().unwrap(),
    ]);
    echo_traffic(listener, 1, 2);
    cap.signal(libc::SIGINT);
    let (ok, lines, _) = cap.finish(Duration::from_secs(5));
    assert!(ok, "{lines:?}");
    let counted = reported_count(&lines);
    assert!(
        counted >= 9,
        "a 2-exchange conversation has at least 9 packets, got {counted}"
    );

    let out = tcpdump_read(&file);
    let header = String::from_utf8_lossy(&out.stderr);
    assert!(
        header.contains("link-type LINUX_SLL2") || header.contains("link-type LINUX_SLL "),
        "not a Linux cooked capture: {header}"
    );
    let (frames, warnings) = tshark(&file, &["-T", "fields", "-e", "frame.protocols"]);
    assert_eq!(warnings, "");
    assert_eq!(frames.len() as u64, counted);
    assert!(frames.iter().all(|p| p.starts_with("sll:")), "{frames:?}");
}

#[test]
fn dash_writes_the_capture_to_stdout() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stdout.pcap");
    let (listener, port) = free_listener();
    let out = std::fs::File::create(&file).unwrap();
    let cap = Capturing::start_with_stdout(
        &["-i", "lo", "-f", &format!("tcp port {port}"), "-w", "-"],
        Stdio::from(out),
    );
    assert!(
        cap.ready_line.contains("writing stdout"),
        "{}",
        cap.ready_line
    );
    echo_traffic(listener, 1, 1);
    cap.signal(libc::SIGINT);
    let (ok, lines, _) = cap.finish(Duration::from_secs(5));
    assert!(ok, "{lines:?}");
    let (frames, warnings) = tshark(&file, &[]);
    assert_eq!(warnings, "");
    assert_eq!(frames.len() as u64, reported_count(&lines));
}

/// Runs `reqresp capture <args>` to completion (it should fail at once).
fn capture_fails(args: &[&str]) -> String {
    let out = reqresp()
        .arg("capture")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run reqresp capture");
    assert!(!out.status.success(), "expected failure, got success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_interface_lists_the_interfaces_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.pcap");
    let stderr = capture_fails(&["-i", "nosuch0", "-w", file.to_str().unwrap()]);
    assert!(stderr.contains("no interface named 'nosuch0'"), "{stderr}");
    assert!(
        stderr.contains("lo,") || stderr.contains(", lo"),
        "lo is not listed: {stderr}"
    );
    assert!(stderr.contains("any"), "{stderr}");
    assert!(
        !file.exists(),
        "a file was created for a capture that never started"
    );
}

#[test]
fn bad_filter_shows_libpcap_message_and_the_filter() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.pcap");
    let stderr = capture_fails(&[
        "-i",
        "lo",
        "-f",
        "tcp prot 2222",
        "-w",
        file.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("bad capture filter 'tcp prot 2222'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("syntax error"),
        "libpcap's message is missing: {stderr}"
    );
}

#[test]
fn unwritable_output_is_reported_with_the_reason() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    let stderr = capture_fails(&["-i", "lo", "-w", "/nonexistent-dir/x.pcap"]);
    assert!(
        stderr.contains("cannot write the capture to /nonexistent-dir/x.pcap"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
}

#[test]
fn without_privilege_the_error_names_cap_net_raw() {
    if !is_root() || !have("setpriv") {
        return skip("needs root and setpriv to run the binary as nobody");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = support::reqresp_as_nobody()
        .args(["capture", "-i", "lo", "-w"])
        .arg(dir.path().join("x.pcap"))
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") && !stderr.contains("reqresp") {
        return skip("the test binary is not executable by nobody here");
    }
    assert!(!out.status.success(), "capture as nobody succeeded");
    assert!(
        stderr.contains("capturing on lo needs the CAP_NET_RAW capability")
            && stderr.contains("sudo setcap cap_net_raw,cap_net_admin=eip"),
        "{stderr}"
    );
}

#[test]
fn library_capture_is_active_when_start_returns() {
    if let Some(why) = cannot_capture() {
        return skip(why);
    }
    use reqresp::capture::{Capture, CaptureConfig};
    // The kernel's drop counter is no reason to fail: on a loaded machine it
    // counts packets of other traffic taken before the filter was set. A
    // run that lost the SYN while drops were reported is tried once more.
    for attempt in 1..=2 {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.pcap");
        let (listener, port) = free_listener();
        let mut config = CaptureConfig::new("lo", &file);
        config.filter = Some(format!("tcp port {port}"));
        let handle = Capture::start(config).expect("start capture");
        assert_eq!(handle.link_type(), "EN10MB");
        // No sleep: the very first SYN must be captured.
        echo_traffic(listener, 1, 1);
        let stats = handle.stop().expect("stop capture");
        let (syns, _) = tshark(&file, &["-Y", "tcp.flags.syn==1 && tcp.flags.ack==0"]);
        if syns.len() != 1 && stats.dropped > 0 && attempt == 1 {
            eprintln!(
                "note: {} packets dropped by the kernel: again",
                stats.dropped
            );
            continue;
        }
        assert_eq!(syns.len(), 1, "the first packet after start() was missed");
        let (frames, warnings) = tshark(&file, &[]);
        assert_eq!(warnings, "");
        assert_eq!(frames.len() as u64, stats.captured);
        return;
    }
}
