//! The payloads of ROS 2's `event_camera_msgs/msg/EventPacket`, by the message's `encoding`,
//! as event_camera_codecs (the ROS package that defines them) decodes them:
//!
//! - `evt3`: a Prophesee camera's EVT 3.0 words as metavision_driver publishes them. The
//!   decoder's state (time, row, vector base) carries from packet to packet, and time comes from
//!   the words (µs of sensor time); `time_base` is not used.
//! - `libcaer_cmp`: libcaer_driver's compact form, 16-bit words, code in bits 15..12: TIME_HIGH
//!   (0), TIME_LOW (1), ADDR_X (2), ADDR_Y (3: y, polarity bit 11; one event at the last x),
//!   VECT_BASE_Y (4), VECT_8 (5: a mask of events at y = base + i, base then moves on by 8). Time
//!   restarts at every packet: `time_base` (ns) plus (high << 12 | low) µs. x, the vector base and
//!   its polarity carry over.
//! - `libcaer`: libcaer's polarity events, 8 bytes each: u32 data (x bits 31..17, y bits 16..2,
//!   polarity bit 1), i32 timestamp (µs, 31 bits); time is `time_base` (ns) plus the timestamp,
//!   a drop within the packet being a wrap of the 31 bits.
//!
//! safed's times are µs: libcaer's nanoseconds are divided by 1000. Events outside the sensor
//! are left out and counted; a cut word or event at a packet's end is counted.

use std::str::FromStr;

use super::evt3::Evt3Decoder;
use super::raw::WordDecoder;
use super::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Evt3,
    LibcaerCmp,
    Libcaer,
}

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "evt3" => Ok(Encoding::Evt3),
            "libcaer_cmp" => Ok(Encoding::LibcaerCmp),
            "libcaer" => Ok(Encoding::Libcaer),
            other => Err(format!("unknown encoding {other:?} (safed reads evt3, libcaer_cmp, libcaer)")),
        }
    }
}

/// What a packet decoder counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounts {
    pub packets: u64,
    pub events: u64,
    /// Events outside the sensor (or with a negative libcaer time), left out.
    pub outside: u64,
    /// Packets whose last word or event was cut short.
    pub truncated: u64,
}

/// libcaer_cmp's state that carries from packet to packet.
#[derive(Debug, Clone, Copy, Default)]
struct CmpState {
    x: u16,
    base_y: u16,
    polarity: bool,
}

pub struct PacketDecoder {
    encoding: Encoding,
    width: u16,
    height: u16,
    evt3: Evt3Decoder,
    cmp: CmpState,
    counts: PacketCounts,
}

/// libcaer's timestamps are 31 bits wide.
const LIBCAER_WRAP_NS: u64 = (1 << 31) * 1000;

impl PacketDecoder {
    pub fn new(encoding: Encoding, width: u16, height: u16) -> Self {
        PacketDecoder {
            encoding,
            width,
            height,
            evt3: Evt3Decoder::default(),
            cmp: CmpState::default(),
            counts: PacketCounts::default(),
        }
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn counts(&self) -> PacketCounts {
        self.counts
    }

    /// Appends the packet's events to `out`.
    pub fn decode(&mut self, time_base_ns: u64, bytes: &[u8], out: &mut Vec<Event>) {
        self.counts.packets += 1;
        let start = out.len();
        let whole = match self.encoding {
            Encoding::Evt3 => {
                let mut triggers = Vec::new();
                self.evt3.decode(&bytes[..bytes.len() & !1], out, &mut triggers);
                bytes.len().is_multiple_of(2)
            }
            Encoding::LibcaerCmp => self.libcaer_cmp(time_base_ns, bytes, out),
            Encoding::Libcaer => self.libcaer(time_base_ns, bytes, out),
        };
        if !whole {
            self.counts.truncated += 1;
        }
        self.counts.outside += super::keep_inside(out, start, self.width, self.height);
        self.counts.events += (out.len() - start) as u64;
    }

    fn libcaer_cmp(&mut self, time_base_ns: u64, bytes: &[u8], out: &mut Vec<Event>) -> bool {
        let base_us = (time_base_ns / 1000) as i64;
        let (mut high, mut low) = (0i64, 0i64);
        let mut s = self.cmp;
        for w in bytes.chunks_exact(2) {
            let w = u16::from_le_bytes([w[0], w[1]]);
            let value = w & 0x0FFF;
            let t = base_us.saturating_add(high << 12 | low);
            match w >> 12 {
                0 => high = value as i64,
                1 => low = value as i64,
                2 => s.x = value & 0x7FF,
                3 => out.push(Event { t, x: s.x, y: value & 0x7FF, p: value & 0x800 != 0 }),
                4 => {
                    s.base_y = value & 0x7FF;
                    s.polarity = value & 0x800 != 0;
                }
                5 => {
                    let mut mask = value & 0xFF;
                    while mask != 0 {
                        let i = mask.trailing_zeros() as u16;
                        out.push(Event { t, x: s.x, y: s.base_y.wrapping_add(i), p: s.polarity });
                        mask &= mask - 1;
                    }
                    s.base_y = s.base_y.wrapping_add(8);
                }
                // VECT_12 and unused codes: the reference decoder skips them too.
                _ => {}
            }
        }
        self.cmp = s;
        bytes.len().is_multiple_of(2)
    }

    fn libcaer(&mut self, time_base_ns: u64, bytes: &[u8], out: &mut Vec<Event>) -> bool {
        let (mut high_ns, mut last_low) = (time_base_ns, 0i64);
        for e in bytes.chunks_exact(8) {
            let data = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let low = i32::from_le_bytes([e[4], e[5], e[6], e[7]]) as i64;
            if low < 0 {
                self.counts.outside += 1;
                continue;
            }
            if low < last_low {
                high_ns = high_ns.saturating_add(LIBCAER_WRAP_NS);
            }
            last_low = low;
            let t_ns = high_ns.saturating_add(low as u64 * 1000);
            let (x, y) = ((data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF);
            out.push(Event {
                t: (t_ns / 1000).min(i64::MAX as u64) as i64,
                x: x as u16,
                y: y as u16,
                p: data & 2 != 0,
            });
        }
        bytes.len().is_multiple_of(8)
    }
}

/// For the fuzz target: packets of each encoding (the first byte says where packets end), the
/// state carried across them; looking for panics and events outside the sensor.
#[doc(hidden)]
pub fn fuzz_packets(bytes: &[u8]) {
    let Some((&cut, rest)) = bytes.split_first() else { return };
    for encoding in [Encoding::Evt3, Encoding::LibcaerCmp, Encoding::Libcaer] {
        let mut d = PacketDecoder::new(encoding, 640, 480);
        let mut out = Vec::new();
        for (i, packet) in rest.chunks(cut as usize * 4 + 1).enumerate() {
            d.decode(i as u64 * 1_000_000, packet, &mut out);
        }
        assert_eq!(d.counts().events as usize, out.len());
        assert!(out.iter().all(|e| e.x < 640 && e.y < 480), "an event outside the sensor was kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[u16]) -> Vec<u8> {
        w.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn evt3_state_and_cut_words_carry_across_packets() {
        // TIME_HIGH 1, TIME_LOW 2, y 5, then x 7 ON: an event at t = 4096 + 2.
        let all = words(&[0x8001, 0x6002, 0x0005, 0x2807]);
        let mut d = PacketDecoder::new(Encoding::Evt3, 640, 480);
        let mut out = Vec::new();
        d.decode(0, &all[..4], &mut out);
        d.decode(0, &all[4..], &mut out);
        assert_eq!(out, [Event { t: 4098, x: 7, y: 5, p: true }]);
        // A word cut at the packet's end is counted (and lost).
        d.decode(0, &[0x07, 0x28, 0x01], &mut out);
        assert_eq!((out.len(), d.counts().truncated), (2, 1));
    }

    #[test]
    fn libcaer_cmp_times_restart_each_packet_from_time_base() {
        // x 3; TIME_HIGH 1, TIME_LOW 5; y 9 OFF; vector base y 20 ON, mask 0b101.
        let p = words(&[0x2003, 0x0001, 0x1005, 0x3009, 0x4814, 0x5005]);
        let mut d = PacketDecoder::new(Encoding::LibcaerCmp, 640, 480);
        let mut out = Vec::new();
        d.decode(7_000_000, &p, &mut out);
        let t = 7_000 + (1 << 12) + 5;
        assert_eq!(
            out,
            [Event { t, x: 3, y: 9, p: false }, Event { t, x: 3, y: 20, p: true }, Event { t, x: 3, y: 22, p: true }]
        );
        // The next packet: time from its own base, x kept.
        d.decode(9_000_000, &words(&[0x1002, 0x3001]), &mut out);
        assert_eq!(out[3], Event { t: 9_002, x: 3, y: 1, p: false });
    }

    #[test]
    fn libcaer_events_and_their_31_bit_wrap() {
        let ev = |x: u32, y: u32, p: u32, ts: i32| {
            [((x << 17) | (y << 2) | (p << 1) | 1).to_le_bytes(), ts.to_le_bytes()].concat()
        };
        let p = [ev(10, 20, 1, i32::MAX - 1), ev(11, 21, 0, 3), ev(1, 1, 1, -5)].concat();
        let mut d = PacketDecoder::new(Encoding::Libcaer, 346, 260);
        let mut out = Vec::new();
        d.decode(1_000, &p, &mut out);
        let wrap = 1i64 << 31;
        assert_eq!(
            out,
            [
                Event { t: 1 + i32::MAX as i64 - 1, x: 10, y: 20, p: true },
                Event { t: 1 + wrap + 3, x: 11, y: 21, p: false }
            ]
        );
        assert_eq!(d.counts().outside, 1, "a negative timestamp");
        d.decode(0, &p[..12], &mut out);
        assert_eq!(d.counts().truncated, 1);
    }

    #[test]
    fn encodings_by_name() {
        assert_eq!("libcaer_cmp".parse::<Encoding>(), Ok(Encoding::LibcaerCmp));
        assert!("mono".parse::<Encoding>().unwrap_err().contains("evt3, libcaer_cmp, libcaer"));
    }
}
