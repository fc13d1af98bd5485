//! Prophesee RAW out: EVT 2.0 (u32 words: one CD word per event, TIME_HIGH when bits 33..6 of
//! t change) and EVT 3.0 (u16 words: TIME_HIGH / TIME_LOW when they change, ADDR_Y when y
//! does, one ADDR_X per event), with the `% evt`, `% format` and `% geometry` header lines
//! faery writes. RAW has no time origin: t must start at 0 or later (`--zero-time`), and EVT
//! 2.0 ends at 2^34 µs (4.8 hours).

use std::fs::File;
use std::io::{BufWriter, Write};

use super::{inside, io_error, unrepresentable, EventWriter, Target, WriteError};
use crate::events::Event;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Version {
    Evt2,
    Evt3,
}

/// EVT 3.0's 24-bit time wraps, and readers see a wrap only as TIME_HIGH going from its top
/// back to 0: across a gap every TIME_HIGH is written, one per 4096 µs, as a camera sends them
/// (faery loses wraps when TIME_HIGH steps by 1024; ours would not).
const EVT3_HIGH_STEP: i64 = 1;

pub struct RawOut {
    path: String,
    out: BufWriter<File>,
    version: Version,
    size: (u16, u16),
    index: u64,
    /// EVT2: the last TIME_HIGH written; EVT3: the last t>>12 (unwrapped), TIME_LOW and y.
    high: Option<i64>,
    low: i64,
    y: Option<u16>,
    last_t: i64,
    words: Vec<u8>,
}

impl RawOut {
    pub fn create(target: &Target, size: (u16, u16), version: Version) -> Result<Self, WriteError> {
        if size.0 > 2048 || size.1 > 2048 {
            return Err(WriteError::Unsupported {
                output: target.path.clone(),
                what: format!("RAW keeps 11 bits of x and y; the sensor is {}x{}", size.0, size.1),
            });
        }
        let file = File::create(&target.path).map_err(io_error(&target.path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let (evt, name) = match version {
            Version::Evt2 => ("2.0", "EVT2"),
            Version::Evt3 => ("3.0", "EVT3"),
        };
        let (w, h) = size;
        write!(out, "% evt {evt}\n% format {name};width={w};height={h}\n% geometry {w}x{h}\n")
            .map_err(io_error(&target.path))?;
        let path = target.path.clone();
        Ok(RawOut { path, out, version, size, index: 0, high: None, low: -1, y: None, last_t: 0, words: Vec::new() })
    }

    fn check(&self, e: &Event) -> Result<(), WriteError> {
        inside(&self.path, self.index, e, self.size)?;
        let what = if e.t < 0 {
            "RAW has no time origin and this t is negative: convert with --zero-time"
        } else if self.version == Version::Evt2 && e.t >= 1 << 34 {
            "EVT 2.0 keeps 34 bits of µs time: convert with --zero-time, or to EVT 3.0"
        } else if self.version == Version::Evt3 && self.high.is_none() && e.t >= 1 << 24 {
            "EVT 3.0 files start within 2^24 µs (their time wraps from 0): convert with --zero-time"
        } else if self.version == Version::Evt3 && e.t < self.last_t {
            "EVT 3.0 needs times in order (a step back reads as a wrap)"
        } else {
            return Ok(());
        };
        Err(unrepresentable(&self.path, self.index, e, what))
    }

    fn evt2(&mut self, e: &Event) {
        let high = e.t >> 6;
        if self.high != Some(high) {
            self.words.extend_from_slice(&((0x8u32 << 28) | (high as u32 & 0x0fff_ffff)).to_le_bytes());
            self.high = Some(high);
        }
        let word = (u32::from(e.p) << 28) | ((e.t as u32 & 0x3f) << 22) | (u32::from(e.x) << 11) | u32::from(e.y);
        self.words.extend_from_slice(&word.to_le_bytes());
    }

    fn evt3(&mut self, e: &Event) {
        let word = |ty: u16, v: u16| ((ty << 12) | (v & 0x0fff)).to_le_bytes();
        let high = e.t >> 12;
        if self.high != Some(high) {
            let mut at = self.high.unwrap_or(high);
            while high - at > EVT3_HIGH_STEP {
                at += EVT3_HIGH_STEP;
                self.words.extend_from_slice(&word(0x8, at as u16));
            }
            self.words.extend_from_slice(&word(0x8, high as u16));
            self.high = Some(high);
            self.low = -1;
        }
        let low = e.t & 0xfff;
        if self.low != low {
            self.words.extend_from_slice(&word(0x6, low as u16));
            self.low = low;
        }
        if self.y != Some(e.y) {
            self.words.extend_from_slice(&word(0x0, e.y));
            self.y = Some(e.y);
        }
        self.words.extend_from_slice(&word(0x2, (u16::from(e.p) << 11) | e.x));
    }
}

impl EventWriter for RawOut {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        self.words.clear();
        for e in events {
            self.check(e)?;
            match self.version {
                Version::Evt2 => self.evt2(e),
                Version::Evt3 => self.evt3(e),
            }
            self.last_t = e.t;
            self.index += 1;
        }
        self.out.write_all(&self.words).map_err(io_error(&self.path))
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        self.out.flush().map_err(io_error(&self.path))
    }
}
