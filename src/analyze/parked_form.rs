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
//! bytes instead of eight. Sequence numbers are written as their distance
//! from the nearer of the connection's two anchors (its ISNs), frame
//! numbers as their distance from the one before: small varints, where
//! they were random 4- and 8-byte values.
//!
//! Payload bytes (held by `auto`, a decoder, a reassembler, a preview) are
//! set aside in a section of their own: among the numbers they break up
//! the columns `flows::parking` lays out for zstd, and among other
//! payloads they compress well.

use std::cell::RefCell;
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

/// What the form being written or read on this thread is relative to.
#[derive(Default)]
struct Context {
    /// The base time (ns).
    base: u64,
    /// Payload bytes, kept aside from the rest of the form.
    aside: Vec<u8>,
    /// How much of `aside` was read.
    read: usize,
    /// The connection's sequence number anchors (client, server).
    anchors: [u32; 2],
    /// The frame number last written or read.
    frame: u64,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// Runs `f` (writing one form) with times written relative to `base` ns
/// and payload bytes appended to `aside` instead of the form.
pub(crate) fn write_with<T>(base: u64, aside: &mut Vec<u8>, f: impl FnOnce() -> T) -> T {
    let before = CONTEXT.replace(Context {
        base,
        aside: std::mem::take(aside),
        ..Context::default()
    });
    let out = f();
    *aside = CONTEXT.replace(before).aside;
    out
}

/// Runs `f` (reading one form) with times relative to `base` ns and
/// payload bytes taken from `aside`.
pub(crate) fn read_with<T>(base: u64, aside: &[u8], f: impl FnOnce() -> T) -> T {
    let before = CONTEXT.replace(Context {
        base,
        aside: aside.to_vec(),
        ..Context::default()
    });
    let out = f();
    CONTEXT.replace(before);
    out
}

/// Sets the sequence number anchors of the form being written or read
/// (the client's and the server's: their initial sequence numbers, or
/// the first seen).
pub(crate) fn set_anchors(anchors: [u32; 2]) {
    CONTEXT.with_borrow_mut(|c| c.anchors = anchors);
}

/// Writes a sequence number as its distance from the nearer anchor (and
/// which one), as a varint: a byte or two instead of four random ones.
pub(crate) fn write_seq<W: Write>(seq: u32, w: &mut W) -> io::Result<()> {
    let [a, b] = CONTEXT.with_borrow(|c| c.anchors);
    let (da, db) = (seq.wrapping_sub(a) as i32, seq.wrapping_sub(b) as i32);
    let (d, which) = if da.unsigned_abs() <= db.unsigned_abs() {
        (da, 0)
    } else {
        (db, 1)
    };
    write_varint(zigzag(i64::from(d)) << 1 | which, w)
}

/// Reads a sequence number written by [`write_seq`].
pub(crate) fn read_seq<R: Read>(r: &mut R) -> io::Result<u32> {
    let v = read_varint(r)?;
    let anchor = CONTEXT.with_borrow(|c| c.anchors[(v & 1) as usize]);
    Ok(anchor.wrapping_add(unzigzag(v >> 1) as u32))
}

/// [`write_seq`] for a sequence number that may be absent.
pub(crate) fn write_maybe_seq<W: Write>(seq: &Option<u32>, w: &mut W) -> io::Result<()> {
    write_maybe(seq.as_ref(), w, |seq, w| write_seq(*seq, w))
}

/// Reads what [`write_maybe_seq`] wrote.
pub(crate) fn read_maybe_seq<R: Read>(r: &mut R) -> io::Result<Option<u32>> {
    read_maybe(r, read_seq)
}

/// Writes a value that may be absent: a flag byte, then the value.
fn write_maybe<T, W: Write>(
    value: Option<&T>,
    w: &mut W,
    write: impl FnOnce(&T, &mut W) -> io::Result<()>,
) -> io::Result<()> {
    match value {
        None => w.write_all(&[0]),
        Some(value) => {
            w.write_all(&[1])?;
            write(value, w)
        }
    }
}

/// Reads what [`write_maybe`] wrote.
fn read_maybe<T, R: Read>(
    r: &mut R,
    read: impl FnOnce(&mut R) -> io::Result<T>,
) -> io::Result<Option<T>> {
    let mut flag = [0u8];
    r.read_exact(&mut flag)?;
    match flag[0] {
        0 => Ok(None),
        _ => read(r).map(Some),
    }
}

/// Writes a frame number as its distance from the one written before it
/// in the form, as a varint: a connection's packets are near each other.
/// A form is therefore read in the order it was written.
pub(crate) fn write_frame<W: Write>(frame: &u64, w: &mut W) -> io::Result<()> {
    let before = CONTEXT.with_borrow_mut(|c| std::mem::replace(&mut c.frame, *frame));
    write_varint(zigzag(frame.wrapping_sub(before) as i64), w)
}

/// Reads a frame number written by [`write_frame`].
pub(crate) fn read_frame<R: Read>(r: &mut R) -> io::Result<u64> {
    let d = unzigzag(read_varint(r)?);
    Ok(CONTEXT.with_borrow_mut(|c| {
        c.frame = c.frame.wrapping_add(d as u64);
        c.frame
    }))
}

/// Writes a list of frame numbers, each by [`write_frame`].
pub(crate) fn write_frames<W: Write>(frames: &[u64], w: &mut W) -> io::Result<()> {
    write_varint(frames.len() as u64, w)?;
    frames.iter().try_for_each(|f| write_frame(f, w))
}

/// Reads a list written by [`write_frames`]; its length is bounded by the
/// bytes left, not trusted.
pub(crate) fn read_frames<R: Read>(r: &mut R) -> io::Result<Vec<u64>> {
    let len = read_varint(r)?;
    let mut frames = Vec::with_capacity(len.min(64) as usize);
    for _ in 0..len {
        frames.push(read_frame(r)?);
    }
    Ok(frames)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Writes `v` as a LEB128 varint: seven bits a byte, low ones first.
pub(crate) fn write_varint<W: Write>(mut v: u64, w: &mut W) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    w.write_all(&buf[..=n])
}

/// Reads a varint written by [`write_varint`]; more than ten bytes is an
/// error.
pub(crate) fn read_varint<R: Read>(r: &mut R) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let mut byte = [0u8];
        r.read_exact(&mut byte)?;
        v |= u64::from(byte[0] & 0x7f).wrapping_shl(shift);
        if byte[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "a varint longer than ten bytes",
    ))
}

fn base() -> u64 {
    CONTEXT.with_borrow(|c| c.base)
}

/// Writes payload bytes: their length in the form, the bytes aside (where
/// zstd sees them next to other payloads, not between numbers).
pub(crate) fn write_bytes<W: Write>(bytes: &[u8], w: &mut W) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::other("payload bytes past 4 GiB have no parked form"))?;
    w.write_all(&len.to_le_bytes())?;
    CONTEXT.with_borrow_mut(|c| c.aside.extend_from_slice(bytes));
    Ok(())
}

/// Reads payload bytes written by [`write_bytes`]; never more than were
/// set aside, whatever the length says.
pub(crate) fn read_bytes<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    CONTEXT.with_borrow_mut(|c| {
        let bytes = c.aside.get(c.read..).and_then(|rest| rest.get(..len));
        let bytes = bytes.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "payload bytes cut short")
        })?;
        c.read += len;
        Ok(bytes.to_vec())
    })
}

/// [`write_bytes`] for bytes that may be absent.
pub(crate) fn write_maybe_bytes<W: Write>(bytes: &Option<Vec<u8>>, w: &mut W) -> io::Result<()> {
    write_maybe(bytes.as_ref(), w, |bytes, w| write_bytes(bytes, w))
}

/// Reads what [`write_maybe_bytes`] wrote.
pub(crate) fn read_maybe_bytes<R: Read>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    read_maybe(r, read_bytes)
}

/// Writes a time (ns): its distance from the base, zigzagged, in µs with
/// a low bit 0 when a whole number of them, else in ns with a low bit 1;
/// as a varint.
pub(crate) fn write_time<W: Write>(t: u64, w: &mut W) -> io::Result<()> {
    let d = t.wrapping_sub(base()) as i64;
    let zig = zigzag(d);
    let (mut v, tail) = if d % 1000 == 0 {
        let us = d / 1000;
        (zigzag(us), 0u8)
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
    let unzig = unzigzag(v);
    let d = if tail == 0 {
        unzig.wrapping_mul(1000)
    } else {
        unzig
    };
    Ok(base().wrapping_add(d as u64))
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
            write_with(base, &mut Vec::new(), || write_time(t, &mut buf)).expect("write");
            let back = read_with(base, &[], || read_time(&mut buf.as_slice())).expect("read");
            assert_eq!(back, t, "{t}");
        }
        let mut buf = Vec::new();
        write_with(base, &mut Vec::new(), || {
            write_time(base + 250_000, &mut buf)
        })
        .expect("write");
        assert!(buf.len() <= 2, "250 µs after the base: {} bytes", buf.len());
        let mut cut = &[0x80u8, 0x80][..];
        assert!(
            read_time(&mut cut).is_err(),
            "a cut time is an error, not a panic"
        );
    }

    #[test]
    fn sequence_numbers_come_back_from_either_anchor_across_the_wrap() {
        let anchors = [0xffff_fff0, 0x1234_5678];
        let seqs = [
            0xffff_fff0u32,
            5,
            0xffff_ff00,
            0x1234_5678,
            0x1234_0000,
            0x8000_0000,
            0,
        ];
        let mut buf = Vec::new();
        write_with(0, &mut Vec::new(), || {
            set_anchors(anchors);
            seqs.iter().try_for_each(|&s| write_seq(s, &mut buf))
        })
        .expect("write");
        assert!(buf.len() < 4 * seqs.len(), "{} bytes", buf.len());
        let back: Vec<u32> = read_with(0, &[], || {
            set_anchors(anchors);
            let mut r = buf.as_slice();
            (0..seqs.len())
                .map(|_| read_seq(&mut r).expect("read"))
                .collect()
        });
        assert_eq!(back, seqs);
    }

    #[test]
    fn frame_numbers_come_back_whichever_way_they_go() {
        let frames = vec![7u64, 3, 1_000_000, 999_999, u64::MAX, 0, 1 << 63];
        let mut buf = Vec::new();
        write_with(0, &mut Vec::new(), || write_frames(&frames, &mut buf)).expect("write");
        let back = read_with(0, &[], || read_frames(&mut buf.as_slice())).expect("read");
        assert_eq!(back, frames);
        // A list that claims more frames than its bytes hold is an error,
        // and nothing near the claimed length is allocated.
        let mut lying = Vec::new();
        write_varint(u64::MAX, &mut lying).expect("write");
        lying.push(2);
        assert!(read_with(0, &[], || read_frames(&mut lying.as_slice())).is_err());
        assert!(read_varint(&mut [0xffu8; 11].as_slice()).is_err());
    }

    #[test]
    fn payload_bytes_go_aside_and_a_length_past_them_is_an_error() {
        let mut aside = Vec::new();
        let mut form = Vec::new();
        write_with(0, &mut aside, || {
            write_bytes(b"hello", &mut form)?;
            write_maybe_bytes(&None, &mut form)?;
            write_maybe_bytes(&Some(b"world".to_vec()), &mut form)
        })
        .expect("write");
        assert_eq!(aside, b"helloworld");
        assert!(form.len() < 12, "the form holds lengths, not bytes");
        let (a, b, c) = read_with(0, &aside, || {
            let r = &mut form.as_slice();
            (read_bytes(r), read_maybe_bytes(r), read_maybe_bytes(r))
        });
        assert_eq!(a.expect("a"), b"hello");
        assert_eq!(b.expect("b"), None);
        assert_eq!(c.expect("c"), Some(b"world".to_vec()));
        let short = read_with(0, b"hel", || read_bytes(&mut form.as_slice()));
        assert!(short.is_err(), "5 bytes claimed, 3 set aside");
    }
}
