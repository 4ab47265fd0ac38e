//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` frames a pcap/pcapng byte stream into packets and `decode` turns
//! each into a [`segment::TcpSegment`]; `flows` tracks connections,
//! `reassembly` rebuilds each direction's byte stream and `pairing` cuts it
//! into messages and pairs requests with responses into a [`model::Analysis`].
//!
//! [`analyze_stream`] is the streaming pipeline: every connection goes to a
//! sink as soon as it is over, so memory follows the live connections, not
//! the file. [`analyze_capture`] collects them into one [`model::Analysis`]
//! for small captures.

pub mod decode;
pub mod flows;
pub mod model;
pub mod pairing;
pub mod preview;
pub mod reader;
pub mod reassembly;
pub mod segment;

pub use flows::{Analyzer, Options};
pub use pairing::FramingChoice;

use std::convert::Infallible;
use std::io::{self, Read};
use std::ops::ControlFlow;

use model::{Analysis, Connection};
use reader::ReadError;

/// Why a streamed analysis stopped.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The capture could not be read (not a capture, corrupt, I/O error).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The sink could not take a connection (e.g. the report's output failed).
    #[error("cannot write the report: {0}")]
    Output(#[source] io::Error),
}

/// Reads a whole capture from `input` and analyzes it as it goes: each
/// connection is handed to `sink` once it is over (in order of first
/// packet), the rest at the end. Returns the [`Analysis`] without its
/// connections: packet count, framing and warnings (the reader's joined to
/// the analyzer's). `on_progress` gets the bytes consumed so far, for a
/// progress bar. A sink error stops the reading at once.
pub fn analyze_stream<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
    sink: impl FnMut(Connection) -> io::Result<()>,
) -> Result<Analysis, AnalyzeError> {
    stream(input, options, on_progress, sink)?.map_err(AnalyzeError::Output)
}

/// Reads a whole capture from `input` and analyzes it into one
/// [`Analysis`] holding every connection: for small captures (the
/// lab's); large ones go through [`analyze_stream`].
pub fn analyze_capture<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
) -> Result<Analysis, ReadError> {
    let mut connections = Vec::new();
    let Ok(mut analysis) = stream(input, options, on_progress, |c| {
        connections.push(c);
        Ok::<(), Infallible>(())
    })?;
    analysis.connections = connections;
    Ok(analysis)
}

/// The pipeline of [`analyze_stream`], generic in the sink's error: the
/// outer `Result` is the capture's, the inner one the sink's.
fn stream<R: Read, E>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
    mut sink: impl FnMut(Connection) -> Result<(), E>,
) -> Result<Result<Analysis, E>, ReadError> {
    let mut analyzer = Analyzer::new(options);
    let mut failed: Option<E> = None;
    let summary = reader::read_capture_until(
        input,
        |segment| {
            analyzer.push(segment);
            if analyzer.has_settled() {
                for c in analyzer.drain_settled() {
                    if let Err(e) = sink(c) {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        },
        on_progress,
    )?;
    if let Some(e) = failed {
        return Ok(Err(e));
    }
    let packets = summary.packets;
    for warning in summary.into_warnings() {
        analyzer.warn(warning);
    }
    let mut analysis = analyzer.finish();
    analysis.packets = packets;
    for c in std::mem::take(&mut analysis.connections) {
        if let Err(e) = sink(c) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(analysis))
}
