//! The processing stage: items off each stream's capture queue -> frame/window pairs ->
//! streaming inference -> JSON lines, with per-stage latency recorded. Shared by `safed run`
//! (one or more streams) and `safed replay` (one).
//!
//! Streams share one model: the pairs that are ready across streams are encoded in one encoder
//! call and the recognitions that are due in one fusion call, up to `batch.max_pairs` pairs; with
//! `batch.wait`, a ready pair waits that long for others to fill the batch.

mod stream;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::accumulate::WindowMode;
use crate::capture::CaptureLink;
use crate::infer::stream_cache::{StageTimes, StreamingModel};
use crate::report::{Report, Stages};
use crate::sink::{JsonlSink, Latency, Metrics, Recognition, Scored};
pub use stream::{Counts, StreamOptions};
use stream::{Due, Stream, Work};

/// How long a stop may spend processing what is already queued: SIGTERM must end the
/// process within 2 s.
const DRAIN_BUDGET: Duration = Duration::from_millis(1000);

/// How streams share inference calls.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Pairs encoded in one call at most.
    pub max_pairs: usize,
    /// How long a ready pair may wait for more to fill the batch.
    pub wait: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_pairs: 1, wait: Duration::ZERO }
    }
}

/// Why [`Pipeline::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every source ended (files) and everything was processed.
    SourceEnded,
    /// A stop was requested (signal).
    Stopped,
}

pub struct Pipeline {
    pub model: StreamingModel,
    streams: Vec<Stream>,
    batching: Batching,
    top_k: usize,
    /// Work taken off the queues and not yet processed, in arrival order per stream.
    ready: Vec<Work>,
    /// When the oldest ready pair was taken.
    ready_since: Option<Instant>,
    pub stages: Stages,
    /// End-to-end latency of every recognition, ms (replay plots it; run does not keep it).
    pub latencies_ms: Vec<f64>,
    pub keep_latencies: bool,
    metrics: Option<Metrics>,
    started: Instant,
}

impl Pipeline {
    /// One stream per (options, capture link); all links share one stop flag.
    pub fn new(model: StreamingModel, streams: Vec<(StreamOptions, CaptureLink)>, top_k: usize) -> Self {
        let (frames, events) = (model.frames(), model.events());
        Pipeline {
            model,
            streams: streams.into_iter().map(|(o, l)| Stream::new(o, l, frames, events)).collect(),
            batching: Batching::default(),
            top_k,
            ready: Vec::new(),
            ready_since: None,
            stages: Stages::default(),
            latencies_ms: Vec::new(),
            keep_latencies: false,
            metrics: None,
            started: Instant::now(),
        }
    }

    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batching = Batching { max_pairs: batching.max_pairs.max(1), ..batching };
        self
    }

    /// Exports counters and histograms to a Prometheus endpoint.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        for s in &mut self.streams {
            s.counters = Some(metrics.stream(&s.opts.name));
        }
        self.metrics = Some(metrics);
        self
    }

    /// Counts summed over the streams.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.streams.iter().map(|s| &s.counts) {
            t.events += c.events;
            t.frames += c.frames;
            t.pairs += c.pairs;
            t.recognitions += c.recognitions;
            for (label, n) in &c.labels {
                *t.labels.entry(label.clone()).or_insert(0) += n;
            }
        }
        t
    }

    fn stop_requested(&self) -> bool {
        self.streams.iter().any(|s| s.link.stopped())
    }

    /// Processes until every source has ended and is drained, or a stop is requested. `tick`
    /// runs once per loop turn: the service's watchdog pings from here, so a stalled loop is
    /// seen, and replay's progress line reads the counts.
    pub fn run(&mut self, sink: &mut JsonlSink, mut tick: impl FnMut(&Self)) -> Result<Ended> {
        self.started = Instant::now();
        let mut first = 0;
        loop {
            tick(self);
            if self.stop_requested() {
                self.drain(sink, Instant::now() + DRAIN_BUDGET)?;
                return Ok(Ended::Stopped);
            }
            // Round robin, starting one further each turn.
            let n = self.streams.len();
            let mut took = false;
            for k in 0..n {
                let i = (first + k) % n;
                took |= self.streams[i].poll(i, &mut self.ready);
            }
            first = (first + 1) % n.max(1);
            let ended = self.streams.iter().all(|s| s.ended);
            if !self.ready.is_empty() {
                let since = *self.ready_since.get_or_insert_with(Instant::now);
                let pairs = self.ready.iter().filter(|w| matches!(w, Work::Pair(..))).count();
                if ended || pairs >= self.batching.max_pairs || since.elapsed() >= self.batching.wait {
                    self.process_ready(sink, None)?;
                    continue;
                }
            }
            if ended {
                return Ok(Ended::SourceEnded);
            }
            if !took {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }

    /// On stop: every stream's queued work (until `deadline`), then the frames still waiting.
    fn drain(&mut self, sink: &mut JsonlSink, deadline: Instant) -> Result<()> {
        for (i, s) in self.streams.iter_mut().enumerate() {
            s.drain(i, &mut self.ready, deadline);
        }
        self.process_ready(sink, Some(deadline))
    }

    /// Processes the ready work in batches of at most `max_pairs` pairs (until `deadline`).
    fn process_ready(&mut self, sink: &mut JsonlSink, deadline: Option<Instant>) -> Result<()> {
        let mut work = std::mem::take(&mut self.ready);
        self.ready_since = None;
        while !work.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut pairs = 0;
            let cut = work
                .iter()
                .position(|w| {
                    pairs += matches!(w, Work::Pair(..)) as usize;
                    pairs > self.batching.max_pairs
                })
                .unwrap_or(work.len());
            let rest = work.split_off(cut);
            self.process_batch(work, sink)?;
            work = rest;
        }
        Ok(())
    }

    /// One encoder call for every pair of `work`, one fusion call for every recognition due.
    fn process_batch(&mut self, work: Vec<Work>, sink: &mut JsonlSink) -> Result<()> {
        let dequeued = Instant::now();
        let mut times = StageTimes::default();
        let images: Vec<_> = work
            .iter()
            .filter_map(|w| match w {
                Work::Pair(_, p) => Some((&p.rgb, &p.events)),
                Work::Reset(_) => None,
            })
            .collect();
        let batch = images.len();
        let mut encoded = self.model.encode(&images, &mut times)?.into_iter();
        drop(images);
        let (mut due, mut inputs) = (Vec::new(), Vec::new());
        for w in work {
            match w {
                Work::Reset(i) => self.streams[i].reset(),
                Work::Pair(i, pair) => {
                    let tokens = encoded.next().ok_or_else(|| anyhow::anyhow!("the encoder returned too few rows"))?;
                    if let Some((d, t)) = self.streams[i].keep(i, &pair, tokens) {
                        due.push(d);
                        inputs.push(t);
                    }
                }
            }
        }
        let log_probs = self.model.fuse(&inputs, &mut times)?;
        if let Some(m) = &self.metrics {
            if batch > 0 {
                m.batch_pairs.observe(batch as f64);
            }
        }
        for (d, lp) in due.iter().zip(log_probs) {
            self.emit(d, &lp, batch, dequeued, &times, sink)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        d: &Due,
        log_probs: &[f32],
        batch: usize,
        dequeued: Instant,
        times: &StageTimes,
        sink: &mut JsonlSink,
    ) -> Result<()> {
        let top = self.model.fusion.top(log_probs, self.top_k);
        let stream = &mut self.streams[d.stream];
        stream.counts.recognitions += 1;
        if let Some((label, _)) = top.first() {
            *stream.counts.labels.entry(label.clone()).or_insert(0) += 1;
        }
        if let Some(c) = &stream.counters {
            c.recognitions.inc();
        }
        // Milliseconds to the microsecond.
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let queue = dequeued.saturating_duration_since(d.arrived);
        let mut rec = Recognition {
            stream: stream.opts.name.clone(),
            seq: stream.counts.recognitions,
            t_start: d.t_start,
            t_end: d.t_end,
            frames: d.frames,
            events: d.events,
            rgb: if stream.opts.has_frames { "frames" } else { "events" },
            batch,
            top: top.into_iter().map(|(label, lp)| Scored { label, p: lp.exp() }).collect(),
            latency_ms: Latency {
                queue: ms(queue),
                preprocess: ms(times.preprocess),
                encode: ms(times.encode),
                fuse: ms(times.fuse),
                total: 0.0,
            },
        };
        let total = d.arrived.elapsed();
        rec.latency_ms.total = ms(total);
        sink.write(&rec)?;
        self.stages.queue.record(queue);
        self.stages.preprocess.record(times.preprocess);
        self.stages.encode.record(times.encode);
        self.stages.fuse.record(times.fuse);
        self.stages.total.record(total);
        if self.keep_latencies {
            self.latencies_ms.push(total.as_secs_f64() * 1e3);
        }
        if let Some(m) = &self.metrics {
            for (stage, d) in [
                ("queue", queue),
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

    /// Names of the streams, with their counts.
    pub fn stream_counts(&self) -> impl Iterator<Item = (&str, &Counts, u64)> {
        self.streams.iter().map(|s| (s.opts.name.as_str(), &s.counts, s.link.ring.dropped()))
    }

    /// The capture errors that ended streams, as "SOURCE: ERROR".
    pub fn stream_errors(&self) -> impl Iterator<Item = String> + '_ {
        self.streams.iter().filter_map(|s| Some(format!("{}: {}", s.opts.source, s.link.status.error()?)))
    }

    pub fn report(&self, source: &str, model: &str) -> Report {
        let seconds = self.started.elapsed().as_secs_f64();
        let t = self.totals();
        Report {
            source: source.to_string(),
            model: model.to_string(),
            seconds,
            events: t.events,
            frames: t.frames,
            pairs: t.pairs,
            recognitions: t.recognitions,
            events_per_second: t.events as f64 / seconds.max(1e-9),
            recognitions_per_second: t.recognitions as f64 / seconds.max(1e-9),
            ring_dropped: self.streams.iter().map(|s| s.link.ring.dropped()).sum(),
            window_dropped: self.streams.iter().map(|s| s.window_dropped()).sum(),
            labels: t.labels,
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
    let model = StreamingModel::new(encoder, fusion)?;
    tracing::info!("{name}: event windows rendered as {} (safe.events)", model.events());
    Ok((model, name))
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
