//! Prophesee EVT 3.0 words: vectors, time wrap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"% evt 3.0\n% format EVT3;width=1280;height=720\n% end\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
