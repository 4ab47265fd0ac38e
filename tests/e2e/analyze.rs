//! End-to-end tests of `reqresp analyze`.

// ---------------------------------------------------------------------------
// Capture reader (`reqresp::analyze::reader`): real captures made by tcpdump
// and tshark on loopback, and the hand-built fixtures of tests/fixtures,
// checked segment by segment against what tshark reads from the same file.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqresp::analyze::reader::{CaptureFormat, CaptureReader, ReadError, read_capture};

use crate::support;

/// A TCP segment as the reader reported it, owned.
#[derive(Debug, Clone)]
struct Seg {
    number: u64,
    time_ns: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    syn: bool,
    ack_flag: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
    payload_len: u32,
}

fn read_segments(bytes: impl Read) -> (Vec<Seg>, reqresp::analyze::reader::ReadSummary) {
    let mut segs = Vec::new();
    let summary = read_capture(bytes, |s| {
        segs.push(Seg {
            number: s.number,
            time_ns: s.time.0,
            src: s.src,
            dst: s.dst,
            seq: s.seq,
            ack: s.ack,
            syn: s.flags.syn,
            ack_flag: s.flags.ack,
            fin: s.flags.fin,
            rst: s.flags.rst,
            payload: s.payload.to_vec(),
            payload_len: s.payload_len,
        })
    })
    .expect("capture reads");
    (segs, summary)
}

/// What tshark reads from `file`: (number, time ns, src port, dst port, raw seq, raw ack, tcp.len).
fn tshark_segments(file: &Path) -> Vec<(u64, u64, u16, u16, u32, u32, u32)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "tcp", "-T", "fields"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "tcp.srcport",
        ])
        .args([
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.ack_raw",
            "-e",
            "tcp.len",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "tshark line {line:?}");
            // "1700000000.000007000" → ns; empty for a Simple Packet Block.
            let time = match f[1].split_once('.') {
                Some((s, frac)) => {
                    s.parse::<u64>().unwrap() * 1_000_000_000
                        + format!("{frac:0<9}")[..9].parse::<u64>().unwrap()
                }
                None => 0,
            };
            (
                f[0].parse().unwrap(),
                time,
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
                f[6].parse().unwrap(),
            )
        })
        .collect()
}

/// Checks the reader finds exactly the TCP segments tshark finds, field by field.
fn assert_same_as_tshark(file: &Path, segs: &[Seg]) {
    let ours: Vec<_> = segs
        .iter()
        .map(|s| {
            (
                s.number,
                s.time_ns,
                s.src.port(),
                s.dst.port(),
                s.seq,
                s.ack,
                s.payload_len,
            )
        })
        .collect();
    assert_eq!(ours, tshark_segments(file), "{}", file.display());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn have_tools(tools: &[&str], need_root: bool) -> bool {
    if need_root && !support::is_root() {
        support::skip("live capture needs root");
        return false;
    }
    for tool in tools {
        if !support::have(tool) {
            support::skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    true
}

/// A capture tool running in the background, stopped (SIGINT, by PID) on `stop` or drop.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    /// Starts `program args`, waiting (at most 15 s) for `ready` on its stderr.
    fn start(program: &str, args: &[&str], ready: &str, stdout: Stdio) -> Capture {
        let mut child = Command::new(program)
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let capture = Capture { child, stderr: rx };
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match capture.stderr.recv_timeout(left) {
                Ok(line) if line.contains(ready) => break,
                Ok(_) => {}
                Err(_) => panic!("{program} did not print {ready:?} within 15 s"),
            }
        }
        // Let the capture settle on the socket before traffic starts.
        std::thread::sleep(Duration::from_millis(300));
        capture
    }

    /// Lets the last packets arrive, then stops the tool and waits for it.
    /// Returns how many packets the tool says the kernel dropped.
    fn stop(mut self) -> u64 {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        for _ in 0..100 {
            if self.child.try_wait().unwrap().is_some() {
                // "2 packets dropped by kernel" (tcpdump); the stderr thread ends with the tool.
                return self
                    .stderr
                    .iter()
                    .filter_map(|line| {
                        let n = line.strip_suffix(" packets dropped by kernel")?;
                        n.trim().parse::<u64>().ok()
                    })
                    .sum();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("capture tool did not stop within 5 s of SIGINT");
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A one-connection echo server on `bind` (port 0); returns its address.
fn echo_server(bind: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(bind).expect("bind echo server");
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Runs the exchange: the client sends each message and reads its echo, then
/// closes; the server echoes until EOF and closes. Returns the client address.
fn echo_exchange(listener: TcpListener, messages: &[&[u8]]) -> SocketAddr {
    let server_addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).unwrap();
        }
    });
    let mut client = TcpStream::connect(server_addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for message in messages {
        client.write_all(message).unwrap();
        let mut echo = vec![0u8; message.len()];
        client.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, message);
    }
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let addr = client.local_addr().unwrap();
    drop(client);
    server.join().unwrap();
    addr
}

/// The bytes one side sent, reassembled by sequence number (no loss on loopback).
fn stream(segs: &[Seg], from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let by_seq: BTreeMap<u32, &[u8]> = segs
        .iter()
        .filter(|s| s.src == from && s.dst == to && !s.payload.is_empty())
        .map(|s| (s.seq, &s.payload[..]))
        .collect();
    by_seq.values().flat_map(|p| p.iter().copied()).collect()
}

/// Checks one echo connection in a live capture: handshake, both streams,
/// both FINs, and that tshark sees the same segments.
fn assert_echo_connection(
    file: &Path,
    segs: &[Seg],
    client: SocketAddr,
    server: SocketAddr,
    messages: &[&[u8]],
) {
    // First: the reader sees exactly what tshark sees in the same file.
    assert_same_as_tshark(file, segs);
    let conn: Vec<&Seg> = segs
        .iter()
        .filter(|s| (s.src == client && s.dst == server) || (s.src == server && s.dst == client))
        .collect();
    assert_eq!(
        conn.len(),
        segs.len(),
        "only the echo connection was captured"
    );
    let syn = conn[0];
    assert!(syn.syn && !syn.ack_flag && syn.src == client, "{syn:?}");
    let syn_ack = conn[1];
    assert!(syn_ack.syn && syn_ack.ack_flag && syn_ack.src == server);
    assert_eq!(syn_ack.ack, syn.seq.wrapping_add(1));
    let ack = conn[2];
    assert!(!ack.syn && ack.ack_flag && ack.src == client);
    assert_eq!(ack.ack, syn_ack.seq.wrapping_add(1));
    assert!(syn.time_ns <= syn_ack.time_ns && syn_ack.time_ns <= ack.time_ns);
    let sent: Vec<u8> = messages.concat();
    for (from, to) in [(client, server), (server, client)] {
        let got = stream(segs, from, to);
        assert!(
            got == sent,
            "{from} → {to}: {} bytes, expected {}: {:?}",
            got.len(),
            sent.len(),
            String::from_utf8_lossy(&got[..got.len().min(40)])
        );
    }
    assert!(conn.iter().any(|s| s.fin && s.src == client));
    assert!(conn.iter().any(|s| s.fin && s.src == server));
    assert!(conn.iter().all(|s| !s.rst));
    assert!(
        conn.iter()
            .all(|s| s.payload_len as usize == s.payload.len())
    );
    // Capture times are real: within the last minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(now - syn.time_ns < 60_000_000_000, "time {}", syn.time_ns);
}

const MESSAGES: &[&[u8]] = &[b"hello\n", b"second request\n", &[b'x'; 3000]];

#[test]
fn reader_tcpdump_loopback_pcap() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.pcap");
    let (listener, server) = echo_server("127.0.0.1:0");
    let filter = format!("tcp port {}", server.port());
    let capture = Capture::start(
        "tcpdump",
        &[
            "-i",
            "lo",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
            file.to_str().unwrap(),
            &filter,
        ],
        "listening on",
        Stdio::null(),
    );
    let client = echo_exchange(listener, MESSAGES);
    assert_eq!(capture.stop(), 0, "tcpdump/tshark reported kernel drops");
    let (segs, summary) = read_segments(std::fs::File::open(&file).unwrap());
    assert_eq!(
        summary.format,
        CaptureFormat::Pcap {
            nanosecond: false,
            big_endian: false
        }
    );
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert_eq!(summary.packets, summary.tcp_segments);
    assert_echo_connection(&file, &segs, client, server, MESSAGES);
}

#[test]
fn reader_tcpdump_any_cooked_v2_nanosecond() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    // The `any` device drops loopback packets now and then under load (tcpdump
    // says so: "N packets dropped by kernel"); such a run cannot be compared
    // with what was sent, so it is retried.
    for attempt in 1..=5 {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("any.pcap");
        let (listener, server) = echo_server("127.0.0.1:0");
        let filter = format!("tcp port {}", server.port());
        let capture = Capture::start(
            "tcpdump",
            &[
                "-i",
                "any",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "--time-stamp-precision",
                "nano",
                "-w",
                file.to_str().unwrap(),
                &filter,
            ],
            "listening on",
            Stdio::null(),
        );
        let client = echo_exchange(listener, MESSAGES);
        let dropped = capture.stop();
        let mut reader = CaptureReader::new(std::fs::File::open(&file).unwrap()).unwrap();
        assert_eq!(
            reader.format(),
            CaptureFormat::Pcap {
                nanosecond: true,
                big_endian: false
            }
        );
        let first = reader.next_packet().unwrap().expect("a packet");
        assert_eq!(first.link_type, 276, "tcpdump -i any writes LINUX_SLL2");
        let (segs, summary) = read_segments(std::fs::File::open(&file).unwrap());
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        assert_same_as_tshark(&file, &segs);
        if dropped > 0 {
            eprintln!("attempt {attempt}: the kernel dropped {dropped} packets, capturing again");
            continue;
        }
        // Nanosecond stamps: not all multiples of 1000 (a µs capture would be).
        assert!(segs.iter().any(|s| s.time_ns % 1000 != 0));
        assert_echo_connection(&file, &segs, client, server, MESSAGES);
        return;
    }
    support::skip("the kernel dropped packets in every -i any capture; only compared with tshark");
}

#[test]
fn reader_tshark_pcapng_ipv6() {
    if !have_tools(&["tshark"], true) {
        return;
    }
    if TcpListener::bind("[::1]:0").is_err() {
        return support::skip("no IPv6 loopback");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.pcapng");
    let (listener, server) = echo_server("[::1]:0");
    let filter = format!("tcp port {}", server.port());
    let capture = Capture::start(
        "tshark",
        &["-i", "lo", "-f", &filter, "-w", file.to_str().unwrap()],
        "Capturing on",
        Stdio::null(),
    );
    let client = echo_exchange(listener, MESSAGES);
    assert_eq!(capture.stop(), 0, "tcpdump/tshark reported kernel drops");
    let (segs, summary) = read_segments(std::fs::File::open(&file).unwrap());
    assert_eq!(summary.format, CaptureFormat::PcapNg);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert!(segs.iter().all(|s| s.src.is_ipv6()));
    assert_echo_connection(&file, &segs, client, server, MESSAGES);
}

/// Copies what it reads into a Vec, to give tshark the same bytes afterwards.
struct Tee<R> {
    inner: R,
    copy: Vec<u8>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[test]
fn reader_streams_tcpdump_stdout_through_a_pipe() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    let (listener, server) = echo_server("127.0.0.1:0");
    let filter = format!("tcp port {}", server.port());
    let mut capture = Capture::start(
        "tcpdump",
        &["-i", "lo", "-U", "--immediate-mode", "-w", "-", &filter],
        "listening on",
        Stdio::piped(),
    );
    let stdout = capture.child.stdout.take().unwrap();
    // Read while tcpdump is still writing: the reader sees short reads and waits.
    let reading = std::thread::spawn(move || {
        let mut tee = Tee {
            inner: stdout,
            copy: Vec::new(),
        };
        let (segs, summary) = read_segments(&mut tee);
        (segs, summary, tee.copy)
    });
    let client = echo_exchange(listener, MESSAGES);
    assert_eq!(capture.stop(), 0, "tcpdump/tshark reported kernel drops");
    let (segs, summary, bytes) = reading.join().unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert_eq!(summary.bytes, bytes.len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stdout.pcap");
    std::fs::write(&file, &bytes).unwrap();
    assert_echo_connection(&file, &segs, client, server, MESSAGES);
}

#[test]
fn reader_fixtures_agree_with_tshark() {
    if !have_tools(&["tshark"], false) {
        return;
    }
    // (file, TCP segments, other packets, payload bytes client→server)
    for (name, tcp, others) in [
        ("vlan-qinq.pcap", 8, 2),
        ("null-be-ipv6-nano.pcap", 8, 0),
        ("multi-section.pcapng", 8, 0),
        ("snaplen-cut.pcap", 1, 0),
        ("hostile-headers.pcap", 1, 3),
        ("truncated.pcap", 2, 0),
    ] {
        let file = fixture(name);
        let (segs, summary) = read_segments(std::fs::File::open(&file).unwrap());
        assert_eq!(summary.tcp_segments, tcp, "{name}");
        assert_eq!(summary.packets, tcp + others, "{name}");
        if name != "hostile-headers.pcap" {
            assert_same_as_tshark(&file, &segs);
        }
        if name.contains("echo") || tcp == 8 {
            let client = segs[0].src;
            let server = segs[0].dst;
            assert_eq!(stream(&segs, client, server), b"hello\n");
            assert_eq!(stream(&segs, server, client), b"Echo: hello\n");
        }
    }
    let (segs, summary) = read_segments(std::fs::File::open(fixture("snaplen-cut.pcap")).unwrap());
    assert_eq!(
        (segs[0].payload.len(), segs[0].payload_len),
        (96 - 54, 1000)
    );
    assert!(summary.warnings.is_empty());
    let (_, summary) = read_segments(std::fs::File::open(fixture("truncated.pcap")).unwrap());
    assert!(summary.truncated);
    assert!(
        summary.warnings[0].starts_with(
            "capture file truncated at byte offset 182: the last packet (record at byte offset 136)"
        ),
        "{:?}",
        summary.warnings
    );
    let (segs, summary) =
        read_segments(std::fs::File::open(fixture("hostile-headers.pcap")).unwrap());
    assert_eq!(segs[0].number, 4);
    assert_eq!(summary.skipped.malformed, 3);
    for (n, warning) in summary.warnings.iter().enumerate() {
        assert!(
            warning.starts_with(&format!("packet {} skipped: ", n + 1)),
            "{warning}"
        );
    }
}

#[test]
fn reader_refuses_corrupt_fixtures_like_tshark() {
    for (name, expected) in [
        (
            "corrupt-caplen.pcap",
            "corrupt pcap at byte offset 80: record claims 300000 bytes, more than the 262144-byte limit",
        ),
        (
            "corrupt-blocklen.pcapng",
            "corrupt pcapng at byte offset 144: block length 72 at the start disagrees with 80 at the end",
        ),
        (
            "corrupt-option.pcapng",
            "corrupt pcapng at byte offset 68: option 2 of 200 bytes runs past the end of its block (4 bytes left)",
        ),
    ] {
        let file = fixture(name);
        let err = read_capture(std::fs::File::open(&file).unwrap(), |_| {}).unwrap_err();
        assert!(matches!(err, ReadError::Corrupt { .. }), "{name}: {err}");
        assert_eq!(err.to_string(), expected, "{name}");
        if support::have("tshark") {
            let out = Command::new("tshark")
                .arg("-r")
                .arg(&file)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("damaged or corrupt"),
                "tshark also refuses {name}: {stderr}"
            );
        }
    }
}
