//! What the server asks the operating system: the open-file limit, the
//! bytes still queued in a socket, and whether the kernel's listen queue
//! overflowed (connection attempts dropped before the server saw them).

use std::io;

use tokio::net::TcpStream;

/// What a connection's socket still holds in the kernel. Implemented for
/// TCP sockets; in-memory test streams report nothing.
pub(crate) trait SocketQueues {
    /// Bytes written by the server that the peer has not acknowledged yet
    /// (unsent or in flight).
    fn unsent_bytes(&self) -> usize {
        0
    }
}

impl SocketQueues for TcpStream {
    fn unsent_bytes(&self) -> usize {
        queue_bytes(self, libc::TIOCOUTQ)
    }
}

impl SocketQueues for tokio::io::DuplexStream {}

/// One `ioctl` that reports a byte count; 0 when it fails.
fn queue_bytes(stream: &TcpStream, request: libc::Ioctl) -> usize {
    use std::os::fd::AsRawFd;
    let mut bytes: libc::c_int = 0;
    // SAFETY: a valid socket descriptor, and both requests write one c_int.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), request, &mut bytes) };
    if rc == 0 {
        usize::try_from(bytes).unwrap_or(0)
    } else {
        0
    }
}

/// Raises the soft limit on open files to the hard limit (or to `wanted`,
/// if lower), as nginx's `worker_rlimit_nofile` does: every connection is a
/// descriptor, and the common soft default of 1024 is too few for a server
/// with hundreds of connections plus the ones it is refusing or closing.
/// Returns the soft limit in force afterwards.
pub fn raise_open_file_limit(wanted: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = wanted.min(limit.rlim_max);
    if limit.rlim_cur >= target {
        return Ok(limit.rlim_cur);
    }
    limit.rlim_cur = target;
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target)
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt: ListenOverflows` in `/proc/net/netstat`, for the whole
/// network namespace). `None` where the file cannot be read.
pub(crate) fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    parse_listen_overflows(&text)
}

/// Finds `ListenOverflows` in the two `TcpExt:` lines (names, then values).
fn parse_listen_overflows(text: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let column = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn listen_overflows_is_found_by_its_column_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 17 19\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_overflows(text), Some(17));
        assert_eq!(parse_listen_overflows("IpExt: A\nIpExt: 1\n"), None);
        assert_eq!(parse_listen_overflows("TcpExt: A B\nTcpExt: 1\n"), None);
    }

    #[test]
    fn the_running_kernel_reports_listen_overflows() {
        assert!(listen_overflows().is_some());
    }

    #[test]
    fn open_file_limit_is_at_least_what_it_was() {
        let before = raise_open_file_limit(0).unwrap();
        assert!(raise_open_file_limit(4096).unwrap() >= before.min(4096));
    }

    #[tokio::test]
    async fn unsent_bytes_counts_what_the_peer_has_not_taken() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        // The server never reads: writes fill both socket buffers, and what
        // is beyond the server's receive window stays queued at the client.
        let chunk = vec![0u8; 64 * 1024];
        while tokio::time::timeout(Duration::from_millis(200), client.write_all(&chunk))
            .await
            .is_ok()
        {}
        assert!(client.unsent_bytes() > 0);
    }
}
