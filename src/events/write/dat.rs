//! Prophesee DAT out, version 2: `% Version 2`, `% Width`, `% Height`, `% T0` (the first
//! event's time, so that epoch-µs recordings keep their times), then type 12 (CD) and size 8,
//! then records of u32 t - T0 (wrapping every 2^32 µs, as readers unwrap it) and u32 with x in
//! bits 0-13, y in 14-27, polarity in 28.

use std::fs::File;
use std::io::{BufWriter, Write};

use super::{inside, io_error, unrepresentable, EventWriter, Target, WriteError};
use crate::events::Event;

pub struct DatOut {
    path: String,
    out: BufWriter<File>,
    /// The header waits for the first event: it holds T0.
    started: bool,
    size: (u16, u16),
    t0: i64,
    last_t: i64,
    index: u64,
    records: Vec<u8>,
}

impl DatOut {
    pub fn create(target: &Target, size: (u16, u16)) -> Result<Self, WriteError> {
        if size.0 > 1 << 14 || size.1 > 1 << 14 {
            return Err(WriteError::Unsupported {
                output: target.path.clone(),
                what: format!("DAT keeps 14 bits of x and y; the sensor is {}x{}", size.0, size.1),
            });
        }
        let file = File::create(&target.path).map_err(io_error(&target.path))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let path = target.path.clone();
        Ok(DatOut { path, out, started: false, size, t0: 0, last_t: 0, index: 0, records: Vec::new() })
    }

    fn start(&mut self, t0: i64) -> Result<(), WriteError> {
        if self.started {
            return Ok(());
        }
        let (w, h) = self.size;
        write!(self.out, "% Data file containing CD events.\n% Version 2\n% Width {w}\n% Height {h}\n% T0 {t0}\n")
            .and_then(|()| self.out.write_all(&[12, 8]))
            .map_err(io_error(&self.path))?;
        (self.started, self.t0, self.last_t) = (true, t0, t0);
        Ok(())
    }
}

impl EventWriter for DatOut {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        let Some(first) = events.first() else { return Ok(()) };
        self.start(first.t)?;
        self.records.clear();
        for e in events {
            inside(&self.path, self.index, e, self.size)?;
            if e.t < self.last_t {
                let what = "DAT needs times in order from T0 (a step back reads as a 2^32 µs wrap)";
                return Err(unrepresentable(&self.path, self.index, e, what));
            }
            let data = u32::from(e.x) | (u32::from(e.y) << 14) | (u32::from(e.p) << 28);
            self.records.extend_from_slice(&((e.t - self.t0) as u32).to_le_bytes());
            self.records.extend_from_slice(&data.to_le_bytes());
            self.last_t = e.t;
            self.index += 1;
        }
        self.out.write_all(&self.records).map_err(io_error(&self.path))
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        self.start(0)?; // an empty input still gets a header
        self.out.flush().map_err(io_error(&self.path))
    }
}
