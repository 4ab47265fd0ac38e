//! End-to-end tests: the real `reqresp` binary over real sockets, real
//! captures read back by tcpdump/tshark, real network namespaces.
//! One test target with shared helpers in `support`.

mod support;

mod analyze;
mod bench;
mod capture;
mod client;
mod compose;
mod lab;
mod protocols;
mod server;
