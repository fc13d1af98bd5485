//! AEDAT 2.0 (jAER), DAVIS layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
