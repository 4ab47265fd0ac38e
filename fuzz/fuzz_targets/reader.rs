//! Fuzzes the capture reader and packet decoder: any bytes, read as a
//! pcap/pcapng stream, must give `Ok` or a `ReadError`, never a panic or a
//! hang, and every segment's `payload_len` covers its captured payload.
//! Run: `cargo +nightly fuzz run reader` (seeds: tests/fixtures/*.pcap*).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqresp::analyze::reader::read_capture;

fuzz_target!(|data: &[u8]| {
    let _ = read_capture(data, |segment| {
        assert!(segment.payload_len as usize >= segment.payload.len());
    });
});
