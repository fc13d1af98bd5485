//! The event input layer: one decoder per format, all behind [`EventSource`], which yields
//! packets (bounded batches) until the end of the input. Files and live streams look the same.

mod error;
mod input;

pub mod aedat2;
pub mod aedat31;
pub mod aedat4;
pub mod aedat4_net;
pub mod atis_bin;
pub mod dat;
pub mod detect;
pub mod evt2;
pub mod evt3;
pub mod hdf5;
pub mod npz;
pub mod packet_codecs;
mod raw;
pub mod text;
pub mod udp;
mod udp_socket;
pub mod usb;
pub mod write;

pub use detect::{is_live, is_pipe, open, open_reader, open_with, Format, OpenOptions, STDIN};
pub use error::{EventError, Place};
pub use input::ByteInput;

/// The bundled sample recording (a real DAVIS346 recording made with DV: events, frames, IMU,
/// triggers; MIT licence, (c) 2020 International Centre for Neuromorphic Systems), embedded so
/// that `safed info` / `safed dump` without a source work from anywhere.
pub const SAMPLE_NAME: &str = "davis346_aedat-crate_trimmed.aedat4";
pub static SAMPLE: &[u8] = include_bytes!("../../tests/data/davis346_aedat-crate_trimmed.aedat4");

/// Opens the bundled sample recording.
pub fn open_sample() -> Result<Box<dyn EventSource>, EventError> {
    let name = format!("(bundled sample) {SAMPLE_NAME}");
    open_reader(std::io::Cursor::new(SAMPLE), &name, &OpenOptions::default())
}

/// For the fuzz targets: decodes a whole in-memory input, ignoring errors; panics, hangs and
/// runaway allocation are what the fuzzer looks for. Decoding is inline, on the fuzzer's
/// thread: starting decode threads for every input made the AEDAT4 targets ~100x slower than
/// the parsers; `fuzz_drain_file` is the one target path that drives the threads.
#[doc(hidden)]
pub fn fuzz_drain(bytes: Vec<u8>) {
    let opts = OpenOptions {
        decode_threads: 1,
        format: None,
        net: Default::default(),
        usb: Default::default(),
        ros2: Default::default(),
    };
    if let Ok(mut source) = open_reader(std::io::Cursor::new(bytes), "fuzz", &opts) {
        while let Ok(Some(_)) = source.next_packet() {}
    }
}

/// For the fuzz targets: decodes a whole in-memory input as `format`, no guessing (formats
/// without a magic, such as ATIS `.bin`, are only reached this way).
#[doc(hidden)]
pub fn fuzz_drain_as(bytes: Vec<u8>, format: Format) {
    // Not `OpenOptions::default()`: counting cores reads cgroup files, once per input.
    let opts = OpenOptions {
        decode_threads: 1,
        format: Some(format),
        net: Default::default(),
        usb: Default::default(),
        ros2: Default::default(),
    };
    if let Ok(mut source) = open_reader(std::io::Cursor::new(bytes), "fuzz", &opts) {
        while let Ok(Some(_)) = source.next_packet() {}
    }
}

/// For the fuzz targets: an AEDAT4 file on disk, read by the positioned path (workers `pread`
/// packet bodies by the offsets the framer found), which in-memory bytes never reach. The bytes
/// go to one scratch file per process, rewritten for each input.
#[doc(hidden)]
pub fn fuzz_drain_file(bytes: &[u8]) {
    let Some(path) = fuzz_file(bytes, "aedat4") else { return };
    let Ok(file) = std::fs::File::open(&path) else { return };
    let name = path.display().to_string();
    if let Ok(mut source) = aedat4::Aedat4Source::open_path(std::io::BufReader::new(file), &name, 2) {
        while let Ok(Some(_)) = source.next_packet() {}
    }
}

/// For the fuzz targets: HDF5 files on disk (the library reads by path), through libhdf5.
#[doc(hidden)]
pub fn fuzz_drain_hdf5(bytes: &[u8]) {
    let Some(path) = fuzz_file(bytes, "h5") else { return };
    if let Ok(mut source) = hdf5::Hdf5Source::open(&path.display().to_string()) {
        while let Ok(Some(_)) = source.next_packet() {}
    }
}

/// One temp file per process and extension, rewritten for every input.
fn fuzz_file(bytes: &[u8], ext: &str) -> Option<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!("safed-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, bytes).ok().map(|_| path)
}

/// For the fuzz targets: the live-stream framing (no magic line) over in-memory bytes.
#[doc(hidden)]
pub fn fuzz_drain_stream(bytes: Vec<u8>) {
    if let Ok(mut source) = aedat4::Aedat4Source::open_stream(std::io::Cursor::new(bytes), "fuzz") {
        while let Ok(Some(_)) = source.next_packet() {}
    }
}

/// Removes the events of `out[start..]` outside a `width` x `height` sensor, keeping the order;
/// returns how many went (live sources count them: they would index past the event image).
pub(crate) fn keep_inside(out: &mut Vec<Event>, start: usize, width: u16, height: u16) -> u64 {
    let mut kept = start;
    for i in start..out.len() {
        if out[i].x < width && out[i].y < height {
            out[kept] = out[i];
            kept += 1;
        }
    }
    let removed = (out.len() - kept) as u64;
    out.truncate(kept);
    removed
}

/// One DVS event. `t` is in microseconds as the source encodes it; origin is top-left.
/// Laid out as AEDAT4's 16-byte event record (t at 0, x at 8, y at 10, p at 12, 3 bytes of
/// padding), so that uncompressed packets can be read straight into a `Vec<Event>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event {
    pub t: i64,
    pub x: u16,
    pub y: u16,
    /// true = ON (brighter).
    pub p: bool,
}

const _: () = {
    assert!(std::mem::size_of::<Event>() == 16 && std::mem::align_of::<Event>() == 8);
    assert!(std::mem::offset_of!(Event, t) == 0 && std::mem::offset_of!(Event, x) == 8);
    assert!(std::mem::offset_of!(Event, y) == 10 && std::mem::offset_of!(Event, p) == 12);
};

/// An intensity frame (DAVIS APS, or an RGB camera frame), pixels row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Exposure midpoint, µs (AEDAT4's `timestamp`).
    pub t: i64,
    pub exposure_start: i64,
    pub exposure_end: i64,
    pub width: u16,
    pub height: u16,
    pub position: (i16, i16),
    pub format: PixelFormat,
    pub pixels: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    Gray,
    Bgr,
    Bgra,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Gray => 1,
            PixelFormat::Bgr => 3,
            PixelFormat::Bgra => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Imu {
    pub t: i64,
    pub temperature: f32,
    pub accelerometer: [f32; 3],
    pub gyroscope: [f32; 3],
    pub magnetometer: [f32; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub t: i64,
    /// AEDAT4 TriggerType: 0 timestamp reset, 1-5 external edges, 6-9 APS frame/exposure marks.
    pub kind: i8,
}

/// What one packet of a stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum PacketData {
    Events(Vec<Event>),
    Frame(Frame),
    Imu(Vec<Imu>),
    Triggers(Vec<Trigger>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub stream: u32,
    pub data: PacketData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Events,
    Frames,
    Imu,
    Triggers,
    /// A stream of a type we do not decode; its packets are skipped.
    #[default]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    pub id: u32,
    pub name: String,
    pub kind: StreamKind,
    /// AEDAT4's type identifier (EVTS, FRME, ...) or the format's own name for the stream.
    pub type_id: String,
    /// (width, height) where the source states it.
    pub size: Option<(u16, u16)>,
    pub compression: String,
    /// The camera or writer named by the source, if any.
    pub source: Option<String>,
}

/// What is known about a source once its header has been read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    pub format: Format,
    pub streams: Vec<StreamInfo>,
}

impl SourceInfo {
    /// The first stream of `kind` (the one safed reads when a source has several).
    pub fn first(&self, kind: StreamKind) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// A source with exactly one event stream (all formats but AEDAT4).
    pub fn single_event_stream(format: Format, size: Option<(u16, u16)>, source: Option<String>) -> Self {
        SourceInfo {
            format,
            streams: vec![StreamInfo {
                id: 0,
                name: "events".into(),
                kind: StreamKind::Events,
                type_id: format.name().into(),
                size,
                compression: "none".into(),
                source,
            }],
        }
    }
}

/// A decoder. `next_packet` returns `Ok(None)` at the end of the input (a file's end, or the
/// server closing the connection); every packet it returns is bounded in size.
pub trait EventSource: Send {
    fn info(&self) -> &SourceInfo;
    fn next_packet(&mut self) -> Result<Option<Packet>, EventError>;
    /// Name of the input, for messages.
    fn input_name(&self) -> &str;
    /// Live sources: what was lost before safed could read it, so far (datagrams the kernel
    /// dropped or that came out of order, buffers a USB driver dropped).
    fn dropped(&self) -> u64 {
        0
    }
    /// Live sources: a line on what was received and lost, for `safed dump`'s summary.
    fn summary(&self) -> Option<String> {
        None
    }
    /// Live sources: whether the stream started again since the last call (a publisher that
    /// restarted: its clock did too), so that windows start afresh.
    fn restarted(&mut self) -> bool {
        false
    }
    /// The event stream's sensor size; a live source may learn it from its first packet.
    fn sensor(&self) -> Option<(u16, u16)> {
        self.info().first(StreamKind::Events).and_then(|s| s.size)
    }
}

/// Which stream to read from a source with several.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StreamSelector {
    #[default]
    FirstEvents,
    Id(u32),
    Name(String),
}

impl std::str::FromStr for StreamSelector {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<u32>() {
            Ok(id) => StreamSelector::Id(id),
            Err(_) => StreamSelector::Name(s.to_string()),
        })
    }
}

impl StreamSelector {
    /// Resolves the selector against a source's streams.
    pub fn resolve<'a>(&self, input: &str, info: &'a SourceInfo) -> Result<&'a StreamInfo, EventError> {
        let found = match self {
            StreamSelector::FirstEvents => info.first(StreamKind::Events),
            StreamSelector::Id(id) => info.streams.iter().find(|s| s.id == *id),
            StreamSelector::Name(name) => info.streams.iter().find(|s| &s.name == name),
        };
        found.ok_or_else(|| EventError::UnknownStream {
            input: input.to_string(),
            wanted: match self {
                StreamSelector::FirstEvents => "of events".to_string(),
                StreamSelector::Id(id) => format!("with id {id}"),
                StreamSelector::Name(n) => format!("named {n:?}"),
            },
            available: describe_streams(info),
        })
    }
}

fn describe_streams(info: &SourceInfo) -> String {
    if info.streams.is_empty() {
        return "(none)".into();
    }
    info.streams.iter().map(|s| format!("{} {:?} ({})", s.id, s.name, s.type_id)).collect::<Vec<_>>().join(", ")
}

/// Reads the event batches of one stream of a source, skipping the others.
pub struct EventReader {
    source: Box<dyn EventSource>,
    stream: u32,
}

impl EventReader {
    pub fn new(source: Box<dyn EventSource>, selector: &StreamSelector) -> Result<Self, EventError> {
        let stream = selector.resolve(source.input_name(), source.info())?;
        if stream.kind != StreamKind::Events {
            return Err(EventError::UnknownStream {
                input: source.input_name().to_string(),
                wanted: format!("{} as events (it is {})", stream.id, stream.type_id),
                available: describe_streams(source.info()),
            });
        }
        let stream = stream.id;
        Ok(EventReader { source, stream })
    }

    pub fn info(&self) -> &SourceInfo {
        self.source.info()
    }

    /// The source's own account of what it received and lost (live sources).
    pub fn summary(&self) -> Option<String> {
        self.source.summary()
    }

    pub fn next_batch(&mut self) -> Result<Option<Vec<Event>>, EventError> {
        while let Some(packet) = self.source.next_packet()? {
            if packet.stream != self.stream {
                continue;
            }
            if let PacketData::Events(events) = packet.data {
                return Ok(Some(events));
            }
        }
        Ok(None)
    }
}
