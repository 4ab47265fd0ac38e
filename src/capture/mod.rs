//! Live capture through libpcap into standard pcap files.
//!
//! [`Capture::start`] opens an interface, applies a BPF filter and starts
//! writing every matching packet into a pcap file (or stdout) on a thread of
//! its own. When it returns, the capture is active: packets sent from then on
//! are captured. [`CaptureHandle::stop`] ends it, flushes the file and returns
//! the counts. `reqresp capture` and `reqresp lab` are both built on it.
//!
//! The file is written by libpcap itself (`pcap_dump`), so it is exactly what
//! `tcpdump -w` writes and every tool that reads tcpdump's files reads it.

mod errors;
mod live;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use errors::CaptureError;
pub(crate) use live::open_live;
pub use live::{Capture, CaptureHandle};

/// Default snapshot length: as much of each packet as tcpdump keeps.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Default kernel buffer for packets not yet read, in bytes (tcpdump's
/// default, `-B`, is 2 MiB).
pub const DEFAULT_BUFFER_BYTES: u32 = 16 << 20;

/// How precise the timestamps written to the file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TimestampPrecision {
    /// Microseconds: the classic pcap format every tool reads.
    Micro,
    /// Nanoseconds: the pcap variant with magic `a1b23c4d`, read by tcpdump,
    /// tshark and Wireshark; latencies on loopback are a few microseconds.
    #[default]
    Nano,
}

/// What to capture and where to write it.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Interface name as libpcap knows it (`lo`, `eth0`, `any`).
    pub interface: String,
    /// Output pcap file; `-` writes to stdout.
    pub output: PathBuf,
    /// BPF filter expression in tcpdump syntax, if any.
    pub filter: Option<String>,
    /// Stop after this many packets have been written.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// Timestamp precision of the written file.
    pub precision: TimestampPrecision,
    /// Kernel buffer for packets not yet read, in bytes (as tcpdump's
    /// `-B`): a burst the reader cannot take at once waits there, and past
    /// it the kernel drops packets.
    pub buffer_bytes: u32,
}

impl CaptureConfig {
    /// A capture of everything on `interface` into `output`, with the
    /// defaults: no filter, no limit, [`DEFAULT_SNAPLEN`], not promiscuous,
    /// nanosecond timestamps, a [`DEFAULT_BUFFER_BYTES`] kernel buffer.
    pub fn new(interface: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        CaptureConfig {
            interface: interface.into(),
            output: output.into(),
            filter: None,
            count: None,
            duration: None,
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: false,
            precision: TimestampPrecision::default(),
            buffer_bytes: DEFAULT_BUFFER_BYTES,
        }
    }

    /// True when the capture goes to stdout.
    pub fn writes_stdout(&self) -> bool {
        self.output.as_os_str() == "-"
    }
}

/// The counts of a finished capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    /// Packets written to the file.
    pub captured: u64,
    /// Packets that passed the filter, as libpcap counted them (`ps_recv`).
    pub received: u64,
    /// Packets the kernel dropped because the buffer was full (`ps_drop`).
    pub dropped: u64,
    /// Packets the interface dropped, where the driver reports it (`ps_ifdrop`).
    pub interface_dropped: u64,
}

impl fmt::Display for CaptureStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packet{} captured, {} dropped by kernel",
            self.captured,
            if self.captured == 1 { "" } else { "s" },
            self.dropped
        )
    }
}
