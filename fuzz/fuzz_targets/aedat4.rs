//! AEDAT 4.0 files: the IO header, packets, LZ4/zstd bodies, flatbuffers (decoded inline; the
//! worker threads are driven by `aedat4_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"#!AER-DAT4.0\r\n".to_vec();
    bytes.extend_from_slice(data);
    safed::events::fuzz_drain(bytes);
});
