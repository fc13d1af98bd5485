//! The live AEDAT4 stream as a server sends it (IO header first, no magic line).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::fuzz_drain_stream(data.to_vec());
});
