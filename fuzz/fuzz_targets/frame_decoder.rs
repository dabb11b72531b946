//! The frame codec and frame parser on arbitrary bytes delivered in arbitrary chunks.
//! Input: `[settings, chunk_seed, stream…]`; see `micro_core::fuzzing::frame_codec`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| micro_core::fuzzing::frame_codec(data));
