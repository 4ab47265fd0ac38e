//! The names and addresses of one lab topology, computed without touching
//! the system, so they can be unit-tested and written to a state file.
//!
//! Two kinds of uniqueness are at work:
//!
//! - The **bridge** is claimed by slot: slot 0 is `br-reqresp` (the name the
//!   issue and the README use, like the lab's Docker bridge), slot `n > 0` is
//!   `br-reqresp-<n>`. Creating a bridge is atomic in the kernel (it fails
//!   with "File exists"), so two runs at once race safely: the first takes
//!   `br-reqresp`, the second `br-reqresp-1`. The slot also picks the subnet
//!   `10.222.<slot>.0/24`, so each run's capture shows its own addresses.
//! - The **namespaces** and root-side veth ends carry the process id
//!   (`rr-<pid>-srv`), unique among running processes.
//!
//! Linux limits interface names to 15 bytes (`IFNAMSIZ - 1`); every name here
//! stays within it for any pid (at most 7 digits on Linux) and slot.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Longest interface name Linux accepts (`IFNAMSIZ` is 16 with the NUL).
#[cfg(test)]
pub(crate) const MAX_IFNAME: usize = 15;

/// Name of the bridge of slot 0; later slots append `-<n>`.
pub(crate) const BRIDGE_BASE: &str = "br-reqresp";

/// Highest slot tried: at most this many + 1 labs run (or are kept) at once.
pub(crate) const MAX_SLOT: u8 = 63;

/// Name of the interface inside each host namespace, as in a container.
pub(crate) const HOST_IFACE: &str = "eth0";

/// Which host of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// The host running `reqresp server`.
    Server,
    /// The host running `reqresp client`.
    Client,
}

impl Role {
    /// Short tag used in names: `srv` or `cli`.
    pub fn tag(self) -> &'static str {
        match self {
            Role::Server => "srv",
            Role::Client => "cli",
        }
    }

    /// Last byte of the host's IPv4 address: `.2` for the server (the first
    /// address Docker hands out), `.3` for the client.
    fn host_octet(self) -> u8 {
        match self {
            Role::Server => 2,
            Role::Client => 3,
        }
    }
}

/// One host of the lab: a network namespace joined to the bridge by a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Host {
    /// Server or client.
    pub role: Role,
    /// Network namespace name (`ip netns exec <netns> ...`).
    pub netns: String,
    /// The veth end left in the root namespace and enslaved to the bridge.
    pub veth: String,
    /// The host's address on the lab subnet (on its `eth0`).
    pub ip: Ipv4Addr,
    /// The host's fixed, locally administered MAC address (on its `eth0`).
    pub mac: String,
}

/// Every name and address of one lab topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LabNames {
    /// Process id of the run that created the topology.
    pub pid: u32,
    /// Bridge slot (0 for `br-reqresp`).
    pub slot: u8,
    /// Bridge name in the root namespace.
    pub bridge: String,
    /// Prefix length of the lab subnet (always 24).
    pub prefix_len: u8,
    /// The server host.
    pub server: Host,
    /// The client host.
    pub client: Host,
}

/// Bridge name for a slot: `br-reqresp`, `br-reqresp-1`, ...
pub(crate) fn bridge_name(slot: u8) -> String {
    if slot == 0 {
        BRIDGE_BASE.to_string()
    } else {
        format!("{BRIDGE_BASE}-{slot}")
    }
}

/// Docker-style MAC for an IPv4 address: `02:42` (locally administered,
/// unicast) followed by the four address bytes, so the MAC names its host.
pub(crate) fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

impl LabNames {
    /// Names for the run with process id `pid` holding bridge slot `slot`.
    pub fn new(pid: u32, slot: u8) -> LabNames {
        let host = |role: Role| {
            let ip = Ipv4Addr::new(10, 222, slot, role.host_octet());
            Host {
                role,
                netns: format!("rr-{pid}-{}", role.tag()),
                // Root-side veth end: `rr-<pid>-s` / `rr-<pid>-c`, at most 11 bytes.
                veth: format!("rr-{pid}-{}", &role.tag()[..1]),
                ip,
                mac: mac_for(ip),
            }
        };
        LabNames {
            pid,
            slot,
            bridge: bridge_name(slot),
            prefix_len: 24,
            server: host(Role::Server),
            client: host(Role::Client),
        }
    }

    /// Both hosts, server first.
    pub fn hosts(&self) -> [&Host; 2] {
        [&self.server, &self.client]
    }

    /// The lab subnet in CIDR form, e.g. `10.222.0.0/24`.
    pub fn subnet(&self) -> String {
        format!("10.222.{}.0/{}", self.slot, self.prefix_len)
    }

    /// Every interface name this topology creates in the root namespace.
    #[cfg(test)]
    pub fn root_ifaces(&self) -> [&str; 3] {
        [&self.bridge, &self.server.veth, &self.client.veth]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_of_slot_zero_is_the_documented_name() {
        assert_eq!(bridge_name(0), "br-reqresp");
        assert_eq!(bridge_name(1), "br-reqresp-1");
        assert_eq!(bridge_name(MAX_SLOT), "br-reqresp-63");
    }

    #[test]
    fn every_interface_name_fits_ifnamsiz_for_the_largest_pid_and_slot() {
        // Linux pids are at most 2^22 = 4194304 (pid_max limit).
        for pid in [1, 42, 99_999, 4_194_304] {
            for slot in [0, 1, 9, 10, MAX_SLOT] {
                let names = LabNames::new(pid, slot);
                for name in names.root_ifaces() {
                    assert!(name.len() <= MAX_IFNAME, "{name} too long");
                    assert!(!name.contains(['/', ' ', ':']), "{name}");
                }
                assert!(HOST_IFACE.len() <= MAX_IFNAME);
                for host in names.hosts() {
                    assert!(!host.netns.contains(['/', ' ']));
                }
            }
        }
    }

    #[test]
    fn two_runs_never_share_a_name() {
        let a = LabNames::new(1000, 0);
        let b = LabNames::new(1001, 1);
        let mut all: Vec<&str> = Vec::new();
        for n in [&a, &b] {
            all.extend(n.root_ifaces());
            all.extend(n.hosts().iter().map(|h| h.netns.as_str()));
        }
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len(), "{all:?}");
        assert_ne!(a.subnet(), b.subnet());
    }

    #[test]
    fn addresses_and_macs_follow_the_slot() {
        let n = LabNames::new(77, 5);
        assert_eq!(n.server.ip, Ipv4Addr::new(10, 222, 5, 2));
        assert_eq!(n.client.ip, Ipv4Addr::new(10, 222, 5, 3));
        assert_eq!(n.subnet(), "10.222.5.0/24");
        assert_eq!(n.server.mac, "02:42:0a:de:05:02");
        assert_eq!(n.client.mac, "02:42:0a:de:05:03");
        assert_eq!(n.server.netns, "rr-77-srv");
        assert_eq!(n.client.veth, "rr-77-c");
    }

    #[test]
    fn macs_are_locally_administered_unicast() {
        for slot in [0, 200] {
            let mac = mac_for(Ipv4Addr::new(10, 222, slot, 2));
            let first = u8::from_str_radix(&mac[..2], 16).unwrap();
            assert_eq!(first & 0b10, 0b10, "locally administered bit");
            assert_eq!(first & 0b01, 0, "unicast");
            assert_eq!(mac.split(':').count(), 6);
        }
    }

    #[test]
    fn names_survive_a_state_file_round_trip() {
        let n = LabNames::new(4321, 2);
        let json = serde_json::to_string(&n).unwrap();
        let back: LabNames = serde_json::from_str(&json).unwrap();
        assert_eq!(back, n);
    }
}
