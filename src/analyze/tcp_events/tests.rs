//! Tests of `analyze::tcp_events`.

use super::*;
use crate::analyze::segment::TcpFlags;
use std::net::SocketAddr;

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:2222";

/// A hand-built segment: `t_ms` capture time, `flags` as letters (S, A, F, R, P).
#[allow(clippy::too_many_arguments)]
fn seg(
    n: u64,
    t_ms: u64,
    side: Side,
    flags: &str,
    seq: u32,
    ack: u32,
    len: u32,
    window: u16,
) -> TcpSegment<'static> {
    let (src, dst): (SocketAddr, SocketAddr) = match side {
        Side::Client => (C.parse().unwrap(), S.parse().unwrap()),
        Side::Server => (S.parse().unwrap(), C.parse().unwrap()),
    };
    TcpSegment {
        number: n,
        time: Timestamp(t_ms * 1_000_000),
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags::from_bits(
            u16::from(flags.contains('S')) << 1
                | u16::from(flags.contains('A')) << 4
                | u16::from(flags.contains('F'))
                | u16::from(flags.contains('R')) << 2
                | u16::from(flags.contains('P')) << 3,
        ),
        payload: &[],
        payload_len: len,
        window,
        window_scale: flags.contains('S').then_some(7),
    }
}

/// Runs segments through one detector; returns (frame, kind) of every event.
fn run(segs: &[(Side, TcpSegment<'static>)]) -> Vec<(u64, TcpEventKind)> {
    let mut d = EventDetector::new();
    let mut out = Vec::new();
    for (side, s) in segs {
        d.observe(*side, s, &mut out);
    }
    out.iter().map(|e| (e.frame, e.kind)).collect()
}

use Side::{Client as Cl, Server as Sv};

/// Handshake: client ISN 1000, server ISN 5000, at 0, 1, 2 ms.
fn handshake() -> Vec<(Side, TcpSegment<'static>)> {
    vec![
        (Cl, seg(1, 0, Cl, "S", 1000, 0, 0, 64240)),
        (Sv, seg(2, 1, Sv, "SA", 5000, 1001, 0, 65160)),
        (Cl, seg(3, 2, Cl, "A", 1001, 5001, 0, 502)),
    ]
}

#[test]
fn a_clean_exchange_has_no_events() {
    let mut s = handshake();
    s.push((Cl, seg(4, 10, Cl, "AP", 1001, 5001, 6, 502)));
    s.push((Sv, seg(5, 11, Sv, "A", 5001, 1007, 0, 509)));
    s.push((Sv, seg(6, 12, Sv, "AP", 5001, 1007, 12, 509)));
    s.push((Cl, seg(7, 13, Cl, "A", 1007, 5013, 0, 502)));
    s.push((Cl, seg(8, 20, Cl, "FA", 1007, 5013, 0, 502)));
    s.push((Sv, seg(9, 21, Sv, "FA", 5013, 1008, 0, 509)));
    s.push((Cl, seg(10, 22, Cl, "A", 1008, 5014, 0, 502)));
    assert_eq!(run(&s), vec![]);
}

#[test]
fn a_timeout_retransmission_reports_the_time_since_the_original() {
    let mut s = handshake();
    s.push((Cl, seg(4, 10, Cl, "AP", 1001, 5001, 14, 502)));
    s.push((Cl, seg(5, 214, Cl, "AP", 1001, 5001, 14, 502)));
    let mut d = EventDetector::new();
    let mut out = Vec::new();
    for (side, x) in &s {
        d.observe(*side, x, &mut out);
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, TcpEventKind::Retransmission);
    assert_eq!(out[0].frame, 5);
    assert_eq!(out[0].seq, 0);
    assert_eq!(out[0].len, 14);
    assert_eq!(out[0].detail, Some(204_000.0));
}

#[test]
fn three_duplicate_acks_then_a_fast_retransmission() {
    let mut s = handshake();
    // Client sends 4 segments of 100 B; the first is lost on the way.
    s.push((Cl, seg(4, 10, Cl, "AP", 1001, 5001, 100, 502)));
    s.push((Cl, seg(5, 10, Cl, "AP", 1101, 5001, 100, 502)));
    s.push((Cl, seg(6, 10, Cl, "AP", 1201, 5001, 100, 502)));
    s.push((Cl, seg(7, 10, Cl, "AP", 1301, 5001, 100, 502)));
    s.push((Sv, seg(8, 11, Sv, "A", 5001, 1001, 0, 509)));
    s.push((Sv, seg(9, 11, Sv, "A", 5001, 1001, 0, 509)));
    s.push((Sv, seg(10, 11, Sv, "A", 5001, 1001, 0, 509)));
    s.push((Sv, seg(11, 11, Sv, "A", 5001, 1001, 0, 509)));
    s.push((Cl, seg(12, 12, Cl, "AP", 1001, 5001, 100, 502)));
    assert_eq!(
        run(&s),
        vec![
            (9, TcpEventKind::DuplicateAck),
            (10, TcpEventKind::DuplicateAck),
            (11, TcpEventKind::DuplicateAck),
            (12, TcpEventKind::FastRetransmission),
        ]
    );
}

#[test]
fn a_segment_the_capture_missed_is_a_lost_segment_and_its_ack_unseen() {
    let mut s = handshake();
    // Bytes 1001..1101 were never captured.
    s.push((Cl, seg(4, 10, Cl, "AP", 1101, 5001, 100, 502)));
    s.push((Sv, seg(5, 11, Sv, "A", 5001, 1201, 0, 509)));
    assert_eq!(
        run(&s),
        vec![
            (4, TcpEventKind::LostSegment),
            (5, TcpEventKind::AckedUnseen)
        ]
    );
}

#[test]
fn a_late_segment_within_the_round_trip_is_out_of_order() {
    let mut s = handshake();
    s.push((Cl, seg(4, 10, Cl, "AP", 1101, 5001, 100, 502)));
    s.push((Cl, seg(5, 10, Cl, "AP", 1001, 5001, 100, 502)));
    assert_eq!(
        run(&s),
        vec![
            (4, TcpEventKind::LostSegment),
            (5, TcpEventKind::OutOfOrder)
        ]
    );
}

#[test]
fn zero_window_then_a_probe_then_its_answer() {
    let mut s = handshake();
    s.push((Sv, seg(4, 10, Sv, "AP", 5001, 1001, 1000, 509)));
    s.push((Cl, seg(5, 11, Cl, "A", 1001, 6001, 0, 0)));
    s.push((Sv, seg(6, 300, Sv, "A", 6001, 1001, 1, 509)));
    s.push((Cl, seg(7, 301, Cl, "A", 1001, 6001, 0, 0)));
    assert_eq!(
        run(&s),
        vec![
            (5, TcpEventKind::ZeroWindow),
            (6, TcpEventKind::ZeroWindowProbe),
            (7, TcpEventKind::ZeroWindow),
        ]
    );
}

#[test]
fn data_to_the_edge_of_the_window_is_window_full() {
    let mut s = handshake();
    // Client window 502 << 7 = 64 256 bytes from ack 5001.
    s.push((Sv, seg(4, 10, Sv, "AP", 5001, 1001, 64_256, 509)));
    assert_eq!(run(&s), vec![(4, TcpEventKind::WindowFull)]);
}

#[test]
fn a_keep_alive_is_not_a_retransmission() {
    let mut s = handshake();
    s.push((Cl, seg(4, 10, Cl, "AP", 1001, 5001, 6, 502)));
    s.push((Sv, seg(5, 11, Sv, "A", 5001, 1007, 0, 509)));
    s.push((Cl, seg(6, 7_000, Cl, "A", 1006, 5001, 0, 502)));
    s.push((Sv, seg(7, 7_001, Sv, "A", 5001, 1007, 0, 509)));
    assert_eq!(run(&s), vec![(6, TcpEventKind::KeepAlive)]);
}

#[test]
fn a_retried_syn_and_a_refused_connection() {
    let s = vec![
        (Cl, seg(1, 0, Cl, "S", 1000, 0, 0, 64240)),
        (Cl, seg(2, 1000, Cl, "S", 1000, 0, 0, 64240)),
        (Sv, seg(3, 1001, Sv, "RA", 0, 1001, 0, 0)),
    ];
    assert_eq!(
        run(&s),
        vec![
            (2, TcpEventKind::SynRetransmission),
            (3, TcpEventKind::ConnectionRefused),
        ]
    );
}

#[test]
fn a_reset_after_the_handshake_names_its_sender() {
    let mut s = handshake();
    s.push((Sv, seg(4, 10, Sv, "RA", 5001, 1001, 0, 0)));
    let mut d = EventDetector::new();
    let mut out = Vec::new();
    for (side, x) in &s {
        d.observe(*side, x, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].kind, out[0].side),
        (TcpEventKind::Rst, Side::Server)
    );
}

#[test]
fn data_already_acknowledged_is_a_spurious_retransmission() {
    let mut s = handshake();
    s.push((Cl, seg(4, 10, Cl, "AP", 1001, 5001, 6, 502)));
    s.push((Sv, seg(5, 11, Sv, "A", 5001, 1007, 0, 509)));
    s.push((Cl, seg(6, 300, Cl, "AP", 1001, 5001, 6, 502)));
    assert_eq!(run(&s), vec![(6, TcpEventKind::SpuriousRetransmission)]);
}

#[test]
fn the_initial_round_trip_is_syn_to_the_handshakes_ack() {
    let mut d = EventDetector::new();
    let mut out = Vec::new();
    for (side, x) in &handshake() {
        d.observe(*side, x, &mut out);
    }
    assert_eq!(d.initial_rtt_us(), Some(2_000.0));
}

#[test]
fn kinds_are_listed_in_declaration_order() {
    for (i, k) in TcpEventKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i, "{k:?}");
        assert_eq!(serde_json::to_value(k).unwrap(), k.name());
    }
}

#[test]
fn sequence_numbers_wrap() {
    assert!(lt(u32::MAX, 0));
    assert!(!lt(0, u32::MAX));
    let s = vec![
        (Cl, seg(1, 0, Cl, "S", u32::MAX - 10, 0, 0, 64240)),
        (Sv, seg(2, 1, Sv, "SA", 5000, u32::MAX - 9, 0, 65160)),
        (Cl, seg(3, 2, Cl, "A", u32::MAX - 9, 5001, 0, 502)),
        (Cl, seg(4, 10, Cl, "AP", u32::MAX - 9, 5001, 100, 502)),
        (Sv, seg(5, 11, Sv, "A", 5001, 90, 0, 509)),
    ];
    assert_eq!(run(&s), vec![]);
}
