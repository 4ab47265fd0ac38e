//! Faults on the lab's network: loss, delay with jitter, and partitions,
//! made with what the kernel has and always removed again.
//!
//! | fault     | mechanism                                                    | file             |
//! |-----------|--------------------------------------------------------------|------------------|
//! | loss      | iptables `statistic` DROP in each host's INPUT               | `loss`         |
//! | delay     | netem on each host's `eth0`, else NFQUEUE held in userspace  | `delay`        |
//! | partition | iptables DROP in both hosts from a start, for a length       | `partition`    |
//!
//! Everything lives inside the lab's two namespaces (see `rules`): the
//! machine's own tables are never touched, and deleting the namespaces
//! deletes every rule and qdisc with them. `Faults` removes them itself
//! when dropped (normal end, error, Ctrl-C); after a SIGKILL, `reqresp lab
//! --down` deletes the namespaces and so the rules.
//!
//! `REQRESP_FAULT_DELAY=nfqueue` uses NFQUEUE even where netem exists, so a
//! CI on a netem kernel tests the same path as one without.

pub(crate) mod delay;
pub(crate) mod loss;
pub(crate) mod netns;
pub(crate) mod partition;
pub(crate) mod rules;
pub mod spec;

use std::time::Duration;

use delay::DelayQueue;
use partition::PartitionTimer;
use rules::{Rule, RuleError};
pub use spec::{FaultSpec, FaultSpecError};

/// Why the faults could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// An iptables rule or qdisc failed.
    #[error("setting up the fault: {0}")]
    Rule(#[from] RuleError),
    /// The NFQUEUE handler failed.
    #[error(transparent)]
    Queue(#[from] delay::QueueError),
}

/// How the delay is made on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelayMechanism {
    /// The kernel's netem qdisc.
    Netem,
    /// Packets held in userspace through NFQUEUE.
    Nfqueue,
}

/// The faults in place on the lab's hosts; removed on drop.
pub(crate) struct Faults {
    spec: FaultSpec,
    hosts: Vec<String>,
    verbose: bool,
    rules: Vec<Rule>,
    queues: Vec<DelayQueue>,
    netem: Vec<String>,
    delay_mechanism: Option<DelayMechanism>,
    partition: Option<PartitionTimer>,
    removed: bool,
}

impl Faults {
    /// Puts loss and delay in place on `hosts` (namespace names); the
    /// partition waits for [`Faults::start_clock`].
    pub fn apply(spec: FaultSpec, hosts: &[String], verbose: bool) -> Result<Faults, FaultError> {
        let mut faults = Faults {
            spec,
            hosts: hosts.to_vec(),
            verbose,
            rules: Vec::new(),
            queues: Vec::new(),
            netem: Vec::new(),
            delay_mechanism: None,
            partition: None,
            removed: false,
        };
        // On error, `faults` is dropped here and removes what was added.
        if let Some(share) = spec.loss {
            for host in hosts {
                let rule = loss::rule(host, share);
                rule.add("-A", verbose)?;
                faults.rules.push(rule);
            }
        }
        if let Some(d) = spec.delay {
            let forced = std::env::var("REQRESP_FAULT_DELAY").is_ok_and(|v| v == "nfqueue");
            let mut mechanism = DelayMechanism::Nfqueue;
            if !forced {
                for host in hosts {
                    if !delay::try_netem(host, d, verbose)? {
                        break;
                    }
                    faults.netem.push(host.clone());
                }
                if faults.netem.len() == hosts.len() {
                    mechanism = DelayMechanism::Netem;
                } else {
                    // Netem on some hosts only: undo it, NFQUEUE does all.
                    for host in faults.netem.drain(..) {
                        delay::remove_netem(&host, verbose)?;
                    }
                }
            }
            if mechanism == DelayMechanism::Nfqueue {
                for (i, host) in hosts.iter().enumerate() {
                    let seed = u64::from(std::process::id()) << 8 | i as u64;
                    faults.queues.push(DelayQueue::start(host, d, seed)?);
                    let rule = delay::nfqueue_rule(host);
                    rule.add("-A", verbose)?;
                    faults.rules.push(rule);
                }
            }
            faults.delay_mechanism = Some(mechanism);
        }
        Ok(faults)
    }

    /// Starts the partition's clock (call when the client starts).
    pub fn start_clock(&mut self) {
        if let Some(p) = self.spec.partition
            && self.partition.is_none()
        {
            self.partition = Some(PartitionTimer::start(p, &self.hosts, self.verbose));
        }
    }

    /// The partition, once its clock runs.
    pub fn partition(&self) -> Option<&PartitionTimer> {
        self.partition.as_ref()
    }

    /// How the delay is made, when there is one.
    pub fn delay_mechanism(&self) -> Option<DelayMechanism> {
        self.delay_mechanism
    }

    /// Packets the NFQUEUE handlers held so far.
    pub fn packets_held(&self) -> u64 {
        self.queues.iter().map(DelayQueue::held).sum()
    }

    /// One line per fault saying how it is made, with the commands, for the
    /// report (the reader can repeat them by hand).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(share) = self.spec.loss {
            lines.push(format!(
                "loss {}% each way: iptables statistic match, in each host's INPUT chain:",
                share * 100.0
            ));
            for host in &self.hosts {
                lines.push(format!("    {}", loss::rule(host, share).display("-A")));
            }
        }
        if let Some(d) = self.spec.delay {
            match self.delay_mechanism {
                Some(DelayMechanism::Netem) => {
                    lines.push(format!(
                        "delay {}±{} each way: netem qdisc on each host's eth0:",
                        spec::show(d.base),
                        spec::show(d.jitter)
                    ));
                    for host in &self.hosts {
                        lines.push(format!(
                            "    ip {}",
                            delay::netem_args(host, d, "add").join(" ")
                        ));
                    }
                }
                _ => {
                    lines.push(format!(
                        "delay {}±{} each way: this kernel has no netem, so each host's INPUT hands TCP to NFQUEUE and the lab holds every packet before accepting it (in order):",
                        spec::show(d.base),
                        spec::show(d.jitter)
                    ));
                    for host in &self.hosts {
                        lines.push(format!("    {}", delay::nfqueue_rule(host).display("-A")));
                    }
                }
            }
        }
        if let Some(p) = self.spec.partition {
            lines.push(format!(
                "partition for {} starting {} after the client: DROP first in both hosts' INPUT, then deleted:",
                spec::show(p.length),
                spec::show(p.start)
            ));
            for host in &self.hosts {
                lines.push(format!("    {}", partition::rule(host).display("-I")));
            }
        }
        lines
    }

    /// Removes every rule, queue and qdisc; returns what failed.
    pub fn remove(&mut self) -> Vec<String> {
        if self.removed {
            return Vec::new();
        }
        self.removed = true;
        let mut errors = Vec::new();
        if let Some(mut p) = self.partition.take() {
            errors.extend(p.finish());
        }
        // Rules first, so nothing new is queued; then the handlers release
        // what they hold.
        for rule in self.rules.drain(..).rev() {
            if let Err(e) = rule.delete(self.verbose) {
                errors.push(e.to_string());
            }
        }
        for mut queue in self.queues.drain(..) {
            queue.stop();
        }
        for host in self.netem.drain(..) {
            if let Err(e) = delay::remove_netem(&host, self.verbose) {
                errors.push(e.to_string());
            }
        }
        errors
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        for err in self.remove() {
            eprintln!("reqresp lab: removing faults: {err}");
        }
    }
}

/// How long a partition keeps the lab waiting in all, for the client's limits.
pub(crate) fn partition_span(spec: &FaultSpec) -> Duration {
    spec.partition
        .map_or(Duration::ZERO, |p| p.start + p.length)
}
