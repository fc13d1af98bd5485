//! The Blosc filter for HDF5 (filter id 32001, as PyTables, hdf5plugin and DSEC's files use
//! it), for reading only. A chunk is checked against its real length with
//! `blosc_cbuffer_validate` before c-blosc sees it: the header's sizes are the file's word, and
//! a chunk that lies about them must not send the decompressor past the chunk.

use std::ffi::{c_uint, c_void};
use std::sync::LazyLock;

use hdf5_sys::h5z::{H5Z_class2_t, H5Zregister, H5Z_CLASS_T_VERS, H5Z_FLAG_REVERSE};

const FILTER_ID: hdf5_sys::h5z::H5Z_filter_t = 32001;
/// A chunk that says it holds more than this when decompressed is refused, before allocating.
const MAX_CHUNK_BYTES: usize = 1 << 28;

static REGISTERED: LazyLock<bool> = LazyLock::new(|| {
    let class = H5Z_class2_t {
        version: H5Z_CLASS_T_VERS as _,
        id: FILTER_ID,
        encoder_present: 0,
        decoder_present: 1,
        name: c"blosc (safed, read only)".as_ptr(),
        can_apply: None,
        set_local: None,
        filter: Some(filter),
    };
    // SAFETY: the library copies the class; sync() initialises and locks the library.
    hdf5::sync::sync(|| unsafe { H5Zregister((&class as *const H5Z_class2_t).cast()) >= 0 })
});

/// Registers the filter with the library once; false if the library refused it.
pub fn register() -> bool {
    *REGISTERED
}

/// HDF5's filter callback: replaces `*buf` (nbytes valid of `*buf_size`) with the decompressed
/// chunk and returns its length, or returns 0 (the library's "failed").
unsafe extern "C" fn filter(
    flags: c_uint,
    _cd_nelmts: usize,
    _cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut c_void,
) -> usize {
    if flags & H5Z_FLAG_REVERSE == 0 {
        return 0; // writing Blosc is not offered
    }
    let mut out_len = 0usize;
    // SAFETY: the library hands a buffer of `nbytes` valid bytes; validate reads within it.
    if unsafe { blosc_src::blosc_cbuffer_validate(*buf, nbytes, &mut out_len) } != 0 || out_len > MAX_CHUNK_BYTES {
        return 0;
    }
    // HDF5 frees filter buffers with free(): allocate with malloc.
    let out = unsafe { libc::malloc(out_len.max(1)) };
    if out.is_null() {
        return 0;
    }
    // One thread, no global state: the context variant.
    let n = unsafe { blosc_src::blosc_decompress_ctx(*buf, out, out_len, 1) };
    if n < 0 || n as usize != out_len {
        unsafe { libc::free(out) };
        return 0;
    }
    unsafe {
        libc::free(*buf);
        *buf = out;
        *buf_size = out_len;
    }
    out_len
}
