//! The flow table's key: an address pair in a canonical order.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// Address pair in a canonical order, the same for both directions.
///
/// IPv4 pairs (nearly every capture's) are two integers, address and port of
/// each end packed into 48 bits, so building, hashing and comparing a key
/// costs a few instructions; other pairs keep their `SocketAddr`s, boxed
/// so that every key of the table stays 24 bytes (not 72).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    /// Both ends IPv4: `ip << 16 | port` of each end, the lower first.
    V4(u64, u64),
    /// Anything else (IPv6), the lower end first.
    Other(Box<(SocketAddr, SocketAddr)>),
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Key::V4(a, b) => h.write_u128(u128::from(*a) << 64 | u128::from(*b)),
            Key::Other(pair) => {
                pair.0.hash(h);
                pair.1.hash(h);
            }
        }
    }
}

/// The key of the pair `a`, `b`, whatever their order.
pub(super) fn key(a: SocketAddr, b: SocketAddr) -> Key {
    match (a, b) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => {
            let pack =
                |s: std::net::SocketAddrV4| u64::from(s.ip().to_bits()) << 16 | u64::from(s.port());
            let (a, b) = (pack(a), pack(b));
            Key::V4(a.min(b), a.max(b))
        }
        _ if a <= b => Key::Other(Box::new((a, b))),
        _ => Key::Other(Box::new((b, a))),
    }
}
