//! Capture analysis: from packets to request/response exchanges.
//!
//! `reader` frames a pcap/pcapng byte stream into packets and `decode` turns
//! each into a [`segment::TcpSegment`]; `flows` tracks connections,
//! `reassembly` rebuilds each direction's byte stream and `pairing` cuts it
//! into messages and pairs requests with responses into a [`model::Analysis`].
//!
//! [`analyze_stream`] is the streaming pipeline: every connection goes to a
//! sink as soon as it is over, so memory follows the live connections, not
//! the file. [`analyze_capture`] collects them into one [`model::Analysis`]
//! for small captures. Past a few thousand packets the pipeline runs on two
//! threads: the caller's reads and decodes, a second one tracks the flows
//! (and calls the sink), with a bounded queue of reused batches between them.

pub mod decode;
pub mod flows;
pub mod model;
pub mod pairing;
pub mod preview;
pub mod reader;
pub mod reassembly;
pub mod segment;
pub mod tcp_events;

pub use flows::{Analyzer, Options};
pub use pairing::FramingChoice;

use std::convert::Infallible;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::thread;

use model::{Analysis, Connection};
use reader::ReadError;
use segment::TcpSegment;

/// Why a streamed analysis stopped.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The capture could not be read (not a capture, corrupt, I/O error).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The sink could not take a connection (e.g. the report's output failed).
    #[error("cannot write the report: {0}")]
    Output(#[source] io::Error),
}

/// Reads a whole capture from `input` and analyzes it as it goes: each
/// connection is handed to `sink` once it is over (in order of first
/// packet), the rest at the end. Returns the [`Analysis`] without its
/// connections: packet count, framing and warnings (the reader's joined to
/// the analyzer's). `on_progress` gets the bytes consumed so far, for a
/// progress bar. A sink error stops the reading at once.
pub fn analyze_stream<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
    sink: impl FnMut(Connection) -> io::Result<()> + Send,
) -> Result<Analysis, AnalyzeError> {
    stream(input, options, on_progress, sink)?.map_err(AnalyzeError::Output)
}

/// Reads a whole capture from `input` and analyzes it into one
/// [`Analysis`] holding every connection: for small captures (the
/// lab's); large ones go through [`analyze_stream`].
pub fn analyze_capture<R: Read>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
) -> Result<Analysis, ReadError> {
    let mut connections = Vec::new();
    let Ok(mut analysis) = stream(input, options, on_progress, |c| {
        connections.push(c);
        Ok::<(), Infallible>(())
    })?;
    analysis.connections = connections;
    Ok(analysis)
}

/// Segments handed from the reading thread to the analyzing one at a time.
const BATCH_SEGMENTS: usize = 8192;
/// Payload bytes after which a batch is handed over even if not full (a
/// segment carries at most [`reader::MAX_PACKET_LEN`] more), so that the
/// batches in flight hold a few MiB at most whatever the packets.
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued between the two threads.
const BATCHES_QUEUED: usize = 4;
/// Batches in all: queued, being analyzed, being filled.
const BATCHES_IN_ALL: usize = BATCHES_QUEUED + 2;

/// A [`TcpSegment`] whose payload sits in its [`Batch`]'s byte buffer.
#[derive(Debug, Clone)]
struct BatchedSegment {
    number: u64,
    time: model::Timestamp,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    seq: u32,
    ack: u32,
    flags: segment::TcpFlags,
    /// Where the captured payload is in [`Batch::bytes`].
    payload: std::ops::Range<usize>,
    payload_len: u32,
    window: u16,
    window_scale: Option<u8>,
}

/// Segments read and decoded by the reading thread, their payloads copied
/// one after the other into one buffer. Batches go back and forth between
/// the threads and are reused, so a long capture allocates a handful.
#[derive(Debug, Default)]
struct Batch {
    segments: Vec<BatchedSegment>,
    bytes: Vec<u8>,
}

impl Batch {
    fn push(&mut self, s: &TcpSegment<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(s.payload);
        self.segments.push(BatchedSegment {
            number: s.number,
            time: s.time,
            src: s.src,
            dst: s.dst,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            payload: start..self.bytes.len(),
            payload_len: s.payload_len,
            window: s.window,
            window_scale: s.window_scale,
        });
    }

    fn is_full(&self) -> bool {
        self.segments.len() >= BATCH_SEGMENTS || self.bytes.len() >= BATCH_BYTES
    }

    fn clear(&mut self) {
        self.segments.clear();
        self.bytes.clear();
    }

    /// Feeds every segment to `analyzer`, handing the connections that are
    /// over to `sink`; stops at the first sink error.
    fn analyze<E>(
        &self,
        analyzer: &mut Analyzer,
        sink: &mut impl FnMut(Connection) -> Result<(), E>,
    ) -> Result<(), E> {
        for s in &self.segments {
            analyzer.push(&TcpSegment {
                number: s.number,
                time: s.time,
                src: s.src,
                dst: s.dst,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                payload: &self.bytes[s.payload.clone()],
                payload_len: s.payload_len,
                window: s.window,
                window_scale: s.window_scale,
            });
            while let Some(c) = analyzer.next_settled() {
                sink(c)?;
            }
        }
        Ok(())
    }
}

/// The analyzing thread's side of the pipeline: batches come in on one
/// channel and go back empty on the other.
struct Worker<'scope, S, E> {
    full: mpsc::SyncSender<Batch>,
    empty: mpsc::Receiver<Batch>,
    /// Batches made so far (at most [`BATCHES_IN_ALL`]).
    batches: usize,
    handle: thread::ScopedJoinHandle<'scope, (Analyzer, S, Option<E>)>,
}

/// The pipeline of [`analyze_stream`], generic in the sink's error: the
/// outer `Result` is the capture's, the inner one the sink's.
///
/// Two threads once the capture is bigger than one batch: this one reads
/// and decodes packets into [`Batch`]es, a second one runs the
/// [`Analyzer`] and the sink, with a bounded queue between them (memory
/// stays flat when one side is slower). A capture of one batch or less (the
/// lab's, the fuzzer's) is analyzed here without a thread.
fn stream<R: Read, E: Send, S: FnMut(Connection) -> Result<(), E> + Send>(
    input: R,
    options: Options,
    on_progress: impl FnMut(u64),
    sink: S,
) -> Result<Result<Analysis, E>, ReadError> {
    thread::scope(|scope| {
        let mut start: Option<(Analyzer, S)> = Some((Analyzer::new(options), sink));
        let mut worker: Option<Worker<'_, S, E>> = None;
        let mut batch = Batch::default();
        let summary = reader::read_capture_until(
            input,
            |segment| {
                batch.push(segment);
                if !batch.is_full() {
                    return ControlFlow::Continue(());
                }
                let w = worker.get_or_insert_with(|| {
                    let (analyzer, sink) = start.take().expect("the analyzer starts once");
                    spawn(scope, analyzer, sink)
                });
                if w.full.send(std::mem::take(&mut batch)).is_err() {
                    // The analyzing thread stopped: the sink failed.
                    return ControlFlow::Break(());
                }
                // A fixed pool of batches: new ones until there are
                // BATCHES_IN_ALL, then wait for one to come back.
                batch = match w.empty.try_recv() {
                    Ok(b) => b,
                    Err(_) if w.batches < BATCHES_IN_ALL => {
                        w.batches += 1;
                        Batch::default()
                    }
                    Err(_) => match w.empty.recv() {
                        Ok(b) => b,
                        Err(_) => return ControlFlow::Break(()),
                    },
                };
                ControlFlow::Continue(())
            },
            on_progress,
        );
        let (mut analyzer, mut sink, mut failed) = match worker {
            Some(w) => {
                if summary.is_ok() {
                    // The last batch; if the thread stopped, join says why.
                    let _ = w.full.send(std::mem::take(&mut batch));
                }
                drop(w.full);
                match w.handle.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            None => {
                let (mut analyzer, mut sink) = start.take().expect("not handed to a thread");
                let failed = match &summary {
                    Ok(_) => batch.analyze(&mut analyzer, &mut sink).err(),
                    Err(_) => None,
                };
                (analyzer, sink, failed)
            }
        };
        let summary = summary?;
        if let Some(e) = failed.take() {
            return Ok(Err(e));
        }
        let packets = summary.packets;
        for warning in summary.into_warnings() {
            analyzer.warn(warning);
        }
        let mut analysis = analyzer.finish();
        analysis.packets = packets;
        for c in std::mem::take(&mut analysis.connections) {
            if let Err(e) = sink(c) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(analysis))
    })
}

/// Starts the analyzing thread with `BATCHES_QUEUED` batches of room.
fn spawn<'scope, E: Send + 'scope, S: FnMut(Connection) -> Result<(), E> + Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    mut analyzer: Analyzer,
    mut sink: S,
) -> Worker<'scope, S, E> {
    let (full, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_QUEUED);
    let (empty_tx, empty) = mpsc::sync_channel::<Batch>(BATCHES_IN_ALL);
    let handle = scope.spawn(move || {
        for mut batch in full_rx {
            if let Err(e) = batch.analyze(&mut analyzer, &mut sink) {
                return (analyzer, sink, Some(e));
            }
            batch.clear();
            // Room for every batch there is: this never blocks.
            let _ = empty_tx.try_send(batch);
        }
        (analyzer, sink, None)
    });
    Worker {
        full,
        empty,
        batches: 1,
        handle,
    }
}

#[cfg(test)]
mod tests {
    use super::flows::tests::{Script, Seg};
    use super::model::Side;
    use super::reader::testing::pcap;
    use super::*;

    /// `n` overlapping echo connections, interleaved segment by segment,
    /// some with pipelined requests, one left open: several batches' worth.
    fn interleaved(n: u16) -> Vec<Seg> {
        let mut scripts: Vec<Vec<Seg>> = Vec::new();
        for i in 0..n {
            let t = u64::from(i) * 1_000;
            let mut w = Script::new(1000 + u32::from(i), 90_000);
            w.client.set_port(10_000 + i);
            w.handshake(t, 100);
            w.c(t + 1_000, format!("hello {i}\n").as_bytes());
            if i % 3 == 0 {
                w.c(t + 1_050, b"again\nand again\n");
            }
            w.s(t + 1_200, format!("Echo: hello {i}\n").as_bytes());
            if i % 3 == 0 {
                w.s(t + 1_300, b"Echo: again\nEcho: and again\n");
            }
            if i + 1 < n {
                w.fin(t + 2_000, Side::Client);
                w.fin(t + 2_100, Side::Server);
                w.ack(t + 2_150, Side::Client);
            }
            scripts.push(w.segs);
        }
        let mut segs: Vec<Seg> = scripts.into_iter().flatten().collect();
        segs.sort_by_key(|s| s.time);
        segs
    }

    /// The segments as a raw-IPv4 pcap, as tcpdump would write them.
    fn capture(segs: &[Seg]) -> Vec<u8> {
        let packets: Vec<(u32, u32, Vec<u8>)> =
            segs.iter()
                .map(|s| {
                    let (std::net::SocketAddr::V4(src), std::net::SocketAddr::V4(dst)) =
                        (s.src, s.dst)
                    else {
                        unreachable!("the scripts are IPv4");
                    };
                    let mut b =
                        etherparse::PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
                            .tcp(src.port(), dst.port(), s.seq, 65535);
                    if s.flags.syn {
                        b = b.syn();
                    }
                    if s.flags.ack {
                        b = b.ack(s.ack);
                    }
                    if s.flags.fin {
                        b = b.fin();
                    }
                    if s.flags.rst {
                        b = b.rst();
                    }
                    let mut out = Vec::new();
                    b.write_to_vec(&mut out, &s.payload).unwrap();
                    // As `Seg::view` times it: microseconds, in nanoseconds.
                    let time = s.time * 1_000;
                    (
                        (time / 1_000_000_000) as u32,
                        (time % 1_000_000_000) as u32,
                        out,
                    )
                })
                .collect();
        let records: Vec<(u32, u32, &[u8], u32)> = packets
            .iter()
            .map(|(s, f, d)| (*s, *f, &d[..], d.len() as u32))
            .collect();
        pcap(true, false, decode::linktype::RAW, 65535, &records)
    }

    #[test]
    fn the_two_thread_pipeline_finds_what_one_analyzer_finds() {
        let segs = interleaved(2_000);
        assert!(segs.len() > 2 * BATCH_SEGMENTS, "several batches");
        let mut reference = Analyzer::new(Options::default());
        for (i, s) in segs.iter().enumerate() {
            reference.push(&s.view(i as u64 + 1));
        }
        let reference = reference.finish();

        let file = capture(&segs);
        let mut streamed = Vec::new();
        let mut progress = 0;
        let analysis = analyze_stream(
            &file[..],
            Options::default(),
            |bytes| progress = bytes,
            |c| {
                streamed.push(c);
                Ok(())
            },
        )
        .expect("the capture is fine");
        assert_eq!(progress, file.len() as u64);
        assert_eq!(analysis.packets, segs.len() as u64);
        assert_eq!(streamed.len(), 2_000);
        assert!(
            streamed
                .iter()
                .all(|c| c.exchanges.len() == 1 || c.exchanges.len() == 3),
            "every connection paired"
        );
        assert_eq!(
            serde_json::to_value(&streamed).unwrap(),
            serde_json::to_value(&reference.connections).unwrap()
        );
    }

    #[test]
    fn a_failing_sink_stops_the_pipeline() {
        let file = capture(&interleaved(3_000));
        let mut taken = 0;
        let result = analyze_stream(
            &file[..],
            Options::default(),
            |_| {},
            |_| {
                taken += 1;
                if taken == 100 {
                    Err(io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(result, Err(AnalyzeError::Output(e)) if e.to_string() == "disk full"));
        assert_eq!(taken, 100, "no connection after the error");
    }

    #[test]
    fn a_corrupt_record_after_several_batches_is_refused() {
        let mut file = capture(&interleaved(2_000));
        // An impossible length in the header of record 15 001, after
        // several batches went to the analyzing thread.
        let mut at = 24;
        for _ in 0..15_000 {
            let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap());
            at += 16 + caplen as usize;
        }
        file[at + 8..at + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let result = analyze_stream(&file[..], Options::default(), |_| {}, |_| Ok(()));
        assert!(
            matches!(result, Err(AnalyzeError::Read(ReadError::Corrupt { offset, .. })) if offset == at as u64),
            "{result:?}"
        );
    }
}
