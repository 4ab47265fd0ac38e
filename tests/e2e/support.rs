//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the `reqresp` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reqresp")
}

/// A `Command` for the binary under test.
pub fn reqresp() -> Command {
    Command::new(bin())
}

/// True when a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when running as root (namespaces, captures).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Prints a visible skip message; use as `if !cond { return skip("why"); }`.
/// Written to the stderr handle directly: the test harness captures
/// `eprintln!` of passing tests, which would hide the skip.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// A running `reqresp server`, stopped (by its PID) when dropped.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// The address it listens on, read from its `listening on` line.
    pub addr: SocketAddr,
    /// The rest of its stdout.
    pub stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// Starts `reqresp server --listen 127.0.0.1:0 <args>` and waits for its
    /// `listening on <addr>` line (at most 10 s).
    // A panic here fails the test; the child then dies with the test process's pipes.
    #[allow(clippy::zombie_processes)]
    pub fn start(args: &[&str]) -> Server {
        let mut child = reqresp()
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn reqresp server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read server stdout");
            assert!(n > 0, "server exited before printing 'listening on'");
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let addr = addr.parse().expect("address in 'listening on' line");
                return Server {
                    child,
                    addr,
                    stdout,
                };
            }
            assert!(Instant::now() < deadline, "server did not start in 10 s");
        }
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the server to exit, at most `limit`; returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
