//! A real micro server on an in-memory pipe, fed arbitrary bytes after a valid handshake (or a
//! corrupted one). Input layout and checks: `micro_fuzz::server`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    micro_fuzz::server::run(data);
});
