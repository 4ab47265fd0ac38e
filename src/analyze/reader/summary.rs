//! What a read of packets found besides the segments: counts by reason of
//! the packets skipped, warnings, truncation. [`ReadSummary::decode`] is the
//! one place a packet becomes a segment or a counted skip.

use super::record::{CaptureFormat, Truncation};
use crate::analyze::decode::{Skip, decode};
use crate::analyze::model::CaptureSummary;
use crate::analyze::model::SkipCounts;
use crate::analyze::segment::{RawPacket, TcpSegment};

use crate::analyze::warnings::Warnings;

/// What was read from a capture, besides the segments themselves.
#[derive(Debug, Clone)]
pub struct ReadSummary {
    /// The file format.
    pub format: CaptureFormat,
    /// Packet records read (every link type, TCP or not).
    pub packets: u64,
    /// Packets decoded into TCP segments and handed to the callback.
    pub tcp_segments: u64,
    /// Packets skipped, by reason.
    pub skipped: SkipCounts,
    /// Bytes of the input consumed.
    pub bytes: u64,
    /// True when the file was cut short mid-record (see the warnings).
    pub truncated: bool,
    /// The first `MAX_WARNINGS` warnings, in order, and their count.
    pub warnings: Warnings,
    /// Time of the first packet read.
    pub first_time: Option<crate::analyze::model::Timestamp>,
    /// Unsupported link types warned about (at most 16, each once).
    unsupported_links: Vec<u32>,
}

impl ReadSummary {
    /// A summary of nothing read yet from a capture of `format`.
    pub fn new(format: CaptureFormat) -> Self {
        ReadSummary {
            format,
            packets: 0,
            tcp_segments: 0,
            skipped: SkipCounts::default(),
            bytes: 0,
            truncated: false,
            warnings: Warnings::default(),
            first_time: None,
            unsupported_links: Vec::new(),
        }
    }

    /// Counts one packet read and decodes it: its TCP segment, or `None`
    /// when it is skipped (counted by reason, warned about when it is
    /// malformed, cut, or of a link type not seen before).
    #[inline]
    pub fn decode<'a>(&mut self, packet: &RawPacket<'a>) -> Option<TcpSegment<'a>> {
        if self.packets == 0 {
            self.first_time = Some(packet.time);
        }
        self.packets += 1;
        match decode(packet) {
            Ok(segment) => {
                self.tcp_segments += 1;
                Some(segment)
            }
            Err(skip) => {
                self.skip(packet.number, skip);
                None
            }
        }
    }

    #[cold]
    fn skip(&mut self, number: u64, skip: Skip) {
        let counts = &mut self.skipped;
        match skip {
            Skip::NotIp => counts.not_ip += 1,
            Skip::NotTcp => counts.not_tcp += 1,
            Skip::Fragment => counts.fragments += 1,
            Skip::UnsupportedLink(link) => {
                counts.unsupported_link += 1;
                if !self.unsupported_links.contains(&link) && self.unsupported_links.len() < 16 {
                    self.unsupported_links.push(link);
                    self.warn(format!(
                        "packet {number}: {skip}; packets with this link type are skipped"
                    ));
                }
            }
            Skip::CutBySnaplen(_) => {
                counts.cut_by_snaplen += 1;
                self.warn(format!("packet {number} skipped: {skip}"));
            }
            Skip::Malformed(_) => {
                counts.malformed += 1;
                self.warn(format!("packet {number} skipped: {skip}"));
            }
        }
    }

    /// Ends the reading: warns about fragments and a cut-short file, and
    /// records the bytes consumed.
    pub fn finish(&mut self, truncation: Option<&Truncation>, bytes: u64) {
        if self.skipped.fragments > 0 {
            self.warn(format!(
                "{} IP fragments were skipped: IP reassembly is not supported, \
                 so data they carry is missing from the streams",
                self.skipped.fragments
            ));
        }
        if let Some(warning) = truncation {
            self.truncated = true;
            self.warn(warning.to_string());
        }
        self.bytes = bytes;
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// What the analysis reports of this reading.
    pub fn capture(&self) -> CaptureSummary {
        CaptureSummary {
            format: match self.format {
                CaptureFormat::Pcap {
                    nanosecond: false, ..
                } => "pcap",
                CaptureFormat::Pcap {
                    nanosecond: true, ..
                } => "pcap-ns",
                CaptureFormat::PcapNg => "pcapng",
                CaptureFormat::Live => "live",
            }
            .to_string(),
            tcp_segments: self.tcp_segments,
            skipped: self.skipped,
            truncated: self.truncated,
            first_packet_time: self.first_time,
        }
    }
}
