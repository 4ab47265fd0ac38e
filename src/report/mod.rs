//! Renders an [`Analysis`] for people and programs: a terminal ladder
//! diagram (`text`), a stable JSON document (`json`), a Mermaid
//! `sequenceDiagram` (`mermaid`) and a self-contained SVG ladder (`svg`).
//!
//! Like hyperfine's exporters: one file per format, each a function from the
//! data model to bytes. No analysis happens here; the only computation is the
//! [`stats::Summary`] (totals and latency percentiles) that every format
//! shares. [`ladder`] orders the rows of one connection's diagram so the three
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

use crate::analyze::model::Analysis;

pub mod json;
pub mod ladder;
pub mod mermaid;
pub mod stats;
pub mod svg;
pub mod text;

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
}

impl Format {
    /// The usual file extension of the format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Json => "json",
            Format::Mermaid => "mmd",
            Format::Svg => "svg",
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
        })
    }
}

/// How to render. The caps only shorten the diagrams; summaries always count
/// everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Text: maximum line width in terminal columns (at least
    /// [`text::MIN_WIDTH`] is used).
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
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: 100,
            color: false,
            max_exchanges: Some(50),
            max_connections: Some(20),
            title: None,
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
/// error such as a closed pipe is returned as is).
pub fn render(
    analysis: &Analysis,
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    // The formats write many small pieces; buffer them whatever `out` is.
    let mut buffered = io::BufWriter::with_capacity(64 * 1024, out);
    let out: &mut dyn Write = &mut buffered;
    match format {
        Format::Text => text::render(analysis, options, out),
        Format::Json => json::render(analysis, options, out),
        Format::Mermaid => mermaid::render(analysis, options, out),
        Format::Svg => svg::render(analysis, options, out),
    }?;
    buffered.flush()
}

/// `… N more connections`, the note shared by the diagram formats when
/// `max_connections` hides some.
fn hidden_connections(analysis: &Analysis, options: &RenderOptions) -> Option<String> {
    let shown = shown_connections(analysis, options);
    let hidden = analysis.connections.len() - shown;
    (hidden > 0).then(|| {
        format!(
            "… {hidden} more connection{} not drawn (the summary counts them)",
            plural(hidden)
        )
    })
}

/// How many connections the diagram formats draw.
fn shown_connections(analysis: &Analysis, options: &RenderOptions) -> usize {
    options
        .max_connections
        .map_or(analysis.connections.len(), |m| {
            m.min(analysis.connections.len())
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
        for format in [Format::Text, Format::Json, Format::Mermaid, Format::Svg] {
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
