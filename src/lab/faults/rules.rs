//! iptables rules inside a lab host, added and removed one by one.
//!
//! Each rule is run as `ip netns exec <host> iptables ...`, so it lives in
//! the host's own tables and never in the machine's: deleting the namespace
//! (`reqresp lab --down` after a SIGKILL) deletes the rule with it. Every
//! rule carries the comment [`COMMENT`] so `iptables -S` inside a host shows
//! where it came from.

use std::process::{Command, Stdio};

/// The comment on every fault rule.
pub(crate) const COMMENT: &str = "reqresp lab fault";

/// Why a rule could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// `ip` could not be started.
    #[error("cannot run `{command}`: {source}; install iproute2 and iptables")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command failed.
    #[error("`{command}` failed: {stderr}{hint}")]
    Failed {
        /// The command line.
        command: String,
        /// Its stderr.
        stderr: String,
        /// What to do, when known.
        hint: &'static str,
    },
}

/// One rule in the INPUT chain of a host: what arrives at the host over
/// its `eth0`. On INPUT, the capture on the bridge still sees the packet
/// that is then dropped or held, as a capture in the middle of a network does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The host's namespace.
    pub netns: String,
    /// Match and target, after `INPUT`.
    pub spec: Vec<String>,
}

impl Rule {
    /// A rule for TCP arriving on `eth0` of `netns`, with `target` arguments.
    pub fn tcp_in(netns: &str, target: &[&str]) -> Rule {
        let mut spec: Vec<String> = [
            "-i",
            "eth0",
            "-p",
            "tcp",
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        spec.extend(target.iter().map(|s| s.to_string()));
        Rule {
            netns: netns.to_string(),
            spec,
        }
    }

    /// The command for `action` (`-A`, `-I`, `-D`).
    pub fn command(&self, action: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "netns",
            "exec",
            &self.netns,
            "iptables",
            "-w",
            action,
            "INPUT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.spec.iter().cloned());
        args
    }

    /// Appends (`-A`) or inserts first (`-I`) the rule.
    pub fn add(&self, action: &str, verbose: bool) -> Result<(), RuleError> {
        ip(&self.command(action), verbose)
    }

    /// Deletes the rule.
    pub fn delete(&self, verbose: bool) -> Result<(), RuleError> {
        ip(&self.command("-D"), verbose)
    }

    /// The rule as a user would type it.
    pub fn display(&self, action: &str) -> String {
        let mut words = vec!["ip".to_string()];
        words.extend(self.command(action));
        words
            .iter()
            .map(|w| super::super::process::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs `ip` with `args`, its process group detached from the terminal.
pub(crate) fn ip(args: &[String], verbose: bool) -> Result<(), RuleError> {
    let command = format!("ip {}", args.join(" "));
    if verbose {
        eprintln!("+ {command}");
    }
    let mut cmd = Command::new("ip");
    super::super::process::detach(&mut cmd);
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| RuleError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let hint = if stderr.contains("No chain/target/match") || stderr.contains("Couldn't load") {
        " (the kernel lacks this iptables module: load it with modprobe, e.g. xt_statistic or xt_NFQUEUE)"
    } else if stderr.contains("not permitted") || stderr.contains("Permission denied") {
        " (faults need root)"
    } else {
        ""
    };
    Err(RuleError::Failed {
        command,
        stderr,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_live_in_the_host_namespace_and_carry_the_comment() {
        let rule = Rule::tcp_in("rr-1-srv", &["-j", "DROP"]);
        let line = rule.display("-I");
        assert!(
            line.starts_with("ip netns exec rr-1-srv iptables -w -I INPUT -i eth0 -p tcp"),
            "{line}"
        );
        assert!(
            line.contains("--comment 'reqresp lab fault' -j DROP"),
            "{line}"
        );
        assert_eq!(rule.command("-D")[5], "-D");
    }
}
