//! Tests of the flow tracker: handshakes, teardown, reassembly, sides,
//! draining and the table, on conversations written by hand.

use super::*;
use crate::analyze::FramingChoice;
use crate::analyze::model::{Frames, PitfallKind, RttSource};
use crate::analyze::segment::TcpFlags;
use crate::analyze::testing::{
    self, Script, Seg, analyze, flags, one, push_all, requests, responses,
};
use proptest::prelude::*;

/// Takes every connection that is over, in order.
fn drain(an: &mut Analyzer) -> Vec<Connection> {
    std::iter::from_fn(|| an.next_settled()).collect()
}

/// The lab's conversation: three echoes, closed by the client.
fn echo() -> Script {
    let mut w = testing::echo(false);
    w.c(3_000, b"third\n");
    w.s(3_250, b"Echo: third\n");
    w.client_closes(4_000);
    w
}

#[test]
fn echo_connection_has_handshake_exchanges_latencies_and_teardown() {
    let w = echo();
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.client, w.client);
    assert_eq!(c.server, w.server);
    let h = c.handshake.as_ref().expect("handshake");
    assert_eq!(h.syn, Timestamp(0));
    assert_eq!(h.syn_ack, Some(Timestamp(100_000)));
    assert_eq!(h.ack, Some(Timestamp(110_000)));
    assert_eq!(h.rtt_us, Some(100.0));
    assert_eq!(c.framing, Framing::Line);
    assert_eq!(a.framing, Some(Framing::Line));
    assert_eq!(requests(c), ["hello", "second", "third"]);
    assert_eq!(responses(c), ["Echo: hello", "Echo: second", "Echo: third"]);
    let lat: Vec<_> = c.exchanges.iter().map(|e| e.latency_us).collect();
    assert_eq!(lat, [Some(200.0), Some(300.0), Some(250.0)]);
    let e = &c.exchanges[0];
    assert_eq!((e.request_bytes, e.response_bytes), (5, 11));
    assert_eq!(e.request_time, Timestamp(1_000_000));
    assert_eq!(e.response_first_time, Some(Timestamp(1_200_000)));
    assert_eq!(e.response_last_time, Some(Timestamp(1_200_000)));
    assert!(!e.incomplete);
    assert_eq!(c.bytes_client_to_server, 6 + 7 + 6);
    assert_eq!(c.bytes_server_to_client, 12 + 13 + 12);
    assert!(c.gaps.is_empty());
    assert!(c.recv_pitfalls.is_empty(), "{:?}", c.recv_pitfalls);
    let close = c.close.as_ref().expect("closed");
    assert_eq!(close.initiator, Side::Client);
    assert_eq!(close.kind, CloseKind::Fin);
    let ev: Vec<_> = close
        .events
        .iter()
        .map(|e| (e.from, e.kind, e.time))
        .collect();
    assert_eq!(
        ev,
        [
            (Side::Client, CloseKind::Fin, Timestamp(4_000_000)),
            (Side::Server, CloseKind::Fin, Timestamp(4_100_000))
        ]
    );
    assert_eq!(c.first_seen, Timestamp(0));
    assert_eq!(c.last_seen, Timestamp(4_150_000));
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}

#[test]
fn retransmitted_bytes_count_once_and_make_no_duplicate_message() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    let req = w.c(1_000, b"hello\n");
    let mut again = req.clone();
    again.time = 1_500;
    w.segs.push(again);
    w.s(1_600, b"Echo: hello\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.bytes_client_to_server, 6);
    assert_eq!(requests(c), ["hello"]);
    // The first capture of the bytes times the request.
    assert_eq!(c.exchanges[0].latency_us, Some(600.0));
    assert!(c.close.is_none());
}

#[test]
fn reordered_segments_reassemble_and_time_the_request_when_complete() {
    let mut w = Script::new(7, 9);
    w.handshake(0, 50);
    w.c(1_000, b"hel");
    w.c(1_010, b"lo\n");
    w.segs.swap(3, 4); // "lo\n" captured before "hel"
    w.segs[3].time = 1_000;
    w.segs[4].time = 1_010;
    w.s(1_100, b"Echo: hello\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(requests(c), ["hello"]);
    assert_eq!(c.exchanges[0].request_time, Timestamp(1_010_000));
    assert_eq!(c.exchanges[0].latency_us, Some(90.0));
    assert!(c.gaps.is_empty());
    assert_eq!(c.recv_pitfalls.len(), 1);
    assert_eq!(c.recv_pitfalls[0].kind, PitfallKind::Split);
    assert_eq!(c.recv_pitfalls[0].count, 2);
}

#[test]
fn overlapping_segments_keep_the_first_captured_bytes() {
    let mut w = Script::new(100, 200);
    w.handshake(0, 50);
    let start = w.cseq;
    w.c(1_000, b"abcdef");
    w.c(1_010, b"gh\n");
    // A later segment overlapping both with other contents.
    let mut liar = w.segs[4].clone();
    liar.seq = start + 3;
    liar.payload = b"XYZW".to_vec();
    liar.payload_len = 4;
    liar.time = 1_020;
    w.segs.push(liar);
    // And out of order: a segment ahead arrives first, then one
    // overlapping it.
    let s2 = w.cseq;
    let mut ahead = w.c(2_000, b"ZZZ\n");
    ahead.seq = s2 + 3;
    ahead.payload = b"mno\n".to_vec();
    let n = w.segs.len();
    w.segs[n - 1] = ahead;
    let mut early = w.segs[n - 1].clone();
    early.seq = s2;
    early.payload = b"jklMN".to_vec();
    early.payload_len = 5;
    early.time = 2_010;
    w.segs.push(early);
    w.cseq = s2 + 7;
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(requests(c), ["abcdefgh", "jklmno"]);
    assert_eq!(c.bytes_client_to_server, 9 + 7);
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut w = Script::new(u32::MAX - 3, u32::MAX);
    w.handshake(0, 50);
    w.c(1_000, b"wrap");
    w.c(1_001, b"ping\n");
    w.s(1_100, b"Echo: wrapping\n");
    w.fin(2_000, Side::Server);
    w.fin(2_100, Side::Client);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(requests(c), ["wrapping"]);
    assert_eq!(responses(c), ["Echo: wrapping"]);
    assert_eq!(c.bytes_client_to_server, 9);
    assert_eq!(c.bytes_server_to_client, 15);
    assert!(c.gaps.is_empty());
    assert_eq!(c.close.as_ref().unwrap().initiator, Side::Server);
}

#[test]
fn reset_closes_the_connection() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"hello\n");
    w.rst(1_100, Side::Server);
    // Late packets change nothing but last_seen.
    w.c(1_200, b"more\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    let close = c.close.as_ref().unwrap();
    assert_eq!(
        (close.initiator, close.kind),
        (Side::Server, CloseKind::Rst)
    );
    assert_eq!(close.events.len(), 1);
    assert_eq!(requests(c), ["hello"]);
    assert_eq!(c.exchanges[0].response_first_time, None);
    assert_eq!(c.exchanges[0].latency_us, None);
    assert_eq!(c.bytes_client_to_server, 6);
    assert_eq!(c.last_seen, Timestamp(1_200_000));
}

/// An echo conversation captured from its second request on.
fn mid_connection(client_port: u16, server_port: u16) -> Vec<Seg> {
    let mut w = Script::new(50_000, 90_000);
    w.client.set_port(client_port);
    w.server.set_port(server_port);
    w.handshake(0, 50);
    w.c(1_000, b"one\n");
    w.s(1_100, b"Echo: one\n");
    w.c(2_000, b"two\n");
    w.s(2_100, b"Echo: two\n");
    w.segs.split_off(5)
}

#[test]
fn capture_starting_mid_connection_guesses_the_server_and_says_so() {
    let a = analyze(Options::default(), &mid_connection(40_000, 2222));
    let c = one(&a);
    assert!(c.handshake.is_none());
    assert_eq!(c.server.port(), 2222);
    assert_eq!(requests(c), ["two"]);
    assert_eq!(responses(c), ["Echo: two"]);
    assert_eq!(c.bytes_client_to_server, 4);
    assert!(c.gaps.is_empty());
    assert_eq!(c.notes.len(), 1);
    assert!(c.notes[0].contains("guess"), "{}", c.notes[0]);

    // Not the lab's port: the lower port is taken for the server...
    let segs = mid_connection(9000, 5000);
    let c = &analyze(Options::default(), &segs).connections[0];
    assert_eq!(c.server.port(), 5000);
    // ... unless told otherwise, by port or by address.
    let segs = mid_connection(5000, 9000);
    let by_port = Options {
        port: Some(9000),
        ..Options::default()
    };
    let c = &analyze(by_port, &segs).connections[0];
    assert_eq!(c.server.port(), 9000);
    assert_eq!(requests(c), ["two"]);
    assert!(c.notes[0].contains("--port 9000"), "{}", c.notes[0]);
    let by_addr = Options {
        server: Some("10.0.0.1:9000".parse().unwrap()),
        ..Options::default()
    };
    let c = &analyze(by_addr, &segs).connections[0];
    assert_eq!(c.server.port(), 9000);
    assert!(c.notes[0].contains("--server"), "{}", c.notes[0]);
}

#[test]
fn a_missing_segment_is_a_gap_and_no_message_is_invented() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"one\n");
    w.s(1_100, b"Echo: one\n");
    w.c(2_000, b"tw");
    w.c(2_001, b"o\nthr");
    w.c(2_002, b"ee\n");
    w.s(2_100, b"Echo: two\nEcho: three\n");
    w.fin(3_000, Side::Client);
    w.fin(3_100, Side::Server);
    w.segs.remove(6); // "o\nthr" never captured
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.gaps.len(), 1);
    let g = &c.gaps[0];
    assert_eq!((g.from, g.offset, g.len), (Side::Client, 6, 5));
    assert_eq!(c.bytes_client_to_server, 14);
    // "tw", 5 missing bytes, "ee\n": one damaged message, never "two".
    // The server's ACK beyond the hole declared it a gap before the
    // server's data, so the pairing keeps its order.
    assert_eq!(requests(c), ["one", "tw[5 bytes missing]…", ""]);
    assert_eq!(responses(c), ["Echo: one", "Echo: two", "Echo: three"]);
    assert!(c.exchanges[1].incomplete);
    assert_eq!(c.exchanges[1].request_bytes, 9);
    assert!(!c.exchanges[0].incomplete);
    // The answer to the request lost in the gap has no request.
    assert_eq!(c.exchanges[2].request_bytes, 0);
    assert_eq!(c.exchanges[2].latency_us, None);
    assert_eq!(c.close.as_ref().unwrap().events.len(), 2);
}

#[test]
fn snaplen_cut_payload_counts_on_wire_bytes_and_is_a_gap() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    let mut big = vec![b'x'; 99];
    big.push(b'\n');
    let mut seg = w.c(1_000, &big);
    seg.payload.truncate(20);
    let n = w.segs.len();
    w.segs[n - 1] = seg;
    w.s(1_100, b"ok\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.bytes_client_to_server, 100);
    assert_eq!(c.gaps.len(), 1);
    assert_eq!((c.gaps[0].offset, c.gaps[0].len), (20, 80));
    let e = &c.exchanges[0];
    assert!(e.incomplete);
    assert!(
        e.request_preview.ends_with("[80 bytes missing]"),
        "{}",
        e.request_preview
    );
}

#[test]
fn exceeding_the_buffer_bound_gives_up_the_hole_and_warns() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"lost\n");
    w.c(1_001, b"0123456789\n");
    w.c(1_002, b"abcdefghij\n");
    w.segs.remove(3);
    let opts = Options {
        max_buffered_per_flow: 15,
        ..Options::default()
    };
    let a = analyze(opts, &w.segs);
    let c = one(&a);
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    assert!(
        a.warnings[0].contains("gave up waiting for 5 client bytes"),
        "{}",
        a.warnings[0]
    );
    assert_eq!(c.gaps.len(), 1);
    assert_eq!((c.gaps[0].offset, c.gaps[0].len), (0, 5));
    // The gap is taken to hold no newline: the line after it is damaged.
    assert_eq!(c.framing, Framing::Line);
    assert_eq!(requests(c), ["[5 bytes missing]…", "abcdefghij"]);
    assert_eq!(c.exchanges[0].request_bytes, 15);
    assert!(c.exchanges[0].incomplete);
    assert!(!c.exchanges[1].incomplete);
}

#[test]
fn client_closing_before_the_answer_like_nc() {
    // `printf 'via nc\n' | nc -q 1 host 2222`: the client's FIN comes
    // before the answer; its next ACK carries the sequence number after
    // the FIN, which is not a byte.
    let mut w = Script::new(10, 20);
    w.handshake(0, 14);
    w.c(100, b"via nc\n");
    w.fin(110, Side::Client);
    w.s(1_790, b"Echo: via nc\n");
    w.ack(1_800, Side::Client);
    w.fin(1_850, Side::Server);
    w.ack(1_860, Side::Client);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(
        (c.bytes_client_to_server, c.bytes_server_to_client),
        (7, 13)
    );
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);
    assert_eq!(requests(c), ["via nc"]);
    assert_eq!(c.exchanges[0].latency_us, Some(1_690.0));
    let close = c.close.as_ref().unwrap();
    assert_eq!(close.initiator, Side::Client);
    assert_eq!(close.events.len(), 2);
    assert_eq!(c.last_seen, Timestamp(1_860_000));
}

#[test]
fn keepalives_and_zero_window_probes_are_ignored() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"hi\n");
    w.s(1_100, b"Echo: hi\n");
    // Keepalive: one old byte at seq - 1.
    let mut ka = w.ack(5_000, Side::Client);
    ka.seq = ka.seq.wrapping_sub(1);
    ka.payload = vec![0];
    ka.payload_len = 1;
    let n = w.segs.len();
    w.segs[n - 1] = ka;
    w.ack(5_001, Side::Server);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.bytes_client_to_server, 3);
    assert_eq!(requests(c), ["hi"]);
    assert!(c.gaps.is_empty());
}

#[test]
fn port_reuse_after_close_is_a_new_connection() {
    let mut w = echo();
    let mut second = Script::new(777_777, 888_888);
    second.handshake(10_000, 80);
    second.c(11_000, b"again\n");
    second.s(11_050, b"Echo: again\n");
    w.segs.extend(second.segs);
    let a = analyze(Options::default(), &w.segs);
    assert_eq!(a.connections.len(), 2);
    let c = &a.connections[1];
    assert_eq!(c.id, 2);
    assert_eq!(requests(c), ["again"]);
    assert_eq!(c.handshake.as_ref().unwrap().rtt_us, Some(80.0));
    assert!(c.close.is_none());
    assert_eq!(a.connections[0].exchanges.len(), 3);
}

#[test]
fn settled_connections_can_be_drained_in_order() {
    let first = echo();
    let mut other = Script::new(5, 6);
    other.client.set_port(40001);
    other.handshake(500, 20);
    other.c(600, b"still open\n");
    let mut segs = first.segs.clone();
    // The second connection starts while the first is open.
    segs.splice(3..3, other.segs.clone());
    let mut an = Analyzer::new(Options::default());
    let mut drained = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        an.push(&s.view(i as u64 + 1));
        drained.extend(drain(&mut an));
        if i + 1 < segs.len() {
            // The first is not over before its last FIN is acknowledged.
            assert!(drained.is_empty(), "drained at packet {}", i + 1);
        }
    }
    assert_eq!(drained.len(), 1);
    assert_eq!(drained[0].id, 1);
    assert_eq!(drained[0].exchanges.len(), 3);
    assert_eq!(drained[0].last_seen, Timestamp(4_150_000));
    // A late packet of a drained connection is ignored.
    let mut late = first.segs[first.segs.len() - 2].clone();
    late.time = 9_000;
    an.push(&late.view(99));
    assert!(drain(&mut an).is_empty());
    let rest = an.finish();
    assert_eq!(rest.connections.len(), 1);
    assert_eq!(rest.connections[0].id, 2);
    assert_eq!(rest.connections[0].exchanges.len(), 1);
    assert_eq!(rest.framing, Some(Framing::Line));
}

#[test]
fn the_table_forgets_drained_pairs_so_memory_follows_live_connections() {
    // 20 000 short connections, one a millisecond (20 s of capture),
    // from as many client ports: the table must not keep them all.
    let mut an = Analyzer::new(Options::default());
    let mut number = 0;
    let mut drained = 0;
    let mut most = 0;
    for i in 0..20_000u64 {
        let mut w = Script::new(i as u32, 7);
        w.client.set_port(10_000 + i as u16);
        let t = i * 1_000;
        w.handshake(t, 20);
        w.c(t + 100, b"ping\n");
        w.s(t + 150, b"Echo: ping\n");
        w.fin(t + 200, Side::Client);
        w.fin(t + 210, Side::Server);
        w.ack(t + 220, Side::Client);
        for s in &w.segs {
            number += 1;
            an.push(&s.view(number));
            drained += drain(&mut an).len();
        }
        most = most.max(an.tracked_pairs());
    }
    assert_eq!(drained, 20_000);
    // 5 s of lingering pairs (5 000) plus at most one sweep interval
    // (65 536 packets, 8 192 connections).
    assert!(most <= 5_000 + 8_192 + 1, "table grew to {most} pairs");
    assert!(most >= 5_000, "pairs forgotten before LINGER: {most}");
    // A straggler of a connection drained but still lingering is ignored.
    let mut w = Script::new(19_999, 7);
    w.client.set_port(10_000 + 19_999);
    let mut late = w.ack(20_000_000, Side::Client);
    late.time = 20_000_000;
    an.push(&late.view(number + 1));
    assert!(an.finish().connections.is_empty());
}

#[test]
fn a_reset_connection_is_settled_at_once() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.rst(100, Side::Client);
    let mut an = Analyzer::new(Options::default());
    push_all(&mut an, &w.segs);
    let drained = drain(&mut an);
    assert_eq!(drained.len(), 1);
    assert_eq!(drained[0].close.as_ref().unwrap().kind, CloseKind::Rst);
    assert!(an.finish().connections.is_empty());
}

#[test]
fn a_refused_connection_is_a_syn_and_a_reset() {
    let mut w = Script::new(1, 0);
    w.seg(0, Side::Client, flags(true, false, false, false), b"");
    w.seg(30, Side::Server, flags(false, true, false, true), b"");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    let h = c.handshake.as_ref().unwrap();
    assert_eq!((h.syn_ack, h.ack, h.rtt_us), (None, None, None));
    let close = c.close.as_ref().unwrap();
    assert_eq!(
        (close.initiator, close.kind),
        (Side::Server, CloseKind::Rst)
    );
    assert!(c.exchanges.is_empty());
    assert_eq!(a.framing, None);
}

#[test]
fn a_syn_ack_without_its_syn_gives_sides_but_no_handshake() {
    let mut w = echo();
    w.segs.remove(0);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!((c.client, c.server), (w.client, w.server));
    assert!(c.handshake.is_none());
    assert_eq!(c.notes.len(), 1);
    assert!(
        c.notes[0].contains("SYN was not captured"),
        "{}",
        c.notes[0]
    );
    // The client's stream is still anchored (ISN = SYN-ACK's ack - 1).
    assert_eq!(requests(c), ["hello", "second", "third"]);
    assert_eq!(c.bytes_client_to_server, 19);
}

#[test]
fn retransmitted_syn_keeps_one_connection_and_rtt_from_the_last_syn() {
    let mut w = Script::new(1, 1);
    let syn = w.seg(0, Side::Client, flags(true, false, false, false), b"");
    let mut again = syn.clone();
    again.time = 1_000_000;
    w.segs.push(again);
    w.seg(
        1_000_040,
        Side::Server,
        flags(true, true, false, false),
        b"",
    );
    w.ack(1_000_050, Side::Client);
    let a = analyze(Options::default(), &w.segs);
    let h = one(&a).handshake.clone().unwrap();
    assert_eq!(h.syn, Timestamp(0));
    assert_eq!(h.rtt_us, Some(40.0));
}

proptest! {
    #[test]
    fn any_order_and_duplication_of_data_segments_gives_the_same_exchanges(
        msgs in prop::collection::vec("[a-z ]{0,12}", 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        order in prop::collection::vec(any::<usize>(), 0..40),
        isn in any::<u32>(),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.bytes().chain(*b"\n")).collect();
        let mut w = Script::new(isn, 77);
        w.handshake(0, 50);
        let base = w.cseq;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.extend([0, stream.len()]);
        points.sort_unstable();
        points.dedup();
        let mut data: Vec<Seg> = points
            .windows(2)
            .map(|p| {
                let mut seg = w.c(1_000 + p[0] as u64, &stream[p[0]..p[1]]);
                seg.seq = base.wrapping_add(p[0] as u32);
                seg
            })
            .collect();
        w.segs.truncate(3);
        // Shuffle, and send some segments twice.
        for (k, i) in order.iter().enumerate() {
            let j = i % data.len();
            if k % 3 == 0 {
                let dup = data[j].clone();
                data.push(dup);
            } else {
                let n = data.len();
                data.swap(k % n, j);
            }
        }
        w.segs.extend(data);
        w.cseq = base.wrapping_add(stream.len() as u32);
        for m in &msgs {
            w.s(5_000, format!("Echo: {m}\n").as_bytes());
        }
        let a = analyze(Options::default(), &w.segs);
        let c = one(&a);
        let expect: Vec<String> = msgs.to_vec();
        let got: Vec<String> = c.exchanges.iter().map(|e| e.request_preview.clone()).collect();
        prop_assert_eq!(got, expect);
        prop_assert!(c.gaps.is_empty());
        prop_assert_eq!(c.bytes_client_to_server, stream.len() as u64);
        prop_assert!(c.exchanges.iter().all(|e| e.response_bytes == e.request_bytes + 6));
    }

    #[test]
    fn arbitrary_segments_never_panic(
        segs in prop::collection::vec(
            (0u8..4, any::<u32>(), any::<u32>(), 0u8..32, prop::collection::vec(any::<u8>(), 0..40), 0u32..200),
            0..60,
        ),
        framing in prop::sample::select(vec![FramingChoice::Auto, FramingChoice::Line, FramingChoice::Length, FramingChoice::Raw]),
    ) {
        let addrs: [SocketAddr; 3] = ["10.0.0.1:2222".parse().unwrap(), "10.0.0.2:40000".parse().unwrap(), "[::1]:80".parse().unwrap()];
        let mut an = Analyzer::new(Options { framing, max_buffered_per_flow: 64, max_message: 16, ..Options::default() });
        for (i, (pair, seq, ack, f, payload, extra)) in segs.iter().enumerate() {
            let (src, dst) = match pair { 0 => (addrs[0], addrs[1]), 1 => (addrs[1], addrs[0]), 2 => (addrs[2], addrs[0]), _ => (addrs[0], addrs[2]) };
            let seg = TcpSegment {
                number: i as u64 + 1,
                time: Timestamp(i as u64 * 1000),
                src, dst, seq: *seq % 256, ack: *ack % 256,
                flags: TcpFlags::from_bits(u16::from(f & 1) << 1 | u16::from(f & 2 != 0) << 4 | u16::from(f & 4 != 0) | u16::from(f & 8 != 0) << 2 | u16::from(f & 16 != 0) << 3),
                payload,
                payload_len: payload.len() as u32 + extra % 3,
                window: (*ack % 3) as u16,
                window_scale: None,
            };
            an.push(&seg);
        }
        let a = an.finish();
        for c in &a.connections {
            for e in &c.exchanges {
                prop_assert!(e.request_preview.chars().count() <= 40 + 30);
            }
            let gaps: u64 = c.gaps.iter().map(|g| g.len).sum();
            prop_assert!(gaps <= c.bytes_client_to_server + c.bytes_server_to_client);
            if framing == FramingChoice::Raw {
                // Turns account for every byte counted, once.
                let req: u64 = c.exchanges.iter().map(|e| e.request_bytes).sum();
                let resp: u64 = c.exchanges.iter().map(|e| e.response_bytes).sum();
                prop_assert_eq!(req, c.bytes_client_to_server);
                prop_assert_eq!(resp, c.bytes_server_to_client);
            }
        }
    }
}

#[test]
fn an_idle_connection_times_out_in_capture_time_with_what_was_seen() {
    let mut w = testing::hello();
    w.c(2_000, b"unanswered\n");
    // A SYN that gets no answer, on another pair.
    let mut scan = Script::new(7, 0);
    scan.client.set_port(40001);
    scan.handshake(3_000, 0);
    let syn = scan.segs[0].clone();
    let mut an = Analyzer::new(Options::default());
    for (i, s) in w.segs.iter().chain([&syn]).enumerate() {
        an.push(&s.view(i as u64 + 1));
    }
    let start = Timestamp(0);
    let at = |secs: u64| Timestamp(start.0 + secs * 1_000_000_000);
    an.tick(at(4));
    assert!(drain(&mut an).is_empty(), "nothing is over after 4 s");
    an.tick(at(6));
    // The SYN is given up on after 5 s, but it is the second connection:
    // the first, still open, holds it back, for 5 s of capture time.
    assert!(drain(&mut an).is_empty());
    an.tick(at(12));
    let attempts = drain(&mut an);
    assert_eq!(attempts.len(), 1, "the attempt no longer waits");
    assert_eq!(attempts[0].id, 2);
    assert_eq!(attempts[0].state, ConnState::TimedOut);
    an.tick(at(299));
    assert!(
        drain(&mut an).is_empty(),
        "5 minutes of inactivity not reached"
    );
    an.tick(at(301));
    let over = drain(&mut an);
    assert_eq!(over.len(), 1, "{over:#?}");
    let (echo, attempt) = (&over[0], &attempts[0]);
    assert_eq!(echo.state, ConnState::TimedOut);
    assert!(echo.close.is_none());
    assert_eq!(echo.exchanges.len(), 2);
    assert_eq!(echo.exchanges[0].response_preview, "Echo: hello");
    assert!(echo.exchanges[1].response_last_time.is_none());
    assert!(
        echo.notes
            .iter()
            .any(|n| n.starts_with("no packet for more than 300 s of capture time")),
        "{:?}",
        echo.notes
    );
    assert!(
        attempt
            .handshake
            .as_ref()
            .is_some_and(|h| h.syn_ack.is_none())
    );
    assert!(
        attempt
            .notes
            .iter()
            .any(|n| n.starts_with("no packet for more than 5 s")),
        "{:?}",
        attempt.notes
    );
    let analysis = an.finish();
    assert!(analysis.connections.is_empty());
    assert!(
        analysis.warnings[0].starts_with("2 connection(s) had no packet for longer"),
        "{:?}",
        analysis.warnings
    );
}

#[test]
fn a_busy_connection_does_not_time_out() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    let mut an = Analyzer::new(Options::default());
    let mut n = 0;
    for s in &w.segs {
        n += 1;
        an.push(&s.view(n));
    }
    // One exchange a minute for ten minutes.
    for minute in 1..=10u64 {
        let t = minute * 60_000_000;
        for s in [w.c(t, b"ping\n"), w.s(t + 100, b"Echo: ping\n")] {
            n += 1;
            an.push(&s.view(n));
        }
        an.tick(Timestamp((t + 200) * 1_000));
    }
    assert!(drain(&mut an).is_empty(), "still open");
    let analysis = an.finish();
    assert_eq!(analysis.connections[0].exchanges.len(), 10);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
}

#[test]
fn pure_acks_are_counted_and_the_teardowns_last_ack_is_kept() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    w.c(1_000, b"hello\n");
    w.ack(1_050, Side::Server);
    w.s(1_200, b"Echo: hello\n");
    w.ack(1_250, Side::Client);
    w.fin(4_000, Side::Client);
    w.ack(4_050, Side::Server); // of the first FIN: not the last ACK
    w.fin(4_100, Side::Server);
    w.ack(4_150, Side::Client);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(
        c.pure_acks, 3,
        "handshake and last ACK have their own fields"
    );
    let last = c.last_ack.expect("the teardown's last ACK");
    assert_eq!(last.from, Side::Client);
    assert_eq!(last.time, Timestamp(4_150_000));
    // SYN + 12 bytes + FIN of the server.
    assert_eq!(last.ack, Some(14));
    assert!(c.acks.is_empty(), "kept only when asked");

    let keep = Options {
        keep_acks: true,
        ..Options::default()
    };
    let a = analyze(keep, &w.segs);
    let c = one(&a);
    let acks: Vec<_> = c.acks.iter().map(|e| (e.from, e.ack)).collect();
    assert_eq!(
        acks,
        [
            (Side::Client, Some(1)),
            (Side::Server, Some(7)),
            (Side::Client, Some(13)),
            (Side::Server, Some(8)),
            (Side::Client, Some(14)),
        ]
    );
}

#[test]
fn a_reset_connection_has_no_last_ack() {
    let mut w = Script::new(1, 2);
    w.handshake(0, 100);
    w.c(1_000, b"hi\n");
    w.rst(2_000, Side::Server);
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert!(c.last_ack.is_none());
    assert_eq!(c.pure_acks, 0);
}

#[test]
fn packet_records_say_what_wireshark_shows_and_only_when_asked() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    w.c(1_000, b"hel");
    w.c(1_100, b"lo\n");
    w.s(1_300, b"Echo: hello\n");
    let with = Options {
        keep_packets: true,
        ..Options::default()
    };
    let a = analyze(with, &w.segs);
    let e = &one(&a).exchanges[0];
    type Row = (u64, u64, u16, Option<u32>, Option<u32>, u32);
    let rows = |p: &[PacketRecord]| -> Vec<Row> {
        p.iter()
            .map(|p| (p.frame, p.time.0, p.flags, p.seq, p.ack, p.len))
            .collect()
    };
    // Frames 4 and 5 carry the request (after the three of the
    // handshake), 6 the response; sequence numbers relative, as Wireshark.
    assert_eq!(
        rows(e.request_frames.packets()),
        [
            (4, 1_000_000, 0x010, Some(1), Some(1), 3),
            (5, 1_100_000, 0x010, Some(4), Some(1), 3)
        ]
    );
    assert_eq!(
        rows(e.response_frames.packets()),
        [(6, 1_300_000, 0x010, Some(1), Some(7), 12)]
    );
    assert_eq!(e.request_frames.packets_not_kept(), 0);
    let a = analyze(Options::default(), &w.segs);
    let e = &one(&a).exchanges[0];
    assert_eq!(e.request_frames.iter().collect::<Vec<_>>(), [4, 5]);
    assert!(e.request_frames.packets().is_empty());
}

#[test]
fn a_message_of_many_packets_keeps_the_first_records_and_counts_the_rest() {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, 100);
    for i in 0..100 {
        w.c(1_000 + i, b"x");
    }
    w.c(2_000, b"\n");
    w.s(2_100, b"ok\n");
    let opts = Options {
        keep_packets: true,
        ..Options::default()
    };
    let a = analyze(opts, &w.segs);
    let e = &one(&a).exchanges[0];
    assert_eq!(e.request_frames.packets().len(), Frames::MAX);
    assert_eq!(
        e.request_frames.packets_not_kept(),
        101 - Frames::MAX as u64
    );
}

/// A request at 1 s answered at 1 s + `answer` µs, after a handshake of
/// `rtt` µs, the server's bare ACK `ack` µs after the request (if any).
fn timed(rtt: u64, ack: Option<u64>, answer: u64) -> Connection {
    let mut w = Script::new(1000, 5000);
    w.handshake(0, rtt);
    w.c(1_000_000, b"hello\n");
    if let Some(ack) = ack {
        w.ack(1_000_000 + ack, Side::Server);
    }
    w.s(1_000_000 + answer, b"Echo: hello\n");
    w.c(2_000_000, b"bye\n");
    w.s(2_000_000 + answer, b"Echo: bye\n");
    let a = analyze(Options::default(), &w.segs);
    a.connections.into_iter().next().expect("one connection")
}

#[test]
fn a_slow_network_and_a_slow_server_split_their_latency_differently() {
    // `delay`: 50 ms each way, the server answers at once (its ACK rides
    // on the answer).
    let delay = timed(100_000, None, 100_200);
    // `slow-server`: a tiny round trip, the kernel's bare ACK at once, the
    // answer 300 ms later.
    let slow = timed(100, Some(100), 300_000);
    for e in &delay.exchanges {
        let s = delay.latency_split(e).expect("split");
        assert_eq!((s.network_us, s.server_us), (100_000.0, 200.0), "{e:?}");
        assert_eq!(s.rtt_from, RttSource::Handshake);
    }
    let first = &slow.exchanges[0];
    assert_eq!(first.request_ack_time, Some(Timestamp(1_000_100_000)));
    let s = slow.latency_split(first).expect("split");
    assert_eq!((s.network_us, s.server_us), (100.0, 299_900.0));
    assert_eq!(s.rtt_from, RttSource::Ack);
    // The second request was acknowledged only by the answer: the
    // handshake gives the round trip.
    let s = slow.latency_split(&slow.exchanges[1]).expect("split");
    assert_eq!((s.network_us, s.server_us), (100.0, 299_900.0));
    assert_eq!(s.rtt_from, RttSource::Handshake);
}

#[test]
fn a_delayed_ack_does_not_count_as_network_time() {
    // The server's kernel held its ACK 40 ms (delayed ACK): the handshake's
    // 200 µs round trip is the better measure.
    let c = timed(200, Some(40_000), 300_000);
    let s = c.latency_split(&c.exchanges[0]).expect("split");
    assert_eq!((s.network_us, s.server_us), (200.0, 299_800.0));
    assert_eq!(s.rtt_from, RttSource::Handshake);
}

#[test]
fn without_handshake_or_ack_there_is_no_split() {
    let segs = mid_connection(40000, 2222);
    let a = analyze(Options::default(), &segs);
    for c in &a.connections {
        for e in &c.exchanges {
            assert_eq!(c.latency_split(e), None, "{e:?}");
        }
    }
}

/// Connection `i` of a run of short ones: a handshake at `t` µs, one
/// exchange, and the FINs unless `close` is false.
fn short(i: u32, t: u64, close: bool) -> Vec<Seg> {
    let mut w = Script::new(i, 7);
    w.client.set_port(10_000 + (i % 50_000) as u16);
    w.client
        .set_ip(std::net::Ipv4Addr::from(0x0a01_0000 + i / 50_000).into());
    w.handshake(t, 20);
    w.c(t + 100, b"ping\n");
    w.s(t + 150, b"Echo: ping\n");
    if close {
        w.fin(t + 200, Side::Client);
        w.fin(t + 210, Side::Server);
        w.ack(t + 220, Side::Client);
    }
    w.segs
}

#[test]
fn a_long_lived_connection_holds_back_neither_the_output_nor_the_memory() {
    let mut an = Analyzer::new(Options::default());
    let mut long = Script::new(1, 1);
    long.client.set_port(9_999);
    long.handshake(0, 20);
    let mut number = 0;
    let mut push = |an: &mut Analyzer, s: &Seg| {
        number += 1;
        an.push(&s.view(number));
    };
    for s in &long.segs {
        push(&mut an, s);
    }
    let mut taken = Vec::new();
    let mut most_waiting = 0;
    for i in 0..5_000u32 {
        // One short connection every 100 µs, the long one talks now and then.
        for s in &short(i + 2, 1_000 + u64::from(i) * 100, true) {
            push(&mut an, s);
        }
        if i % 1_000 == 999 {
            let t = 1_000 + u64::from(i) * 100;
            push(&mut an, &long.c(t, b"still here\n"));
            push(&mut an, &long.s(t + 10, b"Echo: still here\n"));
        }
        most_waiting = most_waiting.max(an.out.ready.len());
        taken.extend(drain(&mut an));
    }
    assert!(
        most_waiting <= output::REORDER_WINDOW + 1,
        "{most_waiting} finished connections held back"
    );
    assert!(
        taken.len() >= 5_000 - output::REORDER_WINDOW,
        "{}",
        taken.len()
    );
    assert!(
        taken.windows(2).all(|w| w[0].id < w[1].id),
        "the finished ones still come in the order they opened"
    );
    assert!(taken.iter().all(|c| c.state == ConnState::Closed));
    let rest = an.finish();
    let ids: Vec<u32> = rest.connections.iter().map(|c| c.id).collect();
    assert_eq!(ids[0], 1, "the long-lived connection comes at the end");
    assert_eq!(taken.len() + ids.len(), 5_001, "none lost");
    let long = &rest.connections[0];
    assert_eq!(long.state, ConnState::Open);
    assert_eq!(long.exchanges.len(), 5);
}

/// An analyzer with a budget of 1 MiB, and the budget.
fn budgeted() -> (usize, Analyzer) {
    let memcap = 1 << 20;
    let an = Analyzer::new(Options {
        memcap,
        ..Options::default()
    });
    (memcap, an)
}

#[test]
fn past_the_memory_budget_the_oldest_idle_connections_are_evicted_and_reported() {
    let (memcap, mut an) = budgeted();
    let mut number = 0;
    let mut taken = Vec::new();
    // Connections that exchange once and never close, 1 ms apart: more
    // than even their parked forms (see `parking`) fit in the budget.
    let n = 30_000u32;
    for i in 0..n {
        for s in short(i, u64::from(i) * 1_000, false) {
            number += 1;
            an.push(&s.view(number));
            assert!(
                an.tracked_bytes() <= memcap + (8 << 10),
                "{} bytes tracked at packet {number}",
                an.tracked_bytes()
            );
            taken.extend(drain(&mut an));
        }
    }
    let evicted: Vec<&Connection> = taken
        .iter()
        .filter(|c| c.state == ConnState::Evicted)
        .collect();
    assert!(evicted.len() > n as usize / 2, "{} evicted", evicted.len());
    assert_eq!(evicted.len(), taken.len(), "only evicted ones are over");
    // The oldest go first, each with what was seen and a note saying why.
    assert_eq!(evicted[0].id, 1);
    assert!(evicted.iter().all(|c| c.exchanges.len() == 1
        && c.exchanges[0].response_preview == "Echo: ping"
        && c.notes.iter().any(|n| n.contains("--memcap 1MiB"))));
    let rest = an.finish();
    assert_eq!(
        taken.len() + rest.connections.len(),
        n as usize,
        "none lost"
    );
    assert!(rest.connections.iter().all(|c| c.state == ConnState::Open));
    let warning = rest
        .warnings
        .iter()
        .find(|w| w.contains("evicted"))
        .expect("a warning counts the evicted connections");
    assert!(
        warning.starts_with(&format!("{} connection(s) were evicted", evicted.len())),
        "{warning}"
    );
}

#[test]
fn out_of_order_bytes_held_count_against_the_budget() {
    let (memcap, mut an) = budgeted();
    let mut number = 0;
    let mut taken = Vec::new();
    // 400 connections, each sending 8 KiB beyond a hole of 100 bytes: 3.2
    // MiB held if nothing gave way, and bytes that do not compress when
    // parked (see `parking`).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    for i in 0..400u32 {
        let payload: Vec<u8> = (0..8192).map(|_| noise()).collect();
        let mut w = Script::new(i, 7);
        w.client.set_port(20_000 + i as u16);
        let t = u64::from(i) * 1_000;
        w.handshake(t, 20);
        let mut ahead = w.seg(
            t + 100,
            Side::Client,
            flags(false, true, false, false),
            &payload,
        );
        ahead.seq = ahead.seq.wrapping_add(100);
        for s in w.segs.iter().take(3).chain([&ahead]) {
            number += 1;
            an.push(&s.view(number));
            assert!(an.tracked_bytes() <= memcap + (16 << 10));
            taken.extend(drain(&mut an));
        }
    }
    assert!(!taken.is_empty());
    for c in &taken {
        assert_eq!(c.state, ConnState::Evicted);
        // What was held is reported: the hole as a gap, then the bytes.
        assert_eq!(c.gaps.len(), 1, "{:?}", c.gaps);
        assert_eq!((c.gaps[0].offset, c.gaps[0].len), (0, 100));
        assert_eq!(c.bytes_client_to_server, 8292);
    }
}
