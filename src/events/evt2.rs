//! Prophesee EVT 2.0: little-endian u32 words, type in bits 31..28.
//! CD_OFF (0x0) / CD_ON (0x1): y bits 10..0, x bits 21..11, timestamp bits 5..0 in bits 27..22;
//! TIME_HIGH (0x8): timestamp bits 33..6 in bits 27..0; EXT_TRIGGER (0xA): value bit 0, id bits
//! 12..8. Words before the first TIME_HIGH have no time base and are skipped.

use super::raw::WordDecoder;
use super::{Event, Trigger};

#[derive(Debug, Default)]
pub struct Evt2Decoder {
    time_high: Option<i64>,
}

impl WordDecoder for Evt2Decoder {
    const WORD: usize = 4;

    /// Decodes whole words; appends to `events` and `triggers`.
    fn decode(&mut self, bytes: &[u8], events: &mut Vec<Event>, triggers: &mut Vec<Trigger>) {
        events.reserve(bytes.len() / 4);
        for w in bytes.chunks_exact(4) {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let kind = w >> 28;
            match (kind, self.time_high) {
                (0x8, _) => self.time_high = Some(((w & 0x0FFF_FFFF) as i64) << 6),
                (0x0 | 0x1, Some(high)) => events.push(Event {
                    t: high | ((w >> 22) & 0x3F) as i64,
                    x: ((w >> 11) & 0x7FF) as u16,
                    y: (w & 0x7FF) as u16,
                    p: kind == 0x1,
                }),
                (0xA, Some(high)) => {
                    triggers.push(Trigger { t: high | ((w >> 22) & 0x3F) as i64, kind: (w & 1) as i8 })
                }
                _ => {}
            }
        }
    }
}
