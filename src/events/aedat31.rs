//! AEDAT 3.1 (cAER / libcaer; the DVS128 Gesture dataset): `#` header lines up to
//! `#!END-HEADER`, then packets of a 28-byte little-endian header and `number * size` bytes of
//! events. We decode POLARITY (type 1) and FRAME (type 2) packets; others are skipped. Bit 0 of
//! every event is its valid flag; 64-bit time = tsOverflow << 31 | the event's 31-bit time.

use std::collections::VecDeque;
use std::io::BufRead;

use super::{
    ByteInput, Event, EventError, EventSource, Format, Frame, Packet, PacketData, PixelFormat, SourceInfo, StreamInfo,
    StreamKind,
};

const END_HEADER: &[u8] = b"#!END-HEADER";
const MAX_LINE: usize = 64 << 10;
const MAX_LINES: usize = 10_000;
/// Largest packet body we accept: libcaer packets hold at most a few MB.
pub const MAX_PACKET: u64 = 64 << 20;
const POLARITY: i16 = 1;
const FRAME: i16 = 2;
const FRAME_HEADER: usize = 36;

fn sensor_size(source: &str) -> Option<(u16, u16)> {
    let s = source.to_ascii_uppercase();
    if s.contains("DVS128") {
        Some((128, 128))
    } else if s.contains("DAVIS346") {
        Some((346, 260))
    } else if s.contains("DAVIS240") {
        Some((240, 180))
    } else if s.contains("DVXPLORER") && s.contains("LITE") {
        Some((320, 240))
    } else if s.contains("DVXPLORER") {
        Some((640, 480))
    } else {
        None
    }
}

pub struct Aedat31Source<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    body: Vec<u8>,
    pending: VecDeque<Packet>,
}

impl<R: BufRead> Aedat31Source<R> {
    pub fn open(reader: R, name: &str) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        let mut source = None;
        let mut ended = false;
        for _ in 0..MAX_LINES {
            let at = input.offset();
            let Some(line) = input.read_line(MAX_LINE)? else {
                break;
            };
            if !line.starts_with(b"#") {
                return Err(input
                    .place()
                    .malformed_at(at, "AEDAT 3.1 header line does not start with '#' before #!END-HEADER"));
            }
            if line.starts_with(END_HEADER) {
                ended = true;
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.strip_prefix("#Source ") {
                if let Some((_, device)) = rest.split_once(':') {
                    source.get_or_insert_with(|| device.trim().to_string());
                }
            }
        }
        if !ended {
            return Err(input.place().truncated("the #!END-HEADER line of the AEDAT 3.1 header"));
        }
        let size = source.as_deref().and_then(sensor_size);
        let mut info = SourceInfo::single_event_stream(Format::Aedat31, size, source.clone());
        info.streams.push(StreamInfo {
            id: 1,
            name: "frames".into(),
            kind: StreamKind::Frames,
            type_id: "FRAME".into(),
            size,
            compression: "none".into(),
            source,
        });
        Ok(Aedat31Source { input, info, body: Vec::new(), pending: VecDeque::new() })
    }

    /// Reads packets until one yields something; queues frames (one packet each).
    fn read_packet(&mut self) -> Result<bool, EventError> {
        let at = self.input.offset();
        let mut h = [0u8; 28];
        match self.input.read_some(&mut h)? {
            0 => return Ok(false),
            28 => {}
            got => return Err(self.input.place().truncated(format!("a packet header (28 bytes, got {got})"))),
        }
        let i32_at = |o: usize| i32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let kind = i16::from_le_bytes([h[0], h[1]]);
        let (size, overflow, number) = (i32_at(4), i32_at(12), i32_at(20));
        if size <= 0 || number < 0 || overflow < 0 {
            return Err(self.input.place().malformed_at(
                at,
                format!("packet header with eventSize {size}, eventNumber {number}, tsOverflow {overflow}"),
            ));
        }
        let bytes = size as u64 * number as u64;
        if bytes > MAX_PACKET {
            return Err(self.input.place().too_large("a packet body", bytes, MAX_PACKET));
        }
        let body_at = at + 28;
        if kind != POLARITY && kind != FRAME {
            self.input.skip(bytes, "a packet body")?;
            return Ok(true);
        }
        self.body.clear();
        self.input.read_into_vec(&mut self.body, bytes, "a packet body")?;
        let epoch = (overflow as i64) << 31;
        let place = self.input.place();
        if kind == POLARITY {
            if size != 8 {
                return Err(place.malformed_at(at, format!("polarity packet with eventSize {size} (expected 8)")));
            }
            let events = decode_polarity(&self.body, epoch);
            if !events.is_empty() {
                self.pending.push_back(Packet { stream: 0, data: PacketData::Events(events) });
            }
        } else {
            for (i, e) in self.body.chunks_exact(size as usize).enumerate() {
                let frame_at = body_at + (i * size as usize) as u64;
                if let Some(frame) = decode_frame(e, epoch).map_err(|what| place.malformed_at(frame_at, what))? {
                    self.pending.push_back(Packet { stream: 1, data: PacketData::Frame(frame) });
                }
            }
        }
        Ok(true)
    }
}

fn decode_polarity(body: &[u8], epoch: i64) -> Vec<Event> {
    let mut events = Vec::with_capacity(body.len() / 8);
    for e in body.chunks_exact(8) {
        let data = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        if data & 1 == 0 {
            continue; // invalidated event
        }
        let ts = (i32::from_le_bytes([e[4], e[5], e[6], e[7]]) & 0x7FFF_FFFF) as i64;
        events.push(Event {
            t: epoch | ts,
            x: ((data >> 17) & 0x7FFF) as u16,
            y: ((data >> 2) & 0x7FFF) as u16,
            p: data & 2 != 0,
        });
    }
    events
}

/// One FRAME event: info, four timestamps, size and position, then u16 pixels (top-left
/// origin). Pixels are reduced to 8 bits, RGB(A) reordered to BGR(A) as AEDAT4 frames are.
fn decode_frame(e: &[u8], epoch: i64) -> Result<Option<Frame>, String> {
    if e.len() < FRAME_HEADER {
        return Err(format!("frame event of {} bytes, shorter than its {FRAME_HEADER}-byte header", e.len()));
    }
    let word = |i: usize| i32::from_le_bytes([e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3]]);
    let info = word(0) as u32;
    if info & 1 == 0 {
        return Ok(None);
    }
    let channels = ((info >> 1) & 0x7) as usize;
    let format = match channels {
        1 => PixelFormat::Gray,
        3 => PixelFormat::Bgr,
        4 => PixelFormat::Bgra,
        c => return Err(format!("frame with {c} colour channels (expected 1, 3 or 4)")),
    };
    let (w, h) = (word(5), word(6));
    if !(0..=u16::MAX as i32).contains(&w) || !(0..=u16::MAX as i32).contains(&h) {
        return Err(format!("frame size {w}x{h} out of range"));
    }
    let n = w as usize * h as usize * channels;
    let pixels = e.get(FRAME_HEADER..FRAME_HEADER + 2 * n).ok_or_else(|| {
        format!("frame of {w}x{h}x{channels} needs {} pixel bytes, event has {}", 2 * n, e.len() - FRAME_HEADER)
    })?;
    let mut out: Vec<u8> = pixels.chunks_exact(2).map(|p| p[1]).collect(); // high byte of LE u16
    if channels > 1 {
        out.chunks_exact_mut(channels).for_each(|px| px.swap(0, 2));
    }
    let t = |i: usize| epoch | (word(i) & 0x7FFF_FFFF) as i64;
    let (exp_start, exp_end) = (t(3), t(4));
    Ok(Some(Frame {
        t: exp_start + (exp_end - exp_start) / 2,
        exposure_start: exp_start,
        exposure_end: exp_end,
        width: w as u16,
        height: h as u16,
        position: (word(7) as i16, word(8) as i16),
        format,
        pixels: out,
    }))
}

impl<R: BufRead + Send> EventSource for Aedat31Source<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(Some(p));
            }
            if !self.read_packet()? {
                return Ok(None);
            }
        }
    }
}

/// Writes polarity events as an AEDAT 3.1 file (cAER's layout: the header, then POLARITY
/// packets of up to 4096 events, the 31-bit time overflow in each packet's header), as the
/// DVS128 Gesture recordings are. `device` names the `#Source 1:` line (`DVS128` gives the
/// reader its 128x128 size).
pub fn write_polarity(path: &std::path::Path, device: &str, events: &[Event]) -> std::io::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(w, "#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {device}\r\n#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")?;
    let mut rest = events;
    while !rest.is_empty() {
        // A packet holds events of one overflow epoch.
        let epoch = rest[0].t >> 31;
        let n = rest.iter().take(4096).take_while(|e| e.t >> 31 == epoch).count();
        let (now, later) = rest.split_at(n);
        rest = later;
        let header: [i32; 6] = [8, 4, epoch as i32, n as i32, n as i32, n as i32];
        w.write_all(&POLARITY.to_le_bytes())?;
        w.write_all(&1i16.to_le_bytes())?;
        for v in header {
            w.write_all(&v.to_le_bytes())?;
        }
        for e in now {
            let data = 1u32 | (e.p as u32) << 1 | (e.y as u32 & 0x7FFF) << 2 | (e.x as u32 & 0x7FFF) << 17;
            w.write_all(&data.to_le_bytes())?;
            w.write_all(&((e.t & 0x7FFF_FFFF) as i32).to_le_bytes())?;
        }
    }
    w.flush()
}
