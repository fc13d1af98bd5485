//! Which events make one event image. The datasets use the exposure interval of each APS frame
//! or N equal time slices of a clip; a live daemon also wants fixed-time and fixed-count
//! windows. Events are time-ordered (decoders deliver them so), which makes every cut a
//! binary search.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::events::Event;

/// How windows are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode", deny_unknown_fields)]
pub enum WindowMode {
    /// Each RGB frame's exposure interval (DAVIS APS: exposure start..end).
    Exposure,
    /// From the previous RGB frame's timestamp to this one's (every event is used once).
    FrameInterval,
    /// Fixed duration, µs.
    Time { us: i64 },
    /// Fixed number of events.
    Count { events: usize },
}

/// One window: the events with start <= t < end.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub events: Vec<Event>,
}

/// The events of `events` (time-ordered) with start <= t < end.
pub fn slice(events: &[Event], start: i64, end: i64) -> &[Event] {
    let a = events.partition_point(|e| e.t < start);
    let b = a + events[a..].partition_point(|e| e.t < end);
    &events[a..b]
}

/// `n` equal time slices of a clip's events (the datasets' second way to make event frames).
pub fn time_slices(events: &[Event], n: usize) -> Vec<(i64, i64, &[Event])> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Vec::new() };
    let n = n.max(1) as i64;
    let span = last.t + 1 - first.t;
    (0..n)
        .map(|i| {
            let (s, e) = (first.t + span * i / n, first.t + span * (i + 1) / n);
            (s, e, slice(events, s, e))
        })
        .collect()
}

/// The FrameInterval windows of frames at `times`: from the previous frame to this one. The
/// first frame's window is as long as the next interval (or 33 ms for a single frame).
pub fn frame_interval_windows(times: &[i64]) -> Vec<(i64, i64)> {
    let first_len = match times {
        [a, b, ..] => (b - a).max(1),
        _ => 33_333,
    };
    times.iter().enumerate().map(|(i, &t)| (if i == 0 { t - first_len } else { times[i - 1] }, t)).collect()
}

/// Cuts a live, time-ordered event stream into windows with bounded memory: fixed-time and
/// fixed-count windows come out of [`Windower::push`]; frame-aligned ones are asked for with
/// [`Windower::take`] once the stream has passed the window's end.
#[derive(Debug)]
pub struct Windower {
    mode: WindowMode,
    buf: VecDeque<Event>,
    max_buffered: usize,
    /// Latest event time seen: a window ending at or before it is complete.
    watermark: i64,
    next_start: Option<i64>,
    dropped: u64,
}

impl Windower {
    /// `max_buffered` bounds the events held while waiting for a window to complete; beyond
    /// it the oldest are dropped and counted.
    pub fn new(mode: WindowMode, max_buffered: usize) -> Self {
        Windower {
            mode,
            buf: VecDeque::new(),
            max_buffered: max_buffered.max(1),
            watermark: i64::MIN,
            next_start: None,
            dropped: 0,
        }
    }

    pub fn mode(&self) -> WindowMode {
        self.mode
    }

    /// Events dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Adds events; returns the fixed-time or fixed-count windows they complete.
    pub fn push(&mut self, events: &[Event]) -> Vec<Window> {
        let mut out = Vec::new();
        for &e in events {
            if e.t < self.watermark {
                continue; // out of order (a clock reset): windows must stay monotonic
            }
            self.watermark = e.t;
            match self.mode {
                WindowMode::Time { us } => {
                    let start = *self.next_start.get_or_insert(e.t);
                    if e.t >= start + us.max(1) {
                        let end = start + us.max(1);
                        out.push(Window { start, end, events: self.buf.drain(..).collect() });
                        // Skip empty windows in a quiet stretch: the next window holds e.
                        let gaps = (e.t - end) / us.max(1);
                        self.next_start = Some(end + gaps * us.max(1));
                    }
                }
                WindowMode::Count { .. } => {
                    self.next_start.get_or_insert(e.t);
                }
                WindowMode::Exposure | WindowMode::FrameInterval => {}
            }
            if self.buf.len() >= self.max_buffered {
                self.buf.pop_front();
                self.dropped += 1;
            }
            self.buf.push_back(e);
            if let WindowMode::Count { events: n } = self.mode {
                if self.buf.len() >= n.max(1) {
                    let events: Vec<Event> = self.buf.drain(..).collect();
                    let (start, end) = (events[0].t, e.t + 1);
                    out.push(Window { start, end, events });
                }
            }
        }
        out
    }

    /// The frame-aligned window [start, end), once the stream has reached `end` (None before).
    /// Events before `end` are then released: frames come in time order.
    pub fn take(&mut self, start: i64, end: i64) -> Option<Window> {
        if self.watermark < end {
            return None;
        }
        Some(self.take_now(start, end))
    }

    /// The window [start, end) with whatever has arrived (end of stream, or a timeout).
    pub fn take_now(&mut self, start: i64, end: i64) -> Window {
        let events = self.buf.iter().filter(|e| e.t >= start && e.t < end).copied().collect();
        while self.buf.front().is_some_and(|e| e.t < end) {
            self.buf.pop_front();
        }
        Window { start, end, events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evs(ts: &[i64]) -> Vec<Event> {
        ts.iter().map(|&t| Event { t, x: 0, y: 0, p: true }).collect()
    }

    #[test]
    fn slices_are_half_open_and_cover_the_clip() {
        let e = evs(&[0, 5, 10, 10, 19]);
        assert_eq!(slice(&e, 5, 10).len(), 1);
        let s = time_slices(&e, 2);
        assert_eq!(s.iter().map(|w| w.2.len()).sum::<usize>(), 5);
        assert_eq!((s[0].0, s[0].1, s[1].1), (0, 10, 20));
    }

    #[test]
    fn fixed_time_windows_skip_gaps() {
        let mut w = Windower::new(WindowMode::Time { us: 10 }, 100);
        let out = w.push(&evs(&[0, 3, 12, 45, 46]));
        assert_eq!(out.iter().map(|w| (w.start, w.end, w.events.len())).collect::<Vec<_>>(), [(0, 10, 2), (10, 20, 1)]);
        let out = w.push(&evs(&[50]));
        assert_eq!((out[0].start, out[0].end, out[0].events.len()), (40, 50, 2));
    }

    #[test]
    fn count_windows_and_frame_windows() {
        let mut w = Windower::new(WindowMode::Count { events: 2 }, 100);
        assert_eq!(w.push(&evs(&[1, 2, 3])).len(), 1);
        let mut f = Windower::new(WindowMode::Exposure, 3);
        f.push(&evs(&[1, 2, 3, 4, 5]));
        assert_eq!(f.dropped(), 2);
        assert!(f.take(3, 9).is_none(), "the stream has not reached 9");
        assert_eq!(f.take(3, 5).unwrap().events.len(), 2);
        assert_eq!(f.take_now(0, 100).events.len(), 1);
    }
}
