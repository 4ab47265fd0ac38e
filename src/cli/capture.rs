//! `reqresp capture`: arguments, the readiness line, the live counter and
//! Ctrl-C/SIGTERM handling around [`reqresp::capture::Capture`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqresp::capture::{Capture, CaptureConfig, DEFAULT_SNAPLEN, TimestampPrecision};

/// Arguments of `reqresp capture`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to capture on (`lo`, `eth0`, `docker0`, `any` for all).
    #[arg(short = 'i', long)]
    interface: String,
    /// pcap file to write; `-` writes to stdout (`| reqresp analyze -`).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    output: PathBuf,
    /// How to stop, said when the capture starts. The Docker lab's capture
    /// container sets it, where Ctrl-C reaches nobody.
    #[arg(
        long,
        env = "REQRESP_STOP_HINT",
        value_name = "TEXT",
        default_value = "Ctrl-C to stop"
    )]
    stop_hint: String,
    /// BPF filter in tcpdump syntax, e.g. 'tcp port 2222'.
    #[arg(short = 'f', long, value_name = "BPF")]
    filter: Option<String>,
    /// Stop after writing this many packets.
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Bytes kept of each packet.
    #[arg(short = 's', long, default_value_t = DEFAULT_SNAPLEN, value_parser = clap::value_parser!(u32).range(1..))]
    snaplen: u32,
    /// Put the interface in promiscuous mode (see traffic not addressed to this host).
    #[arg(long)]
    promisc: bool,
    /// Timestamp precision of the file.
    #[arg(long, value_enum, default_value_t = TimestampPrecision::Nano)]
    precision: TimestampPrecision,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("'{text}' is not a positive number of seconds"))
}

/// Set by SIGINT/SIGTERM; the main loop polls it.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handler. SA_RESETHAND: a second Ctrl-C kills
/// the process the ordinary way if stopping ever took too long.
fn install_stop_handler() -> anyhow::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
        // the handler only stores to an atomic.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("installing the Ctrl-C handler");
        }
    }
    Ok(())
}

/// Runs `reqresp capture`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    install_stop_handler()?;
    let config = CaptureConfig {
        interface: args.interface,
        output: args.output,
        filter: args.filter,
        count: args.count,
        duration: args.duration,
        snaplen: args.snaplen,
        promiscuous: args.promisc,
        precision: args.precision,
        buffer_bytes: reqresp::capture::DEFAULT_BUFFER_BYTES,
    };
    if config.writes_stdout() && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write binary pcap data to a terminal: redirect stdout \
             (`-w - > file.pcap`, `-w - | reqresp analyze -`) or give a file name"
        );
    }
    let destination = if config.writes_stdout() {
        "stdout".to_string()
    } else {
        config.output.display().to_string()
    };
    let filter = match &config.filter {
        Some(f) => format!("filter '{f}'"),
        None => "no filter".to_string(),
    };
    let interface = config.interface.clone();
    let handle = Capture::start(config)?;
    eprintln!(
        "capturing on {interface} ({filter}, link type {}), writing {destination} — {}",
        handle.link_type(),
        args.stop_hint
    );

    let counter = live_counter();
    while !handle.is_finished() && !STOP_REQUESTED.load(Ordering::SeqCst) {
        if let Some(bar) = &counter {
            bar.set_message(format!("{} packets", handle.captured()));
            bar.tick();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(bar) = counter {
        bar.finish_and_clear();
    }
    let stats = handle.stop()?;
    eprintln!("{stats}");
    Ok(ExitCode::SUCCESS)
}

/// A spinner with the packet count, only when stderr is a terminal.
fn live_counter() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    Some(bar)
}
