//! Tests of `lab::usercmd`.

use super::program::listens_on;
use super::*;

const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 020016AC:08AE 010016AC:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
";

#[test]
fn a_listening_socket_is_found_by_port_and_state() {
    assert!(listens_on(TABLE, 2222));
    assert!(
        !listens_on(TABLE, 50000),
        "an established socket is not listening"
    );
    assert!(!listens_on("", 2222));
    assert!(!listens_on("header\ngarbage line\n", 2222));
}

#[test]
fn the_user_command_runs_in_the_host_with_the_servers_address() {
    let user = UserCmd {
        command: "python3 server.py".into(),
        dir: Some("/tmp".into()),
    };
    let cmd = user_command(
        "rr-1-srv",
        &user,
        "10.222.0.2:2222".parse().unwrap(),
        Path::new("/out/my server.log"),
    );
    assert_eq!(
        process::display(&cmd),
        "ip netns exec rr-1-srv sh -c 'exec >>'\\''/out/my server.log'\\'' 2>&1\npython3 server.py'"
    );
    assert_eq!(cmd.get_current_dir(), Some(Path::new("/tmp")));
    let env: Vec<_> = cmd.get_envs().collect();
    assert!(env.contains(&("REQRESP_SERVER".as_ref(), Some("10.222.0.2".as_ref()))));
}

#[test]
fn ignored_sigterm_ends_in_sigkill_after_the_drain() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    let mut program =
        UserProgram::spawn("server", cmd, "no-such-netns", Duration::from_millis(300)).unwrap();
    program
        .process
        .wait_for_line("ready", Duration::from_secs(5))
        .unwrap();
    let (ending, strays) = program.stop();
    assert!(matches!(ending, Ending::Killed(_)), "{ending:?}");
    assert_eq!(strays, 0, "no namespace to sweep");
    assert!(program.exited().is_some());
}

#[test]
fn restarts_are_grouped_by_cause() {
    let r = |a: &str, w: &str| (a.to_string(), w.to_string());
    let note = restart_note(&[
        r("the lab's client", "exited (0)"),
        r("`echo`", "exited (0)"),
        r("`abort`", "exited (1)"),
    ]);
    assert!(
        note.contains("went down 3 time(s)")
            && note.contains("exited (0) after the lab's client, `echo`; exited (1) after `abort`"),
        "{note}"
    );
}

#[test]
fn merged_reports_keep_case_order_and_distinct_notes() {
    let mut a = check::text::tests::sample();
    let b = a.clone();
    a.notes = vec!["one".into()];
    let mut b2 = b.clone();
    b2.notes = vec!["one".into(), "two".into()];
    let n = a.cases.len() + b2.cases.len();
    let merged = merge(vec![a, b2]).unwrap();
    assert_eq!(merged.cases.len(), n);
    assert_eq!(merged.notes, ["one", "two"]);
    assert!(merge(Vec::new()).is_none());
}
