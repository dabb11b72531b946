//! Message bodies, arguments, metadata blocks and a stream's message reassembly.
//! Input: `[decoder, rest…]`: the low two bits of the first byte pick the decoder, the rest is
//! its input (see the functions of `micro_core::fuzzing` named below).
#![no_main]

use libfuzzer_sys::fuzz_target;
use micro_core::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&decoder, rest)) = data.split_first() else {
        return;
    };
    match decoder % 4 {
        0 => fuzzing::message(rest),
        1 => fuzzing::args(rest),
        2 => fuzzing::metadata(rest),
        _ => fuzzing::inbound(rest),
    }
});
