//! ATIS `.bin` records, read as `--input-format atis-bin` reads them; the guess that takes a
//! file for ATIS without the flag is reached by the `detect` target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::fuzz_drain_as(data.to_vec(), safed::events::Format::AtisBin);
});
