//! `reqresp watch -r FILE --step`: a capture walked one packet at a time,
//! forward and back, like Packet Tracer's simulation mode for a real
//! capture. The file is read into memory once (at most
//! [`MAX_STEP_PACKETS`] packets, [`MAX_STEP_BYTES`] bytes); the view after
//! packet *n* is what the analyzer makes of packets 1 to *n*. Forward feeds
//! one more packet to the same analyzer; back analyzes 1 to *n − 1* anew
//! (an analyzer cannot forget), which for a lab-sized capture is instant.

use std::io::Read;

use crate::analyze::decode::decode;
use crate::analyze::reader::{CaptureReader, ReadError};
use crate::analyze::segment::TcpFlags;
use crate::analyze::{Analyzer, Options};
use crate::report::stats::format_bytes;

use super::replay::Held;
use super::state::State;

/// Most packets a stepped capture may hold.
pub const MAX_STEP_PACKETS: usize = 200_000;
/// Most captured bytes a stepped capture may hold.
pub const MAX_STEP_BYTES: usize = 256 << 20;

/// Why a capture cannot be stepped through.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// It is too big to hold.
    #[error(
        "the capture has more than {MAX_STEP_PACKETS} packets or {} MiB: too big to step \
         through; replay it with --speed max, or cut it first (tshark -r in.pcap -w out.pcap -c 1000)",
        MAX_STEP_BYTES >> 20
    )]
    TooBig,
}

/// A capture being stepped through.
pub struct Stepper {
    packets: Vec<Held>,
    options: Options,
    analyzer: Analyzer,
    /// What the analysis of packets `1..=pos` shows.
    pub state: State,
    /// Packets analyzed so far.
    pub pos: usize,
}

impl Stepper {
    /// Reads the whole capture; nothing analyzed yet.
    pub fn new<R: Read>(input: R, options: Options) -> Result<Stepper, StepError> {
        let mut reader = CaptureReader::new(input)?;
        let mut packets = Vec::new();
        let mut bytes = 0;
        while let Some(p) = reader.next_packet()? {
            bytes += p.data.len();
            if packets.len() == MAX_STEP_PACKETS || bytes > MAX_STEP_BYTES {
                return Err(StepError::TooBig);
            }
            let mut held = Held::default();
            held.set(&p);
            packets.push(held);
        }
        Ok(Stepper {
            analyzer: Analyzer::new(options.clone()).with_packet_events(),
            options,
            packets,
            state: State::default(),
            pos: 0,
        })
    }

    /// Analyzes one more packet; false at the end.
    pub fn forward(&mut self) -> bool {
        let Some(p) = self.packets.get(self.pos) else {
            return false;
        };
        self.pos += 1;
        if let Ok(segment) = decode(&p.raw()) {
            self.analyzer.push(&segment);
        }
        while let Some(e) = self.analyzer.next_event() {
            self.state.apply(e);
        }
        self.state.generation += 1;
        true
    }

    /// Goes back one packet; false at the start.
    pub fn back(&mut self) -> bool {
        if self.pos == 0 {
            return false;
        }
        let target = self.pos - 1;
        self.analyzer = Analyzer::new(self.options.clone()).with_packet_events();
        let generation = self.state.generation;
        self.state = State::default();
        self.pos = 0;
        while self.pos < target {
            self.forward();
        }
        self.state.generation = generation + 1;
        true
    }

    /// The last packet analyzed, in words: its number, time, addresses,
    /// flags and size.
    pub fn describe(&self) -> String {
        let total = self.packets.len();
        let Some(p) = self.pos.checked_sub(1).and_then(|i| self.packets.get(i)) else {
            return format!("packet 0 of {total}: press → to take the first");
        };
        let first = self.packets.first().map_or(p.time, |f| f.time);
        let at = crate::human::format_micros(p.time.micros_since(first));
        match decode(&p.raw()) {
            Ok(s) => format!(
                "packet {} of {total} · +{at} · {} → {} · {} · {} payload",
                self.pos,
                s.src,
                s.dst,
                flag_names(s.flags),
                format_bytes(u64::from(s.payload_len))
            ),
            Err(_) => format!("packet {} of {total} · +{at} · not TCP", self.pos),
        }
    }
}

/// `SYN`, `SYN-ACK`, `ACK PSH`, `FIN ACK`, `RST`.
fn flag_names(f: TcpFlags) -> String {
    let mut names = Vec::new();
    if f.syn && f.ack {
        names.push("SYN-ACK");
    } else if f.syn {
        names.push("SYN");
    }
    if f.fin {
        names.push("FIN");
    }
    if f.rst {
        names.push("RST");
    }
    if f.ack && !f.syn {
        names.push("ACK");
    }
    if f.psh {
        names.push("PSH");
    }
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::{hello, line_options, segments_pcap};

    fn capture() -> Vec<u8> {
        let mut w = hello();
        w.client_closes(2_000);
        segments_pcap(&w.segs)
    }

    #[test]
    fn stepping_back_shows_what_stepping_forward_showed() {
        let file = capture();
        let mut s = Stepper::new(&file[..], line_options()).unwrap();
        assert_eq!(s.packets.len(), 8);
        assert!(s.describe().starts_with("packet 0 of 8"));
        let mut seen = Vec::new();
        while s.forward() {
            let c = s.state.conns.get(&1).unwrap();
            seen.push((c.status, c.exchanges, c.packets_seen));
        }
        assert_eq!(s.pos, 8);
        assert!(s.describe().contains("ACK"), "{}", s.describe());
        // The SYN alone is the handshake; the response makes the exchange.
        assert_eq!(seen[0].0, super::super::state::Status::Handshake);
        assert_eq!(seen[4].1, 1);
        for back in (1..8).rev() {
            assert!(s.back());
            let c = s.state.conns.get(&1).unwrap();
            assert_eq!(
                (c.status, c.exchanges, c.packets_seen),
                seen[back - 1],
                "after packet {back}"
            );
        }
        assert!(s.back());
        assert!(s.state.conns.is_empty());
        assert!(!s.back());
        assert!(s.describe().starts_with("packet 0"));
    }

    #[test]
    fn the_packet_described_names_its_flags_and_size() {
        let file = capture();
        let mut s = Stepper::new(&file[..], line_options()).unwrap();
        s.forward();
        assert_eq!(
            s.describe(),
            "packet 1 of 8 · +0.000 ms · 10.0.0.2:40000 → 10.0.0.1:2222 · SYN · 0 B payload"
        );
        for _ in 0..3 {
            s.forward();
        }
        assert!(
            s.describe().ends_with("ACK PSH · 6 B payload")
                || s.describe().ends_with("ACK · 6 B payload"),
            "{}",
            s.describe()
        );
    }
}
