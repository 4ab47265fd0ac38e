//! `reqresp server`: arguments and dispatch.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqresp::protocol::Framing;
use reqresp::protocol::connection::DEFAULT_RAW_READ_SIZE;
use reqresp::server::service::TicketsDb;
use reqresp::server::threads::{self, PerCore};
use reqresp::server::{self, Config, ServiceKind, ServiceOptions, config, service};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use super::logging::{self, LogArgs};

/// Arguments of `reqresp server`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on, HOST:PORT; port 0 picks a free port. The real
    /// address is printed on stdout as `listening on <ip:port>` (followed by
    /// `(all interfaces)` for 0.0.0.0 or ::). The services have no
    /// authentication: use 127.0.0.1 to keep the server to this machine.
    #[arg(long, default_value_t = format!("0.0.0.0:{}", reqresp::protocol::DEFAULT_PORT))]
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
    /// Tickets service: tickets on sale, shared by all clients. A new ledger
    /// starts with this many (default 5); an existing one keeps its own stock,
    /// and a different number here is an error unless --reset-tickets.
    #[arg(long, value_name = "N")]
    tickets: Option<u64>,
    /// Tickets service: the ledger file (SQLite) that keeps the stock and
    /// every booking across restarts; a booking is confirmed once it is on
    /// disk. `:memory:` keeps them in memory only, lost when the server stops.
    #[arg(long, value_name = "PATH", env = "REQRESP_TICKETS_DB", default_value = service::DEFAULT_DB)]
    tickets_db: PathBuf,
    /// Tickets service: delete every booking in the ledger and start over with
    /// a full stock of --tickets.
    #[arg(long)]
    reset_tickets: bool,
    /// Connections served at once. When all are taken, a new client takes
    /// the slot of the connection waiting longest without a request; if all
    /// are busy, it gets a "server busy" error and is closed.
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
    /// Seconds a request may take to arrive whole, from its first byte,
    /// however slowly it trickles in; then the connection is closed.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    request_timeout: Duration,
    /// Seconds a new connection may stay silent before its first byte.
    #[arg(long, value_parser = parse_secs, default_value = "10")]
    first_byte_timeout: Duration,
    /// Connections served at once from one IP address; more are refused
    /// with an error message. No cap unless given.
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// Seconds open connections get to deliver the answers they owe after
    /// SIGINT/SIGTERM (they take no new request meanwhile).
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
        tickets_db: TicketsDb::from_path(&args.tickets_db),
        reset_tickets: args.reset_tickets,
    };
    let config = Config {
        framing: args.framing,
        service: args.service.build(&options)?,
        max_connections: args.max_connections,
        max_request: args.max_request,
        idle_timeout: args.idle_timeout,
        request_timeout: args.request_timeout,
        first_byte_timeout: args.first_byte_timeout,
        max_connections_per_ip: args.max_connections_per_ip,
        drain_timeout: args.drain_timeout,
        raw_read_size: args.raw_read_size,
        delay: args.delay,
    };
    config.validate()?;
    // Each connection is a descriptor, and so is each one being refused or
    // closed: make room beyond the usual soft limit of 1024.
    let wanted = (args.max_connections as u64).saturating_mul(2) + 256;
    match server::os::raise_open_file_limit(wanted) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            wanted,
            "the open-file limit is lower than --max-connections needs; raise it (ulimit -n) or lower --max-connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
    if config.service.blocks() {
        serve_multi_threaded(&args.listen, config)
    } else {
        serve_per_core(&args.listen, config)
    }
}

/// Serves on one single-threaded runtime per CPU (see `server::threads`).
fn serve_per_core(listen: &str, config: Config) -> anyhow::Result<ExitCode> {
    let server = PerCore::new(threads::cpus()).context("cannot start the async runtime")?;
    // Handlers first: a signal arriving right after the "listening on"
    // line must start a graceful shutdown, not kill the process.
    let shutdown = {
        let _runtime = server.enter();
        shutdown_signal()?
    };
    let listeners = server.bind(listen)?;
    say_listening(listeners.local_addr())?;
    server.run(listeners, config, shutdown)?;
    Ok(ExitCode::SUCCESS)
}

/// Serves on tokio's multi-threaded runtime, for a service whose answers
/// may wait: a waiting connection does not stall the others.
fn serve_multi_threaded(listen: &str, config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = server::bind(listen).await?;
        say_listening(
            listener
                .local_addr()
                .context("cannot read the listening address")?,
        )?;
        server::run(listener, config, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // Every connection task has ended or been cut by now; do not wait for
    // idle runtime threads.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// Prints `listening on ADDR` on stdout, where scripts and tests read the
/// real address.
fn say_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    // The default listens on every interface, with no authentication:
    // say so where the operator looks.
    let scope = if addr.ip().is_unspecified() {
        " (all interfaces)"
    } else {
        ""
    };
    writeln!(stdout, "listening on {addr}{scope}")?;
    stdout.flush()?;
    Ok(())
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
