//! ATIS `.bin` (N-MNIST, N-Caltech101): no header, 5 bytes per event: x, y, then polarity in
//! bit 7 of byte 2 and a 23-bit µs timestamp in the rest of bytes 2-4 (big-endian). A record
//! with y = 240 is a time-overflow marker, not an event: like the datasets' own readers
//! (Orchard's `Read_Ndataset`, tonic's `read_mnist_file`) every later timestamp gains 2^13 µs.
//!
//! The format has no magic, so `detect.rs` takes a file for ATIS only when nothing else matches
//! and [`looks_like_atis`] holds; `--input-format atis-bin` skips the guess.

use std::io::BufRead;

use super::raw::WordChunks;
use super::{ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

const RECORD: usize = 5;
const OVERFLOW_Y: u8 = 240;
const OVERFLOW_STEP: i64 = 1 << 13;
/// 640 KiB of records per read: a packet holds at most 128 Ki events.
const CHUNK: usize = RECORD << 17;
/// Records the guess looks at.
const GUESS_RECORDS: usize = 4096;

/// One record: (x, y, polarity, raw 23-bit time).
fn record(r: &[u8]) -> (u8, u8, bool, i64) {
    let t = ((r[2] as i64 & 0x7F) << 16) | (r[3] as i64) << 8 | r[4] as i64;
    (r[0], r[1], r[2] & 0x80 != 0, t)
}

/// Whether `head` (the first bytes of an input) reads as ATIS records: at least two whole
/// records, every y at most 240, and times that never go back but right after an overflow
/// marker. Random bytes fail within a few records (1 in 17 has y > 240); text fails too.
pub fn looks_like_atis(head: &[u8]) -> bool {
    let records = head.chunks_exact(RECORD).take(GUESS_RECORDS);
    if records.len() < 2 {
        return false;
    }
    let (mut clock, mut last) = (Clock::default(), 0);
    for r in records {
        let (_, y, _, t) = record(r);
        match clock.time(y, t) {
            _ if y > OVERFLOW_Y => return false,
            Some(t) if t < last => return false,
            Some(t) => last = t,
            None => last = 0,
        }
    }
    true
}

/// Raw times to µs: the overflows seen so far times 2^13, plus the record's own time.
#[derive(Default)]
struct Clock {
    overflow: i64,
}

impl Clock {
    /// The event's time, or `None` for an overflow marker.
    fn time(&mut self, y: u8, raw: i64) -> Option<i64> {
        if y == OVERFLOW_Y {
            self.overflow += OVERFLOW_STEP;
            return None;
        }
        Some(self.overflow + raw)
    }
}

pub struct AtisBinSource<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    chunks: WordChunks,
    clock: Clock,
}

impl<R: BufRead> AtisBinSource<R> {
    pub fn open(reader: R, name: &str) -> Self {
        // The file states no sensor size (N-MNIST is 34x34, N-Caltech101 up to 240x180).
        let info = SourceInfo::single_event_stream(Format::AtisBin, None, None);
        AtisBinSource {
            input: ByteInput::new(reader, name),
            info,
            chunks: WordChunks::new(CHUNK),
            clock: Clock::default(),
        }
    }
}

impl<R: BufRead + Send> EventSource for AtisBinSource<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let AtisBinSource { input, chunks, clock, .. } = self;
        let Some((_, records)) = chunks.next(input, RECORD)? else {
            return Ok(None);
        };
        let events = records
            .chunks_exact(RECORD)
            .filter_map(|r| {
                let (x, y, p, t) = record(r);
                clock.time(y, t).map(|t| Event { t, x: x as u16, y: y as u16, p })
            })
            .collect();
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
