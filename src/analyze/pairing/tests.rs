//! Tests of pairing: framings, detection, gaps, pitfalls, big messages.

use super::*;
use crate::analyze::Options;
use crate::analyze::model::Timestamp;
use crate::analyze::testing::{Script, analyze, line_options, one, requests, responses};

fn conn() -> Connection {
    Connection::new(
        1,
        "10.0.0.2:40000".parse().unwrap(),
        "10.0.0.1:2222".parse().unwrap(),
        Timestamp(0),
    )
}

/// Feeds chunks to a pairer: (side, bytes or missing count), packet
/// numbers and times (µs) counting up from 1.
fn run(
    choice: FramingChoice,
    max_message: usize,
    chunks: &[(Side, Result<&[u8], u64>)],
) -> Connection {
    let mut c = conn();
    let limits = PairLimits {
        max_message,
        preview_len: 20,
        packets: true,
    };
    let mut p = Pairer::new(choice, limits, &mut c);
    let mut offset = [0u64; 2];
    for (i, (side, data)) in chunks.iter().enumerate() {
        let data = match data {
            Ok(b) => ChunkData::Bytes(b),
            Err(n) => ChunkData::Missing(*n),
        };
        let chunk = Chunk {
            offset: offset[side.index()],
            pkt: PacketRecord::at(i as u64 + 1, Timestamp((i as u64 + 1) * 1000)),
            data,
        };
        offset[side.index()] += chunk.data.len();
        p.push(*side, &chunk, &mut c);
        assert!(p.buffered() <= max_message + 64 + DETECT_WINDOW);
    }
    p.finish(&mut c);
    c
}

fn reqs(c: &Connection) -> Vec<(String, u64, bool)> {
    c.exchanges
        .iter()
        .map(|e| (e.request_preview.clone(), e.request_bytes, e.incomplete))
        .collect()
}

fn len_msg(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Framing::Length.encode(payload, &mut v).unwrap();
    v
}

use Side::{Client as C, Server as S};

fn whole<'a>(client: &'a [u8], server: &'a [u8]) -> [Sample<'a>; 2] {
    [client, server].map(|b| Sample {
        text: b,
        clean: b,
        whole: true,
    })
}

#[test]
fn detection_of_line_length_and_turns() {
    let none: &[u8] = b"";
    assert_eq!(detect(whole(b"hi\n", b"Echo: hi\n"), 100), Framing::Line);
    assert_eq!(detect(whole(b"h\xc3\xa9\r\n", none), 100), Framing::Line);
    // Text without its newline, or with control bytes, is not lines.
    assert_eq!(detect(whole(b"hi", none), 100), Framing::Raw);
    assert_eq!(detect(whole(b"\x1b[0m\n", none), 100), Framing::Raw);
    let m = [len_msg(b"ab"), len_msg(b"")].concat();
    assert_eq!(detect(whole(&m, none), 100), Framing::Length);
    // A claimed length beyond the limit, or not matching the burst, is not.
    assert_eq!(detect(whole(&m[..5], none), 100), Framing::Raw);
    let huge = [0x7f, 0, 0, 0, 1];
    assert_eq!(detect(whole(&huge, none), 100), Framing::Raw);
    // Both sides must agree.
    assert_eq!(detect(whole(b"hi\n", &m), 100), Framing::Raw);
    assert_eq!(detect(whole(none, none), 100), Framing::Raw);
}

#[test]
fn detection_of_a_burst_cut_by_the_window() {
    let cut = |b: &'static [u8]| Sample {
        text: b,
        clean: b,
        whole: false,
    };
    let none = cut(b"");
    // Lines so far, the last one not finished yet (even mid-character).
    assert_eq!(detect([cut(b"one\ntwo \xc3"), none], 100), Framing::Line);
    assert_eq!(detect([cut(b"no newline yet"), none], 100), Framing::Raw);
    assert_eq!(
        detect([cut(b"\0\0\0\x02ab\0\0\0\x09abc"), none], 100),
        Framing::Length
    );
    assert_eq!(detect([cut(b"\0\0\0\x02"), none], 100), Framing::Raw);
}

#[test]
fn a_line_longer_than_max_message_is_streamed_and_counted() {
    let c = run(
        FramingChoice::Line,
        8,
        &[
            (C, Ok(b"0123456789")),
            (C, Ok(b"abcdef\nok\n")),
            (S, Ok(b"yes\n")),
        ],
    );
    assert_eq!(
        reqs(&c),
        [
            ("0123456789abcdef".into(), 16, false),
            ("ok".into(), 2, false)
        ]
    );
    assert_eq!(c.exchanges[0].response_preview, "yes");
    assert_eq!(c.exchanges[0].request_time, Timestamp(2000));
}

#[test]
fn a_line_in_many_segments_is_one_split_message() {
    let line: Vec<u8> = [b'z'; 999].iter().chain(b"\n").copied().collect();
    let chunks: Vec<(Side, Result<&[u8], u64>)> = line.chunks(10).map(|c| (C, Ok(c))).collect();
    let c = run(FramingChoice::Line, 2000, &chunks);
    assert_eq!(c.exchanges.len(), 1);
    assert_eq!(c.exchanges[0].request_bytes, 999);
    assert_eq!(c.exchanges[0].request_time, Timestamp(100_000));
    let p = &c.recv_pitfalls[..];
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].kind, p[0].count), (PitfallKind::Split, 100));
}

#[test]
fn a_length_message_longer_than_max_message_is_streamed_and_counted() {
    let big = len_msg(&[b'x'; 30]);
    let next = len_msg(b"ok");
    let c = run(
        FramingChoice::Length,
        8,
        &[
            (C, Ok(&big[..10])),
            (C, Ok(&[&big[10..], &next[..]].concat())),
        ],
    );
    assert_eq!(
        reqs(&c),
        [
            ("xxxxxxxxxxxxxxxxxxxx…".into(), 30, false),
            ("ok".into(), 2, false)
        ]
    );
}

#[test]
fn a_gap_inside_a_length_message_keeps_the_boundaries() {
    let m = len_msg(b"0123456789");
    let next = len_msg(b"ok");
    let c = run(
        FramingChoice::Length,
        100,
        &[
            (C, Ok(&m[..6])),
            (C, Err(4)),
            (C, Ok(&[&m[10..], &next[..]].concat())),
        ],
    );
    assert_eq!(
        reqs(&c),
        [
            ("01[4 bytes missing]…".into(), 10, true),
            ("ok".into(), 2, false)
        ]
    );
    assert!(c.notes.is_empty());
}

#[test]
fn a_gap_hiding_a_length_prefix_loses_the_burst_but_not_the_next() {
    let a = len_msg(b"first");
    let b = len_msg(b"second");
    let c = len_msg(b"third");
    let conn = run(
        FramingChoice::Length,
        100,
        &[
            (C, Ok(&a)),
            (C, Err(3)),
            (C, Ok(&b[3..])),
            (S, Ok(&len_msg(b"r1"))),
            (C, Ok(&c)),
            (S, Ok(&len_msg(b"r2"))),
        ],
    );
    assert_eq!(
        reqs(&conn),
        [
            ("first".into(), 5, false),
            ("[3 bytes missing]…".into(), 10, true),
            ("third".into(), 5, false)
        ]
    );
    assert_eq!(conn.exchanges[0].response_preview, "r1");
    assert_eq!(conn.exchanges[1].response_preview, "r2");
    assert_eq!(conn.exchanges[2].response_bytes, 0);
    assert_eq!(conn.notes.len(), 1);
    assert!(conn.notes[0].contains("client"), "{}", conn.notes[0]);
}

#[test]
fn a_message_cut_by_the_end_of_the_stream_is_incomplete() {
    let c = run(FramingChoice::Line, 100, &[(C, Ok(b"done\nhalf"))]);
    assert_eq!(
        reqs(&c),
        [("done".into(), 4, false), ("half".into(), 4, true)]
    );
    let c = run(
        FramingChoice::Length,
        100,
        &[(C, Ok(&len_msg(b"abcdef")[..7]))],
    );
    assert_eq!(reqs(&c), [("abc".into(), 3, true)]);
}

#[test]
fn auto_waits_for_both_first_bursts() {
    // The client's first burst alone looks like lines, but the server
    // answers in binary: turn-taking.
    let c = run(
        FramingChoice::Auto,
        100,
        &[
            (C, Ok(b"hi\n")),
            (S, Ok(b"\x00\x01")),
            (C, Ok(b"again\n")),
            (S, Ok(b"\x02")),
        ],
    );
    assert_eq!(c.framing, Framing::Raw);
    assert_eq!(
        reqs(&c),
        [("hi\\n".into(), 3, false), ("again\\n".into(), 6, false)]
    );
    assert_eq!(c.exchanges[1].response_preview, "\\x02");
}

#[test]
fn auto_decides_on_a_long_first_burst_once_the_window_is_full() {
    let line = [b'y'; 999]
        .iter()
        .chain(b"\n")
        .copied()
        .collect::<Vec<u8>>();
    let chunks: Vec<(Side, Result<&[u8], u64>)> = (0..100).map(|_| (C, Ok(&line[..]))).collect();
    let c = run(FramingChoice::Auto, 2000, &chunks);
    assert_eq!(c.framing, Framing::Line);
    assert_eq!(c.exchanges.len(), 100);
    assert!(
        c.exchanges
            .iter()
            .all(|e| e.request_bytes == 999 && !e.incomplete)
    );
}

#[test]
fn auto_decides_at_the_end_of_a_short_connection() {
    let c = run(FramingChoice::Auto, 100, &[(C, Ok(b"only\n"))]);
    assert_eq!(c.framing, Framing::Line);
    assert_eq!(reqs(&c), [("only".into(), 4, false)]);
}

// Pairing through the whole analyzer, on conversations written by hand.

#[test]
fn pipelined_requests_pair_in_order_and_merged_segment_is_a_pitfall() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"a\nb\nc\n");
    w.s(1_100, b"Echo: a\n");
    w.s(1_200, b"Echo: b\n");
    w.s(1_300, b"Echo: c\n");
    let a = analyze(line_options(), &w.segs);
    let c = one(&a);
    assert_eq!(requests(c), ["a", "b", "c"]);
    assert_eq!(responses(c), ["Echo: a", "Echo: b", "Echo: c"]);
    let lat: Vec<_> = c.exchanges.iter().map(|e| e.latency_us).collect();
    assert_eq!(lat, [Some(100.0), Some(200.0), Some(300.0)]);
    assert_eq!(c.recv_pitfalls.len(), 1);
    let p = &c.recv_pitfalls[0];
    assert_eq!(
        (p.from, p.kind, p.message, p.count),
        (Side::Client, PitfallKind::Merged, 0, 3)
    );
}

#[test]
fn merged_and_split_pitfalls_on_the_server_side() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"a\n");
    w.c(1_001, b"b\n");
    // Responses: first one split, then one segment ending "a" and carrying all of "b".
    w.s(1_100, b"Echo");
    w.s(1_101, b": a\nEcho: b\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(responses(c), ["Echo: a", "Echo: b"]);
    let p: Vec<_> = c
        .recv_pitfalls
        .iter()
        .map(|p| (p.from, p.kind, p.message, p.count))
        .collect();
    assert_eq!(
        p,
        [
            (Side::Server, PitfallKind::Split, 0, 2),
            (Side::Server, PitfallKind::Merged, 0, 2)
        ]
    );
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Framing::Length.encode(msg, &mut out).unwrap();
    out
}

#[test]
fn length_framing_is_decoded_and_auto_detected() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    let req = framed(b"bin\x00ary");
    w.c(1_000, &req[..3]);
    w.c(1_001, &req[3..]);
    w.s(1_100, &framed(b"Echo: bin\x00ary"));
    w.c(2_000, &framed(b""));
    w.s(2_050, &framed(b"Echo: "));
    for choice in [FramingChoice::Length, FramingChoice::Auto] {
        let a = analyze(
            Options {
                framing: choice,
                ..Options::default()
            },
            &w.segs,
        );
        let c = one(&a);
        assert_eq!(c.framing, Framing::Length);
        assert_eq!(requests(c), ["bin\\x00ary", ""]);
        assert_eq!(responses(c), ["Echo: bin\\x00ary", "Echo: "]);
        assert_eq!(c.exchanges[0].request_bytes, 7);
        assert_eq!(c.exchanges[0].latency_us, Some(99.0));
        assert_eq!(c.recv_pitfalls.len(), 1, "{:?}", c.recv_pitfalls);
        assert_eq!(c.recv_pitfalls[0].kind, PitfallKind::Split);
    }
}

#[test]
fn auto_falls_back_to_turn_taking_for_unframed_binary() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.c(1_000, b"\x01\x02");
    w.c(1_010, b"\x03");
    w.s(1_100, b"\xff");
    w.s(1_150, b"\xfe\xfd");
    w.c(2_000, b"\x04");
    w.s(2_500, b"\xfc");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.framing, Framing::Raw);
    assert_eq!(requests(c), ["\\x01\\x02\\x03", "\\x04"]);
    assert_eq!(responses(c), ["\\xff\\xfe\\xfd", "\\xfc"]);
    let e = &c.exchanges[0];
    assert_eq!(e.request_time, Timestamp(1_010_000));
    assert_eq!(e.response_first_time, Some(Timestamp(1_100_000)));
    assert_eq!(e.response_last_time, Some(Timestamp(1_150_000)));
    assert_eq!(e.latency_us, Some(140.0));
    assert_eq!(c.exchanges[1].latency_us, Some(500.0));
    // Turn-taking does not judge recv() pitfalls.
    assert!(c.recv_pitfalls.is_empty());
}

#[test]
fn a_server_greeting_is_an_exchange_without_request() {
    let mut w = Script::new(1, 1);
    w.handshake(0, 50);
    w.s(500, b"220 ready\n");
    w.c(1_000, b"hello\n");
    w.s(1_100, b"Echo: hello\n");
    let a = analyze(Options::default(), &w.segs);
    let c = one(&a);
    assert_eq!(c.framing, Framing::Line);
    assert_eq!(requests(c), ["", "hello"]);
    assert_eq!(responses(c), ["220 ready", "Echo: hello"]);
    assert_eq!(c.exchanges[0].request_bytes, 0);
    assert_eq!(c.exchanges[0].latency_us, None);
    assert_eq!(c.exchanges[1].latency_us, Some(100.0));
}

#[test]
fn each_message_lists_the_frames_that_carried_it() {
    // Frames 1-2: a request in two segments; 3: its response and the
    // next response merged; 4: the second request (pipelined late).
    let chunks: Vec<(Side, Result<&[u8], u64>)> = vec![
        (C, Ok(b"he")),
        (C, Ok(b"llo\n")),
        (S, Ok(b"Echo: hello\nEcho: x\n")),
        (C, Ok(b"x\n")),
    ];
    let c = run(FramingChoice::Line, 2000, &chunks);
    let frames = |e: &Exchange| {
        (
            e.request_frames.iter().collect::<Vec<_>>(),
            e.response_frames.iter().collect::<Vec<_>>(),
        )
    };
    assert_eq!(frames(&c.exchanges[0]), (vec![1, 2], vec![3]));
    assert_eq!(
        frames(&c.exchanges[1]),
        (vec![], vec![3]),
        "a greeting-like response has no request"
    );
}

fn summaries(c: &Connection) -> Vec<(Option<&str>, Option<&str>)> {
    c.exchanges
        .iter()
        .map(|e| (e.request_summary.as_deref(), e.response_summary.as_deref()))
        .collect()
}

#[test]
fn auto_recognises_http_and_pairs_pipelined_requests_with_times() {
    let c = run(
        FramingChoice::Auto,
        1000,
        &[
            (C, Ok(b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n")),
            (S, Ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")),
            (S, Ok(b"okHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")),
        ],
    );
    assert_eq!(c.protocol, Some(AppProtocol::Http));
    assert_eq!(
        c.framing_reason.as_deref(),
        Some("HTTP/1.1: request line and headers")
    );
    assert_eq!(
        summaries(&c),
        [
            (Some("GET /a"), Some("200 OK, 2 B body")),
            (Some("HEAD /b"), Some("200 OK (HEAD)"))
        ]
    );
    let e = &c.exchanges[0];
    // Request complete at 1 µs; response from 2 µs (first byte) to 3 µs.
    assert_eq!(
        (e.first_byte_latency_us, e.latency_us),
        (Some(1.0), Some(2.0))
    );
    assert_eq!(e.operation.as_deref(), Some("GET /a"));
    assert_eq!(c.exchanges[1].latency_us, Some(2.0));
}

#[test]
fn an_answer_before_the_request_ends_answers_it() {
    let c = run(
        FramingChoice::Http,
        1000,
        &[
            (C, Ok(b"POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\n")),
            (S, Ok(b"HTTP/1.1 100 Continue\r\n\r\n")),
            (
                S,
                Ok(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"),
            ),
            (C, Ok(b"ab")),
        ],
    );
    assert_eq!(
        summaries(&c),
        [(
            Some("POST /u, 2 B of body before the end"),
            Some("413 Too Large, 0 B body")
        )]
    );
    assert!(c.exchanges[0].error && c.exchanges[0].incomplete);
}

#[test]
fn a_codec_error_falls_back_to_turns_with_a_note() {
    let c = run(
        FramingChoice::Resp,
        1000,
        &[
            (C, Ok(b"*1\r\n$4\r\nPING\r\n")),
            (S, Ok(b"+PONG\r\n")),
            (C, Ok(b"*1\r\n$4\r\nPINGxx garbage")),
            (S, Ok(b"whatever")),
        ],
    );
    assert_eq!(c.exchanges.len(), 2);
    assert_eq!(summaries(&c)[0], (Some("PING"), Some("+PONG")));
    assert!(
        c.notes[0].contains("bulk string not followed by CR LF"),
        "{:?}",
        c.notes
    );
    assert!(c.notes[0].ends_with("from there on, paired by turns"));
    assert_eq!(c.exchanges[1].response_preview, "whatever");
}
