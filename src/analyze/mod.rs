//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` frames a pcap/pcapng byte stream into packets and `decode` turns
//! each into a [`segment::TcpSegment`]; `flows` tracks connections,
//! `reassembly` rebuilds each direction's byte stream and `pairing` cuts it
//! into messages and pairs requests with responses into a [`model::Analysis`].

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

use std::io::Read;

use model::Analysis;
use reader::ReadError;

/// Reads a whole capture from `input` and analyzes it: the reader's packets
/// go through the flow tracker, and the reader's warnings join the
/// analysis's. `on_progress` gets the bytes consumed so far, for a progress
/// bar.
pub fn analyze_capture<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
) -> Result<Analysis, ReadError> {
    let mut analyzer = Analyzer::new(options);
    let summary =
        reader::read_capture_with_progress(input, |segment| analyzer.push(segment), on_progress)?;
    let packets = summary.packets;
    for warning in summary.into_warnings() {
        analyzer.warn(warning);
    }
    let mut analysis = analyzer.finish();
    analysis.packets = packets;
    Ok(analysis)
}
