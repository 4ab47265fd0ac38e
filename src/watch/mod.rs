//! `reqresp watch`: the request/response conversation as it happens, in a
//! terminal, or a capture replayed or stepped through packet by packet.
//!
//! Packets come from a live capture ([`crate::capture::open_live`], with
//! `-w` also written to a pcap file), a replayed file ([`replay`]) or a
//! file held for stepping ([`step`]). Live and replayed packets go through
//! the analyze [`Pipeline`] with packet events: the capture is read on its
//! own thread, analyzed on another, and each [`crate::analyze::Event`]
//! updates the [`state::State`] behind a lock. The terminal side ([`app`])
//! takes a small [`view::Screen`] from the state at most 20 times a second
//! and draws it with [`ui`] after releasing the lock, so drawing never
//! slows the capture. When standard output is not a terminal, each event
//! is written as a JSON line instead ([`jsonl`]).
//!
//! On quit the same summary as `analyze` is printed.

pub(crate) mod app;
pub(crate) mod beside;
pub(crate) mod jsonl;
pub(crate) mod keys;
pub(crate) mod replay;
pub(crate) mod state;
pub(crate) mod step;
pub(crate) mod terminal;
pub(crate) mod ui;
pub(crate) mod view;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::Context;

use crate::analyze::model::Analysis;
use crate::analyze::reader::CaptureReader;
use crate::analyze::source::{LiveSource, LiveStats, PacketSource, StopHandle};
use crate::analyze::{Options, Pipeline, PipelineError};
use crate::capture::{CaptureConfig, CaptureError};
use crate::lab::signals;
use crate::report::stats::SummaryBuilder;
use crate::report::{RenderOptions, Report};

pub use beside::{Beside, run_beside};
pub use replay::Speed;

/// How long the live capture waits for a packet before telling the
/// analyzer that time passed.
const LIVE_POLL: Duration = Duration::from_millis(50);

/// What to watch.
#[derive(Debug, Clone)]
pub enum Input {
    /// A live capture; with `write`, also into `capture.output`.
    Live {
        /// Interface, filter and output file.
        capture: CaptureConfig,
        /// Write the packets to `capture.output` (`-w`).
        write: bool,
    },
    /// A capture file replayed at a speed.
    Replay {
        /// The file.
        path: PathBuf,
        /// How fast.
        speed: Speed,
    },
    /// A capture file stepped through packet by packet.
    Step {
        /// The file.
        path: PathBuf,
    },
}

/// How to run `reqresp watch`.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// What to watch.
    pub input: Input,
    /// The analyzer's options (framing, port).
    pub options: Options,
    /// Full-screen view (standard output is a terminal); else JSON lines.
    pub tui: bool,
    /// Colours on screen (no `NO_COLOR`).
    pub color: bool,
}

/// The live part of a watch: the state the events update, the counters
/// of the capture, and how to stop it.
pub(crate) struct Running {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) stats: Option<Arc<LiveStats>>,
    stop: Stopper,
    pub(crate) pipeline: thread::JoinHandle<Result<Analysis, PipelineError<io::Error>>>,
    /// What is watched, for the title.
    pub(crate) name: String,
}

use state::State;

/// How to end a source from the terminal's thread.
enum Stopper {
    Live(StopHandle),
    Flag(Arc<AtomicBool>),
}

impl Running {
    pub(crate) fn stop(&self) {
        match &self.stop {
            Stopper::Live(h) => h.stop(),
            Stopper::Flag(f) => f.store(true, Ordering::Release),
        }
    }
}

/// Locks `m`, also when a panicking thread left it poisoned (the state is
/// only ever updated whole, event by event).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `reqresp watch`; returns the summary text printed on quit.
pub fn run(config: WatchConfig) -> anyhow::Result<()> {
    if let Input::Step { path } = &config.input {
        anyhow::ensure!(
            config.tui,
            "--step needs a terminal to step in; without one use --speed max (JSON lines)"
        );
        let file = open_capture(path)?;
        let stepper = step::Stepper::new(io::BufReader::new(file), config.options.clone())
            .with_context(|| format!("cannot step through {}", path.display()))?;
        let name = format!("{} (step)", path.display());
        let summary = app::run_step(stepper, &name, config.color)?;
        print!("{summary}");
        return Ok(());
    }
    let _signals = signals::SignalGuard::install();
    if config.tui {
        let running = start(&config, Sink::State)?;
        let outcome = app::run_live(&running, config.color, None);
        running.stop();
        let analysis = join(running.pipeline)?;
        outcome?;
        let summary = lock(&running.state).summary.clone();
        print!("{}", summary_text(summary, &analysis));
        capture_line(running.stats.as_ref());
        return Ok(());
    }
    let summary = Arc::new(Mutex::new(SummaryBuilder::default()));
    let running = start(&config, Sink::Json(Arc::clone(&summary)))?;
    if running.stats.is_some() {
        eprintln!(
            "reqresp watch: capturing on {}: one JSON line per event on stdout; Ctrl-C stops",
            running.name
        );
    }
    while !running.pipeline.is_finished() {
        if signals::interrupted().is_some() {
            running.stop();
        }
        thread::sleep(Duration::from_millis(50));
    }
    capture_line(running.stats.as_ref());
    let analysis = join(running.pipeline)?;
    let summary = lock(&summary).clone();
    eprint!("{}", summary_text(summary, &analysis));
    Ok(())
}

/// After a live capture, on stderr: packets read and the kernel's drops
/// (as tcpdump ends).
fn capture_line(stats: Option<&Arc<LiveStats>>) {
    if let Some(stats) = stats {
        eprintln!(
            "reqresp watch: {} packets captured, {} dropped by kernel",
            stats.packets.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed)
        );
    }
}

/// Where the events go.
enum Sink {
    /// Into the state the screen is drawn from.
    State,
    /// As JSON lines to standard output, counted into the summary.
    Json(Arc<Mutex<SummaryBuilder>>),
}

fn open_capture(path: &std::path::Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| {
        format!(
            "cannot open the capture {}: give a pcap or pcapng file",
            path.display()
        )
    })
}

/// Opens the source and starts the pipeline on its threads.
fn start(config: &WatchConfig, sink: Sink) -> anyhow::Result<Running> {
    match &config.input {
        Input::Live { capture, write } => {
            let (cap, savefile) = crate::capture::open_live(capture, *write).map_err(privilege)?;
            let source = LiveSource::from_active(cap, LIVE_POLL, savefile);
            let stop = Stopper::Live(source.stop_handle());
            let stats = Some(source.stats());
            let mut name = capture.interface.clone();
            if let Some(f) = &capture.filter {
                name.push_str(&format!(" '{f}'"));
            }
            Ok(spawn(source, config, sink, stop, stats, name))
        }
        Input::Replay { path, speed } => {
            let file = open_capture(path)?;
            let reader = CaptureReader::new(io::BufReader::new(file))
                .with_context(|| format!("cannot read {}", path.display()))?;
            let source = replay::Paced::new(reader, *speed);
            let stop = Stopper::Flag(source.stop_flag());
            let name = format!("{} (replay)", path.display());
            Ok(spawn(source, config, sink, stop, None, name))
        }
        Input::Step { .. } => unreachable!("stepping has no pipeline"),
    }
}

/// A capture error, with `-r FILE` as the way out when it is privilege.
fn privilege(e: CaptureError) -> anyhow::Error {
    let hint = matches!(e, CaptureError::NoPrivilege { .. });
    let e = anyhow::Error::new(e);
    if hint {
        e.context(
            "reqresp watch cannot capture: run it with sudo, give it the capability once \
             (sudo setcap cap_net_raw,cap_net_admin+eip $(which reqresp)), \
             or watch a capture file instead: reqresp watch -r FILE",
        )
    } else {
        e
    }
}

fn spawn<S: PacketSource + Send + 'static>(
    source: S,
    config: &WatchConfig,
    sink: Sink,
    stop: Stopper,
    stats: Option<Arc<LiveStats>>,
    name: String,
) -> Running {
    let state = Arc::new(Mutex::new(State::default()));
    let pipeline = Pipeline::new(config.options.clone());
    let pipeline = match sink {
        Sink::State => {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                pipeline.with_packet_events().run(
                    source,
                    |_| {},
                    move |event| {
                        lock(&state).apply(event);
                        Ok::<(), io::Error>(())
                    },
                )
            })
        }
        Sink::Json(summary) => thread::spawn(move || {
            // Written out at each batch's end (Event::BatchEnd).
            let mut out = io::BufWriter::with_capacity(64 << 10, io::stdout());
            let mut buf = Vec::new();
            pipeline.with_exchange_events().run(
                source,
                |_| {},
                move |event| {
                    if let crate::analyze::Event::Closed(c) = &event {
                        lock(&summary).add(c);
                    }
                    jsonl::write_event(&mut out, &mut buf, &event)
                },
            )
        }),
    };
    Running {
        state,
        stats,
        stop,
        pipeline,
        name,
    }
}

/// Waits for the pipeline's end; a closed standard output is a quiet end.
fn join(
    pipeline: thread::JoinHandle<Result<Analysis, PipelineError<io::Error>>>,
) -> anyhow::Result<Analysis> {
    match pipeline.join() {
        Ok(Ok(analysis)) => Ok(analysis),
        Ok(Err(PipelineError::Sink(e))) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(Analysis::default())
        }
        Ok(Err(PipelineError::Sink(e))) => Err(e).context("cannot write the events"),
        Ok(Err(PipelineError::Read(e))) => Err(e).context("the capture failed"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The summary `analyze` prints under its ladders, for `summary` over the
/// connections of `analysis`.
pub(crate) fn summary_text(summary: SummaryBuilder, analysis: &Analysis) -> String {
    let total_connections = summary.connections();
    let summary = summary.finish(analysis.warnings.len() as u64);
    let report = Report {
        packets: analysis.packets,
        connections: &[],
        total_connections,
        warnings: &analysis.warnings,
        summary: &summary,
        capture: &analysis.capture,
    };
    let mut out = Vec::new();
    let options = RenderOptions::for_stdout();
    // Writing into a Vec cannot fail.
    let _ = crate::report::text::render_summary(&report, &options, &mut out);
    let _ = out.flush();
    String::from_utf8_lossy(&out).into_owned()
}
