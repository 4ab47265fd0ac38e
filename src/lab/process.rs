//! A child process of the lab (server or client): its output collected on
//! threads, every wait bounded in time and interruptible by Ctrl-C, and
//! stopped by its PID when dropped, so no child outlives a run.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::signals;

/// How often waits look at the child and at the interrupt flag.
const POLL: Duration = Duration::from_millis(20);

/// Why waiting on a child failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start the {name} (`{command}`): {source}")]
    Spawn {
        /// Which child.
        name: &'static str,
        /// Its command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ended before doing what was waited for.
    #[error("the {name} exited ({status}) before {waiting_for}{}", stderr_suffix(.stderr))]
    Exited {
        /// Which child.
        name: &'static str,
        /// How it ended.
        status: ExitStatus,
        /// What was awaited.
        waiting_for: String,
        /// Its stderr.
        stderr: String,
    },
    /// It took too long.
    #[error("the {name} did not {waiting_for} within {limit:?}{}", stderr_suffix(.stderr))]
    Timeout {
        /// Which child.
        name: &'static str,
        /// What was awaited.
        waiting_for: String,
        /// The limit.
        limit: Duration,
        /// Its stderr so far.
        stderr: String,
    },
    /// Ctrl-C or SIGTERM arrived.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its stderr:\n{stderr}")
    }
}

/// A running child with its stdout lines on a channel and stderr collected.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// Puts the command's process in a process group of its own, so Ctrl-C in
/// the terminal reaches only the lab, which then stops its children in
/// order (server after client, capture last) and cleans up; a second Ctrl-C
/// cannot cut a cleanup command short.
pub(crate) fn detach(command: &mut Command) {
    command.process_group(0);
}

/// A command line as it would be typed, for messages.
/// Arguments with spaces or shell characters are single-quoted, so the line
/// can be pasted into a shell.
pub(crate) fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as a POSIX shell reads it back: unchanged when it is plain,
/// otherwise in single quotes (a `'` inside becomes `'\''`).
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

impl Process {
    /// Starts `command` with stdin closed and stdout/stderr captured, in a
    /// process group of its own (see [`detach`]) and told to end when the
    /// lab dies.
    pub fn spawn(name: &'static str, command: Command) -> Result<Process, ProcessError> {
        Process::start(name, command, Stdio::null()).map(|(process, _)| process)
    }

    /// Like [`Process::spawn`], with stdin a pipe the caller writes into
    /// (the scenarios feed the client its requests one at a time).
    pub fn spawn_with_stdin(
        name: &'static str,
        command: Command,
    ) -> Result<(Process, std::process::ChildStdin), ProcessError> {
        let (process, stdin) = Process::start(name, command, Stdio::piped())?;
        Ok((process, stdin.expect("stdin is piped")))
    }

    fn start(
        name: &'static str,
        mut command: Command,
        stdin: Stdio,
    ) -> Result<(Process, Option<std::process::ChildStdin>), ProcessError> {
        detach(&mut command);
        // SAFETY: the hook only calls prctl, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                // If the lab is killed outright (SIGKILL), its children get
                // SIGTERM from the kernel instead of running on in a namespace.
                // Kept across `ip netns exec`'s exec of the real program.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                name,
                command: display(&command),
                source,
            })?;
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        let mut readers = vec![std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })];
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                // Bounded: a chatty child cannot grow the lab's memory without limit.
                if s.len() < 64 * 1024 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }));
        let input = child.stdin.take();
        Ok((
            Process {
                name,
                child,
                stdout,
                stderr,
                readers,
            },
            input,
        ))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> Result<String, ProcessError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(signal) = signals::interrupted() {
                return Err(ProcessError::Interrupted(signal));
            }
            match self.stdout.recv_timeout(POLL) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait(Duration::from_secs(2))?;
                    self.drain_output(Duration::from_secs(1));
                    return Err(ProcessError::Exited {
                        name: self.name,
                        status,
                        waiting_for: format!("printing `{prefix}`"),
                        stderr: self.stderr(),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::Timeout {
                    name: self.name,
                    waiting_for: format!("print `{prefix}`"),
                    limit,
                    stderr: self.stderr(),
                });
            }
        }
    }

    /// Waits for the child to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, ProcessError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if let Some(signal) = signals::interrupted() {
                return Err(ProcessError::Interrupted(signal));
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::Timeout {
                    name: self.name,
                    waiting_for: "exit".into(),
                    limit,
                    stderr: self.stderr(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every stdout line not yet consumed; call after the child exited.
    pub fn remaining_stdout(&mut self) -> Vec<String> {
        self.drain_output(Duration::from_secs(1));
        self.stdout.try_iter().collect()
    }

    /// Lets the reader threads take in the last output of an exited child,
    /// at most `limit` (a grandchild could hold the pipes open).
    fn drain_output(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (done, running): (Vec<_>, Vec<_>) =
            self.readers.drain(..).partition(|r| r.is_finished());
        self.readers = running;
        for reader in done {
            let _ = reader.join();
        }
    }

    /// Sends `signal` to the child (by its PID) and waits up to `grace` for
    /// it to exit; kills it after that. Returns how it ended.
    pub fn stop(&mut self, signal: i32, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill on the PID of our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM, Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_can_be_pasted_into_a_shell() {
        assert_eq!(shell_quote("10.222.0.2:2222"), "10.222.0.2:2222");
        assert_eq!(shell_quote("--prefix="), "--prefix=");
        assert_eq!(shell_quote("Hello, server!"), "'Hello, server!'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "printf '%s|' \"$@\"",
            "sh",
            "a b",
            "it's",
            "$HOME",
            "",
        ]);
        let line = display(&cmd);
        // The shell splits the displayed line back into the same arguments.
        let out = Command::new("sh").args(["-c", &line]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|it's|$HOME||");
    }

    #[test]
    fn waits_for_a_line_and_collects_the_rest() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo noise; echo 'listening on 1.2.3.4:5'; echo tail; echo oops >&2",
        ]);
        let mut p = Process::spawn("test child", cmd).unwrap();
        let addr = p
            .wait_for_line("listening on ", Duration::from_secs(5))
            .unwrap();
        assert_eq!(addr, "1.2.3.4:5");
        assert!(p.wait(Duration::from_secs(5)).unwrap().success());
        assert_eq!(p.remaining_stdout(), vec!["tail".to_string()]);
        assert_eq!(p.stderr().trim(), "oops");
    }

    #[test]
    fn a_child_that_exits_early_is_reported_with_its_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'bad option --x' >&2; exit 2"]);
        let mut p = Process::spawn("server", cmd).unwrap();
        let err = p
            .wait_for_line("listening on ", Duration::from_secs(5))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("the server exited"), "{msg}");
        assert!(msg.contains("bad option --x"), "{msg}");
    }

    #[test]
    fn a_silent_child_times_out_and_is_stopped_on_drop() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut p = Process::spawn("sleeper", cmd).unwrap();
        let pid = p.pid();
        let err = p
            .wait_for_line("ready", Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        drop(p);
        // Reaped: the PID no longer names a live process of ours.
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(status.is_empty() || status.contains(") Z"), "{status}");
    }
}
