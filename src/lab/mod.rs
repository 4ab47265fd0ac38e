//! The whole lab on one machine, without Docker: topology, capture, server,
//! client and report, with cleanup on every way out.
//!
//! Two modes, as [`Mode`] says:
//!
//! - **Network namespaces** (root): a server host and a client host, each a
//!   network namespace with its own `eth0`, IP and MAC on a bridge
//!   `br-reqresp` in the root namespace (`topology`), like the lab's Docker
//!   bridge. The capture runs on the bridge, the server inside the server
//!   host, the client inside the client host.
//! - **Loopback** (no privilege to build namespaces): server and client on
//!   127.0.0.1, captured on `lo` when the process may capture.
//!
//! Server and client are this very binary, started as children (inside a
//! host by `ip netns exec`), so the lab runs exactly what a student runs by
//! hand. Every resource is owned by a guard whose `Drop` releases it: the
//! `process::Process` children, the capture handle and the
//! `topology::Topology`; Ctrl-C and SIGTERM are turned into an error by
//! [`signals`] so that they unwind through those guards too.
//!
//! [`usercmd`] runs a user's own server or client on a lab host in place of
//! reqresp's (`--server-cmd`, `--client-cmd`) and judges it.

pub mod faults;
pub(crate) mod hook;
mod mode;
pub(crate) mod names;
pub(crate) mod outdir;
pub(crate) mod process;
pub mod scenario;
pub(crate) mod scenario_record;
pub mod scenario_run;
pub mod signals;
pub mod teardown;
pub(crate) mod topology;
pub mod usercmd;

use mode::choose_mode;
use std::fmt::Write as _;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::analyze::Options as AnalyzeOptions;
use crate::analyze::model::Analysis;
use crate::capture::{Capture, CaptureConfig, CaptureError, CaptureHandle};
use crate::report::{self, Format, RenderOptions};

use crate::protocol::DEFAULT_PORT;
use outdir::RunDir;
use process::{Process, ProcessError};
use topology::{Topology, TopologyError};

/// How long the server may take to print `listening on`.
const SERVER_START: Duration = Duration::from_secs(10);
/// How long the client may take for the whole script.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// How long the server may take to drain and exit after SIGTERM.
const SERVER_STOP: Duration = Duration::from_secs(5);

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Network namespaces when the process may build them, else loopback.
    #[default]
    Auto,
    /// Two network namespaces on a bridge (needs root).
    Netns,
    /// Server and client on 127.0.0.1.
    Loopback,
}

/// Which service the lab's server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LabService {
    /// `Echo: <request>`, as in the original lab.
    #[default]
    Echo,
    /// Ticket booking from a shared stock.
    Tickets,
}

impl LabService {
    fn name(self) -> &'static str {
        match self {
            LabService::Echo => "echo",
            LabService::Tickets => "tickets",
        }
    }
}

/// Everything a lab run needs to know.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Where to run.
    pub mode: Mode,
    /// Base directory of the results: each run gets its own folder in it
    /// and a `latest` link (`outdir`).
    pub out: PathBuf,
    /// Server service.
    pub service: LabService,
    /// Ticket stock for `tickets`.
    pub tickets: u64,
    /// Requests to send; empty means the default script of the service.
    pub messages: Vec<String>,
    /// Leave the namespace topology up after the run.
    pub keep: bool,
    /// Print every `ip` command.
    pub verbose: bool,
    /// Extra arguments for `reqresp server` (e.g. `--prefix=`).
    pub server_args: Vec<String>,
    /// The `reqresp` binary to run as server and client.
    pub exe: PathBuf,
    /// Called once the capture runs, before the client talks (`--watch`).
    pub on_capture: Option<hook::CaptureHook>,
    /// Requests typed live, sent by the client instead of the script.
    pub client_lines: Option<hook::ClientLines>,
}

/// Why a lab run failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The namespace topology could not be built.
    #[error("building the lab network")]
    Topology(#[from] TopologyError),
    /// The server or client failed.
    #[error(transparent)]
    Process(ProcessError),
    /// The client ended with an error.
    #[error("the client failed ({status}): {stderr}")]
    Client {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its stderr.
        stderr: String,
    },
    /// The capture could not start or stop.
    #[error("capturing the lab's traffic")]
    Capture(#[from] CaptureError),
    /// The capture could not be analysed.
    #[error("analysing {path}: {message}")]
    Analyze {
        /// The capture file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The output directory or a report file could not be written.
    #[error("writing {path}: {source} (choose another directory with --out)")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--keep` was asked for a run without namespaces.
    #[error(
        "--keep keeps the namespace topology, but this run is on loopback; run as root or drop --keep"
    )]
    KeepWithoutNetns,
    /// Ctrl-C or SIGTERM: cleaned up, then stopped.
    #[error("interrupted: cleaned up and stopped")]
    Interrupted(i32),
}

impl From<ProcessError> for LabError {
    fn from(err: ProcessError) -> Self {
        match err {
            ProcessError::Interrupted(signal) => LabError::Interrupted(signal),
            other => LabError::Process(other),
        }
    }
}

/// The requests the client sends: `messages` when given, else the
/// service's default script (three echo messages, or one booking more than
/// the stock so the last one finds it sold out).
pub(crate) fn script(service: LabService, tickets: u64, messages: &[String]) -> Vec<String> {
    if !messages.is_empty() {
        return messages.to_vec();
    }
    match service {
        LabService::Echo => ["Hello, server!", "request and response", "bye"]
            .map(String::from)
            .to_vec(),
        LabService::Tickets => {
            // Bounded: a huge stock still gives a short script.
            let n = tickets.min(20) + 1;
            vec!["book ticket".to_string(); n as usize]
        }
    }
}

/// The ticket ledger's file name in the lab's output directory.
pub(crate) const TICKETS_DB: &str = "tickets.db";

/// The arguments of `reqresp server` for the lab; `extra` comes last.
///
/// The tickets service keeps its ledger in `out` ([`TICKETS_DB`]) and starts
/// each run with a fresh stock (`--reset-tickets`), so the script finds the
/// stock it expects, unless `extra` names its own `--tickets-db`.
pub(crate) fn server_args(
    listen: SocketAddr,
    service: LabService,
    tickets: u64,
    out: &Path,
    extra: &[String],
) -> Vec<String> {
    let mut args = vec![
        "server".to_string(),
        "--listen".to_string(),
        listen.to_string(),
        "--service".to_string(),
        service.name().to_string(),
    ];
    if service == LabService::Tickets {
        args.extend(["--tickets".to_string(), tickets.to_string()]);
        if !extra.iter().any(|a| a.starts_with("--tickets-db")) {
            let db = out.join(TICKETS_DB).to_string_lossy().into_owned();
            args.extend(["--tickets-db".to_string(), db]);
            if !extra.iter().any(|a| a == "--reset-tickets") {
                args.push("--reset-tickets".to_string());
            }
        }
    }
    args.extend(extra.iter().cloned());
    args
}

/// The arguments of `reqresp client` for the lab; `--` keeps messages that
/// start with `-` from being read as flags.
pub(crate) fn client_args(server: SocketAddr, messages: &[String]) -> Vec<String> {
    let mut args = vec!["client".to_string(), server.to_string(), "--".to_string()];
    args.extend(messages.iter().cloned());
    args
}

/// `ip netns exec <netns> <exe> <args...>`: runs `exe` inside a host.
pub(crate) fn in_netns(netns: &str, exe: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).arg(exe).args(args);
    cmd
}

/// How a finished run went, for the CLI.
#[derive(Debug)]
pub struct LabOutcome {
    /// The mode actually used.
    pub mode: Mode,
    /// True when a capture was written and analysed.
    pub captured: bool,
}

/// Runs the lab, printing progress and the report to `out`.
pub fn run(options: &LabOptions, out: &mut dyn Write) -> Result<LabOutcome, LabError> {
    let _signals = signals::SignalGuard::install();
    let (mode, reason) = choose_mode(options.mode);
    let say = |out: &mut dyn Write, text: &str| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    if mode == Mode::Loopback && options.keep {
        return Err(LabError::KeepWithoutNetns);
    }
    let run_dir = RunDir::create(&options.out).map_err(|source| LabError::Output {
        path: options.out.clone(),
        source,
    })?;
    if mode == Mode::Netns {
        say(out, &format!("mode: {reason}"));
        match Topology::create(std::process::id(), options.verbose) {
            Ok(topology) => return run_netns(options, topology, run_dir, out),
            Err(err) if options.mode == Mode::Auto && is_permission(&err) => {
                say(
                    out,
                    &format!("could not build the namespaces ({err}); falling back to loopback"),
                );
            }
            Err(err) => return Err(err.into()),
        }
    } else {
        say(out, &format!("mode: {reason}"));
    }
    run_loopback(options, run_dir, out)
}

fn is_permission(err: &TopologyError) -> bool {
    matches!(err, TopologyError::Command { stderr, .. }
        if stderr.contains("Operation not permitted") || stderr.contains("Permission denied"))
}

fn check_interrupt() -> Result<(), LabError> {
    match signals::interrupted() {
        Some(signal) => Err(LabError::Interrupted(signal)),
        None => Ok(()),
    }
}

/// The lab in two namespaces on a bridge.
fn run_netns(
    options: &LabOptions,
    topology: Topology,
    run_dir: RunDir,
    out: &mut dyn Write,
) -> Result<LabOutcome, LabError> {
    let names = topology.names().clone();
    let mut text = String::new();
    let _ = writeln!(text, "topology (created for this run):");
    let shared = if names.slot == 0 {
        String::new()
    } else {
        format!(
            " ({} exists already: another run, a kept lab or the Docker lab; this run has its own bridge)",
            names::bridge_name(0)
        )
    };
    let _ = writeln!(
        text,
        "  bridge       {} (ifindex {}){shared}, subnet {}, no address in the root namespace",
        names.bridge,
        topology
            .bridge_ifindex()
            .map_or_else(|| "?".to_string(), |i| i.to_string()),
        names.subnet()
    );
    for host in names.hosts() {
        let _ = writeln!(
            text,
            "  {:<12} netns {:<14} eth0 {:<12} mac {}  (veth {} on the bridge)",
            format!("{:?} host", host.role).to_lowercase(),
            host.netns,
            host.ip,
            host.mac,
            host.veth
        );
    }
    if topology.has_firewall_rule() {
        let _ = writeln!(
            text,
            "  firewall     br_netfilter is on: bridged frames pass iptables, so one rule `-i {0} -o {0} -j ACCEPT` is in FORWARD for this run",
            names.bridge
        );
    }
    let _ = write!(out, "{text}");
    check_interrupt()?;

    let pcap = run_dir.path().join("reqresp.pcap");
    let mut config = CaptureConfig::new(names.bridge.clone(), pcap.clone());
    // A bridge passes frames between its ports without showing them to its
    // own device; in promiscuous mode it shows it every frame, as tcpdump
    // (promiscuous by default) sees them in the original lab.
    config.promiscuous = true;
    let watched = config.clone();
    let capture = Capture::start(config)?;
    if let Some(hook) = &options.on_capture {
        hook.call(&watched);
    }
    let _ = writeln!(
        out,
        "capturing on {} into {}",
        names.bridge,
        run_dir.final_path().join("reqresp.pcap").display()
    );

    let listen = SocketAddr::from((names.server.ip, DEFAULT_PORT));
    let served = exchange(
        in_netns(
            &names.server.netns,
            &options.exe,
            &server_args(
                listen,
                options.service,
                options.tickets,
                run_dir.path(),
                &options.server_args,
            ),
        ),
        |addr| {
            in_netns(
                &names.client.netns,
                &options.exe,
                &client_args(
                    addr,
                    &script(options.service, options.tickets, &options.messages),
                ),
            )
        },
        options.client_lines.as_ref(),
        out,
    );
    let stats = stop_capture(capture, &pcap);
    served?;
    let stats = stats?;
    let _ = writeln!(out, "capture stopped: {stats}");
    report(&run_dir, listen, out)?;
    print_files(options, run_dir, out)?;

    if options.keep {
        let state = topology.keep()?;
        print_keep_help(&state.names, &options.exe, out);
    } else {
        let mut topology = topology;
        let errors = topology.teardown();
        if let Some(err) = errors.into_iter().next() {
            return Err(err.into());
        }
        let _ = writeln!(
            out,
            "cleaned up: namespaces {} and {}, bridge {} removed",
            names.server.netns, names.client.netns, names.bridge
        );
    }
    Ok(LabOutcome {
        mode: Mode::Netns,
        captured: true,
    })
}

/// The lab on 127.0.0.1.
fn run_loopback(
    options: &LabOptions,
    run_dir: RunDir,
    out: &mut dyn Write,
) -> Result<LabOutcome, LabError> {
    let start = |port: u16| -> Result<(Process, SocketAddr, String), LabError> {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut cmd = Command::new(&options.exe);
        cmd.args(server_args(
            listen,
            options.service,
            options.tickets,
            run_dir.path(),
            &options.server_args,
        ));
        let line = process::display(&cmd);
        let mut server = Process::spawn("server", cmd)?;
        let addr = server_address(&mut server)?;
        Ok((server, addr, line))
    };
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, DEFAULT_PORT)).is_ok();
    // The port can be taken between the check and the server's bind (another
    // lab, a test): then the server fails and a free port is used instead.
    let (mut server, addr, line) = match free.then(|| start(DEFAULT_PORT)) {
        Some(Ok(started)) => started,
        Some(Err(err)) if !err.to_string().contains("in use") => return Err(err),
        Some(Err(_)) | None => {
            let _ = writeln!(
                out,
                "port {DEFAULT_PORT} is in use on 127.0.0.1: using a free port"
            );
            start(0)?
        }
    };
    let pcap = run_dir.path().join("reqresp.pcap");
    let _ = writeln!(out, "server: {line}");
    let _ = writeln!(out, "server listening on {addr} (pid {})", server.pid());

    let mut config = CaptureConfig::new("lo", pcap.clone());
    config.filter = Some(format!("tcp port {}", addr.port()));
    let watched = config.clone();
    let capture = match Capture::start(config) {
        Ok(capture) => {
            if let Some(hook) = &options.on_capture {
                hook.call(&watched);
            }
            let _ = writeln!(
                out,
                "capturing on lo (tcp port {}) into {}",
                addr.port(),
                run_dir.final_path().join("reqresp.pcap").display()
            );
            Some(capture)
        }
        Err(err @ CaptureError::NoPrivilege { .. }) => {
            let _ = writeln!(out, "no capture: {err}");
            None
        }
        Err(err) => return Err(err.into()),
    };
    let mut client_cmd = Command::new(&options.exe);
    client_cmd.args(client_args(
        addr,
        &script(options.service, options.tickets, &options.messages),
    ));
    let served = run_client(client_cmd, options.client_lines.as_ref(), &mut server, out);
    let stats = capture.map(|capture| stop_capture(capture, &pcap));
    served?;
    let Some(stats) = stats else {
        let base = options.out.display();
        let earlier = match outdir::latest_run(&options.out) {
            Some(dir) => format!(
                "; earlier results are untouched ({base}/latest is {})",
                dir.display()
            ),
            None => String::new(),
        };
        drop(run_dir);
        let _ = writeln!(
            out,
            "\nserver and client ran, but nothing was captured, so nothing was written to {base}/{earlier}.\nTo see the packets, run the lab with\n  sudo {exe} lab\nor let reqresp capture once:\n  sudo setcap cap_net_raw,cap_net_admin=eip {exe}",
            exe = options.exe.display()
        );
        return Ok(LabOutcome {
            mode: Mode::Loopback,
            captured: false,
        });
    };
    let _ = writeln!(out, "capture stopped: {}", stats?);
    report(&run_dir, addr, out)?;
    print_files(options, run_dir, out)?;
    Ok(LabOutcome {
        mode: Mode::Loopback,
        captured: true,
    })
}

/// Starts the server, runs the client against it, stops the server.
fn exchange(
    server_cmd: Command,
    client_cmd: impl FnOnce(SocketAddr) -> Command,
    lines: Option<&hook::ClientLines>,
    out: &mut dyn Write,
) -> Result<(), LabError> {
    let _ = writeln!(out, "server: {}", process::display(&server_cmd));
    let mut server = Process::spawn("server", server_cmd)?;
    let addr = server_address(&mut server)?;
    let _ = writeln!(out, "server listening on {addr} (pid {})", server.pid());
    run_client(client_cmd(addr), lines, &mut server, out)
}

fn server_address(server: &mut Process) -> Result<SocketAddr, LabError> {
    let line = server.wait_for_line("listening on ", SERVER_START)?;
    line.parse().map_err(|_| {
        LabError::Process(ProcessError::Timeout {
            name: "server",
            waiting_for: format!("print a valid address (got `listening on {line}`)"),
            limit: SERVER_START,
            stderr: server.stderr(),
        })
    })
}

/// Runs the client to its end, prints each request with its response, then
/// stops the server gracefully (SIGTERM) so its side of the teardown is seen.
fn run_client(
    client_cmd: Command,
    lines: Option<&hook::ClientLines>,
    server: &mut Process,
    out: &mut dyn Write,
) -> Result<(), LabError> {
    let requests: Vec<String> = client_cmd
        .get_args()
        .skip_while(|a| *a != "--")
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let _ = writeln!(out, "client: {}", process::display(&client_cmd));
    let (mut client, status, requests) = match lines.and_then(hook::ClientLines::take) {
        Some(lines) => hook::talk(&client_cmd, &lines)?,
        None => {
            let mut client = Process::spawn("client", client_cmd)?;
            let status = client.wait(CLIENT_LIMIT)?;
            (client, status, requests)
        }
    };
    let responses = client.remaining_stdout();
    for (i, request) in requests.iter().enumerate() {
        let response = responses.get(i).map_or("(no response)", String::as_str);
        let _ = writeln!(out, "  > {request}\n  < {response}");
    }
    if !status.success() {
        return Err(LabError::Client {
            status,
            stderr: client.stderr().trim().to_string(),
        });
    }
    let _ = writeln!(out, "client closed the connection");
    check_interrupt()?;
    stop_server(server, out);
    Ok(())
}

/// Stops the lab's server with SIGTERM (SIGKILL after [`SERVER_STOP`]) and
/// says so, with its exit status when it failed.
fn stop_server(server: &mut Process, out: &mut dyn Write) {
    let stopped = server.stop(libc::SIGTERM, SERVER_STOP);
    let _ = writeln!(
        out,
        "server stopped (SIGTERM){}",
        stopped
            .filter(|s| !s.success())
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
}

/// Lets the teardown reach the capture (written to `pcap`), then stops it.
fn stop_capture(
    capture: CaptureHandle,
    pcap: &Path,
) -> Result<crate::capture::CaptureStats, LabError> {
    teardown::wait_for_teardown(pcap, teardown::LIMIT);
    Ok(capture.stop()?)
}

/// The files a run writes into its folder `--out/<stamp>/`, the HTML
/// report (the one to open first) first.
pub(crate) const OUTPUT_FILES: [&str; 5] = [
    "report.html",
    "reqresp.pcap",
    "report.txt",
    "report.json",
    "ladder.svg",
];

/// Reads the capture back and analyses it; `server` says which side is
/// the server should the capture have missed the SYN.
pub(crate) fn analyze_capture(pcap: &Path, server: SocketAddr) -> Result<Analysis, LabError> {
    let err = |message: String| LabError::Analyze {
        path: pcap.into(),
        message,
    };
    let file = std::fs::File::open(pcap).map_err(|e| err(e.to_string()))?;
    let options = AnalyzeOptions {
        server: Some(server),
        // The JSON and HTML reports list each message's packets.
        keep_packets: true,
        ..AnalyzeOptions::default()
    };
    crate::analyze::analyze_capture(std::io::BufReader::new(file), options, |_| {})
        .map_err(|e| err(e.to_string()))
}

/// Analyses the run's capture, writes the four reports next to it and
/// prints the text one.
fn report(run_dir: &RunDir, server: SocketAddr, out: &mut dyn Write) -> Result<(), LabError> {
    let analysis = analyze_capture(&run_dir.path().join("reqresp.pcap"), server)?;
    let pcap = run_dir.final_path().join("reqresp.pcap");
    let write = |name: &str, format: Format, render_options: &RenderOptions| {
        let path = run_dir.path().join(name);
        let mut bytes = Vec::new();
        report::render(&analysis, format, render_options, &mut bytes)
            .and_then(|()| std::fs::write(&path, &bytes))
            .map_err(|source| LabError::Output { path, source })
    };
    let files = RenderOptions {
        title: Some(format!("reqresp lab: {}", pcap.display())),
        ..RenderOptions::default()
    };
    write("report.txt", Format::Text, &files)?;
    write("report.json", Format::Json, &files)?;
    write("ladder.svg", Format::Svg, &files)?;
    write("report.html", Format::Html, &outdir::html_options(&pcap))?;
    let _ = writeln!(out);
    report::render(&analysis, Format::Text, &RenderOptions::for_stdout(), out).map_err(|source| {
        LabError::Output {
            path: "standard output".into(),
            source,
        }
    })
}

/// Moves the complete run into place, then says where everything is.
fn print_files(options: &LabOptions, run_dir: RunDir, out: &mut dyn Write) -> Result<(), LabError> {
    let latest = run_dir.latest();
    let dir = run_dir.commit().map_err(|source| LabError::Output {
        path: options.out.clone(),
        source,
    })?;
    outdir::give_to_sudo_user(&options.out, &dir, &latest);
    let shown = dir.display();
    let _ = writeln!(out, "\nthis run's files, in {shown}/:");
    for file in OUTPUT_FILES {
        let _ = writeln!(out, "  {shown}/{file}{}", outdir::describe(file));
    }
    if outdir::latest_run(&options.out).as_deref() == Some(dir.as_path()) {
        let _ = writeln!(
            out,
            "{} points at it; earlier runs stay in their own folders in {}/",
            latest.display(),
            options.out.display()
        );
    }
    if options.service == LabService::Tickets && dir.join(TICKETS_DB).exists() {
        let _ = writeln!(
            out,
            "  {shown}/{TICKETS_DB}  (the ticket ledger, SQLite: sqlite3 {shown}/{TICKETS_DB} 'SELECT * FROM bookings')"
        );
    }
    let _ = writeln!(
        out,
        "open the capture:\n  wireshark {shown}/reqresp.pcap\n  tcpdump -nr {shown}/reqresp.pcap\n  {} analyze {shown}/reqresp.pcap",
        options.exe.display()
    );
    Ok(())
}

fn print_keep_help(names: &names::LabNames, exe: &Path, out: &mut dyn Write) {
    let exe = exe.display();
    let srv = &names.server;
    let cli = &names.client;
    let _ = writeln!(
        out,
        "
the topology stays up (--keep). Do the lab's steps by hand:
  step 2, capture on the bridge:   sudo tcpdump -nvi {br} -w reqresp.pcap
     (or with reqresp itself:      sudo {exe} capture --promisc -i {br} -w reqresp.pcap)
  enter the server host:           sudo ip netns exec {sns} bash
  step 3, run the server there:    sudo ip netns exec {sns} {exe} server --listen {sip}:{port}
  step 4, run the client:          sudo ip netns exec {cns} {exe} client {sip}:{port}
  (or enter the client host:       sudo ip netns exec {cns} bash)
when done, remove it:              sudo {exe} lab --down",
        br = names.bridge,
        sns = srv.netns,
        cns = cli.netns,
        sip = srv.ip,
        port = DEFAULT_PORT,
    );
}

/// Removes every topology left by `--keep` or by a killed run; prints what
/// it did. Topologies of runs still going are left alone.
pub fn down(verbose: bool, out: &mut dyn Write) -> Result<usize, TopologyError> {
    let outcomes = topology::down(verbose)?;
    let mut removed = 0;
    if outcomes.is_empty() {
        let _ = writeln!(out, "no lab topology to remove");
    }
    for outcome in outcomes {
        match outcome {
            topology::DownOutcome::Removed(state) => {
                removed += 1;
                let n = &state.names;
                let _ = writeln!(
                    out,
                    "removed {}: namespaces {} and {}",
                    n.bridge, n.server.netns, n.client.netns
                );
            }
            topology::DownOutcome::BridgeLeft(state, why) => {
                removed += 1;
                let n = &state.names;
                let _ = writeln!(
                    out,
                    "removed namespaces {} and {} and their veths; left the bridge {} in place: {why}.\n  Its users (the Docker lab of compose/reqresp.yml attaches to an existing bridge of that name) keep their network.\n  Run `reqresp lab --down` again once they are gone (`docker compose -f compose/reqresp.yml down`) to remove it.",
                    n.server.netns, n.client.netns, n.bridge
                );
            }
            topology::DownOutcome::InUse(state) => {
                let _ = writeln!(
                    out,
                    "left {} alone: its lab (pid {}) is still running",
                    state.names.bridge, state.names.pid
                );
            }
            topology::DownOutcome::Failed(state, errors) => {
                let _ = writeln!(out, "could not fully remove {}:", state.names.bridge);
                for err in &errors {
                    let _ = writeln!(out, "  {err}");
                }
                return Err(errors.into_iter().next().expect("failed with errors"));
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
