//! `t,x,y,p` CSV, t in µs, p 1/0: what `safed dump` prints and the text reader takes back
//! (and faery's CSV reader, with its `t,x,y,on` column order).

use std::fs::File;
use std::io::{BufWriter, Write};

use super::{io_error, EventWriter, Target, WriteError};
use crate::events::Event;

pub struct CsvOut {
    path: String,
    out: BufWriter<File>,
    line: Vec<u8>,
}

impl CsvOut {
    pub fn create(target: &Target) -> Result<Self, WriteError> {
        let file = File::create(&target.path).map_err(io_error(&target.path))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(b"t,x,y,p\n").map_err(io_error(&target.path))?;
        Ok(CsvOut { path: target.path.clone(), out, line: Vec::with_capacity(64) })
    }
}

impl EventWriter for CsvOut {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        let mut num = itoa::Buffer::new();
        for e in events {
            self.line.clear();
            self.line.extend_from_slice(num.format(e.t).as_bytes());
            self.line.push(b',');
            self.line.extend_from_slice(num.format(e.x).as_bytes());
            self.line.push(b',');
            self.line.extend_from_slice(num.format(e.y).as_bytes());
            self.line.extend_from_slice(if e.p { b",1\n" } else { b",0\n" });
            self.out.write_all(&self.line).map_err(io_error(&self.path))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        self.out.flush().map_err(io_error(&self.path))
    }
}
