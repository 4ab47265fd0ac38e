//! Tests of `protocol::app`.

use super::*;

#[test]
fn line_is_bounded_and_split_safe() {
    let mut l = Line::default();
    let p = AppProtocol::Resp;
    let d = Direction::Request;
    assert_eq!(l.feed(b"PI", 10, p, d, "line").unwrap(), (2, false));
    assert_eq!(l.feed(b"NG\r\nrest", 10, p, d, "line").unwrap(), (4, true));
    assert_eq!(l.text(), b"PING");
    l.clear();
    assert!(l.feed(&[b'a'; 13], 10, p, d, "line").is_err());
    let mut l = Line::default();
    let mut exact = vec![b'a'; 10];
    exact.extend_from_slice(b"\r\n");
    assert_eq!(l.feed(&exact, 10, p, d, "line").unwrap(), (12, true));
}

#[test]
fn block_checks_its_cr_lf_across_any_split() {
    // "hello\r\n" in pieces of 2: content only before the CR LF.
    let mut b = Block::new(5);
    let mut content = Vec::new();
    for piece in [&b"he"[..], b"ll", b"o\r", b"\nnext"] {
        let (n, c) = b.feed(piece);
        content.extend_from_slice(c);
        assert!(n <= piece.len());
    }
    assert_eq!(content, b"hello");
    assert!(b.complete() && b.well_ended());
    let mut b = Block::new(2);
    assert_eq!(b.feed(b"abXY").0, 4);
    assert!(b.complete() && !b.well_ended());
    // Lost bytes may cover the content, never the CR LF.
    let mut b = Block::new(10);
    assert!(!b.skip(11));
    assert!(b.skip(10));
    assert_eq!(b.feed(b"\r\n"), (2, &b""[..]));
    assert!(b.complete() && b.well_ended());
}

#[test]
fn numbers_refuse_overflow_and_junk() {
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(b"18446744073709551616"), None);
    assert_eq!(parse_u64(b"1a"), None);
    assert_eq!(parse_u64(b""), None);
    assert_eq!(parse_i64(b"-1"), Some(-1));
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_i64(b"9223372036854775808"), None);
}

#[test]
fn summaries_are_capped_on_a_char_boundary() {
    let mut s = "é".repeat(100);
    cap_summary(&mut s);
    assert!(s.len() <= MAX_SUMMARY + '…'.len_utf8());
    assert!(s.ends_with('…'));
}

/// Valid conversations of each protocol, to mutate.
fn seeds() -> Vec<(AppProtocol, Vec<u8>, Vec<u8>)> {
    let mut pg_req = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 27, 0, 3, 0, 0];
    pg_req.extend_from_slice(b"user\0u\0database\0d\0\0Q\0\0\0\rSELECT 1\0");
    let mut pg_resp = b"NR\0\0\0\x08\0\0\0\0Z\0\0\0\x05I".to_vec();
    pg_resp.extend_from_slice(b"T\0\0\0\x06\0\0D\0\0\0\x06\0\0C\0\0\0\rSELECT 1\0Z\0\0\0\x05I");
    let dns_q = b"\0\x1e\0\x07\x01\0\0\x01\0\0\0\0\0\0\x07example\x04test\0\0\x01\0\x01".to_vec();
    let mut dns_r = dns_q.clone();
    dns_r[0..2].copy_from_slice(&[0, 0x2e]);
    dns_r[4] = 0x81;
    dns_r[5] = 0x80;
    dns_r[9] = 1;
    dns_r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    vec![
        (
            AppProtocol::Http,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHEAD / HTTP/1.1\r\n\r\n".to_vec(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".to_vec(),
        ),
        (
            AppProtocol::Resp,
            b"*2\r\n$4\r\nINCR\r\n$2\r\np1\r\nPING\r\n*1\r\n$4\r\nKEYS\r\n".to_vec(),
            b":3\r\n+PONG\r\n*2\r\n$1\r\na\r\n*1\r\n%1\r\n+k\r\n$-1\r\n|1\r\n+a\r\n:1\r\n>1\r\n_\r\n".to_vec(),
        ),
        (
            AppProtocol::Memcached,
            b"set k 0 0 5\r\nhello\r\nget k n\r\nms k 2 T0\r\nhi\r\nincr n 1 noreply\r\n".to_vec(),
            b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\nVA 2 f\r\nhi\r\nSTAT a 1\r\nEND\r\n".to_vec(),
        ),
        (AppProtocol::Dns, dns_q, dns_r),
        (AppProtocol::Postgres, pg_req, pg_resp),
    ]
}

fn mutate(data: &mut Vec<u8>, edits: &[(usize, u8, u8)]) {
    for &(at, op, byte) in edits {
        let at = at % (data.len() + 1);
        match op % 4 {
            0 if at < data.len() => data[at] = byte,
            1 => data.insert(at, byte),
            2 if at < data.len() => {
                data.remove(at);
            }
            _ if at < data.len() => data[at] ^= 1 << (byte % 8),
            _ => {}
        }
    }
}

proptest::proptest! {
    /// Fuzz-style: valid conversations with a few bytes changed,
    /// inserted or removed reach deep states; nothing panics, every
    /// feed makes progress, and any split still gives the same result.
    #[test]
    fn mutated_conversations_never_panic(
        which in 0usize..5,
        edits_req in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), proptest::prelude::any::<u8>()), 0..4),
        edits_resp in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), proptest::prelude::any::<u8>()), 0..4),
        cut in proptest::prelude::any::<usize>(),
    ) {
        let (protocol, mut req, mut resp) = seeds().swap_remove(which);
        mutate(&mut req, &edits_req);
        mutate(&mut resp, &edits_resp);
        testkit::robust(protocol, &req, &resp, cut);
        let _ = recognize(&req, &resp, 80);
    }
}

#[test]
fn seeds_decode_whole() {
    for (protocol, req, resp) in seeds() {
        let mut s = Session::new(protocol);
        let (r, e) = decode_stream(&mut s, Direction::Request, &req);
        assert!(e.is_none() && !r.is_empty(), "{protocol}: {e:?}");
        let (r, e) = decode_stream(&mut s, Direction::Response, &resp);
        assert!(e.is_none() && !r.is_empty(), "{protocol}: {e:?}");
        assert!(
            !s.partial(Direction::Request) && !s.partial(Direction::Response),
            "{protocol}"
        );
    }
}

#[test]
fn pairing_in_order_by_key_and_with_interim_answers() {
    let req = |responses, key| AppMessage {
        key,
        ..AppMessage::new(Kind::Request { responses })
    };
    let resp = |kind, key| AppMessage {
        key,
        ..AppMessage::new(kind)
    };
    let mut p = Pairing::default();
    p.request(1, &req(1, None));
    p.request(2, &req(0, None)); // noreply: never waits
    p.request(3, &req(2, None)); // SUBSCRIBE a b
    assert_eq!(p.response(&resp(Kind::Interim, None)), Answer::Partial(1));
    assert_eq!(p.response(&resp(Kind::Response, None)), Answer::Final(1));
    assert_eq!(p.response(&resp(Kind::Push, None)), Answer::Unpaired);
    assert_eq!(p.response(&resp(Kind::Response, None)), Answer::Partial(3));
    assert_eq!(p.response(&resp(Kind::Response, None)), Answer::Final(3));
    assert_eq!(p.response(&resp(Kind::Response, None)), Answer::Unpaired);
    // DNS: by key, out of order.
    p.request(10, &req(1, Some(7)));
    p.request(11, &req(1, Some(8)));
    assert_eq!(
        p.response(&resp(Kind::Response, Some(8))),
        Answer::Final(11)
    );
    assert_eq!(p.response(&resp(Kind::Response, Some(9))), Answer::Unpaired);
    assert_eq!(
        p.response(&resp(Kind::Response, Some(7))),
        Answer::Final(10)
    );
    assert_eq!(p.waiting(), 0);
}

#[test]
fn recognition_by_content_with_port_as_hint() {
    let r = recognize(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n",
        12345,
    )
    .unwrap();
    assert_eq!(r.protocol, AppProtocol::Http);
    assert_eq!(r.reason, "HTTP/1.1: request line and headers");
    let r = recognize(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n", 7000).unwrap();
    assert_eq!(r.protocol, AppProtocol::Resp);
    // An inline PING could be many things: the port settles it.
    assert_eq!(recognize(b"PING\r\n", b"+PONG\r\n", 7000), None);
    assert_eq!(
        recognize(b"PING\r\n", b"+PONG\r\n", 6379).map(|r| r.protocol),
        Some(AppProtocol::Resp)
    );
    let r = recognize(b"get k\r\n", b"END\r\n", 4000).unwrap();
    assert_eq!(r.protocol, AppProtocol::Memcached);
    // The lab's line framing stays unrecognised, whatever the port.
    for port in [80, 6379, 11211, 53, 5432, 7878] {
        assert_eq!(recognize(b"hello\n", b"hello\n", port), None);
        assert_eq!(
            recognize(b"book\n", b"Booked one ticket, 9 left\n", port),
            None
        );
        assert_eq!(
            recognize(b"\0\0\0\x05hello", b"\0\0\0\x05hello", port),
            None
        );
    }
    // Content wins over the port.
    assert_eq!(
        recognize(b"GET / HTTP/1.0\r\n\r\n", b"", 6379).map(|r| r.protocol),
        Some(AppProtocol::Http)
    );
}
