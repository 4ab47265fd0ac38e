//! End-to-end tests: the real `reqresp` binary over real sockets, real
//! captures read back by tcpdump/tshark, real network namespaces.
//! One test target with shared helpers in `support`.

mod support;

mod analyze;
mod bench;
mod capture;
mod check;
mod client;
mod compose;
mod fuzz_corpus;
mod html;
mod lab;
mod lab_usercmd;
mod protocols;
mod scenarios;
mod server;
mod snapshots;
mod tcp_events;
mod tickets;
mod watch;
