//! The processing stages after the capture queues, joined by bounded crossbeam channels:
//!
//! - accumulate (one thread per stream, [`accumulate`]): frame/window pairs, rendered and
//!   preprocessed into tensors;
//! - inference (the thread that calls [`Pipeline::run`]): streaming split-graph inference, the
//!   pairs ready across streams encoded in one encoder call and the recognitions due fused in one
//!   fusion call, up to `batch.max_pairs` pairs (with `batch.wait`, a ready pair waits that long
//!   for others to fill the batch);
//! - output (one thread, [`output`]): JSON lines.
//!
//! Shared by `safed run` (one or more streams) and `safed replay` (one).

mod accumulate;
mod output;
mod recognise;
mod sample;
mod swap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, TryRecvError};

use crate::accumulate::WindowMode;
use crate::capture::CaptureLink;
use crate::infer::stream_cache::{StageTimes, StreamingModel};
use crate::report::{Report, Stages};
use crate::sink::{Latency, Metrics, MqttSink, Recognition, Scored, Sinks};
use accumulate::{Accumulator, Work};
pub use accumulate::{StreamOptions, StreamStats};
pub use output::ResultsSink;
use output::{Outgoing, Output};
use recognise::{Due, RunRef, StreamState};
use sample::SampleRun;
use swap::Incoming;
pub use swap::Reload;

use crate::dataset::results::{ClipScore, SampleResult, StreamScore};

/// How long a stop may spend processing what is already queued: SIGTERM must end the
/// process within 2 s.
const DRAIN_BUDGET: Duration = Duration::from_millis(1000);
/// A stage thread silent for this long is stalled, and the watchdog is no longer fed.
const STALL: Duration = Duration::from_secs(2);
/// Pairs waiting between the accumulate and inference stages, per stream (at least a batch).
/// One: under overload a pair waits in this FIFO for every pair ahead of it, while the capture
/// queue before it drops the oldest and stays fresh (4 per stream added ~20 ms end to end with
/// 4 streams, and no throughput).
const PAIRS_PER_STREAM: usize = 1;

/// A stage thread's last sign of life, for the watchdog.
#[derive(Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    const DONE: u64 = u64::MAX;

    fn now_ms() -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    pub fn beat(&self) {
        self.0.store(Self::now_ms(), Ordering::Relaxed);
    }

    /// The thread ended on purpose: not a stall.
    pub fn done(&self) {
        self.0.store(Self::DONE, Ordering::Relaxed);
    }

    fn stalled(&self) -> bool {
        self.stalled_at(Self::now_ms())
    }

    fn stalled_at(&self, now_ms: u64) -> bool {
        let last = self.0.load(Ordering::Relaxed);
        last != Self::DONE && now_ms.saturating_sub(last) > STALL.as_millis() as u64
    }
}

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

/// Pairs (not resets) in a work list.
fn pairs(work: &[Work]) -> usize {
    work.iter().filter(|w| matches!(w, Work::Pair(..))).count()
}

/// One stream as the inference side sees it: its capture link (stop, drops, errors), where its
/// events come from, and its accumulate stage's counts and heartbeat.
struct Watched {
    link: CaptureLink,
    source: String,
    stats: Arc<StreamStats>,
    heartbeat: Heartbeat,
}

/// A stream's counts for the report.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub events: u64,
    pub frames: u64,
    pub pairs: u64,
    pub recognitions: u64,
    pub ring_dropped: u64,
    pub window_dropped: u64,
    pub labels: std::collections::BTreeMap<String, u64>,
}

pub struct Pipeline {
    pub model: StreamingModel,
    streams: Vec<StreamState>,
    /// The accumulate stages, until `run` starts them.
    accumulators: Vec<Accumulator>,
    /// What the inference side sees of each stream's capture and accumulate stages.
    watched: Vec<Watched>,
    batching: Batching,
    top_k: usize,
    pub stages: Stages,
    /// End-to-end latency of every recognition, ms (replay plots it; run does not keep it).
    pub latencies_ms: Vec<f64>,
    pub keep_latencies: bool,
    metrics: Option<Metrics>,
    started: Instant,
    /// Dataset replay: where sample results go (taken by `run`, given back after).
    pub results: Option<ResultsSink>,
    /// The model's name in the output lines.
    pub model_name: String,
    /// After `run`: the broker client, to be finished.
    pub mqtt: Option<MqttSink>,
    /// Reloads, taken between two batches.
    reloads: Option<Receiver<Reload>>,
    /// A model being swapped in.
    incoming: Option<Incoming>,
}

impl Pipeline {
    /// One stream per (options, capture link); all links share one stop flag.
    pub fn new(model: StreamingModel, streams: Vec<(StreamOptions, CaptureLink)>, top_k: usize) -> Self {
        let (frames, input) = (model.frames(), model.input());
        let mut p = Pipeline {
            model,
            streams: Vec::new(),
            accumulators: Vec::new(),
            watched: Vec::new(),
            batching: Batching::default(),
            top_k,
            stages: Stages::default(),
            latencies_ms: Vec::new(),
            keep_latencies: false,
            metrics: None,
            started: Instant::now(),
            results: None,
            model_name: String::new(),
            mqtt: None,
            reloads: None,
            incoming: None,
        };
        for (me, (opts, link)) in streams.into_iter().enumerate() {
            p.streams.push(StreamState::new(opts.name.clone(), opts.has_frames, opts.hop, frames));
            let (stats, heartbeat) = (Arc::new(StreamStats::default()), Heartbeat::default());
            p.watched.push(Watched {
                link: link.clone(),
                source: opts.source.clone(),
                stats: stats.clone(),
                heartbeat: heartbeat.clone(),
            });
            p.accumulators.push(Accumulator { me, opts, link, input, stats, counters: None, heartbeat });
        }
        p
    }

    /// The model's name, as the output lines give it.
    pub fn named(mut self, model_name: &str) -> Self {
        self.model_name = model_name.to_string();
        self
    }

    /// Takes reloads (new model, sinks, top-k, batching) from `rx` while running.
    pub fn with_reloads(mut self, rx: Receiver<Reload>) -> Self {
        self.reloads = Some(rx);
        self
    }

    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batching = Batching { max_pairs: batching.max_pairs.max(1), ..batching };
        self
    }

    /// Exports counters and histograms to a Prometheus endpoint.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        for (s, a) in self.streams.iter_mut().zip(&mut self.accumulators) {
            let counters = metrics.stream(&s.name);
            s.counters = Some(counters.clone());
            a.counters = Some(counters);
        }
        self.metrics = Some(metrics);
        self
    }

    /// Each stream's name and counts.
    pub fn stream_counts(&self) -> Vec<(String, Counts)> {
        (0..self.streams.len()).map(|i| (self.streams[i].name.clone(), self.counts(i))).collect()
    }

    fn counts(&self, i: usize) -> Counts {
        let (s, w) = (&self.streams[i], &self.watched[i]);
        let st = &w.stats;
        Counts {
            events: st.events.load(Ordering::Relaxed),
            frames: st.frames.load(Ordering::Relaxed),
            pairs: st.pairs.load(Ordering::Relaxed),
            recognitions: s.recognitions,
            ring_dropped: w.link.ring.dropped(),
            window_dropped: st.window_dropped.load(Ordering::Relaxed),
            labels: s.labels.clone(),
        }
    }

    /// Counts summed over the streams.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for i in 0..self.streams.len() {
            let c = self.counts(i);
            t.events += c.events;
            t.frames += c.frames;
            t.pairs += c.pairs;
            t.recognitions += c.recognitions;
            t.ring_dropped += c.ring_dropped;
            t.window_dropped += c.window_dropped;
            for (label, n) in c.labels {
                *t.labels.entry(label).or_insert(0) += n;
            }
        }
        t
    }

    /// The capture errors that ended streams, as "SOURCE: ERROR".
    pub fn stream_errors(&self) -> Vec<String> {
        self.watched.iter().filter_map(|w| Some(format!("{}: {}", w.source, w.link.status.error()?))).collect()
    }

    fn stop_requested(&self) -> bool {
        self.watched.iter().any(|w| w.link.stopped())
    }

    /// Starts the accumulate and output stages and runs inference on this thread until every
    /// source has ended and is drained, or a stop is requested. `tick` runs once per turn of the
    /// inference loop, and only while no stage is stalled: the service's watchdog pings from
    /// here, so a stall anywhere is seen. Replay's progress line reads the counts.
    pub fn run(&mut self, sinks: Sinks, mut tick: impl FnMut(&Self)) -> Result<Ended> {
        self.started = Instant::now();
        let (tx, rx) = bounded((self.streams.len() * PAIRS_PER_STREAM).max(self.batching.max_pairs));
        let mut threads = Vec::new();
        for a in self.accumulators.drain(..) {
            a.heartbeat.beat();
            threads.push(a.spawn(tx.clone())?);
        }
        drop(tx);
        let output = Output::spawn(sinks, self.metrics.clone(), self.keep_latencies, self.results.take())?;
        let result = self.infer(&rx, &output, &mut tick);
        // An accumulate stage waiting to send sees the channel close.
        drop(rx);
        let written = output.finish(Instant::now() + Duration::from_millis(300));
        let until = Instant::now() + Duration::from_millis(200);
        while !threads.iter().all(|t| t.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        let written = written?;
        self.stages.total = written.total;
        self.latencies_ms = written.latencies_ms;
        self.results = written.results;
        self.mqtt = written.mqtt;
        result
    }

    fn infer(&mut self, rx: &Receiver<Work>, output: &Output, tick: &mut impl FnMut(&Self)) -> Result<Ended> {
        let mut ready: Vec<Work> = Vec::new();
        let mut since: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        let mut closed = false;
        let mut warned = false;
        loop {
            match self.watched.iter().position(|w| w.heartbeat.stalled()) {
                None => tick(self),
                Some(i) if !warned => {
                    tracing::warn!("{}: the accumulate stage stalled; the watchdog is not fed", self.streams[i].name);
                    warned = true;
                }
                Some(_) => {}
            }
            if deadline.is_none() {
                self.take_reload(output);
            }
            if deadline.is_none() && self.stop_requested() {
                deadline = Some(Instant::now() + DRAIN_BUDGET);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Ended::Stopped);
            }
            if !closed && pairs(&ready) < self.batching.max_pairs {
                closed = self.gather(rx, &mut ready, since);
            }
            if !ready.is_empty() {
                let t = *since.get_or_insert_with(Instant::now);
                let full = pairs(&ready) >= self.batching.max_pairs;
                if closed || full || deadline.is_some() || t.elapsed() >= self.batching.wait {
                    since = None;
                    if !self.process_batch(std::mem::take(&mut ready), output, deadline)? {
                        // The output stage failed (its error comes from `finish`) or gave up.
                        return Ok(Ended::Stopped);
                    }
                }
            }
            if closed && ready.is_empty() {
                return Ok(if deadline.is_some() { Ended::Stopped } else { Ended::SourceEnded });
            }
        }
    }

    /// Takes what the accumulate stages sent, up to a batch: waits for the first item (at most
    /// 50 ms, so the loop turns for the watchdog; or what is left of the batch wait), then takes
    /// what else is there. True when every accumulate stage has ended.
    fn gather(&self, rx: &Receiver<Work>, ready: &mut Vec<Work>, since: Option<Instant>) -> bool {
        let wait = match since {
            None => Duration::from_millis(50),
            Some(t) => (t + self.batching.wait).saturating_duration_since(Instant::now()),
        };
        match rx.recv_timeout(wait) {
            Ok(w) => ready.push(w),
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => return true,
        }
        while pairs(ready) < self.batching.max_pairs {
            match rx.try_recv() {
                Ok(w) => ready.push(w),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    /// One encoder call for every pair of `work`, one fusion call for every recognition due.
    /// False when the output stage no longer takes lines.
    fn process_batch(&mut self, work: Vec<Work>, output: &Output, deadline: Option<Instant>) -> Result<bool> {
        let dequeued = Instant::now();
        let mut times = StageTimes::default();
        let tensors: Vec<(&[f32], &[f32])> = work
            .iter()
            .filter_map(|w| match w {
                Work::Pair(_, p) => Some((p.rgb.as_slice(), p.events.as_slice())),
                Work::Reset(_) | Work::Begin(..) | Work::End(..) => None,
            })
            .collect();
        let batch = tensors.len();
        let mut encoded = self.model.encode(&tensors, &mut times)?.into_iter();
        self.encode_incoming(&work, &tensors);
        drop(tensors);
        let frames = self.model.frames();
        let (mut due, mut inputs) = (Vec::new(), Vec::new());
        // Dataset replay: samples that ended in this batch, and their clip inputs.
        let mut ended: Vec<(usize, SampleRun, Option<String>)> = Vec::new();
        let mut clips = Vec::new();
        for w in work {
            if let (Work::Reset(i) | Work::Begin(i, _), Some(inc)) = (&w, &mut self.incoming) {
                inc.reset(*i);
            }
            match w {
                Work::Reset(i) => self.streams[i].reset(),
                Work::Begin(i, start) => {
                    self.streams[i].reset();
                    self.streams[i].sample = Some(SampleRun::new(start, frames));
                }
                Work::End(i, error) => {
                    let Some(mut run) = self.streams[i].sample.take() else { continue };
                    let j = ended.len();
                    // Recognitions of this sample due in this batch are tallied to it.
                    due.iter_mut()
                        .filter(|d: &&mut Due| d.stream == i && d.run == RunRef::Live)
                        .for_each(|d| d.run = RunRef::Ended(j));
                    let error = error.or_else(|| match run.clip_input() {
                        Ok(t) => {
                            clips.push((j, t));
                            None
                        }
                        Err(e) => Some(e),
                    });
                    ended.push((i, run, error));
                }
                Work::Pair(i, pair) => {
                    let tokens = encoded.next().ok_or_else(|| anyhow::anyhow!("the encoder returned too few rows"))?;
                    if let Some(run) = &mut self.streams[i].sample {
                        run.add(&tokens);
                    }
                    if let Some((d, t)) = self.streams[i].keep(i, &pair, tokens) {
                        due.push(d);
                        inputs.push(t);
                    }
                }
            }
        }
        // One fusion call: the recognitions due, then the clips of the samples that ended.
        let mut clip_of: Vec<Option<Vec<f32>>> = vec![None; ended.len()];
        let clip_ids: Vec<usize> = clips.iter().map(|c| c.0).collect();
        inputs.extend(clips.into_iter().map(|c| c.1));
        let mut log_probs = self.model.fuse(&inputs, &mut times)?;
        for (j, lp) in clip_ids.into_iter().zip(log_probs.split_off(due.len())) {
            clip_of[j] = Some(lp);
        }
        if let Some(m) = &self.metrics {
            if batch > 0 {
                m.batch_pairs.observe(batch as f64);
            }
        }
        let give_up = || deadline.is_some_and(|d| Instant::now() >= d);
        for (d, lp) in due.iter().zip(log_probs) {
            let out = self.recognition(d, &lp, batch, dequeued, &times);
            if let Outgoing::Line { rec, .. } = &out {
                let top1 = rec.top.first().map(|s| s.label.as_str());
                let run = match d.run {
                    RunRef::Live => self.streams[d.stream].sample.as_mut(),
                    RunRef::Ended(j) => ended.get_mut(j).map(|e| &mut e.1),
                };
                if let Some(run) = run {
                    run.recognised(top1);
                }
            }
            if !output.send(out, give_up) {
                return Ok(false);
            }
        }
        for ((i, run, error), lp) in ended.into_iter().zip(clip_of) {
            let result = self.sample_result(run, error, lp);
            let out = Outgoing::Sample { stream: self.streams[i].name.clone(), result: Box::new(result) };
            if !output.send(out, give_up) {
                return Ok(false);
            }
        }
        self.swap_if_ready();
        Ok(true)
    }

    /// A finished sample's result (its latencies are filled in when written).
    fn sample_result(&self, run: SampleRun, error: Option<String>, log_probs: Option<Vec<f32>>) -> SampleResult {
        let s = &run.start;
        let known = s.label.as_ref().is_some_and(|l| self.model.labels().contains(l));
        let clip = log_probs.filter(|_| error.is_none()).map(|lp| ClipScore {
            top: self.model.fusion.top(&lp, 5).into_iter().map(|(label, v)| Scored { label, p: v.exp() }).collect(),
            log_probs: lp,
        });
        let stream = error.is_none().then(|| StreamScore {
            recognitions: run.recognitions,
            correct: run.correct,
            accuracy: (run.recognitions > 0).then(|| run.correct as f64 / run.recognitions as f64),
            last: run.last.clone(),
        });
        SampleResult {
            index: s.index,
            id: s.id.clone(),
            label: s.label.clone(),
            known,
            error,
            clip,
            stream,
            pairs: run.seen,
            events: s.events,
            latency_ms: Default::default(),
            histograms: Default::default(),
            seconds: s.started.elapsed().as_secs_f64(),
            finished_ms: 0,
        }
    }

    /// The line for one recognition (its end-to-end latency is filled in when written).
    fn recognition(&mut self, d: &Due, log_probs: &[f32], batch: usize, dequeued: Instant, t: &StageTimes) -> Outgoing {
        let top = self.model.fusion.top(log_probs, self.top_k);
        let stream = &mut self.streams[d.stream];
        stream.recognitions += 1;
        if let Some((label, _)) = top.first() {
            *stream.labels.entry(label.clone()).or_insert(0) += 1;
        }
        if let Some(c) = &stream.counters {
            c.recognitions.inc();
        }
        // Milliseconds to the microsecond.
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let queue = dequeued.saturating_duration_since(d.arrived);
        let rec = Recognition {
            stream: stream.name.clone(),
            model: self.model_name.clone(),
            sample: d.sample.clone(),
            seq: stream.recognitions,
            t_start: d.t_start,
            t_end: d.t_end,
            frames: d.frames,
            events: d.events,
            rgb: stream.rgb,
            batch,
            top: top.into_iter().map(|(label, lp)| Scored { label, p: lp.exp() }).collect(),
            latency_ms: Latency {
                queue: ms(queue),
                preprocess: ms(d.preprocess),
                encode: ms(t.encode),
                fuse: ms(t.fuse),
                total: 0.0,
            },
        };
        self.stages.queue.record(queue);
        self.stages.preprocess.record(d.preprocess);
        self.stages.encode.record(t.encode);
        self.stages.fuse.record(t.fuse);
        if let Some(m) = &self.metrics {
            for (stage, v) in [("queue", queue), ("preprocess", d.preprocess), ("encode", t.encode), ("fuse", t.fuse)] {
                m.stage(stage).observe(v.as_secs_f64());
            }
            m.inference_seconds.observe((t.encode + t.fuse).as_secs_f64());
        }
        Outgoing::Line { rec, arrived: d.arrived }
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
            ring_dropped: t.ring_dropped,
            window_dropped: t.window_dropped,
            labels: t.labels,
            latency_ms: self.stages.report(),
        }
    }
}

/// The split pair beside a full graph NAME.onnx: NAME.encoder.onnx and NAME.fusion.onnx.
pub fn split_parts(full: &std::path::Path) -> [std::path::PathBuf; 2] {
    let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    ["encoder", "fusion"].map(|role| full.with_file_name(format!("{stem}.{role}.onnx")))
}

/// The split pair beside `full` (see [`split_parts`]), or the bundled demo.
pub fn load_model(
    full: Option<&std::path::Path>,
    mut cfg: crate::infer::SessionConfig,
) -> Result<(StreamingModel, String)> {
    use crate::infer::SafeModel;
    // Two sessions take turns: spinning threads of one would starve the other.
    cfg.spin = false;
    let (encoder, fusion, name) = match full {
        Some(full) => {
            let [encoder, fusion] = split_parts(full);
            (SafeModel::load(&encoder, &cfg)?, SafeModel::load(&fusion, &cfg)?, full.display().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_stage_is_stalled_and_a_finished_one_is_not() {
        let h = Heartbeat::default();
        h.0.store(1_000, Ordering::Relaxed);
        assert!(!h.stalled_at(2_500), "1.5 s of silence is within the 2 s allowed");
        assert!(h.stalled_at(3_500));
        h.done();
        assert!(!h.stalled_at(1_000_000), "a stage that ended on purpose is not a stall");
    }
}
