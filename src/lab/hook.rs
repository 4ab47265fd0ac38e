//! What the live view hands the lab: a hook the lab calls once its capture
//! runs and before its client talks (`reqresp lab --watch` opens its view
//! there, so the view sees the whole conversation), and with
//! `--interactive` the lines typed under the ladder, which the lab's client
//! sends.

use std::fmt;
use std::io::Write;
use std::process::{Command, ExitStatus};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::process::{Process, ProcessError};
use crate::capture::CaptureConfig;

/// Called with the lab's capture configuration (interface, filter,
/// promiscuous mode) right after the lab's capture started, before the
/// client runs; the lab waits until it returns.
#[derive(Clone)]
pub struct CaptureHook(Arc<dyn Fn(&CaptureConfig) + Send + Sync>);

impl CaptureHook {
    /// A hook running `f`.
    pub fn new(f: impl Fn(&CaptureConfig) + Send + Sync + 'static) -> Self {
        CaptureHook(Arc::new(f))
    }

    /// Runs the hook.
    pub fn call(&self, config: &CaptureConfig) {
        (self.0)(config)
    }
}

impl fmt::Debug for CaptureHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptureHook")
    }
}

/// Lines typed in `reqresp lab --interactive`, for the lab's client: the
/// lab takes the receiving end once, when its client starts; the view
/// keeps the sender, and dropping it (on quit) ends the client.
#[derive(Clone)]
pub struct ClientLines(Arc<Mutex<Option<Receiver<String>>>>);

impl ClientLines {
    /// The receiving end of `lines`.
    pub fn new(lines: Receiver<String>) -> Self {
        ClientLines(Arc::new(Mutex::new(Some(lines))))
    }

    /// The receiver, the first time.
    pub fn take(&self) -> Option<Receiver<String>> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

impl fmt::Debug for ClientLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLines")
    }
}

/// Runs the lab's client (its command without the scripted requests) with
/// each line of `lines` as a request on its stdin, until `lines` closes;
/// returns the client, how it exited and the requests sent.
pub(crate) fn talk(
    client_cmd: &Command,
    lines: &Receiver<String>,
) -> Result<(Process, ExitStatus, Vec<String>), ProcessError> {
    // Up to the `--` that ends the options: the client then reads stdin.
    let mut args = client_cmd.get_args().take_while(|a| *a != "--");
    let mut cmd = Command::new(client_cmd.get_program());
    cmd.args(&mut args);
    let (mut client, mut stdin) = Process::spawn_with_stdin("client", cmd)?;
    let mut sent = Vec::new();
    for line in lines.iter() {
        let line = line.replace(['\n', '\r'], " ");
        if writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            break;
        }
        sent.push(line);
    }
    drop(stdin);
    let status = client.wait(Duration::from_secs(10))?;
    Ok((client, status, sent))
}
