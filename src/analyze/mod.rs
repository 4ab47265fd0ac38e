//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` turns a pcap/pcapng byte stream into [`segment::TcpSegment`]s;
//! `flows` tracks connections, reassembles both directions and pairs
//! requests with responses into a [`model::Analysis`].

pub mod flows;
pub mod model;
pub mod pairing;
pub mod preview;
pub mod reassembly;
pub mod segment;

pub use flows::{Analyzer, Options};
pub use pairing::FramingChoice;
