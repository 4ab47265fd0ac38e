//! `reqresp lab`: arguments and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use reqresp::lab::faults::FaultSpec;
use reqresp::lab::scenario::{self, Lang};
use reqresp::lab::scenario_run::{self, ScenarioError, ScenarioOptions};
use reqresp::lab::usercmd::{self, UserCmd, UserCmdError, UserOptions};
use reqresp::lab::{self, LabError, LabOptions, LabService, Mode, signals};
use reqresp::protocol::Framing;

/// Arguments of `reqresp lab`.
#[derive(clap::Args)]
#[command(after_help = "\
Network namespaces need root: `sudo reqresp lab`. Without root the lab runs on loopback.
Each run gets its own bridge: br-reqresp when free, else br-reqresp-1, -2, ... (two runs at
once, a kept lab, or the Docker lab of compose/reqresp.yml holding br-reqresp).
Everything is removed at the end, on error and on Ctrl-C, unless --keep.
--down removes the lab's namespaces and veths; it leaves a bridge that the Docker lab has
attached to (and says so) until that lab is down.
Break it on purpose: `sudo reqresp lab --scenario list`, or compose faults with
--fault loss=15%,delay=50ms±10ms,partition=2s@1s (rules live in the lab's namespaces).
Judge your own program: `sudo reqresp lab --server-cmd 'python3 server.py' --server-dir DIR`
(the lab's client, then `reqresp check`, against it) or `--client-cmd 'python3 client.py'`.")]
pub struct Args {
    /// Where to run: namespaces when root, else loopback.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Base directory: each run (scenarios too) writes report.html,
    /// reqresp.pcap, report.txt, report.json and ladder.svg into a new
    /// DIR/<time>/ and points DIR/latest at it; earlier runs are never touched.
    #[arg(long, value_name = "DIR", default_value = "reqresp-lab")]
    out: PathBuf,
    /// Service of the server.
    #[arg(long, value_enum, default_value_t = LabService::Echo)]
    service: LabService,
    /// Ticket stock for `--service tickets` (the script books one more).
    #[arg(long, value_name = "N", default_value_t = 3)]
    tickets: u64,
    /// A request to send (repeatable); replaces the default script.
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    messages: Vec<String>,
    /// Leave the namespace topology up and print how to do the lab by hand.
    #[arg(long, conflicts_with = "down")]
    keep: bool,
    /// Remove the topologies left by --keep (or by a killed run), then exit.
    #[arg(long)]
    down: bool,
    /// An extra argument for the server (repeatable), e.g. `--server-arg=--prefix=`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Run a scenario with a fault (`--scenario list` shows them all); needs root.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["keep", "down", "messages", "server_args", "service", "tickets"])]
    scenario: Option<String>,
    /// Compose faults on the lab's link, e.g. loss=15%,delay=50ms±10ms,partition=2s@1s
    /// (with --scenario: replaces its fault); needs root.
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["keep", "down", "messages", "server_args", "service", "tickets"])]
    fault: Option<FaultSpec>,
    /// Language of a scenario's explanation (report.txt has both).
    #[arg(long, value_enum, default_value_t = Lang::En)]
    lang: Lang,
    /// Show the live ladder (reqresp watch) while the lab's client talks;
    /// the lab's own output follows when you quit the view with q.
    #[arg(long, conflicts_with_all = ["keep", "down", "scenario", "fault", "server_cmd", "client_cmd"])]
    watch: bool,
    /// Like --watch, with the client's prompt under the live ladder: type a
    /// request, press Enter, watch its arrows appear; Esc ends the client.
    #[arg(long, conflicts_with_all = ["keep", "down", "scenario", "fault", "server_cmd", "client_cmd", "messages"])]
    interactive: bool,
    /// Print every `ip` command run to build and remove the topology.
    #[arg(short, long)]
    verbose: bool,
    /// Run your own server on the server host (port 2222, `sh -c`) in place of
    /// `reqresp server`, then the lab's client and `reqresp check` against it; needs root.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["client_cmd", "keep", "down", "scenario", "fault"])]
    server_cmd: Option<String>,
    /// Working directory of --server-cmd.
    #[arg(long, value_name = "DIR", requires = "server_cmd")]
    server_dir: Option<PathBuf>,
    /// Run your own client on the client host against `reqresp server` (the lab's
    /// requests on its stdin, REQRESP_SERVER set), and say what it did on the wire; needs root.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["keep", "down", "scenario", "fault"])]
    client_cmd: Option<String>,
    /// Working directory of --client-cmd.
    #[arg(long, value_name = "DIR", requires = "client_cmd")]
    client_dir: Option<PathBuf>,
    /// The framing your program speaks (with --server-cmd or --client-cmd).
    #[arg(long, value_enum, default_value_t = Framing::Line)]
    framing: Framing,
    /// How long your program has to exit after SIGTERM before it is killed,
    /// e.g. 5s or 500ms.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_drain)]
    drain_timeout: std::time::Duration,
}

fn parse_drain(text: &str) -> Result<std::time::Duration, String> {
    let drain = reqresp::lab::faults::spec::parse_duration(text).map_err(|e| e.to_string())?;
    if drain > std::time::Duration::from_secs(600) {
        return Err("the drain timeout must be at most 600 s".into());
    }
    Ok(drain)
}

/// Runs `reqresp lab`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if args.down {
        lab::down(args.verbose, &mut stdout)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.scenario.as_deref() == Some("list") {
        print!("{}", scenario_run::list());
        return Ok(ExitCode::SUCCESS);
    }
    if args.scenario.is_some() || args.fault.is_some() {
        anyhow::ensure!(
            args.mode != Mode::Loopback,
            "scenarios and faults run in the lab's network namespaces, not on loopback: drop --mode loopback (and run as root)"
        );
        return run_scenario(args);
    }
    if args.server_cmd.is_some() || args.client_cmd.is_some() {
        return run_user(args);
    }
    let options = LabOptions {
        mode: args.mode,
        out: args.out,
        service: args.service,
        tickets: args.tickets,
        messages: args.messages,
        keep: args.keep,
        verbose: args.verbose,
        server_args: args.server_args,
        exe: std::env::current_exe()
            .context("cannot find the reqresp binary to run as server and client")?,
        on_capture: None,
        client_lines: None,
    };
    if args.watch || args.interactive {
        return run_watched(options, args.interactive);
    }
    match lab::run(&options, &mut stdout) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(LabError::Interrupted(signal)) => {
            eprintln!("reqresp lab: interrupted; everything it created was removed");
            Ok(ExitCode::from(signals::exit_status(signal)))
        }
        Err(err) => Err(err.into()),
    }
}

/// `reqresp lab --watch`: the lab on its own thread, its output held until
/// the live view (on this thread, in the terminal) is closed with `q`.
/// With `interactive`, a prompt under the ladder: each line entered there is
/// a request of the lab's client, and quitting the view ends the client.
fn run_watched(mut options: LabOptions, interactive: bool) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    anyhow::ensure!(
        std::io::stdout().is_terminal(),
        "--watch draws the live ladder in a terminal; standard output is not one"
    );
    super::no_huge_pages();
    let watch_options = reqresp::analyze::Options {
        framing: reqresp::analyze::FramingChoice::Line,
        ..reqresp::analyze::Options::default()
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let shown = reqresp::watch::run_beside(watch_options, color, interactive, |hook, lines| {
        options.on_capture = Some(hook);
        options.client_lines = lines;
        let mut out = Vec::new();
        let result = lab::run(&options, &mut out);
        (result, out)
    })?;
    let (result, out) = shown.job;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    if let Some(why) = shown.not_shown {
        writeln!(stdout, "no live view: {why}")?;
    }
    if let Some(summary) = shown.summary {
        writeln!(stdout, "\nWhat the live view saw:\n{summary}")?;
    }
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(LabError::Interrupted(signal)) => {
            eprintln!("reqresp lab: interrupted; everything it created was removed");
            Ok(ExitCode::from(signals::exit_status(signal)))
        }
        Err(err) => Err(err.into()),
    }
}

/// `reqresp lab --server-cmd CMD` / `--client-cmd CMD`: exit 1 when the
/// user's program failed a check case or misbehaved on the wire.
fn run_user(args: Args) -> anyhow::Result<ExitCode> {
    let user = UserOptions {
        server: args.server_cmd.map(|command| UserCmd {
            command,
            dir: args.server_dir,
        }),
        client: args.client_cmd.map(|command| UserCmd {
            command,
            dir: args.client_dir,
        }),
        framing: args.framing,
        drain: args.drain_timeout,
    };
    let options = LabOptions {
        mode: args.mode,
        out: args.out,
        service: args.service,
        tickets: args.tickets,
        messages: args.messages,
        keep: false,
        verbose: args.verbose,
        server_args: args.server_args,
        exe: std::env::current_exe()
            .context("cannot find the reqresp binary to run as server and client")?,
        on_capture: None,
        client_lines: None,
    };
    let mut stdout = std::io::stdout().lock();
    match usercmd::run(&options, &user, &mut stdout) {
        Ok(outcome) if outcome.passed() => Ok(ExitCode::SUCCESS),
        Ok(_) => Ok(ExitCode::from(1)),
        Err(UserCmdError::Lab(LabError::Interrupted(signal))) => {
            eprintln!("reqresp lab: interrupted; everything it created was removed");
            Ok(ExitCode::from(signals::exit_status(signal)))
        }
        Err(err) => Err(err.into()),
    }
}

/// `reqresp lab --scenario NAME` / `--fault SPEC`.
fn run_scenario(args: Args) -> anyhow::Result<ExitCode> {
    let scenario = match args.scenario.as_deref() {
        None => None,
        Some(name) => Some(scenario::find(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no scenario `{name}`; the scenarios are:\n{}",
                scenario_run::list()
            )
        })?),
    };
    let options = ScenarioOptions {
        scenario,
        fault: args.fault,
        lang: args.lang,
        out: args.out,
        verbose: args.verbose,
        exe: std::env::current_exe()
            .context("cannot find the reqresp binary to run as server and client")?,
    };
    let mut stdout = std::io::stdout().lock();
    match scenario_run::run(&options, &mut stdout) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(ScenarioError::Interrupted(signal)) => {
            eprintln!("reqresp lab: interrupted; everything it created was removed");
            Ok(ExitCode::from(signals::exit_status(signal)))
        }
        Err(err) => Err(err.into()),
    }
}
