//! Any input: format detection, then whichever decoder it picks (headers included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
