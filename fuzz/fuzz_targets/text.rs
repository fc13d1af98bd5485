//! Text events: `t x y p` lines (seconds) or, when the input starts with the CSV header, µs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::fuzz_drain_as(data.to_vec(), safed::events::Format::Text);
});
