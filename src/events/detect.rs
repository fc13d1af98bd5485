//! Which decoder reads a source: recognised from its first bytes, never from its name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use super::aedat4_net::{Endpoint, NetOptions};
use super::raw::{self, RawSource};
use super::udp::{UdpEndpoint, UdpSource};
use super::usb::{self, UsbOptions};
use super::{aedat2, aedat31, aedat4, atis_bin, dat, evt2, evt3, hdf5, npz, text, EventError, EventSource};

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
    #[serde(rename = "atis-bin")]
    AtisBin,
    /// `t x y p` lines, t in seconds.
    #[serde(rename = "text")]
    Text,
    /// A `t,x,y,p` header, then t in µs.
    #[serde(rename = "csv")]
    Csv,
    #[serde(rename = "hdf5")]
    Hdf5,
    /// Live over UDP (src/events/udp.rs): faery's two datagram formats and aestream's SPIF.
    #[serde(rename = "t64_x16_y16_on8")]
    UdpT64,
    #[serde(rename = "t32_x16_y15_on1")]
    UdpT32,
    #[serde(rename = "spif")]
    Spif,
    /// A camera on USB (src/events/usb.rs), through the neuromorphic-drivers crate.
    #[serde(rename = "usb")]
    Usb,
    /// ROS 2 EventPacket messages (src/ros2/events_in.rs).
    #[serde(rename = "ros2")]
    Ros2,
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
            Format::AtisBin => "atis-bin",
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Hdf5 => "hdf5",
            Format::UdpT64 => "t64_x16_y16_on8",
            Format::UdpT32 => "t32_x16_y15_on1",
            Format::Spif => "spif",
            Format::Usb => "usb",
            Format::Ros2 => "ros2",
        }
    }

    /// The formats a file can be read as (`--input-format`).
    pub const FILE_FORMATS: &'static [Format] = &[
        Format::Aedat4,
        Format::Aedat31,
        Format::Aedat2,
        Format::Evt2,
        Format::Evt3,
        Format::Dat,
        Format::Npz,
        Format::AtisBin,
        Format::Text,
        Format::Csv,
        Format::Hdf5,
    ];
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::FILE_FORMATS.iter().copied().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Format::FILE_FORMATS.iter().map(|f| f.name()).collect();
            format!("unknown input format {s:?}; expected one of {}", names.join(", "))
        })
    }
}

const EXPECTED: &str = "AEDAT 4.0 (#!AER-DAT4.0), AEDAT 3.1 (#!AER-DAT3.1), AEDAT 2.0 (#!AER-DAT2.0), \
                        Prophesee RAW (% evt 2.0 / 3.0 header), Prophesee DAT (% Version / Width / Height header), NumPy .npz (t, x, y, p), \
                        HDF5 (events/x, y, t, p as DSEC writes them), \
                        text (t x y p lines, or a t,x,y,p CSV header), ATIS .bin (guessed from its records: \
                        name it with --input-format atis-bin if the guess fails)";

/// Buffer for file decoders: large enough that refills are rare against decode cost.
const FILE_BUFFER: usize = 256 << 10;

/// How to open a source.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub net: NetOptions,
    /// Worker threads decoding AEDAT4 file packets (1: decode inline on the caller's thread).
    pub decode_threads: usize,
    /// Read files as this format instead of recognising it (`--input-format`).
    pub format: Option<Format>,
    /// USB cameras: their settings.
    pub usb: UsbOptions,
    /// `ros2:` sources: the node they subscribe from.
    pub ros2: crate::ros2::Ros2Config,
}

impl Default for OpenOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        OpenOptions {
            net: NetOptions::default(),
            decode_threads: cores.min(4),
            format: None,
            usb: UsbOptions::default(),
            ros2: Default::default(),
        }
    }
}

/// Opens a file path, `tcp://HOST:PORT` or `unix:///PATH` with default options.
pub fn open(source: &str) -> Result<Box<dyn EventSource>, EventError> {
    open_with(source, &OpenOptions::default())
}

/// The source that names standard input.
pub const STDIN: &str = "-";

/// Whether `source` is a byte stream read as it arrives (standard input, a FIFO) rather than a
/// file that can be replayed, looped and read by position.
pub fn is_pipe(source: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    source == STDIN || std::fs::metadata(source).is_ok_and(|m| m.file_type().is_fifo())
}

/// Whether `source` names a live source (a stream server, a UDP socket, a USB camera): read
/// until stopped and reopened when it fails.
pub fn is_live(source: &str) -> bool {
    Endpoint::parse(source).is_some()
        || source.starts_with("udp://")
        || source.starts_with(usb::PREFIX)
        || source.starts_with(crate::ros2::events_in::PREFIX)
}

pub fn open_with(source: &str, opts: &OpenOptions) -> Result<Box<dyn EventSource>, EventError> {
    if let Some(endpoint) = Endpoint::parse(source) {
        return super::aedat4_net::open(source, &endpoint, &opts.net);
    }
    if let Some(endpoint) = UdpEndpoint::parse(source) {
        return Ok(Box::new(UdpSource::open(source, &endpoint?)?));
    }
    if source.starts_with(usb::PREFIX) {
        return Ok(Box::new(usb::UsbSource::open(source, &opts.usb)?));
    }
    if source.starts_with(crate::ros2::events_in::PREFIX) {
        return Ok(Box::new(crate::ros2::events_in::Ros2EventSource::open(source, &opts.ros2)?));
    }
    if source == STDIN {
        return open_pipe(std::io::stdin(), "(stdin)", opts);
    }
    let io_err = |err| EventError::Io { input: source.to_string(), offset: 0, err };
    let file = File::open(source).map_err(io_err)?;
    if file.metadata().is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type())) {
        return open_pipe(file, source, opts);
    }
    let mut reader = BufReader::with_capacity(FILE_BUFFER, file);
    // AEDAT4 files are read by position, so that workers share the reading too.
    let format = match opts.format {
        Some(format) => Some(format),
        None => {
            let head = reader.fill_buf().map_err(io_err)?;
            [(aedat4::MAGIC, Format::Aedat4), (hdf5::MAGIC, Format::Hdf5)]
                .into_iter()
                .find_map(|(magic, format)| head.starts_with(magic).then_some(format))
        }
    };
    // The HDF5 library reads by path.
    if format == Some(Format::Hdf5) {
        return Ok(Box::new(hdf5::Hdf5Source::open(source)?));
    }
    if format == Some(Format::Aedat4) {
        return Ok(Box::new(aedat4::Aedat4Source::open_path(reader, source, opts.decode_threads)?));
    }
    open_reader(reader, source, opts)
}

/// Bytes read from a pipe before its format is recognised: a writer may send the header in
/// small pieces, and a DAT or RAW header takes a few hundred bytes.
const PIPE_HEAD: u64 = 1024;

/// A byte stream read in order as it arrives: detected as files are, from its first bytes, but
/// only the formats that need neither a path nor seeking (not HDF5 or `.npz`).
fn open_pipe<R: Read + Send + 'static>(
    mut pipe: R,
    name: &str,
    opts: &OpenOptions,
) -> Result<Box<dyn EventSource>, EventError> {
    let mut head = Vec::new();
    (&mut pipe).take(PIPE_HEAD).read_to_end(&mut head).map_err(|err| EventError::Io {
        input: name.to_string(),
        offset: 0,
        err,
    })?;
    if head.is_empty() {
        return Err(EventError::Unsupported {
            input: name.to_string(),
            what: "no bytes arrived: the writer closed the pipe".into(),
        });
    }
    if let Some(format @ (Format::Hdf5 | Format::Npz)) = opts.format.or_else(|| recognise(&head)) {
        return Err(EventError::Unsupported {
            input: name.to_string(),
            what: format!("{} cannot be read from a pipe (it is read by position): give its path", format.name()),
        });
    }
    let reader = BufReader::with_capacity(FILE_BUFFER, std::io::Cursor::new(head).chain(pipe));
    open_reader(reader, name, opts)
}

/// Opens any buffered reader holding a whole file's bytes (used by the fuzz targets too).
pub fn open_reader<R: BufRead + Send + 'static>(
    mut reader: R,
    name: &str,
    opts: &OpenOptions,
) -> Result<Box<dyn EventSource>, EventError> {
    let format = match opts.format {
        Some(format) => format,
        None => {
            let head = reader.fill_buf().map_err(|err| EventError::Io { input: name.to_string(), offset: 0, err })?;
            recognise(head).ok_or_else(|| EventError::UnknownFormat {
                input: name.to_string(),
                head: String::from_utf8_lossy(&head[..head.len().min(16)]).into_owned(),
                expected: EXPECTED,
            })?
        }
    };
    open_as(reader, name, format, opts)
}

/// The format of an input from its first bytes. Formats with a magic or a header come first;
/// text next (its first line must parse); ATIS `.bin`, which has neither, only last.
pub fn recognise(head: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    Some(if starts(b"#!AER-DAT4.0") {
        Format::Aedat4
    } else if starts(hdf5::MAGIC) {
        Format::Hdf5
    } else if starts(b"#!AER-DAT3.1") {
        Format::Aedat31
    } else if starts(b"#!AER-DAT2.0") {
        Format::Aedat2
    } else if starts(b"%") && dat::is_dat(head) {
        Format::Dat
    } else if starts(b"%") {
        // RAW: the header says which EVT version.
        Format::Evt3
    } else if starts(b"PK\x03\x04") {
        Format::Npz
    } else if text::looks_like_text(head) {
        Format::Text
    } else if atis_bin::looks_like_atis(head) {
        Format::AtisBin
    } else {
        return None;
    })
}

fn open_as<R: BufRead + Send + 'static>(
    reader: R,
    name: &str,
    format: Format,
    opts: &OpenOptions,
) -> Result<Box<dyn EventSource>, EventError> {
    Ok(match format {
        Format::Aedat4 => Box::new(aedat4::Aedat4Source::open_file(reader, name, opts.decode_threads)?),
        Format::Aedat4Stream => Box::new(aedat4::Aedat4Source::open_stream(reader, name)?),
        Format::Aedat31 => Box::new(aedat31::Aedat31Source::open(reader, name)?),
        Format::Aedat2 => Box::new(aedat2::Aedat2Source::open(reader, name)?),
        Format::Dat => Box::new(dat::DatSource::open(reader, name)?),
        // A RAW header names its EVT version; a forced version must agree with it.
        Format::Evt2 | Format::Evt3 => {
            let (input, header) = raw::read_header(reader, name)?;
            let found = match header.evt {
                raw::Evt::V2 => Format::Evt2,
                raw::Evt::V3 => Format::Evt3,
            };
            if opts.format.is_some_and(|f| f != found) {
                return Err(input.place().unsupported(format!(
                    "read as {} but its header says {}",
                    format.name(),
                    found.name()
                )));
            }
            match header.evt {
                raw::Evt::V2 => Box::new(RawSource::<_, evt2::Evt2Decoder>::new(input, &header)),
                raw::Evt::V3 => Box::new(RawSource::<_, evt3::Evt3Decoder>::new(input, &header)),
            }
        }
        Format::Npz => Box::new(npz::NpzSource::open(reader, name)?),
        Format::AtisBin => Box::new(atis_bin::AtisBinSource::open(reader, name)),
        Format::Text | Format::Csv => Box::new(text::TextSource::open(reader, name)?),
        Format::Hdf5 => {
            return Err(EventError::Unsupported {
                input: name.to_string(),
                what: "an HDF5 file is read from its path (the library does not read byte streams)".into(),
            })
        }
        live @ (Format::UdpT64 | Format::UdpT32 | Format::Spif | Format::Usb | Format::Ros2) => {
            return Err(EventError::Unsupported {
                input: name.to_string(),
                what: format!("{} is a live format, not a file's: give its udp:// or usb: address", live.name()),
            })
        }
    })
}
