//! Files read by position: the framer reads only the 8-byte packet headers, and each worker
//! reads its own packet body with `pread` into a buffer it reuses. Reading the page cache is
//! then spread over the workers too, which is what bounds uncompressed files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

#[cfg(target_endian = "little")]
use super::in_place::EventBytes;
use super::{parse_head, PacketHead};
use crate::events::{EventError, Place, StreamKind};

pub struct FileFramer {
    file: Arc<File>,
    place: Place,
    /// Where packets end: the file's length at open, or the data table if it comes first.
    end: u64,
    file_len: u64,
    kinds: Vec<Option<StreamKind>>,
}

impl FileFramer {
    pub fn new(
        file: Arc<File>,
        place: Place,
        data_end: Option<u64>,
        kinds: Vec<Option<StreamKind>>,
    ) -> Result<Self, EventError> {
        let file_len = file.metadata().map_err(|e| place.io(e))?.len();
        let end = data_end.map_or(file_len, |d| d.min(file_len));
        Ok(FileFramer { file, place, end, file_len, kinds })
    }

    /// The next packet's header; its body is left for a worker to read.
    pub fn next(&mut self) -> Result<Option<PacketHead>, EventError> {
        loop {
            let at = self.place.offset;
            if at >= self.end {
                return Ok(None);
            }
            let mut header = [0u8; 8];
            let got = self.file_len.saturating_sub(at).min(8) as usize;
            self.file.read_exact_at(&mut header[..got], at).map_err(|e| self.place.io(e))?;
            if got < 8 {
                self.place.offset = self.file_len;
                return Err(self.place.truncated(format!("a packet header (8 bytes, got {got})")));
            }
            self.place.offset = at + 8;
            let head = parse_head(header, at, &self.kinds, &self.place)?;
            let body_end = head.body_at + head.size;
            if body_end > self.file_len {
                let got = self.file_len - head.body_at;
                self.place.offset = self.file_len;
                return Err(self.place.truncated(format!("a packet body ({} bytes, got {got})", head.size)));
            }
            self.place.offset = body_end;
            if head.kind != StreamKind::Other {
                return Ok(Some(head));
            }
        }
    }
}

/// Reads a packet body at its offset into `buf` (resized, reused).
pub fn read_body(file: &File, head: &PacketHead, buf: &mut Vec<u8>, place: &Place) -> Result<(), EventError> {
    buf.resize(head.size as usize, 0);
    file.read_exact_at(buf, head.body_at).map_err(|err| EventError::Io {
        input: place.input.clone(),
        offset: head.body_at,
        err,
    })
}

/// Reads an uncompressed event packet by position straight into the memory of the events it
/// returns: the one copy is the kernel's, out of the page cache.
#[cfg(target_endian = "little")]
pub fn read_events_in_place(
    file: &File,
    head: &PacketHead,
    place: &Place,
) -> Result<Vec<crate::events::Event>, EventError> {
    use std::os::fd::AsRawFd;

    let size = head.size as usize;
    let mut bytes = EventBytes::with_capacity(size);
    let io_err = |err| EventError::Io { input: place.input.clone(), offset: head.body_at, err };
    while bytes.filled() < size {
        let (spare, _) = bytes.spare();
        let want = size - bytes.filled();
        let at = head.body_at + bytes.filled() as u64;
        // SAFETY: `spare` has room for `size - filled` bytes (capacity >= size); the kernel
        // writes at most `want` of them.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.cast(), want, at as libc::off_t) };
        match n {
            // SAFETY: pread initialised those `n` bytes.
            n if n > 0 => unsafe { bytes.advance(n as usize) },
            0 => return Err(io_err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(io_err(e));
                }
            }
        }
    }
    bytes.finish().map_err(|what| place.malformed_at(head.body_at, what))
}
