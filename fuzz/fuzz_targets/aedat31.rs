//! AEDAT 3.1: packet headers, polarity and frame events.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"#!AER-DAT3.1\r\n#!END-HEADER\r\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
