//! End-to-end tests of `reqresp lab`: the real binary builds real network
//! namespaces (as root), captures on the bridge, and must leave nothing
//! behind. Tests run in parallel with each other, so every "nothing left"
//! check looks for the names of its own run, read from the lab's output.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{self, LabNames, have, is_root, reqresp, run_ok, skip};

/// The names one run printed: its bridge, its two namespaces and veths
/// (read by [`LabNames`]), the hosts' addresses and the server's pid.
#[derive(Debug)]
struct RunNames {
    lab: LabNames,
    server_ip: String,
    client_ip: String,
    /// The server's pid, once the run got that far.
    server_pid: Option<u32>,
}

impl std::ops::Deref for RunNames {
    type Target = LabNames;

    fn deref(&self) -> &LabNames {
        &self.lab
    }
}

impl RunNames {
    /// Reads the `topology` lines of the lab's output.
    fn parse(stdout: &str) -> RunNames {
        let lab = LabNames::parse(stdout);
        let mut names = RunNames {
            lab,
            server_ip: String::new(),
            client_ip: String::new(),
            server_pid: None,
        };
        for line in stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("server listening on") {
                names.server_pid = line
                    .split("(pid ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches(')').parse().ok());
            }
            if words.len() > 5 && words[1] == "host" && words[2] == "netns" {
                let ip = words[5].to_string();
                if words[0] == "server" {
                    names.server_ip = ip;
                } else {
                    names.client_ip = ip;
                }
            }
        }
        assert_eq!(names.veths.len(), 2, "no veths in:\n{stdout}");
        names
    }

    /// The process id of the run, from its namespace names (`rr-<pid>-srv`).
    fn pid(&self) -> u64 {
        self.netns[0].split('-').nth(1).unwrap().parse().unwrap()
    }

    /// Panics when anything of this run is still there.
    fn assert_gone(&self) {
        assert!(self.ifindex.is_some(), "bridge ifindex printed");
        self.lab.assert_gone();
        for link in &self.veths {
            let show = Command::new("ip")
                .args(["link", "show", link])
                .output()
                .unwrap();
            assert!(
                !show.status.success(),
                "`ip link show {link}` still finds it"
            );
        }
        let state = Path::new("/run/reqresp-lab").join(format!("{}.json", self.bridge));
        let owner = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["names"]["pid"].as_u64());
        assert_ne!(
            owner,
            Some(self.pid()),
            "state file of {} left behind",
            self.bridge
        );
        if let Some(pid) = self.server_pid {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&cmdline).contains("reqresp"),
                "server (pid {pid}) left running"
            );
        }
        if have("iptables") {
            let rules = Command::new("iptables")
                .args(["-S", "FORWARD"])
                .output()
                .unwrap();
            let rules = String::from_utf8_lossy(&rules.stdout);
            let mine = format!("reqresp lab pid {}\"", self.pid());
            assert!(
                !rules.contains(&mine),
                "firewall rule left behind:\n{rules}"
            );
        } else {
            skip("iptables is not installed: firewall rules not checked");
        }
    }
}

/// Runs `reqresp lab <args>` to its end (at most 90 s).
fn lab(args: &[&str]) -> Output {
    support::run_lab(args, Duration::from_secs(90))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "reqresp lab failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

/// One TCP packet as tshark decodes it.
#[derive(Debug)]
struct Packet {
    /// `ip:port`.
    src: String,
    /// `ip:port`.
    dst: String,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// Every TCP packet of a capture, read by tshark.
fn tcp_packets(pcap: &Path) -> Vec<Packet> {
    let out = run_ok(Command::new("tshark").arg("-r").arg(pcap).args([
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.flags.syn",
        "-e",
        "tcp.flags.ack",
        "-e",
        "tcp.flags.fin",
        "-e",
        "tcp.flags.reset",
        "-e",
        "tcp.payload",
    ]));
    let flag = |s: &str| s == "1" || s == "True";
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 9, "tshark line {line:?}");
            let hex = f[8].replace(':', "");
            let payload = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            Packet {
                src: format!("{}:{}", f[0], f[1]),
                dst: format!("{}:{}", f[2], f[3]),
                syn: flag(f[4]),
                ack: flag(f[5]),
                fin: flag(f[6]),
                rst: flag(f[7]),
                payload,
            }
        })
        .collect()
}

/// Asserts the capture holds the handshake, every request and response in
/// order, and a FIN from each side, between the client at `client_ip` and
/// the server at `server` (`ip:port`).
fn assert_conversation(
    pcap: &Path,
    client_ip: &str,
    server: &str,
    requests: &[&str],
    responses: &[&str],
) {
    let packets = tcp_packets(pcap);
    let from_client = |p: &Packet| p.src.starts_with(&format!("{client_ip}:"));
    let c2s = |p: &&Packet| p.dst == server && from_client(p);
    let s2c = |p: &&Packet| p.src == server;
    assert!(
        packets
            .iter()
            .filter(s2c)
            .all(|p| p.dst.starts_with(&format!("{client_ip}:"))),
        "packets from the server to another host: {packets:#?}"
    );
    assert!(
        packets.iter().filter(c2s).any(|p| p.syn && !p.ack),
        "no SYN {client_ip} -> {server} in {packets:#?}"
    );
    assert!(
        packets.iter().filter(s2c).any(|p| p.syn && p.ack),
        "no SYN-ACK"
    );
    assert!(
        packets.iter().filter(c2s).any(|p| p.ack && !p.syn),
        "no ACK"
    );
    let stream = |dir: &dyn Fn(&&Packet) -> bool| -> String {
        packets
            .iter()
            .filter(|p| dir(p))
            .flat_map(|p| p.payload.clone())
            .map(char::from)
            .collect()
    };
    let sent = stream(&c2s);
    let answered = stream(&s2c);
    let expected_sent: String = requests.iter().map(|r| format!("{r}\n")).collect();
    assert_eq!(sent, expected_sent, "client -> server bytes");
    let lines: Vec<&str> = answered.lines().collect();
    assert_eq!(lines.len(), responses.len(), "responses: {answered:?}");
    for (line, expected) in lines.iter().zip(responses) {
        assert!(
            line.contains(expected),
            "response {line:?} lacks {expected:?}"
        );
    }
    assert!(
        packets.iter().filter(c2s).any(|p| p.fin),
        "no FIN from the client"
    );
    assert!(
        packets.iter().filter(s2c).any(|p| p.fin),
        "no FIN from the server"
    );
    assert!(!packets.iter().any(|p| p.rst), "unexpected RST");
}

/// The folder of the newest complete run in a `--out` base folder (what
/// its `latest` link points at).
fn latest(base: &Path) -> PathBuf {
    let target = std::fs::read_link(base.join("latest"))
        .unwrap_or_else(|e| panic!("no latest link in {}: {e}", base.display()));
    assert!(
        target.is_relative() && target.components().count() == 1,
        "latest points inside the base folder: {target:?}"
    );
    base.join(target)
}

/// Names in a folder that do not start with a dot: what looks like a result.
fn visible_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The ladder draws the teardown's last ACK and says how many other pure
/// ACKs it left out; `analyze --acks` draws each one: as many as tshark
/// sees in the capture.
fn assert_ladder_accounts_for_every_ack(run: &Path) {
    let pcap = run.join("reqresp.pcap");
    let packets = tcp_packets(&pcap);
    let pure = packets
        .iter()
        .filter(|p| p.ack && !p.syn && !p.fin && !p.rst && p.payload.is_empty())
        .count();
    let last = packets.last().expect("packets");
    assert!(
        last.ack && !last.fin && last.payload.is_empty(),
        "the capture ends with the teardown's last ACK"
    );
    let report = std::fs::read_to_string(run.join("report.txt")).unwrap();
    let ladder: Vec<&str> = report.lines().take_while(|l| *l != "Summary").collect();
    let arrows: Vec<&&str> = ladder.iter().filter(|l| l.contains('─')).collect();
    assert!(
        arrows.last().is_some_and(|l| l.contains(" ACK ")),
        "the last arrow is the teardown's ACK:\n{report}"
    );
    // The handshake's ACK and the last one are drawn; the rest are counted.
    let left_out = pure - 2;
    let note = format!(
        "plus {left_out} pure ACK{} not drawn (--acks draws them)",
        if left_out == 1 { "" } else { "s" }
    );
    assert_eq!(
        report.contains(&note),
        left_out > 0,
        "{pure} pure ACKs in the capture, expected {note:?}:\n{report}"
    );
    let out = reqresp()
        .args(["analyze", "--acks"])
        .arg(&pcap)
        .output()
        .unwrap();
    let text = assert_success(&out);
    let numbered = text.lines().filter(|l| l.contains("ACK ack=")).count();
    assert_eq!(
        numbered,
        pure - 1,
        "every pure ACK but the handshake's:\n{text}"
    );
    assert!(!text.contains("not drawn"), "{text}");
}

/// The analysis JSON the lab wrote.
fn report_json(dir: &Path) -> serde_json::Value {
    let raw = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&raw).expect("report.json is JSON")
}

fn assert_reports(dir: &Path, exchanges: usize) {
    for file in [
        "report.html",
        "reqresp.pcap",
        "report.txt",
        "report.json",
        "ladder.svg",
    ] {
        let len = std::fs::metadata(dir.join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{file} missing or empty in {}", dir.display());
    }
    let json = report_json(dir);
    let conns = json["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1, "{json}");
    assert_eq!(
        conns[0]["exchanges"].as_array().unwrap().len(),
        exchanges,
        "{json}"
    );
    assert!(!conns[0]["handshake"].is_null(), "handshake");
    assert!(!conns[0]["close"].is_null(), "close");
    let svg = std::fs::read_to_string(dir.join("ladder.svg")).unwrap();
    assert!(svg.contains("<svg"), "ladder.svg is not SVG");
    crate::support::assert_html_report(&dir.join("report.html"), &json);
}

fn netns_ready() -> bool {
    if !is_root() {
        skip("reqresp lab namespace mode needs root");
        return false;
    }
    if !have("ip") || !have("tshark") {
        skip("reqresp lab tests need iproute2 (ip) and tshark");
        return false;
    }
    true
}

const ECHO_REQUESTS: [&str; 3] = ["Hello, server!", "request and response", "bye"];
const ECHO_RESPONSES: [&str; 3] = [
    "Echo: Hello, server!",
    "Echo: request and response",
    "Echo: bye",
];

#[test]
fn netns_lab_captures_the_whole_conversation_and_leaves_nothing() {
    if !netns_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&["--out", dir.path().to_str().unwrap()]);
    let stdout = assert_success(&out);
    assert!(stdout.contains("mode: network namespaces"), "{stdout}");
    let names = RunNames::parse(&stdout);
    assert!(names.server_ip.starts_with("10.222."), "{names:?}");
    let first = latest(dir.path());
    assert_conversation(
        &first.join("reqresp.pcap"),
        &names.client_ip,
        &format!("{}:2222", names.server_ip),
        &ECHO_REQUESTS,
        &ECHO_RESPONSES,
    );
    assert_reports(&first, 3);
    assert_ladder_accounts_for_every_ack(&first);
    // The printed report and the commands to open the capture, in the
    // run's own folder; the file list starts with the HTML report.
    let shown = first.display().to_string();
    let listed = stdout
        .lines()
        .skip_while(|l| !l.starts_with("this run's files, in "))
        .nth(1)
        .unwrap_or_default();
    assert!(
        listed.starts_with(&format!("  {shown}/report.html")),
        "report.html is not listed first:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("wireshark {shown}/reqresp.pcap")),
        "{stdout}"
    );
    assert!(stdout.contains("tcpdump -nr "), "{stdout}");
    names.assert_gone();

    // A second run into the same base folder works, cleans up, gets its own
    // folder and `latest`, and leaves the first run's files as they were.
    let first_pcap = std::fs::read(first.join("reqresp.pcap")).unwrap();
    let out = lab(&["--out", dir.path().to_str().unwrap()]);
    let stdout = assert_success(&out);
    let second = RunNames::parse(&stdout);
    let second_dir = latest(dir.path());
    assert_ne!(second_dir, first);
    assert_reports(&second_dir, 3);
    assert_reports(&first, 3);
    assert_eq!(
        std::fs::read(first.join("reqresp.pcap")).unwrap(),
        first_pcap
    );
    assert_eq!(visible_entries(dir.path()).len(), 3, "two runs and latest");
    second.assert_gone();
}

#[test]
fn netns_lab_books_tickets_until_sold_out_with_fixed_macs() {
    if !netns_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "--out",
        dir.path().to_str().unwrap(),
        "--service",
        "tickets",
        "--tickets",
        "2",
    ]);
    let stdout = assert_success(&out);
    let names = RunNames::parse(&stdout);
    let pcap = latest(dir.path()).join("reqresp.pcap");
    let packets = tcp_packets(&pcap);
    let answers: String = packets
        .iter()
        .filter(|p| p.src == format!("{}:2222", names.server_ip))
        .flat_map(|p| p.payload.clone())
        .map(char::from)
        .collect::<String>()
        .to_lowercase();
    assert_eq!(
        answers.lines().count(),
        3,
        "two bookings and a refusal: {answers}"
    );
    let last = answers.lines().last().unwrap();
    assert!(
        last.contains("no") || last.contains("sold"),
        "last answer {last:?}"
    );
    // Each host has its fixed MAC on the wire.
    let macs = run_ok(Command::new("tshark").arg("-r").arg(&pcap).args([
        "-Y",
        "tcp.flags.syn==1 && tcp.flags.ack==0",
        "-T",
        "fields",
        "-e",
        "eth.src",
    ]));
    let mac = names
        .client_ip
        .rsplit('.')
        .next()
        .unwrap()
        .parse::<u8>()
        .unwrap();
    assert!(
        macs.trim().starts_with("02:42:0a:de:") && macs.trim().ends_with(&format!("{mac:02x}")),
        "client MAC {macs:?}"
    );
    assert_reports(&latest(dir.path()), 3);
    names.assert_gone();
}

#[test]
fn two_netns_labs_at_once_both_succeed_on_their_own_bridges() {
    if !netns_ready() {
        return;
    }
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (pa, pb) = (
        a.path().to_str().unwrap().to_string(),
        b.path().to_str().unwrap().to_string(),
    );
    let ta = std::thread::spawn(move || lab(&["--out", &pa, "-m", "first run"]));
    let tb = std::thread::spawn(move || lab(&["--out", &pb, "-m", "second run"]));
    let (oa, ob) = (ta.join().unwrap(), tb.join().unwrap());
    let (sa, sb) = (assert_success(&oa), assert_success(&ob));
    let (na, nb) = (RunNames::parse(&sa), RunNames::parse(&sb));
    assert_ne!(na.bridge, nb.bridge);
    assert_ne!(na.netns, nb.netns);
    assert_conversation(
        &latest(a.path()).join("reqresp.pcap"),
        &na.client_ip,
        &format!("{}:2222", na.server_ip),
        &["first run"],
        &["Echo: first run"],
    );
    assert_conversation(
        &latest(b.path()).join("reqresp.pcap"),
        &nb.client_ip,
        &format!("{}:2222", nb.server_ip),
        &["second run"],
        &["Echo: second run"],
    );
    na.assert_gone();
    nb.assert_gone();
}

/// `lab --down` removes every kept or orphaned topology, so the tests that
/// leave one up and call it take turns (compose.rs too: its script runs
/// `lab --keep` and `lab --down`).
pub(crate) static DOWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn keep_leaves_a_usable_topology_and_down_removes_it() {
    if !netns_ready() {
        return;
    }
    let _turn = DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&["--keep", "--out", dir.path().to_str().unwrap()]);
    let stdout = assert_success(&out);
    let names = RunNames::parse(&stdout);
    assert!(
        stdout.contains(&format!("ip netns exec {} bash", names.netns[0])),
        "{stdout}"
    );
    assert!(stdout.contains("lab --down"), "{stdout}");
    // Lab steps 3 and 4 by hand, in the kept hosts.
    let listen = format!("{}:2222", names.server_ip);
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &names.netns[0],
            support::bin(),
            "server",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("listening on"), "{first}");
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &names.netns[1],
            support::bin(),
            "client",
            &listen,
            "by hand",
        ])
        .output()
        .unwrap();
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert_eq!(text(&client.stdout).trim(), "Echo: by hand");

    let down = reqresp().args(["lab", "--down"]).output().unwrap();
    let down_out = assert_success(&down);
    assert!(
        down_out.contains(&format!("removed {}", names.bridge)),
        "{down_out}"
    );
    names.assert_gone();
}

/// What Docker does to a bridge of the compose lab's name that exists
/// already: attaches its own veth and gives the bridge an address. `--down`
/// must then leave the bridge to them, remove the rest, and say why; once
/// the intruder is gone, a second `--down` removes the bridge.
#[test]
fn down_leaves_a_bridge_someone_else_attached_to() {
    if !netns_ready() {
        return;
    }
    let _turn = DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&["--keep", "--out", dir.path().to_str().unwrap()]);
    let names = RunNames::parse(&assert_success(&out));
    let alias = run_ok(Command::new("ip").args(["-d", "link", "show", &names.bridge]));
    assert!(
        alias.contains("alias reqresp lab pid"),
        "the bridge is marked: {alias}"
    );
    // The intruder: a veth pair with one end on the bridge, and an address.
    let intruder = format!("rrx{}", std::process::id());
    run_ok(Command::new("ip").args([
        "link",
        "add",
        &intruder,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{intruder}p"),
    ]));
    let cleanup = Intruder(intruder.clone());
    run_ok(Command::new("ip").args(["link", "set", &intruder, "master", &names.bridge]));
    run_ok(Command::new("ip").args(["addr", "add", "10.222.99.1/32", "dev", &names.bridge]));

    let down = reqresp().args(["lab", "--down"]).output().unwrap();
    let said = assert_success(&down);
    assert!(
        said.contains(&format!("left the bridge {} in place", names.bridge)),
        "{said}"
    );
    assert!(said.contains(&intruder), "names the foreign port: {said}");
    assert!(said.contains("10.222.99.1/32"), "names the address: {said}");
    assert!(Path::new("/sys/class/net").join(&names.bridge).exists());
    let netns = run_ok(Command::new("ip").args(["netns", "list"]));
    for ns in &names.netns {
        assert!(!netns.contains(ns.as_str()), "{ns} left: {netns}");
    }
    for veth in &names.veths {
        assert!(
            !Path::new("/sys/class/net").join(veth).exists(),
            "{veth} left"
        );
    }

    drop(cleanup);
    let _ = Command::new("ip")
        .args(["addr", "del", "10.222.99.1/32", "dev", &names.bridge])
        .status();
    let down = reqresp().args(["lab", "--down"]).output().unwrap();
    let said = assert_success(&down);
    assert!(
        said.contains(&format!("removed {}", names.bridge)),
        "{said}"
    );
    names.assert_gone();
}

/// A veth pair made by a test, deleted on drop.
struct Intruder(String);

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn a_failure_midway_still_cleans_up() {
    if !netns_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "--out",
        dir.path().to_str().unwrap(),
        "--server-arg=--no-such-option",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("server exited"), "{stderr}");
    assert!(
        stderr.contains("--no-such-option"),
        "the server's own error is shown: {stderr}"
    );
    RunNames::parse(&stdout).assert_gone();
}

#[test]
fn an_unusable_out_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = lab(&[
        "--mode",
        "loopback",
        "--out",
        file.join("runs").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("Not a directory").count(),
        1,
        "the cause is said once: {stderr}"
    );
    assert!(
        stderr.contains("choose another directory with --out"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}

#[test]
fn ctrl_c_cleans_up_and_exits_130() {
    if !netns_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // In a process group of its own, signalled as a whole: what a terminal
    // does on Ctrl-C.
    let mut child = reqresp()
        .args(["lab", "--out", dir.path().to_str().unwrap()])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as soon as the capture runs: topology up, server about to start.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let seen = support::read_until(&mut stdout, "capturing on");
    // SAFETY: SIGINT to the process group of our own child.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "stdout:\n{seen}{rest}");
    RunNames::parse(&seen).assert_gone();
    // Nothing that looks like a result: no half-written pcap, no `latest`.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "an interrupted run left {left:?}");
}

#[test]
fn loopback_mode_runs_and_captures_on_lo() {
    if !is_root() || !have("tshark") {
        return skip("loopback lab capture needs root (CAP_NET_RAW) and tshark");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&["--mode", "loopback", "--out", dir.path().to_str().unwrap()]);
    let stdout = assert_success(&out);
    assert!(stdout.contains("mode: loopback"), "{stdout}");
    assert!(!stdout.contains("netns"), "{stdout}");
    let server = stdout
        .lines()
        .find_map(|l| l.strip_prefix("server listening on "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("server address in the output");
    assert!(server.starts_with("127.0.0.1:"), "{server}");
    assert_conversation(
        &latest(dir.path()).join("reqresp.pcap"),
        "127.0.0.1",
        server,
        &ECHO_REQUESTS,
        &ECHO_RESPONSES,
    );
    assert_reports(&latest(dir.path()), 3);
}

#[test]
fn without_privilege_the_lab_runs_on_loopback_and_says_how_to_capture() {
    if !is_root() || !have("setpriv") {
        return skip("dropping privileges for this test needs root and setpriv");
    }
    let as_nobody = || {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::bin());
        cmd
    };
    let reachable = as_nobody().arg("--version").output();
    if !reachable.is_ok_and(|o| o.status.success()) {
        return skip("user nobody cannot run the test binary (a directory on its path is private)");
    }
    let dir = tempfile::tempdir().unwrap();
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    // An earlier (sudo) run's results, which this run must not touch.
    let earlier = dir.path().join("2000-01-01T000000Z");
    std::fs::create_dir(&earlier).unwrap();
    std::fs::write(earlier.join("reqresp.pcap"), b"the earlier capture").unwrap();
    std::os::unix::fs::symlink("2000-01-01T000000Z", dir.path().join("latest")).unwrap();
    let out = as_nobody()
        .args(["lab", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(stdout.contains("not root"), "{stdout}");
    assert!(stdout.contains("mode: loopback"), "{stdout}");
    assert!(stdout.contains("Echo: Hello, server!"), "{stdout}");
    assert!(stdout.contains("setcap cap_net_raw"), "{stdout}");
    assert!(stdout.contains("nothing was written"), "{stdout}");
    assert!(stdout.contains("earlier results are untouched"), "{stdout}");
    assert_eq!(
        visible_entries(dir.path()),
        ["2000-01-01T000000Z", "latest"]
    );
    assert_eq!(latest(dir.path()), earlier);
    assert_eq!(
        std::fs::read(earlier.join("reqresp.pcap")).unwrap(),
        b"the earlier capture"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no partial folder left"
    );
}

#[test]
fn down_removes_what_a_killed_run_left() {
    if !netns_ready() {
        return;
    }
    let _turn = DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut child = reqresp()
        .args(["lab", "--out", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let seen = support::read_until(&mut stdout, "server listening on");
    // SIGKILL: no cleanup can run in the lab itself.
    child.kill().unwrap();
    child.wait().unwrap();
    let names = RunNames::parse(&seen);
    assert!(
        Path::new("/sys/class/net").join(&names.bridge).exists(),
        "a killed run leaves its bridge"
    );
    let down = reqresp().args(["lab", "--down"]).output().unwrap();
    let down_out = assert_success(&down);
    assert!(
        down_out.contains(&format!("removed {}", names.bridge)),
        "{down_out}"
    );
    // The server was told to stop when the lab died, or by --down.
    names.assert_gone();
}
