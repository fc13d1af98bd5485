//! NumPy `.npz` out: arrays `t` (int64 µs), `x`, `y` (uint16), `p` (bool), as our reader and
//! `numpy.load` take them. An `.npy` states its length before its data, so the columns are
//! spooled to files beside the output and copied into the archive at the end: memory stays at
//! one batch whatever the length.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};

use npyz::WriterBuilder;

use super::{io_error, EventWriter, Target, WriteError};
use crate::events::Event;

const COLUMNS: [&str; 4] = ["t", "x", "y", "p"];

pub struct NpzOut {
    path: String,
    spools: Vec<(String, BufWriter<File>)>,
    len: u64,
}

impl NpzOut {
    pub fn create(target: &Target) -> Result<Self, WriteError> {
        let mut spools = Vec::new();
        for name in COLUMNS {
            let spool = format!("{}.{name}.spool", target.path);
            let file = File::create(&spool).map_err(io_error(&spool))?;
            spools.push((spool, BufWriter::with_capacity(1 << 18, file)));
        }
        Ok(NpzOut { path: target.path.clone(), spools, len: 0 })
    }

    fn copy_column<T: npyz::AutoSerialize + Copy>(
        &self,
        npz: &mut npyz::npz::NpzWriter<BufWriter<File>>,
        column: usize,
        decode: impl Fn(&[u8]) -> T,
    ) -> std::io::Result<()> {
        let width = std::mem::size_of::<T>().max(1);
        let mut writer =
            npz.array::<T>(COLUMNS[column], Default::default())?.default_dtype().shape(&[self.len]).begin_nd()?;
        let mut spool = BufReader::with_capacity(1 << 18, File::open(&self.spools[column].0)?);
        let mut buf = vec![0u8; width << 14];
        let mut left = self.len as usize * width;
        while left > 0 {
            let n = buf.len().min(left);
            spool.read_exact(&mut buf[..n])?;
            for value in buf[..n].chunks_exact(width) {
                writer.push(&decode(value))?;
            }
            left -= n;
        }
        writer.finish()
    }
}

impl EventWriter for NpzOut {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        for e in events {
            let columns: [&[u8]; 4] = [&e.t.to_le_bytes(), &e.x.to_le_bytes(), &e.y.to_le_bytes(), &[u8::from(e.p)]];
            for ((spool, out), bytes) in self.spools.iter_mut().zip(columns) {
                out.write_all(bytes).map_err(io_error(spool))?;
            }
        }
        self.len += events.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        for (spool, out) in &mut self.spools {
            out.flush().map_err(io_error(spool))?;
        }
        let result = (|| {
            let file = BufWriter::with_capacity(1 << 20, File::create(&self.path)?);
            let mut npz = npyz::npz::NpzWriter::new(file);
            self.copy_column(&mut npz, 0, |b| i64::from_le_bytes(b.try_into().unwrap_or_default()))?;
            self.copy_column(&mut npz, 1, |b| u16::from_le_bytes(b.try_into().unwrap_or_default()))?;
            self.copy_column(&mut npz, 2, |b| u16::from_le_bytes(b.try_into().unwrap_or_default()))?;
            self.copy_column(&mut npz, 3, |b| b[0] != 0)?;
            npz.zip_writer().finish()?.flush()
        })();
        for (spool, _) in &self.spools {
            let _ = fs::remove_file(spool);
        }
        result.map_err(io_error(&self.path))
    }
}
