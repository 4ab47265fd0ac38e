//! Capture-based evidence: one capture for the whole run, on the interface
//! that reaches the server, filtered to the server's port; afterwards each
//! failed case's packets are cut out of it by the client ports its
//! connections used, written as a pcap of their own and drawn as a ladder
//! by `reqresp analyze`'s text report.
//!
//! One capture rather than one per case: starting and stopping a capture
//! costs a few hundred milliseconds (libpcap hands packets over in blocks),
//! which over fifteen cases would be most of the run.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use crate::analyze::{self, FramingChoice};
use crate::capture::{Capture, CaptureConfig, CaptureHandle, TimestampPrecision};
use crate::protocol::Framing;
use crate::report::{self, RenderOptions};

/// A capture running during the check.
pub(crate) struct EvidenceCapture {
    handle: CaptureHandle,
    interface: String,
    server: SocketAddr,
    path: PathBuf,
    keep: bool,
}

/// A finished capture, ready to be cut per case.
pub(crate) struct Finished {
    /// The interface it ran on.
    pub interface: String,
    /// The server's address.
    pub server: SocketAddr,
    path: PathBuf,
    keep: bool,
}

/// The interface whose traffic reaches `server`: `lo` for a loopback (or
/// own) address, else the interface holding the local address the kernel
/// picks for it, else `any`.
pub(crate) fn interface_for(server: SocketAddr) -> String {
    if server.ip().is_loopback() {
        return "lo".into();
    }
    let local = (|| {
        let bind: SocketAddr = match server.ip() {
            IpAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
            IpAddr::V6(_) => "[::]:0".parse().ok()?,
        };
        // A UDP connect sends nothing; it only asks the kernel for a route.
        let socket = UdpSocket::bind(bind).ok()?;
        socket.connect(server).ok()?;
        socket.local_addr().ok().map(|a| a.ip())
    })();
    let Some(local) = local else {
        return "any".into();
    };
    if local == server.ip() {
        return "lo".into();
    }
    pcap::Device::list()
        .ok()
        .and_then(|devices| {
            devices
                .into_iter()
                .find(|d| d.addresses.iter().any(|a| a.addr == local))
                .map(|d| d.name)
        })
        .unwrap_or_else(|| "any".into())
}

/// The BPF filter for the server's traffic.
fn server_filter(server: SocketAddr) -> String {
    format!("tcp and host {} and port {}", server.ip(), server.port())
}

/// Starts capturing the server's traffic. The whole capture goes to
/// `out/check.pcap` when `out` is given, else to a temporary file removed
/// after the run. Fails, with the reason, without root or CAP_NET_RAW.
pub(crate) fn start(server: SocketAddr, out: Option<&Path>) -> Result<EvidenceCapture, String> {
    let interface = interface_for(server);
    let (path, keep) = match out {
        Some(dir) => (dir.join("check.pcap"), true),
        None => (
            std::env::temp_dir().join(format!("reqresp-check-{}.pcap", std::process::id())),
            false,
        ),
    };
    let mut config = CaptureConfig::new(interface.clone(), path.clone());
    config.filter = Some(server_filter(server));
    config.precision = TimestampPrecision::Nano;
    let handle = Capture::start(config).map_err(|e| e.to_string())?;
    Ok(EvidenceCapture {
        handle,
        interface,
        server,
        path,
        keep,
    })
}

impl EvidenceCapture {
    /// The interface captured on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Stops the capture and closes its file.
    pub fn finish(self) -> Result<Finished, String> {
        let finished = Finished {
            interface: self.interface,
            server: self.server,
            path: self.path,
            keep: self.keep,
        };
        match self.handle.stop() {
            Ok(_) => Ok(finished),
            Err(e) => {
                finished.discard_temporary();
                Err(e.to_string())
            }
        }
    }
}

impl Finished {
    /// The whole capture's file, when it is kept (`--out`).
    pub fn kept_file(&self) -> Option<PathBuf> {
        self.keep.then(|| self.path.clone())
    }

    /// Removes the whole capture unless it is kept.
    pub fn discard_temporary(self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Writes the packets of the connections from these client `ports` to
    /// `out`; returns how many there were.
    pub fn cut(&self, ports: &[u16], out: &Path) -> Result<usize, String> {
        let mut cap = pcap::Capture::from_file_with_precision(&self.path, pcap::Precision::Nano)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let ports = ports
            .iter()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let filter = format!("{} and ({ports})", server_filter(self.server));
        cap.filter(&filter, true)
            .map_err(|e| format!("filter {filter:?}: {e}"))?;
        let mut save = cap
            .savefile(out)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        let mut packets = 0;
        loop {
            match cap.next_packet() {
                Ok(packet) => {
                    save.write(&packet);
                    packets += 1;
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => return Err(format!("reading {}: {e}", self.path.display())),
            }
        }
        save.flush()
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(packets)
    }
}

/// The packets of `pcap` analysed and drawn as `reqresp analyze` draws
/// them (text, no colour, a few connections).
pub(crate) fn packet_ladder(
    pcap: &Path,
    server: SocketAddr,
    framing: Framing,
) -> Result<String, String> {
    let analysis = analyze_file(pcap, server, framing)?;
    let render = RenderOptions {
        width: 100,
        color: false,
        max_exchanges: Some(12),
        max_connections: Some(super::runner::LADDER_CONNECTIONS),
        title: None,
        acks: false,
    };
    let mut out = Vec::new();
    report::render(&analysis, report::Format::Text, &render, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `pcap` analysed as `reqresp analyze` would, with the check's server
/// and framing.
fn analyze_file(
    pcap: &Path,
    server: SocketAddr,
    framing: Framing,
) -> Result<analyze::model::Analysis, String> {
    let file = std::fs::File::open(pcap).map_err(|e| format!("{}: {e}", pcap.display()))?;
    let options = analyze::Options {
        server: Some(server),
        framing: match framing {
            Framing::Line => FramingChoice::Line,
            Framing::Length => FramingChoice::Length,
            Framing::Raw => FramingChoice::Raw,
        },
        // The HTML report lists each message's packets.
        keep_packets: true,
        ..analyze::Options::default()
    };
    analyze::analyze_capture(std::io::BufReader::new(file), options, |_| {})
        .map_err(|e| format!("{}: {e}", pcap.display()))
}

/// Writes `report.html` (the interactive report of `reqresp analyze
/// --format html`) of the whole run's capture `pcap` into `dir`, beside
/// it; returns its path.
pub fn write_html(
    pcap: &Path,
    server: SocketAddr,
    framing: Framing,
    dir: &Path,
) -> Result<std::path::PathBuf, String> {
    let analysis = analyze_file(pcap, server, framing)?;
    let options = RenderOptions {
        title: Some(pcap.display().to_string()),
        ..RenderOptions::default()
    };
    let mut html = Vec::new();
    report::render(&analysis, report::Format::Html, &options, &mut html)
        .map_err(|e| e.to_string())?;
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_captured_on_lo() {
        assert_eq!(interface_for("127.0.0.1:2222".parse().unwrap()), "lo");
        assert_eq!(interface_for("[::1]:2222".parse().unwrap()), "lo");
    }

    #[test]
    fn the_filter_names_host_and_port() {
        assert_eq!(
            server_filter("10.0.0.2:2222".parse().unwrap()),
            "tcp and host 10.0.0.2 and port 2222"
        );
    }
}
