//! An event packet built in the memory of the `Vec<Event>` it becomes. `Event` is `repr(C)` in
//! AEDAT4's 16-byte record layout, so the packet's flatbuffer can be written straight into the
//! vector's allocation (by `pread` for uncompressed files, by libzstd for ZSTD ones), verified
//! there, and its records moved to the front: no second pass copies the events out.

use super::schema::{identifier, size_prefixed_root, EventPacket};
use crate::events::Event;

/// A `Vec<Event>`'s allocation used as a byte buffer: `filled` bytes from its start are
/// initialised (a flatbuffer being written); its length stays 0 until `finish`.
pub struct EventBytes {
    events: Vec<Event>,
    filled: usize,
}

impl EventBytes {
    /// Room for a flatbuffer of `size` bytes (the records it holds take fewer).
    pub fn with_capacity(size: usize) -> Self {
        EventBytes { events: Vec::with_capacity(size / 16 + 1), filled: 0 }
    }

    pub fn filled(&self) -> usize {
        self.filled
    }

    /// The uninitialised bytes after `filled`, for a writer that takes a pointer and length.
    pub fn spare(&mut self) -> (*mut u8, usize) {
        let capacity = self.events.capacity() * 16;
        // SAFETY: `filled <= capacity` (every writer is given at most the spare room).
        (unsafe { self.events.as_mut_ptr().cast::<u8>().add(self.filled) }, capacity - self.filled)
    }

    /// Marks `n` more bytes written.
    ///
    /// # Safety
    /// The `n` bytes after `filled` must have been initialised.
    pub unsafe fn advance(&mut self, n: usize) {
        debug_assert!(self.filled + n <= self.events.capacity() * 16);
        self.filled += n;
    }

    /// Verifies the filled bytes as an `EVTS` flatbuffer and turns them into its events: the
    /// records are moved to the front (in cache) and each polarity byte is made 0/1.
    pub fn finish(mut self) -> Result<Vec<Event>, String> {
        let base = self.events.as_mut_ptr().cast::<u8>();
        // SAFETY: the first `filled` bytes are initialised (`advance`'s contract).
        let body = unsafe { std::slice::from_raw_parts(base.cast_const(), self.filled) };
        if identifier(body) != Some(b"EVTS".as_slice()) {
            return Err(format!(
                "expected a EVTS flatbuffer, found identifier {:?}",
                identifier(body).map(String::from_utf8_lossy)
            ));
        }
        let packet = size_prefixed_root::<EventPacket>(body).map_err(|e| format!("invalid flatbuffer: {e}"))?;
        let records = packet.element_bytes();
        let count = records.len() / 16;
        if count == 0 {
            // No vector (or an empty one): `records` may not even point into `body`.
            return Ok(Vec::new());
        }
        let start = records.as_ptr() as usize - body.as_ptr() as usize;
        // SAFETY: the records lie inside the initialised bytes (the verifier checked the
        // vector's bounds); `copy` allows the overlap. Each record then holds an Event's bytes:
        // any i64 / u16 bits are valid, the padding may hold anything, and the polarity byte is
        // set to 0 or 1 before the length makes the records visible as `Event`s.
        unsafe {
            std::ptr::copy(base.add(start), base, count * 16);
            for i in 0..count {
                let p = base.add(i * 16 + 12);
                *p = u8::from(*p != 0);
            }
            self.events.set_len(count);
        }
        Ok(self.events)
    }
}

/// libzstd writes into the spare room directly.
// SAFETY: `as_slice` covers only initialised bytes, `capacity` and `as_mut_ptr` describe the
// allocation from its start, and `filled_until` is only told what libzstd wrote.
unsafe impl zstd::zstd_safe::WriteBuf for EventBytes {
    fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes are initialised.
        unsafe { std::slice::from_raw_parts(self.events.as_ptr().cast::<u8>(), self.filled) }
    }

    fn capacity(&self) -> usize {
        self.events.capacity() * 16
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.events.as_mut_ptr().cast()
    }

    unsafe fn filled_until(&mut self, n: usize) {
        self.filled = n;
    }
}
