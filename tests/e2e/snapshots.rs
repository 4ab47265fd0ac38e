//! Snapshots of every report format of `reqresp analyze`, produced by the
//! real binary on the fixed captures of tests/fixtures, so that any change
//! of what a user sees shows in review as a diff of
//! `tests/e2e/snapshots/*.snap`.
//!
//! A changed output fails the test. When the change is intended:
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test --test e2e --
//! snapshots::`, then read `git diff`). CI sets `INSTA_UPDATE=no`, so there
//! a changed or missing snapshot fails and nothing is written.
//!
//! The outputs are deterministic: the fixtures carry fixed times, stdout is
//! a pipe (100 columns, no colour), and `NO_COLOR`/`COLUMNS` are cleared.

use std::path::Path;

use crate::support;

/// `reqresp analyze tests/fixtures/FIXTURE ARGS`: stdout, then stderr
/// under a marker when there is any. Asserts success.
fn analyze(fixture: &str, args: &[&str]) -> String {
    // Run in the fixtures' directory: the SVG's title names the file as
    // given, and an absolute path would differ between checkouts.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = support::reqresp()
        .current_dir(&dir)
        .arg("analyze")
        .arg(fixture)
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("RUST_LOG")
        .output()
        .expect("run reqresp analyze");
    let stdout = String::from_utf8(out.stdout).expect("the report is UTF-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "reqresp analyze {fixture} {args:?} failed: {stderr}"
    );
    if stderr.is_empty() {
        stdout
    } else {
        format!("{stdout}{STDERR}{stderr}")
    }
}

/// Where the report ends and its warnings on stderr begin, in a snapshot.
const STDERR: &str = "\n--- stderr ---\n";

/// One snapshot per format of `fixture`, named `<stem>-<format>`.
fn snapshot_formats(fixture: &str, formats: &[&str]) {
    let stem = fixture.split('.').next().unwrap();
    for format in formats {
        let output = analyze(fixture, &["--format", format]);
        let report = output.split(STDERR).next().unwrap();
        // Each format is also checked for being what it claims to be, so a
        // snapshot accepted in review cannot be a broken document.
        match *format {
            "json" => {
                serde_json::from_str::<serde_json::Value>(report).expect("valid JSON");
            }
            "svg" => {
                roxmltree::Document::parse(report).expect("well-formed SVG");
            }
            "mermaid" => assert!(report.starts_with("sequenceDiagram\n"), "{report}"),
            _ => {}
        }
        insta::assert_snapshot!(format!("{stem}-{format}"), output);
    }
}

const ALL: &[&str] = &["text", "json", "mermaid", "svg"];

/// Three connections: merged and split messages, a retransmission, a reset,
/// a gap, binary payloads, all three framings.
#[test]
fn lesson_every_format() {
    snapshot_formats("lesson.pcap", ALL);
}

/// The lab's conversation over Ethernet with VLAN tags, an ARP and a UDP packet.
#[test]
fn echo_over_vlans_every_format() {
    snapshot_formats("vlan-qinq.pcap", ALL);
}

/// IPv6 addresses and nanosecond times.
#[test]
fn ipv6_nanosecond_text_and_json() {
    snapshot_formats("null-be-ipv6-nano.pcap", &["text", "json"]);
}

/// Skipped packets and the warnings naming them; no handshake seen.
#[test]
fn hostile_headers_text_and_json() {
    snapshot_formats("hostile-headers.pcap", &["text", "json"]);
}

/// A capture cut short: the packets before the cut and a warning.
#[test]
fn truncated_text_and_json() {
    snapshot_formats("truncated.pcap", &["text", "json"]);
}

/// Options that change what is drawn: every connection as turns, and a cap
/// on the exchanges and connections drawn.
#[test]
fn lesson_with_options() {
    insta::assert_snapshot!(
        "lesson-text-framing-raw",
        analyze("lesson.pcap", &["--framing", "raw"])
    );
    insta::assert_snapshot!(
        "lesson-text-max-1",
        analyze(
            "lesson.pcap",
            &["--max-exchanges", "1", "--max-connections", "1"]
        )
    );
}
