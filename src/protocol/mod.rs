//! The wire protocol: framings as pure codecs (shared by the server, the
//! client, the load generator and the analyzer), the application codecs in
//! [`app`], and the buffered [`connection::Connection`] the server's handler
//! reads and writes through.

pub mod app;
pub mod connection;
pub(crate) mod framing;

pub use framing::{FrameError, Framing};

/// reqresp's TCP port, 2222 as in the original lab: the port `reqresp
/// server` listens on and the lab's server uses, the port an address that
/// names none gets, and the port `reqresp analyze` takes for the server side
/// when a capture missed the connection's start.
pub const DEFAULT_PORT: u16 = 2222;
