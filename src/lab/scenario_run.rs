//! Runs a [`Scenario`] (or a `--fault` of one's own) in the namespace lab:
//! topology, capture, faults, server(s) and clients as the scenario's
//! [`Plan`] says, then the analysis, the reports and the explanation.
//!
//! The files go where a plain `reqresp lab` run puts them (`super::outdir`):
//! built in a hidden `--out/.<time>.partial/`, renamed to `--out/<time>/`
//! once all are written, and `--out/latest` pointed at it. A failed or
//! interrupted run removes its partial folder, so a folder with a plain
//! name is always a complete run, and a scenario run twice keeps both.
//!
//! Besides the lab's usual files, a run writes `scenario.json`: what each
//! client sent, got and printed as its error, how each fault was made, and
//! the retransmission runs (the same segment sent again and again, with the
//! gaps between the sends; see `super::scenario_record`). The end-to-end
//! tests read it together with `report.json`'s `events`.
//!
//! Every resource is a guard dropped in reverse order: clients and servers
//! (`Process`), the faults (`Faults`), the capture, the topology. The
//! faults live in the lab's namespaces, so a SIGKILL leaves nothing that
//! `reqresp lab --down` does not remove.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::faults::{self, FaultError, FaultSpec, Faults};
use super::names::LabNames;
use super::outdir::{self, RunDir};
use super::process::{self, Process, ProcessError};
use super::scenario::{self, CUSTOM_EN, CUSTOM_ID, Lang, Plan, Scenario};
use super::scenario_record::{
    ClientRecord, ScenarioRecord, exchanges_hit, retransmission_runs, scenario_section,
};
use super::topology::{Topology, TopologyError};
use super::{LabService, analyze_capture, client_args, in_netns, server_args, signals};
use crate::analyze::model::Analysis;
use crate::capture::{Capture, CaptureConfig, CaptureError};
use crate::protocol::DEFAULT_PORT;
use crate::report::{self, Format, RenderOptions};

/// The original lab's Python server, run by `one-client-server`.
const PYTHON_SERVER: &str = include_str!("../../contrib/lab-python/server.py");
/// Its file name in the run's folder.
const PYTHON_SERVER_FILE: &str = "lab-python-server.py";
/// How long a server may take to say it listens.
const SERVER_START: Duration = Duration::from_secs(10);
/// Margin over the client's own timeout before the lab stops waiting.
const MARGIN: Duration = Duration::from_secs(5);
/// The slow reader's server idle timeout.
const SLOW_READER_IDLE: Duration = Duration::from_secs(3);
/// Most bytes the slow reader sends.
const SLOW_READER_MAX: usize = 16 * 1024 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// The scenario; `None` with `fault` set runs a paced client under that fault.
    pub scenario: Option<&'static Scenario>,
    /// `--fault`: replaces the scenario's own fault when given.
    pub fault: Option<FaultSpec>,
    /// Language of the explanation on standard output (report.txt has both).
    pub lang: Lang,
    /// Base output directory: the run's files go to a new `out/<time>/`
    /// and `out/latest` points at it (`super::outdir`).
    pub out: PathBuf,
    /// Print every command.
    pub verbose: bool,
    /// The `reqresp` binary to run as server and client.
    pub exe: PathBuf,
}

/// Why a scenario could not run (a client failing is not one: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Scenarios need namespaces.
    #[error(
        "scenarios and faults run in the lab's network namespaces, which need root: run `sudo reqresp lab --scenario ...`"
    )]
    NeedsRoot,
    /// The topology failed.
    #[error("building the lab network")]
    Topology(#[from] TopologyError),
    /// A fault could not be set up.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// A server or client could not run.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The capture failed.
    #[error("capturing the lab's traffic")]
    Capture(#[from] CaptureError),
    /// Analysis or report failed.
    #[error(transparent)]
    Lab(#[from] super::LabError),
    /// A file could not be written.
    #[error("writing {path}: {source} (choose another directory with --out)")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A program the scenario needs is missing.
    #[error("{0}")]
    Missing(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted: cleaned up and stopped")]
    Interrupted(i32),
}

fn check_interrupt() -> Result<(), ScenarioError> {
    match signals::interrupted() {
        Some(signal) => Err(ScenarioError::Interrupted(signal)),
        None => Ok(()),
    }
}

/// The plan of a `--fault` run without a scenario: ten requests spread so
/// that a partition falls among them.
fn custom_plan(spec: &FaultSpec) -> Plan {
    let span = faults::partition_span(spec);
    let gap = (span / 8).max(Duration::from_millis(100));
    Plan::Paced {
        messages: 10,
        gap,
        timeout: Duration::from_secs(10),
    }
}

/// Runs the scenario; progress and the report go to `out`.
pub fn run(
    options: &ScenarioOptions,
    out: &mut dyn Write,
) -> Result<ScenarioRecord, ScenarioError> {
    let _signals = signals::SignalGuard::install();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ScenarioError::NeedsRoot);
    }
    let spec = match (options.fault, options.scenario) {
        (Some(spec), _) => spec,
        (None, Some(s)) if !s.fault.is_empty() => s.fault.parse().expect("built-in faults parse"),
        _ => FaultSpec::default(),
    };
    let plan = options
        .scenario
        .map_or_else(|| custom_plan(&spec), |s| s.plan);
    let mut record = new_record(options.scenario, &spec);
    let run_dir = RunDir::create(&options.out).map_err(|source| ScenarioError::Output {
        path: options.out.clone(),
        source,
    })?;
    // Everything is written into the partial folder; paths shown to the
    // user (and the reports' titles) are where the files end up.
    let dir = run_dir.path().to_path_buf();
    let final_pcap = run_dir.final_path().join("reqresp.pcap");
    let say = |out: &mut dyn Write, text: &str| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    say(
        out,
        &format!("scenario: {}  (fault: {})", record.scenario, record.fault),
    );

    let topology = Topology::create(std::process::id(), options.verbose)?;
    let names = topology.names().clone();
    say(out, &describe_topology(&topology));
    let pcap = dir.join("reqresp.pcap");
    let mut config = CaptureConfig::new(names.bridge.clone(), pcap.clone());
    config.promiscuous = true;
    let capture = Capture::start(config)?;
    say(
        out,
        &format!(
            "capturing on {} into {}",
            names.bridge,
            final_pcap.display()
        ),
    );

    let hosts = [names.server.netns.clone(), names.client.netns.clone()];
    let mut faults = if spec.is_empty() {
        None
    } else {
        Some(Faults::apply(spec, &hosts, options.verbose)?)
    };
    if let Some(f) = &faults {
        record_faults(f, &mut record);
        say(out, "faults:");
        for line in &record.mechanisms {
            say(out, &format!("  {line}"));
        }
    }

    let mut ctx = Ctx {
        names: &names,
        exe: &options.exe,
        out: &dir,
        faults: faults.as_mut(),
        record: &mut record,
        started: None,
    };
    let ran = ctx.run_plan(plan, options.scenario.map_or(0, |s| s.server_delay_ms), out);
    let started = ctx.started;
    if let Some(f) = faults {
        remove_faults(f, started, &mut record);
    }
    super::teardown::wait_for_teardown(&pcap, super::teardown::LIMIT);
    let stats = capture.stop();
    ran?;
    let stats = stats?;
    say(out, &format!("capture stopped: {stats}"));

    let server = SocketAddr::from((names.server.ip, DEFAULT_PORT));
    let analysis = analyze_capture(&pcap, server)?;
    write_reports(&analysis, &mut record, &dir, &final_pcap)?;
    let _ = writeln!(out);
    let _ = report::render(&analysis, Format::Text, &RenderOptions::for_stdout(), out);
    let _ = write!(out, "{}", scenario_section(&record, Some(options.lang)));
    check_interrupt()?;
    print_files(&options.out, run_dir, out)?;

    let mut topology = topology;
    let errors = topology.teardown();
    if let Some(err) = errors.into_iter().next() {
        return Err(err.into());
    }
    say(
        out,
        &format!(
            "cleaned up: faults, namespaces {} and {}, bridge {} removed",
            names.server.netns, names.client.netns, names.bridge
        ),
    );
    Ok(record)
}

/// The record of a run before it starts: what it is and why.
fn new_record(scenario: Option<&Scenario>, spec: &FaultSpec) -> ScenarioRecord {
    ScenarioRecord {
        scenario: scenario.map_or("custom", |s| s.name).to_string(),
        fault: spec.to_string(),
        server_delay_ms: scenario.map_or(0, |s| s.server_delay_ms),
        explanation_en: scenario.map_or(CUSTOM_EN, |s| s.explain_en).to_string(),
        explanation_id: scenario.map_or(CUSTOM_ID, |s| s.explain_id).to_string(),
        ..ScenarioRecord::default()
    }
}

/// What the faults are and how they are made, into the record.
fn record_faults(f: &Faults, record: &mut ScenarioRecord) {
    record.mechanisms = f.describe();
    record.delay_mechanism = f.delay_mechanism().map(|m| {
        match m {
            faults::DelayMechanism::Netem => "netem",
            faults::DelayMechanism::Nfqueue => "nfqueue",
        }
        .to_string()
    });
}

/// Removes the faults after the run, recording what they did: packets
/// held, when a partition began and ended (since `started`), and any
/// error removing them.
fn remove_faults(mut f: Faults, started: Option<Instant>, record: &mut ScenarioRecord) {
    record.packets_held = f.packets_held();
    if let (Some(p), Some(t0)) = (f.partition(), started) {
        let log = p.log();
        let ms =
            |t: Option<Instant>| t.map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1e3);
        record.partition_ms = Some((ms(log.began), ms(log.ended)));
    }
    for err in f.remove() {
        record.notes.push(format!("removing a fault: {err}"));
    }
}

/// The line that tells what the topology is.
fn describe_topology(topology: &Topology) -> String {
    let names = topology.names();
    format!(
        "topology: bridge {} (ifindex {}), server host {} ({}, veth {}), client host {} ({}, veth {})",
        names.bridge,
        topology
            .bridge_ifindex()
            .map_or_else(|| "?".to_string(), |i| i.to_string()),
        names.server.netns,
        names.server.ip,
        names.server.veth,
        names.client.netns,
        names.client.ip,
        names.client.veth
    )
}

/// Writes the run's files into `dir`: report.txt (with the scenario's
/// section), report.json, ladder.svg, report.html and scenario.json; the
/// retransmissions and the exchanges they hit go into `record` first.
fn write_reports(
    analysis: &Analysis,
    record: &mut ScenarioRecord,
    dir: &Path,
    final_pcap: &Path,
) -> Result<(), ScenarioError> {
    let mut json = Vec::new();
    report::render(analysis, Format::Json, &RenderOptions::default(), &mut json).map_err(
        |source| ScenarioError::Output {
            path: dir.join("report.json"),
            source,
        },
    )?;
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    record.retransmission_runs = retransmission_runs(&value);
    record.exchanges_hit = exchanges_hit(&value);

    let files = RenderOptions {
        title: Some(format!(
            "reqresp lab --scenario {}: {}",
            record.scenario,
            final_pcap.display()
        )),
        ..RenderOptions::default()
    };
    let mut text = Vec::new();
    let rendered = report::render(analysis, Format::Text, &files, &mut text)
        .and_then(|()| {
            text.extend_from_slice(scenario_section(record, None).as_bytes());
            write_file(&dir.join("report.txt"), &text)
        })
        .and_then(|()| write_file(&dir.join("report.json"), &json))
        .and_then(|()| {
            let mut svg = Vec::new();
            report::render(analysis, Format::Svg, &files, &mut svg)?;
            write_file(&dir.join("ladder.svg"), &svg)
        })
        .and_then(|()| {
            let mut html = Vec::new();
            let options = outdir::html_options(final_pcap);
            report::render(analysis, Format::Html, &options, &mut html)?;
            write_file(&dir.join("report.html"), &html)
        })
        .and_then(|()| {
            let scenario_json = serde_json::to_vec_pretty(record).expect("record serializes");
            write_file(&dir.join("scenario.json"), &scenario_json)
        });
    rendered.map_err(|source| ScenarioError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// The files of a scenario run, the HTML report first.
const SCENARIO_FILES: [&str; 6] = [
    "report.html",
    "reqresp.pcap",
    "report.txt",
    "report.json",
    "ladder.svg",
    "scenario.json",
];

/// Moves the complete run into place and says which folder holds what.
fn print_files(base: &Path, run_dir: RunDir, out: &mut dyn Write) -> Result<(), ScenarioError> {
    let latest = run_dir.latest();
    let dir = run_dir.commit().map_err(|source| ScenarioError::Output {
        path: base.to_path_buf(),
        source,
    })?;
    outdir::give_to_sudo_user(base, &dir, &latest);
    let shown = dir.display();
    let _ = writeln!(out, "\nthis run's files, in {shown}/:");
    for file in SCENARIO_FILES {
        let what = match file {
            "report.txt" => {
                "  (the ladder and summary, then what happened in English and Indonesian)"
            }
            other => outdir::describe(other),
        };
        let _ = writeln!(out, "  {shown}/{file}{what}");
    }
    if dir.join(PYTHON_SERVER_FILE).exists() {
        let _ = writeln!(
            out,
            "  {shown}/{PYTHON_SERVER_FILE}  (the original lab's server, as run)"
        );
    }
    if outdir::latest_run(base).as_deref() == Some(dir.as_path()) {
        let _ = writeln!(
            out,
            "{} points at it; earlier runs stay in their own folders in {}/",
            latest.display(),
            base.display()
        );
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Cuts long text for the record.
fn short(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}… ({} bytes)", text.len())
}

struct Ctx<'a> {
    names: &'a LabNames,
    exe: &'a Path,
    out: &'a Path,
    faults: Option<&'a mut Faults>,
    record: &'a mut ScenarioRecord,
    /// When the (first) client started: the partition's clock.
    started: Option<Instant>,
}

impl Ctx<'_> {
    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.names.server.ip, port))
    }

    fn start_clock(&mut self) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
            if let Some(f) = self.faults.as_deref_mut() {
                f.start_clock();
            }
        }
    }

    /// Starts `reqresp server` in the server host on `port` with `extra` arguments.
    fn server(
        &mut self,
        port: u16,
        service: LabService,
        tickets: u64,
        extra: &[String],
        out: &mut dyn Write,
    ) -> Result<Process, ScenarioError> {
        let cmd = in_netns(
            &self.names.server.netns,
            self.exe,
            &server_args(self.addr(port), service, tickets, self.out, extra),
        );
        let _ = writeln!(out, "server: {}", process::display(&cmd));
        let mut server = Process::spawn("server", cmd)?;
        server.wait_for_line("listening on ", SERVER_START)?;
        Ok(server)
    }

    fn client_cmd(&self, args: &[String]) -> Command {
        in_netns(&self.names.client.netns, self.exe, args)
    }

    fn run_plan(
        &mut self,
        plan: Plan,
        server_delay_ms: u64,
        out: &mut dyn Write,
    ) -> Result<(), ScenarioError> {
        match plan {
            Plan::Paced {
                messages,
                gap,
                timeout,
            } => {
                let extra = if server_delay_ms > 0 {
                    vec!["--delay".to_string(), format!("{server_delay_ms}ms")]
                } else {
                    Vec::new()
                };
                let mut server = self.server(DEFAULT_PORT, LabService::Echo, 0, &extra, out)?;
                let requests: Vec<String> =
                    (1..=messages).map(|i| format!("request {i}")).collect();
                let record = self.paced(
                    DEFAULT_PORT,
                    "client",
                    &requests,
                    gap,
                    timeout,
                    out,
                    |_, _| Ok(()),
                )?;
                self.record.clients.push(record);
                server.stop(libc::SIGTERM, Duration::from_secs(5));
            }
            Plan::Crash => self.crash(out)?,
            Plan::RecvBug => self.recv_bug(out)?,
            Plan::OneClientServer => self.one_client_server(out)?,
            Plan::TicketsRace { clients, tickets } => self.tickets_race(clients, tickets, out)?,
            Plan::SlowReader => self.slow_reader(out)?,
        }
        Ok(())
    }

    /// One client fed its requests through stdin, one at a time, `gap`
    /// apart; `after(i, ctx)` runs after request `i` was answered.
    #[allow(clippy::too_many_arguments)]
    fn paced(
        &mut self,
        port: u16,
        label: &str,
        requests: &[String],
        gap: Duration,
        timeout: Duration,
        out: &mut dyn Write,
        mut after: impl FnMut(usize, &mut dyn Write) -> Result<(), ScenarioError>,
    ) -> Result<ClientRecord, ScenarioError> {
        let mut args = client_args(self.addr(port), &[]);
        args.pop(); // no `--`: requests come on stdin
        args.extend([
            "--timeout".to_string(),
            format!("{}", timeout.as_secs_f64()),
        ]);
        let cmd = self.client_cmd(&args);
        let mut record = ClientRecord {
            label: label.to_string(),
            command: format!("{} < requests", process::display(&cmd)),
            ..ClientRecord::default()
        };
        let _ = writeln!(out, "{label}: {}", record.command);
        let (mut client, mut stdin) = Process::spawn_with_stdin("client", cmd)?;
        self.start_clock();
        for (i, request) in requests.iter().enumerate() {
            check_interrupt()?;
            record.requests.push(short(request));
            if writeln!(stdin, "{request}")
                .and_then(|()| stdin.flush())
                .is_err()
            {
                break; // the client has gone: its error is read below
            }
            match client.wait_for_line("", timeout + MARGIN) {
                Ok(response) => {
                    let _ = writeln!(out, "  > {}\n  < {}", short(request), short(&response));
                    record.responses.push(short(&response));
                }
                Err(ProcessError::Interrupted(s)) => return Err(ScenarioError::Interrupted(s)),
                Err(_) => {
                    let _ = writeln!(out, "  > {}\n  < (no response)", short(request));
                    break;
                }
            }
            after(i, out)?;
            if i + 1 < requests.len() {
                std::thread::sleep(gap);
            }
        }
        drop(stdin);
        let status = client.wait(timeout + MARGIN);
        let error = client.stderr().trim().to_string();
        let success = matches!(status, Ok(s) if s.success());
        record.ok = success && record.responses.len() == requests.len();
        if !error.is_empty() || !success {
            record.error = Some(if error.is_empty() {
                format!("{status:?}")
            } else {
                error
            });
        }
        if let Some(e) = &record.error {
            let _ = writeln!(out, "  {label} error: {e}");
        }
        Ok(record)
    }

    /// Runs a client with `messages` as arguments to its end.
    fn once(
        &self,
        label: &str,
        port: u16,
        flags: &[&str],
        messages: &[String],
        expected: &[String],
    ) -> Result<(Process, ClientRecord), ScenarioError> {
        let mut args = vec!["client".to_string(), self.addr(port).to_string()];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push("--".to_string());
        args.extend(messages.iter().cloned());
        let cmd = self.client_cmd(&args);
        let record = ClientRecord {
            label: label.to_string(),
            command: short(&process::display(&cmd)),
            requests: messages.iter().map(|m| short(m)).collect(),
            expected: expected.iter().map(|m| short(m)).collect(),
            ..ClientRecord::default()
        };
        Ok((Process::spawn("client", cmd)?, record))
    }

    /// Waits for a client of [`Ctx::once`] and fills in its record.
    fn finish(
        mut client: Process,
        mut record: ClientRecord,
        limit: Duration,
        full: &[String],
    ) -> ClientRecord {
        let status = client.wait(limit);
        let responses = client.remaining_stdout();
        let error = client.stderr().trim().to_string();
        let success = matches!(status, Ok(s) if s.success());
        let right = full.is_empty() || responses.iter().zip(full).all(|(r, e)| r == e);
        record.ok = success && responses.len() == record.requests.len() && right;
        record.responses = responses.iter().map(|r| short(r)).collect();
        if !success {
            record.error = Some(if error.is_empty() {
                format!("{status:?}")
            } else {
                error
            });
        } else if !right {
            record.error = Some("the answer is not the expected one".to_string());
        }
        record
    }
}

/// `--scenario list`.
pub fn list() -> String {
    scenario::list()
}

mod plans;
mod tickets;

#[cfg(test)]
mod tests;
