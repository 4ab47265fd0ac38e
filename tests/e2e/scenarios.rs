//! End-to-end tests of `reqresp lab --scenario` and `--fault`: each scenario
//! runs for real as root (namespaces, iptables, NFQUEUE, capture) and must
//! show what it is about, in `report.json`'s TCP events and in the
//! `scenario.json` the run writes; afterwards nothing of the run is left
//! (namespaces, links, rules in the machine's own iptables), including
//! after a SIGKILL followed by `reqresp lab --down`.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{self, LabNames, have, is_root, reqresp, skip};

fn ready() -> bool {
    if !is_root() {
        skip("lab scenarios need root (namespaces, iptables)");
        return false;
    }
    for tool in ["ip", "iptables"] {
        if !have(tool) {
            skip(&format!("lab scenarios need {tool}"));
            return false;
        }
    }
    true
}

/// Panics when anything a run created (`made`) is still there, or a fault
/// rule is in the root namespace.
fn assert_gone(made: &LabNames) {
    assert_eq!(made.veths.len(), 2, "{made:?}");
    assert!(made.ifindex.is_some(), "{made:?}");
    made.assert_gone();
    // The fault rules live only in the lab's namespaces: the machine's
    // own tables never hold one, during or after a run.
    let rules = Command::new("iptables").arg("-S").output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        !rules.contains("reqresp lab fault"),
        "a fault rule in the root namespace:\n{rules}"
    );
}

struct Run {
    stdout: String,
    report: serde_json::Value,
    scenario: serde_json::Value,
}

impl Run {
    fn tcp_events(&self, kind: &str) -> u64 {
        self.report["summary"]["tcp_events"][kind]
            .as_u64()
            .unwrap_or_else(|| panic!("summary.tcp_events.{kind} missing"))
    }

    fn clients(&self) -> &Vec<serde_json::Value> {
        self.scenario["clients"].as_array().expect("clients")
    }

    fn client(&self, label: &str) -> &serde_json::Value {
        self.clients()
            .iter()
            .find(|c| c["label"] == label)
            .unwrap_or_else(|| panic!("no client {label} in {}", self.scenario))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// True when a `.partial` folder (a run being written) is in `base`.
fn has_partial(base: &Path) -> bool {
    std::fs::read_dir(base).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    })
}

/// Runs `reqresp lab ARGS --out BASE` once and checks that it succeeded,
/// left nothing of the lab, and put its files in a new `BASE/<time>/`
/// that `BASE/latest` points at (and that the output names, the HTML
/// report first); returns its stdout and that folder.
fn lab_into(base: &Path, args: &[&str]) -> (String, PathBuf) {
    let out: Output = reqresp()
        .arg("lab")
        .args(args)
        .args(["--out", base.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "reqresp lab {args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    assert_gone(&LabNames::parse(&stdout));
    let target = std::fs::read_link(base.join("latest"))
        .unwrap_or_else(|e| panic!("no latest link in {}: {e}\n{stdout}", base.display()));
    assert_eq!(target.components().count(), 1, "{target:?}");
    let run = base.join(target);
    assert!(run.is_dir(), "{}", run.display());
    assert!(
        !has_partial(base),
        "a partial folder is left after a complete run"
    );
    let shown = run.display().to_string();
    let listed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != format!("this run's files, in {shown}/:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        listed
            .first()
            .is_some_and(|l| l.starts_with(&format!("  {shown}/report.html"))),
        "the run's folder and report.html are not listed first:\n{stdout}"
    );
    for file in [
        "reqresp.pcap",
        "report.txt",
        "report.json",
        "ladder.svg",
        "scenario.json",
    ] {
        assert!(
            listed
                .iter()
                .any(|l| l.starts_with(&format!("  {shown}/{file}"))),
            "{file} not listed:\n{stdout}"
        );
        assert!(run.join(file).is_file(), "{file} missing in {shown}");
    }
    (stdout, run)
}

/// Runs `reqresp lab` with `args` into a temporary directory, checks it
/// succeeded and left nothing, and reads its reports.
fn lab(args: &[&str]) -> Run {
    let base = tempfile::tempdir().unwrap();
    let (stdout, dir) = lab_into(base.path(), args);
    assert_eq!(visible_entries(base.path()).len(), 2, "the run and latest");
    let read = |name: &str| -> serde_json::Value {
        let path = dir.join(name);
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
            .unwrap()
    };
    // The check: every event kind agrees with tshark's
    // `tcp.analysis` flags, frame by frame, on the scenario's capture.
    if have("tshark") {
        crate::tcp_events::assert_agrees_with_tshark(
            &dir.join("reqresp.pcap"),
            &read("report.json"),
        );
    } else {
        skip("tshark missing: scenario events not compared with tshark");
    }
    let report_txt = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    crate::support::assert_html_report(&dir.join("report.html"), &read("report.json"));
    assert!(report_txt.contains("What happened:"), "{report_txt}");
    assert!(report_txt.contains("Apa yang terjadi:"), "{report_txt}");
    Run {
        report: read("report.json"),
        scenario: read("scenario.json"),
        stdout,
    }
}

#[test]
fn scenario_list_has_one_line_each() {
    let out = reqresp()
        .args(["lab", "--scenario", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = text(&out.stdout);
    assert_eq!(list.lines().count(), 10, "{list}");
    for name in [
        "happy",
        "loss",
        "delay",
        "slow-server",
        "crash",
        "partition",
        "recv-bug",
        "one-client-server",
        "tickets-race",
        "slow-reader",
    ] {
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing:\n{list}"
        );
    }
}

#[test]
fn a_bad_fault_or_scenario_is_refused_with_a_clear_error() {
    let out = reqresp()
        .args(["lab", "--fault", "loss=15"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a percentage"),
        "{}",
        text(&out.stderr)
    );
    let out = reqresp()
        .args(["lab", "--scenario", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no scenario `nope`") && err.contains("partition"),
        "{err}"
    );
}

#[test]
fn happy_has_no_event_and_every_answer() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "happy"]);
    assert_eq!(run.client("client")["ok"], true, "{}", run.scenario);
    let events = &run.report["summary"]["tcp_events"];
    let total: u64 = events
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 0, "{events}");
    assert_eq!(run.report["summary"]["exchanges"], 5);
}

#[test]
fn loss_retransmits_yet_answers_every_request() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "loss"]);
    let resent = run.tcp_events("retransmission")
        + run.tcp_events("fast_retransmission")
        + run.tcp_events("syn_retransmission")
        + run.tcp_events("spurious_retransmission");
    assert!(resent >= 1, "no retransmission:\n{}", run.stdout);
    let client = run.client("client");
    assert_eq!(client["ok"], true, "{}", run.scenario);
    assert_eq!(client["responses"].as_array().unwrap().len(), 30);
    assert!(
        run.scenario["mechanisms"][0]
            .as_str()
            .unwrap()
            .contains("statistic")
    );
    assert!(
        !run.scenario["exchanges_hit"].as_array().unwrap().is_empty()
            || run.tcp_events("syn_retransmission") > 0,
        "the report names the exchanges hit: {}",
        run.scenario
    );
}

#[test]
fn delay_grows_the_round_trip_without_loss() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "delay"]);
    assert_eq!(run.client("client")["ok"], true, "{}", run.scenario);
    // This kernel has no netem: the NFQUEUE path held the packets.
    let mechanism = run.scenario["delay_mechanism"].as_str().unwrap();
    if mechanism == "nfqueue" {
        assert!(run.scenario["packets_held"].as_u64().unwrap() > 10);
    }
    let conn = &run.report["connections"][0];
    let rtt_ms = conn["initial_rtt_us"].as_f64().unwrap() / 1e3;
    // Two delays of 50 ms ± 10 ms: SYN to the client's ACK.
    assert!((70.0..=400.0).contains(&rtt_ms), "initial RTT {rtt_ms} ms");
    assert_eq!(run.tcp_events("retransmission"), 0, "{}", run.stdout);
    // The latency is network time, not server time.
    for x in conn["exchanges"].as_array().unwrap() {
        let (net, srv) = (
            x["network_us"].as_f64().unwrap(),
            x["server_us"].as_f64().unwrap(),
        );
        assert!(net > srv, "network {net} µs, server {srv} µs: {x}");
    }
}

#[test]
fn slow_server_is_server_time_not_network_time() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "slow-server"]);
    assert_eq!(run.client("client")["ok"], true, "{}", run.scenario);
    let conn = &run.report["connections"][0];
    let rtt_ms = conn["initial_rtt_us"].as_f64().unwrap() / 1e3;
    assert!(rtt_ms < 50.0, "the network stays fast: RTT {rtt_ms} ms");
    for x in conn["exchanges"].as_array().unwrap() {
        let latency_ms = x["latency_us"].as_f64().unwrap() / 1e3;
        assert!(
            latency_ms >= 300.0,
            "each answer waits 300 ms: {latency_ms} ms"
        );
        // The latency is server time, not network time.
        let (net, srv) = (
            x["network_us"].as_f64().unwrap(),
            x["server_us"].as_f64().unwrap(),
        );
        assert!(
            srv >= 250_000.0 && net < srv,
            "network {net} µs, server {srv} µs: {x}"
        );
    }
}

#[test]
fn crash_shows_a_reset_or_refusal_and_the_clients_error() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "crash"]);
    assert!(
        run.tcp_events("rst") + run.tcp_events("connection_refused") >= 1,
        "{}",
        run.stdout
    );
    assert!(run.tcp_events("connection_refused") >= 1, "{}", run.stdout);
    let client = run.client("client");
    assert_eq!(client["ok"], false);
    assert_eq!(client["responses"][0], "Echo: before the crash");
    let error = client["error"].as_str().unwrap();
    assert!(
        error.contains("closed the connection") || error.contains("reset"),
        "{error}"
    );
    let late = run.client("new client")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(late.contains("refused"), "{late}");
}

#[test]
fn partition_shows_retransmissions_backing_off() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "partition"]);
    assert_eq!(run.client("client")["ok"], true, "{}", run.scenario);
    let runs = run.scenario["retransmission_runs"].as_array().unwrap();
    let longest = runs
        .iter()
        .max_by_key(|r| r["times"].as_array().unwrap().len())
        .unwrap_or_else(|| panic!("no retransmission run:\n{}", run.stdout));
    let gaps: Vec<f64> = longest["gaps_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_f64().unwrap())
        .collect();
    assert!(
        gaps.len() >= 3,
        "at least four sends of one segment: {gaps:?}"
    );
    // Backoff: no gap shorter than the one before (10% slack), and the last
    // at least four times the first.
    for pair in gaps.windows(2) {
        assert!(pair[1] >= pair[0] * 0.9, "gaps shrink: {gaps:?}");
    }
    assert!(
        gaps[gaps.len() - 1] >= 4.0 * gaps[0],
        "no backoff: {gaps:?}"
    );
}

#[test]
fn a_partition_longer_than_the_client_timeout_ends_in_its_timeout() {
    if !ready() {
        return;
    }
    // Custom: 10 requests 1.5 s apart would need 15 s; the partition at
    // 500 ms for 12 s outlasts the client's 10 s timeout.
    let run = lab(&["--fault", "partition=12s@500ms"]);
    let client = run.client("client");
    assert_eq!(client["ok"], false, "{}", run.scenario);
    let error = client["error"].as_str().unwrap();
    assert!(error.contains("within"), "a timeout error: {error}");
    assert!(run.tcp_events("retransmission") >= 3, "{}", run.stdout);
}

#[test]
fn recv_bug_is_wrong_with_raw_framing_and_right_with_lines() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "recv-bug"]);
    let raw = run.client("raw framing (recv(1024))");
    let line = run.client("line framing");
    assert_eq!(raw["ok"], false, "{}", run.scenario);
    assert_ne!(raw["responses"][0], raw["expected"][0]);
    assert_eq!(line["ok"], true, "{}", run.scenario);
    assert_eq!(line["responses"][0], line["expected"][0]);
}

#[test]
fn one_client_server_fails_the_others_and_reqresp_serves_all() {
    if !ready() {
        return;
    }
    if !have("python3") {
        skip("one-client-server runs the lab's Python server: needs python3");
        return;
    }
    let run = lab(&["--scenario", "one-client-server"]);
    let served = |server: &str| {
        run.clients()
            .iter()
            .filter(|c| c["label"].as_str().unwrap().starts_with(server) && c["ok"] == true)
            .count()
    };
    assert_eq!(served("python server"), 1, "{}", run.scenario);
    assert_eq!(served("reqresp server"), 3, "{}", run.scenario);
}

#[test]
fn tickets_race_survives_a_server_kill_without_overselling_or_losing_a_confirmation() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "tickets-race"]);
    let answers: Vec<&str> = run
        .clients()
        .iter()
        .map(|c| c["responses"][0].as_str().unwrap_or(""))
        .collect();
    assert_eq!(answers.len(), 20);
    let booked = answers.iter().filter(|a| a.starts_with("Booked")).count() as u64;
    let sorry = answers.iter().filter(|a| a.starts_with("Sorry")).count() as u64;
    let silent = answers.iter().filter(|a| a.is_empty()).count() as u64;
    assert_eq!(booked + sorry + silent, 20, "{answers:?}");
    // The first answer came before the kill.
    assert!(!answers[0].is_empty(), "{answers:?}");
    let ledger = &run.scenario["tickets_ledger"];
    let count = |k: &str| {
        ledger[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {ledger}"))
    };
    // Round 2 asked for more than was left: the whole stock is sold, once.
    assert_eq!(count("stock"), 5, "{ledger}");
    assert_eq!(count("bookings"), 5, "{ledger}");
    assert_eq!(count("sold"), 5, "{ledger}");
    assert_eq!(count("confirmations"), booked);
    // Every confirmation is in the ledger; a booking without confirmation
    // can only be one whose answer the kill cut off.
    assert!(booked <= 5, "{answers:?}");
    assert!(5 - booked <= count("unanswered"), "{ledger}");
    assert!(count("unanswered") <= silent, "{ledger}");
    // Two servers sold: the first (before the kill, at least the first
    // answer unless it was "Sorry") and the restarted one.
    let servers = ledger["by_server"].as_array().unwrap();
    assert!(!servers.is_empty() && servers.len() <= 2, "{ledger}");
    let notes = run.scenario["notes"].to_string();
    assert!(notes.contains("no oversell across the restart"), "{notes}");
    assert!(
        run.stdout.contains("server killed (SIGKILL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("server restarted on the same ledger"),
        "{}",
        run.stdout
    );
}

#[test]
fn slow_reader_fills_the_window_until_the_server_gives_up() {
    if !ready() {
        return;
    }
    let run = lab(&["--scenario", "slow-reader"]);
    let conn = &run.report["connections"][0];
    let client_zero_windows = conn["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "zero_window" && e["side"] == "client")
        .count();
    assert!(client_zero_windows >= 1, "{}", run.stdout);
    // Linux's probes: an empty segment below the next sequence number
    // (keep-alive), a 1-byte probe, or a segment sent again.
    let probes = conn["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["side"] == "server"
                && ["zero_window_probe", "keep_alive", "retransmission"]
                    .contains(&e["kind"].as_str().unwrap())
        })
        .count();
    assert!(probes >= 1, "the server probes the window:\n{}", run.stdout);
    assert_eq!(conn["close"]["initiator"], "server", "{}", conn["close"]);
}

#[test]
fn a_killed_scenario_leaves_only_what_down_removes() {
    if !ready() {
        return;
    }
    let _turn = crate::lab::DOWN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // Delay (NFQUEUE handler, rules) and a partition under way when killed.
    let mut child = reqresp()
        .args([
            "lab",
            "--fault",
            "delay=20ms,loss=5%,partition=20s@100ms",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let seen = support::read_until(&mut stdout, "client: ");
    // Once the partition has started, SIGKILL: nothing of the lab runs.
    wait_partitioned(&LabNames::parse(&seen).netns[0]);
    child.kill().unwrap();
    child.wait().unwrap();
    let made = LabNames::parse(&seen);
    let rules = Command::new("ip")
        .args(["netns", "exec", &made.netns[0], "iptables", "-S", "INPUT"])
        .output()
        .unwrap();
    assert!(
        text(&rules.stdout).contains("reqresp lab fault"),
        "the killed run's rules are in its namespace: {}",
        text(&rules.stdout)
    );
    let down = reqresp().args(["lab", "--down"]).output().unwrap();
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stdout).contains(&format!("removed {}", made.bridge)),
        "{}",
        text(&down.stdout)
    );
    made.assert_gone();
    assert!(
        visible_entries(dir.path()).is_empty(),
        "a killed run leaves nothing that looks like a result: {:?}",
        visible_entries(dir.path())
    );
}

/// Two runs of one scenario into one base folder keep both, each in its own
/// folder, and `latest` names the second; an interrupted one (Ctrl-C) adds
/// nothing that looks like a result and leaves `latest` alone.
#[test]
fn scenario_runs_get_their_own_folders_and_an_interrupted_one_adds_none() {
    if !ready() {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (_, first) = lab_into(base.path(), &["--scenario", "happy"]);
    let first_pcap = std::fs::read(first.join("reqresp.pcap")).unwrap();
    let (_, second) = lab_into(base.path(), &["--scenario", "happy"]);
    assert_ne!(first, second);
    assert_eq!(
        std::fs::read(first.join("reqresp.pcap")).unwrap(),
        first_pcap,
        "the first run's capture is untouched"
    );
    for run in [&first, &second] {
        let json = std::fs::read(run.join("report.json")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["summary"]["exchanges"], 5, "{}", run.display());
    }
    let mut expected = vec![
        first.file_name().unwrap().to_string_lossy().into_owned(),
        second.file_name().unwrap().to_string_lossy().into_owned(),
        "latest".to_string(),
    ];
    expected.sort();
    assert_eq!(visible_entries(base.path()), expected);

    // Ctrl-C while a partition holds the client: exit 130, nothing new.
    let mut child = reqresp()
        .args(["lab", "--fault", "partition=20s@100ms", "--out"])
        .arg(base.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let seen = support::read_until(&mut stdout, "client: ");
    assert!(seen.contains("client: "), "the run did not start:\n{seen}");
    assert!(
        has_partial(base.path()),
        "the run writes into a partial folder"
    );
    wait_partitioned(&LabNames::parse(&seen).netns[0]);
    // SAFETY: kill on our own child's PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert_gone(&LabNames::parse(&seen));
    assert_eq!(visible_entries(base.path()), expected, "{seen}{rest}");
    assert!(
        !has_partial(base.path()),
        "the interrupted run's partial folder is left"
    );
    assert_eq!(
        std::fs::read_link(base.path().join("latest")).unwrap(),
        Path::new(second.file_name().unwrap())
    );
}

#[test]
fn server_delay_holds_every_answer_and_refuses_a_bad_duration() {
    let server = crate::support::Server::start(&["--delay", "200ms"]);
    let started = std::time::Instant::now();
    let out = reqresp()
        .args(["client", &server.addr.to_string(), "one", "two"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Echo: one\nEcho: two\n");
    // A lower bound only: each answer waits at least the delay.
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    let bad = reqresp()
        .args(["server", "--listen", "127.0.0.1:0", "--delay", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("not a duration"),
        "{}",
        text(&bad.stderr)
    );
}

/// Waits (up to 10 s) until the lab's partition DROP rule is in the INPUT
/// chain of namespace `netns`: the fault has started.
fn wait_partitioned(netns: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rules = Command::new("ip")
            .args(["netns", "exec", netns, "iptables", "-S", "INPUT"])
            .output()
            .unwrap();
        let rules = text(&rules.stdout);
        if rules.lines().any(|l| {
            l.contains("reqresp lab fault") && l.ends_with("-j DROP") && !l.contains("statistic")
        }) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the partition never started in {netns}: {rules}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
