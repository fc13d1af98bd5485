//! Prophesee EVT 3.0: little-endian u16 words, type in bits 15..12, state carried between words.
//! ADDR_Y (0x0) sets y; ADDR_X (0x2) is one event at x with polarity bit 11; VECT_BASE_X (0x3)
//! sets base x and polarity; VECT_12 (0x4) / VECT_8 (0x5) are masks of events from base x, which
//! then advances by 12 / 8; TIME_LOW (0x6) and TIME_HIGH (0x8) hold 12 bits each of a 24-bit
//! time that wraps every 2^24 µs; EXT_TRIGGER (0xA); OTHERS (0xE) and CONTINUED (0x7, 0xF) are
//! skipped. Words before the first TIME_HIGH are skipped.

use super::raw::WordDecoder;
use super::{Event, Trigger};

const WRAP: i64 = 1 << 24;
/// TIME_HIGH going back by more than half its range is a wrap, not sensor jitter.
const WRAP_THRESHOLD: i64 = 1 << 11;

#[derive(Debug, Default)]
pub struct Evt3Decoder {
    started: bool,
    /// Accumulated wraps of the 24-bit time, in µs.
    epoch: i64,
    time_high: i64,
    time_low: i64,
    y: u16,
    base_x: u16,
    polarity: bool,
}

impl Evt3Decoder {
    fn t(&self) -> i64 {
        self.epoch + (self.time_high << 12 | self.time_low)
    }

    fn vector(&mut self, mut mask: u32, width: u16, events: &mut Vec<Event>) {
        let (t, y, p) = (self.t(), self.y, self.polarity);
        while mask != 0 {
            let i = mask.trailing_zeros() as u16;
            events.push(Event {
                t,
                x: self.base_x.wrapping_add(i),
                y,
                p,
            });
            mask &= mask - 1;
        }
        self.base_x = self.base_x.wrapping_add(width);
    }
}

impl WordDecoder for Evt3Decoder {
    const WORD: usize = 2;

    fn decode(&mut self, bytes: &[u8], events: &mut Vec<Event>, triggers: &mut Vec<Trigger>) {
        events.reserve(bytes.len() / 2);
        for w in bytes.chunks_exact(2) {
            let w = u16::from_le_bytes([w[0], w[1]]);
            let kind = w >> 12;
            let value = w & 0x0FFF;
            if kind == 0x8 {
                let high = value as i64;
                if self.started && self.time_high - high > WRAP_THRESHOLD {
                    self.epoch += WRAP;
                }
                self.time_high = high;
                self.started = true;
                continue;
            }
            if !self.started {
                continue;
            }
            match kind {
                0x0 => self.y = value & 0x7FF,
                0x2 => events.push(Event {
                    t: self.t(),
                    x: value & 0x7FF,
                    y: self.y,
                    p: value & 0x800 != 0,
                }),
                0x3 => {
                    self.base_x = value & 0x7FF;
                    self.polarity = value & 0x800 != 0;
                }
                0x4 => self.vector(value as u32, 12, events),
                0x5 => self.vector((value & 0xFF) as u32, 8, events),
                0x6 => self.time_low = value as i64,
                0xA => triggers.push(Trigger {
                    t: self.t(),
                    kind: (value & 1) as i8,
                }),
                _ => {}
            }
        }
    }
}
