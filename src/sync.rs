//! Pairs each RGB frame with its event window and keeps the last F pairs: the input of one
//! recognition. A frame waits until the event stream has passed the end of its window (or the
//! stream has ended), so a window is never cut short by network jitter.
//!
//! Without RGB frames (event-only cameras), fixed-time windows stand in for frames and the
//! RGB branch gets the same event image: a departure from the paper, which always pairs a real
//! frame with its events, stated in the output as `"rgb": "events"`.

use std::collections::VecDeque;
use std::time::Instant;

use image::RgbImage;

use crate::accumulate::{frame_to_rgb, EventImage, Window, WindowMode, Windower};
use crate::events::{Event, Frame};

/// One frame and its event image, ready for the encoder.
#[derive(Debug, Clone)]
pub struct Pair {
    pub start: i64,
    pub end: i64,
    pub rgb: RgbImage,
    pub events: RgbImage,
    pub event_count: usize,
    /// When the last input this pair needed arrived (latency starts here).
    pub arrived: Instant,
}

pub struct Pairer {
    windower: Windower,
    mode: WindowMode,
    pending: VecDeque<(Frame, Instant)>,
    canvas: EventImage,
    last_frame_t: Option<i64>,
    last_event_arrival: Option<Instant>,
    /// Frames whose pixels did not match their size (skipped).
    pub bad_frames: u64,
}

impl Pairer {
    /// `sensor`: the event sensor's size (the canvas); `max_buffered`: events held while
    /// frames wait for their windows.
    pub fn new(mode: WindowMode, sensor: (u32, u32), max_buffered: usize) -> Self {
        Pairer {
            windower: Windower::new(mode, max_buffered),
            mode,
            pending: VecDeque::new(),
            canvas: EventImage::new(sensor.0, sensor.1),
            last_frame_t: None,
            last_event_arrival: None,
            bad_frames: 0,
        }
    }

    /// Events dropped by the window buffer's bound.
    pub fn dropped_events(&self) -> u64 {
        self.windower.dropped()
    }

    pub fn push_events(&mut self, events: &[Event], arrived: Instant, out: &mut Vec<Pair>) {
        self.last_event_arrival = Some(arrived);
        for w in self.windower.push(events) {
            // Fixed-time / fixed-count windows: event-only operation.
            out.push(self.event_only_pair(w, arrived));
        }
        self.drain_ready(false, out);
    }

    pub fn push_frame(&mut self, frame: Frame, arrived: Instant, out: &mut Vec<Pair>) {
        if matches!(self.mode, WindowMode::Exposure | WindowMode::FrameInterval) {
            self.pending.push_back((frame, arrived));
            self.drain_ready(false, out);
        }
    }

    /// End of stream: every waiting frame gets the events that came.
    pub fn finish(&mut self, out: &mut Vec<Pair>) {
        self.drain_ready(true, out);
    }

    fn drain_ready(&mut self, flush: bool, out: &mut Vec<Pair>) {
        while let Some((frame, arrived)) = self.pending.front() {
            let (start, end) = match self.mode {
                WindowMode::Exposure => (frame.exposure_start, frame.exposure_end),
                _ => (self.last_frame_t.unwrap_or(frame.t - 33_333), frame.t),
            };
            let window = match self.windower.take(start, end) {
                Some(w) => w,
                None if flush => self.windower.take_now(start, end),
                None => return,
            };
            let frame_arrived = *arrived;
            let Some((frame, _)) = self.pending.pop_front() else { return };
            self.last_frame_t = Some(frame.t);
            let Some(rgb) = frame_to_rgb(&frame) else {
                self.bad_frames += 1;
                continue;
            };
            let ready = self.last_event_arrival.map_or(frame_arrived, |e| e.max(frame_arrived));
            self.canvas.clear();
            self.canvas.paint(&window.events);
            out.push(Pair {
                start,
                end,
                rgb,
                events: self.canvas.image().clone(),
                event_count: window.events.len(),
                arrived: ready,
            });
        }
    }

    fn event_only_pair(&mut self, w: Window, arrived: Instant) -> Pair {
        self.canvas.clear();
        self.canvas.paint(&w.events);
        let img = self.canvas.image().clone();
        Pair { start: w.start, end: w.end, rgb: img.clone(), events: img, event_count: w.events.len(), arrived }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PixelFormat;

    fn frame(t: i64) -> Frame {
        Frame {
            t,
            exposure_start: t - 10,
            exposure_end: t,
            width: 2,
            height: 2,
            position: (0, 0),
            format: PixelFormat::Gray,
            pixels: vec![0; 4],
        }
    }

    #[test]
    fn a_frame_waits_for_its_events() {
        let now = Instant::now();
        let mut p = Pairer::new(WindowMode::FrameInterval, (2, 2), 1000);
        let mut out = Vec::new();
        p.push_events(&[Event { t: 5, x: 0, y: 0, p: true }], now, &mut out);
        p.push_frame(frame(100), now, &mut out);
        assert!(out.is_empty(), "events have only reached t=5");
        p.push_events(&[Event { t: 60, x: 1, y: 1, p: false }, Event { t: 120, x: 1, y: 0, p: true }], now, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].start, out[0].end, out[0].event_count), (100 - 33_333, 100, 2));
        p.push_frame(frame(200), now, &mut out);
        p.finish(&mut out);
        assert_eq!((out[1].start, out[1].end, out[1].event_count), (100, 200, 1));
    }
}
