//! Tests of `lab`.

use super::*;

#[test]
fn default_scripts() {
    assert_eq!(script(LabService::Echo, 5, &[]).len(), 3);
    let tickets = script(LabService::Tickets, 3, &[]);
    assert_eq!(
        tickets,
        vec!["book ticket"; 4],
        "one booking more than the stock"
    );
    assert_eq!(
        script(LabService::Tickets, 1_000_000, &[]).len(),
        21,
        "bounded"
    );
    let own = vec!["a".to_string(), "-b".to_string()];
    assert_eq!(script(LabService::Tickets, 3, &own), own);
}

#[test]
fn server_and_client_command_lines() {
    let addr: SocketAddr = "10.222.0.2:2222".parse().unwrap();
    assert_eq!(
        server_args(addr, LabService::Tickets, 3, Path::new("out"), &[]).join(" "),
        "server --listen 10.222.0.2:2222 --service tickets --tickets 3 --tickets-db out/tickets.db --reset-tickets"
    );
    assert_eq!(
        server_args(
            addr,
            LabService::Echo,
            3,
            Path::new("out"),
            &["--prefix=".to_string()]
        )
        .join(" "),
        "server --listen 10.222.0.2:2222 --service echo --prefix="
    );
    let msgs = vec!["hi there".to_string(), "-n".to_string()];
    assert_eq!(
        client_args(addr, &msgs),
        ["client", "10.222.0.2:2222", "--", "hi there", "-n"]
    );
    let cmd = in_netns(
        "rr-1-cli",
        Path::new("/usr/bin/reqresp"),
        &client_args(addr, &msgs),
    );
    assert_eq!(
        process::display(&cmd),
        "ip netns exec rr-1-cli /usr/bin/reqresp client 10.222.0.2:2222 -- 'hi there' -n"
    );
}

#[test]
fn forced_modes_are_taken_as_asked() {
    assert_eq!(choose_mode(Mode::Loopback).0, Mode::Loopback);
    assert_eq!(choose_mode(Mode::Netns).0, Mode::Netns);
}
