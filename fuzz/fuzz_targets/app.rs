//! Fuzzes the application-protocol codecs (`protocol::app`): any bytes, cut
//! into a request and a response stream and fed in arbitrary chunks, must
//! give messages or an `AppError`, never a panic or a hang; every feed
//! consumes at least one byte and no more than it was given; recognition
//! never panics either.
//! Run: `cargo +nightly fuzz run app -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqresp::protocol::app::{AppProtocol, Direction, Session, recognize};

fuzz_target!(|data: &[u8]| {
    // Byte 0: protocol and chunk size; byte 1: where the request stream ends.
    let [pick, cut, rest @ ..] = data else {
        return;
    };
    let protocol = AppProtocol::ALL[usize::from(pick % 5)];
    let chunk = usize::from(pick / 5).max(1);
    let cut = (usize::from(*cut) * rest.len() / 255).min(rest.len());
    let (requests, responses) = rest.split_at(cut);
    let _ = recognize(requests, responses, u16::from(*pick) * 257);
    let mut session = Session::new(protocol);
    for (dir, stream) in [(Direction::Request, requests), (Direction::Response, responses)] {
        for mut piece in stream.chunks(chunk) {
            while !piece.is_empty() {
                match session.feed(dir, piece) {
                    Ok(step) => {
                        assert!(step.consumed > 0 && step.consumed <= piece.len());
                        piece = &piece[step.consumed..];
                    }
                    Err(_) => break,
                }
            }
        }
        let _ = session.missing(dir, u64::from(*pick));
        let _ = session.finish(dir);
    }
});
