//! The lab's network: two network namespaces (server host, client host), a
//! Linux bridge in the root namespace and a veth pair from each host to the
//! bridge, created for one run and always removed again.
//!
//! The topology is built with the `ip` command (iproute2) rather than a
//! netlink crate: the rtnetlink crates pull in a second async stack and a
//! large dependency tree for about a dozen calls, and `ip` is what a student
//! types to do the same by hand, so every step here can be shown as the
//! command it is (`reqresp lab -v`) and repeated from the printed help.
//!
//! The machine's own network is left alone: the bridge gets no address, so
//! no route, forwarding or NAT is set up in the root namespace; IPv6 address
//! generation is switched off on every interface created here so the capture
//! holds the lab's traffic and not router solicitations. The one exception
//! is made only where it is needed: when `br_netfilter` makes bridged frames
//! pass the host's iptables FORWARD chain (Docker loads it and sets the
//! policy to DROP), one ACCEPT rule scoped to this bridge is inserted, as
//! Docker does for its own bridges, and deleted at teardown.
//!
//! Cleanup is guaranteed by [`Topology`]'s `Drop` and by a state file in
//! [`STATE_DIR`] written before anything else exists, which also lets
//! `reqresp lab --down` find a topology left up by `--keep` (or by a run
//! that was killed with SIGKILL).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::names::{HOST_IFACE, Host, LabNames, MAX_SLOT, bridge_name};

/// Where the state of each topology is recorded, one JSON file per bridge.
pub(crate) const STATE_DIR: &str = "/run/reqresp-lab";

/// Why the topology could not be built or removed.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A helper program (`ip`, `iptables`) could not be started at all.
    #[error("cannot run `{program}`: {source}; install iproute2 (`apt-get install iproute2`)")]
    Spawn {
        /// The program.
        program: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed: {stderr}{hint}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
        /// What to do about it, when known.
        hint: &'static str,
    },
    /// Every bridge slot is taken.
    #[error(
        "bridges br-reqresp to br-reqresp-{MAX_SLOT} all exist: too many labs at once, or labs left up; remove kept ones with `reqresp lab --down`"
    )]
    NoFreeSlot,
    /// The lab's bridge was left in place because someone else uses it.
    #[error(
        "left the bridge {bridge} in place: {why}. The Docker lab (compose/reqresp.yml) attaches to an existing bridge of that name; its containers would lose their network. The lab's namespaces and veths are gone; run `reqresp lab --down` again after `docker compose -f compose/reqresp.yml down` to remove the bridge"
    )]
    BridgeInUse {
        /// The bridge.
        bridge: String,
        /// Who uses it.
        why: String,
    },
    /// The state file could not be written or read.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl TopologyError {
    /// True when the command failed because the object already exists.
    fn is_exists(&self) -> bool {
        matches!(self, TopologyError::Command { stderr, .. } if stderr.contains("File exists"))
    }
}

/// What was created, as recorded in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// Names and addresses.
    pub names: LabNames,
    /// True when an iptables ACCEPT rule for the bridge was inserted.
    pub firewall_rule: bool,
    /// True when the topology was left up on purpose (`--keep`).
    pub kept: bool,
    /// Interface index of the bridge this run created. A later bridge of the
    /// same name (the Docker lab's, another run's) has another index, so
    /// cleanup never removes a bridge it did not create.
    #[serde(default)]
    pub bridge_ifindex: Option<u32>,
}

impl State {
    /// Path of this topology's state file.
    pub fn path(&self) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{}.json", self.names.bridge))
    }

    fn save(&self) -> Result<(), TopologyError> {
        let path = self.path();
        let err = |source| TopologyError::State {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(STATE_DIR).map_err(err)?;
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        // Written aside, then renamed: `--down` never reads half a file.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, json).map_err(err)?;
        std::fs::rename(&partial, &path).map_err(err)
    }
}

/// One command of the setup, as `ip` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Arguments after `ip`.
    pub args: Vec<String>,
    /// A step whose failure is tolerated (IPv6 tuning on a kernel without IPv6).
    pub optional: bool,
}

fn step(args: &[&str]) -> Step {
    Step {
        args: args.iter().map(|s| s.to_string()).collect(),
        optional: false,
    }
}

fn optional(args: &[&str]) -> Step {
    Step {
        optional: true,
        ..step(args)
    }
}

/// The `ip` commands that build the topology once its bridge exists.
pub(crate) fn setup_steps(names: &LabNames) -> Vec<Step> {
    let br = names.bridge.as_str();
    let mut steps = vec![
        optional(&["link", "set", br, "addrgenmode", "none"]),
        // The mark `ip link show` prints, and `--down` checks, so a bridge
        // of the same name made by someone else is never taken for ours.
        step(&["link", "set", br, "alias", &bridge_alias(names.pid)]),
        step(&["link", "set", br, "up"]),
    ];
    for host in names.hosts() {
        steps.extend(host_steps(host, br, names.prefix_len));
    }
    steps
}

fn host_steps(host: &Host, bridge: &str, prefix_len: u8) -> Vec<Step> {
    let ns = host.netns.as_str();
    let veth = host.veth.as_str();
    let addr = format!("{}/{prefix_len}", host.ip);
    vec![
        step(&["netns", "add", ns]),
        // The namespace end is created inside the namespace, so its name
        // (`eth0`, as in a container) cannot clash with the host's own.
        step(&[
            "link", "add", veth, "type", "veth", "peer", "name", HOST_IFACE, "netns", ns,
        ]),
        optional(&["link", "set", veth, "addrgenmode", "none"]),
        step(&["link", "set", veth, "master", bridge]),
        step(&["link", "set", veth, "up"]),
        step(&["-n", ns, "link", "set", HOST_IFACE, "address", &host.mac]),
        optional(&["-n", ns, "link", "set", HOST_IFACE, "addrgenmode", "none"]),
        step(&["-n", ns, "addr", "add", &addr, "dev", HOST_IFACE]),
        step(&["-n", ns, "link", "set", "lo", "up"]),
        step(&["-n", ns, "link", "set", HOST_IFACE, "up"]),
    ]
}

/// The alias (`ip link show` prints it) that marks a bridge as made by the
/// lab run `pid`.
pub(crate) fn bridge_alias(pid: u32) -> String {
    format!("reqresp lab pid {pid}")
}

/// The iptables arguments of the bridge's ACCEPT rule, for `action` `-I`,
/// `-C` or `-D`. The comment names the run, so each run removes its own.
pub(crate) fn firewall_args(names: &LabNames, action: &str) -> Vec<String> {
    let bridge = names.bridge.as_str();
    let comment = format!("reqresp lab pid {}", names.pid);
    [
        action,
        "FORWARD",
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        &comment,
        "-j",
        "ACCEPT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// True when bridged IPv4 frames pass the host's iptables (br_netfilter).
fn bridge_netfilter_active() -> bool {
    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1")
}

/// Runs a command and returns its stdout; a failure carries its stderr.
fn run(program: &str, args: &[String], verbose: bool) -> Result<String, TopologyError> {
    let command = format!("{program} {}", args.join(" "));
    if verbose {
        eprintln!("+ {command}");
    }
    let mut cmd = Command::new(program);
    super::process::detach(&mut cmd);
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TopologyError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let hint = if stderr.contains("Operation not permitted") || stderr.contains("Permission denied")
    {
        " (network namespaces need root: run with sudo, or use --mode loopback)"
    } else {
        ""
    };
    Err(TopologyError::Command {
        command,
        stderr,
        hint,
    })
}

fn ip(args: &[String], verbose: bool) -> Result<String, TopologyError> {
    run("ip", args, verbose)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The interface index of a link, if it exists.
pub(crate) fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// A topology that exists while this value lives: dropping it removes
/// everything it created, unless [`Topology::keep`] was called.
#[derive(Debug)]
pub(crate) struct Topology {
    state: State,
    verbose: bool,
    active: bool,
    /// Held while this run owns `br-reqresp` (slot 0); released after
    /// teardown, when the fields drop.
    _bridge_lock: Option<std::fs::File>,
}

impl Topology {
    /// Builds a new topology for the process `pid`: claims the first free
    /// bridge slot, records the state file, then creates the namespaces and
    /// links. On any error, what was already created is removed again.
    pub fn create(pid: u32, verbose: bool) -> Result<Topology, TopologyError> {
        // Checked before anything exists, so the error path never removes
        // namespaces that belong to an earlier run.
        for netns in LabNames::new(pid, 0).hosts().map(|h| h.netns.clone()) {
            if netns_exists(&netns) {
                return Err(TopologyError::Command {
                    command: format!("ip netns add {netns}"),
                    stderr: "a namespace of that name already exists".into(),
                    hint: " (left by an earlier run: remove it with `reqresp lab --down`)",
                });
            }
        }
        let (slot, bridge_lock) = claim_bridge(verbose)?;
        let mut topology = Topology {
            _bridge_lock: bridge_lock,
            state: State {
                names: LabNames::new(pid, slot),
                firewall_rule: false,
                bridge_ifindex: ifindex(&bridge_name(slot)),
                kept: false,
            },
            verbose,
            active: true,
        };
        // From here on, `topology` going out of scope tears down.
        topology.state.save()?;
        if bridge_netfilter_active() {
            topology.state.firewall_rule = true;
            topology.state.save()?;
            let args = firewall_args(&topology.state.names, "-I");
            match run("iptables", &args, verbose) {
                Ok(_) => {}
                Err(TopologyError::Spawn { .. }) => {
                    // No iptables binary: nothing can have put rules there.
                    topology.state.firewall_rule = false;
                    topology.state.save()?;
                }
                Err(err) => return Err(err),
            }
        }
        for step in setup_steps(&topology.state.names) {
            match ip(&step.args, verbose) {
                Err(_) if step.optional => {}
                other => {
                    other?;
                }
            }
        }
        Ok(topology)
    }

    /// The names and addresses of this topology.
    pub fn names(&self) -> &LabNames {
        &self.state.names
    }

    /// The interface index of the bridge (as `ip link` shows it).
    pub fn bridge_ifindex(&self) -> Option<u32> {
        self.state.bridge_ifindex
    }

    /// True when an iptables rule was inserted for the bridge.
    pub fn has_firewall_rule(&self) -> bool {
        self.state.firewall_rule
    }

    /// Leaves the topology up after this value is dropped, marking it kept
    /// in its state file so `reqresp lab --down` removes it later.
    pub fn keep(mut self) -> Result<State, TopologyError> {
        self.state.kept = true;
        self.state.save()?;
        self.active = false;
        Ok(self.state.clone())
    }

    /// Removes everything now; returns the steps that failed (empty when
    /// all is gone).
    pub fn teardown(&mut self) -> Vec<TopologyError> {
        self.active = false;
        teardown_state(&self.state, self.verbose)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.active {
            for err in self.teardown() {
                eprintln!("reqresp lab: cleanup: {err}");
            }
        }
    }
}

/// Lock file shared with `scripts/compose-e2e.sh`: whoever holds it owns
/// the name `br-reqresp`. Docker silently attaches a compose network to an
/// existing bridge of its name, so without it a lab started while the
/// Docker lab comes up would take the bridge from under the containers.
pub(crate) const BRIDGE_LOCK: &str = "/run/lock/reqresp-br-reqresp.lock";

/// Takes [`BRIDGE_LOCK`] without waiting; `None` when someone holds it (or
/// the lock file cannot be made, in which case slot 0 is not tried either).
fn try_lock_bridge_name() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(BRIDGE_LOCK)
        .ok()?;
    // SAFETY: flock on a file descriptor we own.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

/// Creates the first free bridge `br-reqresp[-n]` and returns its slot (and,
/// for slot 0, the held [`BRIDGE_LOCK`]). Creation is atomic in the kernel,
/// so concurrent runs never share one.
fn claim_bridge(verbose: bool) -> Result<(u8, Option<std::fs::File>), TopologyError> {
    // A Docker network whose bridge is missing right now (the engine
    // re-creates it) still owns the name.
    let docker = docker_bridges();
    for slot in 0..=MAX_SLOT {
        if let Some((network, _)) = docker.iter().find(|(_, br)| *br == bridge_name(slot)) {
            if verbose {
                eprintln!(
                    "+ skipping {}: the Docker network {network} uses that name",
                    bridge_name(slot)
                );
            }
            continue;
        }
        let lock = if slot == 0 {
            match try_lock_bridge_name() {
                Some(lock) => Some(lock),
                None => continue,
            }
        } else {
            None
        };
        // No multicast snooping: the bridge would send IGMP/MLD reports of its own into the capture.
        let args = strings(&[
            "link",
            "add",
            &bridge_name(slot),
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        match ip(&args, verbose) {
            Ok(_) => return Ok((slot, lock)),
            Err(err) if err.is_exists() => continue,
            Err(err) => return Err(err),
        }
    }
    Err(TopologyError::NoFreeSlot)
}

/// Ends every process still inside a namespace: SIGTERM, then SIGKILL for
/// those still there after a grace period.
fn stop_processes_in(netns: &str, verbose: bool) {
    let pids = |verbose| -> Vec<i32> {
        ip(&strings(&["netns", "pids", netns]), verbose)
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = pids(verbose);
    if first.is_empty() {
        return;
    }
    for &pid in &first {
        // SAFETY: kill has no memory preconditions; pid came from the namespace's process list.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = pids(false);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for pid in left {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes everything a state records, skipping what is already gone.
pub(crate) fn teardown_state(state: &State, verbose: bool) -> Vec<TopologyError> {
    let names = &state.names;
    let mut errors = Vec::new();
    let mut check = |result: Result<String, TopologyError>| {
        if let Err(err) = result {
            errors.push(err);
        }
    };
    for host in names.hosts() {
        if netns_exists(&host.netns) {
            stop_processes_in(&host.netns, verbose);
        }
    }
    // Deleting the root-side end removes the pair at once; deleting only the
    // namespace would leave the veth until the kernel reaps it, later.
    for host in names.hosts() {
        if link_exists(&host.veth) {
            check(ip(&strings(&["link", "del", &host.veth]), verbose));
        }
    }
    for host in names.hosts() {
        if netns_exists(&host.netns) {
            check(ip(&strings(&["netns", "del", &host.netns]), verbose));
        }
    }
    if state.firewall_rule && run("iptables", &firewall_args(names, "-C"), false).is_ok() {
        check(run("iptables", &firewall_args(names, "-D"), verbose));
    }
    if !errors.is_empty() {
        // Keep the bridge (the claim on the name) and the state file, so
        // `reqresp lab --down` can finish the job.
        return errors;
    }
    // The bridge is the lock on its name and on the state file's path: the
    // file goes first, the bridge last. The other way round, a new run could
    // claim the freed name and write its state file in between, and this
    // removal would delete that run's file.
    let ours = match state.bridge_ifindex {
        Some(index) => ifindex(&names.bridge) == Some(index),
        None => link_exists(&names.bridge),
    };
    if !ours {
        let _ = std::fs::remove_file(state.path());
        return errors;
    }
    if let Some(why) = bridge_in_foreign_use(names) {
        // Docker attaches a compose network to an existing bridge of its
        // name without a word; deleting it would cut its containers off.
        // The state file stays, so a later `--down` removes the bridge once
        // it is free again.
        let _ = state.save();
        errors.push(TopologyError::BridgeInUse {
            bridge: names.bridge.clone(),
            why,
        });
        return errors;
    }
    let _ = std::fs::remove_file(state.path());
    if let Err(err) = ip(&strings(&["link", "del", &names.bridge]), verbose) {
        let _ = state.save();
        errors.push(err);
    }
    errors
}

/// Why the lab's bridge is used by someone else, if it is: a port that is
/// not one of the lab's veths, or a Docker network that names it. An IPv4
/// address (the lab never gives the bridge one; Docker does) is mentioned
/// but decides nothing: Docker leaves it behind on a bridge it did not
/// create when its network goes away.
pub(crate) fn bridge_in_foreign_use(names: &LabNames) -> Option<String> {
    let own: Vec<&str> = names.hosts().iter().map(|h| h.veth.as_str()).collect();
    let brif = Path::new("/sys/class/net").join(&names.bridge).join("brif");
    let mut foreign: Vec<String> = std::fs::read_dir(brif)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|port| !own.contains(&port.as_str()))
                .collect()
        })
        .unwrap_or_default();
    foreign.sort();
    let mut reasons = Vec::new();
    if !foreign.is_empty() {
        reasons.push(format!("ports {} are not the lab's", foreign.join(", ")));
    }
    let addresses = ip(
        &strings(&["-o", "-4", "addr", "show", "dev", &names.bridge]),
        false,
    )
    .unwrap_or_default();
    let addresses: Vec<&str> = addresses
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .collect();
    if let Some(network) = docker_network_using(&names.bridge) {
        reasons.push(format!("the Docker network {network} uses it"));
    }
    if !reasons.is_empty() && !addresses.is_empty() {
        reasons.push(format!("it has the address {}", addresses.join(", ")));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The Docker network whose bridge is `bridge` (the compose lab fixes its
/// bridge's name to `br-reqresp`), if any.
pub(crate) fn docker_network_using(bridge: &str) -> Option<String> {
    docker_bridges()
        .into_iter()
        .find_map(|(network, br)| (br == bridge).then_some(network))
}

/// Every Docker bridge network with the Linux bridge it names in its
/// options, as `(network, bridge)`. Asked of the Docker CLI only when a
/// Docker engine socket exists; empty when there is none, or Docker does
/// not answer within 5 s.
fn docker_bridges() -> Vec<(String, String)> {
    if !Path::new("/var/run/docker.sock").exists() {
        return Vec::new();
    }
    let docker = |args: &[&str]| -> Option<String> {
        let mut cmd = Command::new("timeout");
        cmd.args(["5", "docker"]).args(args);
        super::process::detach(&mut cmd);
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(ids) = docker(&["network", "ls", "-q", "--filter", "driver=bridge"]) else {
        return Vec::new();
    };
    let mut args = vec![
        "network",
        "inspect",
        "-f",
        "{{.Name}} {{index .Options \"com.docker.network.bridge.name\"}}",
    ];
    args.extend(ids.split_whitespace());
    if args.len() == 4 {
        return Vec::new();
    }
    docker(&args)
        .unwrap_or_default()
        .lines()
        .filter_map(|row| {
            let (name, br) = row.rsplit_once(' ')?;
            (!br.is_empty()).then(|| (name.to_string(), br.to_string()))
        })
        .collect()
}

/// What `reqresp lab --down` found and did for one recorded topology.
#[derive(Debug)]
pub(crate) enum DownOutcome {
    /// Removed (the names it had).
    Removed(State),
    /// Left alone: the run that owns it is still going.
    InUse(State),
    /// Namespaces and veths removed; the bridge left because someone else
    /// (the Docker lab) uses it, for the reason given.
    BridgeLeft(State, String),
    /// Removal failed partly.
    Failed(State, Vec<TopologyError>),
}

/// Removes every topology recorded in [`STATE_DIR`] that was kept or whose
/// run is gone (killed without cleanup). Topologies of runs still going are
/// left alone.
pub(crate) fn down(verbose: bool) -> Result<Vec<DownOutcome>, TopologyError> {
    let dir = Path::new(STATE_DIR);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TopologyError::State {
                path: dir.into(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut outcomes = Vec::new();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // Its run finished and removed it meanwhile.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(TopologyError::State { path, source }),
        };
        let Ok(state) = serde_json::from_str::<State>(&text) else {
            eprintln!(
                "reqresp lab: ignoring {}: not a reqresp lab state file",
                path.display()
            );
            continue;
        };
        if !state.kept && process_alive(state.names.pid) {
            outcomes.push(DownOutcome::InUse(state));
            continue;
        }
        let mut errors = teardown_state(&state, verbose);
        outcomes.push(match errors.as_slice() {
            [] => DownOutcome::Removed(state),
            [TopologyError::BridgeInUse { why, .. }] => {
                let why = why.clone();
                DownOutcome::BridgeLeft(state, why)
            }
            _ => {
                errors.retain(|e| !matches!(e, TopologyError::BridgeInUse { .. }));
                DownOutcome::Failed(state, errors)
            }
        });
    }
    Ok(outcomes)
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests;
