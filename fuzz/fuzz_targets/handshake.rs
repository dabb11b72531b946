//! The preface check and both halves of the handshake on arbitrary peer bytes.
//! Input: what the peer sends; see `micro_core::fuzzing::handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| micro_core::fuzzing::handshake(data));
