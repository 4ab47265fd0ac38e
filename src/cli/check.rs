//! `reqresp check`: arguments, progress and output of the server check.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use reqresp::check::{self, CaseId, CheckConfig, Lang};
use reqresp::client;
use reqresp::protocol::Framing;
use reqresp::server::{ServiceKind, service};

/// Output formats of `reqresp check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A table, then the evidence of each failed case, for people.
    Text,
    /// Every case, reason, figure and evidence for graders (schema in docs/check.md).
    Json,
    /// JUnit XML for CI systems.
    Junit,
}

/// Arguments of `reqresp check`.
#[derive(clap::Args)]
#[command(after_help = "\
Cases (in order): echo, empty, utf8, binary, split, merged, large, concurrent,
sequential, half-close, abort, close, idle, latency, tickets.

Examples:
  reqresp check 127.0.0.1:2222                       the whole suite, line framing, echo
  reqresp check ADDR --framing raw                   a server like the original lab's
  reqresp check ADDR --only merged,large --format json
  reqresp check ADDR --service tickets --format junit > check.xml
  sudo reqresp check ADDR --out evidence/            failed cases' captures for Wireshark

Exit status: 0 when no case failed (warns do not fail unless --strict), 1 when
a case failed or the check could not run.")]
pub struct Args {
    /// Server address as host:port; a missing port means 2222.
    #[arg(value_name = "ADDR", default_value_t = client::default_addr())]
    addr: String,
    /// How the server delimits messages: line, length or raw.
    #[arg(long, value_enum, default_value_t = Framing::Line)]
    framing: Framing,
    /// What the server answers: echo (`<prefix><request>`) or tickets.
    #[arg(long, value_enum, default_value_t)]
    service: ServiceKind,
    /// Echo service: the text before each echoed request ('' for a pure echo).
    #[arg(long, default_value = service::DEFAULT_PREFIX)]
    prefix: String,
    /// Accept any answer starting with this text instead of the service's
    /// exact answer, as `reqresp bench --expect` ('' accepts every answer).
    #[arg(long, value_name = "TEXT")]
    expect: Option<OsString>,
    /// Run only these cases, comma-separated (`--only merged,large`).
    #[arg(long, value_name = "CASES", value_delimiter = ',')]
    only: Option<Vec<CaseId>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Count warnings as failures.
    #[arg(long)]
    strict: bool,
    /// Language of the rules and the report's words: en or id (Indonesian).
    #[arg(long, value_enum, default_value_t)]
    lang: Lang,
    /// Seconds to wait for each connection, write and answer.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "2")]
    timeout: Duration,
    /// `latency` warns when p99 is above this many milliseconds.
    #[arg(long, value_name = "MS", value_parser = parse_ms, default_value = "50")]
    latency_warn: Duration,
    /// Directory for the evidence of failed cases: their captures
    /// (`<case>.pcap`, with root) and client-side ladders (`<case>.ladder.txt`);
    /// with a capture also the whole run's (`check.pcap`) and its
    /// interactive report (`report.html`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Do not capture, even when allowed; evidence comes from the client's view.
    #[arg(long)]
    no_capture: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= check::MAX_TIMEOUT.as_secs_f64()) {
        return Err(format!(
            "must be more than 0 and at most {} seconds",
            check::MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_ms(s: &str) -> Result<Duration, String> {
    let ms: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of milliseconds"))?;
    if !(ms > 0.0 && ms <= 3_600_000.0) {
        return Err("must be more than 0 milliseconds (and at most an hour)".into());
    }
    Ok(Duration::from_secs_f64(ms / 1e3))
}

impl Args {
    fn config(&self) -> CheckConfig {
        CheckConfig {
            addr: self.addr.clone(),
            framing: self.framing,
            service: self.service,
            prefix: self.prefix.clone(),
            expect: self.expect.clone().map(OsString::into_encoded_bytes),
            only: self.only.clone(),
            strict: self.strict,
            timeout: self.timeout,
            latency_warn: self.latency_warn,
            capture: !self.no_capture,
            out: self.out.clone(),
        }
    }
}

/// Runs `reqresp check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config();
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let progress = io::stderr().is_terminal();
    let lang = args.lang;
    let report = runtime.block_on(check::run(&config, |case| {
        if progress {
            let _ = writeln!(
                io::stderr(),
                "  {:<11} {}",
                case.case.name(),
                case.outcome.word(lang)
            );
        }
    }))?;
    // The whole run's capture as the interactive report, beside it; its
    // path comes first (on standard error when standard output is for a
    // program).
    let html = match (&report.evidence, &config.out) {
        (
            check::Evidence::Capture {
                file: Some(pcap), ..
            },
            Some(dir),
        ) => Some(check::capture::write_html(
            pcap,
            report.server,
            report.framing,
            dir,
        )),
        _ => None,
    };
    if let Some(html) = html {
        let line = match html {
            Ok(path) => format!("report: {}  (open it in a browser)\n", path.display()),
            Err(why) => format!("report.html not written: {why}\n"),
        };
        if args.format == Format::Text {
            io::stdout().lock().write_all(line.as_bytes())?;
        } else {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    }
    let text = match args.format {
        Format::Text => check::text::render(&report, lang),
        Format::Json => check::json::render(&report),
        Format::Junit => check::junit::render(&report, lang),
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    if report.passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        let failed = report.counts().fail;
        let _ = writeln!(
            io::stderr(),
            "reqresp: check: {failed} case{} failed",
            if failed == 1 { "" } else { "s" }
        );
        Ok(ExitCode::FAILURE)
    }
}
