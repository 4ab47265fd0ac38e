//! Which way the lab runs when asked for `auto`: network namespaces when
//! the process may build them (root with CAP_NET_ADMIN and CAP_SYS_ADMIN),
//! else loopback, with the reason to print.

use super::Mode;

/// The effective capabilities of this process (`CapEff` in /proc/self/status).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Chooses the mode for `auto`, with the reason to print.
pub(super) fn choose_mode(requested: Mode) -> (Mode, String) {
    match requested {
        Mode::Netns => (Mode::Netns, "network namespaces (--mode netns)".into()),
        Mode::Loopback => (Mode::Loopback, "loopback (--mode loopback)".into()),
        Mode::Auto => {
            let caps = effective_caps();
            let has = |cap: u32| caps & (1 << cap) != 0;
            // `ip netns` needs CAP_SYS_ADMIN (namespaces, mounts) besides
            // CAP_NET_ADMIN, and the `ip` child must inherit both: that is root.
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            if root && has(CAP_NET_ADMIN) && has(CAP_SYS_ADMIN) {
                (Mode::Netns, "network namespaces (running as root)".into())
            } else if root {
                (
                    Mode::Loopback,
                    "loopback: root without CAP_NET_ADMIN and CAP_SYS_ADMIN (a restricted container?) cannot build namespaces".into(),
                )
            } else {
                (
                    Mode::Loopback,
                    "loopback: not root and no CAP_NET_ADMIN, so no network namespaces (`sudo reqresp lab` builds them)".into(),
                )
            }
        }
    }
}
