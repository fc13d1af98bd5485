//! Capture threads: each owns one source and pushes what it reads into a [`Ring`], stamped
//! with its arrival time; it never waits on the consumer.

pub mod dataset;
pub mod file;
pub mod live;
pub mod rgb;
pub mod ros2_rgb;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::events::{Event, Frame};
use crate::ring::Ring;

/// What a capture thread hands on.
#[derive(Debug)]
pub enum Item {
    Events {
        events: Vec<Event>,
        arrived: Instant,
    },
    Frame {
        frame: Frame,
        arrived: Instant,
    },
    /// A new connection: its clock starts afresh, so windows and held frames are dropped.
    Reset,
    /// A live source learned its sensor size (a ROS 2 topic's first packet): event images are
    /// this size from now on.
    Sensor(u32, u32),
    /// Dataset replay: a sample begins; what follows until [`Item::SampleEnd`] is its own.
    SampleStart(Box<dataset::SampleStart>),
    /// Dataset replay: a frame and the event image the dataset's authors rendered for it.
    Rendered(Box<dataset::Rendered>),
    /// Dataset replay: the sample is over (with why it failed, if it did).
    SampleEnd {
        error: Option<String>,
    },
}

/// The capture threads' end state, shared with the consumer: a stream is done when every
/// thread feeding it (events, and a video file's frames) has finished, after its last push.
#[derive(Debug, Default)]
pub struct CaptureStatus {
    started: AtomicBool,
    running: AtomicUsize,
    error: Mutex<Option<String>>,
}

impl CaptureStatus {
    /// A capture thread is about to start (called before it is spawned, so the consumer never
    /// sees "done" while one is still to come).
    pub fn enter(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.started.store(true, Ordering::Release);
    }

    /// A capture thread has pushed its last item; `error` (the first one kept) is why it ended.
    pub fn finish(&self, error: Option<String>) {
        if let (Some(e), Ok(mut slot)) = (error, self.error.lock()) {
            slot.get_or_insert(e);
        }
        self.running.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn is_done(&self) -> bool {
        self.started.load(Ordering::Acquire) && self.running.load(Ordering::Acquire) == 0
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// Everything a capture thread shares with the rest of the pipeline.
#[derive(Clone)]
pub struct CaptureLink {
    pub ring: Arc<Ring<Item>>,
    pub status: Arc<CaptureStatus>,
    pub stop: Arc<AtomicBool>,
    /// Live sources: successful reconnections (a camera plugged in again, a server back).
    pub reconnects: Arc<AtomicU64>,
    /// Live sources: what the source lost before safed read it (see `EventSource::dropped`).
    pub source_dropped: Arc<AtomicU64>,
    /// The first event timestamp pushed (i64::MIN before): a video file's frames start there.
    pub first_event_t: Arc<AtomicI64>,
}

impl CaptureLink {
    pub fn new(ring: Arc<Ring<Item>>, stop: Arc<AtomicBool>) -> Self {
        CaptureLink {
            ring,
            status: Arc::new(CaptureStatus::default()),
            stop,
            reconnects: Arc::new(AtomicU64::new(0)),
            source_dropped: Arc::new(AtomicU64::new(0)),
            first_event_t: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }
}

/// Where events come from, as configured.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// `bundled`, a file path, `-` (standard input), a FIFO, `tcp://...`, `unix://...`,
    /// `udp://...` or `usb:[SERIAL]`.
    pub events: String,
    /// Files: recorded-time factor (None: as fast as it decodes).
    pub speed: Option<f64>,
    pub looping: bool,
    pub reconnect_initial: std::time::Duration,
    pub reconnect_max: std::time::Duration,
    /// Network: a silent stream is reconnected after this long.
    pub idle_timeout: std::time::Duration,
    /// Pass on the frames inside the event source (false when RGB comes from OpenCV).
    pub forward_frames: bool,
    /// Files: read as this format instead of recognising it (`--input-format`).
    pub format: Option<crate::events::Format>,
    /// USB cameras: their settings.
    pub usb: crate::events::usb::UsbOptions,
    /// `ros2:` sources: the node.
    pub ros2: crate::ros2::Ros2Config,
}

/// An opened source and what the pipeline needs to know about it.
pub struct Opened {
    pub source: Box<dyn crate::events::EventSource>,
    pub name: String,
    pub sensor: Option<(u32, u32)>,
    pub has_frames: bool,
}

impl SourceSpec {
    /// A source that is reopened when it fails rather than read to its end.
    fn is_live(&self) -> bool {
        crate::events::is_live(&self.events)
    }

    fn open_options(&self) -> crate::events::OpenOptions {
        let mut o = crate::events::OpenOptions::default();
        o.net.read_timeout = Some(self.idle_timeout);
        o.format = self.format;
        o.usb = self.usb.clone();
        o.ros2 = self.ros2.clone();
        o
    }

    fn open_once(&self) -> Result<Box<dyn crate::events::EventSource>, crate::events::EventError> {
        if self.events == "bundled" {
            crate::demo::open_sample()
        } else {
            crate::events::open_with(&self.events, &self.open_options())
        }
    }

    /// Opens the source now (a missing file or refused connection fails here, before READY).
    pub fn open(&self) -> Result<Opened, crate::events::EventError> {
        use crate::events::StreamKind;
        let source = self.open_once()?;
        let info = source.info();
        let sensor = info.first(StreamKind::Events).and_then(|s| s.size).map(|(w, h)| (w as u32, h as u32));
        let has_frames = info.first(StreamKind::Frames).is_some();
        let name = if self.events == "bundled" {
            format!("(bundled) {}", crate::demo::SAMPLE_NAME)
        } else {
            self.events.clone()
        };
        Ok(Opened { source, name, sensor, has_frames })
    }

    /// Starts the capture thread on the opened source.
    pub fn spawn(
        &self,
        first: Box<dyn crate::events::EventSource>,
        link: CaptureLink,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        if self.is_live() {
            let cfg = live::LiveCapture {
                endpoint: self.events.clone(),
                options: self.open_options(),
                reconnect_initial: self.reconnect_initial,
                reconnect_max: self.reconnect_max,
            };
            live::spawn(first, cfg, self.forward_frames, link)
        } else if crate::events::is_pipe(&self.events) {
            // Standard input or a FIFO: taken as it arrives (the writer sets the pace), once.
            if self.looping {
                tracing::warn!("{}: a pipe is read once: loop is ignored", self.events);
            }
            let opts = file::ReplayOptions { speed: None, looping: false, forward_frames: self.forward_frames };
            let input = self.events.clone();
            let reopen = move || {
                Err(crate::events::EventError::Unsupported { input: input.clone(), what: "a pipe is read once".into() })
            };
            file::spawn(first, Box::new(reopen), opts, link)
        } else {
            let spec = self.clone();
            let opts =
                file::ReplayOptions { speed: self.speed, looping: self.looping, forward_frames: self.forward_frames };
            file::spawn(first, Box::new(move || spec.open_once()), opts, link)
        }
    }
}

impl CaptureLink {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps until `due`, in slices, so that a stop request is seen within 20 ms.
    pub fn sleep_until(&self, due: Instant) {
        loop {
            let now = Instant::now();
            if now >= due || self.stopped() {
                return;
            }
            std::thread::sleep((due - now).min(std::time::Duration::from_millis(20)));
        }
    }

    /// Records the first event time (once).
    pub fn saw_events(&self, events: &[Event]) {
        if let Some(e) = events.first() {
            let _ = self.first_event_t.compare_exchange(i64::MIN, e.t, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Paces items by their timestamps (µs) at `speed` times recorded time, counted from the first
/// item; `None` does not pace.
pub struct Pacer {
    speed: Option<f64>,
    zero: Option<(Instant, i64)>,
}

impl Pacer {
    pub fn new(speed: Option<f64>) -> Self {
        Pacer { speed, zero: None }
    }

    /// Waits until the item at `t` is due (or the capture is stopped).
    pub fn wait(&mut self, t: i64, link: &CaptureLink) {
        let Some(speed) = self.speed else { return };
        let (wall, first) = *self.zero.get_or_insert((Instant::now(), t));
        let ahead = std::time::Duration::from_secs_f64(((t - first) as f64 / 1e6 / speed).max(0.0));
        link.sleep_until(wall + ahead);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A video file's frames may still be coming when the event file has ended: the stream is
    /// done only when both threads are.
    #[test]
    fn a_stream_is_done_when_every_capture_thread_is() {
        let s = CaptureStatus::default();
        assert!(!s.is_done(), "nothing started yet");
        s.enter();
        s.enter();
        s.finish(Some("events: bad packet".into()));
        assert!(!s.is_done(), "the RGB thread is still running");
        s.finish(None);
        assert!(s.is_done());
        assert_eq!(s.error().as_deref(), Some("events: bad packet"), "a later clean end keeps the error");
    }
}
