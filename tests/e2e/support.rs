//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the `reqresp` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reqresp")
}

/// A `Command` for the binary under test.
pub fn reqresp() -> Command {
    Command::new(bin())
}

/// True when a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when running as root (namespaces, captures).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `setpriv` running the binary under test as user `nobody`, without any
/// capability: a user without capture privilege. Needs root.
pub fn reqresp_as_nobody() -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(bin());
    c
}

/// The skip rule (`skip`, `REQRESP_NO_SKIP`) has one home, shared with the
/// unit tests.
#[path = "../../src/test_support.rs"]
mod skip_rule;
pub(crate) use skip_rule::skip;

/// Prints `what` past the harness's output capture, so that it shows even
/// when the test passes: for a check a test had to leave out, and why.
pub fn note(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTE: {what}");
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` if it
/// does not within `limit`. For waits on something observable (a file that
/// grows, a process that exits, a port that closes) instead of sleeps.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end, asserts it succeeded (showing its stderr if
/// not) and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads lines from a child's output until one starts with `prefix` (or
/// the output ends): what was read, that line included. Waits on the
/// program's own words rather than on a sleep.
pub fn read_until(stdout: &mut impl std::io::BufRead, prefix: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.starts_with(prefix) {
            break;
        }
        line.clear();
    }
    seen
}

/// A loopback TCP port that was free a moment ago and has nobody listening:
/// bound to port 0 and closed again. Connecting to it is refused (a port
/// such as 9 or 1 may have a listener on some machine).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// The stderr of a child, collected in the background and shown only when
/// the test fails: servers stay quiet in a passing run.
#[derive(Clone, Default)]
pub struct Stderr(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Stderr {
    /// Collects the lines of `pipe` until it closes.
    pub fn collect(pipe: std::process::ChildStderr) -> Stderr {
        let lines = Stderr::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.0.lock().unwrap().push(line);
            }
        });
        lines
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Prints the lines under `name` when the current test is failing.
    pub fn show_if_failing(&self, name: &str) {
        if std::thread::panicking() {
            use std::io::Write;
            let lines = self.lines();
            let _ = writeln!(
                std::io::stderr(),
                "--- stderr of {name} ---\n{}\n---",
                lines.join("\n")
            );
        }
    }
}

/// A running `reqresp server`, stopped (by its PID) when dropped.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// The address it listens on, read from its `listening on` line.
    pub addr: SocketAddr,
    /// The rest of its stdout.
    pub stdout: BufReader<std::process::ChildStdout>,
    /// Its log (stderr), shown only if the test fails.
    pub stderr: Stderr,
}

impl Server {
    /// Starts `reqresp server --listen 127.0.0.1:0 <args>` and waits for its
    /// `listening on <addr>` line (at most 10 s).
    // A panic here fails the test; the child then dies with the test process's pipes.
    #[allow(clippy::zombie_processes)]
    pub fn start(args: &[&str]) -> Server {
        let mut child = reqresp()
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reqresp server");
        let stderr = Stderr::collect(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read server stdout");
            assert!(
                n > 0,
                "server exited before printing 'listening on':\n{}",
                stderr.lines().join("\n")
            );
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let addr = addr.parse().expect("address in 'listening on' line");
                return Server {
                    child,
                    addr,
                    stdout,
                    stderr,
                };
            }
            assert!(Instant::now() < deadline, "server did not start in 10 s");
        }
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the server to exit, at most `limit`; returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stderr.show_if_failing("reqresp server");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks a `report.html` that a command wrote beside other files: it is the
/// interactive report, loads nothing from the network (no `http(s)://` in a
/// `src` or `href`), and its embedded data holds the same connections as
/// `analysis` (the `--format json` of the same capture).
pub fn assert_html_report(path: &std::path::Path, analysis: &serde_json::Value) {
    let page =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{} missing: {e}", path.display()));
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{} is not HTML",
        path.display()
    );
    let lower = page.to_ascii_lowercase();
    for attr in ["src", "href"] {
        for quote in ["", "\"", "'"] {
            for scheme in ["http://", "https://", "//"] {
                let remote = format!("{attr}={quote}{scheme}");
                assert!(
                    !lower.contains(&remote),
                    "{} loads something from the network ({remote})",
                    path.display()
                );
            }
        }
    }
    assert!(
        !lower.contains("url(http"),
        "{}: a stylesheet loads from the network",
        path.display()
    );
    let open = "<script id=\"reqresp-data\" type=\"application/json\">";
    let start = page
        .find(open)
        .unwrap_or_else(|| panic!("{}: no embedded data", path.display()))
        + open.len();
    let end = start + page[start..].find("</script>").expect("closed data script");
    let data: serde_json::Value =
        serde_json::from_str(&page[start..end]).expect("the embedded data is JSON");
    let conns = |v: &serde_json::Value| v["connections"].as_array().map(Vec::len);
    assert!(conns(analysis).is_some(), "no connections in {analysis}");
    assert_eq!(
        conns(&data),
        conns(analysis),
        "{}: connections differ from the JSON report",
        path.display()
    );
    assert_eq!(
        data["summary"]["connections"],
        analysis["summary"]["connections"],
        "{}: summary.connections differs from the JSON report",
        path.display()
    );
}

/// tcpdump on `lo` for one TCP port, writing `file` packet by packet (`-U`);
/// stopped with SIGINT (by PID) on [`Tcpdump::stop`], killed on drop.
pub struct Tcpdump {
    child: Child,
    file: std::path::PathBuf,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Tcpdump {
    /// Captures TCP `port` on `lo` into `file`; see [`Tcpdump::start_on`].
    pub fn start(file: &std::path::Path, port: u16) -> Tcpdump {
        Tcpdump::start_on(None, "lo", file, &format!("tcp port {port}"))
    }

    /// Starts `[ip netns exec NETNS] tcpdump -i IFACE -w FILE FILTER` and
    /// waits (at most 15 s) for tcpdump's `listening on` line, which it
    /// prints once the filter is on the live socket: every packet sent
    /// from then on is captured.
    pub fn start_on(
        netns: Option<&str>,
        iface: &str,
        file: &std::path::Path,
        filter: &str,
    ) -> Tcpdump {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "tcpdump"]);
                c
            }
            None => Command::new("tcpdump"),
        };
        let mut child = cmd
            .args(["-i", iface, "-U", "--immediate-mode", "-Z", "root", "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let capture = Tcpdump {
            child,
            file: file.to_owned(),
            stderr: rx,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match capture
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains("listening on") => return capture,
                Ok(_) => {}
                Err(_) => panic!("tcpdump did not start listening within 15 s"),
            }
        }
    }

    /// Waits (at most 10 s) until every connection in the capture has ended
    /// (reset, or both FINs and the last one's ACK captured), stops tcpdump
    /// with SIGINT and waits for its exit. Returns whether it captured
    /// everything (the kernel dropped no packet); a connection that did not
    /// end is noted, and left to the test's own assertions.
    #[must_use]
    pub fn stop(self) -> bool {
        let limit = Duration::from_secs(10);
        let ended = reqresp::lab::teardown::wait_for_teardown(&self.file, limit);
        if !ended {
            note(&format!(
                "tcpdump: not every connection in {} ended within {limit:?}",
                self.file.display()
            ));
        }
        self.stop_now()
    }

    /// Stops tcpdump with SIGINT at once and waits for its exit, which
    /// flushes the file; for a caller that waited for its own condition
    /// (a FIN, a reset, a zero window). Returns whether the kernel dropped
    /// no packet.
    #[must_use]
    pub fn stop_now(mut self) -> bool {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let child = &mut self.child;
        wait_until(
            "tcpdump's exit after SIGINT",
            Duration::from_secs(5),
            || child.try_wait().expect("wait for tcpdump").is_some(),
        );
        let dropped: u64 = self
            .stderr
            .iter()
            .filter_map(|l| {
                l.strip_suffix(" packets dropped by kernel")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        if dropped > 0 {
            note(&format!("tcpdump: the kernel dropped {dropped} packets"));
        }
        dropped == 0
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one lab run created, read from its output: `reqresp lab`'s
/// `topology` block (`bridge NAME (ifindex N)`, `server host netns NS …
/// (veth V …)`), the one-line `bridge …, server host NS (IP), client host
/// NS (IP)` of a run with a user's command, or a scenario's `topology:` line.
#[derive(Debug, Default)]
pub struct LabNames {
    pub bridge: String,
    /// The bridge's interface index: a bridge of the same name with another
    /// index was created later by someone else (another run, the Docker lab).
    pub ifindex: Option<u32>,
    /// The server's namespace, then the client's.
    pub netns: Vec<String>,
    /// The veths on the bridge (not printed by every kind of run).
    pub veths: Vec<String>,
}

impl LabNames {
    /// Reads the names from the run's output; panics when it shows no bridge
    /// or not two namespaces.
    pub fn parse(stdout: &str) -> LabNames {
        let mut names = LabNames::default();
        let topology = stdout.lines().map(str::trim_start).filter(|l| {
            ["bridge ", "server host ", "client host ", "topology: "]
                .iter()
                .any(|start| l.starts_with(start))
        });
        for line in topology {
            let words: Vec<&str> = line
                .split([' ', ',', '(', ')'])
                .filter(|w| !w.is_empty() && *w != "netns")
                .collect();
            for pair in words.windows(2) {
                match pair[0] {
                    "bridge" if names.bridge.is_empty() => names.bridge = pair[1].to_owned(),
                    "ifindex" if names.ifindex.is_none() => names.ifindex = pair[1].parse().ok(),
                    "host" => names.netns.push(pair[1].to_owned()),
                    "veth" => names.veths.push(pair[1].to_owned()),
                    _ => {}
                }
            }
        }
        assert!(
            names.bridge.starts_with("br-reqresp"),
            "no bridge in:\n{stdout}"
        );
        assert_eq!(names.netns.len(), 2, "not two namespaces in:\n{stdout}");
        names
    }

    /// Panics when a namespace, a veth or the bridge (by its interface
    /// index) of the run is still there.
    pub fn assert_gone(&self) {
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        for ns in &self.netns {
            assert!(
                !list.split_whitespace().any(|n| n == ns),
                "namespace {ns} left behind: {list}"
            );
        }
        for veth in &self.veths {
            assert!(
                !std::path::Path::new("/sys/class/net").join(veth).exists(),
                "link {veth} left behind"
            );
        }
        if self.ifindex.is_some() {
            let index = std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", self.bridge))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            assert!(
                index.is_none() || index != self.ifindex,
                "bridge {} left behind",
                self.bridge
            );
        }
    }
}

#[test]
fn lab_names_are_read_from_every_kind_of_run() {
    let lab = "topology (created for this run):
  bridge       br-reqresp (ifindex 58), subnet 10.222.0.0/24, no address in the root namespace
  server host  netns rr-7199-srv    eth0 10.222.0.2   mac 02:42:0a:de:00:02  (veth rr-7199-s on the bridge)
  client host  netns rr-7199-cli    eth0 10.222.0.3   mac 02:42:0a:de:00:03  (veth rr-7199-c on the bridge)
cleaned up: namespaces rr-7199-srv and rr-7199-cli, bridge br-reqresp removed";
    let names = LabNames::parse(lab);
    assert_eq!(names.bridge, "br-reqresp");
    assert_eq!(names.ifindex, Some(58));
    assert_eq!(names.netns, ["rr-7199-srv", "rr-7199-cli"]);
    assert_eq!(names.veths, ["rr-7199-s", "rr-7199-c"]);
    let user = "mode: network namespaces
  bridge br-reqresp-1, server host rr-1-srv (10.222.0.2), client host rr-1-cli (10.222.0.3)";
    let names = LabNames::parse(user);
    assert_eq!(
        (names.bridge.as_str(), names.ifindex),
        ("br-reqresp-1", None)
    );
    assert_eq!(names.netns, ["rr-1-srv", "rr-1-cli"]);
    assert!(names.veths.is_empty());
    let scenario = "topology: bridge br-reqresp (ifindex 7), server host rr-2-srv (10.222.0.2, veth rr-2-s), client host rr-2-cli (10.222.0.3, veth rr-2-c)";
    let names = LabNames::parse(scenario);
    assert_eq!(names.ifindex, Some(7));
    assert_eq!(names.netns, ["rr-2-srv", "rr-2-cli"]);
    assert_eq!(names.veths, ["rr-2-s", "rr-2-c"]);
}

/// Runs `reqresp lab <args>` to its end; past `limit` it is killed (by its
/// PID) and the test fails. Its output is read while it runs, so a
/// talkative run cannot block on a full pipe.
pub fn run_lab(args: &[&str], limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = reqresp()
        .arg("lab")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reqresp lab");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for reqresp lab") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reqresp lab did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Writes the segments of `scripts` to a raw-IPv4 pcap at `path` (each
/// script's times in µs), in order.
pub fn write_scripts(
    path: &std::path::Path,
    scripts: impl IntoIterator<Item = reqresp::analyze::testing::Script>,
) {
    use reqresp::analyze::model::Timestamp;
    use reqresp::analyze::testing::{PcapFormat, PcapWriter};

    let out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut pcap = PcapWriter::new(out, PcapFormat::tcpdump(101)).unwrap();
    for w in scripts {
        for seg in &w.segs {
            pcap.packet(Timestamp(seg.time * 1_000), &seg.ip_packet())
                .unwrap();
        }
    }
    pcap.finish().unwrap();
}
