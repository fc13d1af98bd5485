//! Prophesee EVT 2.0 words.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"% evt 2.0\n% format EVT2;width=640;height=480\n% end\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
