//! Command-line interface: argument parsing (clap derive) and dispatch.
//! Each subcommand lives in its own file with its `Args` and a `run` that
//! calls the library; nothing here does real work.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;
mod bench;
mod capture;
mod check;
mod client;
mod lab;
mod logging;
mod memcap;
mod server;
mod watch;

/// reqresp: the request/response pattern over TCP — serve it, drive it,
/// capture it and see it.
#[derive(Parser)]
#[command(name = "reqresp", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: many clients at once, framed messages, clean shutdown.
    Server(server::Args),
    /// Send requests and print responses: interactive like the lab's client, or scripted.
    Client(client::Args),
    /// Capture packets with libpcap into a pcap file (like tcpdump -w).
    Capture(capture::Args),
    /// Explain a pcap/pcapng capture: handshake, request/response pairs, latency, teardown.
    Analyze(analyze::Args),
    /// Load-test a server: many connections, pipelining, fixed rates, latency percentiles.
    Bench(bench::Args),
    /// Judge a request/response server: framing, concurrency, close; pass/fail with evidence.
    Check(check::Args),
    /// Watch request/response exchanges live in the terminal, or replay and step through a capture.
    Watch(watch::Args),
    /// Run the whole lab on this machine: topology, capture, server, client, report.
    Lab(lab::Args),
}

/// Parses the command line, runs the subcommand and turns its outcome into
/// an exit code. Errors are printed on one line to stderr; a closed stdout
/// (`reqresp analyze big.pcap | head`) ends the program quietly.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Client(args) => client::run(args),
        Command::Capture(args) => capture::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Check(args) => check::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("reqresp: error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Asks Linux not to back this process's memory with transparent huge
/// pages (`analyze`, `watch`). The allocator spreads the analysis over many small pages on three
/// threads; with 2 MiB pages each one touched costs 2 MiB of resident
/// memory, which put the benchmark's peak at 70–87 MB instead of about 47
/// MB, for no gain in speed. Failing is harmless (older kernels): nothing
/// but memory use changes.
pub(crate) fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // nothing but a flag of this process's memory map.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The error and its causes on one line, like `{:#}`, but a cause whose
/// text the line already holds (many error messages quote their source) is
/// not repeated: never `Is a directory (os error 21): Is a directory (os
/// error 21)`.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(21);
        let text = io.to_string();
        let err = anyhow::Error::new(io).context(format!("writing out.txt: {text}"));
        assert_eq!(one_line(&err), format!("writing out.txt: {text}"));
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&err), "outer: inner");
    }
}
