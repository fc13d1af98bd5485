//! Dataset replay's capture threads: each takes the next sample of the split (shared among
//! them), reads it, and pushes it into its queue as a live source would (events and frames in
//! time order, or the dataset's own rendered pairs), paced as recorded or as fast as the
//! pipeline takes it, between a [`Item::SampleStart`] and an [`Item::SampleEnd`]. One sample is
//! held at a time, and its files are closed before the next is opened.
//!
//! Unlike a camera's capture thread, this one waits when its queue is full: a dataset is
//! scored on every frame, and a file can wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use image::RgbImage;

use super::{CaptureLink, Item, Pacer};
use crate::accumulate::{frame_to_rgb, WindowMode};
use crate::dataset::{load_clip, Sample, SampleClip, EVENT_ONLY_WINDOW_US};
use crate::infer::preprocess::load_image;

/// Events per pushed packet.
const PACKET_EVENTS: usize = 4096;

/// What the pipeline needs to know when a sample begins.
#[derive(Debug, Clone)]
pub struct SampleStart {
    /// Position in the split.
    pub index: usize,
    pub id: String,
    /// The dataset's class name.
    pub label: Option<String>,
    /// The pairs the sample will make (the clip protocol picks F of them).
    pub pairs: usize,
    pub events: u64,
    pub mode: WindowMode,
    pub sensor: (u32, u32),
    pub has_frames: bool,
    /// When the sample was taken up.
    pub started: Instant,
}

/// A frame-folder pair, as the dataset ships it.
#[derive(Debug)]
pub struct Rendered {
    pub start: i64,
    pub end: i64,
    pub rgb: RgbImage,
    pub events: RgbImage,
    pub arrived: Instant,
}

/// A sample to replay and its position in the split.
pub struct Planned {
    pub index: usize,
    pub sample: Sample,
    pub label: Option<String>,
}

/// The samples the capture threads share; each takes the next.
pub struct Feed {
    samples: Vec<Planned>,
    next: AtomicUsize,
}

impl Feed {
    pub fn new(samples: Vec<Planned>) -> Arc<Feed> {
        Arc::new(Feed { samples, next: AtomicUsize::new(0) })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples taken up so far.
    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.samples.len())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Recorded-time factor (None: as fast as the pipeline takes it).
    pub speed: Option<f64>,
    /// Frame-folder samples are stamped at this rate.
    pub fps: f64,
}

pub fn spawn(me: usize, feed: Arc<Feed>, opts: FeedOptions, link: CaptureLink) -> std::io::Result<JoinHandle<()>> {
    link.status.enter();
    std::thread::Builder::new().name(format!("capture-sample-{me}")).spawn(move || {
        loop {
            let i = feed.next.fetch_add(1, Ordering::Relaxed);
            if i >= feed.samples.len() || link.stopped() {
                break;
            }
            let p = &feed.samples[i];
            let mut start = SampleStart {
                index: p.index,
                id: p.sample.id.clone(),
                label: p.label.clone(),
                pairs: 0,
                events: 0,
                mode: WindowMode::FrameInterval,
                sensor: (1, 1),
                has_frames: true,
                started: Instant::now(),
            };
            let error = match replay(&p.sample, &mut start, &opts, &link) {
                Ok(()) => None,
                Err(Failed::Stopped) => break,
                Err(Failed::Why(why)) => Some(why),
            };
            if !link.ring.push_wait(Item::SampleEnd { error }, &link.stop) {
                break;
            }
        }
        link.status.finish(None);
    })
}

enum Failed {
    Stopped,
    Why(String),
}

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed::Why(e.to_string())
    }
}

fn push(link: &CaptureLink, item: Item) -> Result<(), Failed> {
    if link.ring.push_wait(item, &link.stop) {
        Ok(())
    } else {
        Err(Failed::Stopped)
    }
}

/// Pushes one sample after its start: a sample that cannot be read still gets its start, so
/// its failure is reported under its id.
fn replay(sample: &Sample, start: &mut SampleStart, opts: &FeedOptions, link: &CaptureLink) -> Result<(), Failed> {
    let clip = match load_clip(&sample.source) {
        Ok(c) => c,
        Err(e) => {
            push(link, Item::SampleStart(Box::new(start.clone())))?;
            return Err(e.into());
        }
    };
    let mut pacer = Pacer::new(opts.speed);
    match clip {
        SampleClip::Rendered(files) => {
            start.pairs = files.len();
            push(link, Item::SampleStart(Box::new(start.clone())))?;
            let interval = (1e6 / opts.fps).round() as i64;
            for (k, (aps, dvs)) in files.iter().enumerate() {
                let end = k as i64 * interval;
                pacer.wait(end, link);
                let (rgb, events) = (load_image(aps)?, load_image(dvs)?);
                let item = Rendered { start: end - interval, end, rgb, events, arrived: Instant::now() };
                push(link, Item::Rendered(Box::new(item)))?;
            }
        }
        SampleClip::Recorded(clip) => {
            if let Some(f) = clip.frames.iter().find(|f| frame_to_rgb(f).is_none()) {
                push(link, Item::SampleStart(Box::new(start.clone())))?;
                return Err(Failed::Why(format!(
                    "{}: frame at t={} has {} bytes of pixels, not {}x{}",
                    sample.id,
                    f.t,
                    f.pixels.len(),
                    f.width,
                    f.height
                )));
            }
            start.pairs = clip.pair_count(EVENT_ONLY_WINDOW_US);
            start.events = clip.events.len() as u64;
            start.sensor = clip.size;
            start.has_frames = !clip.frames.is_empty();
            if !start.has_frames {
                start.mode = WindowMode::Time { us: EVENT_ONLY_WINDOW_US };
            }
            push(link, Item::SampleStart(Box::new(start.clone())))?;
            let mut events = clip.events.as_slice();
            let mut frames = clip.frames.into_iter().peekable();
            while !events.is_empty() || frames.peek().is_some() {
                // Events before the next frame go first, in packets; then the frame.
                let until = frames.peek().map_or(i64::MAX, |f| f.t);
                let n = events.partition_point(|e| e.t < until).min(PACKET_EVENTS);
                if n > 0 {
                    let (now, rest) = events.split_at(n);
                    events = rest;
                    pacer.wait(now[n - 1].t, link);
                    push(link, Item::Events { events: now.to_vec(), arrived: Instant::now() })?;
                } else if let Some(frame) = frames.next() {
                    pacer.wait(frame.t, link);
                    push(link, Item::Frame { frame, arrived: Instant::now() })?;
                }
            }
        }
    }
    Ok(())
}
