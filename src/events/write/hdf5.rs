//! HDF5 out in DSEC's layout: `events/{x,y}` uint16, `events/t` int64 µs after `t_offset`,
//! `events/p` uint8, the scalar `t_offset` (the first event's time) and `ms_to_idx` (for each
//! millisecond after `t_offset`, the index of its first event), as h5py reads them. Datasets
//! grow by batch (chunked, deflate level 4: every HDF5 reader has deflate, not every one has
//! Blosc); width and height go in attributes of `events`.

use hdf5::{Dataset, File, H5Type};

use super::{EventWriter, Target, WriteError};
use crate::events::Event;

const CHUNK: usize = 1 << 16;

pub struct Hdf5Out {
    path: String,
    file: File,
    columns: Option<Columns>,
    size: Option<(u16, u16)>,
    len: usize,
    t_offset: i64,
    /// The next millisecond `ms_to_idx` will get an entry for.
    next_ms: i64,
    /// The last time written (i64::MIN before the first).
    last_t: i64,
    t: Vec<i64>,
    x: Vec<u16>,
    y: Vec<u16>,
    p: Vec<u8>,
    ms: Vec<u64>,
}

struct Columns {
    t: Dataset,
    x: Dataset,
    y: Dataset,
    p: Dataset,
    ms_to_idx: Dataset,
}

impl Hdf5Out {
    pub fn create(target: &Target) -> Result<Self, WriteError> {
        let path = target.path.clone();
        let file =
            File::create(&path).map_err(|e| WriteError::Unsupported { output: path.clone(), what: e.to_string() })?;
        Ok(Hdf5Out {
            path,
            file,
            columns: None,
            size: target.size,
            len: 0,
            t_offset: 0,
            next_ms: 0,
            last_t: i64::MIN,
            t: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            p: Vec::new(),
            ms: Vec::new(),
        })
    }

    fn error(&self) -> impl Fn(hdf5::Error) -> WriteError + '_ {
        |e| WriteError::Unsupported { output: self.path.clone(), what: e.to_string() }
    }

    fn start(&mut self, t_offset: i64) -> hdf5::Result<()> {
        let events = self.file.create_group("events")?;
        fn column<T: H5Type>(g: &hdf5::Group, name: &str) -> hdf5::Result<Dataset> {
            g.new_dataset::<T>().chunk(CHUNK).shape((0..,)).deflate(4).create(name)
        }
        let columns = Columns {
            t: column::<i64>(&events, "t")?,
            x: column::<u16>(&events, "x")?,
            y: column::<u16>(&events, "y")?,
            p: column::<u8>(&events, "p")?,
            ms_to_idx: self.file.new_dataset::<u64>().chunk(CHUNK).shape((0..,)).deflate(4).create("ms_to_idx")?,
        };
        if let Some((w, h)) = self.size {
            events.new_attr::<u16>().create("width")?.write_scalar(&w)?;
            events.new_attr::<u16>().create("height")?.write_scalar(&h)?;
        }
        self.file.new_dataset::<i64>().create("t_offset")?.write_scalar(&t_offset)?;
        self.t_offset = t_offset;
        self.columns = Some(columns);
        Ok(())
    }

    fn append(&mut self, events: &[Event]) -> hdf5::Result<()> {
        if self.columns.is_none() {
            self.start(events.first().map_or(0, |e| e.t))?;
        }
        self.t.clear();
        self.x.clear();
        self.y.clear();
        self.p.clear();
        self.ms.clear();
        for (i, e) in events.iter().enumerate() {
            let t = e.t - self.t_offset;
            while self.next_ms * 1000 <= t {
                self.ms.push((self.len + i) as u64);
                self.next_ms += 1;
            }
            self.t.push(t);
            self.x.push(e.x);
            self.y.push(e.y);
            self.p.push(u8::from(e.p));
        }
        let Some(c) = &self.columns else { return Ok(()) };
        append(&c.t, &self.t)?;
        append(&c.x, &self.x)?;
        append(&c.y, &self.y)?;
        append(&c.p, &self.p)?;
        append(&c.ms_to_idx, &self.ms)?;
        self.len += events.len();
        Ok(())
    }
}

/// Grows a one-dimensional dataset by `data`.
fn append<T: H5Type>(ds: &Dataset, data: &[T]) -> hdf5::Result<()> {
    let from = ds.size();
    ds.resize(from + data.len())?;
    ds.write_slice(data, from..from + data.len())
}

impl EventWriter for Hdf5Out {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        // In order within the batch and after the last one written (ms_to_idx counts on it).
        let mut last = self.last_t;
        if let Some(i) = events.iter().position(|e| std::mem::replace(&mut last, e.t) > e.t) {
            let what = "ms_to_idx needs times in order";
            return Err(super::unrepresentable(&self.path, (self.len + i) as u64, &events[i], what));
        }
        self.last_t = last;
        self.append(events).map_err(self.error())
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        if self.columns.is_none() {
            self.start(0).map_err(self.error())?;
        }
        self.file.flush().map_err(self.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Format;

    #[test]
    fn a_step_back_between_batches_is_refused_like_one_inside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.h5").display().to_string();
        let target = Target { path, format: Format::Hdf5, size: None, frames: false };
        let e = |t| Event { t, x: 1, y: 2, p: true };
        let mut out = Hdf5Out::create(&target).unwrap();
        out.write_events(&[e(5), e(7)]).unwrap();
        let err = out.write_events(&[e(6)]).unwrap_err().to_string();
        assert!(err.contains("event 2 (t 6") && err.contains("in order"), "{err}");
        let err = out.write_events(&[e(8), e(7)]).unwrap_err().to_string();
        assert!(err.contains("event 3 (t 7"), "{err}");
    }
}
