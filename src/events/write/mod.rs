//! Event writers for `safed convert`: one module per format, each taking time-ordered batches
//! and holding no more than a batch (npz spools its columns to disk: an `.npy` states its
//! length before its data). Times are µs as the readers give them; a format that cannot hold
//! a time or coordinate says so with the event's index, never wraps it silently.

mod aedat4;
pub mod csv;
mod dat;
mod hdf5;
mod npz;
mod raw;

use std::io;
use std::path::Path;

use super::{Event, Format, Frame};

/// Why a write failed: the output file, and what.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{output}: {source}")]
    Io { output: String, source: io::Error },
    #[error("{output}: event {index} (t {t}, x {x}, y {y}): {what}")]
    Unrepresentable { output: String, index: u64, t: i64, x: u16, y: u16, what: String },
    #[error("{output}: {what}")]
    Unsupported { output: String, what: String },
}

/// What a writer needs to know before the first event.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: String,
    pub format: Format,
    /// Sensor (width, height): required by the formats whose header states it.
    pub size: Option<(u16, u16)>,
    /// Frames go into AEDAT4 outputs (the only format here that holds them).
    pub frames: bool,
}

pub trait EventWriter {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError>;
    /// Formats without frames never get here (`accepts_frames` is false).
    fn write_frame(&mut self, _frame: &Frame) -> Result<(), WriteError> {
        Ok(())
    }
    fn accepts_frames(&self) -> bool {
        false
    }
    /// Flushes and closes the output; a writer dropped without it leaves a partial file.
    fn finish(self: Box<Self>) -> Result<(), WriteError>;
}

/// The formats `convert` writes.
pub const WRITABLE: &[Format] =
    &[Format::Aedat4, Format::Evt2, Format::Evt3, Format::Dat, Format::Npz, Format::Csv, Format::Hdf5];

/// The format an output name implies: `.aedat4`, `.raw` (EVT 3.0, as Prophesee's cameras
/// record today), `.evt2`, `.evt3`, `.dat`, `.npz`, `.csv`, `.h5`/`.hdf5`.
pub fn format_for(path: &str) -> Option<Format> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "aedat4" => Format::Aedat4,
        "raw" | "evt3" => Format::Evt3,
        "evt2" => Format::Evt2,
        "dat" => Format::Dat,
        "npz" => Format::Npz,
        "csv" => Format::Csv,
        "h5" | "hdf5" => Format::Hdf5,
        _ => return None,
    })
}

pub fn create(target: &Target) -> Result<Box<dyn EventWriter>, WriteError> {
    let need_size = || {
        target.size.ok_or_else(|| WriteError::Unsupported {
            output: target.path.clone(),
            what: format!(
                "{} states the sensor size and the input does not: give --size WIDTHxHEIGHT",
                target.format.name()
            ),
        })
    };
    Ok(match target.format {
        Format::Aedat4 => Box::new(aedat4::Aedat4Out::create(target, need_size()?)?),
        Format::Evt2 => Box::new(raw::RawOut::create(target, need_size()?, raw::Version::Evt2)?),
        Format::Evt3 => Box::new(raw::RawOut::create(target, need_size()?, raw::Version::Evt3)?),
        Format::Dat => Box::new(dat::DatOut::create(target, need_size()?)?),
        Format::Npz => Box::new(npz::NpzOut::create(target)?),
        Format::Csv => Box::new(csv::CsvOut::create(target)?),
        Format::Hdf5 => Box::new(hdf5::Hdf5Out::create(target)?),
        other => {
            return Err(WriteError::Unsupported {
                output: target.path.clone(),
                what: format!(
                    "{} is read, not written (convert writes aedat4, evt2, evt3, dat, npz, csv, hdf5)",
                    other.name()
                ),
            })
        }
    })
}

/// An I/O error on `output`.
fn io_error(output: &str) -> impl Fn(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io { output: output.to_string(), source }
}

/// The error for event `index` that `what` cannot be written.
fn unrepresentable(output: &str, index: u64, e: &Event, what: impl Into<String>) -> WriteError {
    WriteError::Unrepresentable { output: output.to_string(), index, t: e.t, x: e.x, y: e.y, what: what.into() }
}

/// Checks that an event lies inside the sensor the header states.
fn inside(output: &str, index: u64, e: &Event, (w, h): (u16, u16)) -> Result<(), WriteError> {
    if e.x >= w || e.y >= h {
        return Err(unrepresentable(output, index, e, format!("outside the {w}x{h} sensor the header states")));
    }
    Ok(())
}
