//! HDF5 event files as DSEC and evlib write them: one-dimensional datasets `events/x`,
//! `events/y`, `events/t`, `events/p` of equal length (any integer type; t may be a float, then
//! in seconds), an optional scalar `t_offset` (µs) added to every t, and `ms_to_idx` (the index
//! of the first event of each millisecond), which readers may use to seek. Datasets at the root
//! (`/x`, ...) are read too. Compressed with deflate, or with Blosc as DSEC does (our filter,
//! [`blosc`]).
//!
//! The library reads by path, so this source is opened from a file name, never a byte stream.
//! It is read in slices of [`BATCH`] events: a DSEC sequence holds hundreds of millions.

mod blosc;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, File, Group};

use super::{Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

/// The HDF5 signature at the start of a file (the library also allows it at 512, 1024, ...
/// after a user block; those files are taken with `--input-format hdf5`).
pub const MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";
/// Events per packet (and per read of each dataset).
const BATCH: usize = 1 << 17;

pub struct Hdf5Source {
    name: String,
    info: SourceInfo,
    /// t, x, y, p, with the names they are reported under.
    columns: [(Dataset, String); 4],
    /// Each column's type in the file: integers (t in µs), t also floats (seconds).
    types: [TypeDescriptor; 4],
    t_offset: i64,
    len: usize,
    next: usize,
}

impl Hdf5Source {
    pub fn open(path: &str) -> Result<Self, EventError> {
        let bad = |what: String| EventError::Unsupported { input: path.to_string(), what };
        if !blosc::register() {
            return Err(bad("the HDF5 library refused the Blosc filter".into()));
        }
        let file = File::open(path).map_err(|e| bad(format!("not a readable HDF5 file: {e}")))?;
        let (group, prefix): (Group, &str) = match file.group("events") {
            Ok(g) => (g, "events/"),
            Err(_) => (file.as_group().map_err(|e| bad(e.to_string()))?, ""),
        };
        let column = |key: &str| -> Result<(Dataset, String), EventError> {
            let name = format!("{prefix}{key}");
            let ds = group
                .dataset(key)
                .map_err(|_| bad(format!("no dataset {name:?} (expected events/x, events/y, events/t, events/p)")))?;
            if ds.ndim() != 1 {
                return Err(bad(format!("dataset {name}: {} dimensions, expected 1", ds.ndim())));
            }
            Ok((ds, name))
        };
        let columns = [column("t")?, column("x")?, column("y")?, column("p")?];
        let len = columns[0].0.size();
        if let Some((ds, name)) = columns.iter().find(|(ds, _)| ds.size() != len) {
            return Err(bad(format!("dataset {name} holds {} values, events/t {len}", ds.size())));
        }
        let mut types = Vec::with_capacity(4);
        for (i, (ds, name)) in columns.iter().enumerate() {
            let descriptor =
                ds.dtype().and_then(|d| d.to_descriptor()).map_err(|e| bad(format!("dataset {name}: {e}")))?;
            match (&descriptor, i) {
                (TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_), _) => {}
                (TypeDescriptor::Float(FloatSize::U4 | FloatSize::U8), 0) => {}
                (TypeDescriptor::Boolean, 1..) => {}
                (other, 0) => {
                    return Err(bad(format!("dataset {name}: type {other:?}, expected integers (µs) or floats (s)")))
                }
                (other, _) => return Err(bad(format!("dataset {name}: type {other:?}, expected integers"))),
            }
            types.push(descriptor);
        }
        let types: [TypeDescriptor; 4] = types.try_into().map_err(|_| bad("four columns".into()))?;
        let t_offset = match file.dataset("t_offset") {
            Ok(ds) => {
                ds.read_scalar::<i64>().map_err(|e| bad(format!("t_offset: {e} (expected a scalar integer, µs)")))?
            }
            Err(_) => 0,
        };
        let size = sensor_size(&file, &group);
        let info = SourceInfo::single_event_stream(Format::Hdf5, size, None);
        Ok(Hdf5Source { name: path.to_string(), info, columns, types, t_offset, len, next: 0 })
    }

    /// One column's values in `range`, read in the file's own type (libhdf5's conversion to
    /// i64 cost a third of the read) and widened here.
    fn read(&self, column: usize, range: std::ops::Range<usize>) -> Result<Vec<i64>, EventError> {
        let (ds, name) = &self.columns[column];
        macro_rules! widen {
            ($t:ty, $f:expr) => {
                ds.read_slice_1d::<$t, _>(range.clone()).map(|a| a.iter().map($f).collect())
            };
        }
        let seconds = |s: f64| (s * 1e6).round() as i64;
        let values: hdf5::Result<Vec<i64>> = match &self.types[column] {
            TypeDescriptor::Integer(IntSize::U1) => widen!(i8, |&v| i64::from(v)),
            TypeDescriptor::Integer(IntSize::U2) => widen!(i16, |&v| i64::from(v)),
            TypeDescriptor::Integer(IntSize::U4) => widen!(i32, |&v| i64::from(v)),
            TypeDescriptor::Unsigned(IntSize::U1) => widen!(u8, |&v| i64::from(v)),
            TypeDescriptor::Unsigned(IntSize::U2) => widen!(u16, |&v| i64::from(v)),
            TypeDescriptor::Unsigned(IntSize::U4) => widen!(u32, |&v| i64::from(v)),
            // Past i64::MAX is no time or coordinate: saturate, and the checks refuse it.
            TypeDescriptor::Unsigned(IntSize::U8) => widen!(u64, |&v| i64::try_from(v).unwrap_or(i64::MAX)),
            TypeDescriptor::Boolean => widen!(bool, |&v| i64::from(v)),
            TypeDescriptor::Float(FloatSize::U4) => widen!(f32, |&v| seconds(f64::from(v))),
            TypeDescriptor::Float(FloatSize::U8) => widen!(f64, |&v| seconds(v)),
            _ => ds.read_slice_1d::<i64, _>(range.clone()).map(|a| a.to_vec()),
        };
        values.map_err(|e| self.error(format!("dataset {name}[{}..{}]: {e}", range.start, range.end)))
    }

    fn error(&self, what: String) -> EventError {
        EventError::Unsupported { input: self.name.clone(), what }
    }
}

/// `width` and `height` attributes on the root or the events group, where a writer put them.
fn sensor_size(file: &File, group: &Group) -> Option<(u16, u16)> {
    let read = |g: &Group| {
        let get = |k: &str| g.attr(k).ok()?.read_scalar::<i64>().ok().and_then(|v| u16::try_from(v).ok());
        Some((get("width")?, get("height")?))
    };
    read(group).or_else(|| file.as_group().ok().and_then(|g| read(&g)))
}

impl EventSource for Hdf5Source {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        if self.next >= self.len {
            return Ok(None);
        }
        let range = self.next..(self.next + BATCH).min(self.len);
        let (t, x, y, p) = (
            self.read(0, range.clone())?,
            self.read(1, range.clone())?,
            self.read(2, range.clone())?,
            self.read(3, range.clone())?,
        );
        let mut events = Vec::with_capacity(range.len());
        for i in 0..range.len() {
            let coord = |v: i64, column: usize| {
                u16::try_from(v).map_err(|_| {
                    self.error(format!(
                        "dataset {}[{}] = {v}: expected 0..=65535",
                        self.columns[column].1,
                        range.start + i
                    ))
                })
            };
            let t = t[i].checked_add(self.t_offset).ok_or_else(|| {
                self.error(format!(
                    "dataset {}[{}] = {} overflows with t_offset {}",
                    self.columns[0].1,
                    range.start + i,
                    t[i],
                    self.t_offset
                ))
            })?;
            events.push(Event { t, x: coord(x[i], 1)?, y: coord(y[i], 2)?, p: p[i] > 0 });
        }
        self.next = range.end;
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
