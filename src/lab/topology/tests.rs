//! Tests of `lab::topology`.

use super::*;

fn joined(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.args.join(" ")).collect()
}

#[test]
fn setup_builds_both_hosts_on_the_bridge() {
    let names = LabNames::new(123, 0);
    let cmds = joined(&setup_steps(&names));
    for expected in [
        "link set br-reqresp up",
        "netns add rr-123-srv",
        "link add rr-123-s type veth peer name eth0 netns rr-123-srv",
        "link set rr-123-s master br-reqresp",
        "-n rr-123-srv link set eth0 address 02:42:0a:de:00:02",
        "-n rr-123-srv addr add 10.222.0.2/24 dev eth0",
        "-n rr-123-srv link set lo up",
        "netns add rr-123-cli",
        "link add rr-123-c type veth peer name eth0 netns rr-123-cli",
        "-n rr-123-cli addr add 10.222.0.3/24 dev eth0",
        "-n rr-123-cli link set eth0 address 02:42:0a:de:00:03",
        "-n rr-123-cli link set lo up",
    ] {
        assert!(cmds.contains(&expected.to_string()), "missing {expected:?}");
    }
}

#[test]
fn setup_never_touches_the_root_namespace_addresses() {
    let names = LabNames::new(9, 3);
    for step in setup_steps(&names) {
        let a = &step.args;
        let in_ns = a.first().is_some_and(|x| x == "-n");
        if a.iter().any(|x| x == "addr" || x == "route") {
            assert!(in_ns, "address or route change outside a namespace: {a:?}");
        }
        // Only tuning steps may fail.
        assert_eq!(step.optional, a.iter().any(|x| x == "addrgenmode"), "{a:?}");
    }
}

#[test]
fn a_host_is_configured_only_after_its_namespace_and_link_exist() {
    let names = LabNames::new(5, 0);
    let cmds = joined(&setup_steps(&names));
    let pos = |s: &str| cmds.iter().position(|c| c == s).unwrap();
    assert!(
        pos("netns add rr-5-srv") < pos("link add rr-5-s type veth peer name eth0 netns rr-5-srv")
    );
    assert!(
        pos("-n rr-5-srv link set eth0 address 02:42:0a:de:00:02")
            < pos("-n rr-5-srv link set eth0 up")
    );
    assert!(
        pos("-n rr-5-srv addr add 10.222.0.2/24 dev eth0") < pos("-n rr-5-srv link set eth0 up")
    );
}

#[test]
fn firewall_rule_is_scoped_to_the_bridge() {
    let names = LabNames::new(77, 2);
    let args = firewall_args(&names, "-I").join(" ");
    assert_eq!(
        args,
        "-I FORWARD -i br-reqresp-2 -o br-reqresp-2 -m comment --comment reqresp lab pid 77 -j ACCEPT"
    );
    assert_eq!(firewall_args(&names, "-D")[0], "-D");
}

#[test]
fn state_file_is_named_after_the_bridge() {
    let state = State {
        names: LabNames::new(1, 4),
        firewall_rule: true,
        kept: false,
        bridge_ifindex: Some(7),
    };
    assert_eq!(
        state.path(),
        Path::new("/run/reqresp-lab/br-reqresp-4.json")
    );
}
