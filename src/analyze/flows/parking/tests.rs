//! Parking changes nothing in the analysis: connections parked after
//! every packet, or under a budget that presses, come out byte for byte
//! as without parking; they time out and leave at the end as live ones
//! do; busy ones and those no form can hold stay live.

use super::super::{Analyzer, Options, key};
use crate::analyze::FramingChoice;
use crate::analyze::model::{Analysis, ConnState, Side};
use crate::analyze::testing::{Script, Seg, push_all};

/// Every connection of `analysis` as its JSON, in order, and the warnings.
fn json(analysis: &Analysis) -> (Vec<String>, Vec<String>) {
    let connections = analysis
        .connections
        .iter()
        .map(|c| serde_json::to_string(c).expect("json"))
        .collect();
    (connections, analysis.warnings.clone())
}

/// Conversations that reach most of the analyzer's state: pipelined
/// lines, a length-framed message, a hole filled late, a hole never
/// filled, a message past `max_message`, IPv6, a capture begun mid-way,
/// a reset, an orderly close, an HTTP exchange; interleaved in time.
fn varied() -> Vec<Seg> {
    let mut all = Vec::new();
    let script = |i: u16| {
        let mut w = Script::new(1_000 * u32::from(i), 4_000_000_000 - u32::from(i));
        w.client.set_port(30_000 + i);
        w
    };
    let mut w = script(1);
    w.handshake(0, 20);
    w.c(100, b"one\ntwo\n");
    w.s(150, b"Echo: one\n");
    w.s(160, b"Echo: two\n");
    w.ack(170, Side::Client);
    w.client_closes(400);
    all.append(&mut w.segs);

    let mut w = script(2);
    w.handshake(10, 30);
    let mut framed = 5u32.to_be_bytes().to_vec();
    framed.extend_from_slice(b"hello");
    w.c(110, &framed);
    w.s(180, &framed);
    all.append(&mut w.segs);

    // A hole filled by a retransmission later.
    let mut w = script(3);
    w.handshake(20, 25);
    let late = w.c(120, b"first part ");
    w.segs.pop();
    w.c(130, b"and the rest\n");
    all.append(&mut w.segs);
    let mut filled = late.clone();
    filled.time = 500;
    all.push(filled);

    // A hole never filled.
    let mut w = script(4);
    w.handshake(30, 25);
    w.c(140, b"lost ");
    w.segs.pop();
    w.c(150, b"found\n");
    w.s(210, b"Echo: ?\n");
    all.append(&mut w.segs);

    // A message longer than max_message (streamed).
    let mut w = script(5);
    w.handshake(40, 25);
    w.c(160, &[b'x'; 300]);
    w.c(170, b"\n");
    w.s(220, b"ok\n");
    all.append(&mut w.segs);

    // IPv6.
    let mut w = script(6);
    w.client = "[2001:db8::2]:40000".parse().expect("addr");
    w.server = "[2001:db8::1]:2222".parse().expect("addr");
    w.handshake(50, 15);
    w.c(180, b"six\n");
    w.s(190, b"Echo: six\n");
    all.append(&mut w.segs);

    // Begun mid-way, then reset.
    let mut w = script(7);
    w.c(60, b"middle\n");
    w.s(70, b"Echo: middle\n");
    w.rst(600, Side::Client);
    all.append(&mut w.segs);

    // HTTP (recognised by auto; its codec has no parked form).
    let mut w = script(8);
    w.server.set_port(80);
    w.handshake(80, 20);
    w.c(200, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    w.s(260, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    all.append(&mut w.segs);

    all.sort_by_key(|s| s.time);
    all
}

fn run(opts: &Options, segs: &[Seg], park: bool) -> (Vec<String>, Vec<String>) {
    let mut an = Analyzer::new(opts.clone());
    if park {
        an = an.parking_always();
    }
    push_all(&mut an, segs);
    // The connections still open are parked (but with an application
    // protocol's codec, which has no parked form).
    if park && opts.framing != FramingChoice::Http {
        assert!(an.parked() >= 3, "{} parked", an.parked());
    }
    json(&an.finish())
}

#[test]
fn connections_parked_after_every_packet_come_out_byte_for_byte_the_same() {
    let segs = varied();
    for framing in [
        FramingChoice::Auto,
        FramingChoice::Line,
        FramingChoice::Length,
        FramingChoice::Raw,
        FramingChoice::Http,
    ] {
        for keep_packets in [false, true] {
            let opts = Options {
                framing,
                keep_packets,
                keep_acks: keep_packets,
                max_message: 64,
                ..Options::default()
            };
            let (parked, live) = (run(&opts, &segs, true), run(&opts, &segs, false));
            assert_eq!(parked.0.len(), 8, "{framing:?}");
            assert_eq!(parked, live, "{framing:?}, packets kept: {keep_packets}");
        }
    }
}

/// `n` connections that exchange once and stay quiet, one every 100 µs,
/// then each speaks again (in the opposite order) 10 s later.
fn quiet_then_again(n: u32) -> (Vec<Seg>, Vec<Seg>) {
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = u64::from(i) * 100;
        let mut w = Script::new(i.wrapping_mul(7919), 7);
        w.client.set_port(10_000 + i as u16);
        w.handshake(t, 20);
        w.c(t + 100, format!("hello {i}\n").as_bytes());
        w.s(t + 150, format!("Echo: hello {i}\n").as_bytes());
        first.append(&mut w.segs);
        let t = 10_000_000 + u64::from(n - i) * 100;
        w.c(t, b"again\n");
        w.s(t + 40, b"Echo: again\n");
        w.ack(t + 60, Side::Client);
        again.append(&mut w.segs);
    }
    again.sort_by_key(|s| s.time);
    (first, again)
}

#[test]
fn under_a_budget_idle_connections_are_parked_not_evicted_and_resume_the_same() {
    let n = 3_000;
    let (first, again) = quiet_then_again(n);
    let all: Vec<Seg> = first.iter().chain(&again).cloned().collect();
    let free = {
        let mut an = Analyzer::new(Options::default());
        push_all(&mut an, &all);
        json(&an.finish())
    };
    // About a fifth of what they take live (7.5 MB).
    let memcap = 3 << 19;
    let mut an = Analyzer::new(Options {
        memcap,
        ..Options::default()
    });
    push_all(&mut an, &first);
    assert_eq!(an.evicted, 0, "none evicted");
    assert!(
        an.parked() > n as usize / 2,
        "{} of {n} parked",
        an.parked()
    );
    assert!(an.tracked_bytes() <= memcap);
    for (number, s) in again.iter().enumerate() {
        an.push(&s.view(first.len() as u64 + number as u64 + 1));
    }
    assert_eq!(an.evicted, 0, "none evicted when they speak again");
    assert_eq!(json(&an.finish()), free);
}

#[test]
fn parked_connections_time_out_and_come_out_at_the_end_as_live_ones_do() {
    // Attempts (a SYN only) and connections that exchanged once.
    let mut segs = Vec::new();
    for i in 0..400u16 {
        let mut w = Script::new(u32::from(i) * 3, 9);
        w.client.set_port(20_000 + i);
        let t = u64::from(i) * 1_000;
        if i % 2 == 0 {
            w.seg(
                t,
                Side::Client,
                crate::analyze::testing::flags(true, false, false, false),
                b"",
            );
        } else {
            w.handshake(t, 20);
            w.c(t + 100, b"ping\n");
            w.s(t + 150, b"pong\n");
        }
        segs.append(&mut w.segs);
    }
    let (first, rest) = segs.split_at(segs.len() / 2);
    let outcome = |park: bool| {
        let mut an = Analyzer::new(Options::default());
        if park {
            an = an.parking_always();
        }
        push_all(&mut an, first);
        if park {
            // Every connection is parked: the timeouts come from parking.
            assert!(an.parked() > 100, "{} parked", an.parked());
            assert!(an.table.values().all(|s| s.conn.is_none()));
        }
        // Past the SYN timeout (5 s) for the first half's attempts.
        an.tick(crate::analyze::model::Timestamp(20_000_000_000));
        let mut taken = Vec::new();
        while let Some(c) = an.next_settled() {
            taken.push(c);
        }
        let before = an.timed_out;
        for (number, s) in rest.iter().enumerate() {
            let mut s = s.clone();
            s.time += 20_000_000;
            an.push(&s.view(first.len() as u64 + number as u64 + 1));
        }
        while let Some(c) = an.next_remaining() {
            taken.push(c);
        }
        let warnings = an.finish().warnings;
        let json: Vec<String> = taken
            .iter()
            .map(|c| serde_json::to_string(c).expect("json"))
            .collect();
        (before, json, warnings)
    };
    let (parked, live) = (outcome(true), outcome(false));
    assert_eq!(parked, live);
    assert!(parked.0 >= 100, "{} timed out at the tick", parked.0);
    assert!(
        parked
            .1
            .iter()
            .filter(|c| c.contains("\"timed_out\""))
            .count()
            >= 100,
        "attempts reported as timed out"
    );
}

#[test]
fn a_busy_connection_is_not_parked_to_come_back_at_its_next_packet() {
    // One connection speaking every 50 µs while idle ones fill the budget.
    let mut busy = Script::new(5, 6);
    busy.client.set_port(9_999);
    busy.handshake(0, 20);
    let (idle, _) = quiet_then_again(3_000);
    let mut segs = idle;
    for k in 0..600u64 {
        let t = 1_000 + k * 1_000;
        if k % 2 == 0 {
            busy.c(t, b"tick\n");
        } else {
            busy.s(t, b"Echo: tick\n");
        }
    }
    segs.append(&mut busy.segs);
    segs.sort_by_key(|s| s.time);
    let mut an = Analyzer::new(Options {
        memcap: 2 << 20,
        ..Options::default()
    });
    push_all(&mut an, &segs);
    assert!(an.parked() > 1_000, "{} parked", an.parked());
    assert!(
        an.table.contains_key(&key(busy.client, busy.server)),
        "the busy connection stays live"
    );
    let analysis = an.finish();
    let c = analysis
        .connections
        .iter()
        .find(|c| c.client == busy.client)
        .expect("the busy connection");
    assert_eq!(c.exchanges.len(), 300);
    assert_eq!(c.state, ConnState::Open);
}
