//! A hook the lab calls once its capture runs and before its client talks:
//! `reqresp lab --watch` opens its live view there, so the view sees the
//! whole conversation.

use std::fmt;
use std::sync::Arc;

use crate::capture::CaptureConfig;

/// Called with the lab's capture configuration (interface, filter,
/// promiscuous mode) right after the lab's capture started, before the
/// client runs; the lab waits until it returns.
#[derive(Clone)]
pub struct CaptureHook(Arc<dyn Fn(&CaptureConfig) + Send + Sync>);

impl CaptureHook {
    /// A hook running `f`.
    pub fn new(f: impl Fn(&CaptureConfig) + Send + Sync + 'static) -> Self {
        CaptureHook(Arc::new(f))
    }

    /// Runs the hook.
    pub fn call(&self, config: &CaptureConfig) {
        (self.0)(config)
    }
}

impl fmt::Debug for CaptureHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptureHook")
    }
}
