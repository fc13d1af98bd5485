//! AEDAT 4.0: DV / dv-processing recordings, and (without the magic line) the live stream that
//! DV and dv-processing's NetworkWriter serve. The reader is two steps: a framer that cuts the
//! input into raw packets (8-byte header + body), and a packet decoder (decompress, verify the
//! flatbuffer, build events/frames/IMU/triggers). Packets are independent, so files can decode
//! them on worker threads (`parallel`); live streams decode inline, one packet at a time.

#[cfg(target_endian = "little")]
mod in_place;
mod info_node;
mod packet;
mod parallel;
mod positioned;
mod schema;
pub mod writer;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use super::{ByteInput, EventError, EventSource, Format, Packet, Place, SourceInfo, StreamInfo, StreamKind};
use packet::{PacketDecoder, RawPacket};
use parallel::{Job, Pipeline};
use positioned::FileFramer;
use schema::{size_prefixed_root, IoHeader};

pub const MAGIC: &[u8] = b"#!AER-DAT4.0\r\n";
/// Largest IO header we accept (real ones are a few KB of XML).
const MAX_HEADER: u64 = 1 << 20;
/// Largest packet body on the wire, and largest decompressed body: dv writes packets of a few
/// MB; these bound what a corrupt file or a hostile server can make us hold.
pub const MAX_PACKET: u64 = 64 << 20;
pub const MAX_DECOMPRESSED: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_header(value: i32) -> Option<Self> {
        match value {
            0 => Some(Compression::None),
            1 | 2 => Some(Compression::Lz4),
            3 | 4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Cuts the input after the IO header into raw packets.
struct Framer<R> {
    input: ByteInput<R>,
    /// Where the file data table starts: packets end there.
    data_end: Option<u64>,
    /// Kind of each stream id, indexed by id (ids are small).
    kinds: Vec<Option<StreamKind>>,
}

/// Where a packet's body is and what it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketHead {
    stream: u32,
    kind: StreamKind,
    size: u64,
    body_at: u64,
}

/// Checks an 8-byte packet header read at `at`: a declared stream, a size within bounds.
fn parse_head(header: [u8; 8], at: u64, kinds: &[Option<StreamKind>], place: &Place) -> Result<PacketHead, EventError> {
    let stream = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let size = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if size < 0 {
        return Err(place.malformed_at(at, format!("packet size {size} is negative")));
    }
    let size = size as u64;
    if size > MAX_PACKET {
        return Err(EventError::TooLarge {
            input: place.input.clone(),
            offset: at,
            what: "a packet body",
            value: size,
            limit: MAX_PACKET,
        });
    }
    let kind = usize::try_from(stream).ok().and_then(|i| kinds.get(i).copied().flatten());
    let Some(kind) = kind else {
        return Err(place.malformed_at(at, format!("packet of stream {stream}, which the IO header does not declare")));
    };
    Ok(PacketHead { stream: stream as u32, kind, size, body_at: at + 8 })
}

impl<R: BufRead> Framer<R> {
    /// Reads the next packet header, skipping packets of stream types we do not decode;
    /// `None` at a clean end.
    fn next_head(&mut self) -> Result<Option<PacketHead>, EventError> {
        loop {
            if self.data_end.is_some_and(|end| self.input.offset() >= end) {
                return Ok(None);
            }
            let at = self.input.offset();
            let mut header = [0u8; 8];
            match self.input.read_some(&mut header)? {
                0 => return Ok(None),
                8 => {}
                got => return Err(self.input.place().truncated(format!("a packet header (8 bytes, got {got})"))),
            }
            let head = parse_head(header, at, &self.kinds, self.input.place())?;
            if head.kind != StreamKind::Other {
                return Ok(Some(head));
            }
            self.input.skip(head.size, "a packet body")?;
        }
    }

    /// Reads the next packet into `raw` (reusing its buffer), for decoding elsewhere.
    fn next_owned(&mut self, raw: &mut RawPacket) -> Result<bool, EventError> {
        let Some(head) = self.next_head()? else {
            return Ok(false);
        };
        raw.body.clear();
        self.input.read_into_vec(&mut raw.body, head.size, "a packet body")?;
        (raw.stream, raw.kind, raw.body_at) = (head.stream, head.kind, head.body_at);
        Ok(true)
    }

    /// Decodes the next packet in place, from the read buffer where it can.
    fn next_decoded(
        &mut self,
        decoder: &mut PacketDecoder,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<Packet>, EventError> {
        let Some(h) = self.next_head()? else {
            return Ok(None);
        };
        let decoded = self
            .input
            .with_bytes(h.size, scratch, "a packet body", |body| decoder.decode(h.stream, h.kind, h.body_at, body))?;
        decoded.map(Some)
    }
}

/// The parsed IO header.
struct Header {
    format: Format,
    compression: Compression,
    data_end: Option<u64>,
    streams: Vec<StreamInfo>,
}

fn read_header<R: BufRead>(input: &mut ByteInput<R>, format: Format) -> Result<Header, EventError> {
    let header_at = input.offset();
    let mut size_bytes = [0u8; 4];
    input.read_exact(&mut size_bytes, "the IO header's size")?;
    let size = u32::from_le_bytes(size_bytes) as u64;
    if size > MAX_HEADER {
        return Err(input.place().too_large("the IO header", size, MAX_HEADER));
    }
    // The size belongs to the buffer: the flatbuffer's alignment counts from the size field.
    let mut header = size_bytes.to_vec();
    input.read_into_vec(&mut header, size, "the IO header")?;
    let bad = |what: String| input.place().malformed_at(header_at, what);
    let root = size_prefixed_root::<IoHeader>(&header)
        .map_err(|e| bad(format!("IO header is not a valid IOHE flatbuffer: {e}")))?;
    let compression = Compression::from_header(root.compression())
        .ok_or_else(|| bad(format!("unknown compression {} (expected 0-4)", root.compression())))?;
    let data_end = u64::try_from(root.data_table_position()).ok();
    let streams = info_node::parse(root.info_node().unwrap_or(""), compression)
        .map_err(|what| bad(format!("IO header infoNode: {what}")))?;
    Ok(Header { format, compression, data_end, streams })
}

pub struct Aedat4Source<R> {
    info: SourceInfo,
    name: String,
    mode: Mode<R>,
}

enum Mode<R> {
    Inline { framer: Framer<R>, decoder: PacketDecoder, scratch: Vec<u8> },
    Parallel(Pipeline),
}

impl<R: BufRead + Send + 'static> Aedat4Source<R> {
    /// A file from any reader: the magic line, then the IO header. `threads` > 1 decodes
    /// compressed packets on that many worker threads (output order is kept).
    pub fn open_file(reader: R, name: &str, threads: usize) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        read_magic(&mut input)?;
        let (header, framer) = Self::read_header_and_framer(input, Format::Aedat4)?;
        // Uncompressed packets from a plain reader are memory-bound: threads only add copies.
        let threads = if header.compression == Compression::None { 1 } else { threads };
        Self::start(header, framer, threads)
    }

    /// A live stream: the IO header comes first, with no magic line; packets decode inline.
    pub fn open_stream(reader: R, name: &str) -> Result<Self, EventError> {
        let (header, framer) = Self::read_header_and_framer(ByteInput::new(reader, name), Format::Aedat4Stream)?;
        Self::start(header, framer, 1)
    }

    fn read_header_and_framer(mut input: ByteInput<R>, format: Format) -> Result<(Header, Framer<R>), EventError> {
        let header = read_header(&mut input, format)?;
        let kinds = stream_kinds(&header.streams);
        let framer = Framer { input, data_end: header.data_end, kinds };
        Ok((header, framer))
    }

    fn start(header: Header, mut framer: Framer<R>, threads: usize) -> Result<Self, EventError> {
        let place = framer.input.place().clone();
        let decoder = PacketDecoder::new(place.input.clone(), header.compression);
        let mode = if threads > 1 {
            let next_job = move || {
                let mut raw = RawPacket::default();
                Ok(framer.next_owned(&mut raw)?.then_some(Job::Owned(raw)))
            };
            // Owned jobs hold a compressed body each (up to MAX_PACKET): a short queue.
            let pipeline =
                Pipeline::start(next_job, decoder, place.clone(), threads, 2 * threads).map_err(|e| place.io(e))?;
            Mode::Parallel(pipeline)
        } else {
            Mode::Inline { framer, decoder, scratch: Vec::new() }
        };
        Ok(Aedat4Source {
            info: SourceInfo { format: header.format, streams: header.streams },
            name: place.input,
            mode,
        })
    }
}

impl Aedat4Source<BufReader<File>> {
    /// A file on disk. With `threads` > 1, workers read packet bodies by position (pread) and
    /// decode them, so that reading the page cache is spread over the workers too.
    pub fn open_path(reader: BufReader<File>, name: &str, threads: usize) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        read_magic(&mut input)?;
        if threads <= 1 {
            let (header, framer) = Self::read_header_and_framer(input, Format::Aedat4)?;
            return Self::start(header, framer, 1);
        }
        let header = read_header(&mut input, Format::Aedat4)?;
        let place = input.place().clone();
        let file = Arc::new(input.into_inner().into_inner());
        let mut framer =
            FileFramer::new(Arc::clone(&file), place.clone(), header.data_end, stream_kinds(&header.streams))?;
        let decoder = PacketDecoder::new(place.input.clone(), header.compression);
        let next_job = move || Ok(framer.next()?.map(|head| Job::At(head, Arc::clone(&file))));
        // A positioned job is a packet header: queue many.
        let pipeline =
            Pipeline::start(next_job, decoder, place.clone(), threads, 16 * threads).map_err(|e| place.io(e))?;
        Ok(Aedat4Source {
            info: SourceInfo { format: header.format, streams: header.streams },
            name: place.input,
            mode: Mode::Parallel(pipeline),
        })
    }
}

fn read_magic<R: BufRead>(input: &mut ByteInput<R>) -> Result<(), EventError> {
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic, "the AEDAT4 magic line #!AER-DAT4.0")?;
    if magic != MAGIC {
        let (want, found) = (String::from_utf8_lossy(MAGIC), String::from_utf8_lossy(&magic));
        return Err(input.place().malformed_at(0, format!("expected {want:?}, found {found:?}")));
    }
    Ok(())
}

/// Kind of each stream id, indexed by id (ids are small: at most 1024).
fn stream_kinds(streams: &[StreamInfo]) -> Vec<Option<StreamKind>> {
    let mut kinds = Vec::new();
    for s in streams {
        let id = s.id as usize;
        if kinds.len() <= id {
            kinds.resize(id + 1, None);
        }
        kinds[id] = Some(s.kind);
    }
    kinds
}

impl<R: BufRead + Send + 'static> EventSource for Aedat4Source<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        match &mut self.mode {
            Mode::Inline { framer, decoder, scratch } => framer.next_decoded(decoder, scratch),
            Mode::Parallel(pipeline) => pipeline.next(),
        }
    }
}
