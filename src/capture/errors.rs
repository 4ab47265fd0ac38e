//! What can go wrong when capturing, each with a message that says what to do.
//!
//! libpcap reports every failure as a string; [`CaptureError`] sorts them into
//! the cases a user acts on differently (get the capability, pick another
//! interface, fix the filter, fix the output path).

use std::io;
use std::path::PathBuf;

/// An error while opening, filtering, writing or reading a live capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The process may not open a packet socket.
    #[error(
        "capturing on {interface} needs the CAP_NET_RAW capability: run with sudo, \
         or grant it once with `sudo setcap cap_net_raw,cap_net_admin=eip $(which reqresp)` \
         (libpcap: {message})"
    )]
    NoPrivilege {
        /// The interface asked for.
        interface: String,
        /// libpcap's own wording.
        message: String,
    },

    /// No interface of that name exists.
    #[error("no interface named '{interface}'; interfaces on this machine: {}", list_or_none(.available))]
    UnknownInterface {
        /// The interface asked for.
        interface: String,
        /// The interfaces libpcap can capture on (`any` included).
        available: Vec<String>,
    },

    /// libpcap could not compile the BPF filter expression.
    #[error(
        "bad capture filter '{filter}': {message} (the syntax is tcpdump's, see `man pcap-filter`)"
    )]
    BadFilter {
        /// The filter text as given.
        filter: String,
        /// libpcap's message.
        message: String,
    },

    /// The output file could not be opened or written; the reason is the
    /// source error (printed after it by `anyhow`'s `{:#}`).
    #[error("cannot write the capture to {}", .path.display())]
    Output {
        /// The output path (`-` for stdout).
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// libpcap refused to open the interface for another reason.
    #[error("cannot capture on {interface}: {message}")]
    Open {
        /// The interface asked for.
        interface: String,
        /// libpcap's message.
        message: String,
    },

    /// Reading packets failed after the capture had started (e.g. the
    /// interface went away).
    #[error("capture on {interface} failed while reading packets: {message}")]
    Read {
        /// The interface being captured.
        interface: String,
        /// libpcap's message.
        message: String,
    },

    /// The capture thread could not be started or ended abnormally.
    #[error("the capture thread failed: {0}")]
    Thread(String),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none found (is libpcap able to list devices?)".to_string()
    } else {
        names.join(", ")
    }
}

/// The text of a libpcap error, without the crate's `libpcap error: ` prefix.
pub(crate) fn pcap_message(err: &pcap::Error) -> String {
    match err {
        pcap::Error::PcapError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// True when libpcap's activation message means "not allowed"
/// (`PCAP_ERROR_PERM_DENIED`: "You don't have permission to perform this
/// capture on that device (socket: Operation not permitted)").
pub(crate) fn is_permission_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("permission") || lower.contains("operation not permitted")
}

/// An `io::Error` for a libpcap error on the output file: the errno when
/// there is one, otherwise libpcap's message.
pub(crate) fn output_io_error(err: &pcap::Error) -> io::Error {
    match err {
        pcap::Error::ErrnoError(errno) => io::Error::from_raw_os_error(errno.0),
        pcap::Error::IoError(kind) => io::Error::from(*kind),
        pcap::Error::PcapError(msg) => {
            // pcap_dump_open says "<path>: <strerror>"; keep only the reason.
            let reason = msg.rsplit(": ").next().unwrap_or(msg);
            io::Error::other(reason.to_string())
        }
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_message_names_the_capability_and_the_fix() {
        let err = CaptureError::NoPrivilege {
            interface: "lo".into(),
            message: "You don't have permission".into(),
        };
        let text = err.to_string();
        assert!(text.starts_with("capturing on lo needs the CAP_NET_RAW capability"));
        assert!(text.contains("sudo setcap cap_net_raw,cap_net_admin=eip"));
    }

    #[test]
    fn unknown_interface_lists_the_existing_ones() {
        let err = CaptureError::UnknownInterface {
            interface: "nope0".into(),
            available: vec!["lo".into(), "any".into()],
        };
        assert_eq!(
            err.to_string(),
            "no interface named 'nope0'; interfaces on this machine: lo, any"
        );
    }

    #[test]
    fn libpcap_permission_wording_is_recognised() {
        assert!(is_permission_message(
            "You don't have permission to perform this capture on that device \
             (socket: Operation not permitted)"
        ));
        assert!(!is_permission_message("No such device exists"));
    }

    #[test]
    fn output_error_keeps_the_os_reason() {
        let err = pcap::Error::PcapError("/nope/x.pcap: No such file or directory".into());
        assert_eq!(
            output_io_error(&err).to_string(),
            "No such file or directory"
        );
        let err = pcap::Error::IoError(io::ErrorKind::StorageFull);
        assert_eq!(output_io_error(&err).kind(), io::ErrorKind::StorageFull);
    }
}
