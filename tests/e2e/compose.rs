//! End-to-end tests of the Docker lab and the Wireshark dissector:
//! - `contrib/wireshark/reqresp.lua` run by tshark on captures of real TCP
//!   traffic (line and length framing, several messages in one segment, one
//!   message over several segments, Decode As on another port), made with
//!   tcpdump in a network namespace of their own so port 2222 is free;
//! - every command in `docs/tutorial*.md` is run by `scripts/compose-e2e.sh`;
//! - `scripts/compose-e2e.sh` itself, when a Docker engine answers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{self, have, is_root, skip};

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dissector() -> PathBuf {
    repo().join("contrib/wireshark/reqresp.lua")
}

/// Why the dissector tests cannot run here, if they cannot.
fn dissector_unavailable() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespace, tcpdump)".into());
    }
    for tool in ["tcpdump", "tshark", "python3", "ip"] {
        if !have(tool) {
            return Some(format!("{tool} is not installed"));
        }
    }
    let version = Command::new("tshark").arg("-v").output().ok()?;
    if !String::from_utf8_lossy(&version.stdout).contains("with Lua") {
        return Some("this tshark has no Lua support".into());
    }
    None
}

/// A network namespace with only `lo` up, deleted on drop: its port 2222
/// is free whatever runs on the machine.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "rr-lua-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = NetNs { name };
        run_ok(ns.command("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// A command run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ok(cmd: &mut Command) {
    let status = cmd.status().expect("spawn");
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// A tcpdump writing a pcap, stopped with SIGINT (like Ctrl-C).
struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    /// Starts tcpdump on `lo` in `ns` and waits (at most 10 s) until it
    /// reports that it listens. `--immediate-mode`: packets reach the file
    /// at once, so none is lost when it is stopped right after the traffic.
    fn start(ns: &NetNs, port: u16, file: &Path) -> Tcpdump {
        let mut child = ns
            .command("tcpdump")
            .args(["--immediate-mode", "-ni", "lo", "-w"])
            .arg(file)
            .arg(format!("tcp port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tcpdump = Tcpdump { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => return tcpdump,
                Ok(_) => {}
                Err(err) => {
                    tcpdump.stop();
                    panic!("tcpdump did not report 'listening on' within 10 s: {err}");
                }
            }
        }
    }

    fn stop(&mut self) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("tcpdump did not stop within 10 s of SIGINT");
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Real TCP traffic on 127.0.0.1:PORT in either framing: a server answering
/// `Echo: <msg>` to every message and a client that sends, one exchange at a
/// time: "hello"; "world"; "one", "two", "three" in one send (so one
/// segment), answered in one send; "split" in two (line) or three (length,
/// cut inside the prefix) sends 100 ms apart with TCP_NODELAY, so several
/// segments; "crlf\r\n" (line) or "two\nlines" (length); then, for length
/// framing, a prefix claiming 2 GiB followed by 4 bytes, and a close.
const TRAFFIC: &str = r#"
import socket, struct, sys, threading, time
framing, port = sys.argv[1], int(sys.argv[2])

def enc(m):
    return m + b"\n" if framing == "line" else struct.pack(">I", len(m)) + m

def take(buf):
    out = []
    while True:
        if framing == "line":
            i = buf.find(b"\n")
            if i < 0: return out, buf
            out.append(buf[:i].rstrip(b"\r")); buf = buf[i + 1:]
        else:
            if len(buf) < 4: return out, buf
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n: return out, buf
            out.append(buf[4:4 + n]); buf = buf[4 + n:]

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(1); srv.settimeout(10)

def serve():
    c, _ = srv.accept()
    c.settimeout(10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        d = c.recv(65536)
        if not d: break
        buf += d
        msgs, buf = take(buf)
        if msgs: c.sendall(b"".join(enc(b"Echo: " + m) for m in msgs))
    c.close()

t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", port))
cl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
cl.settimeout(10)
rbuf = b""
def expect(k):
    global rbuf
    got = []
    while True:
        msgs, rbuf = take(rbuf); got += msgs
        if len(got) >= k: return got
        d = cl.recv(65536)
        if not d: sys.exit("server closed early")
        rbuf += d

cl.sendall(enc(b"hello")); expect(1)
cl.sendall(enc(b"world")); expect(1)
cl.sendall(enc(b"one") + enc(b"two") + enc(b"three")); expect(3)
w = enc(b"split")
cuts = [0, 3, len(w)] if framing == "line" else [0, 2, 6, len(w)]
for i in range(len(cuts) - 1):
    if i: time.sleep(0.1)
    cl.sendall(w[cuts[i]:cuts[i + 1]])
expect(1)
if framing == "line":
    cl.sendall(b"crlf\r\n")
else:
    cl.sendall(enc(b"two\nlines"))
expect(1)
if framing == "length":
    cl.sendall(struct.pack(">I", 0x7fffffff) + b"junk")
cl.shutdown(socket.SHUT_WR)
cl.recv(1); cl.close(); t.join(); srv.close()
"#;

/// Captures `TRAFFIC` in `framing` on `port` into a pcap in `dir`.
fn capture_traffic(dir: &Path, framing: &str, port: u16) -> PathBuf {
    let ns = NetNs::new();
    let pcap = dir.join(format!("{framing}-{port}.pcap"));
    let mut tcpdump = Tcpdump::start(&ns, port, &pcap);
    let out = ns
        .command("timeout")
        .args(["30", "python3", "-c", TRAFFIC, framing, &port.to_string()])
        .output()
        .expect("spawn python3");
    tcpdump.stop();
    assert!(
        out.status.success(),
        "traffic generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

/// One tshark row per frame that carries reqresp messages: role, text,
/// length, framing (values of several messages joined with `|`) and the
/// frames the message was reassembled from.
#[derive(Debug, PartialEq)]
struct Row {
    role: String,
    text: String,
    length: String,
    framing: String,
    segments: usize,
}

fn tshark_rows(pcap: &Path, extra: &[&str]) -> Vec<Row> {
    let out = Command::new("timeout")
        .arg("60")
        .arg("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .args(extra)
        .arg("-r")
        .arg(pcap)
        .args(["-Y", "reqresp.role", "-T", "fields", "-E", "aggregator=|"])
        .args([
            "-e",
            "reqresp.role",
            "-e",
            "reqresp.text",
            "-e",
            "reqresp.length",
        ])
        .args(["-e", "reqresp.framing", "-e", "tcp.segment"])
        .output()
        .expect("spawn tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("Lua"),
        "the dissector reported an error: {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "unexpected tshark row {line:?}");
            let mut frames: Vec<&str> = f[4].split('|').filter(|s| !s.is_empty()).collect();
            frames.dedup();
            Row {
                role: f[0].into(),
                text: f[1].into(),
                length: f[2].into(),
                framing: f[3].into(),
                segments: frames.len().max(1),
            }
        })
        .collect()
}

fn row(role: &str, text: &str, length: &str, framing: &str, segments: usize) -> Row {
    Row {
        role: role.into(),
        text: text.into(),
        length: length.into(),
        framing: framing.into(),
        segments,
    }
}

/// The rows `TRAFFIC` gives in `framing`.
fn expected_rows(framing: &str) -> Vec<Row> {
    let f = framing;
    let (last, last_len, split_segments) = match framing {
        "line" => ("crlf", 4, 2),
        _ => ("two\\nlines", 9, 3),
    };
    vec![
        row("request", "hello", "5", f, 1),
        row("response", "Echo: hello", "11", f, 1),
        row("request", "world", "5", f, 1),
        row("response", "Echo: world", "11", f, 1),
        row(
            "request|request|request",
            "one|two|three",
            "3|3|5",
            &format!("{f}|{f}|{f}"),
            1,
        ),
        row(
            "response|response|response",
            "Echo: one|Echo: two|Echo: three",
            "9|9|11",
            &format!("{f}|{f}|{f}"),
            1,
        ),
        row("request", "split", "5", f, split_segments),
        row("response", "Echo: split", "11", f, 1),
        row("request", last, &last_len.to_string(), f, 1),
        row(
            "response",
            &format!("Echo: {last}"),
            &(last_len + 6).to_string(),
            f,
            1,
        ),
    ]
}

#[test]
fn dissector_shows_line_framed_requests_and_responses() {
    if let Some(why) = dissector_unavailable() {
        return skip(&why);
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture_traffic(dir.path(), "line", 2222);
    assert_eq!(tshark_rows(&pcap, &[]), expected_rows("line"));
}

#[test]
fn dissector_shows_length_framed_requests_and_responses() {
    if let Some(why) = dissector_unavailable() {
        return skip(&why);
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture_traffic(dir.path(), "length", 2222);
    let framing = ["-o", "reqresp.framing:length"];
    assert_eq!(tshark_rows(&pcap, &framing), expected_rows("length"));

    // The prefix claiming 2 GiB is flagged, not reassembled.
    let out = Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .args(framing)
        .arg("-r")
        .arg(&pcap)
        .args([
            "-Y",
            "reqresp.too_long.expert",
            "-T",
            "fields",
            "-e",
            "tcp.len",
        ])
        .output()
        .expect("spawn tshark");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "8");

    // Read as line framing, the same bytes are not these messages.
    assert_ne!(tshark_rows(&pcap, &[]), expected_rows("length"));
}

#[test]
fn dissector_decodes_another_port_with_decode_as_or_the_port_preference() {
    if let Some(why) = dissector_unavailable() {
        return skip(&why);
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture_traffic(dir.path(), "line", 9000);
    assert_eq!(
        tshark_rows(&pcap, &[]),
        vec![],
        "port 9000 is not reqresp by default"
    );
    assert_eq!(
        tshark_rows(&pcap, &["-d", "tcp.port==9000,reqresp"]),
        expected_rows("line")
    );
    assert_eq!(
        tshark_rows(&pcap, &["-o", "reqresp.port:9000"]),
        expected_rows("line")
    );
}

/// Commands in the fenced ```sh blocks of a Markdown file, one per line.
fn doc_commands(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(fence) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && fence.trim() == "sh";
            continue;
        }
        if in_sh && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.to_string());
        }
    }
    commands
}

/// Commands the e2e script runs as `doc '...'`, `doc_fails '...'` or
/// `doc_bg LOG '...'`.
fn script_doc_commands() -> Vec<String> {
    let script = std::fs::read_to_string(repo().join("scripts/compose-e2e.sh")).unwrap();
    let mut commands = Vec::new();
    for line in script.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("doc") {
            let after = &rest[at + 3..];
            let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
            let quoted = if let Some(q) = after.strip_prefix(" '") {
                Some(q)
            } else if let Some(q) = after.strip_prefix("_fails '") {
                Some(q)
            } else if let Some(bg) = after.strip_prefix("_bg ") {
                bg.split_once(" '").map(|(_, q)| q)
            } else {
                None
            };
            match quoted
                .filter(|_| before_ok)
                .and_then(|q| q.split_once('\''))
            {
                Some((command, tail)) => {
                    commands.push(command.to_string());
                    rest = tail;
                }
                None => rest = after,
            }
        }
    }
    commands
}

#[test]
fn every_tutorial_command_is_run_by_the_compose_e2e_script() {
    let script = script_doc_commands();
    assert!(script.len() >= 10, "too few doc commands found: {script:?}");
    for doc in ["docs/tutorial.md", "docs/tutorial.id.md"] {
        let commands = doc_commands(&repo().join(doc));
        assert!(
            commands.len() >= 10,
            "{doc}: too few commands: {commands:?}"
        );
        for command in &commands {
            assert!(
                script.contains(command),
                "{doc}: `{command}` is not run by scripts/compose-e2e.sh \
                 (add `doc '{command}'` there, or fix the doc)"
            );
        }
        for command in &script {
            assert!(
                commands.contains(command),
                "scripts/compose-e2e.sh runs `{command}`, which {doc} does not show"
            );
        }
    }
}

#[test]
fn the_lab_five_steps_appear_in_the_tutorials_as_the_lab_has_them() {
    let steps = [
        "docker compose -f compose/reqresp.yml up -d",
        "sudo tcpdump -nvi br-reqresp -w reqresp.pcap",
        "docker compose -f compose/reqresp.yml exec reqresp-server reqresp server",
        "docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222",
        "docker compose -f compose/reqresp.yml down",
    ];
    for doc in ["docs/tutorial.md", "docs/tutorial.id.md"] {
        let commands = doc_commands(&repo().join(doc));
        // In this order, with anything between them (the original programs,
        // the comparisons, a first `up` ... `down`).
        let mut from = 0;
        for step in steps {
            let at = commands[from..]
                .iter()
                .position(|c| c == step)
                .unwrap_or_else(|| panic!("{doc} lacks the lab step `{step}` after step {from}"));
            from += at + 1;
        }
    }
}

/// Every picture the tutorials show exists, and the tshark listing they
/// quote is the one `scripts/docs-images.sh` wrote.
#[test]
fn the_tutorials_pictures_exist_and_quote_the_scripts_output() {
    let tshark = std::fs::read_to_string(repo().join("docs/images/framing-tshark.txt")).unwrap();
    for doc in ["docs/tutorial.md", "docs/tutorial.id.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        assert!(
            text.contains(tshark.trim_end()),
            "{doc} does not quote docs/images/framing-tshark.txt as it is"
        );
        let mut rest = text.as_str();
        let mut seen = 0;
        while let Some(at) = rest.find("(images/") {
            let link = &rest[at + 1..];
            let end = link.find(')').expect("a closed link");
            let path = repo().join("docs").join(&link[..end]);
            assert!(
                path.exists(),
                "{doc} shows {} which does not exist",
                path.display()
            );
            seen += 1;
            rest = &link[end..];
        }
        assert!(
            seen >= 4,
            "{doc}: expected the SVG and PNG of both pictures"
        );
    }
}

/// `scripts/docs-images.sh` makes the pictures from real captures and
/// checks that they show what the tutorials say (two messages in one
/// segment, one message over several).
#[test]
fn docs_images_script_makes_the_pictures_from_real_captures() {
    if !is_root() {
        return skip("scripts/docs-images.sh needs root (namespaces, capture)");
    }
    for tool in ["ip", "nc", "rsvg-convert", "tshark"] {
        if !have(tool) {
            return skip(&format!(
                "{tool} is not installed; scripts/docs-images.sh not run"
            ));
        }
    }
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("timeout")
        .arg("120")
        .arg(repo().join("scripts/docs-images.sh"))
        .env("REQRESP_BIN", support::bin())
        .env("REQRESP_IMAGES_DIR", out.path())
        .stdin(Stdio::null())
        .status()
        .expect("spawn scripts/docs-images.sh");
    assert!(status.success(), "scripts/docs-images.sh failed: {status}");
    for name in ["merged", "split"] {
        let svg = std::fs::read_to_string(out.path().join(format!("framing-{name}.svg"))).unwrap();
        assert!(
            svg.contains("one recv()"),
            "framing-{name}.svg lacks its note"
        );
        assert!(
            svg.contains("pure ACK"),
            "framing-{name}.svg lacks the ACK line"
        );
        let png = std::fs::read(out.path().join(format!("framing-{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "framing-{name}.png is not a PNG"
        );
    }
    let tshark = std::fs::read_to_string(out.path().join("framing-tshark.txt")).unwrap();
    assert!(tshark.contains("request\t3091"), "{tshark}");
    assert!(tshark.contains("response\t3097"), "{tshark}");
}

/// Why the Compose lab cannot run here, if it cannot.
fn docker_unavailable() -> Option<String> {
    if !is_root() {
        return Some("the Docker lab test needs root (tcpdump on br-reqresp)".into());
    }
    if !have("docker") {
        return Some("docker is not installed".into());
    }
    let answers = Command::new("timeout")
        .args(["20", "docker", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !answers {
        return Some("no Docker engine answers (docker info failed)".into());
    }
    if !have("docker-compose")
        && !Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        return Some("neither docker compose nor docker-compose is installed".into());
    }
    // No image can be pulled in the test: the base comes from debootstrap
    // (scripts/docker-base.sh), unless it was made before.
    let base_cached = Command::new("docker")
        .args(["image", "inspect", "reqresp-base:bookworm"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || std::path::Path::new(
            "/var/cache/reqresp/reqresp-base-bookworm-libpcap0.8-python3-minimal.tar",
        )
        .exists();
    if !base_cached && !have("debootstrap") {
        return Some(
            "no reqresp-base:bookworm image and no debootstrap to make one (apt-get install debootstrap)"
                .into(),
        );
    }
    None
}

#[test]
fn compose_lab_runs_the_tutorial_end_to_end() {
    if let Some(why) = docker_unavailable() {
        return skip(&format!("{why}; scripts/compose-e2e.sh not run"));
    }
    // The script brings `reqresp lab --keep` up beside the Docker lab and
    // runs `reqresp lab --down`, which removes every kept lab: not while a
    // lab test keeps one.
    let _turn = crate::lab::DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(repo().join("scripts/compose-e2e.sh"))
        .env("REQRESP_BIN", support::bin())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn scripts/compose-e2e.sh");
    // Every step of the script is bounded; this bounds the whole, and SIGTERM
    // lets the script's trap take the lab down.
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill on our own child's PID.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            panic!("scripts/compose-e2e.sh took more than 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "scripts/compose-e2e.sh failed ({status}); its output is above"
    );
}
