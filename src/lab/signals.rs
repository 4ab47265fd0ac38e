//! Ctrl-C, SIGTERM and SIGHUP during a lab run: noted, never fatal on the spot.
//!
//! The handler only records the signal. Every wait of the lab (for the
//! server's `listening on` line, for the client, for the server to stop)
//! polls `interrupted` and returns an error, so the run unwinds through
//! the normal path and the `Drop` of each guard (children, capture,
//! topology) cleans up before the process exits with 130. A second Ctrl-C
//! during cleanup changes nothing: cleanup runs to its end.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// The signal (SIGINT, SIGTERM or SIGHUP) received since [`SignalGuard::install`], if any.
pub(crate) fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// While alive, SIGINT, SIGTERM and SIGHUP are recorded instead of ending the
/// process; dropping it restores the previous handlers.
pub(crate) struct SignalGuard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalGuard {
    /// Installs the recording handler for SIGINT, SIGTERM and SIGHUP.
    pub fn install() -> SignalGuard {
        RECEIVED.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction with a zeroed struct, an empty mask and a handler
            // that only does an atomic store; the old action is saved to restore.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        SignalGuard { previous }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: restores an action previously returned by sigaction.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
    }
}

/// Conventional exit status of a process ended by `signal` (130 for SIGINT).
pub fn exit_status(signal: i32) -> u8 {
    128u8.saturating_add(signal as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_the_shell_convention() {
        assert_eq!(exit_status(libc::SIGINT), 130);
        assert_eq!(exit_status(libc::SIGTERM), 143);
    }
}
