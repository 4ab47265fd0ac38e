//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` turns a pcap/pcapng byte stream into [`segment::TcpSegment`]s;
//! [`flows`] tracks connections (handshake, sides, teardown), with
//! [`reassembly`] putting each direction's bytes in order and
//! [`pairing`] cutting them into messages and pairing requests with
//! responses ([`preview`] makes them printable), into a [`model::Analysis`].

pub mod flows;
pub mod model;
pub mod pairing;
pub mod preview;
pub mod reassembly;
pub mod segment;

pub use flows::{Analyzer, Options};
pub use pairing::FramingChoice;
