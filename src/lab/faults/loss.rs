//! Random loss: an iptables `statistic` rule in each host drops that share
//! of the TCP segments arriving on its `eth0`, so each direction loses it.
//!
//! The drop happens at the receiving host, after the bridge: the capture
//! holds the lost segment once and its retransmission later, which is what
//! Wireshark flags as a retransmission (a capture between the hosts, like
//! the original lab's tcpdump on the Docker bridge).

use super::rules::Rule;

/// The rule that drops `share` (0..=1) of what arrives at `netns`.
pub(crate) fn rule(netns: &str, share: f64) -> Rule {
    let probability = format!("{:.4}", share.clamp(0.0, 1.0));
    Rule::tcp_in(
        netns,
        &[
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability,
            "-j",
            "DROP",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_becomes_the_statistic_probability() {
        let line = rule("rr-0-cli", 0.15).display("-A");
        assert!(
            line.contains("-m statistic --mode random --probability 0.1500 -j DROP"),
            "{line}"
        );
    }
}
