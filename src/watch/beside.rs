//! The live view beside another job: `reqresp lab --watch`. The job runs
//! on its own thread with a [`CaptureHook`]; when the lab's capture starts,
//! the hook opens the view's own capture on the same interface (with the
//! same filter) before the lab's client talks, and the full-screen view
//! runs on the calling thread until the user quits. The job's result
//! comes back with the view's summary.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{Input, Running, Sink, WatchConfig, app, join, lock, start, summary_text};
use crate::analyze::Options;
use crate::lab::hook::{CaptureHook, ClientLines};

/// What [`run_beside`] hands back.
#[derive(Debug)]
pub struct Beside<T> {
    /// The job's result.
    pub job: T,
    /// The view's summary (as `analyze` prints it), if the view ran.
    pub summary: Option<String>,
    /// Why the view could not run, if it did not.
    pub not_shown: Option<String>,
}

/// Runs `job` with a hook that starts the live view, and the view on this
/// thread while it runs; the view stays (marked ended) until `q`. With
/// `interactive`, the view has a prompt and `job` gets the lines entered
/// there (closed when the view is).
pub fn run_beside<T: Send>(
    options: Options,
    color: bool,
    interactive: bool,
    job: impl FnOnce(CaptureHook, Option<ClientLines>) -> T + Send,
) -> anyhow::Result<Beside<T>> {
    let (mut input, lines) = if interactive {
        let (tx, rx) = mpsc::channel();
        (Some(tx), Some(ClientLines::new(rx)))
    } else {
        (None, None)
    };
    let (tx, rx) = mpsc::sync_channel::<Result<Running, String>>(1);
    let hook = CaptureHook::new(move |capture| {
        let mut capture = capture.clone();
        capture.output = "-".into();
        let config = WatchConfig {
            input: Input::Live {
                capture,
                write: false,
            },
            options: options.clone(),
            tui: true,
            color,
        };
        let _ = tx.send(start(&config, Sink::State).map_err(|e| format!("{e:#}")));
    });
    thread::scope(|scope| {
        let handle = scope.spawn(move || job(hook, lines));
        let mut started = None;
        while started.is_none() && !handle.is_finished() {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(r) => started = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let (summary, not_shown) = match started.or_else(|| rx.try_recv().ok()) {
            Some(Ok(running)) => {
                let shown = app::run_live(&running, color, input.take());
                running.stop();
                let analysis = join(running.pipeline)?;
                let summary = lock(&running.state).summary.clone();
                shown?;
                (Some(summary_text(summary, &analysis)), None)
            }
            Some(Err(why)) => (None, Some(why)),
            None => (None, Some("the lab did not capture".to_owned())),
        };
        let job = match handle.join() {
            Ok(job) => job,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok(Beside {
            job,
            summary,
            not_shown,
        })
    })
}
