//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` turns a pcap/pcapng byte stream into [`segment::TcpSegment`]s;
//! `flows` tracks connections, reassembles both directions and pairs
//! requests with responses into a [`model::Analysis`].

pub mod decode;
pub mod model;
pub mod reader;
pub mod segment;
