//! Capture analysis: from packets to request/response exchanges.
//!
//! A [`source::PacketSource`] yields packets: [`reader::CaptureReader`]
//! frames a pcap/pcapng byte stream (a file or a pipe) with the container
//! parsers of `reader::pcap` and `reader::pcapng`, [`source::LiveSource`]
//! captures live. `decode` turns each packet into a
//! `segment::TcpSegment`; [`flows`] tracks connections, `reassembly`
//! rebuilds each direction's byte stream and `pairing` cuts it into
//! messages and pairs requests with responses into the [`model`].
//!
//! `pipeline` runs all of it on two threads and hands out [`Event`]s as
//! they happen: connections as they are over (so memory follows the live
//! connections, not the file) and, for a live view, each exchange as soon
//! as it is settled. [`analyze_stream`] is the pipeline for a report;
//! [`analyze_capture`] collects every connection into one
//! [`model::Analysis`] for small captures.

pub(crate) mod decode;
pub(crate) mod event;
pub mod flows;
pub mod model;
pub(crate) mod pairing;
pub(crate) mod parked_form;
pub(crate) mod pipeline;
pub(crate) mod preview;
pub mod reader;
pub(crate) mod reassembly;
pub(crate) mod segment;
pub mod source;
pub(crate) mod tcp_events;
pub mod testing;
pub(crate) mod warnings;

pub use event::Event;
pub use flows::{Analyzer, Options};
pub use pairing::FramingChoice;
pub use pipeline::{AnalyzeError, Pipeline, PipelineError};

use std::convert::Infallible;
use std::io::{self, Read};

use model::{Analysis, Connection};
use reader::{CaptureReader, ReadError};

/// Reads a whole capture from `input` and analyzes it as it goes: each
/// connection is handed to `sink` once it is over (in order of first
/// packet, unless one still open would hold back many finished ones: see
/// [`Analyzer::next_settled`]), the rest at the end. Returns the [`Analysis`] without its
/// connections: packet count, framing and warnings (the reader's joined to
/// the analyzer's). `on_progress` gets the bytes consumed so far, for a
/// progress bar. A sink error stops the reading at once.
pub fn analyze_stream<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
    mut sink: impl FnMut(Connection) -> io::Result<()> + Send,
) -> Result<Analysis, AnalyzeError> {
    let source = CaptureReader::new(input)?;
    Pipeline::new(options).run(source, on_progress, |event| match event {
        Event::Closed(c) => sink(*c),
        _ => Ok(()),
    })
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
    let source = CaptureReader::new(input)?;
    let result = Pipeline::new(options).run(source, on_progress, |event| {
        if let Event::Closed(c) = event {
            connections.push(*c);
        }
        Ok::<(), Infallible>(())
    });
    let mut analysis = match result {
        Ok(analysis) => analysis,
        Err(PipelineError::Read(e)) => return Err(e),
        Err(PipelineError::Sink(never)) => match never {},
    };
    // In the order they opened, even where a long-lived one let others
    // finish ahead of it.
    connections.sort_by_key(|c| c.id);
    analysis.connections = connections;
    Ok(analysis)
}
