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

/// Decompresses and decodes packets; owns its scratch buffer and ZSTD context, so one per
/// thread.
pub struct PacketDecoder {
    place: Place,
    compression: Compression,
    decompressed: Vec<u8>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Clone for PacketDecoder {
    fn clone(&self) -> Self {
        PacketDecoder::new(self.place.input.clone(), self.compression)
    }
}

impl PacketDecoder {
    pub fn new(input: String, compression: Compression) -> Self {
        PacketDecoder { place: Place::new(input), compression, decompressed: Vec::new(), zstd: None }
    }

    pub fn is_uncompressed(&self) -> bool {
        self.compression == Compression::None
    }

    pub fn decode_raw(&mut self, raw: &RawPacket) -> Result<Packet, EventError> {
        self.decode(raw.stream, raw.kind, raw.body_at, &raw.body)
    }

    /// Decodes one packet body of stream `stream`; `body_at` is its input offset, for errors.
    pub fn decode(&mut self, stream: u32, kind: StreamKind, body_at: u64, body: &[u8]) -> Result<Packet, EventError> {
        #[cfg(target_endian = "little")]
        if self.compression == Compression::Zstd && kind == StreamKind::Events {
            if let Some(events) = self.zstd_events(body_at, body)? {
                return Ok(Packet { stream, data: PacketData::Events(events) });
            }
        }
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
                decompress_zstd(zstd_context(&mut self.zstd).map_err(bad)?, body, &mut self.decompressed)
                    .map_err(bad)?
            }
        };
        let Some(len) = len else { return Err(too_large(place, body_at)) };
        let fb = match self.compression {
            Compression::None => body,
            _ => &self.decompressed[..len],
        };
        let data = decode_body(fb, kind).map_err(|what| place.malformed_at(body_at, what))?;
        Ok(Packet { stream, data })
    }
}

/// What a ZSTD frame's header says of the frame.
enum ZstdFrame {
    /// No content size stated: stream it.
    Unsized,
    /// States more than `MAX_DECOMPRESSED`.
    TooLarge,
    /// Decompresses to `size` bytes from the first `len` bytes of the body.
    Sized { size: usize, len: usize },
}

/// Reads the first ZSTD frame's header of `body`; bytes after that frame are not the packet's.
fn zstd_frame(body: &[u8]) -> std::io::Result<ZstdFrame> {
    let size = zstd::zstd_safe::get_frame_content_size(body).map_err(|_| invalid_data("no ZSTD frame header"))?;
    let Some(size) = size else { return Ok(ZstdFrame::Unsized) };
    if size > MAX_DECOMPRESSED {
        return Ok(ZstdFrame::TooLarge);
    }
    let len = zstd::zstd_safe::find_frame_compressed_size(body).map_err(|_| invalid_data("a cut ZSTD frame"))?;
    Ok(ZstdFrame::Sized { size: size as usize, len })
}

/// Decompresses one sized frame in one call into `out`, which must hold `size` bytes.
fn decompress_zstd_sized<B: zstd::zstd_safe::WriteBuf + ?Sized>(
    zstd: &mut zstd::bulk::Decompressor<'static>,
    frame: &[u8],
    size: usize,
    out: &mut B,
) -> std::io::Result<usize> {
    let n = zstd.decompress_to_buffer(frame, out)?;
    if n != size {
        return Err(invalid_data(&format!("the ZSTD frame says {size} bytes, holds {n}")));
    }
    Ok(n)
}

impl PacketDecoder {
    /// A ZSTD event packet whose frame states its size, decompressed straight into the events'
    /// memory (no copy out of a scratch buffer). `None`: the frame states no size, so the
    /// caller streams it.
    #[cfg(target_endian = "little")]
    fn zstd_events(&mut self, body_at: u64, body: &[u8]) -> Result<Option<Vec<Event>>, EventError> {
        let place = &self.place;
        let bad =
            |e: std::io::Error| place.malformed_at(body_at, format!("packet body is not a valid zstd frame: {e}"));
        let (size, len) = match zstd_frame(body).map_err(bad)? {
            ZstdFrame::Unsized => return Ok(None),
            ZstdFrame::TooLarge => return Err(too_large(place, body_at)),
            ZstdFrame::Sized { size, len } => (size, len),
        };
        let mut bytes = super::in_place::EventBytes::with_capacity(size);
        let zstd = zstd_context(&mut self.zstd).map_err(bad)?;
        decompress_zstd_sized(zstd, &body[..len], size, &mut bytes).map_err(bad)?;
        bytes.finish().map(Some).map_err(|what| place.malformed_at(body_at, what))
    }
}

/// The decoder's ZSTD context, made on first use: one per packet was 7% of a ZSTD file's
/// decode time.
type Zstd = zstd::bulk::Decompressor<'static>;

fn zstd_context(slot: &mut Option<Zstd>) -> std::io::Result<&mut Zstd> {
    match slot {
        Some(z) => Ok(z),
        empty => Ok(empty.insert(zstd::bulk::Decompressor::new()?)),
    }
}

fn too_large(place: &Place, body_at: u64) -> EventError {
    EventError::TooLarge {
        input: place.input.clone(),
        offset: body_at,
        what: "a decompressed packet",
        value: MAX_DECOMPRESSED + 1,
        limit: MAX_DECOMPRESSED,
    }
}

/// Decompresses the first ZSTD frame of `body` into `buf` in one call when the frame says its
/// size (dv-processing's do), else streams it. Returns the length, or `None` past the limit.
fn decompress_zstd(
    zstd: &mut zstd::bulk::Decompressor<'static>,
    body: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    match zstd_frame(body)? {
        ZstdFrame::Unsized => {
            let dec = zstd::stream::read::Decoder::with_buffer(body)?.single_frame();
            read_limited(dec, buf, MAX_DECOMPRESSED)
        }
        ZstdFrame::TooLarge => Ok(None),
        ZstdFrame::Sized { size, len } => {
            buf.clear();
            buf.reserve(size);
            decompress_zstd_sized(zstd, &body[..len], size, buf).map(Some)
        }
    }
}

fn invalid_data(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i / 7).to_le_bytes()).collect()
    }

    fn decompress(body: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        let mut zstd = zstd::bulk::Decompressor::new()?;
        let mut buf = vec![0xAA; 17]; // stale bytes from an earlier packet must not show
        Ok(decompress_zstd(&mut zstd, body, &mut buf)?.map(|n| buf[..n].to_vec()))
    }

    #[test]
    fn zstd_frames_with_and_without_a_content_size_decode_alike() {
        let data = payload();
        let sized = zstd::bulk::compress(&data, 3).unwrap();
        let mut streamed = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut streamed, &data).unwrap();
        let streamed = streamed.finish().unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(), None);
        assert_eq!(decompress(&sized).unwrap().unwrap(), data);
        assert_eq!(decompress(&streamed).unwrap().unwrap(), data);
        // Bytes after the first frame are not part of the packet (as with a stream decoder).
        let mut trailing = sized.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(decompress(&trailing).unwrap().unwrap(), data);
    }

    /// An EVTS flatbuffer for `events`, as our writer (dv-processing's layout) makes it.
    fn evts(events: &[Event]) -> Vec<u8> {
        use crate::events::aedat4::writer::{Aedat4Writer, DeclKind, StreamDecl};
        let decl = [StreamDecl {
            id: 0,
            name: "events".into(),
            kind: DeclKind::Events,
            size: (346, 260),
            source: "test".into(),
        }];
        let header = Aedat4Writer::new(Vec::new(), Compression::None, &decl, false).unwrap().into_inner().unwrap();
        let mut writer = Aedat4Writer::new(Vec::new(), Compression::None, &decl, false).unwrap();
        writer.write_events(0, events).unwrap();
        let file = writer.into_inner().unwrap();
        file[header.len() + 8..].to_vec() // after the packet's stream id and size
    }

    fn decode_zstd_events(body: &[u8]) -> Result<Vec<Event>, EventError> {
        let mut decoder = PacketDecoder::new("test".into(), Compression::Zstd);
        match decoder.decode(0, StreamKind::Events, 100, body)?.data {
            PacketData::Events(events) => Ok(events),
            other => panic!("not events: {other:?}"),
        }
    }

    #[test]
    fn zstd_event_packets_decode_alike_in_place_and_streamed() {
        let events: Vec<Event> = (0..5000)
            .map(|i| Event {
                t: 1_700_000_000_000_000 + i / 3,
                x: (i % 346) as u16,
                y: (i % 260) as u16,
                p: i % 3 == 0,
            })
            .collect();
        let fb = evts(&events);
        let sized = zstd::bulk::compress(&fb, 1).unwrap();
        let mut streamed = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut streamed, &fb).unwrap();
        let streamed = streamed.finish().unwrap();
        assert_eq!(decode_zstd_events(&sized).unwrap(), events, "in place (the frame states its size)");
        assert_eq!(decode_zstd_events(&streamed).unwrap(), events, "streamed into the scratch buffer");
        assert_eq!(decode_zstd_events(&zstd::bulk::compress(&evts(&[]), 1).unwrap()).unwrap(), vec![]);
    }

    #[test]
    fn zstd_event_packets_in_place_reject_what_they_should() {
        let events = [Event { t: 5, x: 1, y: 2, p: true }];
        let mut wrong_id = evts(&events);
        wrong_id[8..12].copy_from_slice(b"FRME");
        let err = decode_zstd_events(&zstd::bulk::compress(&wrong_id, 1).unwrap()).unwrap_err().to_string();
        assert!(err.contains("expected a EVTS flatbuffer") && err.contains("100"), "{err}");
        let sized = zstd::bulk::compress(&evts(&events), 1).unwrap();
        let err = decode_zstd_events(&sized[..sized.len() - 1]).unwrap_err().to_string();
        assert!(err.contains("not a valid zstd frame"), "{err}");
        let mut lying = sized.clone();
        let fcs = 4 + 1 + usize::from(lying[4] & 0x20 == 0); // magic, descriptor, window byte
        let field = match lying[4] >> 6 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        assert_eq!(field, 1, "a small frame states its size in one byte");
        lying[fcs] = lying[fcs].wrapping_sub(1); // says one byte fewer than it holds
        let err = decode_zstd_events(&lying).unwrap_err().to_string();
        assert!(err.contains("zstd"), "{err}");
        let mut truncated_fb = evts(&events);
        truncated_fb.truncate(truncated_fb.len() - 20);
        let err = decode_zstd_events(&zstd::bulk::compress(&truncated_fb, 1).unwrap()).unwrap_err().to_string();
        assert!(err.contains("invalid flatbuffer"), "{err}");
    }

    #[test]
    fn zstd_frames_that_lie_or_are_cut_are_errors() {
        let data = payload();
        let sized = zstd::bulk::compress(&data, 3).unwrap();
        assert!(decompress(&sized[..sized.len() / 2]).is_err());
        assert!(decompress(&sized[..3]).is_err());
        // The 4-byte content size follows the magic and the frame header descriptor.
        let mut lying = sized.clone();
        lying[5..9].copy_from_slice(&(data.len() as u32 - 1).to_le_bytes());
        assert!(decompress(&lying).is_err());
        lying[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decompress(&lying), Ok(None)), "over MAX_DECOMPRESSED is None");
    }
}
