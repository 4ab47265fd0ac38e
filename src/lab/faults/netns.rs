//! Entering a lab host's network namespace from one thread of the lab.
//!
//! Netlink sockets (the NFQUEUE handler's) and TCP sockets (the
//! `slow-reader` client's) belong to the namespace of the thread that
//! creates them. A thread moved with `setns(CLONE_NEWNET)` creates them
//! inside a lab host while the rest of the lab stays in the root namespace;
//! such a thread is used for that one job and ends with it.

use std::os::fd::AsRawFd;
use std::path::Path;

/// Where `ip netns add` mounts a namespace.
const NETNS_DIR: &str = "/run/netns";

/// Moves the calling thread into the network namespace `name` (as made by
/// `ip netns add`). Only for threads made for the purpose: the thread stays there.
pub(crate) fn enter(name: &str) -> std::io::Result<()> {
    let file = std::fs::File::open(Path::new(NETNS_DIR).join(name))?;
    // SAFETY: setns on a file descriptor we own, for this thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
