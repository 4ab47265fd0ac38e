//! The HTML report (`reqresp analyze FILE -o report.html`) in a real
//! headless Chromium, driven over WebDriver by `chromedriver` (Debian's
//! `chromium` and `chromium-driver`) through fantoccini.
//!
//! fantoccini was chosen over the DevTools-protocol crates (chromiumoxide,
//! headless_chrome): it is small (hyper and serde, no TLS needed for a local
//! driver), builds in a fraction of the time of their generated protocol
//! bindings, and WebDriver is a W3C standard, so the same tests can drive
//! Firefox through geckodriver. What CDP would add (network events) is
//! covered by a local proxy that every request of the browser must go
//! through, checked with a control page that does make a request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support;

/// Hostile lines sent through the echo server: each tries to run script or
/// to reach the terminal if the page (or a viewer) took it for markup.
const HOSTILE: [&str; 4] = [
    "</script><script>window.pwned=1</script>",
    "<img src=x onerror=window.pwned=2>",
    "\x1b[31mred\x1b]0;title\x07 \u{2028}end",
    "'\"--><svg onload=window.pwned=3>",
];

/// What the tests need, or a skip saying what is missing.
fn have_everything(capture: bool) -> bool {
    let mut tools = vec!["chromium", "chromedriver", "tshark"];
    if capture {
        tools.push("tcpdump");
        if !support::is_root() {
            support::skip("capturing on lo needs root");
            return false;
        }
    }
    for tool in tools {
        if !support::have(tool) {
            support::skip(&format!(
                "{tool} is not installed (apt-get install chromium chromium-driver tshark tcpdump)"
            ));
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------- browser

/// A local HTTP proxy that records the first line of every request the
/// browser makes and answers 502. The browser is told to send everything
/// through it, so a page that loaded anything from the network shows here.
struct Proxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 2048];
                        let n = conn.read(&mut buf).unwrap_or(0);
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let line = text.lines().next().unwrap_or("(nothing)").to_owned();
                        s.lock().expect("lock").push(line);
                        let _ = conn.write_all(
                            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// chromedriver and one headless Chromium session, both stopped on drop
/// (the process group of chromedriver, which holds the browser it started).
struct Browser {
    client: Option<Client>,
    driver: Child,
    proxy: Proxy,
    _profile: tempfile::TempDir,
}

const WIDTH: u32 = 1400;
/// The screenshots kept in docs/ (docs/html-report.md shows them).
const DOCS_SHOTS: [&str; 3] = ["html-ladder.png", "html-latency.png", "html-hostile.png"];
const HEIGHT: u32 = 900;

impl Browser {
    async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // Its own process group: on drop the group goes, browser included,
        // also when a failed assertion left the session open.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let proxy = Proxy::start();
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--proxy-server=http://{}", proxy.addr),
            "--proxy-bypass-list=<-loopback>".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-default-apps".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"
                .to_owned(),
            "--hide-scrollbars".to_owned(),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session with chromium");
        client
            .set_window_size(WIDTH, HEIGHT)
            .await
            .expect("window size");
        Browser {
            client: Some(client),
            driver,
            proxy,
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("session open")
    }

    /// Checks the proxy sees what a page loads: a control page with an
    /// image on an (unresolvable) address must show up there.
    async fn check_the_proxy_sees_requests(&self) {
        self.proxy.take();
        self.c()
            .goto("data:text/html,<img src='http://reqresp-canary.invalid/probe.png'>")
            .await
            .expect("control page");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.proxy.take();
            if seen.iter().any(|l| l.contains("reqresp-canary.invalid")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the control request never reached the proxy: the no-request check would prove nothing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.c().goto("about:blank").await.expect("blank");
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.proxy.take();
    }

    /// Opens a report and waits (at most 30 s) until it has drawn itself.
    /// Returns the time from navigation to ready as the test saw it.
    async fn open(&self, file: &Path) -> Duration {
        let url = format!("file://{}", file.display());
        let start = Instant::now();
        self.c().goto(&url).await.expect("open the report");
        loop {
            let ready = self
                .js("return !!(window.__reqresp && window.__reqresp.ready)")
                .await;
            if ready == Value::Bool(true) {
                return start.elapsed();
            }
            let errors = self
                .js("return window.__reqresp ? window.__reqresp.errors : 'no script ran'")
                .await;
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the report did not draw itself in 30 s: {errors}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shows the ladder view with connection `id` selected.
    async fn show_ladder_of(&self, id: u64) {
        self.click("#tab-ladder").await;
        self.click(&format!("#conn-list .conn[data-conn='{id}']"))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Waits (at most 10 s) until the page has an element matching `css`
    /// (a row the ladder draws once scrolled into view).
    async fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .c()
                .execute(
                    "return document.querySelector(arguments[0]) !== null",
                    vec![json!(css)],
                )
                .await
                .expect("querySelector");
            if found == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} on the page within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self
            .c()
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
        {
            out.push(e.text().await.expect("text"));
        }
        out
    }

    /// The textContent of every element matching `css` (the literal text,
    /// whatever CSS does to it).
    async fn contents(&self, css: &str) -> Vec<String> {
        let v = self
            .c()
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
                vec![json!(css)],
            )
            .await
            .expect("textContent");
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    }

    /// A screenshot of the window, checked not to be blank, saved as
    /// `name` in the test's temporary directory (and in docs/ when
    /// REQRESP_SCREENSHOTS_TO_DOCS is set).
    async fn screenshot(&self, name: &str) {
        let png = self.c().screenshot().await.expect("screenshot");
        assert_not_blank(&png, name);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(name), &png).expect("write screenshot");
        if std::env::var_os("REQRESP_SCREENSHOTS_TO_DOCS").is_some() && DOCS_SHOTS.contains(&name) {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
            std::fs::write(docs.join(name), &png).expect("write screenshot to docs");
        }
    }

    /// Ends the session and asserts the page made no network request.
    async fn finish(mut self) {
        // Give a late load (an image, a font) time to show.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let resources = self
            .js("return performance.getEntriesByType('resource').map(e => e.name)")
            .await;
        assert_eq!(resources, json!([]), "the report loaded resources");
        // Chromium's own background calls to Google's services (sign-in
        // checks) also go through the proxy, page or no page; only they
        // are left out.
        let seen: Vec<String> = self
            .proxy
            .take()
            .into_iter()
            .filter(|l| !browser_background(l))
            .collect();
        assert!(seen.is_empty(), "the browser made requests: {seen:?}");
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill on the process group of our own child (made with
        // process_group(0), so its id is the child's PID).
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

/// A request Chromium makes by itself, whatever page is open (time, update
/// and sign-in checks, a preconnect to the default search engine): one to a
/// host of Google's services or of Debian's default search engine.
fn browser_background(request_line: &str) -> bool {
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return false;
    };
    let authority = if method == "CONNECT" {
        target
    } else {
        let rest = target.strip_prefix("http://").unwrap_or(target);
        rest.split('/').next().unwrap_or(rest)
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    [
        "google.com",
        "googleapis.com",
        "gvt1.com",
        "gstatic.com",
        "duckduckgo.com",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[test]
fn browser_background_requests_are_told_from_others() {
    assert!(browser_background(
        "CONNECT accounts.google.com:443 HTTP/1.1"
    ));
    assert!(browser_background(
        "GET http://clients2.google.com/time/1/current?x=1 HTTP/1.1"
    ));
    assert!(browser_background(
        "CONNECT start.duckduckgo.com:443 HTTP/1.1"
    ));
    assert!(!browser_background(
        "GET http://reqresp-canary.invalid/probe.png HTTP/1.1"
    ));
    assert!(!browser_background("CONNECT evilgoogle.com:443 HTTP/1.1"));
    assert!(!browser_background(
        "GET http://google.com.evil.example/ HTTP/1.1"
    ));
}

/// A screenshot is a picture of something: several colours, and a fair
/// share of pixels unlike the background.
fn assert_not_blank(png_bytes: &[u8], name: &str) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..3.min(channels)])
        .collect();
    assert!(
        info.width >= WIDTH / 2 && info.height >= HEIGHT / 2,
        "{name}: {}x{}",
        info.width,
        info.height
    );
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().max().copied().unwrap_or(0);
    let other = pixels.len() - background;
    assert!(counts.len() >= 16, "{name}: only {} colours", counts.len());
    assert!(
        other * 100 >= pixels.len() * 3,
        "{name}: {other} of {} pixels differ from the background",
        pixels.len()
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------- captures

/// `reqresp analyze FILE -o OUT.html` (the format from the extension).
fn analyze_html(capture: &Path, out: &Path) {
    analyze_html_with(capture, out, &[]);
}

/// `reqresp analyze FILE -o OUT.html ARGS`.
fn analyze_html_with(capture: &Path, out: &Path, args: &[&str]) {
    let run = support::reqresp()
        .arg("analyze")
        .arg(capture)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("run reqresp analyze");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "reqresp analyze failed: {stderr}");
    assert!(stderr.contains("wrote html report"), "{stderr}");
}

fn analyze_json(capture: &Path) -> Value {
    let run = support::reqresp()
        .arg("analyze")
        .arg(capture)
        .args(["--format", "json"])
        .output()
        .expect("run reqresp analyze");
    assert!(run.status.success());
    serde_json::from_slice(&run.stdout).expect("JSON")
}

/// Sends each line on a new connection to `server` and reads its answer.
/// `split` sends the line in two writes 50 ms apart (two segments).
/// Returns the client's port.
fn converse(server: SocketAddr, lines: &[(&str, bool)]) -> u16 {
    let mut conn = TcpStream::connect(server).expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let port = conn.local_addr().expect("address").port();
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    for (line, split) in lines {
        let bytes = format!("{line}\n").into_bytes();
        if *split {
            conn.write_all(&bytes[..3]).expect("write");
            std::thread::sleep(Duration::from_millis(50));
            conn.write_all(&bytes[3..]).expect("write");
        } else {
            conn.write_all(&bytes).expect("write");
        }
        let mut answer = Vec::new();
        reader.read_until(b'\n', &mut answer).expect("answer");
        assert!(answer.ends_with(b"\n"), "no answer to {line:?}");
    }
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    port
}

/// For each line of one direction of a connection, the frames that carried
/// its bytes, read with tshark: `tshark -T fields -e frame.number -e
/// tcp.payload` on the segments from `src_port` (or to it).
fn tshark_line_frames(capture: &Path, filter: &str) -> Vec<(String, Vec<u64>)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args([
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "tcp.payload",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = Vec::new();
    let mut current = (Vec::new(), Vec::new());
    for row in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = row.split('\t');
        let frame: u64 = f.next().expect("frame").parse().expect("frame number");
        let hex: String = f
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        for b in bytes {
            if current.1.last() != Some(&frame) {
                current.1.push(frame);
            }
            if b == b'\n' {
                let (text, frames) = std::mem::take(&mut current);
                lines.push((String::from_utf8_lossy(&text).into_owned(), frames));
            } else {
                current.0.push(b);
            }
        }
    }
    lines
}

/// The relative ack numbers of the pure ACKs of the connection from client
/// port `port` (no data, SYN, FIN or RST), but the handshake's, as tshark
/// shows them.
fn tshark_pure_acks(capture: &Path, port: u16) -> Vec<u64> {
    let filter = format!(
        "tcp.port == {port} && tcp.len == 0 && tcp.flags.syn == 0 && tcp.flags.fin == 0 \
         && tcp.flags.reset == 0 && !(tcp.srcport == {port} && tcp.ack == 1)"
    );
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-Y", &filter, "-T", "fields", "-e", "tcp.ack"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("ack number"))
        .collect()
}

/// What Wireshark shows of these frames: `tshark -T fields -e frame.number
/// -e frame.time_relative -e tcp.flags -e tcp.seq -e tcp.ack -e tcp.len`,
/// one row of six fields per frame, in frame order.
fn tshark_packets(capture: &Path, frames: &[u64]) -> Vec<Vec<String>> {
    let list: Vec<String> = frames.iter().map(u64::to_string).collect();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-Y", &format!("frame.number in {{{}}}", list.join(", "))])
        .args(["-T", "fields"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "frame.time_relative",
            "-e",
            "tcp.flags",
        ])
        .args(["-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.len"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The page's packet table of one side of the exchange in the detail
/// panel matches tshark's fields for those frames: frame, time (to the
/// microsecond the page shows), flags, relative seq and ack, length.
async fn assert_packet_table_is_tsharks(b: &Browser, capture: &Path, side: &str) {
    let rows = b
        .js(&format!(
            "return Array.from(document.querySelectorAll(\"#detail .msg[data-side='{side}'] table.packets tbody tr\")).map(r => Array.from(r.cells).map(c => c.textContent))"
        ))
        .await;
    let rows: Vec<Vec<String>> = serde_json::from_value(rows).expect("rows of cells");
    assert!(!rows.is_empty(), "no packet table for the {side}");
    let frames: Vec<u64> = rows.iter().map(|r| r[0].parse().expect("frame")).collect();
    let theirs = tshark_packets(capture, &frames);
    assert_eq!(theirs.len(), rows.len(), "{side}: {rows:?} vs {theirs:?}");
    for (ours, theirs) in rows.iter().zip(&theirs) {
        assert_eq!(ours[0], theirs[0], "frame");
        let (t_ours, t_theirs): (f64, f64) = (
            ours[1].parse().expect("time"),
            theirs[1].parse().expect("tshark time"),
        );
        assert!(
            (t_ours - t_theirs).abs() < 1.5e-6,
            "frame {}: time {t_ours} vs tshark {t_theirs}",
            ours[0]
        );
        let hex = |s: &str| {
            let s = s.split_whitespace().next().expect("flags");
            u16::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex flags")
        };
        assert_eq!(
            hex(&ours[2]),
            hex(&theirs[2]),
            "frame {}: flags {}",
            ours[0],
            ours[2]
        );
        assert_eq!(ours[3..6], theirs[3..6], "frame {}: seq, ack, len", ours[0]);
    }
}

/// A synthetic pcap: one line-framed connection with `n` exchanges; the
/// exchange `slow` takes 50 ms, the others 100–1000 µs.
fn ladder_capture(n: usize, slow: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let (cli, srv) = (([10, 9, 0, 2], 40000u16), ([10, 9, 0, 1], 2222u16));
    let mut t_us: u64 = 1_714_557_600_000_000;
    let mut seq = [1000u32, 5000u32];
    let packet = |out: &mut Vec<u8>,
                  t: u64,
                  from_client: bool,
                  flags: &str,
                  payload: &[u8],
                  seq: &mut [u32; 2]| {
        let (s, d, i) = if from_client {
            (cli, srv, 0)
        } else {
            (srv, cli, 1)
        };
        let mut b =
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1 + i as u8], [2, 0, 0, 0, 0, 2 - i as u8])
                .ipv4(s.0, d.0, 64)
                .tcp(s.1, d.1, seq[i], 65000);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('P') {
            b = b.psh();
        }
        if flags.contains('A') {
            b = b.ack(seq[1 - i]);
        }
        let mut frame = Vec::new();
        b.write(&mut frame, payload).expect("packet");
        seq[i] = seq[i].wrapping_add(
            payload.len() as u32 + u32::from(flags.contains('S') || flags.contains('F')),
        );
        out.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    };
    packet(&mut out, t_us, true, "S", b"", &mut seq);
    packet(&mut out, t_us + 40, false, "SA", b"", &mut seq);
    packet(&mut out, t_us + 80, true, "A", b"", &mut seq);
    t_us += 1000;
    for i in 0..n {
        let request = format!("req {i}\n");
        let latency = if i == slow {
            50_000
        } else {
            100 + (i as u64 * 7919) % 900
        };
        packet(&mut out, t_us, true, "PA", request.as_bytes(), &mut seq);
        packet(
            &mut out,
            t_us + latency,
            false,
            "PA",
            format!("Echo: req {i}\n").as_bytes(),
            &mut seq,
        );
        packet(&mut out, t_us + latency + 30, true, "A", b"", &mut seq);
        t_us += latency + 200;
    }
    packet(&mut out, t_us, true, "FA", b"", &mut seq);
    packet(&mut out, t_us + 30, false, "FA", b"", &mut seq);
    packet(&mut out, t_us + 60, true, "A", b"", &mut seq);
    out
}

// ---------------------------------------------------------------- tests

#[test]
fn html_format_is_picked_by_the_extension_and_self_contained() {
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("small.pcap");
    std::fs::write(&capture, ladder_capture(3, 1)).expect("write capture");
    let out = dir.path().join("Report.HTML");
    analyze_html(&capture, &out);
    let page = std::fs::read_to_string(&out).expect("report");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("default-src 'none'"));
    assert!(
        page.contains("\"request_frames\""),
        "the model's frames are embedded"
    );
    assert_eq!(page.matches("\"schema_version\"").count(), 1);
}

#[test]
fn html_report_of_a_real_capture_in_chromium() {
    if !have_everything(true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("lab.pcap");
    let server = support::Server::start(&[]);
    let tcpdump = support::Tcpdump::start(&capture, server.addr.port());
    let plain = converse(
        server.addr,
        &[
            ("hello", false),
            ("ticket please", false),
            ("split message", true),
        ],
    );
    let hostile: Vec<(&str, bool)> = HOSTILE.iter().map(|l| (*l, false)).collect();
    let evil = converse(server.addr, &hostile);
    let third = converse(server.addr, &[("third", false)]);
    // Packets the kernel dropped are noted; the assertions below show them.
    let _ = tcpdump.stop();
    drop(server);

    let doc = analyze_json(&capture);
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 3, "{doc:#}");
    let by_port = |port: u16| {
        conns
            .iter()
            .find(|c| {
                c["client"]
                    .as_str()
                    .expect("client")
                    .ends_with(&format!(":{port}"))
            })
            .expect("connection of that port")
    };
    let (c_plain, c_evil, c_third) = (by_port(plain), by_port(evil), by_port(third));
    let report = dir.path().join("report.html");
    analyze_html(&capture, &report);

    runtime().block_on(async {
        let b = Browser::start().await;
        b.check_the_proxy_sees_requests().await;
        let ready = b.open(&report).await;
        eprintln!("real capture: report ready {ready:?} after navigation");

        // The number of arrows equals the exchanges, for each connection.
        for c in [c_plain, c_evil, c_third] {
            let id = c["id"].as_u64().expect("id");
            b.click(&format!("#conn-list .conn[data-conn='{id}']")).await;
            let arrows = b
                .js("return new Set(Array.from(document.querySelectorAll('#ladder .arrow[data-ex]')).map(a => a.dataset.ex)).size")
                .await;
            let exchanges = c["exchanges"].as_array().expect("exchanges").len();
            assert_eq!(arrows, json!(exchanges), "connection {id}");
            let requests = b.js("return document.querySelectorAll('#ladder .arrow.req').length").await;
            assert_eq!(requests, json!(exchanges), "connection {id}: one request arrow each");
        }

        // Clicking an arrow shows its bytes and the frames tshark sees.
        let id = c_plain["id"].as_u64().expect("id");
        b.click(&format!("#conn-list .conn[data-conn='{id}']")).await;
        let requests = tshark_line_frames(&capture, &format!("tcp.srcport == {plain} && tcp.len > 0"));
        let responses = tshark_line_frames(&capture, &format!("tcp.dstport == {plain} && tcp.len > 0"));
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[2].1.len(), 2, "the split line came in two segments: {requests:?}");
        for k in 0..3 {
            b.click(&format!("#ladder .arrow.req[data-ex='{k}']")).await;
            let frames = |side: &'static str| {
                let b = &b;
                async move {
                    b.contents(&format!("#detail .msg[data-side='{side}'] .frame"))
                        .await
                        .iter()
                        .map(|f| f.parse::<u64>().expect("frame number"))
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(frames("client").await, requests[k].1, "request {k}");
            assert_eq!(frames("server").await, responses[k].1, "response {k}");
            let text = b.contents("#detail .msg[data-side='client'] pre.text").await;
            assert_eq!(text, [requests[k].0.clone()]);
            let hex = b.contents("#detail .msg[data-side='client'] .bytes .hex").await.join(" ");
            let expected: Vec<String> = requests[k].0.bytes().map(|x| format!("{x:02x}")).collect();
            assert_eq!(hex, expected.join(" "), "hex of request {k}");
            let cmd = b.contents("#detail .msg[data-side='client'] code.wireshark").await;
            let first = requests[k].1[0];
            assert!(cmd[0].contains("frame.number") && cmd[0].contains(&first.to_string()), "{cmd:?}");
            // The packets of each message, as tshark shows them.
            assert_packet_table_is_tsharks(&b, &capture, "client").await;
            assert_packet_table_is_tsharks(&b, &capture, "server").await;
            // The latency split into network and server time adds up.
            let e = &c_plain["exchanges"][k];
            let shown = b.contents("#detail dd.network, #detail dd.server").await;
            assert_eq!(shown.len(), 2, "network and server time shown: {shown:?}");
            let (net, srv) = (e["network_us"].as_f64().expect("network"), e["server_us"].as_f64().expect("server"));
            let latency = e["latency_us"].as_f64().expect("latency");
            assert!((net + srv - latency).abs() < 0.01, "{net} + {srv} != {latency}");
        }
        // The split line: one recv(1024) stops after the first segment.
        let cut = b.contents("#detail .msg[data-side='client'] .recv-cut").await;
        assert!(cut.iter().any(|n| n.contains("recv(1024)") && n.contains(&format!("frame {}", requests[2].1[0]))), "{cut:?}");
        let marked = b.contents("#detail .msg[data-side='client'] table.packets tr.cut td.num").await;
        assert_eq!(marked, [requests[2].1[0].to_string()], "the first segment is where recv stops");
        let split_note = b.contents("#detail .msg[data-side='client'] .note.warn").await;
        assert!(split_note.iter().any(|n| n.contains("2 segments")), "{split_note:?}");
        b.screenshot("html-ladder.png").await;

        // Sorting: by exchanges, the hostile connection (4) comes first.
        const ORDER: &str = "return Array.from(document.querySelectorAll('#conn-list .conn')).map(c => Number(c.dataset.conn))";
        assert_eq!(
            b.js(ORDER).await,
            json!([c_plain["id"], c_evil["id"], c_third["id"]]),
            "by start"
        );
        b.js("var s = document.getElementById('sort'); s.value = 'exchanges'; s.dispatchEvent(new Event('change')); return 1").await;
        assert_eq!(b.js(ORDER).await[0], c_evil["id"], "by exchanges");
        b.js("var s = document.getElementById('sort'); s.value = 'start'; s.dispatchEvent(new Event('change')); return 1").await;

        // Filtering narrows the list.
        assert_eq!(b.texts("#conn-list .conn").await.len(), 3);
        let filter = b.c().find(Locator::Css("#filter")).await.expect("filter");
        filter.send_keys("pwned").await.expect("type");
        let left = b.js("return Array.from(document.querySelectorAll('#conn-list .conn')).map(c => Number(c.dataset.conn))").await;
        assert_eq!(left, json!([c_evil["id"]]), "only the hostile connection mentions pwned");
        filter.clear().await.expect("clear");
        filter.send_keys(&format!(":{third}")).await.expect("type");
        let left = b.js("return Array.from(document.querySelectorAll('#conn-list .conn')).map(c => Number(c.dataset.conn))").await;
        assert_eq!(left, json!([c_third["id"]]), "filter by port");
        filter.clear().await.expect("clear");
        b.js("document.getElementById('filter').dispatchEvent(new Event('input')); return 1").await;
        assert_eq!(b.texts("#conn-list .conn").await.len(), 3);

        // Hostile payloads: shown as text, nothing runs.
        let id = c_evil["id"].as_u64().expect("id");
        b.click(&format!("#conn-list .conn[data-conn='{id}']")).await;
        let labels = b.contents("#ladder .arrow.req .label").await.join("\n");
        assert!(labels.contains(HOSTILE[0]), "{labels}");
        assert!(labels.contains(HOSTILE[1]), "{labels}");
        assert!(labels.contains("\\x1b[31mred\\x1b]0;title\\x07"), "escapes shown escaped: {labels}");
        assert!(labels.contains(HOSTILE[3]), "{labels}");
        for k in 0..HOSTILE.len() {
            b.click(&format!("#ladder .arrow.req[data-ex='{k}']")).await;
            let expected = c_evil["exchanges"][k]["request_preview"].as_str().expect("preview");
            let text = b.contents("#detail .msg[data-side='client'] pre.text").await;
            assert_eq!(text, [expected.to_owned()]);
        }
        b.screenshot("html-hostile.png").await;
        let check = b
            .js("return [typeof window.pwned, document.querySelectorAll('img').length, document.querySelectorAll('script').length, document.title]")
            .await;
        assert_eq!(check[0], "undefined", "a hostile payload ran script");
        assert_eq!(check[1], 0, "a hostile payload became an element");
        assert_eq!(check[2], 3, "the page's own three script elements only");

        // The page's policy blocks loads even of markup that got in: an
        // image on the canary address (which the proxy saw from the control
        // page) is refused as a policy violation and never reaches the proxy.
        let blocked = b
            .c()
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 document.addEventListener('securitypolicyviolation', function (e) { done([e.blockedURI, e.violatedDirective]); });
                 var i = document.createElement('img');
                 i.src = 'http://reqresp-canary.invalid/csp.png';
                 document.body.appendChild(i);
                 setTimeout(function () { done(null); }, 5000);",
                vec![],
            )
            .await
            .expect("policy check");
        eprintln!("policy violation reported: {blocked}");
        assert!(
            blocked[0].as_str().is_some_and(|u| u.contains("reqresp-canary.invalid")),
            "the page's policy did not refuse the image: {blocked}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen = b.proxy.take();
        assert!(
            !seen.iter().any(|l| l.contains("reqresp-canary")),
            "the blocked image reached the network: {seen:?}"
        );
        b.js("document.querySelectorAll('img').forEach(i => i.remove()); performance.clearResourceTimings(); return 1").await;

        // The other views draw and link back to exchanges.
        b.click("#tab-warnings").await;
        let items = b.texts("#warning-list li").await;
        eprintln!("warnings view: {} items", items.len());
        b.screenshot("html-warnings.png").await;
        b.click("#tab-latency").await;
        let bars = b.js("return document.querySelectorAll('#histogram .bar').length").await;
        assert!(bars.as_u64().expect("count") >= 1);
        // A bar lists its exchanges; all bars together list every latency.
        let listed = b
            .js("var n = 0; document.querySelectorAll('#histogram .bar').forEach(function (bar) { bar.dispatchEvent(new MouseEvent('click', { bubbles: true })); n += document.querySelectorAll('#bin-table tbody tr').length; }); return n")
            .await;
        assert_eq!(listed, doc["summary"]["latency"]["count"], "histogram bars");
        b.click("#slowest tbody tr button.go").await;
        let on_ladder = b.js("return document.getElementById('view-ladder').classList.contains('on') && document.getElementById('detail').dataset.ex !== undefined").await;
        assert_eq!(on_ladder, json!(true), "the slowest link opens the exchange");

        // Pure ACKs: without --acks only the teardown's last is drawn and
        // the others are counted; with it, every one tshark sees but the
        // handshake's, with its relative ack number.
        let pure = tshark_pure_acks(&capture, plain);
        assert!(pure.len() >= 2, "the split message was acknowledged on its own: {pure:?}");
        let id = c_plain["id"].as_u64().expect("id");
        b.show_ladder_of(id).await;
        let drawn = b.contents("#ladder .arrow.pack .label").await;
        assert_eq!(drawn.len(), 1, "only the teardown's last ACK: {drawn:?}");
        let info = b.contents("#ladder-info").await.join("");
        assert!(info.contains(&format!("plus {} pure ACK", pure.len() - 1)) && info.contains("--acks"), "{info}");
        let with_acks = dir.path().join("acks.html");
        analyze_html_with(&capture, &with_acks, &["--acks"]);
        b.open(&with_acks).await;
        b.show_ladder_of(id).await;
        let drawn = b.contents("#ladder .arrow.pack .label").await;
        let expected: Vec<String> = pure.iter().map(|a| format!("ACK ack={a}")).collect();
        assert_eq!(drawn, expected, "every pure ACK, in capture order");
        b.finish().await;
    });
}

#[test]
fn html_ladder_of_ten_thousand_exchanges_in_chromium() {
    if !have_everything(false) {
        return;
    }
    const N: usize = 10_000;
    const SLOW: usize = 7_777;
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("ten-thousand.pcap");
    std::fs::write(&capture, ladder_capture(N, SLOW)).expect("write capture");
    let report = dir.path().join("report.html");
    analyze_html(&capture, &report);
    let size = std::fs::metadata(&report).expect("report").len();

    runtime().block_on(async {
        let b = Browser::start().await;
        b.check_the_proxy_sees_requests().await;
        let baseline = b
            .c()
            .execute_async(
                "var done = arguments[arguments.length - 1], gaps = [], last = null;
                 function step(ts) { if (last !== null) gaps.push(ts - last); last = ts;
                   if (gaps.length < 60) requestAnimationFrame(step); else { gaps.sort((a, b) => a - b); done(gaps[30]); } }
                 requestAnimationFrame(step);",
                vec![],
            )
            .await
            .expect("baseline frames")
            .as_f64()
            .unwrap_or(f64::NAN);
        let ready = b.open(&report).await;
        let timings = b.js("return window.__reqresp.timings").await;
        eprintln!(
            "10,000-exchange ladder ({:.1} MB page): ready {:.0} ms after navigation as WebDriver saw it; \
             first render at {:.0} ms after navigation start (parse {:.0} ms, script {:.0} ms)",
            size as f64 / 1e6,
            ready.as_secs_f64() * 1e3,
            timings["firstRenderMs"].as_f64().unwrap_or(f64::NAN),
            timings["parseMs"].as_f64().unwrap_or(f64::NAN),
            timings["scriptMs"].as_f64().unwrap_or(f64::NAN),
        );
        let info = b.contents("#ladder-info").await;
        assert!(info[0].contains("10,000 exchanges"), "{info:?}");
        let rows = b.js("return window.__reqresp.rows()").await;
        assert_eq!(
            rows,
            json!(3 + 2 * N + 2 + 1),
            "handshake, two arrows per exchange, two FINs, the teardown's last ACK"
        );
        let in_dom = b.js("return document.querySelectorAll('#ladder .row').length").await;
        let in_dom = in_dom.as_u64().expect("count");
        assert!(in_dom > 10 && in_dom < 200, "only the rows in view are drawn: {in_dom}");

        // Frame times while scrolling through the whole ladder.
        let frames = b
            .c()
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 var s = document.getElementById('ladder'), gaps = [], last = null, n = 0, work = [], t0 = performance.now();
                 function step(ts) {
                   if (last !== null) gaps.push(ts - last);
                   last = ts;
                   s.scrollTop += n < 60 ? 150 : 6000;
                   var t = performance.now();
                   window.__reqresp.renderRows();
                   void s.offsetHeight;
                   work.push(performance.now() - t);
                   if (++n < 100 && performance.now() - t0 < 15000) requestAnimationFrame(step); else done([gaps, document.querySelectorAll('#ladder .row').length, work]);
                 }
                 requestAnimationFrame(step);",
                vec![],
            )
            .await
            .expect("scroll");
        let stats = |v: &Value, range: std::ops::Range<usize>| {
            let mut x: Vec<f64> = v.as_array().expect("array").iter().filter_map(Value::as_f64).collect();
            let mut x: Vec<f64> = x.drain(range.start.min(x.len())..range.end.min(x.len())).collect();
            x.sort_by(f64::total_cmp);
            if x.is_empty() {
                return (0, f64::NAN, f64::NAN);
            }
            (x.len(), x[x.len() / 2], x[x.len() - 1])
        };
        for (what, range) in [("150 px per frame", 0..59), ("6000 px per frame", 60..100)] {
            let (n, median, max) = stats(&frames[0], range.clone());
            let (_, work, work_max) = stats(&frames[2], range);
            eprintln!(
                "scrolling the 10,000-exchange ladder {what}: {n} frames, median {median:.1} ms (max {max:.1} ms) \
                 between frames; drawing the rows and layout: median {work:.2} ms (max {work_max:.2} ms)"
            );
        }
        eprintln!("  an empty page's frames on this machine just before: median {baseline:.1} ms");
        assert!(frames[1].as_u64().expect("rows") < 200);

        // The end of the ladder is reachable, and its arrow shows its frame.
        b.js("var s = document.getElementById('ladder'); s.scrollTop = s.scrollHeight; return 1").await;
        let last = format!("#ladder .arrow.req[data-ex='{}']", N - 1);
        b.wait_for(&last).await;
        b.click(&last).await;
        let frames = b.contents("#detail .msg[data-side='client'] .frame").await;
        let frame: u64 = frames[0].parse().expect("frame");
        assert_eq!(frame, 4 + 3 * (N as u64 - 1), "handshake 3 frames, 3 per exchange");
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&capture)
            .args(["-Y", &format!("frame.number == {frame}"), "-T", "fields", "-e", "tcp.payload"])
            .output()
            .expect("tshark");
        let hex: String = String::from_utf8_lossy(&out.stdout).trim().replace(':', "");
        let expected: String = format!("req {}\n", N - 1).bytes().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, expected, "tshark's frame {frame} is that request");

        // Clicking the slowest point of the chart selects that exchange.
        b.click("#tab-latency").await;
        b.screenshot("html-latency.png").await;
        let selected = b
            .js(&format!(
                "var p = window.__reqresp.pointOf(1, {SLOW}), c = document.getElementById('over-time');
                 var r = c.getBoundingClientRect();
                 c.dispatchEvent(new MouseEvent('click', {{ clientX: r.left + p[0] * r.width / 640, clientY: r.top + p[1] * r.height / 260, bubbles: true }}));
                 return [document.getElementById('view-ladder').classList.contains('on'), document.getElementById('detail').dataset.ex];"
            ))
            .await;
        assert_eq!(selected, json!([true, SLOW.to_string()]));
        let arrow = b.js(&format!("return document.querySelectorAll(\"#ladder .arrow[data-ex='{SLOW}']\").length")).await;
        assert_eq!(arrow, json!(2), "the ladder scrolled to it (request and response)");
        b.screenshot("html-ladder-10k.png").await;
        b.finish().await;
    });
}

/// TCP events (`events[]` of each connection) are drawn where they happened:
/// the page is given a document with two, as the model writes them, and must
/// show them in the ladder, in the text ladder's words, and in the warnings.
#[test]
fn html_report_draws_tcp_events_when_the_model_has_them() {
    if !have_everything(false) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("three.pcap");
    std::fs::write(&capture, ladder_capture(3, 1)).expect("write capture");
    let report = dir.path().join("report.html");
    analyze_html(&capture, &report);
    let page = std::fs::read_to_string(&report).expect("report");
    let doc = analyze_json(&capture);
    let t = doc["connections"][0]["exchanges"][1]["request_time"]
        .as_u64()
        .expect("time");
    let events = format!(
        r#""events":[{{"time":{},"side":"client","kind":"retransmission","frame":9,"seq":14,"len":14,"detail":204000.0}},{{"time":{},"side":"server","kind":"zero_window","frame":10,"seq":20,"len":0,"detail":null}}]"#,
        t + 1_000,
        t + 2_000
    );
    let first = page.find(r#""id":1,"#).expect("first connection");
    let at = first + page[first..].find(r#""events":[]"#).expect("its events");
    let page = format!(
        "{}{events}{}",
        &page[..at],
        &page[at + r#""events":[]"#.len()..]
    );
    std::fs::write(&report, page).expect("rewrite report");

    runtime().block_on(async {
        let b = Browser::start().await;
        b.open(&report).await;
        let labels = b.contents("#ladder .arrow.evt .label").await;
        assert_eq!(
            labels,
            [
                "⟲ retransmission of 14 B after 204.000 ms (RTO)",
                "▮ zero window: receive buffer full"
            ],
            "events drawn in time order"
        );
        let rows = b
            .js("return Array.from(document.querySelectorAll('#ladder .row')).map(r => r.querySelector('.arrow').className.includes('evt') ? 'evt' : r.querySelector('.arrow').dataset.ex || 'ctl')")
            .await;
        // After the second exchange's request: the retransmission, then the zero window.
        let rows: Vec<String> = rows
            .as_array()
            .expect("rows")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect();
        let first = rows.iter().position(|r| r == "evt").expect("event row");
        assert_eq!(rows[first - 1], "1", "{rows:?}");
        b.click("#tab-warnings").await;
        let items = b.contents("#warning-list li").await.join("\n");
        assert!(items.contains("retransmission") && items.contains("zero window"), "{items}");
        b.finish().await;
    });
}
