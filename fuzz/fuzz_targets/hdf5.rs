//! HDF5 files (DSEC's layout) on disk, through libhdf5 and our checks of what it hands back:
//! datasets missing, of other types, shapes or lengths, values out of range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::fuzz_drain_hdf5(data);
});
