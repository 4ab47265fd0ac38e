//! End-to-end tests of `reqresp lab --server-cmd` and `--client-cmd` (as
//! root): a user's own program on a lab host, judged by the lab's client and
//! `reqresp check`, or by the capture's analysis, and nothing of it left
//! behind. Each test copies the program into a directory of its own, so
//! "nothing left" means no process whose working directory is in it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, LabNames, have, is_root, skip};

fn ready() -> bool {
    if !is_root() {
        skip("reqresp lab --server-cmd runs programs in network namespaces: needs root");
        return false;
    }
    if !have("ip") || !have("python3") {
        skip("reqresp lab --server-cmd tests need iproute2 (ip) and python3");
        return false;
    }
    true
}

/// Runs `reqresp lab <args>` to its end (at most 180 s).
fn lab(args: &[&str]) -> Output {
    support::run_lab(args, Duration::from_secs(180))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh directory holding copies of `files` (paths in the repository).
fn workdir(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
        let name = from.file_name().unwrap().to_owned();
        std::fs::copy(&from, dir.path().join(name)).unwrap();
    }
    dir
}

/// Panics when a namespace of the run or a process working in `dir` is
/// still there.
fn assert_nothing_left(stdout: &str, dir: &Path) {
    LabNames::parse(stdout).assert_gone();
    let dir = dir.canonicalize().unwrap();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir)))
        .map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            format!(
                "{} {}",
                e.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

fn latest(base: &Path) -> PathBuf {
    std::fs::canonicalize(base.join("latest")).expect("the run's folder")
}

fn check_json(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("check.json")).expect("check.json");
    serde_json::from_str(&text).expect("check.json is JSON")
}

fn case<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {v:#}"))
}

#[test]
fn the_lab_python_server_fails_four_cases_by_name_and_the_lab_still_reports() {
    if !ready() {
        return;
    }
    let dir = workdir(&["contrib/lab-python/server.py"]);
    let out_dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "--server-cmd",
        "python3 server.py",
        "--server-dir",
        dir.path().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing server: {}",
        show(&out)
    );
    // The lab's own client got its answers: the one client it serves.
    assert!(text.contains("< Echo: Hello, server!"), "{text}");
    let run = latest(out_dir.path());
    assert!(run.join("reqresp.pcap").metadata().unwrap().len() > 24);
    let report = std::fs::read_to_string(run.join("report.txt")).unwrap();
    assert!(
        report.contains("3 exchanges"),
        "the ladder of the lab's client:\n{report}"
    );
    // The check's table, on stdout and in check.txt.
    assert!(text.contains("reqresp check 10.222."), "{text}");
    let v = check_json(&run);
    for (name, cause) in [
        ("sequential", "exits after one client"),
        ("concurrent", "serves one client at a time"),
        ("large", "recv(1024)"),
        ("merged", "no framing"),
    ] {
        let c = case(&v, name);
        assert_eq!(c["result"], "fail", "{name}: {c}");
        let reason = c["reason"].as_str().unwrap();
        assert!(reason.contains(cause), "{name}: {reason}");
        assert!(
            run.join("check").join(format!("{name}.pcap")).exists(),
            "{name}: its packets, cut from the client host's capture"
        );
    }
    // Each case saw a fresh server: the ones a one-client server can pass, pass.
    assert_eq!(case(&v, "echo")["result"], "pass");
    assert_eq!(case(&v, "close")["result"], "pass");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("started again before the next case"),
        "{notes}"
    );
    assert!(text.contains("Echo: Hello"), "{text}");
    let log = std::fs::read_to_string(run.join("server.log")).unwrap();
    assert!(log.contains("Server listening on 0.0.0.0:2222"), "{log}");
    assert_nothing_left(&text, dir.path());
}

#[test]
fn reqresp_server_as_the_users_server_passes() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let command = format!("{} server", support::bin());
    let out = lab(&[
        "--server-cmd",
        &command,
        "--server-dir",
        dir.path().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", show(&out));
    let v = check_json(&latest(out_dir.path()));
    for c in v["cases"].as_array().unwrap() {
        assert!(
            ["pass", "skip", "warn"].contains(&c["result"].as_str().unwrap()),
            "{c}"
        );
    }
    assert!(text.contains("no case failed"), "{text}");
    assert!(
        !text.contains("went down"),
        "one server for every case:\n{text}"
    );
    assert!(text.contains("your server stopped on SIGTERM"), "{text}");
    assert_nothing_left(&text, dir.path());
}

#[test]
fn a_server_ignoring_sigterm_is_killed_after_the_drain_and_its_helper_too() {
    if !ready() {
        return;
    }
    let dir = workdir(&["tests/servers/ignores_sigterm.py"]);
    let out_dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "--server-cmd",
        "python3 ignores_sigterm.py",
        "--server-dir",
        dir.path().to_str().unwrap(),
        "--drain-timeout",
        "1s",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "your server ignored SIGTERM for the drain timeout (1.000 s): killed (SIGKILL)"
        ),
        "{}",
        show(&out)
    );
    // The `sleep` it started in a session of its own is found in the
    // server host's namespace.
    assert!(
        text.contains("1 process(es) it left in the server host were killed"),
        "{text}"
    );
    assert!(text.contains("topology removed"), "{text}");
    assert_nothing_left(&text, dir.path());
}

#[test]
fn the_lab_python_client_is_judged_on_the_wire() {
    if !ready() {
        return;
    }
    let dir = workdir(&["contrib/lab-python/client.py"]);
    let out_dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "--client-cmd",
        "python3 client.py",
        "--client-dir",
        dir.path().to_str().unwrap(),
        // The original client sends each message bare: the server takes
        // each read as a message, as the original server did.
        "--framing",
        "raw",
        // Not the default script: it ends with `bye`, which client.py
        // takes as the word to stop.
        "-m",
        "one",
        "-m",
        "two",
        "-m",
        "three",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unframed client: {}",
        show(&out)
    );
    // It got the lab's requests on stdin and their answers.
    assert!(text.contains("| Received: Echo: three"), "{text}");
    assert!(
        text.contains("problem: it did not frame its messages"),
        "{text}"
    );
    assert!(text.contains("it closed cleanly with FIN"), "{text}");
    assert!(text.contains("got 3 answer(s)"), "{text}");
    let run = latest(out_dir.path());
    let findings = std::fs::read_to_string(run.join("client.txt")).unwrap();
    assert!(findings.contains("did not frame"), "{findings}");
    assert!(run.join("reqresp.pcap").exists());
    assert_nothing_left(&text, dir.path());
}

#[test]
fn on_loopback_or_with_both_it_says_what_to_do() {
    let out = lab(&["--mode", "loopback", "--server-cmd", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run as root"), "{err}");
    let out = lab(&["--server-cmd", "true", "--client-cmd", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
    let out = lab(&["--server-dir", "/tmp"]);
    assert!(!out.status.success(), "--server-dir alone names no program");
}
