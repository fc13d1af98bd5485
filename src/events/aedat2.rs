//! AEDAT 2.0 (jAER): `#` header lines, then big-endian records `u32 address, i32 timestamp`.
//! The `# AEChip:` line names the sensor, which fixes the address layout and the resolution.
//! jAER's origin is bottom-left; we flip y to top-left.

use std::io::BufRead;

use super::raw::WordChunks;
use super::{ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

const CHUNK: usize = 1 << 20;
const MAX_LINE: usize = 1 << 20;
/// jAER headers can hold ~200 KB of XML; more than this many lines is not a header.
const MAX_LINES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// DAVIS240/346: bit 31 = APS/IMU, y bits 30..22, x bits 21..12, polarity bit 11 (1 = ON),
    /// bit 10 = external event.
    Davis { width: u16, height: u16 },
    /// DVS128: x bits 7..1 (mirrored), y bits 14..8, bit 0 = 1 for OFF (jAER's DVS128 extractor).
    Dvs128,
}

impl Layout {
    fn from_chip(chip: &str) -> Option<Layout> {
        let c = chip.to_ascii_lowercase();
        if c.contains("dvs128") || c.contains("tmpdiff128") {
            Some(Layout::Dvs128)
        } else if c.contains("346") {
            Some(Layout::Davis { width: 346, height: 260 })
        } else if c.contains("240") {
            Some(Layout::Davis { width: 240, height: 180 })
        } else {
            None
        }
    }

    fn size(self) -> (u16, u16) {
        match self {
            Layout::Davis { width, height } => (width, height),
            Layout::Dvs128 => (128, 128),
        }
    }
}

pub struct Aedat2Source<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    layout: Layout,
    chunks: WordChunks,
}

impl<R: BufRead> Aedat2Source<R> {
    pub fn open(reader: R, name: &str) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        let mut chip = None;
        for _ in 0..MAX_LINES {
            if input.peek_byte()? != Some(b'#') {
                break;
            }
            let Some(line) = input.read_line(MAX_LINE)? else {
                break;
            };
            let line = String::from_utf8_lossy(&line);
            if let Some(rest) = line.trim_start_matches('#').trim().strip_prefix("AEChip:") {
                chip = Some(rest.trim().to_string());
            }
        }
        let chip =
            chip.ok_or_else(|| input.place().malformed("AEDAT 2.0 header has no `# AEChip:` line naming the sensor"))?;
        let layout = Layout::from_chip(&chip).ok_or_else(|| {
            input
                .place()
                .unsupported(format!("AEDAT 2.0 chip {chip:?}: only DAVIS240, DAVIS346 and DVS128 layouts are known"))
        })?;
        let info = SourceInfo::single_event_stream(Format::Aedat2, Some(layout.size()), Some(chip));
        Ok(Aedat2Source { input, info, layout, chunks: WordChunks::new(CHUNK) })
    }
}

/// Decodes 8-byte records; `base` is the byte offset of `bytes[0]`, for errors.
fn decode(layout: Layout, bytes: &[u8], base: u64, out: &mut Vec<Event>) -> Result<(), (u64, String)> {
    out.reserve(bytes.len() / 8);
    for (i, r) in bytes.chunks_exact(8).enumerate() {
        let a = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let t = i32::from_be_bytes([r[4], r[5], r[6], r[7]]) as i64;
        let (x, y, p) = match layout {
            Layout::Davis { width, height } => {
                if a & (1 << 31) != 0 || a & (1 << 10) != 0 {
                    continue; // APS sample, IMU sample or external event
                }
                let (x, y) = (((a >> 12) & 0x3FF) as u16, ((a >> 22) & 0x1FF) as u16);
                if x >= width || y >= height {
                    return Err((
                        base + 8 * i as u64,
                        format!("DVS address x={x} y={y} outside the {width}x{height} sensor"),
                    ));
                }
                (x, height - 1 - y, a & (1 << 11) != 0)
            }
            Layout::Dvs128 => (127 - ((a >> 1) & 0x7F) as u16, 127 - ((a >> 8) & 0x7F) as u16, a & 1 == 0),
        };
        out.push(Event { t, x, y, p });
    }
    Ok(())
}

impl<R: BufRead + Send> EventSource for Aedat2Source<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let mut events = Vec::new();
        while events.is_empty() {
            let Some((base, records)) = self.chunks.next(&mut self.input, 8)? else {
                return Ok(None);
            };
            if let Err((at, what)) = decode(self.layout, records, base, &mut events) {
                return Err(self.input.place().malformed_at(at, what));
            }
        }
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
