//! End-to-end tests of `reqresp bench`: the real binary (and the library
//! API) against the real `reqresp server`, against servers that stall or
//! close mid-run, and against tiny servers written here that only answer
//! when requests really are pipelined.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqresp::bench::{self, BenchConfig, Stop};
use serde_json::Value;

use crate::support::{self, Server};

/// Runs `reqresp bench ARGS` under `timeout 60` and returns its output.
fn bench(args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg("60")
        .arg(support::bin())
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run reqresp bench");
    assert_ne!(out.status.code(), Some(124), "reqresp bench hung");
    out
}

/// Runs `reqresp bench ADDR ARGS --format json` and parses its report.
fn bench_json(addr: &str, args: &[&str]) -> (Output, Value) {
    let mut all = vec![addr, "--format", "json"];
    all.extend_from_slice(args);
    let out = bench(&all);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"));
    (out, json)
}

fn stderr(out: &Output) -> &str {
    std::str::from_utf8(&out.stderr).expect("utf-8 stderr")
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).expect("utf-8 stdout")
}

fn u(json: &Value, key: &str) -> u64 {
    json[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {json}"))
}

fn f(json: &Value, path: &[&str]) -> f64 {
    let mut v = json;
    for key in path {
        v = &v[key];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {json}"))
}

/// Asserts min ≤ p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max, all positive.
fn assert_percentiles_ordered(json: &Value) {
    let keys = ["min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"];
    let values: Vec<f64> = keys.iter().map(|k| f(json, &["latency", k])).collect();
    assert!(values[0] > 0.0, "{values:?}");
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "{keys:?} {values:?}"
    );
}

/// Asserts a failed run whose stderr is exactly one line; returns it.
fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure: {out:?}");
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line on stderr, got {err:?}");
    err.trim_end().to_string()
}

#[test]
fn every_request_gets_its_response_and_the_counts_are_exact() {
    let server = Server::start(&[]);
    let (out, json) = bench_json(&server.addr.to_string(), &["-n", "3000", "-c", "8"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stderr(&out), "");
    assert_eq!(u(&json, "planned"), 3000);
    assert_eq!(u(&json, "requests"), 3000);
    assert_eq!(u(&json, "responses"), 3000);
    assert_eq!(u(&json, "unsent"), 0);
    assert_eq!(json["errors"]["total"], 0);
    assert_eq!(u(&json, "connections_lost"), 0);
    assert_eq!(json["first_error"], Value::Null);
    assert_eq!(u(&json, "connections"), 8);
    assert_eq!(json["mode"], "closed-loop");
    assert_eq!(json["latency_from"], "sent");
    assert_eq!(f(&json, &["latency", "count"]), 3000.0);
    assert_percentiles_ordered(&json);
    // 16 payload bytes + "\n" out; "Echo: " + 16 + "\n" back.
    assert_eq!(u(&json, "bytes_sent"), 3000 * 17);
    assert_eq!(u(&json, "bytes_received"), 3000 * 23);
    let rps = f(&json, &["throughput", "requests_per_sec"]);
    let elapsed = f(&json, &["elapsed_secs"]);
    assert!(
        (rps * elapsed - 3000.0).abs() < 1.0,
        "{rps} req/s × {elapsed} s"
    );
}

#[test]
fn text_report_states_counts_throughput_and_percentiles() {
    let server = Server::start(&[]);
    let out = bench(&[
        &server.addr.to_string(),
        "-n",
        "500",
        "-c",
        "2",
        "--size",
        "40",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "reqresp bench {}: 2 connection(s), closed loop, pipeline 1, line framing, 40-byte requests\n",
            server.addr
        )),
        "{text}"
    );
    assert!(
        text.contains("  requests     500 sent, 500 answered, 0 error(s) in "),
        "{text}"
    );
    assert!(text.contains(" req/s; "), "{text}");
    for label in ["min ", "p50 ", "p90 ", "p99 ", "p99.9 ", "max "] {
        assert!(text.contains(label), "no {label} in {text}");
    }
    assert!(!text.contains("error  "), "{text}");
}

#[test]
fn pipelining_keeps_several_requests_in_flight() {
    let server = Server::start(&[]);
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &["-n", "20000", "-c", "4", "--pipeline", "16"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(u(&json, "pipeline"), 16);
    assert_eq!(u(&json, "responses"), 20000);
    assert_eq!(json["errors"]["total"], 0);
    assert_percentiles_ordered(&json);
}

/// A line echo server that answers nothing until `batch` requests have
/// arrived on a connection, then answers them all: a generator that does
/// not keep `batch` requests in flight gets no answer at all.
fn batching_echo_server(batch: usize) -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut answered = 0;
        loop {
            let mut answers = Vec::new();
            for _ in 0..batch {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return answered,
                    Ok(_) => answers.extend_from_slice(format!("Echo: {line}").as_bytes()),
                }
            }
            if writer.write_all(&answers).is_err() {
                return answered;
            }
            answered += batch;
        }
    });
    (addr, handle)
}

#[test]
fn pipelined_requests_really_are_sent_before_the_responses_arrive() {
    let (addr, server) = batching_echo_server(16);
    let (out, json) = bench_json(
        &addr,
        &["-n", "64", "-c", "1", "--pipeline", "16", "--timeout", "5"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(u(&json, "responses"), 64);
    assert_eq!(server.join().unwrap(), 64);
}

#[test]
fn without_pipelining_the_batching_server_never_answers_and_that_is_a_timeout() {
    let (addr, server) = batching_echo_server(2);
    let (out, json) = bench_json(&addr, &["-n", "4", "-c", "1", "--timeout", "0.5"]);
    let err = one_line_error(&out);
    assert!(
        err.starts_with("reqresp: error: 1 error(s) in 1 requests (1 timeout)"),
        "{err}"
    );
    assert!(err.contains("no response within 0.5 s"), "{err}");
    assert_eq!(json["errors"]["timeout"], 1);
    assert_eq!(u(&json, "unsent"), 3);
    assert_eq!(u(&json, "connections_lost"), 1);
    assert_eq!(json["latency"], Value::Null);
    assert_eq!(server.join().unwrap(), 0);
}

#[test]
fn length_framing_with_large_payloads() {
    let server = Server::start(&["--framing", "length"]);
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &[
            "-n",
            "1000",
            "-c",
            "4",
            "--framing",
            "length",
            "--size",
            "3000",
            "--pipeline",
            "4",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json["framing"], "length");
    assert_eq!(u(&json, "responses"), 1000);
    assert_eq!(json["errors"]["total"], 0);
    assert_eq!(u(&json, "bytes_sent"), 1000 * (4 + 3000));
    assert_eq!(u(&json, "bytes_received"), 1000 * (4 + 6 + 3000));
}

#[test]
fn wrong_framing_is_reported_as_timeouts_with_a_hint() {
    let server = Server::start(&["--framing", "line"]);
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &[
            "-n",
            "10",
            "-c",
            "2",
            "--framing",
            "length",
            "--timeout",
            "0.5",
        ],
    );
    let err = one_line_error(&out);
    assert!(err.contains("using another --framing"), "{err}");
    assert_eq!(json["errors"]["timeout"], 2);
    assert_eq!(u(&json, "responses"), 0);
}

#[test]
fn raw_framing_works_one_request_at_a_time() {
    let server = Server::start(&["--framing", "raw"]);
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &[
            "-n",
            "300",
            "-c",
            "3",
            "--framing",
            "raw",
            "-m",
            "hello raw",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(u(&json, "responses"), 300);
    let out = bench(&[
        &server.addr.to_string(),
        "-n",
        "10",
        "--framing",
        "raw",
        "--pipeline",
        "2",
    ]);
    assert!(one_line_error(&out).contains("raw framing cannot tell pipelined responses apart"));
}

#[test]
fn open_loop_rate_is_held_and_latency_counts_from_the_schedule() {
    let server = Server::start(&[]);
    let started = Instant::now();
    // 150 requests at 300/s: the last is due 0.5 s after the first.
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &["-n", "150", "-c", "3", "--rate", "300"],
    );
    let wall = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(u(&json, "responses"), 150);
    assert_eq!(json["mode"], "open-loop");
    assert_eq!(json["rate"], 300.0);
    assert_eq!(json["latency_from"], "due");
    let elapsed = f(&json, &["elapsed_secs"]);
    assert!(
        elapsed >= 0.45,
        "finished too early for the rate: {elapsed} s"
    );
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
    assert_percentiles_ordered(&json);
}

#[test]
fn warmup_requests_are_not_counted() {
    let server = Server::start(&[]);
    let (out, json) = bench_json(
        &server.addr.to_string(),
        &["-n", "400", "-c", "2", "--warmup", "0.3"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(u(&json, "requests"), 400);
    assert_eq!(u(&json, "responses"), 400);
    assert_eq!(f(&json, &["latency", "count"]), 400.0);
    assert_eq!(f(&json, &["warmup_secs"]), 0.3);
}

#[test]
fn duration_bounds_the_run() {
    let server = Server::start(&[]);
    let started = Instant::now();
    let (out, json) = bench_json(&server.addr.to_string(), &["--duration", "0.7", "-c", "4"]);
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let elapsed = f(&json, &["elapsed_secs"]);
    assert!((0.6..2.0).contains(&elapsed), "{elapsed}");
    assert_eq!(json["planned"], Value::Null);
    assert!(u(&json, "responses") > 0);
    assert_eq!(u(&json, "requests"), u(&json, "responses"));
}

#[test]
fn a_server_that_stops_answering_shows_timeouts_and_fails_the_run() {
    // Requests logged as JSON, one line each, to see the bench under way.
    let server = Server::start(&["-v", "--log-format", "json"]);
    let addr = server.addr.to_string();
    let child = Command::new(support::bin())
        .args([
            "bench",
            &addr,
            "--duration",
            "3",
            "-c",
            "4",
            "--timeout",
            "0.5",
        ])
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Five requests over four connections, one in flight on each: some
    // connection has sent a second request, so an answer came back.
    support::wait_until(
        "the server logged 5 requests",
        Duration::from_secs(10),
        || {
            server
                .stderr
                .lines()
                .iter()
                .filter(|l| l.contains(r#""message":"request""#))
                .count()
                >= 5
        },
    );
    server.signal(libc::SIGSTOP);
    let out = child.wait_with_output().unwrap();
    server.signal(libc::SIGCONT);
    let err = one_line_error(&out);
    assert!(err.contains("timeout"), "{err}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        u(&json, "responses") > 0,
        "answered before the stall: {json}"
    );
    assert_eq!(
        json["errors"]["timeout"], 4,
        "one request in flight per connection"
    );
    assert_eq!(u(&json, "connections_lost"), 4);
}

#[test]
fn a_server_that_shuts_down_mid_run_is_reported() {
    let mut server = Server::start(&["--drain-timeout", "0.2"]);
    let addr = server.addr.to_string();
    let started = Instant::now();
    let child = Command::new(support::bin())
        .args([
            "bench",
            &addr,
            "--duration",
            "20",
            "-c",
            "4",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // All four connections of the bench are open.
    support::wait_until(
        "the server logged 4 connections",
        Duration::from_secs(10),
        || {
            server
                .stderr
                .lines()
                .iter()
                .filter(|l| l.contains("connection opened"))
                .count()
                >= 4
        },
    );
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "server did not stop"
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the bench should end when its connections are gone"
    );
    let err = one_line_error(&out);
    assert!(err.contains("connection(s) lost"), "{err}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json, "connections_lost"), 4);
    let errors = &json["errors"];
    assert!(errors["total"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(
        errors["total"].as_u64(),
        Some(
            errors["closed"].as_u64().unwrap()
                + errors["io"].as_u64().unwrap()
                + errors["protocol"].as_u64().unwrap()
        ),
        "only closes and resets: {json}"
    );
}

#[test]
fn unreachable_server_is_one_line_saying_how_many_failed() {
    let port = support::closed_port();
    let out = bench(&[&format!("127.0.0.1:{port}"), "-n", "10", "-c", "3"]);
    let err = one_line_error(&out);
    assert_eq!(
        err,
        format!(
            "reqresp: error: cannot connect to 127.0.0.1:{port}: 3 of 3 connection(s) failed, \
             the first with: connection refused — is the server running?"
        )
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn responses_that_differ_are_counted_and_the_first_is_shown() {
    let server = Server::start(&["--prefix", "Hi: "]);
    let addr = server.addr.to_string();
    let (out, json) = bench_json(&addr, &["-n", "50", "-c", "2", "-m", "ping"]);
    let err = one_line_error(&out);
    assert!(
        err.contains(r#"expected "Echo: ping", got "Hi: ping""#),
        "{err}"
    );
    assert_eq!(json["errors"]["mismatch"], 50);
    assert_eq!(u(&json, "responses"), 50);
    // With the right expectation the same run is clean.
    let (out, json) = bench_json(&addr, &["-n", "50", "-c", "2", "--expect", "Hi: "]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json["errors"]["total"], 0);
}

#[test]
fn unbounded_or_absurd_settings_are_refused_before_connecting() {
    for (args, words) in [
        (&["--duration", "4000"][..], "at most 3600 seconds"),
        (&["-n", "0"][..], "-n must be at least 1"),
        (&["-c", "0"][..], "-c must be between"),
        (&["--rate", "0"][..], "--rate must be more than 0"),
    ] {
        // A loopback port nobody listens on; the refusal must come first.
        let closed = format!("127.0.0.1:{}", support::closed_port());
        let mut all = vec![closed.as_str()];
        all.extend_from_slice(args);
        let out = bench(&all);
        let err = one_line_error(&out);
        assert!(err.contains(words), "{args:?}: {err}");
    }
    let closed = format!("127.0.0.1:{}", support::closed_port());
    let out = bench(&[&closed, "-n", "5", "--duration", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot be used with"), "{out:?}");
}

#[test]
fn the_library_api_runs_a_benchmark() {
    let server = Server::start(&["--framing", "length"]);
    let mut config = BenchConfig::new(server.addr.to_string());
    config.framing = reqresp::protocol::Framing::Length;
    config.stop = Stop::Requests(777);
    config.connections = 5;
    config.pipeline = 3;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(bench::run(&config)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.responses, 777);
    let latency = report.latency.unwrap();
    assert_eq!(latency.count, 777);
    assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.max_us);
}
