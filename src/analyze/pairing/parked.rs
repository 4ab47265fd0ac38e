//! The pairer's state in a parked form (see `flows::parking`): derived
//! but for an application protocol's codec, which has none (its
//! connection stays live, and is evicted rather than parked).

use std::io::{Read, Result, Write};

use super::AppMode;
use crate::analyze::parked_form::not_parked;

impl borsh::BorshSerialize for AppMode {
    fn serialize<W: Write>(&self, _: &mut W) -> Result<()> {
        Err(not_parked("an application protocol's codec"))
    }
}

impl borsh::BorshDeserialize for AppMode {
    fn deserialize_reader<R: Read>(_: &mut R) -> Result<Self> {
        Err(not_parked("an application protocol's codec"))
    }
}
