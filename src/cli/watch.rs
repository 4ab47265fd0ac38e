//! `reqresp watch`: arguments, around [`reqresp::watch::run`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::memcap::Memcap;
use reqresp::analyze::{FramingChoice, Options};
use reqresp::capture::CaptureConfig;
use reqresp::watch::{self, Input, Speed, WatchConfig};

/// Arguments of `reqresp watch`.
#[derive(clap::Args)]
#[command(
    after_help = "Keys: ↑/↓ or j/k select a connection · Enter an exchange's detail \
(bytes as text and hex, the packets with their sizes) · f follow · p pause · / filter · q quit; \
with --step → and ← step forward and back.

When standard output is not a terminal, one JSON object per line per event
(connection_opened, exchange, tcp_event, connection_closed).

Examples:
  sudo reqresp watch --port 2222
  sudo reqresp watch -i eth0 -f 'tcp port 80' -w session.pcap
  reqresp watch -r reqresp.pcap --step
  sudo reqresp watch -i lo --port 2222 | jq -c 'select(.event == \"exchange\")'"
)]
pub struct Args {
    /// Interface to capture on (as tcpdump -i).
    #[arg(short = 'i', long, default_value = "any", value_name = "IFACE")]
    interface: String,
    /// BPF capture filter (tcpdump syntax); default: tcp, or tcp port P with --port.
    #[arg(short = 'f', long, value_name = "BPF")]
    filter: Option<String>,
    /// The server's port: captures only it (unless -f says otherwise) and
    /// tells the server side of connections whose SYN was not seen.
    #[arg(long)]
    port: Option<u16>,
    /// How messages are delimited (as `analyze --framing`).
    #[arg(long, value_enum, default_value_t = FramingChoice::Auto)]
    framing: FramingChoice,
    /// Also write the packets to this pcap file (as tcpdump -w).
    #[arg(short = 'w', long, value_name = "FILE", conflicts_with = "read")]
    write: Option<PathBuf>,
    /// Watch a capture file instead of capturing live.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<PathBuf>,
    /// Replay speed of -r: 1 (as captured), 10, or max.
    #[arg(long, value_enum, default_value = "1", requires = "read")]
    speed: Speed,
    /// Step through -r one packet at a time (→ forward, ← back).
    #[arg(long, requires = "read")]
    step: bool,
    /// Kernel buffer for packets not yet read, in MiB (tcpdump's -B, which
    /// counts KiB): a burst waits there while watch catches up; past it the
    /// kernel drops packets (counted on screen and at the end).
    #[arg(
        short = 'B',
        long,
        value_name = "MIB",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=1024),
        conflicts_with = "read"
    )]
    buffer_size: u32,
    #[command(flatten)]
    memcap: Memcap,
}

/// Runs `reqresp watch`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Page faults zeroing 2 MiB pages took a third of watch's CPU under load.
    super::no_huge_pages();
    let tui = std::io::stdout().is_terminal();
    let options = Options {
        framing: args.framing,
        port: args.port,
        // The JSON lines carry each message's packets, as `analyze --format
        // json` does. The screen does not need them (its detail lists the
        // frame numbers and takes each packet from the segments it saw):
        // without them each exchange costs fewer allocations to copy and free.
        keep_packets: !tui,
        memcap: args.memcap.bytes,
        ..Options::default()
    };
    let input = match (args.read, args.step) {
        (Some(path), true) => Input::Step { path },
        (Some(path), false) => Input::Replay {
            path,
            speed: args.speed,
        },
        (None, _) => {
            let write = args.write.is_some();
            let mut capture = CaptureConfig::new(
                args.interface,
                args.write.unwrap_or_else(|| PathBuf::from("-")),
            );
            capture.buffer_bytes = args.buffer_size << 20;
            capture.filter = Some(match (args.filter, args.port) {
                (Some(f), _) => f,
                (None, Some(p)) => format!("tcp port {p}"),
                (None, None) => "tcp".to_owned(),
            });
            Input::Live { capture, write }
        }
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    watch::run(WatchConfig {
        input,
        options,
        tui,
        color,
    })?;
    Ok(ExitCode::SUCCESS)
}
