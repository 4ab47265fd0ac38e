//! Fuzzes the whole `reqresp analyze` pipeline: any bytes, read as a
//! pcap/pcapng stream, go through the reader, the flow tracker (reassembly,
//! pairing, all four framings) and every report format. Nothing may panic
//! or hang; small buffer bounds make the give-up and streaming paths run.
//! Run: `cargo +nightly fuzz run analyze fuzz/corpus/analyze fuzz/seeds/analyze`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::analyze(data));
