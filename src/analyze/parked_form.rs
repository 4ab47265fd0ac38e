//! The byte form of a connection's state while it is parked (see
//! `flows::parking`): the analyzer's own types, written and read back
//! exactly by borsh's derives, so that no field can be forgotten.
//!
//! borsh rather than a hand-written codec: the state spans some thirty
//! types that change as the analyzer grows, and a derive keeps the form
//! exact by construction; compactness comes mostly from compressing many
//! forms together. bincode was the other candidate; it is no longer
//! maintained.
//!
//! borsh reads a `Box<T>` only for `T: Clone`; the helpers here read
//! boxes of state that is not `Clone` (nor should be).
//!
//! Capture times, a parked connection's most numerous values, are written
//! as their distance from the connection's latest packet, in microseconds
//! when they are whole ones (pcap's resolution), as a varint: one to three
//! bytes instead of eight.

use std::cell::Cell;
use std::io::{self, Read, Write};

use borsh::BorshDeserialize;

/// Reads a `Box<T>` written by borsh.
pub(crate) fn boxed<R: Read, T: BorshDeserialize>(r: &mut R) -> io::Result<Box<T>> {
    T::deserialize_reader(r).map(Box::new)
}

/// The error for state that has no parked form (an application
/// protocol's codec): such a connection stays live.
pub(crate) fn not_parked(what: &str) -> io::Error {
    io::Error::other(format!("{what} has no parked form"))
}

thread_local! {
    /// The base time (ns) of the form being written or read on this thread.
    static BASE: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` (writing or reading one form) with times written relative to
/// `base` ns.
pub(crate) fn with_base<T>(base: u64, f: impl FnOnce() -> T) -> T {
    let before = BASE.with(|b| b.replace(base));
    let out = f();
    BASE.with(|b| b.set(before));
    out
}

/// Writes a time (ns): its distance from the base, zigzagged, in µs with
/// a low bit 0 when a whole number of them, else in ns with a low bit 1;
/// as a varint.
pub(crate) fn write_time<W: Write>(t: u64, w: &mut W) -> io::Result<()> {
    let d = t.wrapping_sub(BASE.with(Cell::get)) as i64;
    let zig = ((d << 1) ^ (d >> 63)) as u64;
    let (mut v, tail) = if d % 1000 == 0 {
        let us = d / 1000;
        (((us << 1) ^ (us >> 63)) as u64, 0u8)
    } else {
        (zig, 1u8)
    };
    // The flag in the first byte's lowest bit; the value above it.
    let mut buf = [0u8; 11];
    let mut n = 0;
    let first = ((v & 0x3f) as u8) << 1 | tail;
    v >>= 6;
    buf[0] = first | if v > 0 { 0x80 } else { 0 };
    n += 1;
    while v > 0 {
        buf[n] = (v & 0x7f) as u8 | if v >> 7 > 0 { 0x80 } else { 0 };
        v >>= 7;
        n += 1;
    }
    w.write_all(&buf[..n])
}

/// Reads a time written by [`write_time`].
pub(crate) fn read_time<R: Read>(r: &mut R) -> io::Result<u64> {
    let mut byte = [0u8];
    r.read_exact(&mut byte)?;
    let tail = byte[0] & 1;
    let mut v = u64::from(byte[0] >> 1 & 0x3f);
    let mut more = byte[0] & 0x80 != 0;
    let mut shift = 6;
    while more {
        if shift > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a time longer than 11 bytes",
            ));
        }
        r.read_exact(&mut byte)?;
        v |= u64::from(byte[0] & 0x7f) << shift;
        more = byte[0] & 0x80 != 0;
        shift += 7;
    }
    let unzig = ((v >> 1) as i64) ^ -((v & 1) as i64);
    let d = if tail == 0 {
        unzig.wrapping_mul(1000)
    } else {
        unzig
    };
    Ok(BASE.with(Cell::get).wrapping_add(d as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_back_exactly_whatever_their_distance_from_the_base() {
        let base = 1_764_000_000_123_456_000u64;
        let times = [
            0,
            1,
            999,
            1000,
            base - 1,
            base,
            base + 1,
            base + 1000,
            base - 5_000_000_000,
            base + 5_000_000_123,
            u64::MAX,
            1 << 63,
            (1 << 63) - 1000,
        ];
        for t in times {
            let mut buf = Vec::new();
            with_base(base, || write_time(t, &mut buf)).expect("write");
            let back = with_base(base, || read_time(&mut buf.as_slice())).expect("read");
            assert_eq!(back, t, "{t}");
        }
        let mut buf = Vec::new();
        with_base(base, || write_time(base + 250_000, &mut buf)).expect("write");
        assert!(buf.len() <= 2, "250 µs after the base: {} bytes", buf.len());
        let mut cut = &[0x80u8, 0x80][..];
        assert!(
            read_time(&mut cut).is_err(),
            "a cut time is an error, not a panic"
        );
    }
}
