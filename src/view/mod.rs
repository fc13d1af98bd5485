//! The live view: what safed sees, in a browser. The pipeline hands over each stream's latest
//! images (after they became tensors, so nothing is copied) and every recognition; an encoder
//! thread of its own draws and encodes the latest images, at most `fps` times a second per
//! stream, and only while somebody watches; the server ([`server`]) gives every viewer the
//! latest JPEG (never a backlog) and the recognitions as Server-Sent Events.

pub mod compose;
pub mod server;
pub mod settings;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use image::RgbImage;
use tokio::sync::{broadcast, watch};

pub use settings::{ViewConfig, ViewSettings};

use crate::sink::jsonl::Recognition;
use crate::sink::metrics::Metrics;

/// How long a `latest.jpg` request keeps the encoder going after it (a page polling it).
const INTEREST: Duration = Duration::from_secs(5);
/// Recognitions an SSE viewer may fall behind before it skips to the newest.
const LINES_BUFFERED: usize = 256;

/// The latest images of a stream, as the accumulate stage made them.
struct Raw {
    seq: u64,
    t_end: i64,
    events: RgbImage,
    rgb: RgbImage,
}

/// A stream's latest composite, encoded.
#[derive(Debug)]
pub struct Jpeg {
    pub seq: u64,
    pub t_end: i64,
    pub bytes: Bytes,
}

/// Which image a viewer wants: with the labels drawn under it (what a plain MJPEG player or a
/// saved image needs) or without (the page draws them itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Labelled = 0,
    Plain = 1,
}

const VARIANTS: [Variant; 2] = [Variant::Labelled, Variant::Plain];

/// A recognition as its JSON line (the bytes stdout gets, without the newline).
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Arc<str>,
    pub json: Arc<str>,
}

/// A stream's last recognition: its line, and its top labels (label, probability) for drawing.
struct Last {
    line: Line,
    top: Vec<(String, f32)>,
}

struct Slot {
    name: String,
    sensor: (u32, u32),
    raw: Mutex<Option<Arc<Raw>>>,
    raw_seq: AtomicU64,
    /// The latest composite of each [`Variant`].
    jpeg: [watch::Sender<Option<Arc<Jpeg>>>; 2],
    /// The last recognition.
    last: Mutex<Option<Last>>,
}

struct Hub {
    slots: Vec<Slot>,
    /// Open image streams, per [`Variant`].
    watchers: [AtomicUsize; 2],
    /// When a single image was last asked for, per [`Variant`], ms since `started` (0: never).
    interest_ms: [AtomicU64; 2],
    started: Instant,
    lines: broadcast::Sender<Line>,
    wake: (Mutex<()>, Condvar),
    metrics: Option<Metrics>,
    fps: f64,
}

/// Shared by the pipeline (publishing), the encoder thread and the server.
#[derive(Clone)]
pub struct ViewHub(Arc<Hub>);

/// An image viewer, counted while it is open.
pub struct Watching(Arc<Hub>, Variant);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers[self.1 as usize].fetch_sub(1, Ordering::AcqRel);
    }
}

impl ViewHub {
    /// One slot per stream: (name, sensor size).
    pub fn new(streams: &[(String, (u32, u32))], fps: f64, metrics: Option<Metrics>) -> Self {
        let slots = streams
            .iter()
            .map(|(name, sensor)| Slot {
                name: name.clone(),
                sensor: *sensor,
                raw: Mutex::new(None),
                raw_seq: AtomicU64::new(0),
                jpeg: [watch::channel(None).0, watch::channel(None).0],
                last: Mutex::new(None),
            })
            .collect();
        ViewHub(Arc::new(Hub {
            slots,
            watchers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            interest_ms: [AtomicU64::new(0), AtomicU64::new(0)],
            started: Instant::now(),
            lines: broadcast::channel(LINES_BUFFERED).0,
            wake: (Mutex::new(()), Condvar::new()),
            metrics,
            fps,
        }))
    }

    /// Starts the view for `streams` (name, sensor size): the encoder thread and the server,
    /// bound now so that a taken port fails before READY. Logs where it is, and returns it.
    pub fn start(
        settings: &ViewSettings,
        streams: &[(String, (u32, u32))],
        metrics: Option<Metrics>,
    ) -> std::io::Result<(ViewHub, std::net::SocketAddr)> {
        let hub = ViewHub::new(streams, settings.fps, metrics);
        let at = server::serve(hub.clone(), settings)?;
        hub.spawn_encoder()?;
        let token = if settings.token.is_some() { "?token=TOKEN" } else { "" };
        tracing::info!("view on http://{at}/{token}");
        Ok((hub, at))
    }

    /// Whether images are worth handing over: somebody watches, or asked for one lately.
    pub fn wants_images(&self) -> bool {
        VARIANTS.iter().any(|v| self.wants(*v))
    }

    fn wants(&self, v: Variant) -> bool {
        let h = &self.0;
        if h.watchers[v as usize].load(Ordering::Relaxed) > 0 {
            return true;
        }
        let asked = h.interest_ms[v as usize].load(Ordering::Relaxed);
        asked > 0 && (h.started.elapsed().as_millis() as u64).saturating_sub(asked) < INTEREST.as_millis() as u64
    }

    /// The accumulate stage's latest pair of images for `stream` (moved, not copied).
    pub fn publish_images(&self, stream: usize, t_end: i64, events: RgbImage, rgb: RgbImage) {
        let Some(slot) = self.0.slots.get(stream) else { return };
        let seq = slot.raw_seq.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(mut raw) = slot.raw.lock() {
            *raw = Some(Arc::new(Raw { seq, t_end, events, rgb }));
        }
        self.0.wake.1.notify_one();
    }

    /// A recognition, as the JSON line stdout got: kept as the stream's last and sent to every
    /// event stream.
    pub fn publish(&self, rec: &Recognition, json: &str) {
        let Some(slot) = self.0.slots.iter().find(|s| s.name == rec.stream) else { return };
        let line = Line { stream: slot.name.as_str().into(), json: json.into() };
        let top = rec.top.iter().map(|s| (s.label.clone(), s.p)).collect();
        if let Ok(mut last) = slot.last.lock() {
            *last = Some(Last { line: line.clone(), top });
        }
        // No receiver is not an error: nobody watches.
        let _ = self.0.lines.send(line);
    }

    /// Starts the encoder thread; it ends when the hub is dropped.
    pub fn spawn_encoder(&self) -> std::io::Result<()> {
        let weak = Arc::downgrade(&self.0);
        let encode = self.0.metrics.as_ref().map(|m| m.view_encode.clone());
        std::thread::Builder::new().name("view-encode".into()).spawn(move || encoder(weak, encode))?;
        Ok(())
    }

    pub(crate) fn watch(&self, v: Variant) -> Watching {
        self.0.watchers[v as usize].fetch_add(1, Ordering::AcqRel);
        self.0.wake.1.notify_one();
        Watching(self.0.clone(), v)
    }

    pub(crate) fn note_interest(&self, v: Variant) {
        let now = (self.0.started.elapsed().as_millis() as u64).max(1);
        self.0.interest_ms[v as usize].store(now, Ordering::Relaxed);
        self.0.wake.1.notify_one();
    }

    pub(crate) fn stream_index(&self, name: &str) -> Option<usize> {
        self.0.slots.iter().position(|s| s.name == name)
    }

    pub(crate) fn jpeg_rx(&self, stream: usize, v: Variant) -> watch::Receiver<Option<Arc<Jpeg>>> {
        self.0.slots[stream].jpeg[v as usize].subscribe()
    }

    pub(crate) fn lines_rx(&self) -> broadcast::Receiver<Line> {
        self.0.lines.subscribe()
    }

    /// `GET /streams`: every stream's name, sensor, the model, the last recognition and its
    /// counters.
    pub(crate) fn streams_json(&self) -> serde_json::Value {
        let h = &self.0;
        let model = h.metrics.as_ref().map(|m| m.model()).unwrap_or_default();
        let streams: Vec<_> = h
            .slots
            .iter()
            .map(|s| {
                let last = s.last.lock().ok().and_then(|l| l.as_ref().map(|l| l.line.json.clone()));
                let last: serde_json::Value =
                    last.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or(serde_json::Value::Null);
                let counts = h.metrics.as_ref().map(|m| {
                    let c = m.stream(&s.name);
                    serde_json::json!({
                        "events": c.events.get(),
                        "recognitions": c.recognitions.get(),
                        "dropped": {
                            "queue": c.ring_dropped.get(),
                            "window": c.window_dropped.get(),
                            "source": c.source_dropped.get(),
                        },
                    })
                });
                serde_json::json!({
                    "name": s.name,
                    "width": s.sensor.0,
                    "height": s.sensor.1,
                    "last": last,
                    "counts": counts,
                })
            })
            .collect();
        serde_json::json!({ "model": model, "fps": h.fps, "streams": streams })
    }
}

/// Draws and encodes each stream's newest images while somebody watches, at most `fps` times a
/// second per stream, each variant only while it is wanted.
fn encoder(hub: Weak<Hub>, encode_seconds: Option<prometheus_client::metrics::histogram::Histogram>) {
    let mut done: Vec<(u64, Option<Instant>)> = Vec::new();
    loop {
        let Some(h) = hub.upgrade() else { return };
        let view = ViewHub(h.clone());
        let period = Duration::from_secs_f64(1.0 / h.fps);
        done.resize(h.slots.len(), (0, None));
        let wanted: Vec<Variant> = VARIANTS.into_iter().filter(|v| view.wants(*v)).collect();
        for (i, slot) in h.slots.iter().enumerate() {
            let (last_seq, last_at) = done[i];
            if wanted.is_empty()
                || slot.raw_seq.load(Ordering::Acquire) == last_seq
                || last_at.is_some_and(|t| t.elapsed() < period)
            {
                continue;
            }
            let Some(raw) = slot.raw.lock().ok().and_then(|r| r.clone()) else { continue };
            let top = slot.last.lock().ok().and_then(|l| l.as_ref().map(|l| l.top.clone())).unwrap_or_default();
            let caption = format!("{}  t={:.3} s", slot.name, raw.t_end as f64 / 1e6);
            for v in &wanted {
                let t0 = Instant::now();
                let labels = if *v == Variant::Labelled { Some(&top[..]) } else { None };
                match compose::compose(&raw.events, &raw.rgb, &caption, labels)
                    .and_then(|c| compose::jpeg(&c, compose::QUALITY))
                {
                    Ok(bytes) => {
                        if let Some(hist) = &encode_seconds {
                            hist.observe(t0.elapsed().as_secs_f64());
                        }
                        let jpeg = Jpeg { seq: raw.seq, t_end: raw.t_end, bytes: bytes.into() };
                        slot.jpeg[*v as usize].send_replace(Some(Arc::new(jpeg)));
                    }
                    Err(e) => tracing::warn!("view: {}: {e}", slot.name),
                }
            }
            done[i] = (raw.seq, Some(Instant::now()));
        }
        drop(view);
        // Woken by new images or a new viewer; at least every period, to honour the fps cap.
        let (lock, cvar) = &h.wake;
        if let Ok(guard) = lock.lock() {
            let _ = cvar.wait_timeout(guard, period);
        };
    }
}
