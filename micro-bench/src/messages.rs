//! The messages both sides exchange, and the random words the servers answer with.
//!
//! Both the baseline and micro encode them with rmp-serde's named (struct-as-map) encoding, so
//! the same message is the same bytes on either connection.

use std::cell::Cell;

use serde::{Deserialize, Serialize};

/// A request for `count` random words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SRequest {
    /// How many words to answer with.
    pub(crate) count: i64,
}

/// Random words: one per reply in the streaming workloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SResponse {
    /// The words, 3 to 6 lower-case letters each.
    pub(crate) value: Vec<String>,
}

/// An opaque payload, encoded as MessagePack bin (not an array of integers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bytes {
    /// The payload.
    #[serde(with = "serde_bytes")]
    pub(crate) data: Vec<u8>,
}

impl SRequest {
    /// The one request every workload sends: one word, please.
    pub(crate) const ONE_WORD: SRequest = SRequest { count: 1 };

    /// `count` as a length, refusing negative counts.
    pub(crate) fn words(self) -> Result<usize, String> {
        usize::try_from(self.count).map_err(|_| format!("negative count {}", self.count))
    }
}

impl SResponse {
    /// A reply of `count` fresh random words.
    pub(crate) fn random(count: usize) -> SResponse {
        SResponse {
            value: (0..count).map(|_| random_word()).collect(),
        }
    }

    /// Checks that the reply holds `count` words of 3 to 6 lower-case letters, so a reply that
    /// was not really decoded, or came back empty, fails the run.
    pub(crate) fn check(&self, count: usize) -> Result<(), String> {
        if self.value.len() != count {
            return Err(format!("expected {count} words, got {}", self.value.len()));
        }
        match self.value.iter().find(|w| !is_word(w)) {
            Some(bad) => Err(format!("not a 3-6 letter word: {bad:?}")),
            None => Ok(()),
        }
    }
}

impl Bytes {
    /// `len` bytes of a fixed, non-constant pattern.
    pub(crate) fn pattern(len: usize) -> Bytes {
        Bytes {
            data: (0..len).map(|i| (i * 131 + i / 4096) as u8).collect(),
        }
    }
}

fn is_word(word: &str) -> bool {
    (3..=6).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase())
}

thread_local! {
    /// xorshift64 state: one generator per thread, so both servers (which share the server
    /// thread) draw words at the same cost.
    static RNG: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) };
}

/// A random word of 3 to 6 lower-case letters, from one draw of the generator.
pub(crate) fn random_word() -> String {
    let mut bits = RNG.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    });
    let len = 3 + (bits & 3) as usize;
    bits >>= 2;
    let mut word = String::with_capacity(len);
    for _ in 0..len {
        word.push(char::from(b'a' + (bits % 26) as u8));
        bits /= 26;
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_three_to_six_letters() {
        for _ in 0..1000 {
            let reply = SResponse::random(1);
            reply.check(1).unwrap();
        }
    }

    #[test]
    fn structs_encode_as_maps() {
        let bytes = rmp_serde::to_vec_named(&SRequest { count: 2 }).unwrap();
        assert_eq!(bytes, b"\x81\xa5count\x02");
        let bin = rmp_serde::to_vec_named(&Bytes { data: vec![7] }).unwrap();
        assert_eq!(bin, b"\x81\xa4data\xc4\x01\x07");
    }
}
