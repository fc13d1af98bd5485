//! A dataset root's text files (label files, trial lists, labels CSV, class mappings) and a
//! results file to resume from: opening them never panics, whatever they hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::dataset::fuzz_text_files(data);
});
