//! One AEDAT4 packet: decompression (with a hard size limit) and the flatbuffer decode.

use std::io::Read;

use super::schema::{self, size_prefixed_root, EventPacket};
use super::{Compression, MAX_DECOMPRESSED};
use crate::events::{Event, EventError, Frame, Imu, Packet, PacketData, PixelFormat, Place, StreamKind, Trigger};

/// A packet as framed from the input, not yet decompressed.
#[derive(Debug, Default)]
pub struct RawPacket {
    pub stream: u32,
    pub kind: StreamKind,
    pub body: Vec<u8>,
    /// Input offset of the body, for errors.
    pub body_at: u64,
}

/// Decompresses and decodes packets; owns its scratch buffer, so one per thread.
pub struct PacketDecoder {
    place: Place,
    compression: Compression,
    decompressed: Vec<u8>,
}

impl Clone for PacketDecoder {
    fn clone(&self) -> Self {
        PacketDecoder::new(self.place.input.clone(), self.compression)
    }
}

impl PacketDecoder {
    pub fn new(input: String, compression: Compression) -> Self {
        PacketDecoder { place: Place::new(input), compression, decompressed: Vec::new() }
    }

    pub fn is_uncompressed(&self) -> bool {
        self.compression == Compression::None
    }

    pub fn decode_raw(&mut self, raw: &RawPacket) -> Result<Packet, EventError> {
        self.decode(raw.stream, raw.kind, raw.body_at, &raw.body)
    }

    /// Decodes one packet body of stream `stream`; `body_at` is its input offset, for errors.
    pub fn decode(&mut self, stream: u32, kind: StreamKind, body_at: u64, body: &[u8]) -> Result<Packet, EventError> {
        let place = &self.place;
        let bad = |e: std::io::Error| {
            place.malformed_at(body_at, format!("packet body is not a valid {} frame: {e}", self.compression.name()))
        };
        let len = match self.compression {
            Compression::None => Some(body.len()),
            Compression::Lz4 => {
                let dec = lz4::Decoder::new(body).map_err(bad)?;
                read_limited(dec, &mut self.decompressed, MAX_DECOMPRESSED).map_err(bad)?
            }
            Compression::Zstd => {
                let dec = zstd::stream::read::Decoder::with_buffer(body).map_err(bad)?.single_frame();
                read_limited(dec, &mut self.decompressed, MAX_DECOMPRESSED).map_err(bad)?
            }
        };
        let Some(len) = len else {
            return Err(EventError::TooLarge {
                input: place.input.clone(),
                offset: body_at,
                what: "a decompressed packet",
                value: MAX_DECOMPRESSED + 1,
                limit: MAX_DECOMPRESSED,
            });
        };
        let fb = match self.compression {
            Compression::None => body,
            _ => &self.decompressed[..len],
        };
        let data = decode_body(fb, kind).map_err(|what| place.malformed_at(body_at, what))?;
        Ok(Packet { stream, data })
    }
}

/// Reads `reader` to its end into `buf`, which is kept at its largest size across calls so
/// that the decompressor writes straight into it (no intermediate copy, no re-zeroing).
/// Returns the length read, or `None` if it would exceed `limit`.
fn read_limited(mut reader: impl Read, buf: &mut Vec<u8>, limit: u64) -> std::io::Result<Option<usize>> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() as u64 > limit {
                return Ok(None);
            }
            let grown = (buf.len() * 2).max(1 << 16).min(limit as usize + 1);
            buf.resize(grown, 0);
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(Some(filled)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
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
