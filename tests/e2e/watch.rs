//! `reqresp watch`: the full-screen view driven in tmux (live on loopback,
//! and `--step` through a capture), the JSON-lines mode against `analyze
//! --format json`, `-w` against `analyze` of the written file, and the
//! message without capture privilege.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Server};

const LESSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lesson.pcap");

/// A tmux session of our own, killed (by name) when dropped.
struct Tmux {
    name: String,
}

/// `tmux` on a server of its own (`-L name`): tests that start sessions at
/// the same time would otherwise race to start the one default server.
fn tmux(name: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", name]);
    c
}

impl Tmux {
    /// Starts `command` in a new detached `width`×`height` session; the
    /// pane stays after the command exits, so its last screen can be read.
    fn start(tag: &str, command: &str, (width, height): (u16, u16)) -> Tmux {
        let name = format!("reqresp-{tag}-{}", std::process::id());
        let status = tmux(&name)
            .args(["new-session", "-d", "-s", &name, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(format!(
                "{command}; echo WATCH-EXITED $?; stty -a; echo STTY-DONE; sleep 600"
            ))
            .env("TERM", "xterm-256color")
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Tmux { name }
    }

    fn keys(&self, keys: &[&str]) {
        let status = tmux(&self.name)
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        self.capture(&[])
    }

    /// The screen and the lines scrolled off it.
    fn history(&self) -> String {
        self.capture(&["-S", "-2000"])
    }

    fn capture(&self, extra: &[&str]) -> String {
        let out = tmux(&self.name)
            .args(["capture-pane", "-p", "-J", "-t", &self.name])
            .args(extra)
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows everything in `texts`.
    fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let last = self.screen();
            if texts.iter().all(|t| last.contains(t)) {
                return last;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the screen never showed {texts:?}; it shows:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the pane is on the alternate screen.
    fn alternate(&self) -> bool {
        let out = tmux(&self.name)
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&self.name).args(["kill-server"]).status();
    }
}

/// Whether tmux is here and the test runs as root (`why_root` says what
/// needs root); if not, says so through [`support::skip`].
fn tmux_as_root(why_root: &str) -> bool {
    if !support::have("tmux") {
        support::skip("tmux is not installed");
        false
    } else if !support::is_root() {
        support::skip(why_root);
        false
    } else {
        true
    }
}

#[test]
fn live_in_tmux_the_arrows_appear_the_detail_opens_and_quit_restores_the_terminal() {
    if !tmux_as_root("a live capture on lo needs root") {
        return;
    }
    let server = Server::start(&[]);
    let port = server.addr.port();
    let tmux = Tmux::start(
        "watch-live",
        &format!(
            "{} watch -i lo --port {port} --framing line",
            support::bin()
        ),
        (100, 30),
    );
    // The capture is open before the first frame is drawn.
    tmux.wait_for(&[
        "reqresp watch · lo 'tcp port",
        "waiting for a TCP connection",
    ]);
    assert!(tmux.alternate(), "full screen on the alternate screen");
    let client = support::reqresp()
        .args(["client", &server.addr.to_string(), "hello", "second one"])
        .output()
        .unwrap();
    assert!(client.status.success());
    let screen = tmux.wait_for(&[
        "SYN-ACK",
        "\"hello\" (5 B)",
        "\"Echo: second one\" (16 B)",
        "FIN",
        "closed",
    ]);
    assert!(screen.contains("FOLLOW"), "{screen}");
    // Select (follow goes off), then the detail of the newest exchange.
    tmux.keys(&["k"]);
    tmux.wait_for(&["Connection 1 "]);
    tmux.keys(&["Enter"]);
    let detail = tmux.wait_for(&["Exchange 2 of 2", "packet #", "client → server"]);
    assert!(
        detail.contains("73 65 63 6f 6e 64 20 6f 6e 65 0a"),
        "{detail}"
    );
    tmux.keys(&["Up"]);
    tmux.wait_for(&["Exchange 1 of 2", "68 65 6c 6c 6f 0a"]);
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["├─ \"hello\""]);
    tmux.keys(&["q"]);
    // The shell prints stty's settings after watch's summary, then STTY-DONE;
    // the summary may have scrolled off the screen by then.
    tmux.wait_for(&["STTY-DONE"]);
    let after = tmux.history();
    assert!(
        after.contains("WATCH-EXITED 0") && after.contains("Summary"),
        "{after}"
    );
    assert!(after.contains("exchanges    2"), "{after}");
    assert!(!tmux.alternate(), "the alternate screen was left");
    // stty -a after the exit: canonical mode and echo are back on.
    let stty = after.split("WATCH-EXITED").nth(1).unwrap();
    assert!(
        stty.contains(" icanon") && stty.contains(" echo "),
        "{stty}"
    );
}

#[test]
fn step_goes_forward_and_back_one_packet_at_a_time() {
    if !support::have("tmux") {
        return support::skip("tmux is not installed");
    }
    let tmux = Tmux::start(
        "watch-step",
        &format!("{} watch -r {LESSON} --step", support::bin()),
        (120, 30),
    );
    tmux.wait_for(&["packet 0 of 31"]);
    tmux.keys(&["Right"]);
    let one = tmux.wait_for(&["packet 1 of 31", "SYN", "Connection 1 "]);
    assert!(!one.contains("SYN-ACK"), "{one}");
    // The lesson's connections interleave: packet 2 opens the second.
    tmux.keys(&["Right"]);
    tmux.wait_for(&["packet 2 of 31", "Connection 2 "]);
    tmux.keys(&["Left"]);
    let back = tmux.wait_for(&["packet 1 of 31", "Connection 1 "]);
    assert!(
        !back.contains("Connection 2"),
        "stepping back undoes: {back}"
    );
    for _ in 0..31 {
        tmux.keys(&["Right"]);
    }
    tmux.wait_for(&["packet 31 of 31", "reset"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["WATCH-EXITED 0", "Summary"]);
}

/// `analyze --format json` of `path`.
fn analyze_json(path: &str) -> Value {
    let out = support::run_ok(support::reqresp().args(["analyze", path, "--format", "json"]));
    serde_json::from_str(&out).unwrap()
}

/// The JSON lines of a watch's stdout.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks each line against the analysis, field by field; returns the
/// number of lines of each event.
fn same_as_analyze(lines: &[Value], analysis: &Value) -> [usize; 4] {
    let conns: std::collections::HashMap<String, &Value> = analysis["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].to_string(), c))
        .collect();
    let conn = |id: &Value| {
        *conns
            .get(&id.to_string())
            .unwrap_or_else(|| panic!("connection {id} in analyze"))
    };
    let mut counts = [0; 4];
    let mut tcp_seen: std::collections::HashMap<String, usize> = Default::default();
    for line in lines {
        match line["event"].as_str().unwrap() {
            "connection_opened" => {
                counts[0] += 1;
                let c = conn(&line["id"]);
                assert_eq!(line["client"], c["client"]);
                assert_eq!(line["server"], c["server"]);
                assert_eq!(line["time"], c["first_seen"]);
            }
            "exchange" => {
                counts[1] += 1;
                let i = line["index"].as_u64().unwrap() as usize;
                let e = &conn(&line["connection"])["exchanges"][i];
                for (k, v) in e.as_object().unwrap() {
                    assert_eq!(&line[k], v, "exchange field {k}");
                }
            }
            "tcp_event" => {
                counts[2] += 1;
                let id = line["connection"].to_string();
                let n = tcp_seen.entry(id).or_default();
                let e = &conn(&line["connection"])["events"][*n];
                *n += 1;
                for (k, v) in e.as_object().unwrap() {
                    assert_eq!(&line[k], v, "tcp event field {k}");
                }
            }
            "connection_closed" => {
                counts[3] += 1;
                let c = conn(&line["id"]);
                for (k, v) in c.as_object().unwrap() {
                    assert_eq!(&line[k], v, "connection field {k}");
                }
            }
            other => panic!("unknown event {other}"),
        }
    }
    counts
}

#[test]
fn json_lines_carry_the_fields_of_analyze_json() {
    let out = support::reqresp()
        .args(["watch", "-r", LESSON, "--speed", "max"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let analysis = analyze_json(LESSON);
    let counts = same_as_analyze(&lines(&String::from_utf8_lossy(&out.stdout)), &analysis);
    // 3 connections; the exchanges settled before their close; 4 TCP events.
    assert_eq!(counts[0], 3);
    assert_eq!(counts[3], 3);
    assert_eq!(counts[2], 4);
    assert!(counts[1] >= 1);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("exchanges    7"), "{summary}");
}

#[test]
fn what_watch_shows_agrees_with_analyze_of_the_file_it_wrote() {
    if !support::is_root() {
        return support::skip("a live capture on lo needs root");
    }
    let server = Server::start(&[]);
    let port = server.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.pcap");
    let stderr_file = dir.path().join("stderr");
    let watch = support::reqresp()
        .args(["watch", "-i", "lo", "--port", &port.to_string(), "-w"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    // The capture is open once the file has its header.
    support::wait_until(
        "the capture file is started",
        Duration::from_secs(10),
        || std::fs::metadata(&file).is_ok_and(|m| m.len() >= 24),
    );
    for round in 0..3 {
        let out = support::reqresp()
            .args(["client", &server.addr.to_string()])
            .args([format!("hello {round}"), "again".to_owned()])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // Stop it the way a terminal would, once it has written every packet:
    // packets still in the kernel's buffer when it stops are not captured
    // (as with tcpdump), so their count is no part of this test.
    support::wait_until(
        "the three connections are captured to their close",
        Duration::from_secs(10),
        || {
            let analysis = analyze_json(file.to_str().unwrap());
            let connections = analysis["connections"].as_array().cloned();
            analysis["summary"]["exchanges"] == 6
                && connections
                    .is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["state"] == "closed"))
        },
    );
    // SAFETY: kill on our own child's PID.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let out = watch.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(&stderr_file).unwrap()
    );
    let analysis = analyze_json(file.to_str().unwrap());
    let counts = same_as_analyze(&lines(&String::from_utf8_lossy(&out.stdout)), &analysis);
    assert_eq!(counts[0], 3, "opened");
    assert_eq!(counts[3], 3, "closed");
    assert_eq!(analysis["summary"]["exchanges"], 6);
}

#[test]
fn without_capture_privilege_watch_says_how_to_get_it() {
    if !support::is_root() || !support::have("setpriv") {
        return support::skip("dropping privilege needs root and setpriv");
    }
    let out = support::reqresp_as_nobody()
        .args(["watch", "-i", "lo", "--port", "2222"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sudo"), "{err}");
    assert!(
        err.contains("setcap cap_net_raw,cap_net_admin+eip"),
        "{err}"
    );
    assert!(err.contains("reqresp watch -r FILE"), "{err}");
}

/// `reqresp lab --mode loopback ARGS` in a tmux pane, in a fresh folder.
fn lab_in_tmux(tag: &str, args: &str) -> (tempfile::TempDir, Tmux) {
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "cd {} && {} lab --mode loopback {args}",
        dir.path().display(),
        support::bin()
    );
    let tmux = Tmux::start(tag, &command, (110, 32));
    (dir, tmux)
}

#[test]
fn lab_watch_shows_the_labs_conversation_live_then_its_report() {
    if !tmux_as_root("the lab's capture needs root") {
        return;
    }
    let (dir, tmux) = lab_in_tmux("lab-watch", "--watch -m hello -m 'apa kabar'");
    let screen = tmux.wait_for(&["\"hello\" (5 B)", "\"Echo: apa kabar\" (15 B)", "FIN"]);
    assert!(screen.contains("reqresp watch · lo 'tcp port"), "{screen}");
    tmux.keys(&["q"]);
    let after = tmux.wait_for(&["WATCH-EXITED 0", "What the live view saw"]);
    assert!(after.contains("exchanges    2"), "{after}");
    assert!(!tmux.alternate(), "the alternate screen was left");
    assert!(dir.path().join("reqresp-lab/latest/reqresp.pcap").exists());
}

#[test]
fn lab_interactive_sends_what_is_typed_under_the_live_ladder() {
    if !tmux_as_root("the lab's capture needs root") {
        return;
    }
    let (_dir, tmux) = lab_in_tmux("lab-interactive", "--interactive");
    tmux.wait_for(&["> ▏", "Enter sends"]);
    tmux.keys(&["-l", "hello there"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["\"Echo: hello there\" (17 B)"]);
    tmux.keys(&["-l", "second"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["\"Echo: second\" (12 B)"]);
    // Esc ends the client: its FIN appears, and q then quits.
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["FIN", "closed"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["WATCH-EXITED 0", "What the live view saw"]);
    let after = tmux.history();
    assert!(after.contains("  > hello there"), "{after}");
    assert!(after.contains("  < Echo: second"), "{after}");
    assert!(after.contains("exchanges    2"), "{after}");
}

/// Writes a raw-IPv4 pcap of `n` connections that exchange once and never
/// close, 100 µs apart.
fn never_closed_capture(path: &std::path::Path, n: u32) {
    use reqresp::analyze::testing::Script;

    support::write_scripts(
        path,
        (0..n).map(|i| {
            let t = 1_700_000_000_000_000 + u64::from(i) * 100;
            let mut w = Script::new(1000 + i, 5000 + i);
            w.client.set_port(10_000 + (i % 50_000) as u16);
            w.handshake(t, 10);
            w.c(t + 30, format!("hello {i}\n").as_bytes());
            w.s(t + 50, format!("Echo: hello {i}\n").as_bytes());
            w
        }),
    );
}

/// `watch --memcap` bounds the analyzer as `analyze --memcap` does, with
/// the same evictions: past the budget the oldest connections come out
/// evicted, and every line still agrees with `analyze` given the same budget.
#[test]
fn watch_memcap_evicts_as_analyze_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("open.pcap");
    // More than their parked forms (about 200 bytes each) fit in 1 MiB.
    never_closed_capture(&file, 40_000);
    let path = file.to_str().unwrap();
    let out = support::reqresp()
        .args(["watch", "-r", path, "--speed", "max", "--memcap", "1MiB"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let analysis: Value = serde_json::from_str(&support::run_ok(
        support::reqresp().args(["analyze", path, "--format", "json", "--memcap", "1MiB"]),
    ))
    .unwrap();
    let evicted = analysis["summary"]["connections_evicted"].as_u64().unwrap();
    assert!(
        evicted > 20_000,
        "a 1 MiB budget evicts most of 40,000: {evicted}"
    );
    let lines = lines(&String::from_utf8_lossy(&out.stdout));
    let counts = same_as_analyze(&lines, &analysis);
    assert_eq!(counts[3], 40_000, "every connection comes out");
    let evicted_lines = lines
        .iter()
        .filter(|l| l["event"] == "connection_closed" && l["state"] == "evicted")
        .count();
    assert_eq!(evicted_lines as u64, evicted);
    assert!(
        stderr.contains("evicted to keep the analyzer's memory within --memcap 1MiB"),
        "{stderr}"
    );
}
