//! End-to-end tests of `reqresp check`: the real binary against the real
//! `reqresp server` in each framing, against the original lab's Python
//! server (contrib/lab-python/server.py), and against the deliberately
//! broken servers in tests/servers/, each of which must fail exactly the
//! case it was written to fail. Output formats are parsed back: JSON
//! against the schema in docs/check.md (field by field), JUnit with an XML
//! parser.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, Server};

/// A healthy server on a machine busy with other builds may answer slowly
/// now and then; the tests judge behaviour, not speed.
const LATENCY_WARN_MS: &str = "2000";

/// Runs `reqresp check <args>` under `timeout 120`, so a hung check fails
/// the test instead of hanging it.
fn check(args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg("120")
        .arg(support::bin())
        .arg("check")
        .args(args)
        .output()
        .expect("run reqresp check");
    assert_ne!(out.status.code(), Some(124), "reqresp check hung: {out:?}");
    out
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).expect("utf-8 stdout")
}

/// Runs the check with `--format json` and returns the document.
fn check_json(addr: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        addr,
        "--format",
        "json",
        "--no-capture",
        "--latency-warn",
        LATENCY_WARN_MS,
    ];
    args.extend_from_slice(extra);
    let out = check(&args);
    let v: Value = serde_json::from_str(stdout(&out))
        .unwrap_or_else(|e| panic!("JSON output ({e}): {}", stdout(&out)));
    assert_schema(&v);
    (out, v)
}

/// Each case's result by name.
fn results(v: &Value) -> BTreeMap<String, String> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn with_result<'a>(v: &'a Value, result: &str) -> BTreeSet<&'a str> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == result)
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn case<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {v}"))
}

const CASES: [&str; 15] = [
    "echo",
    "empty",
    "utf8",
    "binary",
    "split",
    "merged",
    "large",
    "concurrent",
    "sequential",
    "half-close",
    "abort",
    "close",
    "idle",
    "latency",
    "tickets",
];

const EVENTS: [&str; 11] = [
    "connected",
    "connect-failed",
    "sent",
    "received",
    "fin",
    "reset",
    "error",
    "timeout",
    "shutdown-write",
    "closed",
    "aborted",
];

/// Checks a document against the `reqresp-check/1` schema of docs/check.md,
/// field by field: every documented field present with its type, enums
/// within their values, no undocumented top-level or case field.
fn assert_schema(v: &Value) {
    let obj = v.as_object().expect("top level is an object");
    let top: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let documented: BTreeSet<&str> = [
        "schema",
        "target",
        "server",
        "framing",
        "service",
        "strict",
        "passed",
        "counts",
        "duration_ms",
        "evidence",
        "notes",
        "cases",
    ]
    .into();
    assert_eq!(top, documented, "top-level fields");
    assert_eq!(v["schema"], "reqresp-check/1");
    assert!(v["target"].is_string());
    assert!(v["server"].as_str().unwrap().parse::<SocketAddr>().is_ok());
    assert!(["line", "length", "raw"].contains(&v["framing"].as_str().unwrap()));
    assert!(["echo", "tickets"].contains(&v["service"].as_str().unwrap()));
    assert!(v["strict"].is_boolean());
    assert!(v["passed"].is_boolean());
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    for k in ["pass", "warn", "fail", "skip"] {
        assert!(v["counts"][k].is_u64(), "counts.{k}");
    }
    match v["evidence"]["source"].as_str().unwrap() {
        "client" => assert!(v["evidence"]["why"].is_string()),
        "capture" => {
            assert!(v["evidence"]["interface"].is_string());
            assert!(v["evidence"]["file"].is_string() || v["evidence"]["file"].is_null());
        }
        other => panic!("evidence.source {other}"),
    }
    assert!(v["notes"].as_array().unwrap().iter().all(Value::is_string));
    let cases = v["cases"].as_array().unwrap();
    let mut fails = 0;
    for c in cases {
        let fields: BTreeSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        let documented: BTreeSet<&str> = [
            "name",
            "result",
            "strict_failure",
            "reason",
            "rule",
            "duration_ms",
            "figures",
            "evidence",
        ]
        .into();
        assert_eq!(fields, documented, "case fields");
        assert!(CASES.contains(&c["name"].as_str().unwrap()));
        let result = c["result"].as_str().unwrap();
        assert!(["pass", "warn", "fail", "skip"].contains(&result));
        assert!(c["strict_failure"].is_boolean());
        assert!(!c["reason"].as_str().unwrap().is_empty());
        assert!(!c["rule"]["en"].as_str().unwrap().is_empty());
        assert!(!c["rule"]["id"].as_str().unwrap().is_empty());
        assert!(c["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(
            c["figures"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_number)
        );
        if result == "fail" {
            fails += 1;
            let e = &c["evidence"];
            assert!(e["ladder_file"].is_string() || e["ladder_file"].is_null());
            assert!(e["capture_file"].is_string() || e["capture_file"].is_null());
            assert!(e["capture_packets"].is_u64() || e["capture_packets"].is_null());
            for conn in e["connections"].as_array().unwrap() {
                assert!(conn["label"].is_string());
                assert!(conn["local_port"].is_u64() || conn["local_port"].is_null());
                assert!(conn["failed"].is_boolean());
                assert!(conn["events_dropped"].is_u64());
                for ev in conn["events"].as_array().unwrap() {
                    assert!(ev["t_ms"].as_f64().unwrap() >= 0.0);
                    let kind = ev["event"].as_str().unwrap();
                    assert!(EVENTS.contains(&kind), "event {kind}");
                    if kind == "sent" || kind == "received" {
                        assert!(ev["bytes"].is_u64() && ev["text"].is_string());
                    }
                    if kind == "timeout" {
                        assert!(ev["waited_ms"].is_number() && ev["waiting_for"].is_string());
                    }
                }
            }
        } else {
            assert!(c["evidence"].is_null());
        }
    }
    assert_eq!(v["counts"]["fail"], fails);
    assert_eq!(v["passed"], fails == 0);
}

/// A Python server from this repository, stopped (by PID) when dropped.
struct PyServer {
    child: Child,
    addr: String,
}

impl PyServer {
    /// Starts `python3 <script> 0 [127.0.0.1]` and reads the address from
    /// its first line (`… listening on HOST:PORT`).
    fn start(script: &str, args: &[&str]) -> PyServer {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        let started = Instant::now();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        reader
            .read_line(&mut line)
            .expect("read the server's first line");
        // The lab's server prints every message: keep reading its output,
        // so it neither dies of a closed pipe nor blocks on a full one.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server start took too long"
        );
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        assert!(addr.parse::<SocketAddr>().is_ok(), "address in {line:?}");
        PyServer { child, addr }
    }

    fn lab() -> PyServer {
        PyServer::start("contrib/lab-python/server.py", &["0", "127.0.0.1"])
    }

    fn broken(name: &str) -> PyServer {
        PyServer::start(&format!("tests/servers/{name}.py"), &[])
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn need_python() -> bool {
    if support::have("python3") {
        return true;
    }
    support::skip("python3 is not installed");
    false
}

#[test]
fn reqresp_server_passes_every_case_in_each_framing() {
    for (framing, skipped) in [
        ("line", vec!["binary", "tickets"]),
        ("length", vec!["tickets"]),
        ("raw", vec!["binary", "empty", "tickets"]),
    ] {
        let server = Server::start(&["--framing", framing]);
        let started = Instant::now();
        let (out, v) = check_json(&server.addr.to_string(), &["--framing", framing]);
        let took = started.elapsed();
        assert!(out.status.success(), "{framing}: {}", stdout(&out));
        let skipped: BTreeSet<&str> = skipped.into_iter().collect();
        assert_eq!(with_result(&v, "skip"), skipped, "{framing}");
        let passed = with_result(&v, "pass");
        assert_eq!(
            passed.len() + skipped.len(),
            CASES.len(),
            "{framing}: {v:#}"
        );
        let latency = &case(&v, "latency")["figures"];
        assert!(latency["requests"].as_f64().unwrap() >= 1.0);
        assert!(latency["p50_ms"].as_f64().unwrap() <= latency["p99_ms"].as_f64().unwrap());
        eprintln!("check against reqresp server --framing {framing}: {took:?}");
    }
}

#[test]
fn tickets_race_books_exactly_the_stock() {
    let server = Server::start(&[
        "--service",
        "tickets",
        "--tickets",
        "40",
        "--tickets-db",
        ":memory:",
    ]);
    let (out, v) = check_json(&server.addr.to_string(), &["--service", "tickets"]);
    assert!(out.status.success(), "{}", stdout(&out));
    // tickets runs first, before other cases could touch the stock.
    assert_eq!(v["cases"][0]["name"], "tickets");
    let t = &case(&v, "tickets");
    assert_eq!(t["result"], "pass", "{t}");
    assert_eq!(t["figures"]["stock_left"], 39.0);
    assert_eq!(t["figures"]["booked"], 39.0);
    // A second run finds the stock sold out: a warning, not a failure.
    let (out, v) = check_json(
        &server.addr.to_string(),
        &["--service", "tickets", "--only", "tickets"],
    );
    assert!(out.status.success());
    assert_eq!(case(&v, "tickets")["result"], "warn");
    let (out, _) = check_json(
        &server.addr.to_string(),
        &["--service", "tickets", "--only", "tickets", "--strict"],
    );
    assert_eq!(out.status.code(), Some(1), "--strict fails on a warning");
}

#[test]
fn the_lab_python_server_fails_four_cases_naming_the_cause() {
    if !need_python() {
        return;
    }
    // The server exits after one client, so each case gets a fresh one.
    for (name, cause) in [
        ("sequential", "exits after one client"),
        ("concurrent", "serves one client at a time"),
        ("large", "recv(1024)"),
        ("merged", "no framing"),
    ] {
        let server = PyServer::lab();
        let (out, v) = check_json(&server.addr, &["--only", name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let c = case(&v, name);
        assert_eq!(c["result"], "fail", "{name}: {c}");
        let reason = c["reason"].as_str().unwrap();
        assert!(reason.contains(cause), "{name}: {reason}");
        assert!(
            c["evidence"]["connections"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["failed"] == true),
            "{name}: the evidence marks the failed connection"
        );
    }
    // The whole suite: the server is gone after the first case, and the
    // report says so instead of blaming each case on its own.
    let server = PyServer::lab();
    let (out, v) = check_json(&server.addr, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(case(&v, "echo")["result"], "pass");
    let note = v["notes"][0].as_str().unwrap();
    assert!(note.contains("stopped accepting connections"), "{note}");
    assert_eq!(case(&v, "sequential")["result"], "fail");
}

#[test]
fn each_broken_server_fails_exactly_its_case() {
    if !need_python() {
        return;
    }
    for (script, expected) in [
        ("rst_on_close", "close"),
        ("first_message_only", "merged"),
        ("blocks_on_slow_client", "concurrent"),
    ] {
        let server = PyServer::broken(script);
        let (out, v) = check_json(&server.addr, &[]);
        assert_eq!(out.status.code(), Some(1), "{script}");
        let failed = with_result(&v, "fail");
        assert_eq!(
            failed,
            BTreeSet::from([expected]),
            "{script}: {:#?}",
            results(&v)
        );
        assert_eq!(with_result(&v, "warn"), BTreeSet::new(), "{script}");
    }
}

#[test]
fn reasons_name_the_broken_servers_faults() {
    if !need_python() {
        return;
    }
    for (script, name, cause) in [
        ("rst_on_close", "close", "RST"),
        ("first_message_only", "merged", "only 1 of 3"),
        ("blocks_on_slow_client", "concurrent", "slow client"),
    ] {
        let server = PyServer::broken(script);
        let (_, v) = check_json(&server.addr, &["--only", name]);
        let reason = case(&v, name)["reason"].as_str().unwrap().to_string();
        assert!(reason.contains(cause), "{script}: {reason}");
    }
}

#[test]
fn junit_output_is_accepted_by_an_xml_parser() {
    if !need_python() {
        return;
    }
    let server = PyServer::broken("rst_on_close");
    let out = check(&[
        &server.addr,
        "--format",
        "junit",
        "--no-capture",
        "--latency-warn",
        LATENCY_WARN_MS,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("15"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("2"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 15);
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["close"]);
    let failure = cases
        .iter()
        .find(|c| c.attribute("name") == Some("close"))
        .unwrap()
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure.attribute("message").unwrap().contains("RST"));
    assert!(failure.text().unwrap().contains("connection reset"));
    for c in &cases {
        assert!(c.attribute("time").unwrap().parse::<f64>().is_ok());
    }
}

#[test]
fn text_report_shows_the_ladder_of_a_failed_case_and_exits_1() {
    if !need_python() {
        return;
    }
    let server = PyServer::broken("first_message_only");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("evidence");
    let out = check(&[
        &server.addr,
        "--only",
        "merged,echo",
        "--no-capture",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("── merged: FAIL"), "{text}");
    assert!(text.contains("what the client saw:"), "{text}");
    assert!(
        text.contains("write 27 B \"merged 1\\nmerged 2\\nmerged 3\\n\""),
        "{text}"
    );
    assert!(text.contains("read 15 B \"Echo: merged 1\\n\""), "{text}");
    assert!(text.contains("waiting for answer"), "{text}");
    assert!(
        text.contains("2 cases: 1 pass, 0 warn, 1 FAIL, 0 skip"),
        "{text}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "reqresp: check: 1 case failed"
    );
    let ladder = std::fs::read_to_string(out_dir.join("merged.ladder.txt")).unwrap();
    assert!(ladder.contains("write 27 B"), "{ladder}");
    assert!(
        !out_dir.join("echo.ladder.txt").exists(),
        "only failed cases"
    );
}

#[test]
fn indonesian_report_and_rules() {
    let server = Server::start(&[]);
    let out = check(&[&server.addr.to_string(), "--only", "echo", "--lang", "id"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("kasus"), "{text}");
    assert!(text.contains("lulus"), "{text}");
    assert!(text.contains("tidak ada kasus yang gagal"), "{text}");
}

#[test]
fn bad_arguments_and_unreachable_servers() {
    let out = check(&["127.0.0.1:1", "--only", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown case `bogus`") && err.contains("half-close"),
        "{err}"
    );

    // A port nothing listens on: every case that runs fails, quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (out, v) = check_json(&addr, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["counts"]["pass"], 0);
    assert_eq!(v["counts"]["fail"], 13);
    assert!(
        case(&v, "echo")["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
}

#[test]
fn failed_cases_captures_are_written_for_wireshark() {
    if !support::is_root() {
        return support::skip("capturing needs root");
    }
    if !need_python() {
        return;
    }
    let server = PyServer::broken("rst_on_close");
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[
        &server.addr,
        "--only",
        "echo,close",
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(stdout(&out)).unwrap();
    assert_schema(&v);
    assert_eq!(v["evidence"]["source"], "capture", "{}", v["evidence"]);
    assert_eq!(v["evidence"]["interface"], "lo");
    let close = case(&v, "close");
    let pcap = PathBuf::from(close["evidence"]["capture_file"].as_str().unwrap());
    assert_eq!(pcap, dir.path().join("close.pcap"));
    assert!(close["evidence"]["capture_packets"].as_u64().unwrap() >= 6);
    assert!(!dir.path().join("echo.pcap").exists(), "only failed cases");
    // The cut is a pcap that the analyzer reads back: one connection, the
    // exchange, and the server's RST.
    let analyzed = support::reqresp()
        .args(["analyze", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&analyzed.stdout);
    assert!(analyzed.status.success(), "{text}");
    assert!(text.contains("connections  1"), "{text}");
    assert!(text.contains("RST"), "{text}");
    assert!(text.contains("\"goodbye soon\""), "{text}");

    // The text report shows the packets' ladder under the client's view.
    let server = PyServer::broken("rst_on_close");
    let out = check(&[&server.addr, "--only", "close"]);
    let text = stdout(&out);
    assert!(text.contains("evidence captured on lo"), "{text}");
    assert!(text.contains("the packets ("), "{text}");
    assert!(text.contains("SYN-ACK"), "{text}");
}

#[test]
fn without_capture_privilege_the_evidence_is_the_clients_view() {
    if !need_python() {
        return;
    }
    let server = PyServer::broken("rst_on_close");
    // As root, drop to nobody so that capturing is refused for real.
    let mut cmd = if support::is_root() {
        if !support::have("setpriv") {
            return support::skip("setpriv is not installed");
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(support::bin());
        c
    } else {
        Command::new(support::bin())
    };
    let out = cmd
        .args(["check", &server.addr, "--only", "close", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_str(stdout(&out)).unwrap();
    assert_schema(&v);
    assert_eq!(v["evidence"]["source"], "client");
    let why = v["evidence"]["why"].as_str().unwrap();
    assert!(why.contains("CAP_NET_RAW"), "{why}");
    let close = case(&v, "close");
    assert!(close["evidence"]["capture_file"].is_null());
    let events = close["evidence"]["connections"][0]["events"]
        .as_array()
        .unwrap();
    assert!(events.iter().any(|e| e["event"] == "reset"), "{events:?}");
}

#[test]
fn prefix_and_expect_describe_other_servers() {
    let server = Server::start(&["--prefix", "Re: "]);
    let addr = server.addr.to_string();
    // The default expectation (`Echo: …`) is wrong for this server.
    let (out, v) = check_json(&addr, &["--only", "echo"]);
    assert_eq!(out.status.code(), Some(1));
    let reason = case(&v, "echo")["reason"].as_str().unwrap();
    assert!(
        reason.contains("expected \"Echo: hello from reqresp check\""),
        "{reason}"
    );
    assert!(
        reason.contains("got \"Re: hello from reqresp check\""),
        "{reason}"
    );
    // Told the prefix, or only what answers start with, it passes.
    let (out, _) = check_json(&addr, &["--prefix", "Re: ", "--only", "echo,merged,large"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let (out, _) = check_json(&addr, &["--expect", "Re:", "--only", "echo,merged,large"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

/// With a capture and `--out`, the check writes the whole run's interactive
/// report beside `check.pcap` and names it first: on stdout before the
/// table, or on stderr when stdout is JSON for a program.
#[test]
fn with_a_capture_and_out_the_check_writes_report_html_first() {
    if !support::is_root() {
        return support::skip("capturing needs root");
    }
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[
        &addr,
        "--only",
        "echo,merged,concurrent",
        "--latency-warn",
        LATENCY_WARN_MS,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let html = dir.path().join("report.html");
    assert_eq!(
        text.lines().next(),
        Some(format!("report: {}  (open it in a browser)", html.display()).as_str()),
        "{text}"
    );
    let pcap = dir.path().join("check.pcap");
    let analyzed = support::reqresp()
        .args(["analyze", "--format", "json", "--server", &addr])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(analyzed.status.success(), "{analyzed:?}");
    let analysis: Value = serde_json::from_slice(&analyzed.stdout).unwrap();
    // echo: 1, merged: 1, concurrent: 2 + 10 + 100 clients and a slow one.
    let conns = analysis["connections"].as_array().unwrap().len();
    assert!(conns >= 100, "{conns} connections in {}", pcap.display());
    support::assert_html_report(&html, &analysis);

    // JSON on stdout stays JSON; the path goes to stderr.
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[
        &addr,
        "--only",
        "echo",
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_str(stdout(&out)).unwrap();
    assert_schema(&v);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "report: {}",
            dir.path().join("report.html").display()
        )),
        "{stderr}"
    );
    assert!(dir.path().join("report.html").is_file());

    // Without a capture there is no report.html.
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[
        &addr,
        "--only",
        "echo",
        "--no-capture",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(!dir.path().join("report.html").exists());
    assert!(!stdout(&out).starts_with("report: "), "{}", stdout(&out));
}
