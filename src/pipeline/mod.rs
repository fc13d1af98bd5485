//! The processing stage: items off the capture queue -> frame/window pairs -> streaming
//! inference -> JSON lines, with per-stage latency recorded. Shared by `safed run` and
//! `safed replay`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::accumulate::WindowMode;
use crate::capture::{CaptureLink, Item};
use crate::infer::stream_cache::{StageTimes, StreamingModel};
use crate::report::{Report, Stages};
use crate::sink::{JsonlSink, Latency, Metrics, Recognition, Scored};
use crate::sync::{Pair, Pairer};

/// How long a stop may spend processing what is already queued: SIGTERM must end the
/// process within 2 s.
const DRAIN_BUDGET: Duration = Duration::from_millis(1000);

pub struct PipelineOptions {
    pub stream: String,
    pub mode: WindowMode,
    pub sensor: (u32, u32),
    pub max_buffered_events: usize,
    pub hop: usize,
    pub top_k: usize,
    /// False: event-only mode (the RGB branch sees the event image).
    pub has_frames: bool,
}

/// Why [`Pipeline::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The source ended (a file) and everything was processed.
    SourceEnded,
    /// A stop was requested (signal).
    Stopped,
}

pub struct Pipeline {
    pub model: StreamingModel,
    opts: PipelineOptions,
    pairer: Pairer,
    pub stages: Stages,
    pub events: u64,
    pub frames: u64,
    pub pairs: u64,
    pub recognitions: u64,
    pub labels: BTreeMap<String, u64>,
    /// End-to-end latency of every recognition, ms (replay plots it; run does not keep it).
    pub latencies_ms: Vec<f64>,
    pub keep_latencies: bool,
    held: VecDeque<(i64, i64, usize)>,
    window_dropped_before: u64,
    metrics: Option<Metrics>,
    /// Counters already passed to the metrics.
    seen_dropped: (u64, u64, u64),
    since_last: usize,
    started: Instant,
}

impl Pipeline {
    pub fn new(model: StreamingModel, opts: PipelineOptions) -> Self {
        let pairer = Pairer::new(opts.mode, opts.sensor, opts.max_buffered_events);
        Pipeline {
            model,
            opts,
            pairer,
            stages: Stages::default(),
            events: 0,
            frames: 0,
            pairs: 0,
            recognitions: 0,
            labels: BTreeMap::new(),
            latencies_ms: Vec::new(),
            keep_latencies: false,
            held: VecDeque::new(),
            window_dropped_before: 0,
            metrics: None,
            seen_dropped: (0, 0, 0),
            since_last: 0,
            started: Instant::now(),
        }
    }

    /// Exports counters and histograms to a Prometheus endpoint.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Moves the drop and reconnect counts into the metrics (one atomic load each).
    fn export_counts(&mut self, link: &CaptureLink) {
        let Some(m) = &self.metrics else { return };
        let now = (
            link.ring.dropped(),
            self.window_dropped_before + self.pairer.dropped_events(),
            link.reconnects.load(Ordering::Relaxed),
        );
        m.ring_dropped.inc_by(now.0 - self.seen_dropped.0.min(now.0));
        m.window_dropped.inc_by(now.1 - self.seen_dropped.1.min(now.1));
        m.reconnects.inc_by(now.2 - self.seen_dropped.2.min(now.2));
        self.seen_dropped = now;
    }

    /// Processes until the source has ended and is drained, or a stop is requested. `tick` runs
    /// once per loop turn: the service's watchdog pings from here, so a stalled loop is seen, and
    /// replay's progress line reads the counts.
    pub fn run(&mut self, link: &CaptureLink, sink: &mut JsonlSink, mut tick: impl FnMut(&Self)) -> Result<Ended> {
        self.started = Instant::now();
        let mut pairs = Vec::new();
        loop {
            tick(self);
            if link.stopped() {
                self.drain(link, sink, Instant::now() + DRAIN_BUDGET)?;
                return Ok(Ended::Stopped);
            }
            let item = link.ring.pop();
            let finished = item.is_none() && link.status.is_done() && link.ring.is_empty();
            self.export_counts(link);
            match item {
                Some(Item::Reset) => self.reset(&mut pairs, sink)?,
                Some(item) => self.push(item, &mut pairs),
                None if finished => self.pairer.finish(&mut pairs),
                None => {
                    std::thread::sleep(Duration::from_micros(500));
                    continue;
                }
            }
            for pair in pairs.drain(..) {
                self.process(pair, sink)?;
            }
            if finished {
                return Ok(Ended::SourceEnded);
            }
        }
    }

    /// Counts an event packet or a frame (for the report and the metrics) and hands it to the
    /// pairer. A reset is the caller's: it needs the sink.
    fn push(&mut self, item: Item, pairs: &mut Vec<Pair>) {
        match item {
            Item::Events { events, arrived } => {
                self.events += events.len() as u64;
                if let Some(m) = &self.metrics {
                    m.events.inc_by(events.len() as u64);
                }
                self.pairer.push_events(&events, arrived, pairs);
            }
            Item::Frame { frame, arrived } => {
                self.frames += 1;
                if let Some(m) = &self.metrics {
                    m.frames.inc();
                }
                if self.opts.has_frames {
                    self.pairer.push_frame(frame, arrived, pairs);
                }
            }
            Item::Reset => {}
        }
    }

    /// A connection ended: its last frames get the events that came, then windows and held
    /// frames start afresh (the next connection's clock is its own).
    fn reset(&mut self, pairs: &mut Vec<Pair>, sink: &mut JsonlSink) -> Result<()> {
        self.pairer.finish(pairs);
        for pair in pairs.drain(..) {
            self.process(pair, sink)?;
        }
        self.window_dropped_before += self.pairer.dropped_events();
        self.pairer = Pairer::new(self.opts.mode, self.opts.sensor, self.opts.max_buffered_events);
        self.model.reset();
        self.held.clear();
        self.since_last = 0;
        Ok(())
    }

    /// On stop: what is already queued is processed (until `deadline`), then the frames still
    /// waiting get the events that came, so their recognitions are written too.
    fn drain(&mut self, link: &CaptureLink, sink: &mut JsonlSink, deadline: Instant) -> Result<()> {
        let mut pairs = Vec::new();
        while Instant::now() < deadline {
            match link.ring.pop() {
                Some(Item::Reset) | None => break,
                Some(item) => self.push(item, &mut pairs),
            }
            for pair in pairs.drain(..) {
                self.process(pair, sink)?;
            }
        }
        self.pairer.finish(&mut pairs);
        for pair in pairs.drain(..) {
            if Instant::now() >= deadline {
                break;
            }
            self.process(pair, sink)?;
        }
        Ok(())
    }

    fn process(&mut self, pair: Pair, sink: &mut JsonlSink) -> Result<()> {
        let dequeued = Instant::now();
        self.pairs += 1;
        let mut times = StageTimes::default();
        self.model.push(&pair.rgb, &pair.events, &mut times)?;
        self.held.push_back((pair.start, pair.end, pair.event_count));
        while self.held.len() > self.model.frames() {
            self.held.pop_front();
        }
        self.since_last += 1;
        if self.since_last < self.opts.hop {
            return Ok(());
        }
        let Some(log_probs) = self.model.recognise(&mut times)? else { return Ok(()) };
        self.since_last = 0;
        self.recognitions += 1;
        let top = self.model.fusion.top(&log_probs, self.opts.top_k);
        if let Some((label, _)) = top.first() {
            *self.labels.entry(label.clone()).or_insert(0) += 1;
        }
        // Milliseconds to the microsecond.
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut rec = Recognition {
            stream: self.opts.stream.clone(),
            seq: self.recognitions,
            t_start: self.held.front().map_or(pair.start, |w| w.0),
            t_end: pair.end,
            frames: self.held.len(),
            events: self.held.iter().map(|w| w.2).sum(),
            rgb: if self.opts.has_frames { "frames" } else { "events" },
            top: top.into_iter().map(|(label, lp)| Scored { label, p: lp.exp() }).collect(),
            latency_ms: Latency {
                queue: ms(dequeued - pair.arrived),
                preprocess: ms(times.preprocess),
                encode: ms(times.encode),
                fuse: ms(times.fuse),
                total: 0.0,
            },
        };
        let total = pair.arrived.elapsed();
        rec.latency_ms.total = ms(total);
        sink.write(&rec)?;
        self.stages.queue.record(dequeued - pair.arrived);
        self.stages.preprocess.record(times.preprocess);
        self.stages.encode.record(times.encode);
        self.stages.fuse.record(times.fuse);
        self.stages.total.record(total);
        if self.keep_latencies {
            self.latencies_ms.push(total.as_secs_f64() * 1e3);
        }
        if let Some(m) = &self.metrics {
            m.recognitions.inc();
            for (stage, d) in [
                ("queue", dequeued - pair.arrived),
                ("preprocess", times.preprocess),
                ("encode", times.encode),
                ("fuse", times.fuse),
                ("end_to_end", total),
            ] {
                m.stage(stage).observe(d.as_secs_f64());
            }
            m.inference_seconds.observe((times.encode + times.fuse).as_secs_f64());
        }
        Ok(())
    }

    pub fn report(&self, source: &str, model: &str, link: &CaptureLink) -> Report {
        let seconds = self.started.elapsed().as_secs_f64();
        Report {
            source: source.to_string(),
            model: model.to_string(),
            seconds,
            events: self.events,
            frames: self.frames,
            pairs: self.pairs,
            recognitions: self.recognitions,
            events_per_second: self.events as f64 / seconds.max(1e-9),
            recognitions_per_second: self.recognitions as f64 / seconds.max(1e-9),
            ring_dropped: link.ring.dropped(),
            window_dropped: self.window_dropped_before + self.pairer.dropped_events(),
            labels: self.labels.clone(),
            latency_ms: self.stages.report(),
        }
    }
}

/// The split pair beside `full` (NAME.encoder.onnx, NAME.fusion.onnx), or the bundled demo.
pub fn load_model(
    full: Option<&std::path::Path>,
    mut cfg: crate::infer::SessionConfig,
) -> Result<(StreamingModel, String)> {
    use crate::infer::SafeModel;
    // Two sessions take turns: spinning threads of one would starve the other.
    cfg.spin = false;
    let (encoder, fusion, name) = match full {
        Some(full) => {
            let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let part = |role: &str| full.with_file_name(format!("{stem}.{role}.onnx"));
            (
                SafeModel::load(&part("encoder"), &cfg)?,
                SafeModel::load(&part("fusion"), &cfg)?,
                full.display().to_string(),
            )
        }
        None => {
            let (e, f) = crate::demo::model_bytes();
            let enc = SafeModel::from_bytes(e, "(bundled) demo.encoder.onnx", &cfg)?;
            let fus = SafeModel::from_bytes(f, "(bundled) demo.fusion.onnx", &cfg)?;
            (enc, fus, "(bundled) demo.onnx".to_string())
        }
    };
    Ok((StreamingModel::new(encoder, fusion)?, name))
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
