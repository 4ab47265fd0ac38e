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
