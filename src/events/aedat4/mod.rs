//! AEDAT 4.0: DV / dv-processing recordings, and (without the magic line) the live stream that
//! DV and dv-processing's NetworkWriter serve. One reader serves both: it yields the packets of
//! every stream in input order; compressed bodies are decompressed with hard size limits.

mod info_node;
mod schema;

use std::io::{BufRead, Read};

use super::{
    ByteInput, Event, EventError, EventSource, Format, Frame, Imu, Packet, PacketData, PixelFormat, SourceInfo,
    StreamKind, Trigger,
};
use schema::{size_prefixed_root, EventPacket, IoHeader};

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

pub struct Aedat4Source<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    compression: Compression,
    /// Where the file data table starts: packets end there.
    data_end: Option<u64>,
    /// Kind of each stream id, indexed by id (ids are small).
    kinds: Vec<Option<StreamKind>>,
    body: Vec<u8>,
    decompressed: Vec<u8>,
}

impl<R: BufRead> Aedat4Source<R> {
    /// A file: the magic line, then the IO header.
    pub fn open_file(reader: R, name: &str) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic, "the AEDAT4 magic line #!AER-DAT4.0")?;
        if magic != MAGIC {
            return Err(input.place().malformed_at(0, format!("expected {:?}, found {:?}", String::from_utf8_lossy(MAGIC), String::from_utf8_lossy(&magic))));
        }
        Self::after_magic(input, Format::Aedat4)
    }

    /// A live stream: the IO header comes first, with no magic line.
    pub fn open_stream(reader: R, name: &str) -> Result<Self, EventError> {
        Self::after_magic(ByteInput::new(reader, name), Format::Aedat4Stream)
    }

    fn after_magic(mut input: ByteInput<R>, format: Format) -> Result<Self, EventError> {
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
        let root = size_prefixed_root::<IoHeader>(&header)
            .map_err(|e| input.place().malformed_at(header_at, format!("IO header is not a valid IOHE flatbuffer: {e}")))?;
        let compression = Compression::from_header(root.compression()).ok_or_else(|| {
            input.place().malformed_at(header_at, format!("unknown compression {} (expected 0-4)", root.compression()))
        })?;
        let data_end = match root.data_table_position() {
            p if p < 0 => None,
            p => Some(p as u64),
        };
        let xml = root.info_node().unwrap_or("");
        let streams = info_node::parse(xml, compression)
            .map_err(|what| input.place().malformed_at(header_at, format!("IO header infoNode: {what}")))?;
        let mut kinds = Vec::new();
        for s in &streams {
            let id = s.id as usize;
            if kinds.len() <= id {
                kinds.resize(id + 1, None);
            }
            kinds[id] = Some(s.kind);
        }
        Ok(Aedat4Source {
            input,
            info: SourceInfo { format, streams },
            compression,
            data_end,
            kinds,
            body: Vec::new(),
            decompressed: Vec::new(),
        })
    }

    /// Reads the next packet header and body; `None` at a clean end.
    fn next_raw(&mut self) -> Result<Option<(u32, StreamKind, u64)>, EventError> {
        if let Some(end) = self.data_end {
            if self.input.offset() >= end {
                return Ok(None);
            }
        }
        let at = self.input.offset();
        let mut header = [0u8; 8];
        let got = self.input.read_some(&mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(self.input.place().truncated(format!("a packet header (8 bytes, got {got})")));
        }
        let stream = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let size = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if size < 0 {
            return Err(self.input.place().malformed_at(at, format!("packet size {size} is negative")));
        }
        let size = size as u64;
        if size > MAX_PACKET {
            return Err(self.input.place().too_large("a packet body", size, MAX_PACKET));
        }
        let kind = usize::try_from(stream).ok().and_then(|i| self.kinds.get(i).copied().flatten());
        let Some(kind) = kind else {
            return Err(self.input.place().malformed_at(
                at,
                format!("packet of stream {stream}, which the IO header does not declare"),
            ));
        };
        self.body.clear();
        self.input.read_into_vec(&mut self.body, size, "a packet body")?;
        Ok(Some((stream as u32, kind, at + 8)))
    }

    /// The decompressed, size-prefixed flatbuffer of the current packet.
    fn flatbuffer(&mut self, body_at: u64) -> Result<&[u8], EventError> {
        let place = self.input.place();
        let limit_err = || place.too_large("a decompressed packet", MAX_DECOMPRESSED + 1, MAX_DECOMPRESSED);
        match self.compression {
            Compression::None => return Ok(&self.body),
            Compression::Lz4 => {
                self.decompressed.clear();
                let mut dec = lz4_flex::frame::FrameDecoder::new(&self.body[..]).take(MAX_DECOMPRESSED + 1);
                dec.read_to_end(&mut self.decompressed)
                    .map_err(|e| place.malformed_at(body_at, format!("packet body is not a valid LZ4 frame: {e}")))?;
            }
            Compression::Zstd => {
                self.decompressed.clear();
                let dec = zstd::stream::read::Decoder::with_buffer(&self.body[..])
                    .map_err(|e| place.io(e))?
                    .single_frame();
                dec.take(MAX_DECOMPRESSED + 1)
                    .read_to_end(&mut self.decompressed)
                    .map_err(|e| place.malformed_at(body_at, format!("packet body is not a valid zstd frame: {e}")))?;
            }
        }
        if self.decompressed.len() as u64 > MAX_DECOMPRESSED {
            return Err(limit_err());
        }
        Ok(&self.decompressed)
    }
}

impl<R: BufRead + Send> EventSource for Aedat4Source<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        loop {
            let Some((stream, kind, body_at)) = self.next_raw()? else {
                return Ok(None);
            };
            if kind == StreamKind::Other {
                continue;
            }
            let place = self.input.place().clone();
            let fb = self.flatbuffer(body_at)?;
            let data = decode_body(fb, kind).map_err(|what| place.malformed_at(body_at, what))?;
            return Ok(Some(Packet { stream, data }));
        }
    }
}

/// Decodes one packet's flatbuffer by its stream's kind.
fn decode_body(fb: &[u8], kind: StreamKind) -> Result<PacketData, String> {
    let expect = |id: &[u8]| -> Result<(), String> {
        match schema::identifier(fb) {
            Some(found) if found == id => Ok(()),
            found => Err(format!(
                "expected a {} flatbuffer, found identifier {:?}",
                String::from_utf8_lossy(id),
                found.map(String::from_utf8_lossy)
            )),
        }
    };
    let invalid = |e: flatbuffers::InvalidFlatbuffer| format!("invalid flatbuffer: {e}");
    Ok(match kind {
        StreamKind::Events => {
            expect(b"EVTS")?;
            let packet = size_prefixed_root::<EventPacket>(fb).map_err(invalid)?;
            PacketData::Events(decode_events(packet.element_bytes()))
        }
        StreamKind::Frames => {
            expect(b"FRME")?;
            let f = size_prefixed_root::<schema::Frame>(fb).map_err(invalid)?;
            PacketData::Frame(decode_frame(&f)?)
        }
        StreamKind::Imu => {
            expect(b"IMUS")?;
            let p = size_prefixed_root::<schema::ImuPacket>(fb).map_err(invalid)?;
            let imus = p.elements().into_iter().flatten().map(|s| Imu {
                t: s.timestamp(),
                temperature: s.float(1),
                accelerometer: [s.float(2), s.float(3), s.float(4)],
                gyroscope: [s.float(5), s.float(6), s.float(7)],
                magnetometer: [s.float(8), s.float(9), s.float(10)],
            });
            PacketData::Imu(imus.collect())
        }
        StreamKind::Triggers => {
            expect(b"TRIG")?;
            let p = size_prefixed_root::<schema::TriggerPacket>(fb).map_err(invalid)?;
            let triggers = p.elements().into_iter().flatten().map(|t| Trigger { t: t.timestamp(), kind: t.kind() });
            PacketData::Triggers(triggers.collect())
        }
        StreamKind::Other => unreachable!("skipped by the caller"),
    })
}

/// The hot loop: 16-byte little-endian records -> events. Coordinates are stored as i16; a
/// negative one cannot come from a sensor, and is kept as its bit pattern rather than clamped.
fn decode_events(bytes: &[u8]) -> Vec<Event> {
    bytes
        .chunks_exact(16)
        .map(|r| Event {
            t: i64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]),
            x: u16::from_le_bytes([r[8], r[9]]),
            y: u16::from_le_bytes([r[10], r[11]]),
            p: r[12] != 0,
        })
        .collect()
}

fn decode_frame(f: &schema::Frame) -> Result<Frame, String> {
    let format = match f.format() {
        0 => PixelFormat::Gray,
        16 => PixelFormat::Bgr,
        24 => PixelFormat::Bgra,
        other => return Err(format!("frame format {other} (expected 0 GRAY, 16 BGR or 24 BGRA)")),
    };
    let (w, h) = f.size();
    if w < 0 || h < 0 {
        return Err(format!("frame size {w}x{h} is negative"));
    }
    let pixels = f.pixels();
    let want = w as usize * h as usize * format.channels();
    if pixels.len() != want {
        return Err(format!("frame of {w}x{h} {format:?} needs {want} pixel bytes, has {}", pixels.len()));
    }
    Ok(Frame {
        t: f.timestamp(),
        exposure_start: f.start_of_exposure(),
        exposure_end: f.end_of_exposure(),
        width: w as u16,
        height: h as u16,
        position: f.position(),
        format,
        pixels: pixels.to_vec(),
    })
}
