//! AEDAT 4.0 files on disk: the positioned reader (workers read packet bodies by offset), which
//! the in-memory `aedat4` target never reaches, with two decode threads: the one target that
//! drives the threaded path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"#!AER-DAT4.0\r\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain_file(&bytes);
});
