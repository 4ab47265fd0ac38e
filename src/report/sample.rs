//! Hand-made analyses for the report tests: what the analyzer would produce
//! for the lab's echo server, written out field by field so every format is
//! tested on known numbers.

use std::net::SocketAddr;

use crate::analyze::model::*;
use crate::protocol::Framing;

/// Capture start: 2023-11-14T22:13:20Z, in nanoseconds.
pub(crate) const BASE_NS: u64 = 1_700_000_000_000_000_000;

/// The time `ms` milliseconds after [`BASE_NS`].
pub(crate) fn at(ms: f64) -> Timestamp {
    Timestamp(BASE_NS + (ms * 1_000_000.0).round() as u64)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// One exchange; `response` is `(preview, bytes, first ms, last ms)`.
pub(crate) fn exchange(
    request: &str,
    request_ms: f64,
    response: Option<(&str, u64, f64, f64)>,
) -> Exchange {
    Exchange {
        request_bytes: request.len() as u64,
        response_bytes: response.map_or(0, |r| r.1),
        request_preview: request.to_owned(),
        response_preview: response.map_or(String::new(), |r| r.0.to_owned()),
        request_time: at(request_ms),
        response_first_time: response.map(|r| at(r.2)),
        response_last_time: response.map(|r| at(r.3)),
        latency_us: response.map(|r| ((r.3 - request_ms) * 1_000.0 * 1_000.0).round() / 1_000.0),
        first_byte_latency_us: response
            .map(|r| ((r.2 - request_ms) * 1_000.0 * 1_000.0).round() / 1_000.0),
        incomplete: false,
        request_frames: Frames::default(),
        response_frames: Frames::default(),
        request_ack_time: None,
        request_end_seq: None,
        operation: None,
        request_summary: None,
        response_summary: None,
        error: false,
    }
}

/// The lab's echo conversation: handshake, three exchanges (the last two
/// pipelined in one segment), orderly close by the client.
pub(crate) fn echo_connection() -> Connection {
    Connection {
        notes: Vec::new(),
        events: Vec::new(),
        events_dropped: 0,
        initial_rtt_us: Some(60.0),
        pure_acks: 0,
        acks: Vec::new(),
        last_ack: None,
        id: 1,
        client: addr("10.0.0.2:51234"),
        server: addr("10.0.0.3:2222"),
        first_seen: at(0.0),
        last_seen: at(3.05),
        handshake: Some(Handshake {
            syn: at(0.0),
            syn_ack: Some(at(0.045)),
            ack: Some(at(0.06)),
            rtt_us: Some(45.0),
        }),
        bytes_client_to_server: 16,
        bytes_server_to_client: 34,
        gaps: vec![],
        framing: Framing::Line,
        protocol: None,
        framing_reason: Some("line: the first messages are text lines".into()),
        exchanges: vec![
            exchange("hello", 1.0, Some(("Echo: hello", 11, 1.14, 1.15))),
            exchange("world", 2.0, Some(("Echo: world", 11, 2.2, 2.21))),
            exchange("bye", 2.0, Some(("Echo: bye", 9, 2.3, 2.305))),
        ],
        recv_pitfalls: vec![RecvPitfall {
            from: Side::Client,
            kind: PitfallKind::Merged,
            message: 1,
            count: 2,
        }],
        state: ConnState::Closed,
        close: Some(Close {
            initiator: Side::Client,
            kind: CloseKind::Fin,
            events: vec![
                CloseEvent {
                    from: Side::Client,
                    kind: CloseKind::Fin,
                    time: at(3.0),
                },
                CloseEvent {
                    from: Side::Server,
                    kind: CloseKind::Fin,
                    time: at(3.05),
                },
            ],
        }),
    }
}

/// A connection whose start was not captured, with a hostile preview, a gap,
/// and a reset from the server.
pub(crate) fn midstream_reset_connection() -> Connection {
    Connection {
        notes: Vec::new(),
        events: vec![
            TcpEvent {
                time: at(11.0),
                side: Side::Client,
                kind: TcpEventKind::DuplicateAck,
                frame: 12,
                seq: 20,
                len: 0,
                detail: Some(1.0),
            },
            TcpEvent {
                time: at(12.5),
                side: Side::Server,
                kind: TcpEventKind::Retransmission,
                frame: 14,
                seq: 1200,
                len: 14,
                detail: Some(204_000.0),
            },
            TcpEvent {
                time: at(15.0),
                side: Side::Server,
                kind: TcpEventKind::Rst,
                frame: 20,
                seq: 1300,
                len: 0,
                detail: None,
            },
        ],
        events_dropped: 0,
        initial_rtt_us: None,
        pure_acks: 0,
        acks: Vec::new(),
        last_ack: None,
        id: 2,
        client: addr("10.0.0.4:40000"),
        server: addr("10.0.0.3:2222"),
        first_seen: at(10.0),
        last_seen: at(15.0),
        handshake: None,
        bytes_client_to_server: 20,
        bytes_server_to_client: 1224,
        gaps: vec![Gap {
            from: Side::Server,
            offset: 13,
            len: 1200,
        }],
        framing: Framing::Line,
        protocol: None,
        framing_reason: Some("line: the first messages are text lines".into()),
        exchanges: vec![
            exchange("status", 10.0, Some(("Echo: status", 12, 10.35, 10.4))),
            exchange(
                "x;#<b>\"&%%y",
                12.0,
                Some(("Echo: x;#<b>\"&%%y", 17, 12.1, 12.18)),
            ),
        ],
        recv_pitfalls: vec![RecvPitfall {
            from: Side::Server,
            kind: PitfallKind::Split,
            message: 1,
            count: 3,
        }],
        state: ConnState::Closed,
        close: Some(Close {
            initiator: Side::Server,
            kind: CloseKind::Rst,
            events: vec![CloseEvent {
                from: Side::Server,
                kind: CloseKind::Rst,
                time: at(15.0),
            }],
        }),
    }
}

/// An IPv6 connection with one long request that got no answer, still open
/// at the end of the capture.
pub(crate) fn ipv6_open_connection() -> Connection {
    let long = "A".repeat(200);
    Connection {
        notes: Vec::new(),
        events: Vec::new(),
        events_dropped: 0,
        initial_rtt_us: Some(40.0),
        pure_acks: 0,
        acks: Vec::new(),
        last_ack: None,
        id: 3,
        client: addr("[2001:db8:85a3::8a2e:370:7334]:50000"),
        server: addr("[2001:db8::1]:2222"),
        first_seen: at(20.0),
        last_seen: at(21.0),
        handshake: Some(Handshake {
            syn: at(20.0),
            syn_ack: Some(at(20.03)),
            ack: Some(at(20.04)),
            rtt_us: Some(30.0),
        }),
        bytes_client_to_server: 201,
        bytes_server_to_client: 0,
        gaps: vec![],
        framing: Framing::Raw,
        protocol: None,
        framing_reason: None,
        exchanges: vec![exchange(&long, 21.0, None)],
        recv_pitfalls: vec![],
        state: ConnState::Open,
        close: None,
    }
}

/// The three connections above, with one warning.
pub(crate) fn analysis() -> Analysis {
    Analysis {
        packets: 42,
        framing: Some(Framing::Line),
        connections: vec![
            echo_connection(),
            midstream_reset_connection(),
            ipv6_open_connection(),
        ],
        warnings: vec!["packet 17: TCP data offset 3 is below the minimum of 5; skipped".into()],
        capture: CaptureSummary {
            format: "pcap".into(),
            tcp_segments: 38,
            skipped: SkipCounts {
                not_tcp: 3,
                malformed: 1,
                ..SkipCounts::default()
            },
            truncated: false,
            first_packet_time: Some(at(0.0)),
        },
    }
}

/// One connection with `n` exchanges, for caps.
pub(crate) fn many_exchanges(n: usize) -> Analysis {
    let mut c = echo_connection();
    c.recv_pitfalls.clear();
    c.exchanges = (0..n)
        .map(|i| {
            let t = 1.0 + i as f64;
            exchange(
                &format!("msg {i}"),
                t,
                Some((&format!("Echo: msg {i}"), 10, t + 0.1, t + 0.1)),
            )
        })
        .collect();
    let end = 2.0 + n as f64;
    c.close.as_mut().expect("sample closes").events[0].time = at(end);
    c.close.as_mut().expect("sample closes").events[1].time = at(end + 0.05);
    Analysis {
        packets: 10 + 4 * n as u64,
        framing: Some(Framing::Line),
        connections: vec![c],
        warnings: vec![],
        capture: CaptureSummary::default(),
    }
}
