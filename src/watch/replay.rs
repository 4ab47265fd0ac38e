//! `reqresp watch -r FILE --speed 1|10|max`: a capture file replayed as if
//! live, at its own pace, ten times faster, or as fast as it reads. A
//! [`PacketSource`] over the file reader that waits until each packet's
//! time has come (in steps of at most [`TICK`], reporting idle time in
//! between, so the view moves while it waits).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::analyze::model::Timestamp;
use crate::analyze::reader::{CaptureFormat, CaptureReader, ReadError, Truncation};
use crate::analyze::segment::RawPacket;
use crate::analyze::source::{Next, PacketSource};

/// Longest wait before the source reports idle time.
const TICK: Duration = Duration::from_millis(50);

/// How fast a capture is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Speed {
    /// At the pace it was captured.
    #[default]
    #[value(name = "1")]
    Real,
    /// Ten times faster.
    #[value(name = "10")]
    Ten,
    /// As fast as it is read.
    Max,
}

impl Speed {
    fn factor(self) -> Option<u64> {
        match self {
            Speed::Real => Some(1),
            Speed::Ten => Some(10),
            Speed::Max => None,
        }
    }
}

/// A packet held: until its time comes, or for stepping.
#[derive(Debug, Default)]
pub(crate) struct Held {
    number: u64,
    pub(crate) time: Timestamp,
    link_type: u32,
    data: Vec<u8>,
    orig_len: u32,
}

impl Held {
    /// A copy of `p`, into `self`'s buffer.
    pub(crate) fn set(&mut self, p: &RawPacket<'_>) {
        self.number = p.number;
        self.time = p.time;
        self.link_type = p.link_type;
        self.orig_len = p.orig_len;
        self.data.clear();
        self.data.extend_from_slice(p.data);
    }

    /// The packet, borrowed.
    pub(crate) fn raw(&self) -> RawPacket<'_> {
        RawPacket {
            number: self.number,
            time: self.time,
            link_type: self.link_type,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// A capture read at a [`Speed`].
pub struct Paced<R> {
    reader: CaptureReader<R>,
    speed: Speed,
    /// The first packet's capture time and when it was replayed.
    start: Option<(Timestamp, Instant)>,
    held: Option<Held>,
    /// Buffer of the packet handed out last.
    out: Held,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Paced<R> {
    /// Replays `reader` at `speed`.
    pub fn new(reader: CaptureReader<R>, speed: Speed) -> Self {
        Paced {
            reader,
            speed,
            start: None,
            held: None,
            out: Held::default(),
            stop: Arc::default(),
        }
    }

    /// A flag that ends the replay when set (at its next packet or tick).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The capture time the replay has reached.
    fn replay_now(&self, start: (Timestamp, Instant), factor: u64) -> Timestamp {
        let elapsed = u64::try_from(start.1.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Timestamp(start.0.0.saturating_add(elapsed.saturating_mul(factor)))
    }
}

impl<R: Read> PacketSource for Paced<R> {
    fn next_packet(&mut self) -> Result<Next<'_>, ReadError> {
        if self.stop.load(Ordering::Acquire) {
            return Ok(Next::End);
        }
        if self.held.is_none() {
            let Some(p) = self.reader.next_packet()? else {
                return Ok(Next::End);
            };
            let mut held = std::mem::take(&mut self.out);
            held.set(&p);
            self.held = Some(held);
        }
        let held = self.held.as_ref().expect("held above");
        if let Some(factor) = self.speed.factor() {
            let start = *self.start.get_or_insert((held.time, Instant::now()));
            let due = held.time.0.saturating_sub(start.0.0) / factor;
            let waited = u64::try_from(start.1.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if due > waited {
                std::thread::sleep(Duration::from_nanos(due - waited).min(TICK));
                if due - waited > u64::try_from(TICK.as_nanos()).unwrap_or(u64::MAX) {
                    return Ok(Next::Idle(self.replay_now(start, factor)));
                }
            }
        }
        self.out = self.held.take().expect("held above");
        Ok(Next::Packet(self.out.raw()))
    }

    fn format(&self) -> CaptureFormat {
        self.reader.format()
    }

    fn position(&self) -> u64 {
        self.reader.bytes_consumed()
    }

    /// Replayed packets are handed to the analyzer as they come.
    fn is_live(&self) -> bool {
        true
    }

    fn truncation(&self) -> Option<&Truncation> {
        self.reader.truncation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::{hello, segments_pcap};

    #[test]
    fn every_packet_comes_out_in_order_at_any_speed() {
        let file = segments_pcap(&hello().segs);
        for speed in [Speed::Real, Speed::Max] {
            let mut p = Paced::new(CaptureReader::new(&file[..]).unwrap(), speed);
            let mut numbers = Vec::new();
            loop {
                match p.next_packet().unwrap() {
                    Next::Packet(raw) => numbers.push(raw.number),
                    Next::Idle(_) => {}
                    Next::End => break,
                }
            }
            assert_eq!(numbers, [1, 2, 3, 4, 5], "{speed:?}");
        }
    }
}
