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

use crate::accumulate::{frame_to_rgb, EventImage, Representation, Window, WindowMode, Windower};
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
    representation: Representation,
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
            representation: Representation::Image,
            last_frame_t: None,
            last_event_arrival: None,
            bad_frames: 0,
        }
    }

    /// Renders windows as `r` (the model's input; the event image by default).
    pub fn with_representation(mut self, r: Representation) -> Self {
        self.representation = r;
        self
    }

    /// One window's image. The event image reuses one canvas (no allocation per window).
    fn render(&mut self, events: &[Event]) -> RgbImage {
        match self.representation {
            Representation::Image => {
                self.canvas.clear();
                self.canvas.paint(events);
                self.canvas.image().clone()
            }
            r => {
                let (w, h) = self.canvas.image().dimensions();
                r.render(events, w, h)
            }
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
            let (start, end) = match (self.mode, self.last_frame_t) {
                (WindowMode::Exposure, _) => (frame.exposure_start, frame.exposure_end),
                (_, Some(last)) => (last, frame.t),
                // The first frame's window is as long as the interval to the next frame, as
                // the trainer renders it (`frame_interval_windows`): wait for that frame.
                (_, None) => match self.pending.get(1) {
                    Some((next, _)) => (frame.t - (next.t - frame.t).max(1), frame.t),
                    None if flush => (frame.t - 33_333, frame.t),
                    None => return,
                },
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
            let events = self.render(&window.events);
            out.push(Pair { start, end, rgb, events, event_count: window.events.len(), arrived: ready });
        }
    }

    fn event_only_pair(&mut self, w: Window, arrived: Instant) -> Pair {
        let img = self.render(&w.events);
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
        assert!(out.is_empty(), "the first frame's window waits for the next frame");
        p.push_frame(frame(200), now, &mut out);
        assert_eq!(out.len(), 1);
        // As long as the interval to the next frame, as the trainer renders it.
        assert_eq!((out[0].start, out[0].end, out[0].event_count), (0, 100, 2));
        p.finish(&mut out);
        assert_eq!((out[1].start, out[1].end, out[1].event_count), (100, 200, 1));
        let mut alone = Pairer::new(WindowMode::FrameInterval, (2, 2), 1000);
        alone.push_frame(frame(100), now, &mut out);
        alone.finish(&mut out);
        assert_eq!((out[2].start, out[2].end), (100 - 33_333, 100), "a single frame: 30 fps");
    }
}
