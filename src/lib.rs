//! reqresp: the request/response pattern over TCP, built, measured and seen.
//!
//! The pieces, and which way they depend on each other:
//!
//! - [`protocol`]: message framings (line, length, raw) as pure codecs over
//!   bytes, the application codecs the analyzer pairs (HTTP, RESP, ...), and
//!   the server's buffered async connection. What server, client, bench and
//!   analyzer share is the codec ([`protocol::Framing`]); the client and
//!   bench drive their sockets with loops of their own (one request at a
//!   time, a pipelined `select!`) rather than that connection.
//! - [`server`]: the accept loop, limits, graceful shutdown, and the services
//!   (echo, tickets) behind a small trait.
//! - [`client`]: the scripted and interactive client.
//! - [`bench`](mod@bench): the load generator behind `reqresp bench`: many connections,
//!   pipelining, open-loop rates and HDR latency percentiles.
//! - [`capture`]: live capture through libpcap into standard pcap files.
//! - [`analyze`]: reads pcap/pcapng, decodes packets, reassembles TCP and pairs
//!   each request with its response into an [`analyze::model::Analysis`].
//! - [`report`]: renders an analysis as text, JSON, Mermaid or SVG.
//! - [`check`]: `reqresp check`, a suite of cases that judges any
//!   request/response server on the wire, with ladders as evidence.
//! - [`watch`]: `reqresp watch`, the live terminal view (and replay and
//!   stepping) over the analyze pipeline, drawn with the report's ladder.
//! - [`lab`]: the whole lab on one machine: namespaces, bridge, capture,
//!   server, client and report.
//! - `human` (internal): durations for people, one style for every output.
//!
//! `protocol` ← `server`, `client`, `bench`; `protocol` ← `analyze` ← `report`;
//! `lab` uses all of them. Only the binary's `cli` sees everything.

#![warn(missing_docs)]

pub mod analyze;
pub mod bench;
pub mod capture;
pub mod check;
pub mod client;
pub(crate) mod human;
pub mod lab;
pub mod protocol;
pub mod report;
pub mod server;
pub mod watch;

#[cfg(test)]
pub(crate) mod test_support;
