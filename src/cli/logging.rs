//! Log setup shared by the subcommands: `-v` for more detail, `--log-format`
//! for text or JSON lines, always on stderr so stdout stays for results.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for `jq` and log collectors.
    Json,
}

/// Logging flags, flattened into a subcommand's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// More log detail: -v logs every request, -vv everything. RUST_LOG, when
    /// set, overrides this.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format (logs go to stderr).
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// Installs the global log subscriber.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("RUST_LOG={spec:?} is not a valid log filter: {e}"))?,
        _ => EnvFilter::new(match args.verbose {
            0 => "warn,reqresp=info",
            1 => "warn,reqresp=debug",
            _ => "trace",
        }),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
