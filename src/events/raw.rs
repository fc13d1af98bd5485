//! Prophesee RAW files: the text header (`% key value` lines) and the source that feeds the
//! data words to an EVT 2.0 or EVT 3.0 word decoder in large chunks.

use std::io::BufRead;

use super::{
    ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo, StreamInfo, StreamKind, Trigger,
};

/// A stateful decoder of one RAW word format.
pub trait WordDecoder: Default + Send {
    /// Bytes per word.
    const WORD: usize;
    /// Decodes whole words, appending to `events` and `triggers`.
    fn decode(&mut self, bytes: &[u8], events: &mut Vec<Event>, triggers: &mut Vec<Trigger>);
}

/// 1 MiB of words per read: a batch holds at most 512 Ki events.
const CHUNK: usize = 1 << 20;

pub struct RawSource<R, D> {
    input: ByteInput<R>,
    info: SourceInfo,
    chunks: WordChunks,
    decoder: D,
    triggers: Vec<Trigger>,
}

impl<R: BufRead, D: WordDecoder> RawSource<R, D> {
    pub fn new(input: ByteInput<R>, header: &RawHeader) -> Self {
        RawSource {
            input,
            info: header.source_info(),
            chunks: WordChunks::new(CHUNK),
            decoder: D::default(),
            triggers: Vec::new(),
        }
    }

    fn take_triggers(&mut self) -> Packet {
        Packet { stream: 1, data: PacketData::Triggers(std::mem::take(&mut self.triggers)) }
    }
}

impl<R: BufRead + Send, D: WordDecoder> EventSource for RawSource<R, D> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    /// Events of a chunk come first, then the triggers decoded with them (stream 1).
    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        if !self.triggers.is_empty() {
            return Ok(Some(self.take_triggers()));
        }
        let mut events = Vec::new();
        while events.is_empty() && self.triggers.is_empty() {
            let Some((_, words)) = self.chunks.next(&mut self.input, D::WORD)? else {
                return Ok(None);
            };
            self.decoder.decode(words, &mut events, &mut self.triggers);
        }
        if events.is_empty() {
            return Ok(Some(self.take_triggers()));
        }
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evt {
    V2,
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub evt: Evt,
    pub size: Option<(u16, u16)>,
    pub camera: Option<String>,
}

impl RawHeader {
    pub fn source_info(&self) -> SourceInfo {
        let format = match self.evt {
            Evt::V2 => Format::Evt2,
            Evt::V3 => Format::Evt3,
        };
        let mut info = SourceInfo::single_event_stream(format, self.size, self.camera.clone());
        info.streams.push(StreamInfo {
            id: 1,
            name: "triggers".into(),
            kind: StreamKind::Triggers,
            type_id: "EXT_TRIGGER".into(),
            size: None,
            compression: "none".into(),
            source: None,
        });
        info
    }
}

const MAX_LINE: usize = 64 << 10;
const MAX_LINES: usize = 10_000;

/// Sensor sizes of known Prophesee sensors, for old headers that name the plugin but not the size.
fn size_from_name(name: &str) -> Option<(u16, u16)> {
    let n = name.to_ascii_lowercase();
    if n.contains("genx320") {
        Some((320, 320))
    } else if n.contains("imx636") || n.contains("gen41") || n.contains("gen4") {
        Some((1280, 720))
    } else if n.contains("gen3") || n.contains("gen31") {
        Some((640, 480))
    } else {
        None
    }
}

/// Reads header lines while they start with `%` (or up to `% end`); returns the input
/// positioned at the first data byte.
pub fn read_header<R: BufRead>(reader: R, name: &str) -> Result<(ByteInput<R>, RawHeader), EventError> {
    let mut input = ByteInput::new(reader, name);
    let (mut evt, mut size, mut camera) = (None, None, None);
    for _ in 0..MAX_LINES {
        if input.peek_byte()? != Some(b'%') {
            break;
        }
        let at = input.offset();
        let Some(line) = input.read_line(MAX_LINE)? else {
            break;
        };
        let line = String::from_utf8_lossy(&line);
        let body = line.trim_start_matches('%').trim();
        let (key, value) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let value = value.trim();
        match key {
            "end" => break,
            "evt" => {
                evt = Some(match value {
                    "2.0" => Evt::V2,
                    "3.0" => Evt::V3,
                    other => {
                        return Err(input
                            .place()
                            .malformed_at(at, format!("% evt {other}: only EVT 2.0 and 3.0 are supported")))
                    }
                })
            }
            "format" => {
                let mut fields = value.split(';');
                match fields.next().unwrap_or("") {
                    "EVT2" => evt = evt.or(Some(Evt::V2)),
                    "EVT3" => evt = evt.or(Some(Evt::V3)),
                    other => {
                        return Err(input
                            .place()
                            .malformed_at(at, format!("% format {other}: only EVT2 and EVT3 are supported")))
                    }
                }
                let (mut w, mut h) = (None, None);
                for f in fields {
                    match f.split_once('=') {
                        Some(("width", v)) => w = v.trim().parse().ok(),
                        Some(("height", v)) => h = v.trim().parse().ok(),
                        _ => {}
                    }
                }
                if let (Some(w), Some(h)) = (w, h) {
                    size = Some((w, h));
                }
            }
            "geometry" if size.is_none() => {
                size = value.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
            }
            "plugin_name" | "system_ID" | "sensor_generation" | "camera_integrator_name" | "integrator_name" => {
                if size.is_none() {
                    size = size_from_name(value);
                }
                if key == "plugin_name" {
                    camera = Some(value.to_string());
                }
            }
            _ => {}
        }
    }
    let evt = evt.ok_or_else(|| {
        input.place().malformed("RAW header names no event format (expected `% evt 2.0|3.0` or `% format EVT2|EVT3`)")
    })?;
    Ok((input, RawHeader { evt, size, camera }))
}

/// The first read of a [`WordChunks`].
const START_CHUNK: usize = 64 << 10;

/// Reads a word stream in large chunks, carrying a partial word across chunk boundaries. The
/// buffer starts small and doubles while reads fill it, up to the chunk size: a short input
/// (one N-MNIST digit, a fuzz input) never pays for zeroing a megabyte.
pub struct WordChunks {
    buf: Vec<u8>,
    max: usize,
    /// A partial word left over from the last chunk, put in front of the next one.
    tail: [u8; 8],
    tail_len: usize,
}

impl WordChunks {
    pub fn new(chunk_bytes: usize) -> Self {
        WordChunks { buf: vec![0; chunk_bytes.min(START_CHUNK)], max: chunk_bytes, tail: [0; 8], tail_len: 0 }
    }

    /// The next chunk of whole `word`-byte words with the input offset of its first byte, or
    /// `None` at the end of the input. A partial word at the very end is an error.
    pub fn next<R: BufRead>(
        &mut self,
        input: &mut ByteInput<R>,
        word: usize,
    ) -> Result<Option<(u64, &[u8])>, EventError> {
        let carry = self.tail_len;
        self.buf[..carry].copy_from_slice(&self.tail[..carry]);
        let got = input.read_some(&mut self.buf[carry..])?;
        if carry + got == self.buf.len() && self.buf.len() < self.max {
            // Grown for the next read; this one's bytes stay where they are.
            self.buf.resize((self.buf.len() * 2).min(self.max), 0);
        }
        if got == 0 {
            if carry > 0 {
                return Err(input.place().truncated(format!("a {word}-byte word (got {carry} bytes)")));
            }
            return Ok(None);
        }
        let have = carry + got;
        let whole = have - have % word;
        self.tail_len = have - whole;
        self.tail[..self.tail_len].copy_from_slice(&self.buf[whole..have]);
        let start = input.offset() - have as u64;
        Ok(Some((start, &self.buf[..whole])))
    }
}
