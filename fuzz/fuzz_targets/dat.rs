//! Prophesee DAT: the type and size bytes and the 8-byte records after a fixed header (the
//! header lines themselves are reached by the `detect` target).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Version 1 or 2 by the first byte, so both bit layouts are reached.
    let (version, rest) = match data.split_first() {
        Some((v, rest)) => (if v & 1 == 0 { "2" } else { "1" }, rest),
        None => ("2", data),
    };
    let mut bytes = format!("% Version {version}\n% Width 640\n% Height 480\n% T0 5\n").into_bytes();
    bytes.extend_from_slice(rest);
    safed::events::fuzz_drain(bytes);
});
