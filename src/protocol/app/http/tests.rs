//! Tests of `protocol::app::http`.

use super::super::testkit::{decode, robust_behind, split_decode, summaries};
use super::super::{Session, decode_stream};
use super::*;
use proptest::prelude::*;

#[test]
fn keep_alive_requests_with_lengths() {
    let (req, resp) = decode(
        P,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /a?b=1 HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(summaries(&req), ["GET /index.html", "GET /a?b=1"]);
    assert_eq!(req[1].op, "GET /a");
    assert_eq!(req[0].len, 37);
    assert_eq!(
        summaries(&resp),
        ["200 OK, 6 B body", "404 Not Found, 0 B body"]
    );
    assert!(!resp[0].error && resp[1].error);
    assert_eq!(resp[0].kind, Kind::Response);
}

#[test]
fn chunked_body_and_trailers() {
    let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let (_, resp) = decode(P, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", body);
    assert_eq!(summaries(&resp), ["200 OK, 6 B body", "204 No Content"]);
    assert_eq!(resp[0].len + resp[1].len, body.len() as u64);
}

#[test]
fn head_and_304_have_no_body_whatever_the_length_says() {
    let (_, resp) = decode(
        P,
        b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(
        summaries(&resp),
        ["200 OK (HEAD)", "304 Not Modified", "200 OK, 2 B body"]
    );
}

#[test]
fn continue_is_interim_and_post_body_by_length() {
    let (req, resp) = decode(
        P,
        b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(summaries(&req), ["POST /up, 3 B body"]);
    assert_eq!(
        resp.iter().map(|m| m.kind).collect::<Vec<_>>(),
        [Kind::Interim, Kind::Response]
    );
    assert_eq!(summaries(&resp), ["100 Continue", "201 Created, 0 B body"]);
}

#[test]
fn close_delimited_body_ends_with_the_stream() {
    let (_, resp) = decode(
        P,
        b"GET / HTTP/1.0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n<html>",
    );
    assert_eq!(summaries(&resp), ["200 OK, 6 B body"]);
    assert!(resp[0].complete);
}

#[test]
fn upgrade_turns_to_tunnel() {
    let mut s = Session::new(P);
    let (r, e) = decode_stream(
        &mut s,
        Direction::Request,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!((r.len(), e), (1, None));
    let (r, e) = decode_stream(
        &mut s,
        Direction::Response,
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
    );
    assert_eq!(e, None);
    assert_eq!(
        r.iter().map(|m| m.kind).collect::<Vec<_>>(),
        [Kind::Response, Kind::Tunnel]
    );
    let (r, _) = decode_stream(&mut s, Direction::Request, b"\x81\x85abcd1234");
    assert_eq!(r[0].kind, Kind::Tunnel);
}

#[test]
fn truncated_message_is_reported_incomplete() {
    let (_, resp) = decode(
        P,
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert_eq!(resp.len(), 1);
    assert!(!resp[0].complete);
    assert_eq!(resp[0].summary, "200 OK, 3 B of body before the end");
}

#[test]
fn missing_body_bytes_keep_sync_missing_header_bytes_do_not() {
    let mut s = Session::new(P);
    s.feed(Direction::Request, b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    s.feed(
        Direction::Response,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
    )
    .unwrap();
    assert_eq!(s.missing(Direction::Response, 5).unwrap(), None);
    let step = s.feed(Direction::Response, b"xyzHTTP").unwrap();
    assert_eq!(step.consumed, 3);
    assert_eq!(step.message.unwrap().summary, "200 OK, 10 B body");
    assert!(s.missing(Direction::Response, 2).is_err());
}

#[test]
fn hostile_heads_are_refused_without_buffering_them() {
    let mut s = Session::new(P);
    let big = vec![b'a'; MAX_HEAD + 10];
    let (_, e) = decode_stream(&mut s, Direction::Request, &big);
    assert!(matches!(e, Some(AppError::TooLarge { .. })));
    for bad in [
        &b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ] {
        let (_, e) = decode_stream(&mut Session::new(P), Direction::Request, bad);
        assert!(matches!(e, Some(AppError::Malformed { .. })), "{bad:?}");
    }
    // A huge claimed length is just a count: nothing is allocated.
    let mut s = Session::new(P);
    s.feed(Direction::Request, b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let (m, e) = decode_stream(
        &mut s,
        Direction::Response,
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nxx",
    );
    assert!(m.is_empty() && e.is_none());
    let (m, e) = decode_stream(
        &mut Session::new(P),
        Direction::Response,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
    );
    assert!(m.is_empty() && e.is_none());
    let (_, e) = decode_stream(
        &mut Session::new(P),
        Direction::Response,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
    );
    assert!(e.is_some());
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["GET", "POST", "HEAD", "PUT"]),
        "/[a-z]{0,10}",
        prop::option::of(prop::collection::vec(any::<u8>(), 0..50)),
        any::<bool>(),
    )
        .prop_map(|(m, path, body, chunked)| {
            let mut out = format!("{m} {path} HTTP/1.1\r\nHost: x\r\n").into_bytes();
            match body {
                Some(b) if chunked => {
                    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for c in b.chunks(7) {
                        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        out.extend_from_slice(c);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                Some(b) => {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes(),
                    );
                    out.extend_from_slice(&b);
                }
                None => out.extend_from_slice(b"\r\n"),
            }
            out
        })
}

proptest! {
    #[test]
    fn any_split_gives_the_same_messages(
        reqs in prop::collection::vec(request(), 0..8),
        resps in prop::collection::vec(request(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        // Responses: reuse the request bodies behind status lines.
        let resps: Vec<Vec<u8>> = resps.iter().map(|r| {
            let line_end = r.iter().position(|&b| b == b'\n').unwrap();
            let mut out = b"HTTP/1.1 200 OK\r".to_vec();
            out.extend_from_slice(&r[line_end..]);
            // Without a length a response runs to the close: give one.
            if !r.windows(7).any(|w| w == b"chunked" || w == b"Length:") {
                out.truncate(out.len() - 2);
                out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            }
            out
        }).collect();
        let n = reqs.len().min(resps.len());
        // Every request a GET so every response has its body.
        let reqs: Vec<u8> = (0..n).flat_map(|_| b"GET / HTTP/1.1\r\n\r\n".to_vec()).collect();
        let resps_bytes: Vec<u8> = resps[..n].concat();
        let whole = split_decode(P, &reqs, &resps_bytes, &[]);
        prop_assert_eq!(whole.0.len(), n);
        prop_assert_eq!(whole.1.len(), n);
        prop_assert_eq!(whole.1.iter().map(|m| m.len).sum::<u64>(), resps_bytes.len() as u64);
        let split = split_decode(P, &reqs, &resps_bytes, &cuts);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn requests_any_split(reqs in prop::collection::vec(request(), 0..8), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let bytes = reqs.concat();
        let whole = split_decode(P, &bytes, b"", &[]);
        prop_assert_eq!(whole.0.len(), reqs.len());
        for (m, r) in whole.0.iter().zip(&reqs) { prop_assert_eq!(m.len, r.len() as u64); }
        prop_assert_eq!(split_decode(P, &bytes, b"", &cuts), whole);
    }

    #[test]
    fn random_bytes_never_panic(
        a in prop::collection::vec(any::<u8>(), 0..400),
        b in prop::collection::vec(any::<u8>(), 0..400),
        cut in any::<usize>(),
    ) {
        let chunked = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        robust_behind(P, &a, &b, cut, chunked, b"");
    }
}
