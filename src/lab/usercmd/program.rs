//! A user's program on a lab host: started in a process group of its own,
//! stopped with SIGTERM and SIGKILL after the drain timeout, and every
//! process left in its namespace killed by PID; and whether something in
//! the namespace listens on a port.

use super::*;

/// A user's program on a lab host: stopped (group SIGTERM, SIGKILL after
/// the drain) and its namespace swept when dropped.
pub(super) struct UserProgram {
    pub(super) process: Process,
    netns: String,
    drain: Duration,
    stopped: bool,
}

/// How a user's program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// It had exited by itself.
    Exited(String),
    /// It exited on SIGTERM within the drain timeout.
    Terminated,
    /// It ignored SIGTERM and was killed after the drain timeout.
    Killed(Duration),
}

impl UserProgram {
    pub(super) fn spawn(
        name: &'static str,
        cmd: Command,
        netns: &str,
        drain: Duration,
    ) -> Result<Self, UserCmdError> {
        Ok(Self::of(Process::spawn(name, cmd)?, netns, drain))
    }

    /// A program already started in `netns`.
    pub(super) fn of(process: Process, netns: &str, drain: Duration) -> Self {
        UserProgram {
            process,
            netns: netns.to_string(),
            drain,
            stopped: false,
        }
    }

    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.process.wait(Duration::ZERO).ok()
    }

    /// True when the program (`sh`, the group's leader) has exited; it is
    /// not reaped, so its PID, which is the group's id, stays ours.
    pub(super) fn gone(&self) -> bool {
        proc_stat(self.process.pid()).is_none_or(|(state, _)| state == "Z")
    }

    /// SIGTERM to its process group (`sh` and the program it started),
    /// SIGKILL to the group once the drain timeout passed with a member
    /// still alive, then every process left in its namespace (one that left
    /// the group); returns how it ended and how many of those were killed.
    pub(super) fn stop(&mut self) -> (Ending, usize) {
        self.stopped = true;
        let pgid = self.process.pid() as libc::pid_t;
        let ending = if self.gone() && !group_alive(pgid) {
            Ending::Exited(
                self.exited()
                    .map_or_else(|| "status unknown".to_string(), |s| s.to_string()),
            )
        } else {
            // SAFETY: kill on the process group our own child leads (made
            // with process_group(0)); the sweep below catches anything that
            // left it.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let begun = Instant::now();
            let deadline = begun + self.drain;
            loop {
                if !group_alive(pgid) {
                    let _ = self.exited();
                    break Ending::Terminated;
                }
                if Instant::now() >= deadline {
                    // SAFETY: as above.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    let killed = begun.elapsed();
                    // SIGKILL is delivered, not yet done: wait for the
                    // group to be gone, so the sweep counts only strays.
                    let gone = Instant::now() + Duration::from_secs(5);
                    while group_alive(pgid) && Instant::now() < gone {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let _ = self.process.wait(Duration::from_secs(5));
                    break Ending::Killed(killed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        (ending, sweep_netns(&self.netns))
    }
}

impl Drop for UserProgram {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}

/// Kills (SIGKILL, by PID) every process whose network namespace is the
/// lab host `netns`: they are all the user's program's, since the lab made
/// the namespace for this run. Returns how many there were.
fn sweep_netns(netns: &str) -> usize {
    let Ok(meta) = std::fs::metadata(Path::new("/run/netns").join(netns)) else {
        return 0;
    };
    let target = format!("net:[{}]", meta.ino());
    let mut killed = std::collections::BTreeSet::new();
    for _round in 0..20 {
        let pids: Vec<u32> = live_pids()
            .map(|(pid, _)| pid)
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|l| l.to_string_lossy() == target)
            })
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: a live process in a namespace this run created for
            // the user's program: that program's own child.
            if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0 {
                killed.insert(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.len()
}

/// State letter and process group of `pid`, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(String, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.to_string();
    let _ppid = rest.next()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Every live (not zombie) process id on the machine, but this one.
fn live_pids() -> impl Iterator<Item = (u32, i32)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |&pid| pid != me)
        .filter_map(|pid| {
            let (state, pgrp) = proc_stat(pid)?;
            (state != "Z").then_some((pid, pgrp))
        })
}

/// True while a live process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    live_pids().any(|(_, pgrp)| pgrp == pgid)
}

/// True when `table` (the text of `/proc/PID/net/tcp` or `tcp6`) has a
/// socket listening on `port`.
pub(crate) fn listens_on(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3
            && fields[3] == "0A"
            && fields[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

/// True when something in the namespace of `pid` listens on `port`.
pub(super) fn namespace_listens(pid: u32, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|t| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{t}"))
            .is_ok_and(|table| listens_on(&table, port))
    })
}

/// How the program ended, for the report.
pub(super) fn describe(ending: &Ending, drain: Duration) -> String {
    match ending {
        Ending::Exited(status) => format!("had already exited ({status})"),
        Ending::Terminated => "stopped on SIGTERM".to_string(),
        Ending::Killed(after) => format!(
            "ignored SIGTERM for the drain timeout ({}): killed (SIGKILL) after {}",
            format_duration(drain),
            format_duration(*after)
        ),
    }
}
