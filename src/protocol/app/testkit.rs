//! Helpers shared by the codecs' tests.

use super::{AppMessage, AppProtocol, Direction, MAX_SUMMARY, Session};

/// Feeds `requests` then `responses` in the chunks `cuts` gives (as
/// reads from a socket would arrive) and returns the messages of each
/// direction. Panics on an error.
pub(crate) fn split_decode(
    protocol: AppProtocol,
    requests: &[u8],
    responses: &[u8],
    cuts: &[usize],
) -> (Vec<AppMessage>, Vec<AppMessage>) {
    let mut s = Session::new(protocol);
    let reqs = feed_cut(&mut s, Direction::Request, requests, cuts);
    let resps = feed_cut(&mut s, Direction::Response, responses, cuts);
    (reqs, resps)
}

fn feed_cut(s: &mut Session, dir: Direction, stream: &[u8], cuts: &[usize]) -> Vec<AppMessage> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut out = Vec::new();
    let mut fed = 0;
    for p in points {
        let mut chunk = &stream[fed..p.max(fed)];
        fed = p.max(fed);
        while !chunk.is_empty() {
            let step = s
                .feed(dir, chunk)
                .unwrap_or_else(|e| panic!("{e} at byte {}", fed - chunk.len()));
            assert!(step.consumed > 0);
            out.extend(step.message);
            chunk = &chunk[step.consumed..];
        }
    }
    out.extend(s.finish(dir));
    out
}

/// The whole stream in one piece.
pub(crate) fn decode(
    protocol: AppProtocol,
    requests: &[u8],
    responses: &[u8],
) -> (Vec<AppMessage>, Vec<AppMessage>) {
    split_decode(protocol, requests, responses, &[])
}

/// Summaries, for short assertions.
pub(crate) fn summaries(msgs: &[AppMessage]) -> Vec<&str> {
    msgs.iter().map(|m| m.summary.as_str()).collect()
}

/// Feeds arbitrary bytes to both directions: must not panic, must make
/// progress, and what it consumes stays within the input.
pub(crate) fn robust(protocol: AppProtocol, requests: &[u8], responses: &[u8], cut: usize) {
    let mut s = Session::new(protocol);
    for (dir, data) in [
        (Direction::Request, requests),
        (Direction::Response, responses),
    ] {
        let mid = cut % (data.len() + 1);
        for mut chunk in [&data[..mid], &data[mid..]] {
            while !chunk.is_empty() {
                match s.feed(dir, chunk) {
                    Ok(step) => {
                        assert!(step.consumed > 0 && step.consumed <= chunk.len());
                        if let Some(m) = &step.message {
                            assert!(m.summary.chars().count() <= MAX_SUMMARY);
                        }
                        chunk = &chunk[step.consumed..];
                    }
                    Err(_) => break,
                }
            }
        }
        let _ = s.finish(dir);
    }
    let _ = s.missing(Direction::Request, 7);
}

/// [`robust`] on random bytes as they are, then behind a valid start
/// (`request_start` before the requests, `response_start` before the
/// responses), which takes them deeper into the codec.
pub(crate) fn robust_behind(
    protocol: AppProtocol,
    requests: &[u8],
    responses: &[u8],
    cut: usize,
    request_start: &[u8],
    response_start: &[u8],
) {
    robust(protocol, requests, responses, cut);
    let behind = |start: &[u8], data: &[u8]| [start, data].concat();
    robust(
        protocol,
        &behind(request_start, requests),
        &behind(response_start, responses),
        cut,
    );
}
