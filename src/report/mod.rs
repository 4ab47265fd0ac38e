//! Renders an [`Analysis`] for people and programs: a terminal ladder
//! diagram (`text`), a stable JSON document (`json`), a Mermaid
//! `sequenceDiagram` (`mermaid`), a self-contained SVG ladder (`svg`) and an
//! interactive self-contained page (`html`).
//!
//! Like hyperfine's exporters: one file per format, each a function from the
//! data model to bytes. No analysis happens here; the only computation is the
//! `stats::Summary` (totals and latency percentiles) that every format
//! shares. `ladder` orders the rows of one connection's diagram so the three
//! drawings agree.
//!
//! ```no_run
//! use reqresp::report::{render, Format, RenderOptions};
//! # let analysis = reqresp::analyze::model::Analysis::default();
//! let mut out = std::io::stdout().lock();
//! render(&analysis, Format::Text, &RenderOptions::for_stdout(), &mut out)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Write};

use crate::analyze::model::{Analysis, CaptureSummary, Connection};
use crate::protocol::Framing;
use stats::{Summary, SummaryBuilder};

pub(crate) mod background;
pub(crate) mod distribution;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod ladder;
pub(crate) mod mermaid;
pub(crate) mod stats;
pub(crate) mod svg;
pub(crate) mod text;

pub use background::BackgroundWriter;

#[cfg(test)]
pub(crate) mod sample;

/// An output format of `reqresp analyze --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Format {
    /// Ladder diagram per connection in the terminal, then a summary.
    #[default]
    Text,
    /// The analysis as JSON with a `summary`; schema in docs/json-schema.md.
    Json,
    /// A Mermaid `sequenceDiagram` (GitHub renders it in Markdown).
    Mermaid,
    /// A self-contained SVG ladder diagram.
    Svg,
    /// An interactive self-contained HTML page (docs/html-report.md).
    Html,
}

impl Format {
    /// Every format, in the order of `--format`'s list.
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Mermaid,
        Format::Svg,
        Format::Html,
    ];

    /// The usual file extension of the format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Json => "json",
            Format::Mermaid => "mmd",
            Format::Svg => "svg",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Mermaid => "mermaid",
            Format::Svg => "svg",
            Format::Html => "html",
        })
    }
}

/// How to render. The caps only shorten the diagrams; summaries always count
/// everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Text: maximum line width in terminal columns (at least
    /// `text::MIN_WIDTH` is used).
    pub width: usize,
    /// Text: ANSI colours. Only when writing to a terminal.
    pub color: bool,
    /// Text, Mermaid, SVG: exchanges drawn per connection (`None`: all); the
    /// rest is announced as "… N more exchanges".
    pub max_exchanges: Option<usize>,
    /// Text, Mermaid, SVG: connections drawn (`None`: all); the rest is
    /// announced.
    pub max_connections: Option<usize>,
    /// SVG: title above the diagram (e.g. the capture file name).
    pub title: Option<String>,
    /// Text, Mermaid, SVG: draw every pure ACK with its acknowledgment
    /// number (`--acks`; the analysis must have kept them). Without it only
    /// the teardown's last ACK is drawn, and a line says how many were left
    /// out.
    pub acks: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: 100,
            color: false,
            max_exchanges: Some(50),
            max_connections: Some(20),
            title: None,
            acks: false,
        }
    }
}

impl RenderOptions {
    /// Defaults for standard output: the terminal's width and colours when
    /// stdout is a terminal (and `NO_COLOR` is not set), else 100 columns
    /// without colour.
    pub fn for_stdout() -> Self {
        let term = console::Term::stdout();
        let mut options = RenderOptions::default();
        if term.is_term() {
            if let Some((_rows, cols)) = term.size_checked() {
                options.width = usize::from(cols);
            }
            options.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        }
        options
    }
}

/// Writes `analysis` to `out` in `format` (buffered internally; a write
/// error such as a closed pipe is returned as is). The same path as a
/// streamed report: each connection goes through a [`ReportWriter`].
pub fn render(
    analysis: &Analysis,
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut writer = ReportWriter::new(format, options.clone(), out)?;
    for c in &analysis.connections {
        writer.connection(c.clone())?;
    }
    writer.finish(&Ending::of(analysis))?;
    Ok(())
}

/// What is known of an analysis only once the capture is read: everything
/// of an [`Analysis`] but its connections.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// Packets read from the capture.
    pub packets: u64,
    /// Framing of the whole analysis (see [`Analysis::framing`]).
    pub framing: Option<Framing>,
    /// Problems met while reading and analyzing.
    pub warnings: &'a [String],
    /// What reading the packets found (see [`Analysis::capture`]).
    pub capture: &'a CaptureSummary,
}

impl<'a> Ending<'a> {
    /// The ending of `analysis`: all of it but the connections.
    pub fn of(analysis: &'a Analysis) -> Self {
        Ending {
            packets: analysis.packets,
            framing: analysis.framing,
            warnings: &analysis.warnings,
            capture: &analysis.capture,
        }
    }
}

/// What the diagram formats draw: the connections kept for drawing (the
/// first `max_connections`), and totals over all of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report<'a> {
    /// Packets read from the capture.
    pub packets: u64,
    /// The connections to draw, in order.
    pub connections: &'a [Connection],
    /// Connections in the whole analysis, drawn or not.
    pub total_connections: u64,
    /// Problems met while reading and analyzing.
    pub warnings: &'a [String],
    /// Totals over every connection.
    pub summary: &'a Summary,
    /// What reading the packets found.
    pub capture: &'a CaptureSummary,
}

/// Writes a report while the analysis streams: give it each connection as
/// the analyzer hands it over, then [`ReportWriter::finish`]. JSON writes
/// each connection at once; the diagram formats keep only the connections
/// they draw (the first `max_connections`). Every format adds each
/// connection to the summary. So memory does not grow with the capture.
///
/// ```
/// use reqresp::report::{Ending, Format, RenderOptions, ReportWriter};
/// let mut out = Vec::new();
/// let writer = ReportWriter::new(Format::Json, RenderOptions::default(), &mut out)?;
/// // for c in drained_connections { writer.connection(c)?; }
/// writer.finish(&Ending::of(&Default::default()))?;
/// assert!(String::from_utf8_lossy(&out).contains("\"connections\": []"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReportWriter<W: Write> {
    format: Format,
    options: RenderOptions,
    /// The formats write many small pieces; buffer them whatever `W` is.
    out: io::BufWriter<W>,
    summary: SummaryBuilder,
    kept: Vec<Connection>,
    /// JSON: the serialization buffer of one connection, reused.
    scratch: Vec<u8>,
    /// HTML: the connections the page holds (a selection of a huge capture).
    html: html::Collector,
}

impl<W: Write> ReportWriter<W> {
    /// Starts a report in `format` on `out` (JSON writes its opening now).
    pub fn new(format: Format, options: RenderOptions, out: W) -> io::Result<Self> {
        let mut out = io::BufWriter::with_capacity(64 * 1024, out);
        if format == Format::Json {
            json::begin(&mut out)?;
        }
        Ok(ReportWriter {
            format,
            options,
            out,
            summary: SummaryBuilder::default(),
            kept: Vec::new(),
            scratch: Vec::new(),
            html: html::Collector::default(),
        })
    }

    /// Adds the next connection (in the analysis's order).
    pub fn connection(&mut self, c: Connection) -> io::Result<()> {
        let first = self.summary.connections() == 0;
        self.summary.add(&c);
        match self.format {
            Format::Json => json::connection(&mut self.out, &c, first, &mut self.scratch),
            Format::Html => {
                self.html.add(c);
                Ok(())
            }
            _ => {
                if self
                    .options
                    .max_connections
                    .is_none_or(|m| self.kept.len() < m)
                {
                    self.kept.push(c);
                }
                Ok(())
            }
        }
    }

    /// Writes the end of the report (the diagrams, the summary) and flushes;
    /// returns the output.
    pub fn finish(self, ending: &Ending<'_>) -> io::Result<W> {
        let ReportWriter {
            format,
            options,
            mut out,
            summary,
            kept,
            html,
            ..
        } = self;
        let total_connections = summary.connections();
        let summary = summary.finish(ending.warnings.len() as u64);
        let report = Report {
            packets: ending.packets,
            connections: &kept,
            total_connections,
            warnings: ending.warnings,
            summary: &summary,
            capture: ending.capture,
        };
        match format {
            Format::Json => json::end(&mut out, total_connections > 0, ending, &summary),
            Format::Text => text::render(&report, &options, &mut out),
            Format::Mermaid => mermaid::render(&report, &options, &mut out),
            Format::Svg => svg::render(&report, &options, &mut out),
            Format::Html => html::render(html, ending, &summary, &options, &mut out),
        }?;
        out.into_inner().map_err(io::IntoInnerError::into_error)
    }
}

/// `… N more connections`, the note shared by the diagram formats when
/// `max_connections` hides some.
fn hidden_connections(report: &Report<'_>, options: &RenderOptions) -> Option<String> {
    let shown = shown_connections(report, options) as u64;
    let hidden = report.total_connections.saturating_sub(shown);
    (hidden > 0).then(|| {
        format!(
            "… {hidden} more connection{} not drawn (the summary counts them)",
            if hidden == 1 { "" } else { "s" }
        )
    })
}

/// How many connections the diagram formats draw.
fn shown_connections(report: &Report<'_>, options: &RenderOptions) -> usize {
    options
        .max_connections
        .map_or(report.connections.len(), |m| {
            m.min(report.connections.len())
        })
}

/// `s` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_renders_the_sample_and_an_empty_analysis() {
        for format in Format::ALL {
            for analysis in [sample::analysis(), Analysis::default()] {
                let mut out = Vec::new();
                render(&analysis, format, &RenderOptions::default(), &mut out)
                    .expect("rendering to memory");
                let s = String::from_utf8(out).expect("utf-8 output");
                assert!(!s.is_empty(), "{format} output empty");
            }
        }
    }

    #[test]
    fn huge_analyses_are_capped_but_counted() {
        use crate::analyze::model::{PitfallKind, RecvPitfall, Side};
        let mut a = sample::many_exchanges(100_000);
        a.connections[0].recv_pitfalls = (0..100_000)
            .map(|i| RecvPitfall {
                from: Side::Client,
                kind: PitfallKind::Split,
                message: i,
                count: 2,
            })
            .collect();
        for format in [Format::Text, Format::Mermaid, Format::Svg] {
            let mut out = Vec::new();
            render(&a, format, &RenderOptions::default(), &mut out).expect("render");
            assert!(
                out.len() < 100_000,
                "{format}: {} bytes despite the cap",
                out.len()
            );
            let s = String::from_utf8(out).expect("utf-8");
            assert!(
                s.contains("99950 more exchanges"),
                "{format}: cap not announced"
            );
            assert!(s.contains("100000 exchanges") || s.contains("exchanges    100000"));
        }
    }

    #[test]
    fn a_streamed_report_keeps_only_the_connections_it_draws() {
        let mut a = sample::analysis();
        let one = a.connections[0].clone();
        for i in 0..1000 {
            let mut c = one.clone();
            c.id = 4 + i;
            a.connections.push(c);
        }
        let options = RenderOptions {
            max_connections: Some(2),
            ..RenderOptions::default()
        };
        for format in [Format::Text, Format::Mermaid, Format::Svg, Format::Json] {
            let mut writer = ReportWriter::new(format, options.clone(), Vec::new()).expect("new");
            for c in &a.connections {
                writer.connection(c.clone()).expect("connection");
            }
            let kept = writer.kept.len();
            assert_eq!(kept, if format == Format::Json { 0 } else { 2 }, "{format}");
            let out = writer.finish(&Ending::of(&a)).expect("finish");
            let mut whole = Vec::new();
            render(&a, format, &options, &mut whole).expect("render");
            assert_eq!(out, whole, "{format}: streamed and whole reports differ");
            let s = String::from_utf8(out).expect("utf-8");
            assert!(
                s.contains("1003"),
                "{format}: total connections not counted"
            );
        }
    }

    #[test]
    fn format_names_match_clap() {
        use clap::ValueEnum;
        for f in Format::value_variants() {
            let name = f
                .to_possible_value()
                .expect("visible")
                .get_name()
                .to_owned();
            assert_eq!(name, f.to_string());
        }
    }
}
