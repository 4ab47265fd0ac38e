//! End-to-end tests of `reqresp analyze`.

// ---------------------------------------------------------------------------
// Capture reader (`reqresp::analyze::reader`): real captures made by tcpdump
// and tshark on loopback, and the hand-built fixtures of tests/fixtures,
// checked segment by segment against what tshark reads from the same file.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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
        .output()
        .expect("run tshark");
    // tshark exits non-zero after the packets of a truncated file too.
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
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

/// UDP datagrams that a capture's filter lets through, so that a test can
/// see when the capture is live and when it has written everything before
/// a point: it sends a datagram with a unique marker and waits until the
/// marker is in what the tool wrote. No sleep guesses how long either takes.
/// The datagrams go from a socket to itself on loopback; the reader counts
/// them as non-TCP packets.
struct Probe {
    socket: UdpSocket,
    port: u16,
    sent: u32,
}

impl Probe {
    fn new() -> Probe {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the probe socket");
        let port = socket.local_addr().unwrap().port();
        Probe {
            socket,
            port,
            sent: 0,
        }
    }

    /// A capture filter for `tcp port PORT` that also lets the probe through.
    fn filter(&self, port: u16) -> String {
        format!("tcp port {port} or udp dst port {}", self.port)
    }

    /// Sends a fresh marker until it shows in `written` (at most 20 s;
    /// dumpcap writes its file about once a second).
    fn until_captured(&mut self, written: &Written, what: &str) {
        self.sent += 1;
        let marker = format!(
            "reqresp-probe-{}-{}-{}",
            std::process::id(),
            self.port,
            self.sent
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut next_send = Instant::now();
        loop {
            if Instant::now() >= next_send {
                self.socket
                    .send_to(marker.as_bytes(), ("127.0.0.1", self.port))
                    .expect("send a probe datagram");
                next_send = Instant::now() + Duration::from_millis(200);
            }
            if written.contains(marker.as_bytes()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the capture did not record the {what} probe within 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Where a capture tool's output can be watched while it runs.
#[derive(Clone)]
enum Written {
    /// A file it writes (`-w FILE`).
    File(PathBuf),
    /// A copy of what it writes to a pipe, kept by whoever reads the pipe.
    Pipe(Arc<Mutex<Vec<u8>>>),
}

impl Written {
    fn contains(&self, needle: &[u8]) -> bool {
        let find = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        match self {
            Written::File(path) => std::fs::read(path).is_ok_and(|bytes| find(&bytes)),
            Written::Pipe(copy) => find(&copy.lock().unwrap()),
        }
    }
}

/// A capture tool running in the background, stopped (SIGINT, by PID) on
/// `stop` or killed on drop; its stderr is shown if the test fails.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
    program: String,
    probe: Probe,
    written: Written,
}

impl Capture {
    /// Starts `program args`, waits (at most 15 s) for `ready` on its
    /// stderr, then until the capture is [`live`](Capture::live).
    fn start(
        program: &str,
        args: &[&str],
        ready: &str,
        stdout: Stdio,
        probe: Probe,
        written: Written,
    ) -> Capture {
        Capture::spawn(program, args, ready, stdout, probe, written).live()
    }

    /// Starts `program args` and waits (at most 15 s) for `ready` on its stderr.
    fn spawn(
        program: &str,
        args: &[&str],
        ready: &str,
        stdout: Stdio,
        probe: Probe,
        written: Written,
    ) -> Capture {
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
        let mut capture = Capture {
            child,
            stderr: rx,
            seen: Vec::new(),
            program: program.to_string(),
            probe,
            written,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match capture.stderr.recv_timeout(left) {
                Ok(line) if line.contains(ready) => {
                    capture.seen.push(line);
                    break;
                }
                Ok(line) => capture.seen.push(line),
                Err(_) => panic!("{program} did not print {ready:?} within 15 s"),
            }
        }
        capture
    }

    /// Waits until the capture has recorded a probe datagram: from then on
    /// every packet that matches the probe's filter is captured. For a
    /// capture to a pipe, whoever reads the pipe must run by now.
    fn live(mut self) -> Capture {
        let written = self.written.clone();
        self.probe.until_captured(&written, "first");
        self
    }

    /// Waits until the capture has written every packet sent so far (a
    /// last probe is in the output), stops the tool and waits for it.
    /// Returns how many packets the tool says the kernel dropped: on a
    /// loaded machine that may count packets of other traffic, taken before
    /// the filter was set, so tests check what was captured instead.
    fn stop(mut self) -> u64 {
        let written = self.written.clone();
        self.probe.until_captured(&written, "last");
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        support::wait_until(
            &format!("{} stops after SIGINT", self.program),
            Duration::from_secs(10),
            || self.child.try_wait().unwrap().is_some(),
        );
        // "2 packets dropped by kernel" (tcpdump); the stderr thread ends with the tool.
        self.seen.extend(self.stderr.iter());
        self.seen
            .iter()
            .filter_map(|line| {
                let n = line.strip_suffix(" packets dropped by kernel")?;
                n.trim().parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.seen.extend(self.stderr.try_iter());
            eprintln!(
                "--- stderr of {} ---\n{}\n---",
                self.program,
                self.seen.join("\n")
            );
        }
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

/// True when the capture holds the whole echo conversation: the handshake,
/// every byte each way and both FINs.
fn conversation_complete(
    segs: &[Seg],
    client: SocketAddr,
    server: SocketAddr,
    messages: &[&[u8]],
) -> bool {
    let sent = messages.concat();
    segs.len() >= 3
        && segs[0].syn
        && segs[1].syn
        && stream(segs, client, server) == sent
        && stream(segs, server, client) == sent
        && segs.iter().any(|s| s.fin && s.src == client)
        && segs.iter().any(|s| s.fin && s.src == server)
}

/// One echo conversation of [`MESSAGES`] captured live and read back.
struct Captured {
    _dir: tempfile::TempDir,
    file: PathBuf,
    segs: Vec<Seg>,
    summary: reqresp::analyze::reader::ReadSummary,
    client: SocketAddr,
    server: SocketAddr,
    /// Packets the capture tool says the kernel dropped.
    dropped: u64,
}

/// Attempts at capturing a conversation whole while the kernel reports drops.
const ATTEMPTS: u32 = 3;

/// Captures one echo conversation on a server bound to `bind`, with the
/// capture that `start(probe, server port, file)` starts, and reads the file.
/// The kernel's drop counter alone is no reason to fail or retry (on a
/// loaded machine it counts packets of other traffic taken before the filter
/// was set); a capture that lacks packets of the conversation while the tool
/// reports drops is taken again, up to [`ATTEMPTS`] times.
fn capture_echo(bind: &str, name: &str, start: impl Fn(Probe, u16, &Path) -> Capture) -> Captured {
    let mut attempt = 1;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        let (listener, server) = echo_server(bind);
        let capture = start(Probe::new(), server.port(), &file);
        let client = echo_exchange(listener, MESSAGES);
        let dropped = capture.stop();
        let (segs, summary) = read_segments(std::fs::File::open(&file).unwrap());
        if attempt < ATTEMPTS
            && dropped > 0
            && !conversation_complete(&segs, client, server, MESSAGES)
        {
            eprintln!(
                "note: the capture tool reported {dropped} packets dropped by the kernel and \
                 the conversation is incomplete: capturing it again"
            );
            attempt += 1;
            continue;
        }
        return Captured {
            _dir: dir,
            file,
            segs,
            summary,
            client,
            server,
            dropped,
        };
    }
}

/// Checks a captured echo conversation whole (see [`assert_echo_connection`]).
/// Only when the kernel dropped packets of it in every attempt is less
/// checked, and said so visibly: what was captured, segment by segment
/// against tshark. An incomplete capture without reported drops fails.
fn assert_captured_echo(
    file: &Path,
    segs: &[Seg],
    client: SocketAddr,
    server: SocketAddr,
    dropped: u64,
) {
    if dropped > 0 && !conversation_complete(segs, client, server, MESSAGES) {
        assert_same_as_tshark(file, segs);
        support::note(&format!(
            "the kernel dropped {dropped} packets, some of the conversation, in each of \
             {ATTEMPTS} captures (a loaded machine): checked what was captured against \
             tshark, not that the conversation is whole"
        ));
        return;
    }
    assert_echo_connection(file, segs, client, server, MESSAGES);
}

/// `tcpdump ARGS -w FILE FILTER` on loopback traffic to `port`.
fn tcpdump(args: &[&str], probe: Probe, port: u16, file: &Path) -> Capture {
    let filter = probe.filter(port);
    // -B: a 16 MiB ring, so that a burst of other loopback traffic taken
    // before the filter is set leaves room for the conversation.
    let mut all = vec!["-U", "--immediate-mode", "-B", "16384", "-Z", "root"];
    all.extend(args);
    all.extend(["-w", file.to_str().unwrap(), &filter]);
    Capture::start(
        "tcpdump",
        &all,
        "listening on",
        Stdio::null(),
        probe,
        Written::File(file.to_path_buf()),
    )
}

/// The probe datagrams are read as packets that are not TCP; every other
/// packet is a TCP segment.
fn assert_only_tcp_and_probes(summary: &reqresp::analyze::reader::ReadSummary) {
    assert!(summary.skipped.not_tcp >= 2, "{summary:?}");
    assert_eq!(
        summary.packets,
        summary.tcp_segments + summary.skipped.not_tcp,
        "{summary:?}"
    );
}

#[test]
fn reader_tcpdump_loopback_pcap() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    let c = capture_echo("127.0.0.1:0", "lo.pcap", |probe, port, file| {
        tcpdump(&["-i", "lo"], probe, port, file)
    });
    assert_eq!(
        c.summary.format,
        CaptureFormat::Pcap {
            nanosecond: false,
            big_endian: false
        }
    );
    assert!(c.summary.warnings.is_empty(), "{:?}", c.summary.warnings);
    assert_only_tcp_and_probes(&c.summary);
    assert_captured_echo(&c.file, &c.segs, c.client, c.server, c.dropped);
}

#[test]
fn reader_tcpdump_any_cooked_v2_nanosecond() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    let c = capture_echo("127.0.0.1:0", "any.pcap", |probe, port, file| {
        tcpdump(
            &["-i", "any", "--time-stamp-precision", "nano"],
            probe,
            port,
            file,
        )
    });
    let mut reader = CaptureReader::new(std::fs::File::open(&c.file).unwrap()).unwrap();
    assert_eq!(
        reader.format(),
        CaptureFormat::Pcap {
            nanosecond: true,
            big_endian: false
        }
    );
    let first = reader.next_packet().unwrap().expect("a packet");
    assert_eq!(first.link_type, 276, "tcpdump -i any writes LINUX_SLL2");
    assert!(c.summary.warnings.is_empty(), "{:?}", c.summary.warnings);
    assert_only_tcp_and_probes(&c.summary);
    // Nanosecond stamps: not all multiples of 1000 (a µs capture would be).
    assert!(c.segs.iter().any(|s| s.time_ns % 1000 != 0));
    assert_captured_echo(&c.file, &c.segs, c.client, c.server, c.dropped);
}

#[test]
fn reader_tshark_pcapng_ipv6() {
    if !have_tools(&["tshark"], true) {
        return;
    }
    if TcpListener::bind("[::1]:0").is_err() {
        return support::skip("no IPv6 loopback");
    }
    let c = capture_echo("[::1]:0", "lo.pcapng", |probe, port, file| {
        let filter = probe.filter(port);
        Capture::start(
            "tshark",
            &["-i", "lo", "-f", &filter, "-w", file.to_str().unwrap()],
            "Capturing on",
            Stdio::null(),
            probe,
            Written::File(file.to_path_buf()),
        )
    });
    assert_eq!(c.summary.format, CaptureFormat::PcapNg);
    assert!(c.summary.warnings.is_empty(), "{:?}", c.summary.warnings);
    assert_only_tcp_and_probes(&c.summary);
    assert!(c.segs.iter().all(|s| s.src.is_ipv6()));
    assert_captured_echo(&c.file, &c.segs, c.client, c.server, c.dropped);
}

/// Copies what it reads, to give tshark the same bytes afterwards and to
/// let the test watch the stream while it flows.
struct Tee<R> {
    inner: R,
    copy: Arc<Mutex<Vec<u8>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[test]
fn reader_streams_tcpdump_stdout_through_a_pipe() {
    if !have_tools(&["tcpdump", "tshark"], true) {
        return;
    }
    for attempt in 1..=ATTEMPTS {
        let (listener, server) = echo_server("127.0.0.1:0");
        let probe = Probe::new();
        let filter = probe.filter(server.port());
        let copy = Arc::new(Mutex::new(Vec::new()));
        let mut capture = Capture::spawn(
            "tcpdump",
            &["-i", "lo", "-U", "--immediate-mode", "-w", "-", &filter],
            "listening on",
            Stdio::piped(),
            probe,
            Written::Pipe(Arc::clone(&copy)),
        );
        // Read while tcpdump is still writing: the reader sees short reads and waits.
        let mut tee = Tee {
            inner: capture.child.stdout.take().unwrap(),
            copy: Arc::clone(&copy),
        };
        let reading = std::thread::spawn(move || read_segments(&mut tee));
        let capture = capture.live();
        let client = echo_exchange(listener, MESSAGES);
        let dropped = capture.stop();
        let (segs, summary) = reading.join().unwrap();
        let bytes = copy.lock().unwrap().clone();
        if attempt < ATTEMPTS
            && dropped > 0
            && !conversation_complete(&segs, client, server, MESSAGES)
        {
            eprintln!(
                "note: {dropped} packets dropped by the kernel, conversation incomplete: again"
            );
            continue;
        }
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        assert_eq!(summary.bytes, bytes.len() as u64);
        assert_only_tcp_and_probes(&summary);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdout.pcap");
        std::fs::write(&file, &bytes).unwrap();
        assert_captured_echo(&file, &segs, client, server, dropped);
        return;
    }
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
        ("lesson.pcap", 31, 0),
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
        if !support::have("tshark") {
            support::skip("tshark is not installed: not checked that it refuses the file too");
        } else {
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

// ---------------------------------------------------------------------------
// `reqresp analyze` end to end: real captures of real programs (reqresp's
// server and client, nc) made by tcpdump, tshark and `reqresp capture` on
// loopback, read back through the command line as a user would.

use serde_json::Value;

/// How a test captures loopback traffic to one port.
#[derive(Clone, Copy)]
enum Tool {
    /// `tcpdump -i lo` (pcap, Ethernet-like loopback).
    TcpdumpLo,
    /// `tcpdump -i any` (Linux cooked v2).
    TcpdumpAny,
    /// `tshark -i lo` (pcapng).
    Tshark,
    /// `reqresp capture -i lo`.
    Reqresp,
}

impl Tool {
    /// Starts capturing `tcp port PORT` into `file`.
    fn start(self, port: u16, file: &Path) -> Capture {
        let probe = Probe::new();
        let filter = probe.filter(port);
        let written = Written::File(file.to_path_buf());
        let file = file.to_str().unwrap();
        match self {
            Tool::TcpdumpLo => tcpdump(&["-i", "lo"], probe, port, Path::new(file)),
            Tool::TcpdumpAny => tcpdump(&["-i", "any"], probe, port, Path::new(file)),
            Tool::Tshark => Capture::start(
                "tshark",
                &["-i", "lo", "-f", &filter, "-w", file],
                "Capturing on",
                Stdio::null(),
                probe,
                written,
            ),
            Tool::Reqresp => Capture::start(
                support::bin(),
                &["capture", "-i", "lo", "-f", &filter, "-w", file],
                "capturing on",
                Stdio::null(),
                probe,
                written,
            ),
        }
    }
}

/// Stops a capture. Kernel drops are only reported: on a busy machine
/// `-i any` may count a few of other traffic, and a lost packet of the
/// conversation shows anyway as a gap or a missing exchange, which the
/// tests check.
fn stop(capture: Capture) -> u64 {
    let dropped = capture.stop();
    if dropped > 0 {
        eprintln!("note: the capture tool reported {dropped} packets dropped by the kernel");
    }
    dropped
}

/// Runs `reqresp analyze FILE --format json ARGS`; asserts it succeeds with
/// no warning, and returns the document.
fn analyze_json(file: &Path, args: &[&str]) -> Value {
    let out = support::reqresp()
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reqresp analyze failed: {stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    serde_json::from_slice(&out.stdout).expect("analyze writes valid JSON")
}

/// The only connection of a document.
fn only_connection(doc: &Value) -> &Value {
    let conns = doc["connections"].as_array().expect("connections array");
    assert_eq!(conns.len(), 1, "{:#}", doc["connections"]);
    assert_eq!(doc["summary"]["connections"], 1);
    &conns[0]
}

/// Runs `reqresp client ADDR ARGS` to completion.
fn reqresp_client(server: SocketAddr, args: &[&str]) -> String {
    let out = support::reqresp()
        .arg("client")
        .arg(server.to_string())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks an echo conversation of `requests` on one connection: the
/// handshake with times in order, every exchange in order with its previews,
/// sizes and latency, the bytes each way, and an orderly close started by
/// `initiator`.
fn assert_echo_analysis(
    conn: &Value,
    server: SocketAddr,
    requests: &[&str],
    framing: &str,
    overhead: u64,
    initiator: &str,
) {
    assert_eq!(conn["server"], server.to_string());
    let client: SocketAddr = conn["client"].as_str().unwrap().parse().unwrap();
    assert_eq!(client.ip(), server.ip());
    assert_ne!(client.port(), server.port());
    assert_eq!(conn["framing"], framing);
    let h = &conn["handshake"];
    let (syn, syn_ack, ack) = (
        h["syn"].as_u64().expect("SYN time"),
        h["syn_ack"].as_u64().expect("SYN-ACK time"),
        h["ack"].as_u64().expect("ACK time"),
    );
    assert!(syn <= syn_ack && syn_ack <= ack, "{h}");
    assert!(h["rtt_us"].as_f64().expect("rtt") >= 0.0);
    let exchanges = conn["exchanges"].as_array().unwrap();
    let got: Vec<(&str, &str)> = exchanges
        .iter()
        .map(|e| {
            (
                e["request_preview"].as_str().unwrap(),
                e["response_preview"].as_str().unwrap(),
            )
        })
        .collect();
    let echoes: Vec<String> = requests.iter().map(|r| format!("Echo: {r}")).collect();
    let want: Vec<(&str, &str)> = requests
        .iter()
        .zip(&echoes)
        .map(|(r, e)| (*r, e.as_str()))
        .collect();
    assert_eq!(got, want);
    // Requests in order, each answered after it (pipelined requests may
    // all come before the first answer).
    let mut last_request = ack;
    for (e, r) in exchanges.iter().zip(requests) {
        assert_eq!(e["request_bytes"], r.len() as u64);
        assert_eq!(e["response_bytes"], r.len() as u64 + 6);
        assert_eq!(e["incomplete"], false);
        let latency = e["latency_us"].as_f64().expect("latency");
        let (req, first, end) = (
            e["request_time"].as_u64().unwrap(),
            e["response_first_time"].as_u64().unwrap(),
            e["response_last_time"].as_u64().unwrap(),
        );
        assert!(last_request <= req && req <= first && first <= end, "{e}");
        assert_eq!(latency, (end - req) as f64 / 1000.0);
        last_request = req;
    }
    let sent: u64 = requests.iter().map(|r| r.len() as u64 + overhead).sum();
    assert_eq!(conn["bytes_client_to_server"], sent);
    assert_eq!(
        conn["bytes_server_to_client"],
        sent + 6 * requests.len() as u64
    );
    assert_eq!(conn["gaps"], Value::Array(vec![]));
    let close = &conn["close"];
    assert_eq!(close["kind"], "fin", "{close}");
    assert_eq!(close["initiator"], initiator, "{close}");
    let events = close["events"].as_array().unwrap();
    let froms: Vec<&str> = events.iter().map(|e| e["from"].as_str().unwrap()).collect();
    let other = if initiator == "client" {
        "server"
    } else {
        "client"
    };
    assert_eq!(froms, [initiator, other]);
    assert!(events[0]["time"].as_u64().unwrap() >= last_request);
}

/// Captures `reqresp client` talking to `reqresp server` with `tool`, and
/// returns the capture file (in `dir`) and the server's address.
fn capture_reqresp(
    tool: Tool,
    dir: &Path,
    requests: &[&str],
    framing: &str,
) -> (PathBuf, SocketAddr) {
    let server = support::Server::start(&["--framing", framing]);
    let ext = if matches!(tool, Tool::Tshark) {
        "pcapng"
    } else {
        "pcap"
    };
    let file = dir.join(format!("capture.{ext}"));
    let mut args = vec!["--framing", framing];
    args.extend(requests);
    // A capture the kernel dropped packets from (a loaded machine) is not
    // what is under test: try again, a few times.
    for _ in 0..3 {
        let capture = tool.start(server.addr.port(), &file);
        let printed = reqresp_client(server.addr, &args);
        assert_eq!(printed.lines().count(), requests.len(), "{printed}");
        if stop(capture) == 0 {
            break;
        }
    }
    (file, server.addr)
}

fn analyze_capture_of_reqresp(tool: Tool) {
    let tools: &[&str] = match tool {
        Tool::Tshark => &["tshark"],
        Tool::Reqresp => &[],
        _ => &["tcpdump"],
    };
    if !have_tools(tools, true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let requests = ["a", "bb", "hello world"];
    let (file, server) = capture_reqresp(tool, dir.path(), &requests, "line");
    let doc = analyze_json(&file, &[]);
    assert_eq!(doc["framing"], "line");
    assert_eq!(doc["warnings"], Value::Array(vec![]));
    // 3 handshake + 3 × (request, response, maybe ACKs) + 3 or 4 teardown.
    assert!(doc["packets"].as_u64().unwrap() >= 12, "{}", doc["packets"]);
    let conn = only_connection(&doc);
    assert_echo_analysis(conn, server, &requests, "line", 1, "client");
    assert_eq!(doc["summary"]["exchanges"], 3);
    assert_eq!(doc["summary"]["latency"]["count"], 3);
}

#[test]
fn analyze_tcpdump_lo_capture_of_reqresp_client_and_server() {
    analyze_capture_of_reqresp(Tool::TcpdumpLo);
}

#[test]
fn analyze_tcpdump_any_cooked_v2_capture() {
    analyze_capture_of_reqresp(Tool::TcpdumpAny);
}

#[test]
fn analyze_tshark_pcapng_capture() {
    analyze_capture_of_reqresp(Tool::Tshark);
}

#[test]
fn analyze_reads_files_written_by_reqresp_capture() {
    analyze_capture_of_reqresp(Tool::Reqresp);
}

#[test]
fn analyze_nc_as_client() {
    if !have_tools(&["tcpdump", "nc"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start(&[]);
    let file = dir.path().join("nc.pcap");
    let capture = Tool::TcpdumpLo.start(server.addr.port(), &file);
    // -N: shut down the sending side at the end of the input, then read the
    // answer until the server closes.
    let mut nc = Command::new("nc")
        .args(["-N", "127.0.0.1", &server.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    nc.stdin.take().unwrap().write_all(b"via nc\n").unwrap();
    let out = nc.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Echo: via nc\n");
    stop(capture);
    let doc = analyze_json(&file, &[]);
    assert_echo_analysis(
        only_connection(&doc),
        server.addr,
        &["via nc"],
        "line",
        1,
        "client",
    );
}

#[test]
fn analyze_length_framing_is_detected_by_auto() {
    if !have_tools(&["tcpdump"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let requests = ["first", "", "third one"];
    let (file, server) = capture_reqresp(Tool::TcpdumpLo, dir.path(), &requests, "length");
    let doc = analyze_json(&file, &[]);
    assert_eq!(doc["framing"], "length");
    // Each message carries a 4-byte length prefix on the wire.
    assert_echo_analysis(
        only_connection(&doc),
        server,
        &requests,
        "length",
        4,
        "client",
    );
}

#[test]
fn analyze_pipelined_requests_pair_in_order_and_show_a_merged_recv() {
    if !have_tools(&["tcpdump"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start(&[]);
    let file = dir.path().join("pipelined.pcap");
    let capture = Tool::TcpdumpLo.start(server.addr.port(), &file);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Three requests in one write: one segment.
    client.write_all(b"one\ntwo\nthree\n").unwrap();
    let mut answers = BufReader::new(client.try_clone().unwrap());
    for want in ["Echo: one\n", "Echo: two\n", "Echo: three\n"] {
        let mut line = String::new();
        answers.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    answers.read_to_end(&mut rest).unwrap();
    drop(client);
    stop(capture);
    let doc = analyze_json(&file, &[]);
    let conn = only_connection(&doc);
    assert_echo_analysis(
        conn,
        server.addr,
        &["one", "two", "three"],
        "line",
        1,
        "client",
    );
    let pitfalls = conn["recv_pitfalls"].as_array().unwrap();
    let merged: Vec<&Value> = pitfalls
        .iter()
        .filter(|p| p["from"] == "client" && p["kind"] == "merged")
        .collect();
    assert_eq!(merged.len(), 1, "{pitfalls:?}");
    assert_eq!(
        (merged[0]["message"].as_u64(), merged[0]["count"].as_u64()),
        (Some(0), Some(3))
    );
}

#[test]
fn analyze_a_capture_started_mid_connection_with_port() {
    if !have_tools(&["tcpdump"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start(&[]);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answers = BufReader::new(client.try_clone().unwrap());
    let mut ask = |client: &mut TcpStream, msg: &str| {
        client.write_all(format!("{msg}\n").as_bytes()).unwrap();
        let mut line = String::new();
        answers.read_line(&mut line).unwrap();
        assert_eq!(line, format!("Echo: {msg}\n"));
    };
    ask(&mut client, "before the capture");
    // The connection is up; only now does the capture start.
    let file = dir.path().join("mid.pcap");
    let capture = Tool::TcpdumpLo.start(server.addr.port(), &file);
    ask(&mut client, "during");
    ask(&mut client, "again");
    client.shutdown(Shutdown::Write).unwrap();
    drop(client);
    stop(capture);
    let port = server.addr.port().to_string();
    let doc = analyze_json(&file, &["--port", &port]);
    let conn = only_connection(&doc);
    assert_eq!(conn["server"], server.addr.to_string());
    assert!(conn["handshake"].is_null());
    assert_eq!(doc["summary"]["connections_without_handshake"], 1);
    let notes = conn["notes"].to_string();
    assert!(notes.contains(&format!("by --port {port}")), "{notes}");
    let requests: Vec<&str> = conn["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_preview"].as_str().unwrap())
        .collect();
    assert_eq!(requests, ["during", "again"]);
    assert!(conn["exchanges"][0]["latency_us"].as_f64().is_some());
    assert_eq!(conn["close"]["initiator"], "client");
}

#[test]
fn analyze_reads_tcpdump_through_a_pipe() {
    if !have_tools(&["tcpdump"], true) {
        return;
    }
    let server = support::Server::start(&[]);
    let probe = Probe::new();
    let filter = probe.filter(server.addr.port());
    let copy = Arc::new(Mutex::new(Vec::new()));
    let mut capture = Capture::spawn(
        "tcpdump",
        &["-i", "lo", "-U", "--immediate-mode", "-w", "-", &filter],
        "listening on",
        Stdio::piped(),
        probe,
        Written::Pipe(Arc::clone(&copy)),
    );
    let mut analyze = support::reqresp()
        .args(["analyze", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump | (a copy kept to watch for the probes) | reqresp analyze -
    let mut from = capture.child.stdout.take().unwrap();
    let mut to = analyze.stdin.take().unwrap();
    let forward = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            copy.lock().unwrap().extend_from_slice(&buf[..n]);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let capture = capture.live();
    reqresp_client(server.addr, &["piped", "through"]);
    stop(capture);
    forward.join().unwrap();
    let out = analyze.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_echo_analysis(
        only_connection(&doc),
        server.addr,
        &["piped", "through"],
        "line",
        1,
        "client",
    );
}

#[test]
fn analyze_writes_every_format_to_a_file() {
    if !have_tools(&["tcpdump"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, server) = capture_reqresp(Tool::TcpdumpLo, dir.path(), &["ping", "pong"], "line");
    let report = |name: &str, extra: &[&str]| -> String {
        let path = dir.path().join(name);
        let out = support::reqresp()
            .arg("analyze")
            .arg(&file)
            .arg("-o")
            .arg(&path)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("report to {}", path.display())),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "the report goes to the file only");
        std::fs::read_to_string(&path).unwrap()
    };
    // The extension chooses the format.
    let json: Value = serde_json::from_str(&report("r.json", &[])).unwrap();
    assert_echo_analysis(
        only_connection(&json),
        server,
        &["ping", "pong"],
        "line",
        1,
        "client",
    );

    let text = report("r.txt", &[]);
    for want in [
        "SYN",
        "SYN-ACK",
        "ACK",
        "FIN",
        "\"ping\"",
        "\"Echo: pong\"",
        "Summary",
        "connections  1",
        "exchanges    2",
    ] {
        assert!(text.contains(want), "text lacks {want:?}:\n{text}");
    }
    assert!(
        text.contains("─▶") && text.contains("◀─"),
        "no ladder arrows:\n{text}"
    );
    assert!(text.contains(&server.to_string()));

    let mermaid = report("r.mmd", &[]);
    assert!(mermaid.starts_with("sequenceDiagram\n"), "{mermaid}");
    // Mermaid needs `:` written as an entity.
    assert!(
        mermaid.contains("p2-->>p1: #34;Echo#58; ping#34; (10 B)"),
        "{mermaid}"
    );

    let svg = report("r.svg", &[]);
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("Echo: pong"));
    if support::have("rsvg-convert") {
        let png = dir.path().join("r.png");
        let status = Command::new("rsvg-convert")
            .arg(dir.path().join("r.svg"))
            .arg("-o")
            .arg(&png)
            .status()
            .unwrap();
        assert!(status.success(), "rsvg-convert renders the SVG");
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 1000);
    } else {
        support::skip("rsvg-convert is not installed: SVG rendering not checked");
    }
    // --format wins over the extension.
    let forced = report("r.out.json", &["--format", "mermaid"]);
    assert!(forced.starts_with("sequenceDiagram"));
}

/// Runs `reqresp analyze FILE`; returns (success, stdout, stderr).
fn analyze_cli(file: &Path) -> (bool, String, String) {
    let out = support::reqresp()
        .arg("analyze")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn analyze_refuses_a_corrupt_capture_naming_the_offset() {
    let (ok, _, stderr) = analyze_cli(&fixture("corrupt-caplen.pcap"));
    assert!(!ok);
    assert!(
        stderr.contains("corrupt pcap at byte offset 80: record claims 300000 bytes"),
        "{stderr}"
    );
    let (ok, _, stderr) = analyze_cli(&fixture("corrupt-blocklen.pcapng"));
    assert!(!ok);
    assert!(stderr.contains("byte offset 144"), "{stderr}");
}

#[test]
fn analyze_keeps_the_packets_of_a_truncated_capture_and_warns() {
    let (ok, stdout, stderr) = analyze_cli(&fixture("truncated.pcap"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: capture file truncated at byte offset 182"),
        "{stderr}"
    );
    assert!(stdout.contains("packets      2"), "{stdout}");
    assert!(stdout.contains("warnings     1"), "{stdout}");
}

#[test]
fn analyze_refuses_what_is_not_a_capture_and_a_missing_file() {
    let (ok, stdout, stderr) = analyze_cli(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/Cargo.toml"
    )));
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("this is not a capture file: it starts with 5b 70 61 63"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let (ok, _, stderr) = analyze_cli(&missing);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot open the capture {}", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("No such file"), "{stderr}");
}

/// Writes a raw-IPv4 pcap of `n` complete echo connections, 80 µs apart.
fn synthetic_capture(path: &Path, n: u32) {
    use reqresp::analyze::model::Side;
    use reqresp::analyze::testing::Script;

    support::write_scripts(
        path,
        (0..n).map(|i| {
            let t = 1_700_000_000_000_000 + u64::from(i) * 80;
            let mut w = Script::new(1000, 5000);
            w.client.set_port(10_000 + (i % 50_000) as u16);
            w.handshake(t + 10, 10);
            w.c(t + 40, b"hello\n");
            w.s(t + 50, b"Echo: hello\n");
            w.fin(t + 60, Side::Client);
            w.fin(t + 70, Side::Server);
            w.ack(t + 80, Side::Client);
            w
        }),
    );
}

#[test]
fn analyze_exits_quietly_when_the_reader_of_its_output_goes_away() {
    // `reqresp analyze big.pcap --format json | head -1`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.pcap");
    synthetic_capture(&file, 20_000);
    for format in ["json", "text"] {
        let mut child = support::reqresp()
            .arg("analyze")
            .arg(&file)
            .args(["--format", format, "--max-connections", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // The pipe is closed here, long before the report's end.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
}

#[test]
fn analyze_streams_a_large_capture_completely() {
    // Every connection of a capture larger than any buffer comes out, in
    // order, with the summary counting them all.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.pcap");
    synthetic_capture(&file, 5_000);
    let doc = analyze_json(&file, &[]);
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 5_000);
    assert!(
        conns
            .iter()
            .enumerate()
            .all(|(i, c)| c["id"] == i as u64 + 1)
    );
    assert!(
        conns
            .iter()
            .all(|c| c["exchanges"][0]["response_preview"] == "Echo: hello")
    );
    assert_eq!(doc["summary"]["connections"], 5_000);
    assert_eq!(doc["summary"]["exchanges"], 5_000);
    assert_eq!(doc["packets"], 40_000);
    let capture = &doc["summary"]["capture"];
    assert_eq!(capture["format"], "pcap");
    assert_eq!(capture["tcp_segments"], 40_000);
    assert_eq!(capture["truncated"], false);
    assert_eq!(capture["skipped"]["not_tcp"], 0);
}

// ---------------------------------------------------------------------------
// The pipeline on a live capture (`reqresp::analyze::source::LiveSource`).

#[test]
fn a_live_capture_hands_out_an_exchange_while_its_connection_is_open() {
    use reqresp::analyze::source::LiveSource;
    use reqresp::analyze::{Event, FramingChoice, Options, Pipeline};

    if !support::is_root() {
        return support::skip("live capture needs root");
    }
    // An echo server on loopback, answering one line per connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let source =
        LiveSource::open("lo", Some(&filter), Duration::from_millis(50)).expect("capture on lo");
    let stop = source.stop_handle();
    let (events_tx, events) = mpsc::channel::<String>();
    let analyzer = std::thread::spawn(move || {
        let options = Options {
            framing: FramingChoice::Line,
            ..Options::default()
        };
        Pipeline::new(options).with_exchange_events().run(
            source,
            |_| {},
            |event| {
                let brief = match event {
                    Event::Opened { .. } => "opened".to_string(),
                    Event::Exchange { exchange, .. } => format!(
                        "exchange {} -> {}",
                        exchange.request_preview, exchange.response_preview
                    ),
                    Event::Closed(_) => "closed".to_string(),
                    Event::Tcp { event, .. } => format!("tcp {}", event.kind.name()),
                    Event::Segment(_) => "segment".to_string(),
                    Event::BatchEnd => "batch end".to_string(),
                };
                events_tx
                    .send(brief)
                    .map_err(|_| "the test stopped listening")
            },
        )
    });
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream)
            .write_all(format!("Echo: {line}").as_bytes())
            .unwrap();
        // Hold the connection open until the client closes it.
        let mut rest = Vec::new();
        let _ = (&stream).read_to_end(&mut rest);
    });
    // The capture is running once the handle is open; connect now.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"hello live\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&client).read_line(&mut answer).unwrap();
    assert_eq!(answer, "Echo: hello live\n");
    // With the connection still open, the exchange comes out, and its
    // batch's end follows (where a buffering sink flushes it).
    let wait = Duration::from_secs(10);
    let next = || loop {
        let event = events.recv_timeout(wait).unwrap();
        if event != "batch end" {
            return event;
        }
    };
    assert_eq!(next(), "opened");
    assert_eq!(next(), "exchange hello live -> Echo: hello live");
    assert_eq!(events.recv_timeout(wait).unwrap(), "batch end");
    client.shutdown(Shutdown::Both).unwrap();
    drop(client);
    server.join().unwrap();
    assert_eq!(next(), "closed");
    stop.stop();
    let analysis = analyzer.join().unwrap().expect("the capture ends cleanly");
    // SYN, SYN-ACK, ACK, request, response (maybe with ACKs), FIN, FIN, ACK.
    assert!(analysis.packets >= 8, "{}", analysis.packets);
    let after: Vec<String> = events.try_iter().collect();
    assert!(
        after.iter().all(|e| e == "batch end"),
        "nothing but batch ends after the close: {after:?}"
    );
}
