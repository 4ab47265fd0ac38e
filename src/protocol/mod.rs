//! The wire protocol: framings as pure codecs, and the buffered connection.

pub mod app;
pub mod connection;
pub mod framing;

pub use framing::{FrameError, Framing};

/// reqresp's TCP port, 2222 as in the original lab: the port `reqresp
/// server` listens on and the lab's server uses, the port an address that
/// names none gets, and the port `reqresp analyze` takes for the server side
/// when a capture missed the connection's start.
pub const DEFAULT_PORT: u16 = 2222;
