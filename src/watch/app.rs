//! The full-screen loop: read keys, take a [`Screen`] from the state at
//! most [`FRAME`] apart (only when something changed), draw it, until `q`,
//! Ctrl-C or a signal. The terminal is restored on every way out
//! ([`TerminalGuard`]).

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{self, Event as TermEvent};
use ratatui::layout::Rect;

use super::keys::{self, Action};
use super::state::State;
use super::step::Stepper;
use super::terminal::TerminalGuard;
use super::ui::{self, Areas};
use super::view::{Counters, Screen, View};
use super::{Running, lock};
use crate::lab::signals;

/// Shortest time between two frames: at most 20 a second.
pub const FRAME: Duration = Duration::from_millis(50);

/// Packets per second over the last second or so.
#[derive(Debug)]
struct Rate {
    at: Instant,
    packets: u64,
    pps: f64,
}

impl Rate {
    fn new() -> Self {
        Rate {
            at: Instant::now(),
            packets: 0,
            pps: 0.0,
        }
    }

    fn update(&mut self, packets: u64) -> f64 {
        let dt = self.at.elapsed().as_secs_f64();
        if dt >= 1.0 {
            self.pps = packets.saturating_sub(self.packets) as f64 / dt;
            self.packets = packets;
            self.at = Instant::now();
        }
        self.pps
    }
}

/// Capture-timestamp-to-screen delays, written where
/// `REQRESP_WATCH_DELAYS` says at the end (for benches/watch.sh).
#[derive(Debug, Default)]
struct Delays {
    last: Option<u64>,
    micros: Vec<f64>,
}

impl Delays {
    /// Notes how late the newest response reached the screen.
    fn drawn(&mut self, state_newest: Option<u64>) {
        let Some(t) = state_newest else { return };
        if self.last == Some(t) || self.micros.len() >= 1_000_000 {
            return;
        }
        self.last = Some(t);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.micros.push(now.saturating_sub(t) as f64 / 1_000.0);
    }

    fn save(&self) {
        let Some(path) = std::env::var_os("REQRESP_WATCH_DELAYS") else {
            return;
        };
        if let Ok(mut f) = std::fs::File::create(path) {
            for d in &self.micros {
                let _ = writeln!(f, "{d:.0}");
            }
        }
    }
}

/// Runs the view over a live or replayed capture until the user quits.
/// With `input`, a prompt under the ladder sends each line entered there.
pub(crate) fn run_live(
    running: &Running,
    color: bool,
    mut input: Option<std::sync::mpsc::Sender<String>>,
) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let mut view = View::following();
    if input.is_some() {
        view.prompt = Some(String::new());
    }
    let mut frozen: Option<State> = None;
    let mut rate = Rate::new();
    let mut delays = Delays::default();
    let mut drawn: Option<(u64, Rect)> = None;
    let mut last_frame = Instant::now() - FRAME;
    let mut dirty = true;
    while !view.quit && signals::interrupted().is_none() {
        let size = guard.terminal.size()?;
        let area = Rect::new(0, 0, size.width, size.height);
        let wait = FRAME.saturating_sub(last_frame.elapsed());
        if wait.is_zero() {
            let ended = running.pipeline.is_finished();
            let mut state = lock(&running.state);
            state.ended = ended;
            let generation = state.generation;
            let changed = dirty
                || drawn != Some((generation, area))
                || rate.at.elapsed() >= Duration::from_secs(1);
            if changed {
                if view.paused && frozen.is_none() {
                    frozen = Some(state.clone());
                } else if !view.paused {
                    frozen = None;
                }
                let shown: &mut State = match frozen.as_mut() {
                    Some(frozen) => frozen,
                    None => &mut state,
                };
                let counters = live_counters(running, shown, &mut rate);
                let name = if ended {
                    format!("{} (ended)", running.name)
                } else {
                    running.name.clone()
                };
                let screen = Screen::build(
                    shown,
                    &mut view,
                    counters,
                    &name,
                    keys::HELP,
                    Areas::of(area).ladder_size(),
                );
                let newest = state.newest_response.map(|t| t.0);
                drop(state);
                guard.terminal.draw(|f| ui::draw(f, &screen, color))?;
                delays.drawn(newest);
                drawn = Some((generation, area));
                dirty = false;
            }
            last_frame = Instant::now();
            continue;
        }
        if event::poll(wait)? {
            match event::read()? {
                TermEvent::Key(k) => {
                    let typing = view.typing.is_some() || view.prompt.is_some();
                    if let Some(a) = keys::action(k, typing) {
                        let state = lock(&running.state);
                        view.handle(a, frozen.as_ref().unwrap_or(&state));
                        dirty = true;
                    }
                    if let (Some(line), Some(input)) = (view.send.take(), &input) {
                        // The client is gone once the lab ended: nothing to send to.
                        let _ = input.send(line);
                    }
                    if view.prompt.is_none() {
                        // Closes the client's input: it sends FIN.
                        input = None;
                    }
                }
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    drop(guard);
    delays.save();
    Ok(())
}

fn live_counters(running: &Running, state: &State, rate: &mut Rate) -> Counters {
    use std::sync::atomic::Ordering::Relaxed;
    let (packets, dropped) = match &running.stats {
        Some(s) => (
            s.packets.load(Relaxed).max(state.segments),
            Some(s.dropped.load(Relaxed)),
        ),
        None => (state.segments, None),
    };
    Counters {
        packets,
        pps: rate.update(packets),
        dropped,
    }
}

/// Runs the view over a stepped capture until the user quits; returns
/// the summary of what was stepped through.
pub(crate) fn run_step(mut stepper: Stepper, name: &str, color: bool) -> anyhow::Result<String> {
    let _signals = signals::SignalGuard::install();
    let mut guard = TerminalGuard::enter()?;
    let mut view = View::following();
    let mut dirty = true;
    while !view.quit && signals::interrupted().is_none() {
        if dirty {
            let size = guard.terminal.size()?;
            let area = Rect::new(0, 0, size.width, size.height);
            let counters = Counters {
                packets: stepper.pos as u64,
                pps: 0.0,
                dropped: None,
            };
            let help = format!("{} · {}", stepper.describe(), keys::STEP_HELP);
            let screen = Screen::build(
                &mut stepper.state,
                &mut view,
                counters,
                name,
                &help,
                Areas::of(area).ladder_size(),
            );
            guard.terminal.draw(|f| ui::draw(f, &screen, color))?;
            dirty = false;
        }
        if !event::poll(FRAME)? {
            continue;
        }
        match event::read()? {
            TermEvent::Key(k) => match keys::action(k, view.typing.is_some()) {
                Some(Action::StepForward) if view.typing.is_none() => {
                    stepper.forward();
                    dirty = true;
                }
                Some(Action::StepBack) if view.typing.is_none() => {
                    stepper.back();
                    dirty = true;
                }
                Some(a) => {
                    view.handle(a, &stepper.state);
                    dirty = true;
                }
                None => {}
            },
            TermEvent::Resize(..) => dirty = true,
            _ => {}
        }
    }
    drop(guard);
    let analysis = crate::analyze::model::Analysis {
        packets: stepper.pos as u64,
        ..Default::default()
    };
    Ok(super::summary_text(
        stepper.state.summary.clone(),
        &analysis,
    ))
}
