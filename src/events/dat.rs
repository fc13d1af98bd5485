//! Prophesee DAT (`.dat`: N-CARS, Gen1 automotive, 1Mpx): `% Key value` header lines (`Version`,
//! `Width`, `Height`, `T0`, `Date`; old files say `Data file containing Event2D events` and may
//! give no size), then one byte of event type and one of event size, then little-endian 8-byte
//! records: u32 timestamp (µs after `T0`), u32 with x, y and polarity. Version 2 (and files that
//! name no version) packs x in bits 0-13, y in 14-27, polarity in 28-31; version 1 packs x in
//! 0-8, y in 9-16, polarity in bit 17 (faery's `dat1`). Timestamps that wrap past 2^32 µs (71
//! minutes) are unwrapped; they are not otherwise reordered.

use std::io::BufRead;

use super::raw::WordChunks;
use super::{ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo, StreamKind, Trigger};

/// Event types a DAT file declares.
const TYPE_EVENT2D: u8 = 0;
const TYPE_CD: u8 = 12;
const TYPE_EXT_TRIGGER: u8 = 14;
const RECORD: usize = 8;
/// 1 MiB of records per read: a packet holds at most 128 Ki events.
const CHUNK: usize = 1 << 20;
const MAX_LINE: usize = 64 << 10;
const MAX_LINES: usize = 10_000;

/// Keys only a DAT header has (RAW headers are lower-case: `% evt`, `% format`, `% end`).
const DAT_KEYS: &[&str] = &["Version", "Width", "Height", "T0", "Data"];

/// Whether the `%` header at the start of `head` is a DAT header (not RAW's).
pub fn is_dat(head: &[u8]) -> bool {
    let mut dat = false;
    for line in head.split(|&b| b == b'\n') {
        let Some(body) = line.strip_prefix(b"%") else { break };
        let body = String::from_utf8_lossy(body);
        let key = body.split_whitespace().next().unwrap_or("");
        if matches!(key, "evt" | "format" | "end" | "geometry") {
            return false;
        }
        dat |= DAT_KEYS.contains(&key);
    }
    dat
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// x 9 bits, y 8 bits, polarity bit 17.
    V1,
    /// x 14 bits, y 14 bits, polarity bits 28-31.
    V2,
}

pub struct DatSource<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    chunks: WordChunks,
    layout: Layout,
    triggers: bool,
    clock: Clock,
}

/// Raw u32 timestamps to µs: `T0` plus 2^32 for every wrap seen.
struct Clock {
    t0: i64,
    last: u32,
    wraps: i64,
}

impl Clock {
    fn time(&mut self, raw: u32) -> i64 {
        if raw < self.last && self.last - raw > 1 << 31 {
            self.wraps += 1 << 32;
        }
        self.last = raw;
        self.t0 + self.wraps + raw as i64
    }
}

impl<R: BufRead> DatSource<R> {
    pub fn open(reader: R, name: &str) -> Result<Self, EventError> {
        let mut input = ByteInput::new(reader, name);
        let (mut version, mut width, mut height, mut t0) = (None, None, None, 0i64);
        for _ in 0..MAX_LINES {
            if input.peek_byte()? != Some(b'%') {
                break;
            }
            let at = input.offset();
            let Some(line) = input.read_line(MAX_LINE)? else { break };
            let line = String::from_utf8_lossy(&line);
            let mut words = line.trim_start_matches('%').split_whitespace();
            let (key, value) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let number = |what: &str| {
                value
                    .parse::<i64>()
                    .map_err(|_| input.place().malformed_at(at, format!("% {key} {value:?}: expected {what}")))
            };
            match key {
                "Version" => version = Some(number("a version number")?),
                "Width" => width = Some(number("a width")?),
                "Height" => height = Some(number("a height")?),
                "T0" => t0 = number("a start time in µs")?,
                _ => {}
            }
        }
        let at = input.offset();
        let mut kind = [0u8; 2];
        input.read_exact(&mut kind, "the event type and size bytes after the DAT header")?;
        let [event_type, event_size] = kind;
        let triggers = match event_type {
            TYPE_EVENT2D | TYPE_CD => false,
            TYPE_EXT_TRIGGER => true,
            other => {
                return Err(input.place().malformed_at(
                    at,
                    format!("DAT event type {other}: expected 0 (Event2D), 12 (CD) or 14 (external trigger)"),
                ))
            }
        };
        if event_size as usize != RECORD {
            return Err(input.place().malformed_at(at + 1, format!("DAT event size {event_size}: expected 8")));
        }
        let size = match (width, height) {
            (Some(w), Some(h)) => match (u16::try_from(w), u16::try_from(h)) {
                (Ok(w), Ok(h)) if w > 0 && h > 0 => Some((w, h)),
                _ => return Err(input.place().malformed(format!("DAT sensor size {w}x{h}: out of range"))),
            },
            _ => None,
        };
        let layout = if version == Some(1) { Layout::V1 } else { Layout::V2 };
        let mut info = SourceInfo::single_event_stream(Format::Dat, size, None);
        if triggers {
            info.streams[0].kind = StreamKind::Triggers;
            info.streams[0].name = "triggers".into();
        }
        let clock = Clock { t0, last: 0, wraps: 0 };
        Ok(DatSource { input, info, chunks: WordChunks::new(CHUNK), layout, triggers, clock })
    }
}

impl<R: BufRead + Send> EventSource for DatSource<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let DatSource { input, chunks, clock, layout, triggers, .. } = self;
        let Some((_, records)) = chunks.next(input, RECORD)? else {
            return Ok(None);
        };
        let words = records
            .chunks_exact(RECORD)
            .map(|r| (u32::from_le_bytes([r[0], r[1], r[2], r[3]]), u32::from_le_bytes([r[4], r[5], r[6], r[7]])));
        if *triggers {
            let triggers = words.map(|(t, d)| Trigger { t: clock.time(t), kind: (d & 1) as i8 }).collect();
            return Ok(Some(Packet { stream: 0, data: PacketData::Triggers(triggers) }));
        }
        let layout = *layout;
        let events = words
            .map(|(t, d)| {
                let (x, y, p) = match layout {
                    Layout::V1 => (d & 0x1FF, (d >> 9) & 0xFF, (d >> 17) & 1 != 0),
                    Layout::V2 => (d & 0x3FFF, (d >> 14) & 0x3FFF, d >> 28 != 0),
                };
                Event { t: clock.time(t), x: x as u16, y: y as u16, p }
            })
            .collect();
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
