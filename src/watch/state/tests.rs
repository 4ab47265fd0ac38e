use super::*;
use crate::analyze::Analyzer;
use crate::analyze::testing::{Script, analyze, echo, line_options, push_with_events};

/// The state after the analyzer (with packet events) took `w`'s segments.
pub(crate) fn state_of(w: &Script) -> State {
    let mut analyzer = Analyzer::new(line_options()).with_packet_events();
    let mut state = State::default();
    push_with_events(&mut analyzer, &w.segs, |_, e| state.apply(e));
    state
}

#[test]
fn an_open_connection_grows_as_its_packets_come() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    let s = state_of(&w);
    let c = &s.conns[&1];
    assert_eq!(c.status, Status::Open);
    let h = c.model.handshake.as_ref().expect("handshake drawn live");
    assert!(h.syn_ack.is_some() && h.ack.is_some());
    assert_eq!(c.packets_seen, 3);

    let s = state_of(&echo(false));
    let c = &s.conns[&1];
    assert!(!c.done);
    assert_eq!(c.exchanges, 2);
    assert_eq!(c.model.exchanges[1].request_preview, "second");
    assert_eq!(c.model.bytes_client_to_server, 13);
    assert_eq!(s.latencies.len(), 2);
    assert!(c.last_latency_us.is_some());
    assert_eq!(s.exchanges, 2);
}

#[test]
fn the_closed_record_replaces_the_live_model() {
    let w = echo(true);
    let s = state_of(&w);
    let c = &s.conns[&1];
    assert!(c.done);
    assert_eq!(c.status, Status::Closed);
    let reference = analyze(line_options(), &w.segs);
    assert_eq!(
        serde_json::to_value(&c.model).unwrap(),
        serde_json::to_value(&reference.connections[0]).unwrap()
    );
    assert_eq!(s.summary.connections(), 1);
    // Nothing counted twice.
    assert_eq!(s.exchanges, 2);
    assert_eq!(s.latencies.len(), 2);
}

#[test]
fn a_reset_shows_in_the_status_and_the_strip() {
    let mut w = echo(false);
    w.rst(3_000, Side::Server);
    let s = state_of(&w);
    assert_eq!(s.conns[&1].status, Status::Reset);
    assert_eq!(s.strip.len(), 1);
    assert_eq!(s.strip[0].event.kind.name(), "rst");
}

#[test]
fn a_retransmitted_fin_is_listed_once_live_as_in_the_analysis() {
    let mut w = echo(false);
    let mut again = w.fin(3_000, Side::Client);
    again.time = 3_200;
    w.segs.push(again);
    let s = state_of(&w);
    let c = &s.conns[&1];
    assert!(!c.done, "half closed: still live");
    let live = serde_json::to_value(&c.model.close).unwrap();
    let reference = analyze(line_options(), &w.segs);
    assert_eq!(
        live,
        serde_json::to_value(&reference.connections[0].close).unwrap()
    );
    assert_eq!(live["events"].as_array().unwrap().len(), 1, "{live}");
}

#[test]
fn memory_is_bounded_by_the_caps() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    let n = 2 * MAX_EXCHANGES + 50;
    for i in 0..n as u64 {
        w.c(1_000 + i * 100, b"ping\n");
        w.s(1_050 + i * 100, b"pong\n");
    }
    let s = state_of(&w);
    let c = &s.conns[&1];
    assert_eq!(c.exchanges, n as u64);
    assert_eq!(c.model.exchanges.len(), MAX_EXCHANGES + 50);
    assert_eq!(c.exchanges_hidden, MAX_EXCHANGES as u64);
    assert!(c.packets.len() <= MAX_PACKETS);
    assert_eq!(s.latencies.len(), MAX_LATENCIES);

    let mut many = State::default();
    for id in 1..=(MAX_CONNECTIONS as u32 + 10) {
        many.apply(Event::Opened {
            id,
            client: "10.0.0.2:1".parse().unwrap(),
            server: "10.0.0.1:2".parse().unwrap(),
            time: Timestamp(u64::from(id)),
        });
    }
    assert_eq!(many.conns.len(), MAX_CONNECTIONS);
    assert_eq!(many.connections_seen, MAX_CONNECTIONS as u64 + 10);
    assert!(many.conns.contains_key(&(MAX_CONNECTIONS as u32 + 10)));
}

/// A busy connection's final record lists every exchange: the state keeps
/// the newest and gives back the room of the rest (draining alone kept
/// it, and watch grew by tens of MB per busy connection ended).
#[test]
fn a_closed_busy_connection_keeps_only_the_room_of_what_it_shows() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    let n = 10 * MAX_EXCHANGES as u64;
    for i in 0..n {
        w.c(1_000 + i * 100, b"ping\n");
        w.s(1_050 + i * 100, b"pong\n");
    }
    w.client_closes(2_000 + n * 100);
    let s = state_of(&w);
    let c = &s.conns[&1];
    assert!(c.done);
    assert_eq!(c.exchanges, n);
    assert_eq!(c.model.exchanges.len(), MAX_EXCHANGES);
    assert!(
        c.model.exchanges.capacity() < 2 * MAX_EXCHANGES,
        "room for {} exchanges kept",
        c.model.exchanges.capacity()
    );
}

/// A connection the analyzer evicts for its budget says so in the list
/// (it was shown as open), and one that timed out says that.
#[test]
fn evicted_and_timed_out_connections_say_so() {
    let mut c = Connection::new(
        7,
        "10.0.0.2:1".parse().unwrap(),
        "10.0.0.1:2".parse().unwrap(),
        Timestamp(1),
    );
    for (state, status) in [
        (ConnState::Evicted, Status::Evicted),
        (ConnState::TimedOut, Status::TimedOut),
        (ConnState::Open, Status::Open),
    ] {
        c.state = state;
        let mut s = State::default();
        s.apply(Event::Closed(Box::new(c.clone())));
        assert_eq!(s.conns[&7].status, status);
        assert!(s.conns[&7].done);
    }
    assert_eq!(Status::Evicted.name(), "evicted");
}
