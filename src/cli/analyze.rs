//! `reqresp analyze`: arguments, input and output files, the progress bar,
//! around [`reqresp::analyze::analyze_stream`] and [`reqresp::report`].

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::memcap::Memcap;
use anyhow::Context;
use reqresp::analyze::{self, AnalyzeError, FramingChoice, Options};
use reqresp::report::{BackgroundWriter, Ending, Format, RenderOptions, ReportWriter};

/// Arguments of `reqresp analyze`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  reqresp analyze reqresp.pcap
  reqresp analyze capture.pcapng --format json -o report.json
  reqresp analyze reqresp.pcap --format svg -o ladder.svg
  reqresp analyze reqresp.pcap -o report.html
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
    /// Output format. Defaults to the extension of `-o` (.txt, .json, .mmd, .svg, .html; any
    /// other is refused), else text.
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
    /// Draw every pure ACK in the diagrams, with its relative ack number.
    /// Without it only the teardown's last ACK is drawn, and a line under
    /// each connection says how many were left out.
    #[arg(long)]
    acks: bool,
    #[command(flatten)]
    memcap: Memcap,
}

/// Runs `reqresp analyze`: the capture streams through the analyzer into a
/// [`ReportWriter`], so memory follows the live connections, not the file.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::no_huge_pages();
    let format = match args.format {
        Some(format) => format,
        None => format_from_extension(args.output.as_deref()).map_err(anyhow::Error::msg)?,
    };
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
        keep_acks: args.acks,
        // Only the JSON and HTML reports list each message's packets.
        keep_packets: matches!(format, Format::Json | Format::Html),
        memcap: args.memcap.bytes,
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
    render_options.acks = args.acks;
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
        let bar = progress_bar(size);
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
        Err(AnalyzeError::Sink(_)) => {
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
        .finish(&Ending::of(&analysis))
        .context("cannot write the report")?
        .flush()
        .context("cannot write the report")?;
    if let Some(path) = &args.output {
        eprintln!("wrote {format} report to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar over `total` input bytes, or `None` when stderr is not a
/// terminal or the size is unknown (a pipe): progress output is for people.
fn progress_bar(total: Option<u64>) -> Option<indicatif::ProgressBar> {
    let total = total?;
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} reading capture {bytes}/{total_bytes} [{wide_bar}] {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// The format named by the output file's extension: text for standard
/// output or a name without extension; an extension of no format is
/// refused with the list, rather than writing text into `out.png`.
fn format_from_extension(output: Option<&std::path::Path>) -> Result<Format, String> {
    let Some(path) = output else {
        return Ok(Format::Text);
    };
    let Some(extension) = path.extension() else {
        return Ok(Format::Text);
    };
    match extension.to_string_lossy().to_ascii_lowercase().as_str() {
        "txt" | "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        "svg" => Ok(Format::Svg),
        "mmd" | "mermaid" => Ok(Format::Mermaid),
        "html" | "htm" => Ok(Format::Html),
        other => {
            let png = if matches!(other, "png" | "jpg" | "jpeg" | "pdf") {
                format!(
                    "; for a picture write .svg and convert it (rsvg-convert -f {other} -o {} report.svg)",
                    path.display()
                )
            } else {
                String::new()
            };
            Err(format!(
                "cannot tell the report format from the extension .{other} of {}: reqresp writes .txt, .json, .mmd (or .mermaid), .svg and .html, or any name with --format text|json|mermaid|svg|html{png}",
                path.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_supported_extension_picks_its_format_and_others_are_refused() {
        let pick = |name: &str| format_from_extension(Some(Path::new(name)));
        assert_eq!(format_from_extension(None), Ok(Format::Text));
        assert_eq!(pick("report"), Ok(Format::Text));
        assert_eq!(pick("report.txt"), Ok(Format::Text));
        assert_eq!(pick("a.JSON"), Ok(Format::Json));
        assert_eq!(pick("a.svg"), Ok(Format::Svg));
        assert_eq!(pick("a.mmd"), Ok(Format::Mermaid));
        assert_eq!(pick("a.mermaid"), Ok(Format::Mermaid));
        assert_eq!(pick("report.html"), Ok(Format::Html));
        assert_eq!(pick("report.HTM"), Ok(Format::Html));
        let err = pick("out.png").unwrap_err();
        assert!(err.contains(".png of out.png"), "{err}");
        assert!(
            err.contains(".txt, .json, .mmd (or .mermaid), .svg and .html"),
            "{err}"
        );
        assert!(err.contains("rsvg-convert -f png"), "{err}");
        assert!(pick("notes.md").unwrap_err().contains("--format"));
    }
}
