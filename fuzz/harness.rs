//! What each fuzz target does with one input, shared by the targets in
//! `fuzz_targets/` (nightly, cargo fuzz) and by the stable test that runs
//! the committed seeds and the fixtures through them (`fuzz_corpus::` in
//! tests/e2e), so the harness cannot rot unnoticed: CI compiles and runs it.
//! Both include this file with `#[path]`; it uses only reqresp's public API.

// Each fuzz target binary calls one of the two functions.
#![allow(dead_code)]

use reqresp::analyze::reader::read_capture;
use reqresp::analyze::{FramingChoice, Options, analyze_capture};
use reqresp::report::{Format, RenderOptions, render};

/// The capture reader and packet decoder over arbitrary bytes: `Ok` or a
/// `ReadError`, never a panic or a hang, and every segment's `payload_len`
/// covers its captured payload.
pub fn reader(data: &[u8]) {
    let _ = read_capture(data, |segment| {
        assert!(segment.payload_len as usize >= segment.payload.len());
    });
}

/// The whole `reqresp analyze` pipeline: reader, flow tracker (reassembly,
/// pairing in every framing, with small buffer bounds when asked) and every
/// report format (the JSON must parse back). The first input byte picks
/// framing (bits 0-1), small bounds (bit 2), `--port 2222` (bit 3) and the
/// text width (bits 4-7); the rest is the file.
pub fn analyze(data: &[u8]) {
    let Some((&pick, capture)) = data.split_first() else {
        return;
    };
    let framing = match pick & 3 {
        0 => FramingChoice::Auto,
        1 => FramingChoice::Line,
        2 => FramingChoice::Length,
        _ => FramingChoice::Raw,
    };
    let small = pick & 4 != 0;
    let options = Options {
        framing,
        port: (pick & 8 != 0).then_some(2222),
        max_message: if small { 16 } else { 1 << 20 },
        max_buffered_per_flow: if small { 64 } else { 4 << 20 },
        // Packet records and pure ACKs, as the JSON, HTML and --acks keep them.
        keep_packets: true,
        keep_acks: true,
        ..Options::default()
    };
    let Ok(analysis) = analyze_capture(capture, options, |_| {}) else {
        return;
    };
    let render_options = RenderOptions {
        width: 40 + usize::from(pick >> 4) * 8,
        ..RenderOptions::default()
    };
    for format in Format::ALL {
        let mut out = Vec::new();
        render(&analysis, format, &render_options, &mut out).expect("writing to memory");
        if format == Format::Json {
            serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
        }
    }
}
