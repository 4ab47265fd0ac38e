//! TCP events (`connections.events`) on real captures, checked frame by
//! frame against tshark's `tcp.analysis` flags on the same file: real loss
//! between two network namespaces (iptables `statistic`), a client that
//! stops reading (zero window), and a connection refused.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, Tcpdump, have, is_root, reqresp, skip};

/// Waits until tshark sees at least `fins` FIN segments in `file` (the
/// conversation is fully written), at most 10 s.
fn wait_for_fins(file: &Path, fins: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args([
                "-Y",
                "tcp.flags.fin == 1",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .output()
            .expect("run tshark");
        let seen = String::from_utf8_lossy(&out.stdout).lines().count();
        if seen >= fins || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// tshark's flags per frame, in one run: for each field, the frames (captured
/// at or before `until`, ns since the epoch) where it is set.
fn tshark_flags_until(
    file: &Path,
    fields: &[&str],
    until: &[u64],
) -> BTreeMap<String, BTreeSet<u64>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    cmd.args([
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "frame.time_epoch",
        "-e",
        "tcp.stream",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark failed: {out:?}");
    let mut flags: BTreeMap<String, BTreeSet<u64>> = fields
        .iter()
        .map(|f| ((*f).to_owned(), BTreeSet::new()))
        .collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(frame), Some(epoch)) = (cols.first(), cols.get(1)) else {
            continue;
        };
        let (secs, frac) = epoch.split_once('.').unwrap_or((epoch, "0"));
        let frac = format!("{frac:0<9}");
        let ns = secs.parse::<u64>().unwrap_or(0) * 1_000_000_000
            + frac[..9].parse::<u64>().unwrap_or(0);
        // tshark numbers TCP connections in order of first packet, as reqresp does.
        let Some(stream) = cols.get(2).and_then(|s| s.parse::<usize>().ok()) else {
            continue;
        };
        if ns > until.get(stream).copied().unwrap_or(u64::MAX) {
            continue;
        }
        let frame: u64 = frame.trim().parse().expect("frame number");
        for (i, f) in fields.iter().enumerate() {
            let v = cols.get(i + 3).copied().unwrap_or("");
            // Flags print `1`; counters (duplicate_ack_num) their number.
            if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false") {
                flags.get_mut(*f).expect("field").insert(frame);
            }
        }
    }
    flags
}

/// Frame numbers tshark shows with the display filter `filter`.
fn tshark_frames(file: &Path, filter: &str) -> BTreeSet<u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("frame number"))
        .collect()
}

/// `reqresp analyze FILE --format json`.
fn analyze(file: &Path) -> serde_json::Value {
    let out = reqresp()
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .output()
        .expect("run reqresp analyze");
    assert!(out.status.success(), "analyze failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Frame numbers of our events, by kind.
fn our_frames(json: &serde_json::Value) -> BTreeMap<String, BTreeSet<u64>> {
    let mut by_kind: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for c in json["connections"].as_array().expect("connections") {
        for e in c["events"].as_array().expect("events") {
            by_kind
                .entry(e["kind"].as_str().expect("kind").to_owned())
                .or_default()
                .insert(e["frame"].as_u64().expect("frame"));
        }
    }
    by_kind
}

/// Every event kind agrees with tshark frame by frame, up to the moment each
/// connection was over (later segments are not examined: docs/json-schema.md).
/// tshark flags fast, spurious and SYN retransmissions as retransmissions
/// too, and has no "refused" flag (a refusal is a RST). An ACK of data the
/// capture missed is reported by reqresp each time one reaches past the
/// captured data; tshark 4 leaves out some repeats, so there reqresp's
/// frames must include tshark's.
pub(crate) fn assert_agrees_with_tshark(file: &Path, json: &serde_json::Value) {
    let ours = our_frames(json);
    let get = |kinds: &[&str]| -> BTreeSet<u64> {
        kinds
            .iter()
            .flat_map(|k| ours.get(*k).cloned().unwrap_or_default())
            .collect()
    };
    // When each connection was over for reqresp: at its first RST, or once
    // both sides had sent a FIN; a half-closed one is never over.
    let over: Vec<u64> = json["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            let events = c["close"]["events"].as_array().cloned().unwrap_or_default();
            let time = |e: &serde_json::Value| e["time"].as_u64().unwrap_or(u64::MAX);
            let first = |kind: &str, from: Option<&str>| {
                events
                    .iter()
                    .filter(|e| e["kind"] == kind && from.is_none_or(|f| e["from"] == f))
                    .map(time)
                    .min()
            };
            match (
                first("rst", None),
                first("fin", Some("client")),
                first("fin", Some("server")),
            ) {
                (Some(rst), _, _) => rst,
                (None, Some(a), Some(b)) => a.max(b),
                _ => u64::MAX,
            }
        })
        .collect();
    let pairs: [(&str, &[&str]); 11] = [
        (
            "tcp.analysis.retransmission",
            &[
                "retransmission",
                "fast_retransmission",
                "spurious_retransmission",
                "syn_retransmission",
            ],
        ),
        ("tcp.analysis.fast_retransmission", &["fast_retransmission"]),
        (
            "tcp.analysis.spurious_retransmission",
            &["spurious_retransmission"],
        ),
        ("tcp.analysis.out_of_order", &["out_of_order"]),
        ("tcp.analysis.duplicate_ack_num", &["duplicate_ack"]),
        ("tcp.analysis.lost_segment", &["lost_segment"]),
        ("tcp.analysis.zero_window", &["zero_window"]),
        ("tcp.analysis.zero_window_probe", &["zero_window_probe"]),
        ("tcp.analysis.window_full", &["window_full"]),
        ("tcp.analysis.keep_alive", &["keep_alive"]),
        ("tcp.flags.reset", &["rst", "connection_refused"]),
    ];
    let mut fields: Vec<&str> = pairs.iter().map(|(f, _)| *f).collect();
    fields.push("tcp.analysis.ack_lost_segment");
    let theirs = tshark_flags_until(file, &fields, &over);
    for (field, kinds) in pairs {
        assert_eq!(
            get(kinds),
            theirs[field],
            "frames of {kinds:?} differ from tshark's `{field}` on {}",
            file.display()
        );
    }
    let theirs = &theirs["tcp.analysis.ack_lost_segment"];
    let unseen = get(&["acked_unseen"]);
    assert!(
        theirs.is_subset(&unseen),
        "tshark's ack_lost_segment {theirs:?} not all among acked_unseen {unseen:?} on {}",
        file.display()
    );
    // The summary counts what the connections list.
    let summary = &json["summary"]["tcp_events"];
    for (kind, frames) in &ours {
        assert!(
            summary[kind].as_u64().expect("count") >= frames.len() as u64,
            "summary count of {kind}"
        );
    }
}

/// Removes the namespaces when dropped, on every path.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

fn netns_exec(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run ip netns exec");
    assert!(out.status.success(), "in {ns}: {args:?}: {out:?}");
}

#[test]
fn loss_between_namespaces_shows_retransmissions_as_tshark_does() {
    if !is_root() || !have("tshark") || !have("tcpdump") || !have("iptables") {
        return skip("TCP events under loss need root, tcpdump, tshark and iptables");
    }
    let tag = std::process::id();
    let (a, b) = (format!("rrev{tag}a"), format!("rrev{tag}b"));
    let _ns = Namespaces(vec![a.clone(), b.clone()]);
    ip(&["netns", "add", &a]);
    ip(&["netns", "add", &b]);
    let (va, vb) = (format!("rre{tag}a"), format!("rre{tag}b"));
    ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
    ip(&["link", "set", &va, "netns", &a]);
    ip(&["link", "set", &vb, "netns", &b]);
    ip(&["-n", &a, "addr", "add", "10.78.0.1/24", "dev", &va]);
    ip(&["-n", &b, "addr", "add", "10.78.0.2/24", "dev", &vb]);
    for (ns, dev) in [(&a, &va), (&b, &vb)] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        // 15% random loss each way (the rules die with the namespace).
        netns_exec(
            ns,
            &[
                "iptables",
                "-A",
                "INPUT",
                "-p",
                "tcp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.15",
                "-j",
                "DROP",
            ],
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.keep();
    let pcap = dir.join("loss.pcap");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &b, crate::support::bin()])
        .args(["server", "--listen", "10.78.0.2:2222"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server's first line");
    assert!(line.contains("listening on"), "server said {line:?}");
    let capture = Tcpdump::start_on(Some(&a), &va, &pcap, "tcp port 2222");
    let mut client = Command::new("ip")
        .args(["netns", "exec", &a, crate::support::bin()])
        .args(["client", "10.78.0.2:2222", "--timeout", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start client");
    {
        let mut stdin = client.stdin.take().expect("stdin");
        for i in 1..=60 {
            writeln!(stdin, "message number {i}").expect("write to client");
        }
    }
    let out = client.wait_with_output().expect("client");
    assert!(out.status.success(), "client failed under loss: {out:?}");
    wait_for_fins(&pcap, 2);
    let _ = capture.stop_now();
    let _ = server.kill();
    let _ = server.wait();

    let json = analyze(&pcap);
    let conn = &json["connections"][0];
    let answered = conn["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .filter(|e| !e["latency_us"].is_null())
        .count();
    assert_eq!(answered, 60, "every request answered despite the loss");
    let retransmissions: u64 = [
        "retransmission",
        "fast_retransmission",
        "spurious_retransmission",
        "syn_retransmission",
    ]
    .iter()
    .map(|k| json["summary"]["tcp_events"][k].as_u64().expect("count"))
    .sum();
    assert!(
        retransmissions > 0,
        "15% loss each way over 60 exchanges gave no retransmission"
    );
    assert_agrees_with_tshark(&pcap, &json);

    // The text ladder marks them where they happened.
    let text = reqresp()
        .arg("analyze")
        .arg(&pcap)
        .output()
        .expect("analyze text");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("⟲"), "no retransmission line in:\n{text}");
    assert!(
        text.contains("tcp events"),
        "no events in the summary:\n{text}"
    );
}

#[test]
fn a_client_that_stops_reading_shows_zero_windows_as_tshark_does() {
    if !is_root() || !have("tshark") || !have("tcpdump") {
        return skip("zero-window capture needs root, tcpdump and tshark");
    }
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.keep();
    let pcap = dir.join("zero-window.pcap");
    let port = server.addr.port();
    let capture = Tcpdump::start(&pcap, port);
    {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        // A small receive buffer fills fast; the client never reads.
        sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        sock.connect(&server.addr.into()).expect("connect");
        let mut stream: TcpStream = sock.into();
        stream
            .set_write_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let line = [b'x'; 1000];
        // The server's answers fill our window, then it stops reading ours
        // and our writes block: stop there.
        for _ in 0..3_000 {
            if stream
                .write_all(&line)
                .and_then(|_| stream.write_all(b"\n"))
                .is_err()
            {
                break;
            }
        }
        // Wait until the capture holds a zero window (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        while tshark_frames(&pcap, "tcp.analysis.zero_window").is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    wait_for_fins(&pcap, 1);
    let _ = capture.stop_now();
    let json = analyze(&pcap);
    assert!(
        json["summary"]["tcp_events"]["zero_window"].as_u64() > Some(0),
        "no zero window from a client that stopped reading"
    );
    assert_agrees_with_tshark(&pcap, &json);
}

#[test]
fn a_connection_to_a_closed_port_is_refused() {
    if !is_root() || !have("tshark") || !have("tcpdump") {
        return skip("capturing on lo needs root, tcpdump and tshark");
    }
    // A port that is surely closed: bind one, then close it.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.keep();
    let pcap = dir.join("refused.pcap");
    let capture = Tcpdump::start(&pcap, port);
    let err = TcpStream::connect(("127.0.0.1", port)).expect_err("closed port");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tshark_frames(&pcap, "tcp.flags.reset == 1").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = capture.stop_now();
    let json = analyze(&pcap);
    let events = &json["connections"][0]["events"];
    assert_eq!(events[0]["kind"], "connection_refused", "{events}");
    assert_eq!(events[0]["side"], "server");
    assert_agrees_with_tshark(&pcap, &json);
    let text = reqresp().arg("analyze").arg(&pcap).output().expect("text");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("connection refused"),
        "the ladder says the connection was refused"
    );
}

#[test]
fn every_fixture_capture_agrees_with_tshark() {
    if !have("tshark") {
        return skip("comparing TCP events with tshark needs tshark");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures") {
        let path = entry.expect("entry").path();
        let is_capture = path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng");
        // The deliberately broken fixtures are for the reader's errors.
        let readable = Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .arg("-c1")
            .output()
            .is_ok_and(|o| o.status.success());
        let analyzed = reqresp()
            .arg("analyze")
            .arg(&path)
            .args(["--format", "json"])
            .output()
            .expect("run analyze");
        if !is_capture || !readable || !analyzed.status.success() {
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&analyzed.stdout).expect("JSON");
        // Where reqresp skipped malformed packets that tshark still analyzes
        // (hostile-headers.pcap), the two read different streams.
        if json["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
            continue;
        }
        assert_agrees_with_tshark(&path, &json);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} fixtures compared");
}
