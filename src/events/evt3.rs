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

/// The decoder's state between words. `decode` works on a copy in locals (registers) and
/// writes it back once per chunk: the struct fields would otherwise be reloaded around every
/// push.
#[derive(Debug, Default, Clone, Copy)]
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
}

/// Every word but ADDR_Y, ADDR_X and TIME_LOW (and those before the first TIME_HIGH).
#[inline(never)]
fn rare_word(
    mut s: Evt3Decoder,
    mut t: i64,
    kind: u16,
    value: u16,
    events: &mut Vec<Event>,
    triggers: &mut Vec<Trigger>,
) -> (Evt3Decoder, i64) {
    match kind {
        0x8 => {
            let high = value as i64;
            if s.started && s.time_high - high > WRAP_THRESHOLD {
                s.epoch += WRAP;
            }
            s.time_high = high;
            s.started = true;
            t = s.t();
        }
        _ if !s.started => {}
        0x3 => {
            s.base_x = value & 0x7FF;
            s.polarity = value & 0x800 != 0;
        }
        0x4 => {
            push_vector(events, value as u32, s.base_x, t, s.y, s.polarity);
            s.base_x = s.base_x.wrapping_add(12);
        }
        0x5 => {
            push_vector(events, (value & 0xFF) as u32, s.base_x, t, s.y, s.polarity);
            s.base_x = s.base_x.wrapping_add(8);
        }
        0xA => triggers.push(Trigger { t, kind: (value & 1) as i8 }),
        _ => {}
    }
    (s, t)
}

fn push_vector(events: &mut Vec<Event>, mut mask: u32, base_x: u16, t: i64, y: u16, p: bool) {
    while mask != 0 {
        let i = mask.trailing_zeros() as u16;
        events.push(Event { t, x: base_x.wrapping_add(i), y, p });
        mask &= mask - 1;
    }
}

impl WordDecoder for Evt3Decoder {
    const WORD: usize = 2;

    fn decode(&mut self, bytes: &[u8], events: &mut Vec<Event>, triggers: &mut Vec<Trigger>) {
        events.reserve(bytes.len() / 2);
        let mut s = *self;
        let mut t = s.t();
        for w in bytes.chunks_exact(2) {
            let w = u16::from_le_bytes([w[0], w[1]]);
            let (kind, value) = (w >> 12, w & 0x0FFF);
            // The three common words inline, as plain branches: real streams are mostly
            // ADDR_Y / ADDR_X pairs and TIME_LOW, a pattern branch prediction learns. Everything
            // else goes out of line, so that the compiler does not turn the loop into a jump
            // table over all kinds (measured ~2x slower).
            if s.started {
                if kind == 0x0 {
                    s.y = value & 0x7FF;
                    continue;
                }
                if kind == 0x2 {
                    events.push(Event { t, x: value & 0x7FF, y: s.y, p: value & 0x800 != 0 });
                    continue;
                }
                if kind == 0x6 {
                    s.time_low = value as i64;
                    t = s.t();
                    continue;
                }
            }
            (s, t) = rare_word(s, t, kind, value, events, triggers);
        }
        *self = s;
    }
}
