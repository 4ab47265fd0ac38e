//! `reqresp analyze`: arguments, input and output files, the progress bar,
//! around [`reqresp::analyze::analyze_stream`] and [`reqresp::report`].

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reqresp::analyze::{self, AnalyzeError, FramingChoice, Options, reader};
use reqresp::report::{BackgroundWriter, Ending, Format, RenderOptions, ReportWriter};

/// Arguments of `reqresp analyze`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  reqresp analyze reqresp.pcap
  reqresp analyze capture.pcapng --format json -o report.json
  reqresp analyze reqresp.pcap --format svg -o ladder.svg
  tcpdump -i lo -w - 'tcp port 2222' | reqresp analyze -")]
pub struct Args {
    /// pcap or pcapng file to read; `-` reads standard input.
    #[arg(value_name = "FILE")]
    input: PathBuf,
    /// How messages are delimited: `auto` recognises, per connection, HTTP/1.x,
    /// RESP, memcached, DNS over TCP or PostgreSQL by content, else line or
    /// length framing, otherwise pairs turns (a client burst, then a server burst).
    #[arg(long, value_enum, default_value_t = FramingChoice::Auto)]
    framing: FramingChoice,
    /// Output format. Defaults to the extension of `-o` (.json, .svg, .mmd), else text.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The server's address, for connections whose SYN was not captured.
    #[arg(long, value_name = "IP:PORT")]
    server: Option<SocketAddr>,
    /// The server's port, for connections whose SYN was not captured.
    #[arg(long)]
    port: Option<u16>,
    /// Exchanges drawn per connection in the diagrams (0: all). Summaries and JSON always count all.
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_exchanges: usize,
    /// Connections drawn in the diagrams (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_connections: usize,
}

/// Runs `reqresp analyze`: the capture streams through the analyzer into a
/// [`ReportWriter`], so memory follows the live connections, not the file.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    no_huge_pages();
    let format = args
        .format
        .unwrap_or_else(|| format_from_extension(&args.output));
    // Open the output first, so a bad path fails before the work starts.
    let output: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .with_context(|| format!("cannot write the report to {}", path.display()))?,
        ),
        None => Box::new(io::stdout()),
    };
    let options = Options {
        framing: args.framing,
        server: args.server,
        port: args.port,
        ..Options::default()
    };
    let mut render_options = if args.output.is_some() {
        RenderOptions::default()
    } else {
        RenderOptions::for_stdout()
    };
    render_options.max_exchanges = (args.max_exchanges > 0).then_some(args.max_exchanges);
    render_options.max_connections = (args.max_connections > 0).then_some(args.max_connections);
    render_options.title = Some(args.input.display().to_string());
    let mut writer = BackgroundWriter::start(ReportWriter::new(format, render_options, output)?);

    let analysis = if args.input.as_os_str() == "-" {
        analyze::analyze_stream(
            io::stdin().lock(),
            options,
            |_| {},
            |c| writer.connection(c),
        )
    } else {
        let file = File::open(&args.input).with_context(|| {
            format!(
                "cannot open the capture {}: give a pcap or pcapng file (or - for standard input)",
                args.input.display()
            )
        })?;
        let size = file.metadata().ok().map(|m| m.len());
        let bar = reader::progress_bar(size);
        let analysis = analyze::analyze_stream(
            file,
            options,
            |bytes| {
                if let Some(bar) = &bar {
                    bar.set_position(bytes);
                }
            },
            |c| writer.connection(c),
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        analysis
    };
    let analysis = match analysis {
        Err(AnalyzeError::Output(_)) => {
            // The writer thread stopped; its own error says why.
            let error = writer.finish().err();
            let error = error.unwrap_or_else(|| io::Error::other("the report writer stopped"));
            return Err(error).context("cannot write the report");
        }
        other => other.with_context(|| format!("cannot analyze {}", args.input.display()))?,
    };
    let writer = writer.finish().context("cannot write the report")?;

    for warning in &analysis.warnings {
        eprintln!("reqresp: warning: {warning}");
    }
    writer
        .finish(&Ending {
            packets: analysis.packets,
            framing: analysis.framing,
            warnings: &analysis.warnings,
        })
        .context("cannot write the report")?
        .flush()
        .context("cannot write the report")?;
    if let Some(path) = &args.output {
        eprintln!("wrote {format} report to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks Linux not to back this process's memory with transparent huge
/// pages. The allocator spreads the analysis over many small pages on three
/// threads; with 2 MiB pages each one touched costs 2 MiB of resident
/// memory, which put the benchmark's peak at 70–87 MB instead of about 47
/// MB, for no gain in speed. Failing is harmless (older kernels): nothing
/// but memory use changes.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // nothing but a flag of this process's memory map.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The format named by the output file's extension, text when none matches.
fn format_from_extension(output: &Option<PathBuf>) -> Format {
    let extension = output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => Format::Json,
        Some("svg") => Format::Svg,
        Some("mmd" | "mermaid") => Format::Mermaid,
        _ => Format::Text,
    }
}
