//! `t,x,y,p` CSV, t in µs, p 1/0: what `safed dump` prints and the text reader takes back
//! (and faery's CSV reader, with its `t,x,y,on` column order).

use std::fs::File;
use std::io::{BufWriter, Write};

use super::{io_error, EventWriter, Target, WriteError};
use crate::events::Event;

/// The header line.
pub const HEADER: &[u8] = b"t,x,y,p\n";

/// Appends one event's line to `line` (itoa: this is `dump`'s hot loop too).
pub fn push_line(line: &mut Vec<u8>, num: &mut itoa::Buffer, e: &Event) {
    line.extend_from_slice(num.format(e.t).as_bytes());
    line.push(b',');
    line.extend_from_slice(num.format(e.x).as_bytes());
    line.push(b',');
    line.extend_from_slice(num.format(e.y).as_bytes());
    line.extend_from_slice(if e.p { b",1\n" } else { b",0\n" });
}

pub struct CsvOut {
    path: String,
    out: BufWriter<File>,
    line: Vec<u8>,
}

impl CsvOut {
    pub fn create(target: &Target) -> Result<Self, WriteError> {
        let file = File::create(&target.path).map_err(io_error(&target.path))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(HEADER).map_err(io_error(&target.path))?;
        Ok(CsvOut { path: target.path.clone(), out, line: Vec::with_capacity(64) })
    }
}

impl EventWriter for CsvOut {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        let mut num = itoa::Buffer::new();
        self.line.clear();
        for e in events {
            push_line(&mut self.line, &mut num, e);
        }
        self.out.write_all(&self.line).map_err(io_error(&self.path))
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        self.out.flush().map_err(io_error(&self.path))
    }
}
