//! The byte form of a connection's state while it is parked (see
//! `flows::parking`): the analyzer's own types, written and read back
//! exactly by borsh's derives, so that no field can be forgotten.
//!
//! borsh rather than a hand-written codec: the state spans some thirty
//! types that change as the analyzer grows, and a derive keeps the form
//! exact by construction (compactness comes from compressing many forms
//! together, not from the encoding). bincode was the other candidate; it
//! is no longer maintained.
//!
//! borsh reads a `Box<T>` only for `T: Clone`; the helpers here read
//! boxes of state that is not `Clone` (nor should be).

use std::io::{self, Read};

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
