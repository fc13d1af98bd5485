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
mod superblock;

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
        superblock::check(path).map_err(bad)?;
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

    /// Reads column `column` over `range` in the file's own type (libhdf5's conversion to i64
    /// cost a third of the read) and writes it into `events`, one typed pass per column.
    fn fill(&self, column: usize, range: std::ops::Range<usize>, events: &mut [Event]) -> Result<(), EventError> {
        macro_rules! fill {
            ($t:ty) => {{
                let values = self.columns[column].0.read_slice_1d::<$t, _>(range.clone());
                let values = values.map_err(|e| self.read_error(column, &range, e))?;
                self.store(column, range.start, values.iter().copied(), events)
            }};
        }
        match &self.types[column] {
            TypeDescriptor::Integer(IntSize::U1) => fill!(i8),
            TypeDescriptor::Integer(IntSize::U2) => fill!(i16),
            TypeDescriptor::Integer(IntSize::U4) => fill!(i32),
            TypeDescriptor::Unsigned(IntSize::U1) => fill!(u8),
            TypeDescriptor::Unsigned(IntSize::U2) => fill!(u16),
            TypeDescriptor::Unsigned(IntSize::U4) => fill!(u32),
            TypeDescriptor::Unsigned(IntSize::U8) => fill!(u64),
            TypeDescriptor::Boolean => fill!(bool),
            TypeDescriptor::Float(FloatSize::U4) => fill!(f32),
            TypeDescriptor::Float(FloatSize::U8) => fill!(f64),
            _ => fill!(i64),
        }
    }

    /// Column `column`'s values (t, x, y or p) into the events, checked: t plus `t_offset` must
    /// not overflow, x and y must fit in u16; p is ON when positive.
    fn store<T: Widen>(
        &self,
        column: usize,
        first: usize,
        values: impl Iterator<Item = T>,
        events: &mut [Event],
    ) -> Result<(), EventError> {
        let mut bad = None;
        let pairs = events.iter_mut().zip(values);
        match column {
            0 => {
                for (i, (e, v)) in pairs.enumerate() {
                    match v.widen().checked_add(self.t_offset) {
                        Some(t) => e.t = t,
                        None => {
                            bad = Some((i, v.widen()));
                            break;
                        }
                    }
                }
            }
            1 | 2 => {
                for (i, (e, v)) in pairs.enumerate() {
                    let Ok(c) = u16::try_from(v.widen()) else {
                        bad = Some((i, v.widen()));
                        break;
                    };
                    if column == 1 {
                        e.x = c;
                    } else {
                        e.y = c;
                    }
                }
            }
            _ => pairs.for_each(|(e, v)| e.p = v.widen() > 0),
        }
        let Some((i, v)) = bad else { return Ok(()) };
        let name = &self.columns[column].1;
        Err(self.error(match column {
            0 => format!("dataset {name}[{}] = {v} overflows with t_offset {}", first + i, self.t_offset),
            _ => format!("dataset {name}[{}] = {v}: expected 0..=65535", first + i),
        }))
    }

    fn read_error(&self, column: usize, range: &std::ops::Range<usize>, e: hdf5::Error) -> EventError {
        self.error(format!("dataset {}[{}..{}]: {e}", self.columns[column].1, range.start, range.end))
    }

    fn error(&self, what: String) -> EventError {
        EventError::Unsupported { input: self.name.clone(), what }
    }
}

/// A column's value as i64: integers as they are (u64 past i64::MAX saturates, and the checks
/// refuse it: no time or coordinate is that large), floats as seconds rounded to µs.
trait Widen: Copy {
    fn widen(self) -> i64;
}

macro_rules! widen_lossless {
    ($($t:ty),*) => {$(impl Widen for $t {
        fn widen(self) -> i64 {
            i64::from(self)
        }
    })*};
}
widen_lossless!(i8, i16, i32, i64, u8, u16, u32, bool);

impl Widen for u64 {
    fn widen(self) -> i64 {
        i64::try_from(self).unwrap_or(i64::MAX)
    }
}

impl Widen for f64 {
    fn widen(self) -> i64 {
        (self * 1e6).round() as i64
    }
}

impl Widen for f32 {
    fn widen(self) -> i64 {
        f64::from(self).widen()
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
        let mut events = vec![Event::default(); range.len()];
        for column in 0..4 {
            self.fill(column, range.clone(), &mut events)?;
        }
        self.next = range.end;
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
