//! What can be set about the flow tracker ([`Options`] and their
//! defaults), and how they choose the sides of a connection whose start
//! was not captured.

use std::net::SocketAddr;
use std::time::Duration;

use crate::analyze::pairing::FramingChoice;
use crate::analyze::segment::TcpSegment;
use crate::protocol::DEFAULT_PORT;

/// The default memory budget of the flow table ([`Options::memcap`]).
pub const DEFAULT_MEMCAP: usize = 128 << 20;

/// How to analyze a capture. The defaults: `auto` framing, no server given,
/// 1 MiB messages, 4 MiB held per connection, 40-character previews,
/// [`DEFAULT_MEMCAP`] for the flow table.
#[derive(Debug, Clone)]
pub struct Options {
    /// How to cut streams into messages.
    pub framing: FramingChoice,
    /// The server's address, for connections whose SYN was not captured.
    pub server: Option<SocketAddr>,
    /// The server's port, for connections whose SYN was not captured.
    pub port: Option<u16>,
    /// Largest message decoded from a buffer; bigger ones are streamed past
    /// (counted and previewed, not held whole).
    pub max_message: usize,
    /// Most out-of-order bytes held per connection before giving up on a hole.
    pub max_buffered_per_flow: usize,
    /// Characters of preview per message.
    pub preview_len: usize,
    /// Capture time without a packet after which an open connection is
    /// over: reported as timed out, with what was seen (Zeek's
    /// `tcp_inactivity_timeout`, 5 minutes).
    pub inactivity_timeout: Duration,
    /// The same for a connection of which only SYNs were seen (a scan, a
    /// flood, a refused or filtered port): Zeek's `tcp_SYN_timeout`, 5 s.
    pub syn_timeout: Duration,
    /// Memory budget of the flow table, in bytes (`--memcap`, like
    /// Suricata's `stream.memcap`): connections tracked, what they paired
    /// so far, out-of-order bytes held. Past it the idle connections first
    /// give back their allocations' spare room (nothing is lost), then
    /// those idle the longest are evicted (reported with state `evicted`).
    pub memcap: usize,
    /// Keep every pure ACK in [`Connection::acks`](crate::analyze::model::Connection::acks)
    /// (`--acks`), not only their count.
    pub keep_acks: bool,
    /// Keep, for each message, the records of the packets that carried it
    /// (frame, time, flags, relative seq/ack, length; at most
    /// [`Frames::MAX`](crate::analyze::model::Frames::MAX) per message), for
    /// the JSON and HTML reports. Without it only the frame numbers are kept.
    pub keep_packets: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            framing: FramingChoice::Auto,
            server: None,
            port: None,
            max_message: 1 << 20,
            max_buffered_per_flow: 4 << 20,
            preview_len: 40,
            inactivity_timeout: Duration::from_secs(300),
            syn_timeout: Duration::from_secs(5),
            memcap: DEFAULT_MEMCAP,
            keep_acks: false,
            keep_packets: false,
        }
    }
}

/// Decides client and server for a connection's first segment; the third
/// value says how, when it was not a SYN or SYN-ACK.
pub(super) fn choose_sides(
    seg: &TcpSegment<'_>,
    opts: &Options,
) -> (SocketAddr, SocketAddr, Option<String>) {
    let (a, b) = (seg.src, seg.dst);
    if seg.flags.syn && !seg.flags.rst {
        return if seg.flags.ack {
            (b, a, None)
        } else {
            (a, b, None)
        };
    }
    let server_is_src = |why: String| (b, a, Some(why));
    let server_is_dst = |why: String| (a, b, Some(why));
    if let Some(s) = opts.server {
        if s == a {
            return server_is_src(format!("by --server {s}"));
        }
        if s == b {
            return server_is_dst(format!("by --server {s}"));
        }
    }
    if let Some(p) = opts.port {
        if a.port() == p && b.port() != p {
            return server_is_src(format!("by --port {p}"));
        }
        if b.port() == p && a.port() != p {
            return server_is_dst(format!("by --port {p}"));
        }
    }
    let guess = "by a guess (say --server or --port to be sure)";
    if a.port() == DEFAULT_PORT && b.port() != DEFAULT_PORT {
        return server_is_src(format!(
            "{guess}: port {DEFAULT_PORT} is the lab's server port"
        ));
    }
    if b.port() == DEFAULT_PORT && a.port() != DEFAULT_PORT {
        return server_is_dst(format!(
            "{guess}: port {DEFAULT_PORT} is the lab's server port"
        ));
    }
    if a.port() < b.port() {
        return server_is_src(format!("{guess}: the lower port, {}", a.port()));
    }
    if b.port() < a.port() {
        return server_is_dst(format!("{guess}: the lower port, {}", b.port()));
    }
    server_is_dst(format!("{guess}: the receiver of the first packet"))
}
