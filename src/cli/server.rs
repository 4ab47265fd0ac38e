//! `reqresp server`: arguments and dispatch.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqresp::protocol::Framing;
use reqresp::protocol::connection::DEFAULT_RAW_READ_SIZE;
use reqresp::server::{self, Config, ServiceKind, ServiceOptions, config, service};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use super::logging::{self, LogArgs};

/// Arguments of `reqresp server`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on, HOST:PORT; port 0 picks a free port. The real
    /// address is printed on stdout as `listening on <ip:port>`.
    #[arg(long, default_value = "0.0.0.0:2222")]
    listen: String,
    /// How messages are delimited: line (up to \n), length (4-byte big-endian
    /// length prefix), raw (one read is one message, like the original lab).
    #[arg(long, value_enum, default_value_t)]
    framing: Framing,
    /// What the server answers.
    #[arg(long, value_enum, default_value_t)]
    service: ServiceKind,
    /// Echo service: text put before each echoed request ('' for a pure echo).
    #[arg(long, default_value = service::DEFAULT_PREFIX)]
    prefix: String,
    /// Tickets service: tickets on sale, shared by all clients.
    #[arg(long, default_value_t = service::DEFAULT_STOCK)]
    tickets: u64,
    /// Connections served at once; more get a "server busy" error and are closed.
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Largest request in bytes; a larger one gets an error and its connection is closed.
    #[arg(long, default_value_t = config::DEFAULT_MAX_REQUEST)]
    max_request: usize,
    /// Seconds a connection may stay silent (or not read its responses) before it is closed.
    #[arg(long, value_parser = parse_secs, default_value = "300")]
    idle_timeout: Duration,
    /// Time to wait before each answer, as a slow server would (e.g. 300ms, 1.5s); 0 = none.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay, default_value = "0")]
    delay: Duration,
    /// Seconds open connections get to finish after SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    drain_timeout: Duration,
    /// Raw framing: bytes asked for per read, i.e. the largest raw request
    /// (the lab's recv(1024)).
    #[arg(long, default_value_t = DEFAULT_RAW_READ_SIZE)]
    raw_read_size: usize,
    #[command(flatten)]
    log: LogArgs,
}

/// Parses a positive number of seconds, fractions allowed (`0.5`).
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 1e9) {
        return Err(format!(
            "{s} must be more than 0 seconds (and less than 1e9)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_delay(s: &str) -> Result<Duration, String> {
    reqresp::lab::faults::spec::parse_duration(s).map_err(|e| e.to_string())
}

/// Runs `reqresp server`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    logging::init(&args.log)?;
    if args.framing == Framing::Line && args.prefix.contains('\n') {
        anyhow::bail!(
            "--prefix contains a newline, which line framing cannot carry in one response; remove it or use --framing length"
        );
    }
    let options = ServiceOptions {
        prefix: args.prefix.clone(),
        tickets: args.tickets,
    };
    let config = Config {
        framing: args.framing,
        service: args.service.build(&options),
        max_connections: args.max_connections,
        max_request: args.max_request,
        idle_timeout: args.idle_timeout,
        drain_timeout: args.drain_timeout,
        raw_read_size: args.raw_read_size,
        delay: args.delay,
    };
    config.validate()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        // Handlers first: a signal arriving right after the "listening on"
        // line must start a graceful shutdown, not kill the process.
        let shutdown = shutdown_signal()?;
        let listener = server::bind(&args.listen).await?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}")?;
        stdout.flush()?;
        drop(stdout);
        server::run(listener, config, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // Every connection task has ended or been cut by now; do not wait for
    // idle runtime threads.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// A future that completes on the first SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        info!(signal = name, "shutdown requested");
    })
}
