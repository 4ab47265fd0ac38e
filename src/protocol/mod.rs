//! The wire protocol: framings as pure codecs, and the buffered connection.

pub mod app;
pub mod connection;
pub mod framing;

pub use framing::{FrameError, Framing};
