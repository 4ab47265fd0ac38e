//! Fuzzes the whole `reqresp analyze` pipeline: any bytes, read as a
//! pcap/pcapng stream, go through the reader, the flow tracker (reassembly,
//! pairing, all four framings) and every report format. Nothing may panic
//! or hang; small buffer bounds make the give-up and streaming paths run.
//! Run: `cargo +nightly fuzz run analyze` (seeds: tests/fixtures/*.pcap*).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqresp::analyze::{FramingChoice, Options, analyze_capture};
use reqresp::report::{Format, RenderOptions, render};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the framing and the limits; the rest is the file.
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
        ..Options::default()
    };
    let Ok(analysis) = analyze_capture(capture, options, |_| {}) else {
        return;
    };
    let render_options = RenderOptions {
        width: 40 + usize::from(pick >> 4) * 8,
        ..RenderOptions::default()
    };
    for format in [Format::Text, Format::Json, Format::Mermaid, Format::Svg] {
        let mut out = Vec::new();
        render(&analysis, format, &render_options, &mut out).expect("writing to memory");
        if format == Format::Json {
            serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
        }
    }
});
