//! Hashing for the stream table: stream ids are `u32`s, and SipHash spends far more on each
//! lookup than a table of at most a few thousand entries needs.
//!
//! The peer chooses the ids it opens, so a hash it could predict would let it pile every open
//! stream into one probe sequence. Each table gets its own random key from the standard
//! library's `RandomState`; without the key a peer cannot aim its ids at a collision.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`IdHasher`]s with one table's secret key.
#[derive(Clone, Debug)]
pub(crate) struct IdHashState {
    key: u64,
}

impl IdHashState {
    /// A state with a fresh random key.
    pub(crate) fn new() -> IdHashState {
        IdHashState {
            key: RandomState::new().hash_one(0x006d_6963_726f_u64),
        }
    }
}

impl Default for IdHashState {
    fn default() -> IdHashState {
        IdHashState::new()
    }
}

impl BuildHasher for IdHashState {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            key: self.key,
            hash: 0,
        }
    }
}

/// A keyed multiply-and-fold hash of one `u32`.
#[derive(Debug)]
pub(crate) struct IdHasher {
    key: u64,
    hash: u64,
}

impl Hasher for IdHasher {
    fn write_u32(&mut self, id: u32) {
        let x = (u64::from(id) ^ self.key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // Fold the high bits, which the multiply mixes best, into the low ones the table uses
        // for the bucket.
        self.hash = x ^ (x >> 29) ^ self.key.rotate_left(17);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u32` keys are hashed here; any other input still hashes soundly.
        for &byte in bytes {
            self.write_u32(u32::from(byte) ^ (self.hash as u32).rotate_left(8));
        }
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sequential_ids_spread_over_the_buckets() {
        let state = IdHashState::new();
        // The low 10 bits pick among 1024 buckets: 4096 consecutive ids must not crowd.
        let buckets: HashSet<u64> = (1..=4096u32).map(|id| state.hash_one(id) & 1023).collect();
        assert!(buckets.len() > 900, "{} buckets used", buckets.len());
    }

    #[test]
    fn tables_have_their_own_keys() {
        let (a, b) = (IdHashState::new(), IdHashState::new());
        let same = (0..64u32)
            .filter(|&id| a.hash_one(id) == b.hash_one(id))
            .count();
        assert!(same < 4);
    }
}
