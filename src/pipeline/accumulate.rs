//! The accumulate stage: one thread per stream takes its capture queue, pairs each frame with
//! its event window, renders the event image (as the model says: `safe.events`), turns both
//! images into normalised tensors, and sends them to the inference stage over a bounded
//! channel. Streams render and preprocess in parallel, and alongside inference.
//!
//! When inference falls behind, the channel fills and this thread waits; its capture queue
//! then absorbs the input and drops by its policy (a capture thread never waits).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};

use super::lifecycle::{Heartbeat, DRAIN_BUDGET};
use crate::accumulate::{Representation, WindowMode};
use crate::capture::dataset::SampleStart;
use crate::capture::{CaptureLink, Item};
use crate::infer::stream_cache::InputSpec;
use crate::sink::StreamCounters;
use crate::sync::{Pair, Pairer};
use crate::view::ViewHub;

/// How often drop and reconnect counts go to the metrics.
const EXPORT_EVERY: Duration = Duration::from_millis(100);

pub struct StreamOptions {
    /// The stream id in the output lines.
    pub name: String,
    /// Where its events come from (for messages).
    pub source: String,
    pub mode: WindowMode,
    pub sensor: (u32, u32),
    pub max_buffered_events: usize,
    pub hop: usize,
    /// False: event-only mode (the RGB branch sees the event image).
    pub has_frames: bool,
}

/// One frame/window pair, ready for the encoder.
pub struct Prepared {
    /// The window, µs.
    pub start: i64,
    pub end: i64,
    pub event_count: usize,
    /// When the last input this pair needed arrived (latency starts here).
    pub arrived: Instant,
    /// Normalised [3, S, S] tensors.
    pub rgb: Vec<f32>,
    pub events: Vec<f32>,
    pub preprocess: Duration,
}

/// What the accumulate stage sends on, in order per stream.
pub enum Work {
    /// Stream `.0`'s next pair.
    Pair(usize, Box<Prepared>),
    /// Stream `.0`'s connection ended: its held frames are to be forgotten.
    Reset(usize),
    /// Dataset replay: stream `.0` begins a sample (its held frames are forgotten).
    Begin(usize, Box<SampleStart>),
    /// Dataset replay: stream `.0`'s sample is over; every pair it made was sent before.
    End(usize, Option<String>),
}

/// A stream's live counts, shared with the pipeline (progress line, report).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub events: AtomicU64,
    pub frames: AtomicU64,
    pub pairs: AtomicU64,
    pub window_dropped: AtomicU64,
}

pub struct Accumulator {
    pub me: usize,
    pub opts: StreamOptions,
    pub link: CaptureLink,
    pub input: InputSpec,
    pub stats: Arc<StreamStats>,
    pub counters: Option<StreamCounters>,
    pub heartbeat: Heartbeat,
    /// The live view, handed the pair's images once they are tensors (when somebody watches).
    pub view: Option<ViewHub>,
    /// `[output.ros2] image_topic`: every pair's event image.
    pub ros2_images: Option<crate::sink::ros2::Ros2ImageTap>,
}

/// The thread's state beyond its configuration.
struct Running {
    a: Accumulator,
    pairer: Pairer,
    /// Whether frames are paired (the stream's setting, or the sample's in a dataset replay).
    has_frames: bool,
    pairs: Vec<Pair>,
    window_dropped_before: u64,
    /// Counters already passed to the metrics.
    exported: (u64, u64, u64, u64),
    /// Set when a stop is seen: the drain ends here.
    deadline: Option<Instant>,
}

impl Accumulator {
    pub fn spawn(self, tx: Sender<Work>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let name = format!("accumulate-{}", self.me);
        std::thread::Builder::new().name(name).spawn(move || {
            let pairer = new_pairer(self.opts.mode, self.opts.sensor, &self.opts, self.input.events);
            let mut r = Running {
                has_frames: self.opts.has_frames,
                a: self,
                pairer,
                pairs: Vec::new(),
                window_dropped_before: 0,
                exported: (0, 0, 0, 0),
                deadline: None,
            };
            r.run(&tx);
            r.export_counts();
            r.a.heartbeat.done();
        })
    }
}

fn new_pairer(mode: WindowMode, sensor: (u32, u32), o: &StreamOptions, events: Representation) -> Pairer {
    Pairer::new(mode, sensor, o.max_buffered_events).with_representation(events)
}

impl Running {
    fn run(&mut self, tx: &Sender<Work>) {
        let mut exported = Instant::now();
        loop {
            self.a.heartbeat.beat();
            if exported.elapsed() >= EXPORT_EVERY {
                self.export_counts();
                exported = Instant::now();
            }
            if self.a.link.stopped() && self.deadline.is_none() {
                self.deadline = Some(Instant::now() + DRAIN_BUDGET);
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let Some(item) = self.a.link.ring.pop() else {
                if self.deadline.is_some() || (self.a.link.status.is_done() && self.a.link.ring.is_empty()) {
                    // The end (or a stop with the queue drained): waiting frames get the events
                    // that came.
                    self.pairer.finish(&mut self.pairs);
                    self.send_pairs(tx);
                    return;
                }
                std::thread::sleep(Duration::from_micros(500));
                continue;
            };
            let after = self.push(item);
            if !self.send_pairs(tx) || after.is_some_and(|w| !self.send(tx, w)) {
                return;
            }
        }
    }

    /// Counts an item (for the report and the metrics) and hands it to the pairer; returns
    /// what to send after the pairs it completed.
    fn push(&mut self, item: Item) -> Option<Work> {
        let me = self.a.me;
        let s = &self.a.stats;
        let after = match item {
            Item::Events { events, arrived } => {
                s.events.fetch_add(events.len() as u64, Ordering::Relaxed);
                if let Some(c) = &self.a.counters {
                    c.events.inc_by(events.len() as u64);
                }
                self.pairer.push_events(&events, arrived, &mut self.pairs);
                None
            }
            Item::Frame { frame, arrived } => {
                s.frames.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = &self.a.counters {
                    c.frames.inc();
                }
                if self.has_frames {
                    self.pairer.push_frame(frame, arrived, &mut self.pairs);
                }
                None
            }
            Item::Rendered(r) => {
                s.frames.fetch_add(1, Ordering::Relaxed);
                let r = *r;
                self.pairs.push(Pair {
                    start: r.start,
                    end: r.end,
                    rgb: r.rgb,
                    events: r.events,
                    event_count: 0,
                    arrived: r.arrived,
                });
                None
            }
            // A sample's own windows and sensor; the pairer starts afresh.
            Item::SampleStart(start) => {
                self.pairer.finish(&mut self.pairs);
                self.window_dropped_before += self.pairer.dropped_events();
                self.pairer = new_pairer(start.mode, start.sensor, &self.a.opts, self.a.input.events);
                self.has_frames = start.has_frames;
                Some(Work::Begin(me, start))
            }
            Item::SampleEnd { error } => {
                self.pairer.finish(&mut self.pairs);
                Some(Work::End(me, error))
            }
            // The source learned its sensor size: event images are that size from now on.
            Item::Sensor(w, h) => {
                if (w, h) != self.a.opts.sensor {
                    self.pairer.finish(&mut self.pairs);
                    self.window_dropped_before += self.pairer.dropped_events();
                    self.a.opts.sensor = (w, h);
                    self.pairer = new_pairer(self.a.opts.mode, (w, h), &self.a.opts, self.a.input.events);
                }
                None
            }
            // A connection ended: its last frames get the events that came, then windows start
            // afresh (the next connection's clock is its own).
            Item::Reset => {
                self.pairer.finish(&mut self.pairs);
                self.window_dropped_before += self.pairer.dropped_events();
                self.pairer = new_pairer(self.a.opts.mode, self.a.opts.sensor, &self.a.opts, self.a.input.events);
                Some(Work::Reset(me))
            }
        };
        self.record_dropped();
        after
    }

    fn record_dropped(&self) {
        let dropped = self.window_dropped_before + self.pairer.dropped_events();
        self.a.stats.window_dropped.store(dropped, Ordering::Relaxed);
    }

    /// Preprocesses and sends the pairs made so far; false when the inference stage is gone.
    fn send_pairs(&mut self, tx: &Sender<Work>) -> bool {
        let pairs = std::mem::take(&mut self.pairs);
        for pair in pairs {
            let prepared = prepare(&pair, &self.a.input);
            if let Some(tap) = &self.a.ros2_images {
                tap.offer(self.a.me, pair.end, &pair.events);
            }
            if let Some(view) = self.a.view.as_ref().filter(|v| v.wants_images()) {
                view.publish_images(self.a.me, pair.end, pair.events, pair.rgb);
            }
            self.a.stats.pairs.fetch_add(1, Ordering::Relaxed);
            if !self.send(tx, Work::Pair(self.a.me, Box::new(prepared))) {
                return false;
            }
        }
        true
    }

    /// Waits while the channel is full (beating, so a busy inference stage is not a stall), but
    /// not past a stop's drain deadline.
    fn send(&mut self, tx: &Sender<Work>, mut work: Work) -> bool {
        loop {
            match tx.send_timeout(work, Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Disconnected(_)) => return false,
                Err(SendTimeoutError::Timeout(back)) => {
                    self.a.heartbeat.beat();
                    if self.a.link.stopped() {
                        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + DRAIN_BUDGET);
                        if Instant::now() >= deadline {
                            return false;
                        }
                    }
                    work = back;
                }
            }
        }
    }

    /// Moves the drop and reconnect counts into the metrics (one atomic load each).
    fn export_counts(&mut self) {
        let Some(c) = &self.a.counters else { return };
        let link = &self.a.link;
        let now = (
            link.ring.dropped(),
            self.a.stats.window_dropped.load(Ordering::Relaxed),
            link.reconnects.load(Ordering::Relaxed),
            link.source_dropped.load(Ordering::Relaxed),
        );
        c.ring_dropped.inc_by(now.0 - self.exported.0.min(now.0));
        c.window_dropped.inc_by(now.1 - self.exported.1.min(now.1));
        c.reconnects.inc_by(now.2 - self.exported.2.min(now.2));
        c.source_dropped.inc_by(now.3 - self.exported.3.min(now.3));
        self.exported = now;
    }
}

/// The pair's two images as normalised tensors at the model's size.
fn prepare(pair: &Pair, input: &InputSpec) -> Prepared {
    let t0 = Instant::now();
    let (rgb, events) = (input.tensor(&pair.rgb), input.tensor(&pair.events));
    Prepared {
        start: pair.start,
        end: pair.end,
        event_count: pair.event_count,
        arrived: pair.arrived,
        rgb,
        events,
        preprocess: t0.elapsed(),
    }
}

/// The window mode a source can use: without frames, fixed-time windows (event-only mode).
pub fn effective_mode(mode: WindowMode, has_frames: bool, time_us: i64, source: &str) -> WindowMode {
    match (has_frames, mode) {
        (false, WindowMode::Exposure | WindowMode::FrameInterval) => {
            tracing::warn!(
                "{source}: no frames: event-only mode ({time_us} µs windows; the RGB branch sees event images, unlike the paper)"
            );
            WindowMode::Time { us: time_us }
        }
        (_, m) => m,
    }
}
