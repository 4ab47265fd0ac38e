//! The analysis pipeline: packets from a [`PacketSource`] (a file, a pipe,
//! a live capture) through decoding and the flow tracker, out as
//! [`Event`]s to a sink, as they happen.
//!
//! # Events
//! The sink is a closure `FnMut(Event) -> Result<(), E>`, called on the
//! analyzing thread:
//! - [`Event::Closed`] for every connection, once it is over (an RST, or
//!   every FIN acknowledged, its ports reused, its inactivity timeout, or
//!   evicted for the memory budget), whole, in the order the connections
//!   opened, except that one still open holds back at most 1,024 finished
//!   ones (or 5 s of capture time: see [`Analyzer::next_settled`]); the
//!   connections still open when the source ends come last. This is all [`crate::analyze::analyze_stream`] asks for, and
//!   all a report needs.
//! - With [`Pipeline::with_exchange_events`] (for a live view), also
//!   [`Event::Opened`] when a connection's first packet is seen and
//!   [`Event::Exchange`] as soon as an exchange is settled (its response is
//!   complete), while its connection is still open. Every exchange is also
//!   in its connection's [`Event::Closed`]; those settled only by the close
//!   come only there. For one connection the order is `Opened`, its
//!   `Exchange`s in order, `Closed`.
//!
//! A sink error stops the pipeline at once; [`Pipeline::run`] returns it as
//! [`PipelineError::Sink`].
//!
//! # Threads
//! Two threads once the capture is bigger than one batch (or at the first
//! packet of a live source): the caller's reads and decodes packets into
//! batches, a second one runs the [`Analyzer`] and the sink, with a
//! bounded queue of reused batches between them (memory stays flat when one
//! side is slower). A capture of one batch or less (the lab's, the fuzzer's)
//! is analyzed on the caller's thread. A live source's batches are handed
//! over at once when it goes idle, and otherwise as soon as they span
//! [`LIVE_LATENCY`] of capture time, so events lag the traffic by little
//! more than that; its
//! [`Next::Idle`] reaches the analyzer as [`Analyzer::tick`].

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::event::Event;
use super::flows::{Analyzer, Options};
use super::model::{Analysis, Timestamp};
use super::reader::{PROGRESS_STEP, ReadError, ReadSummary};
use super::segment::{TcpFlags, TcpSegment};
use super::source::{Next, PacketSource};

/// Segments handed from the reading thread to the analyzing one at a time.
pub(crate) const BATCH_SEGMENTS: usize = 8192;
/// Payload bytes after which a batch is handed over even if not full (a
/// segment carries at most [`super::reader::MAX_PACKET_LEN`] more), so that
/// the batches in flight hold a few MiB at most whatever the packets.
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued between the two threads.
const BATCHES_QUEUED: usize = 4;
/// Batches in all: queued, being analyzed, being filled.
const BATCHES_IN_ALL: usize = BATCHES_QUEUED + 2;
/// Longest a live source's packet waits in a batch before the analyzer
/// sees it (in capture time: the batch is handed over at the first packet
/// captured this long after its first, or when the source goes idle).
pub(crate) const LIVE_LATENCY: Duration = Duration::from_millis(20);

/// Why a pipeline stopped early.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError<E> {
    /// The source failed (not a capture, corrupt, I/O or capture error).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The sink refused an event (e.g. the report's output failed).
    #[error("the consumer of the analysis stopped")]
    Sink(E),
}

/// The error of [`crate::analyze::analyze_stream`]: a sink that writes a report.
pub type AnalyzeError = PipelineError<io::Error>;

/// How to run an analysis; [`Pipeline::run`] runs it.
///
/// ```no_run
/// use reqresp::analyze::{Event, Options, Pipeline};
/// use reqresp::analyze::reader::CaptureReader;
/// let source = CaptureReader::new(std::io::stdin().lock())?;
/// let analysis = Pipeline::new(Options::default())
///     .with_exchange_events()
///     .run(source, |_| {}, |event| {
///         if let Event::Exchange { connection, exchange, .. } = event {
///             println!("#{connection}: {:?}", exchange.latency_us);
///         }
///         Ok::<(), std::convert::Infallible>(())
///     })?;
/// println!("{} packets", analysis.packets);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pipeline {
    options: Options,
    exchange_events: bool,
    packet_events: bool,
}

impl Pipeline {
    /// A pipeline that hands out only [`Event::Closed`].
    pub fn new(options: Options) -> Self {
        Pipeline {
            options,
            exchange_events: false,
            packet_events: false,
        }
    }

    /// Also hands out [`Event::Opened`] and [`Event::Exchange`].
    pub fn with_exchange_events(mut self) -> Self {
        self.exchange_events = true;
        self
    }

    /// Also hands out [`Event::Opened`], [`Event::Exchange`], [`Event::Tcp`]
    /// and an [`Event::Segment`] per segment (see
    /// [`Analyzer::with_packet_events`]).
    pub fn with_packet_events(mut self) -> Self {
        self.packet_events = true;
        self.with_exchange_events()
    }

    /// Reads `source` to its end and analyzes it as it goes, calling `sink`
    /// with each event and `on_progress` (on the caller's thread) with the
    /// source's position about every MiB and at the end. Returns the
    /// [`Analysis`] without its connections (they went to the sink): packet
    /// count, framing, warnings (the reader's then the analyzer's) and what
    /// was read.
    pub fn run<S, E, K>(
        self,
        mut source: S,
        mut on_progress: impl FnMut(u64),
        sink: K,
    ) -> Result<Analysis, PipelineError<E>>
    where
        S: PacketSource,
        E: Send,
        K: FnMut(Event) -> Result<(), E> + Send,
    {
        let mut analyzer = Analyzer::new(self.options);
        if self.packet_events {
            analyzer = analyzer.with_packet_events();
        } else if self.exchange_events {
            analyzer = analyzer.with_exchange_events();
        }
        thread::scope(|scope| {
            let mut feed = Feed::new(analyzer, sink, source.is_live());
            let read = read(&mut source, &mut feed, scope, &mut on_progress);
            let (analyzer, sink, failed) = feed.end(read.is_ok());
            let summary = read?;
            if let Some(e) = failed {
                return Err(PipelineError::Sink(e));
            }
            finish(analyzer, sink, summary).map_err(PipelineError::Sink)
        })
    }
}

/// Reads and decodes every packet of `source` into `feed`; stops early when
/// the analyzing side stopped (its error comes out of [`Feed::end`]).
fn read<'scope, S: PacketSource, E: Send + 'scope, K>(
    source: &mut S,
    feed: &mut Feed<'scope, K, E>,
    scope: &'scope thread::Scope<'scope, '_>,
    on_progress: &mut impl FnMut(u64),
) -> Result<ReadSummary, ReadError>
where
    K: FnMut(Event) -> Result<(), E> + Send + 'scope,
{
    let mut summary = ReadSummary::new(source.format());
    let mut next_progress = PROGRESS_STEP;
    loop {
        let position = source.position();
        if position >= next_progress {
            on_progress(position);
            next_progress = position + PROGRESS_STEP;
        }
        let go_on = match source.next_packet()? {
            Next::Packet(packet) => match summary.decode(&packet) {
                Some(segment) => feed.push(&segment, scope),
                None => true,
            },
            Next::Idle(now) => feed.idle(now, scope),
            Next::End => break,
        };
        if !go_on {
            break;
        }
    }
    summary.finish(source.truncation(), source.position());
    on_progress(summary.bytes);
    Ok(summary)
}

/// Ends the analysis once the source is read: the reader's warnings join
/// the analyzer's, and the connections still open go to the sink.
fn finish<E>(
    mut analyzer: Analyzer,
    mut sink: impl FnMut(Event) -> Result<(), E>,
    summary: ReadSummary,
) -> Result<Analysis, E> {
    while let Some(event) = analyzer.next_event() {
        sink(event)?;
    }
    // One at a time, each flushed when its turn comes.
    while let Some(c) = analyzer.next_remaining() {
        sink(Event::Closed(Box::new(c)))?;
    }
    let analyzer_handed_out = analyzer.hands_out_exchanges();
    let mut summary = summary;
    analyzer.warn_all(std::mem::take(&mut summary.warnings));
    let mut analysis = analyzer.finish();
    analysis.packets = summary.packets;
    analysis.capture = summary.capture();
    let batch_ends = analyzer_handed_out;
    for c in std::mem::take(&mut analysis.connections) {
        sink(Event::Closed(Box::new(c)))?;
    }
    if batch_ends {
        sink(Event::BatchEnd)?;
    }
    Ok(analysis)
}

/// The reading side's end of the pipeline: fills batches and hands them to
/// the analyzer, on this thread until the first batch is full, then on a
/// thread of its own.
struct Feed<'scope, K, E> {
    /// The analyzer and sink until they move to the analyzing thread.
    start: Option<(Analyzer, K)>,
    worker: Option<Worker<'scope, K, E>>,
    batch: Batch,
    live: bool,
    /// Capture time of the batch's first segment (live sources only).
    batch_started: Option<Timestamp>,
}

impl<'scope, K, E> Feed<'scope, K, E>
where
    K: FnMut(Event) -> Result<(), E> + Send + 'scope,
    E: Send + 'scope,
{
    fn new(analyzer: Analyzer, sink: K, live: bool) -> Self {
        Feed {
            start: Some((analyzer, sink)),
            worker: None,
            batch: Batch::default(),
            live,
            batch_started: None,
        }
    }

    /// Takes one segment; false when the analyzing side stopped.
    #[inline]
    fn push(&mut self, segment: &TcpSegment<'_>, scope: &'scope thread::Scope<'scope, '_>) -> bool {
        self.batch.push(segment);
        if self.live {
            // By capture time, not the clock: no clock read per packet,
            // and a backlog is handed over in the same slices.
            let started = *self.batch_started.get_or_insert(segment.time);
            if segment.time.0.saturating_sub(started.0) >= LIVE_LATENCY.as_nanos() as u64 {
                return self.hand_over(scope);
            }
        }
        if self.batch.is_full() {
            return self.hand_over(scope);
        }
        true
    }

    /// The source is idle: what is batched goes to the analyzer, with the time.
    fn idle(&mut self, now: Timestamp, scope: &'scope thread::Scope<'scope, '_>) -> bool {
        self.batch.tick = Some(now);
        self.hand_over(scope)
    }

    /// Sends the batch to the analyzing thread (started on first use) and
    /// takes an empty one; false when that thread stopped (its sink failed).
    fn hand_over(&mut self, scope: &'scope thread::Scope<'scope, '_>) -> bool {
        self.batch_started = None;
        let w = self.worker.get_or_insert_with(|| {
            let (analyzer, sink) = self.start.take().expect("the analyzer starts once");
            spawn(scope, analyzer, sink)
        });
        if w.full.send(std::mem::take(&mut self.batch)).is_err() {
            return false;
        }
        // A fixed pool of batches: new ones until there are
        // BATCHES_IN_ALL, then wait for one to come back.
        self.batch = match w.empty.try_recv() {
            Ok(b) => b,
            Err(_) if w.batches < BATCHES_IN_ALL => {
                w.batches += 1;
                Batch::default()
            }
            Err(_) => match w.empty.recv() {
                Ok(b) => b,
                Err(_) => return false,
            },
        };
        true
    }

    /// Analyzes the last batch (if the read went well) and gives back the
    /// analyzer and sink, with the sink's error if it failed.
    fn end(mut self, read_ok: bool) -> (Analyzer, K, Option<E>) {
        match self.worker.take() {
            Some(w) => {
                if read_ok {
                    // The last batch; if the thread stopped, join says why.
                    let _ = w.full.send(std::mem::take(&mut self.batch));
                }
                drop(w.full);
                match w.handle.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            None => {
                let (mut analyzer, mut sink) = self.start.take().expect("not handed to a thread");
                let failed = if read_ok {
                    self.batch.analyze(&mut analyzer, &mut sink).err()
                } else {
                    None
                };
                (analyzer, sink, failed)
            }
        }
    }
}

/// A [`TcpSegment`] whose payload sits in its [`Batch`]'s byte buffer.
#[derive(Debug, Clone)]
struct BatchedSegment {
    number: u64,
    time: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    /// Where the captured payload is in [`Batch::bytes`].
    payload: Range<usize>,
    payload_len: u32,
    window: u16,
    window_scale: Option<u8>,
}

/// Segments read and decoded by the reading thread, their payloads copied
/// one after the other into one buffer, and the time if the source went
/// idle after them. Batches go back and forth between the threads and are
/// reused, so a long capture allocates a handful.
#[derive(Debug, Default)]
struct Batch {
    segments: Vec<BatchedSegment>,
    bytes: Vec<u8>,
    tick: Option<Timestamp>,
}

impl Batch {
    #[inline]
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
        self.tick = None;
    }

    /// Feeds every segment (then the tick) to `analyzer`, handing its
    /// events to `sink`; stops at the first sink error.
    fn analyze<E>(
        &self,
        analyzer: &mut Analyzer,
        sink: &mut impl FnMut(Event) -> Result<(), E>,
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
            while let Some(event) = analyzer.next_event() {
                sink(event)?;
            }
        }
        if let Some(now) = self.tick {
            analyzer.tick(now);
            while let Some(event) = analyzer.next_event() {
                sink(event)?;
            }
        }
        if analyzer.hands_out_exchanges() {
            sink(Event::BatchEnd)?;
        }
        Ok(())
    }
}

/// The analyzing thread's side of the pipeline: batches come in on one
/// channel and go back empty on the other.
struct Worker<'scope, K, E> {
    full: mpsc::SyncSender<Batch>,
    empty: mpsc::Receiver<Batch>,
    /// Batches made so far (at most [`BATCHES_IN_ALL`]).
    batches: usize,
    handle: thread::ScopedJoinHandle<'scope, (Analyzer, K, Option<E>)>,
}

/// Starts the analyzing thread with `BATCHES_QUEUED` batches of room.
fn spawn<'scope, E: Send + 'scope, K: FnMut(Event) -> Result<(), E> + Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    mut analyzer: Analyzer,
    mut sink: K,
) -> Worker<'scope, K, E> {
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
    use super::*;
    use crate::analyze::reader::CaptureReader;
    use crate::analyze::testing::{
        self, Script, Seg, hello, line_options, push_with_events, segments_pcap,
    };
    use crate::analyze::{AnalyzeError, analyze_stream};
    use std::convert::Infallible;

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
                w.client_closes(t + 2_000);
            }
            scripts.push(w.segs);
        }
        let mut segs: Vec<Seg> = scripts.into_iter().flatten().collect();
        segs.sort_by_key(|s| s.time);
        segs
    }

    /// The segments as a raw-IPv4 pcap, as tcpdump would write them.
    fn capture(segs: &[Seg]) -> Vec<u8> {
        segments_pcap(segs)
    }

    #[test]
    fn the_two_thread_pipeline_finds_what_one_analyzer_finds() {
        let segs = interleaved(2_000);
        assert!(segs.len() > 2 * BATCH_SEGMENTS, "several batches");
        let reference = testing::analyze(Options::default(), &segs);

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
        assert_eq!(analysis.capture.format, "pcap-ns");
        assert_eq!(analysis.capture.tcp_segments, segs.len() as u64);
        assert_eq!(analysis.capture.skipped.total(), 0);
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
        assert!(matches!(result, Err(AnalyzeError::Sink(e)) if e.to_string() == "disk full"));
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

    #[test]
    fn exchanges_come_out_one_by_one_before_their_connection_closes() {
        let mut w = hello();
        w.c(2_000, b"second\n");
        w.s(2_300, b"Echo: sec");
        w.s(2_400, b"ond\n");
        w.client_closes(4_000);
        let mut analyzer = Analyzer::new(line_options()).with_exchange_events();
        // (packet number, event) as they come.
        let mut seen: Vec<(u64, Event)> = Vec::new();
        push_with_events(&mut analyzer, &w.segs, |n, e| seen.push((n, e)));
        let brief: Vec<(u64, String)> = seen
            .iter()
            .map(|(n, e)| {
                let what = match e {
                    Event::Opened { id, .. } => format!("opened {id}"),
                    Event::Exchange {
                        connection,
                        index,
                        exchange,
                        ..
                    } => format!(
                        "exchange {connection}/{index}: {} -> {}",
                        exchange.request_preview, exchange.response_preview
                    ),
                    Event::Closed(c) => format!("closed {}", c.id),
                    Event::Tcp { event, .. } => format!("tcp {}", event.kind.name()),
                    Event::Segment(s) => format!("segment {}", s.number),
                    Event::BatchEnd => "batch end".to_owned(),
                };
                (*n, what)
            })
            .collect();
        assert_eq!(
            brief,
            [
                (1, "opened 1".to_string()),
                // As soon as each response is whole: the second one's last
                // segment, packet 8, long before the FINs (9, 10).
                (5, "exchange 1/0: hello -> Echo: hello".to_string()),
                (8, "exchange 1/1: second -> Echo: second".to_string()),
                (11, "closed 1".to_string()),
            ]
        );
        let Some((_, Event::Closed(c))) = seen.last() else {
            unreachable!()
        };
        let Some((_, Event::Exchange { exchange, .. })) = seen.get(2) else {
            unreachable!()
        };
        assert_eq!(
            serde_json::to_value(exchange).unwrap(),
            serde_json::to_value(&c.exchanges[1]).unwrap(),
            "the event is the exchange as it ends up in the connection"
        );
    }

    #[test]
    fn the_pipeline_hands_out_events_in_order_per_connection() {
        let file = capture(&interleaved(1_500));
        let source = CaptureReader::new(&file[..]).unwrap();
        let options = line_options();
        // Per connection: exchange events seen so far, closed or not.
        let mut state: std::collections::HashMap<u32, (usize, bool)> = Default::default();
        let mut closed_with_exchanges_first = 0;
        // Batch ends seen, and whether the latest event was one.
        let (mut batch_ends, mut last_was_end) = (0, false);
        let analysis = Pipeline::new(options)
            .with_exchange_events()
            .run(
                source,
                |_| {},
                |event| {
                    last_was_end = matches!(event, Event::BatchEnd);
                    match event {
                        Event::BatchEnd => batch_ends += 1,
                        Event::Opened { id, .. } => {
                            assert!(state.insert(id, (0, false)).is_none(), "opened once");
                        }
                        Event::Exchange {
                            connection, index, ..
                        } => {
                            let s = state.get_mut(&connection).expect("opened first");
                            assert!(!s.1, "no exchange after the close");
                            assert_eq!(index, s.0, "exchanges in order");
                            s.0 += 1;
                        }
                        Event::Tcp { .. } | Event::Segment(_) => {}
                        Event::Closed(c) => {
                            let s = state.get_mut(&c.id).expect("opened first");
                            assert!(!s.1, "closed once");
                            s.1 = true;
                            if s.0 > 0 && s.0 == c.exchanges.len() {
                                closed_with_exchanges_first += 1;
                            }
                        }
                    }
                    Ok::<(), Infallible>(())
                },
            )
            .unwrap();
        assert_eq!(state.len(), 1_500);
        assert!(state.values().all(|s| s.1), "every connection closed");
        // Every response was whole before the FINs.
        assert_eq!(closed_with_exchanges_first, 1_500);
        assert_eq!(analysis.packets, interleaved(1_500).len() as u64);
        // A batch end after each batch and after the last event, so that a
        // buffering sink never holds one back.
        assert!(batch_ends >= 2, "{batch_ends} batch ends");
        assert!(last_was_end, "the last event is a batch end");
    }
}
