//! Compact event files as HARDVS ships them: a NumPy `.npz` archive with one-dimensional arrays
//! `t`, `x`, `y`, `p` (any integer, float or bool dtype). One file is one short clip, so the
//! arrays are read whole, under a hard cap, and handed out in batches.

use std::io::{BufRead, Cursor, Read};

use npyz::npz::NpzArchive;

use super::{ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

/// Largest archive we read into memory, and most events we accept from one.
pub const MAX_FILE: u64 = 1 << 30;
pub const MAX_EVENTS: u64 = 64 << 20;
const BATCH: usize = 1 << 16;

pub struct NpzSource {
    name: String,
    info: SourceInfo,
    t: Vec<i64>,
    x: Vec<i64>,
    y: Vec<i64>,
    p: Vec<i64>,
    next: usize,
}

impl NpzSource {
    pub fn open<R: BufRead>(reader: R, name: &str) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        let mut bytes = Vec::new();
        input.read_into_vec_up_to(&mut bytes, MAX_FILE + 1)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(input.place().too_large("an .npz archive", bytes.len() as u64, MAX_FILE));
        }
        let place = input.place().clone();
        let bad = |what: String| place.malformed_at(0, what);
        let mut archive =
            NpzArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a readable .npz (zip) archive: {e}")))?;
        let mut column = |key: &str| -> Result<Vec<i64>, EventError> {
            let file = archive
                .by_name(key)
                .map_err(|e| bad(format!("array {key:?}: {e}")))?
                .ok_or_else(|| bad(format!("no array {key:?} (expected arrays t, x, y, p)")))?;
            read_column(file).map_err(|what| bad(format!("array {key:?}: {what}")))
        };
        let (t, x, y, p) = (column("t")?, column("x")?, column("y")?, column("p")?);
        if x.len() != t.len() || y.len() != t.len() || p.len() != t.len() {
            return Err(bad(format!(
                "arrays differ in length: t {}, x {}, y {}, p {}",
                t.len(),
                x.len(),
                y.len(),
                p.len()
            )));
        }
        for (key, col, max) in [("x", &x, u16::MAX as i64), ("y", &y, u16::MAX as i64), ("p", &p, 1)] {
            if let Some(i) = col.iter().position(|v| !(0..=max).contains(v)) {
                return Err(bad(format!("{key}[{i}] = {} is outside 0..={max}", col[i])));
            }
        }
        // The file states no sensor size: it is the bounding box of what was recorded.
        let size = (!x.is_empty()).then(|| {
            let w = x.iter().max().copied().unwrap_or(0) + 1;
            let h = y.iter().max().copied().unwrap_or(0) + 1;
            (w as u16, h as u16)
        });
        let info = SourceInfo::single_event_stream(Format::Npz, size, None);
        Ok(NpzSource { name: name.to_string(), info, t, x, y, p, next: 0 })
    }
}

/// Reads a 1-D array of any numeric dtype as i64; floats must hold whole numbers.
fn read_column<R: Read>(file: npyz::NpyFile<R>) -> Result<Vec<i64>, String> {
    if file.shape().len() != 1 {
        return Err(format!("shape {:?} (expected one dimension)", file.shape()));
    }
    if file.len() > MAX_EVENTS {
        return Err(format!("{} elements, over the limit of {MAX_EVENTS}", file.len()));
    }
    let descr = file.dtype().descr().trim_matches('\'').to_string();
    let io = |e: std::io::Error| e.to_string();
    macro_rules! ints {
        ($t:ty) => {
            file.into_vec::<$t>().map_err(io)?.into_iter().map(|v| v as i64).collect()
        };
    }
    Ok(match descr.get(1..).unwrap_or("") {
        "i1" => ints!(i8),
        "i2" => ints!(i16),
        "i4" => ints!(i32),
        "i8" => ints!(i64),
        "u1" => ints!(u8),
        "u2" => ints!(u16),
        "u4" => ints!(u32),
        "u8" => {
            let v = file.into_vec::<u64>().map_err(io)?;
            v.into_iter()
                .map(|v| i64::try_from(v).map_err(|_| format!("value {v} beyond i64")))
                .collect::<Result<_, _>>()?
        }
        "b1" => file.into_vec::<bool>().map_err(io)?.into_iter().map(i64::from).collect(),
        "f4" => whole(file.into_vec::<f32>().map_err(io)?.into_iter().map(f64::from))?,
        "f8" => whole(file.into_vec::<f64>().map_err(io)?.into_iter())?,
        _ => return Err(format!("dtype {descr} (expected integers, floats or bools)")),
    })
}

fn whole(values: impl Iterator<Item = f64>) -> Result<Vec<i64>, String> {
    values
        .map(|v| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(format!("value {v} is not a whole number"))
            }
        })
        .collect()
}

impl EventSource for NpzSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let (start, end) = (self.next, (self.next + BATCH).min(self.t.len()));
        if start >= end {
            return Ok(None);
        }
        self.next = end;
        let events = (start..end)
            .map(|i| Event { t: self.t[i], x: self.x[i] as u16, y: self.y[i] as u16, p: self.p[i] != 0 })
            .collect();
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}

/// Writes events as HARDVS's compact files hold them: arrays t (i64, µs), x, y (u16) and p
/// (u8, 1 = ON) in an uncompressed `.npz` (what `numpy.savez` writes).
pub fn write(path: &std::path::Path, events: &[Event]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut npz = npyz::npz::NpzWriter::new(file);
    let n = events.len() as u64;
    fn column<W: std::io::Write + std::io::Seek, T: npyz::Serialize + npyz::AutoSerialize>(
        npz: &mut npyz::npz::NpzWriter<W>,
        name: &str,
        n: u64,
        values: impl Iterator<Item = T>,
    ) -> std::io::Result<()> {
        use npyz::WriterBuilder;
        let mut w = npz.array::<T>(name, Default::default())?.default_dtype().shape(&[n]).begin_nd()?;
        w.extend(values)?;
        w.finish()
    }
    column(&mut npz, "t", n, events.iter().map(|e| e.t))?;
    column(&mut npz, "x", n, events.iter().map(|e| e.x))?;
    column(&mut npz, "y", n, events.iter().map(|e| e.y))?;
    column(&mut npz, "p", n, events.iter().map(|e| e.p as u8))?;
    Ok(())
}
