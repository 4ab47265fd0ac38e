//! `reqresp lab --server-cmd CMD` and `--client-cmd CMD`: a user's own
//! program on one of the lab's hosts, in place of `reqresp server` or
//! `reqresp client`.
//!
//! - **A user's server** runs on the server host (its namespace, port
//!   [`DEFAULT_PORT`], working directory `--server-dir`) through `sh -c`. The
//!   lab waits until something in that namespace listens on the port (read
//!   from `/proc/PID/net/tcp`, so no probe connection spends the only client
//!   of a server that serves one), runs the lab's client against it (its
//!   ladder is the run's `reqresp.pcap`), then `reqresp check` from the
//!   client host: a thread enters the client's namespace and runs
//!   [`crate::check::run`] there, one case at a time (`--only CASE`), with
//!   the check's own capture on the client's `eth0`, so each failed case has
//!   its own packets. A server that exits (the original lab's serves one
//!   client, then exits) is started again before the next case, and the
//!   report says how often and after which cases.
//! - **A user's client** runs on the client host against `reqresp server`,
//!   with the lab's requests on its stdin and `REQRESP_SERVER` set to the
//!   server's address. The capture's analysis then says in plain words
//!   whether it framed its messages and how it closed.
//!
//! Cleanup: a user's program runs in a process group of its own; it gets
//! SIGTERM, and SIGKILL after the drain timeout. Then every process still in
//! the host's namespace (a child that left the group, a daemon) is killed by
//! its PID before the namespaces go, so nothing outlives the run.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::analyze::model::{Analysis, CloseKind, Side};
use crate::capture::{Capture, CaptureConfig};
use crate::check::{self, CaseId, CheckConfig, CheckReport, Lang};
use crate::human::format_duration;
use crate::protocol::Framing;

use super::names::LabNames;
use super::outdir::RunDir;
use super::process::{self, Process, ProcessError};
use super::topology::Topology;
use super::{LabError, LabOptions, signals};
use crate::protocol::DEFAULT_PORT;
use program::{Ending, UserProgram, describe, namespace_listens};

/// How long a user's server may take to listen on the lab's port.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);
/// How long a user's client may take for the whole script.
const USER_CLIENT_LIMIT: Duration = Duration::from_secs(20);
/// After a case, how long a server that is about to exit (it served its one
/// client) is given to do so before the next case starts.
const EXIT_GRACE: Duration = Duration::from_millis(300);
/// The user's server's output, in the run's folder.
pub(crate) const SERVER_LOG: &str = "server.log";
/// The user's client's output, in the run's folder.
pub(crate) const CLIENT_LOG: &str = "client.log";
/// The most restarts of a user's server in one run.
const MAX_RESTARTS: usize = 40;

/// A user's program and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCmd {
    /// A shell command line, run with `sh -c`.
    pub command: String,
    /// Its working directory (`None`: the lab's).
    pub dir: Option<PathBuf>,
}

/// What `--server-cmd` / `--client-cmd` ask for.
#[derive(Debug, Clone)]
pub struct UserOptions {
    /// The user's server, in place of `reqresp server`.
    pub server: Option<UserCmd>,
    /// The user's client, in place of `reqresp client`.
    pub client: Option<UserCmd>,
    /// The framing the user's program speaks (the lab's own client, server
    /// and the check use it).
    pub framing: Framing,
    /// How long a user's program has to exit after SIGTERM before SIGKILL.
    pub drain: Duration,
}

/// Why a run with a user's program failed.
#[derive(Debug, thiserror::Error)]
pub enum UserCmdError {
    /// The lab itself failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// Not allowed to build namespaces.
    #[error(
        "--server-cmd and --client-cmd run the program on a lab host, a network namespace: run as root (sudo reqresp lab ...); loopback is not supported for them"
    )]
    NeedsNetns,
    /// Both were given, or neither.
    #[error(
        "give one of --server-cmd and --client-cmd: the lab judges one program at a time against its own other side"
    )]
    OneProgram,
    /// The user's server never listened.
    #[error(
        "the server `{command}` did not listen on port {port} within {limit:?} (it must listen on 0.0.0.0:{port} or the server host's address){}", stderr_note(.stderr)
    )]
    NotListening {
        /// The command.
        command: String,
        /// The port waited for.
        port: u16,
        /// How long.
        limit: Duration,
        /// Its output so far.
        stderr: String,
    },
    /// The user's server exited before listening.
    #[error("the server `{command}` exited ({status}) before listening on port {port}{}", stderr_note(.stderr))]
    ExitedEarly {
        /// The command.
        command: String,
        /// How it ended.
        status: String,
        /// The port waited for.
        port: u16,
        /// Its output.
        stderr: String,
    },
    /// The thread in the client's namespace could not run the check.
    #[error("running the check from the client host: {0}")]
    Check(String),
}

fn stderr_note(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its output:\n{stderr}")
    }
}

impl From<ProcessError> for UserCmdError {
    fn from(err: ProcessError) -> Self {
        UserCmdError::Lab(err.into())
    }
}

/// How a run went, for the CLI.
#[derive(Debug)]
pub struct UserOutcome {
    /// The check's report (with `--server-cmd`).
    pub check: Option<CheckReport>,
    /// The plain-words findings about a user's client (with `--client-cmd`).
    pub client_findings: Vec<String>,
}

impl UserOutcome {
    /// True when the user's program did everything right: no check case
    /// failed and no finding about the client is a problem.
    pub fn passed(&self) -> bool {
        self.check.as_ref().is_none_or(CheckReport::passed)
            && !self
                .client_findings
                .iter()
                .any(|f| f.starts_with("problem"))
    }
}

/// `sh -c CMD` on a lab host, in `dir`, with the server's address in the
/// environment (`REQRESP_SERVER`, `REQRESP_PORT`) and its output appended
/// to `log` (a file, so a chatty program costs the lab no memory).
pub(crate) fn user_command(netns: &str, user: &UserCmd, server: SocketAddr, log: &Path) -> Command {
    let script = format!(
        "exec >>{} 2>&1\n{}",
        process::shell_quote(&log.to_string_lossy()),
        user.command
    );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, "sh", "-c", &script])
        .env("REQRESP_SERVER", server.ip().to_string())
        .env("REQRESP_PORT", server.port().to_string());
    if let Some(dir) = &user.dir {
        cmd.current_dir(dir);
    }
    cmd
}

/// Starts the user's server and waits until it listens.
fn start_server(
    names: &LabNames,
    user: &UserCmd,
    options: &UserOptions,
    server: SocketAddr,
    log: &Path,
) -> Result<UserProgram, UserCmdError> {
    let cmd = user_command(&names.server.netns, user, server, log);
    let mut program = UserProgram::spawn("server", cmd, &names.server.netns, options.drain)?;
    let deadline = Instant::now() + LISTEN_LIMIT;
    loop {
        if let Some(signal) = signals::interrupted() {
            return Err(LabError::Interrupted(signal).into());
        }
        if program.gone() {
            let (ending, _) = program.stop();
            return Err(UserCmdError::ExitedEarly {
                command: user.command.clone(),
                status: match ending {
                    Ending::Exited(status) => status,
                    other => format!("{other:?}"),
                },
                port: DEFAULT_PORT,
                stderr: tail(log),
            });
        }
        if namespace_listens(program.process.pid(), DEFAULT_PORT) {
            return Ok(program);
        }
        if Instant::now() >= deadline {
            return Err(UserCmdError::NotListening {
                command: user.command.clone(),
                port: DEFAULT_PORT,
                limit: LISTEN_LIMIT,
                stderr: tail(log),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The end of a log (at most its last 4 KiB), for messages.
fn tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 4096;
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = file.take(MAX).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// Runs the lab with a user's server or client.
pub fn run(
    lab: &LabOptions,
    user: &UserOptions,
    out: &mut dyn Write,
) -> Result<UserOutcome, UserCmdError> {
    if user.server.is_some() == user.client.is_some() {
        return Err(UserCmdError::OneProgram);
    }
    let _signals = signals::SignalGuard::install();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || lab.mode == super::Mode::Loopback {
        return Err(UserCmdError::NeedsNetns);
    }
    let run_dir = RunDir::create(&lab.out).map_err(|source| LabError::Output {
        path: lab.out.clone(),
        source,
    })?;
    let topology = Topology::create(std::process::id(), lab.verbose).map_err(LabError::from)?;
    let names = topology.names().clone();
    let _ = writeln!(
        out,
        "mode: network namespaces\n  bridge {}, server host {} ({}), client host {} ({})",
        names.bridge, names.server.netns, names.server.ip, names.client.netns, names.client.ip
    );
    let server = SocketAddr::from((names.server.ip, DEFAULT_PORT));
    let outcome = match &user.server {
        Some(cmd) => run_user_server(lab, user, cmd, &names, server, &run_dir, out)?,
        None => {
            let cmd = user.client.as_ref().ok_or(UserCmdError::OneProgram)?;
            run_user_client(lab, user, cmd, &names, server, &run_dir, out)?
        }
    };
    let dir = run_dir.final_path();
    super::print_files(lab, run_dir, out)?;
    let extras: Vec<PathBuf> = [
        SERVER_LOG,
        CLIENT_LOG,
        "check.txt",
        "check.json",
        "client.txt",
        "check",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.exists())
    .collect();
    give_to_sudo_user(&extras);
    let extras: Vec<String> = extras.iter().map(|p| p.display().to_string()).collect();
    if !extras.is_empty() {
        let _ = writeln!(
            out,
            "and, for your program: {}{}",
            extras.join(", "),
            if dir.join("check").exists() {
                " (check/ holds each failed case's packets and ladder)"
            } else {
                ""
            }
        );
    }
    let mut topology = topology;
    if let Some(err) = topology.teardown().into_iter().next() {
        return Err(LabError::from(err).into());
    }
    let _ = writeln!(out, "topology removed");
    Ok(outcome)
}

/// Under sudo, hands the files written for the user's program (and those
/// in `check/`) to the user who ran sudo, as the lab does with its reports.
fn give_to_sudo_user(paths: &[PathBuf]) {
    let id = |var| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) else {
        return;
    };
    for path in paths {
        let inner: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        for p in inner.iter().chain(std::iter::once(path)) {
            let _ = std::os::unix::fs::chown(p, Some(uid), Some(gid));
        }
    }
}

/// Starts the lab's capture on the bridge into the run's `reqresp.pcap`.
fn start_capture(
    names: &LabNames,
    run_dir: &RunDir,
    out: &mut dyn Write,
) -> Result<crate::capture::CaptureHandle, LabError> {
    let mut config = CaptureConfig::new(names.bridge.clone(), run_dir.path().join("reqresp.pcap"));
    // The bridge shows its ports' frames only in promiscuous mode.
    config.promiscuous = true;
    let capture = Capture::start(config)?;
    let _ = writeln!(
        out,
        "capturing on {} into {}",
        names.bridge,
        run_dir.final_path().join("reqresp.pcap").display()
    );
    Ok(capture)
}

fn framing_arg(framing: Framing) -> [String; 2] {
    ["--framing".to_string(), framing.to_string()]
}

/// Points the merged report at its evidence: each case had its own capture
/// on the client host (the failed ones' packets are kept), and the files
/// are where the run folder ends up.
fn place_evidence(report: &mut CheckReport, names: &LabNames, run_dir: &RunDir) {
    if let check::Evidence::Capture { interface, file } = &mut report.evidence {
        *interface = format!("{interface} of the client host {}", names.client.netns);
        *file = None;
    }
    relocate(report, run_dir.path(), &run_dir.final_path());
}

/// The lab's own client against the user's server, its exchange printed.
fn run_lab_client(
    lab: &LabOptions,
    user: &UserOptions,
    names: &LabNames,
    server: SocketAddr,
    out: &mut dyn Write,
) -> Result<(), UserCmdError> {
    let messages = super::script(lab.service, lab.tickets, &lab.messages);
    let mut args = super::client_args(server, &messages);
    args.splice(1..1, framing_arg(user.framing));
    let client_cmd = super::in_netns(&names.client.netns, &lab.exe, &args);
    let _ = writeln!(out, "client: {}", process::display(&client_cmd));
    let mut client = Process::spawn("client", client_cmd)?;
    let status = client.wait(super::CLIENT_LIMIT);
    let responses = client.remaining_stdout();
    for (i, request) in messages.iter().enumerate() {
        let response = responses.get(i).map_or("(no response)", String::as_str);
        let _ = writeln!(out, "  > {request}\n  < {response}");
    }
    match status {
        Ok(s) if s.success() => {
            let _ = writeln!(out, "client closed the connection");
        }
        Ok(s) => {
            let _ = writeln!(out, "the client failed ({s}): {}", client.stderr().trim());
        }
        Err(ProcessError::Interrupted(signal)) => return Err(LabError::Interrupted(signal).into()),
        Err(err) => {
            let _ = writeln!(out, "the client did not finish: {err}");
        }
    }
    Ok(())
}

/// `--server-cmd`: the lab's client, then the check, against the user's server.
fn run_user_server(
    lab: &LabOptions,
    user: &UserOptions,
    cmd: &UserCmd,
    names: &LabNames,
    server: SocketAddr,
    run_dir: &RunDir,
    out: &mut dyn Write,
) -> Result<UserOutcome, UserCmdError> {
    let capture = start_capture(names, run_dir, out)?;
    let log = run_dir.path().join(SERVER_LOG);
    let _ = writeln!(
        out,
        "server: {} (sh -c, on the server host {}{}; its output goes to {})",
        cmd.command,
        names.server.netns,
        cmd.dir
            .as_ref()
            .map(|d| format!(", in {}", d.display()))
            .unwrap_or_default(),
        run_dir.final_path().join(SERVER_LOG).display()
    );
    let mut program = start_server(names, cmd, user, server, &log)?;
    let _ = writeln!(
        out,
        "server listening on port {DEFAULT_PORT} (pid {})",
        program.process.pid()
    );

    // The lab's own client, as in a plain run: its exchange is the ladder.
    run_lab_client(lab, user, names, server, out)?;
    let stats = super::stop_capture(capture, &run_dir.path().join("reqresp.pcap"))?;
    let _ = writeln!(out, "capture stopped: {stats}");
    super::report(run_dir, server, out)?;
    super::check_interrupt()?;

    // The check, from the client host, one case at a time.
    let check_dir = run_dir.path().join("check");
    let config = CheckConfig {
        framing: user.framing,
        service: match lab.service {
            super::LabService::Echo => crate::server::ServiceKind::Echo,
            super::LabService::Tickets => crate::server::ServiceKind::Tickets,
        },
        out: Some(check_dir.clone()),
        ..CheckConfig::new(server.to_string())
    };
    let _ = writeln!(
        out,
        "\nreqresp check {server} --framing {} from the client host, one case at a time (--only CASE), capturing on its eth0; a server that exits is started again before the next case",
        user.framing
    );
    let mut reports: Vec<CheckReport> = Vec::new();
    // Why the server went down, with the step after which it did.
    let mut restarts: Vec<(String, String)> = Vec::new();
    for case in CaseId::plan(None, config.service) {
        super::check_interrupt()?;
        // Give a server that served its one client the moment to exit.
        let grace = Instant::now() + EXIT_GRACE;
        while !program.gone() && Instant::now() < grace && !reports.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if program.gone() || !namespace_listens(program.process.pid(), DEFAULT_PORT) {
            let after = reports
                .last()
                .and_then(|r| r.cases.last())
                .map_or("the lab's client".to_string(), |c| format!("`{}`", c.case));
            if restarts.len() >= MAX_RESTARTS {
                return Err(UserCmdError::Check(format!(
                    "the server went down {MAX_RESTARTS} times; stopped restarting it"
                )));
            }
            let why = match program.stop().0 {
                Ending::Exited(status) => format!("exited ({status})"),
                _ => "stopped listening (and was stopped)".to_string(),
            };
            restarts.push((after, why));
            program = start_server(names, cmd, user, server, &log)?;
        }
        let config = CheckConfig {
            only: Some(vec![case]),
            ..config.clone()
        };
        let report = check_in_netns(&names.client.netns, config)?;
        if let Some(c) = report.cases.first() {
            let _ = writeln!(out, "  {:<11} {}", c.case.name(), c.outcome.word(Lang::En));
        }
        let _ = std::fs::remove_file(check_dir.join("check.pcap"));
        reports.push(report);
    }
    let (ending, strays) = program.stop();
    let mut report = merge(reports).ok_or_else(|| UserCmdError::Check("no case ran".into()))?;
    if !restarts.is_empty() {
        report.notes.push(restart_note(&restarts));
    }
    place_evidence(&mut report, names, run_dir);
    let text = check::text::render(&report, Lang::En);
    let _ = writeln!(out, "\n{text}");
    let _ = writeln!(out, "your server {}", describe(&ending, user.drain));
    if strays > 0 {
        let _ = writeln!(
            out,
            "{strays} process(es) it left in the server host were killed"
        );
    }
    write_file(run_dir, "check.txt", text.as_bytes())?;
    write_file(
        run_dir,
        "check.json",
        check::json::render(&report).as_bytes(),
    )?;
    Ok(UserOutcome {
        check: Some(report),
        client_findings: Vec::new(),
    })
}

fn write_file(run_dir: &RunDir, name: &str, bytes: &[u8]) -> Result<(), LabError> {
    let path = run_dir.path().join(name);
    std::fs::write(&path, bytes).map_err(|source| LabError::Output { path, source })
}

/// The report's note on restarts: why the server went down, after which
/// steps.
pub(crate) fn restart_note(restarts: &[(String, String)]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (after, why) in restarts {
        match groups.iter_mut().find(|(w, _)| w == why) {
            Some((_, steps)) => steps.push(after),
            None => groups.push((why, vec![after])),
        }
    }
    let list = groups
        .iter()
        .map(|(why, steps)| format!("{why} after {}", steps.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "the server went down {} time(s) and was started again before the next case (each case ran on its own, --only CASE): {list}. A server that exits after one client fails `sequential`; the other cases each saw a fresh server.",
        restarts.len()
    )
}

/// One report of the per-case reports, in their order; notes gathered.
pub(crate) fn merge(reports: Vec<CheckReport>) -> Option<CheckReport> {
    let mut reports = reports.into_iter();
    let mut merged = reports.next()?;
    for report in reports {
        merged.cases.extend(report.cases);
        merged.duration += report.duration;
        for note in report.notes {
            if !merged.notes.contains(&note) {
                merged.notes.push(note);
            }
        }
    }
    Some(merged)
}

/// Points the report's files at the run's final folder.
fn relocate(report: &mut CheckReport, from: &Path, to: &Path) {
    let fix = |p: &mut PathBuf| {
        if let Ok(rest) = p.strip_prefix(from) {
            *p = to.join(rest);
        }
    };
    for case in &mut report.cases {
        if let Some(file) = case.ladder_file.as_mut() {
            fix(file);
        }
        if let Some(file) = case.capture.as_mut().and_then(|c| c.file.as_mut()) {
            fix(file);
        }
    }
    if let check::Evidence::Capture {
        file: Some(file), ..
    } = &mut report.evidence
    {
        fix(file);
    }
}

/// Runs [`check::run`] on a thread that has entered the network namespace
/// `netns`: its sockets and its capture are the client host's.
fn check_in_netns(netns: &str, config: CheckConfig) -> Result<CheckReport, UserCmdError> {
    let path = Path::new("/run/netns").join(netns);
    let thread = std::thread::spawn(move || -> Result<CheckReport, String> {
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: setns on an open namespace file; it moves only this thread
        // (and the threads it starts) into that network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot enter {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(check::run(&config, |_| {}))
            .map_err(|e| e.to_string())
    });
    thread
        .join()
        .map_err(|_| UserCmdError::Check("the check's thread panicked".into()))?
        .map_err(UserCmdError::Check)
}

/// `--client-cmd`: the user's client against `reqresp server`.
fn run_user_client(
    lab: &LabOptions,
    user: &UserOptions,
    cmd: &UserCmd,
    names: &LabNames,
    server: SocketAddr,
    run_dir: &RunDir,
    out: &mut dyn Write,
) -> Result<UserOutcome, UserCmdError> {
    let capture = start_capture(names, run_dir, out)?;
    let mut extra = framing_arg(user.framing).to_vec();
    extra.extend(lab.server_args.iter().cloned());
    let server_cmd = super::in_netns(
        &names.server.netns,
        &lab.exe,
        &super::server_args(server, lab.service, lab.tickets, run_dir.path(), &extra),
    );
    let _ = writeln!(out, "server: {}", process::display(&server_cmd));
    let mut reqresp_server = Process::spawn("server", server_cmd)?;
    let line = reqresp_server.wait_for_line("listening on ", super::SERVER_START)?;
    let _ = writeln!(
        out,
        "server listening on {line} (pid {})",
        reqresp_server.pid()
    );

    let messages = super::script(lab.service, lab.tickets, &lab.messages);
    let log = run_dir.path().join(CLIENT_LOG);
    let client_cmd = user_command(&names.client.netns, cmd, server, &log);
    let _ = writeln!(
        out,
        "client: {} (sh -c, on the client host {}{}; REQRESP_SERVER={}, REQRESP_PORT={DEFAULT_PORT}; the lab's {} requests on its stdin, one a line; its output goes to {})",
        cmd.command,
        names.client.netns,
        cmd.dir
            .as_ref()
            .map(|d| format!(", in {}", d.display()))
            .unwrap_or_default(),
        server.ip(),
        messages.len(),
        run_dir.final_path().join(CLIENT_LOG).display()
    );
    let (process, mut stdin) = Process::spawn_with_stdin("client", client_cmd)?;
    let mut client = UserProgram::of(process, &names.client.netns, user.drain);
    let script: String = messages.iter().map(|m| format!("{m}\n")).collect();
    // A client that never reads its stdin must not block the lab: the pipe
    // holds the short script; a failed write is only noted.
    if let Err(err) = stdin.write_all(script.as_bytes()) {
        let _ = writeln!(out, "could not give the client its requests: {err}");
    }
    drop(stdin);
    let finished = match client.process.wait(USER_CLIENT_LIMIT) {
        Ok(status) => Some(status),
        Err(ProcessError::Interrupted(signal)) => return Err(LabError::Interrupted(signal).into()),
        Err(_) => None,
    };
    let (ending, strays) = client.stop();
    for line in tail(&log).lines().take(40) {
        let _ = writeln!(out, "  | {line}");
    }
    let ended = match (finished, &ending) {
        (Some(status), _) => format!("your client exited ({status})"),
        (None, ending) => format!(
            "problem: your client did not finish within {} s; it {}",
            USER_CLIENT_LIMIT.as_secs(),
            describe(ending, user.drain)
        ),
    };
    if strays > 0 {
        let _ = writeln!(
            out,
            "{strays} process(es) it left in the client host were killed"
        );
    }
    super::check_interrupt()?;
    super::stop_server(&mut reqresp_server, out);
    let stats = super::stop_capture(capture, &run_dir.path().join("reqresp.pcap"))?;
    let _ = writeln!(out, "capture stopped: {stats}");
    super::report(run_dir, server, out)?;
    let analysis = super::analyze_capture(&run_dir.path().join("reqresp.pcap"), server)?;
    let mut findings = vec![ended];
    findings.extend(judge_client(&analysis, user.framing, messages.len()));
    let mut text = String::from("what your client did on the wire:\n");
    for finding in &findings {
        let _ = writeln!(text, "  - {finding}");
    }
    let _ = write!(out, "\n{text}");
    write_file(run_dir, "client.txt", text.as_bytes())?;
    Ok(UserOutcome {
        check: None,
        client_findings: findings,
    })
}

/// What a client did, in plain words, from the capture's analysis: whether
/// it connected, framed its messages the way the server expects, got its
/// answers and closed with FIN. Lines that start with `problem` are faults.
pub(crate) fn judge_client(analysis: &Analysis, expected: Framing, requests: usize) -> Vec<String> {
    let mut findings = Vec::new();
    let Some(conn) = analysis.connections.first() else {
        findings.push(format!(
            "problem: no connection to the server was seen (does the client connect to $REQRESP_SERVER port {DEFAULT_PORT}?)"
        ));
        return findings;
    };
    if analysis.connections.len() > 1 {
        findings.push(format!(
            "it opened {} connections (the first is judged)",
            analysis.connections.len()
        ));
    }
    let sent = conn.bytes_client_to_server;
    let answered = conn
        .exchanges
        .iter()
        .filter(|e| e.response_bytes > 0)
        .count();
    findings.push(format!(
        "it sent {sent} bytes in {} message(s) and got {answered} answer(s); the lab gave it {requests} request(s)",
        conn.exchanges.iter().filter(|e| e.request_bytes > 0).count()
    ));
    match conn.framing {
        Framing::Line => findings.push(
            "it framed its messages: each ends with a newline (line framing)".to_string(),
        ),
        Framing::Length => findings.push(
            "it framed its messages: each starts with its length (length framing)".to_string(),
        ),
        Framing::Raw if sent == 0 => {}
        Framing::Raw => findings.push(
            "problem: it did not frame its messages: no newline at the end and no length in front, so the server can only guess where one ends (it takes whatever one read returns; two messages sent close together arrive as one)".to_string(),
        ),
    }
    if sent > 0 && conn.framing != expected {
        let hint = if conn.framing == Framing::Raw {
            " and waited for the end of a message that never came (--framing raw runs it the original lab's way: each read is a message)"
        } else {
            ""
        };
        findings.push(format!(
            "problem: the server expected {expected} framing, the client used {}{hint}",
            conn.framing
        ));
    }
    match &conn.close {
        Some(close) => match close.events.iter().find(|e| e.from == Side::Client) {
            Some(e) if e.kind == CloseKind::Fin => findings.push(format!(
                "it closed cleanly with FIN{}",
                if close.initiator == Side::Client {
                    ", first"
                } else {
                    ", after the server"
                }
            )),
            Some(_) => findings.push(
                "problem: it reset the connection (RST) instead of closing with FIN: answers still in flight are destroyed (is it closing with unread data, or with SO_LINGER 0?)".to_string(),
            ),
            None => findings.push(
                "problem: the server closed, the client never did (no FIN from it)".to_string(),
            ),
        },
        None => findings.push(
            "problem: it never closed the connection (no FIN or RST from either side)"
                .to_string(),
        ),
    }
    findings
}

mod program;
#[cfg(test)]
mod tests;
