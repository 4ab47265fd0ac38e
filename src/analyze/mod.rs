//! Capture analysis: from packets to request/response exchanges.

pub mod model;
