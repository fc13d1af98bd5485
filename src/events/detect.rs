//! Which decoder reads a source: recognised from its first bytes, never from its name.

use std::fs::File;
use std::io::{BufRead, BufReader};

use super::aedat4_net::{Endpoint, NetOptions};
use super::raw::{self, RawSource};
use super::{aedat2, aedat31, aedat4, dat, evt2, evt3, npz, EventError, EventSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    #[serde(rename = "aedat4")]
    Aedat4,
    #[serde(rename = "aedat4-stream")]
    Aedat4Stream,
    #[serde(rename = "aedat3.1")]
    Aedat31,
    #[serde(rename = "aedat2")]
    Aedat2,
    #[serde(rename = "evt2")]
    Evt2,
    #[serde(rename = "evt3")]
    Evt3,
    #[serde(rename = "npz")]
    Npz,
    #[serde(rename = "dat")]
    Dat,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Aedat4 => "aedat4",
            Format::Aedat4Stream => "aedat4-stream",
            Format::Aedat31 => "aedat3.1",
            Format::Aedat2 => "aedat2",
            Format::Evt2 => "evt2",
            Format::Evt3 => "evt3",
            Format::Npz => "npz",
            Format::Dat => "dat",
        }
    }
}

const EXPECTED: &str = "AEDAT 4.0 (#!AER-DAT4.0), AEDAT 3.1 (#!AER-DAT3.1), AEDAT 2.0 (#!AER-DAT2.0), \
                        Prophesee RAW (% evt 2.0 / 3.0 header), Prophesee DAT (% Version / Width / Height header), NumPy .npz (t, x, y, p)";

/// Buffer for file decoders: large enough that refills are rare against decode cost.
const FILE_BUFFER: usize = 256 << 10;

/// How to open a source.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub net: NetOptions,
    /// Worker threads decoding AEDAT4 file packets (1: decode inline on the caller's thread).
    pub decode_threads: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        OpenOptions { net: NetOptions::default(), decode_threads: cores.min(4) }
    }
}

/// Opens a file path, `tcp://HOST:PORT` or `unix:///PATH` with default options.
pub fn open(source: &str) -> Result<Box<dyn EventSource>, EventError> {
    open_with(source, &OpenOptions::default())
}

pub fn open_with(source: &str, opts: &OpenOptions) -> Result<Box<dyn EventSource>, EventError> {
    if let Some(endpoint) = Endpoint::parse(source) {
        return super::aedat4_net::open(source, &endpoint, &opts.net);
    }
    let io_err = |err| EventError::Io { input: source.to_string(), offset: 0, err };
    let file = File::open(source).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(FILE_BUFFER, file);
    // AEDAT4 files are read by position, so that workers share the reading too.
    if reader.fill_buf().map_err(io_err)?.starts_with(aedat4::MAGIC) {
        return Ok(Box::new(aedat4::Aedat4Source::open_path(reader, source, opts.decode_threads)?));
    }
    open_reader(reader, source, opts)
}

/// Opens any buffered reader holding a whole file's bytes (used by the fuzz targets too).
pub fn open_reader<R: BufRead + Send + 'static>(
    mut reader: R,
    name: &str,
    opts: &OpenOptions,
) -> Result<Box<dyn EventSource>, EventError> {
    let head = reader.fill_buf().map_err(|err| EventError::Io { input: name.to_string(), offset: 0, err })?.to_vec();
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"#!AER-DAT4.0") {
        Ok(Box::new(aedat4::Aedat4Source::open_file(reader, name, opts.decode_threads)?))
    } else if starts(b"#!AER-DAT3.1") {
        Ok(Box::new(aedat31::Aedat31Source::open(reader, name)?))
    } else if starts(b"#!AER-DAT2.0") {
        Ok(Box::new(aedat2::Aedat2Source::open(reader, name)?))
    } else if starts(b"%") && dat::is_dat(&head) {
        Ok(Box::new(dat::DatSource::open(reader, name)?))
    } else if starts(b"%") {
        let (input, header) = raw::read_header(reader, name)?;
        match header.evt {
            raw::Evt::V2 => Ok(Box::new(RawSource::<_, evt2::Evt2Decoder>::new(input, &header))),
            raw::Evt::V3 => Ok(Box::new(RawSource::<_, evt3::Evt3Decoder>::new(input, &header))),
        }
    } else if starts(b"PK\x03\x04") {
        Ok(Box::new(npz::NpzSource::open(reader, name)?))
    } else {
        let shown = &head[..head.len().min(16)];
        Err(EventError::UnknownFormat {
            input: name.to_string(),
            head: String::from_utf8_lossy(shown).into_owned(),
            expected: EXPECTED,
        })
    }
}
