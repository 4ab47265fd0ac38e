//! The estimate of the flow table's bytes against what the allocator
//! really holds, and the shrinking of idle connections: under a budget
//! that would have evicted them, they all stay, and the analysis is the
//! same as without a budget.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::*;
use crate::analyze::flows::Options;
use crate::analyze::model::{Analysis, Side};
use crate::analyze::testing::{Script, Seg, push_all};

/// The system allocator, counting the bytes each thread holds (so that
/// tests running side by side do not count each other's).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    /// Bytes moved by reallocations (their old sizes).
    static MOVED: Cell<usize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // During a thread's teardown the counter may be gone: not counted.
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

// SAFETY: every call goes to `System` unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        let _ = MOVED.try_with(|m| m.set(m.get() + layout.size()));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn held() -> isize {
    HELD.with(Cell::get)
}

/// `n` connections that each exchange once and stay open (as
/// `gen_capture --shape never-close --exchanges 1`), one every 100 µs: the
/// segments of their handshake and exchange, and those of a second
/// exchange on each, 10 s later.
fn never_closed(n: u32) -> (Vec<Seg>, Vec<Seg>) {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = u64::from(i) * 100;
        let mut w = Script::new(i.wrapping_mul(7919), 7);
        w.client.set_port(10_000 + (i % 50_000) as u16);
        w.client
            .set_ip(std::net::Ipv4Addr::from(0x0a01_0000 + i / 50_000).into());
        w.handshake(t, 20);
        w.c(t + 100, format!("hello {i}\n").as_bytes());
        w.s(t + 150, format!("Echo: hello {i}\n").as_bytes());
        first.append(&mut w.segs);
        w.c(10_000_000 + t, b"again\n");
        w.s(10_000_000 + t + 40, b"Echo: again\n");
        w.ack(10_000_000 + t + 60, Side::Client);
        second.append(&mut w.segs);
    }
    (first, second)
}

/// The estimate against the bytes allocated, per connection, with the
/// packet records of each message kept (as the JSON report asks) or not,
/// and before and after shrinking.
#[test]
fn the_estimate_tracks_what_is_allocated() {
    use crate::analyze::FramingChoice;
    // `auto` holds the first exchange until a third burst decides the
    // framing (as gen_capture's never-closed connections stay); `line`
    // pairs it at once.
    for (framing, keep_packets) in [
        (FramingChoice::Auto, false),
        (FramingChoice::Line, false),
        (FramingChoice::Line, true),
    ] {
        // The table's load is then 7/8, as the estimate of an entry has it.
        let n = 3_584;
        let (segs, _) = never_closed(n);
        let before = held();
        let mut an = Analyzer::new(Options {
            keep_packets,
            framing,
            ..Options::default()
        });
        push_all(&mut an, &segs);
        let measure = |an: &Analyzer, what: &str| {
            let real = (held() - before) as f64 / f64::from(n);
            // The allocator's own headers are estimated, not counted here.
            let estimate = an.tracked_bytes() as f64 / f64::from(n);
            let ratio = estimate / real;
            assert!(
                (0.9..1.4).contains(&ratio),
                "{what}, {framing:?}, packets kept: {keep_packets}: estimated {estimate:.0} B, \
                 allocated {real:.0} B per connection"
            );
            real
        };
        let full = measure(&an, "as they come");
        assert!(!an.shrink_idle(0), "a target of 0 is never reached");
        let shrunk = measure(&an, "shrunk");
        assert!(shrunk < full, "shrinking frees: {full:.0} -> {shrunk:.0} B");
        drop(an);
    }
}

/// A connection that keeps speaking while the budget presses on it is
/// shrunk as often as the budget asks, yet each exchange is shrunk once
/// and its list is not copied back and forth: the bytes reallocations
/// move stay within a small multiple of a run with no budget (3.7 times
/// here; 5,500 times before). (Shrinking
/// the list to its length, then doubling it at the next exchange, moved
/// the whole list each time: quadratic, minutes for `watch` on a busy
/// connection.)
#[test]
fn a_connection_speaking_under_pressure_is_not_copied_again_and_again() {
    use crate::analyze::FramingChoice;
    let mut w = Script::new(1, 2);
    w.handshake(0, 20);
    for i in 0..20_000u64 {
        let t = 1_000 + i * 100;
        w.c(t, b"ping\n");
        w.s(t + 50, b"Echo: ping\n");
    }
    let run = |memcap| {
        let before = MOVED.with(Cell::get);
        let mut an = Analyzer::new(Options {
            memcap,
            framing: FramingChoice::Line,
            keep_packets: true,
            ..Options::default()
        });
        push_all(&mut an, &w.segs);
        (
            an.tracked_bytes(),
            an.evicted,
            MOVED.with(Cell::get) - before,
        )
    };
    let (bytes, _, moved_free) = run(usize::MAX);
    let (_, evicted, moved_pressed) = run(bytes * 15 / 16);
    assert_eq!(evicted, 0, "shrinking alone keeps it within the budget");
    assert!(
        moved_pressed <= 3 * moved_free,
        "reallocations moved {moved_pressed} B under the budget, {moved_free} B without"
    );
}

/// Every connection of `analysis` as its JSON, in order.
fn json(analysis: &Analysis) -> Vec<String> {
    analysis
        .connections
        .iter()
        .map(|c| serde_json::to_string(c).expect("json"))
        .collect()
}

/// Connections that exchanged once and stay open, under a budget that
/// holds them only once shrunk: none is evicted, and when each speaks
/// again (its flow resumed after the shrinking) the analysis is the same,
/// byte for byte, as with a budget that never presses.
#[test]
fn idle_connections_shrink_instead_of_being_evicted_and_resume_the_same() {
    use crate::analyze::FramingChoice;
    let n = 3_584;
    for framing in [FramingChoice::Auto, FramingChoice::Line] {
        let (first, second) = never_closed(n);
        let run = |memcap, segs: &[Seg]| {
            let mut an = Analyzer::new(Options {
                memcap,
                framing,
                keep_packets: true,
                ..Options::default()
            });
            push_all(&mut an, segs);
            an
        };
        // What the connections take as they come, and once shrunk.
        let mut an = run(usize::MAX, &first);
        let as_they_come = an.tracked_bytes();
        assert!(!an.shrink_idle(0), "every connection shrunk");
        let shrunk = an.tracked_bytes();
        assert!(an.table.values().all(|s| s.shrunk));
        // A budget that holds them shrunk (with room for the eighth that
        // eviction frees), not as they come.
        let memcap = shrunk * 8 / 7 + 4096;
        assert!(
            memcap < as_they_come,
            "{memcap} B budget, {as_they_come} B as they come"
        );
        let pressed = run(memcap, &first);
        assert_eq!(pressed.evicted, 0, "{framing:?}: none evicted");
        assert!(pressed.tracked_bytes() <= memcap);
        // Shrunk, or parked (see `parking`): still there, in less room.
        let shrunk = pressed.table.values().filter(|s| s.shrunk).count();
        assert!(shrunk + pressed.parked() > n as usize / 2);

        // Every connection speaks again after being shrunk.
        let mut pressed = an;
        let mut free = run(usize::MAX, &first);
        for an in [&mut pressed, &mut free] {
            for (number, s) in second.iter().enumerate() {
                an.push(&s.view(first.len() as u64 + number as u64 + 1));
            }
        }
        assert_eq!(pressed.evicted, 0);
        let (pressed, free) = (pressed.finish(), free.finish());
        assert_eq!(pressed.connections.len(), n as usize);
        assert!(pressed.connections.iter().all(|c| c.exchanges.len() == 2));
        assert_eq!(json(&pressed), json(&free), "{framing:?}");
        assert_eq!(pressed.warnings, free.warnings);
    }
}

/// At the end of the capture the connections still open are flushed one
/// at a time ([`Analyzer::next_remaining`]), not all at once, and come out
/// as [`Analyzer::finish`] lists them: same order, same content.
#[test]
fn the_open_connections_come_out_one_at_a_time_as_finish_lists_them() {
    let (first, second) = never_closed(500);
    // Some connections evicted (waiting in the output), most open.
    let run = || {
        let mut an = Analyzer::new(Options {
            memcap: 256 << 10,
            ..Options::default()
        });
        push_all(&mut an, &first);
        for (number, s) in second[..600].iter().enumerate() {
            an.push(&s.view(first.len() as u64 + number as u64 + 1));
        }
        an
    };
    let all = run().finish();
    assert!(
        all.connections
            .iter()
            .any(|c| c.state == ConnState::Evicted)
    );
    assert!(all.connections.iter().any(|c| c.state == ConnState::Open));
    let mut an = run();
    let one_by_one: Vec<Connection> = std::iter::from_fn(|| an.next_remaining()).collect();
    let rest = an.finish();
    assert!(rest.connections.is_empty());
    assert_eq!(
        one_by_one
            .iter()
            .map(|c| serde_json::to_string(c).expect("json"))
            .collect::<Vec<_>>(),
        json(&all)
    );
    assert_eq!(rest.warnings, all.warnings);
    assert_eq!(rest.framing, all.framing);
}

#[test]
fn connections_idle_as_long_are_picked_by_number_not_by_the_table_order() {
    // Packets sharing their times: which connection is idle the longest
    // is a tie, which the table's order (its hasher seeded at random)
    // must not settle, or a capture under pressure would give another
    // report at each run.
    let mut an = Analyzer::new(Options::default());
    for i in 0..500u32 {
        let mut w = Script::new(i.wrapping_mul(7919), 7);
        w.client.set_port(10_000 + i as u16);
        w.handshake(1_000, 20);
        w.c(2_000, b"hello\n");
        push_all(&mut an, &w.segs);
    }
    let ids: Vec<u32> = an
        .oldest_first(|_| true)
        .iter()
        .map(|k| an.table[k].id)
        .collect();
    assert_eq!(ids.len(), 500);
    assert!(ids.is_sorted(), "in the table's order: {:?}", &ids[..10]);
}
