//! A reader that knows its byte offset and turns short reads into errors that say where.

use std::io::{self, BufRead, Read};

use super::{EventError, Place};

pub struct ByteInput<R> {
    inner: R,
    place: Place,
}

impl<R: BufRead> ByteInput<R> {
    pub fn new(inner: R, input: impl Into<String>) -> Self {
        ByteInput { inner, place: Place::new(input) }
    }

    pub fn place(&self) -> &Place {
        &self.place
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    pub fn offset(&self) -> u64 {
        self.place.offset
    }

    /// Fills `buf` completely; `expected` names what was being read, for the error.
    pub fn read_exact(&mut self, buf: &mut [u8], expected: &str) -> Result<(), EventError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.place.offset += filled as u64;
                    return Err(self.place.truncated(format!("{expected} ({} bytes, got {filled})", buf.len())));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.place.io(e)),
            }
        }
        self.place.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads as many bytes as are available up to `buf.len()`; 0 only at the end of the input.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, EventError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.place.io(e)),
            }
        }
        self.place.offset += filled as u64;
        Ok(filled)
    }

    /// The next byte without consuming it, or `None` at the end of the input.
    pub fn peek_byte(&mut self) -> Result<Option<u8>, EventError> {
        loop {
            match self.inner.fill_buf() {
                Ok(buf) => return Ok(buf.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.place.io(e)),
            }
        }
    }

    /// Reads one byte, or `None` at the end of the input.
    pub fn read_byte(&mut self) -> Result<Option<u8>, EventError> {
        let mut b = [0u8; 1];
        Ok(match self.read_some(&mut b)? {
            0 => None,
            _ => Some(b[0]),
        })
    }

    /// Appends exactly `n` bytes to `out`, growing it as data arrives (a lying length costs
    /// nothing until the bytes are really there).
    pub fn read_into_vec(&mut self, out: &mut Vec<u8>, n: u64, expected: &str) -> Result<(), EventError> {
        let before = out.len();
        let got = (&mut self.inner).take(n).read_to_end(out).map_err(|e| self.place.io(e))? as u64;
        debug_assert_eq!(out.len() - before, got as usize);
        self.place.offset += got;
        if got < n {
            return Err(self.place.truncated(format!("{expected} ({n} bytes, got {got})")));
        }
        Ok(())
    }

    /// Hands the next `n` bytes to `f`: straight from the read buffer when it holds them all
    /// (no copy), else gathered into `scratch`.
    pub fn with_bytes<T>(
        &mut self,
        n: u64,
        scratch: &mut Vec<u8>,
        expected: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, EventError> {
        let buffered = loop {
            match self.inner.fill_buf() {
                Ok(buf) => break buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.place.io(e)),
            }
        };
        if let Some(bytes) = usize::try_from(n).ok().and_then(|n| buffered.get(..n)) {
            let result = f(bytes);
            self.inner.consume(n as usize);
            self.place.offset += n;
            return Ok(result);
        }
        scratch.clear();
        self.read_into_vec(scratch, n, expected)?;
        Ok(f(scratch))
    }

    /// Appends up to `n` bytes (fewer at the end of the input) to `out`.
    pub fn read_into_vec_up_to(&mut self, out: &mut Vec<u8>, n: u64) -> Result<(), EventError> {
        let got = (&mut self.inner).take(n).read_to_end(out).map_err(|e| self.place.io(e))? as u64;
        self.place.offset += got;
        Ok(())
    }

    /// Reads and discards `n` bytes.
    pub fn skip(&mut self, n: u64, expected: &str) -> Result<(), EventError> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|e| self.place.io(e))?;
        self.place.offset += copied;
        if copied < n {
            return Err(self.place.truncated(format!("{expected} ({n} bytes, got {copied})")));
        }
        Ok(())
    }

    /// Reads a header line ending in LF (CR stripped), at most `limit` bytes, or `None` at EOF.
    pub fn read_line(&mut self, limit: usize) -> Result<Option<Vec<u8>>, EventError> {
        let mut line = Vec::new();
        let start = self.place.offset;
        loop {
            match self.read_byte()? {
                None if line.is_empty() => return Ok(None),
                None => break,
                Some(b'\n') => break,
                Some(b) => {
                    if line.len() >= limit {
                        return Err(self.place.malformed_at(start, format!("header line longer than {limit} bytes")));
                    }
                    line.push(b)
                }
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}
