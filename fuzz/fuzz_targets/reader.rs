//! Fuzzes the capture reader and packet decoder: any bytes, read as a
//! pcap/pcapng stream, must give `Ok` or a `ReadError`, never a panic or a
//! hang, and every segment's `payload_len` covers its captured payload.
//! Run: `cargo +nightly fuzz run reader fuzz/corpus/reader fuzz/seeds/reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::reader(data));
