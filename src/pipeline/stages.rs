//! The stage wiring: a [`Pipeline`] is built from its streams, and `run` starts an accumulate
//! stage per stream and the output stage, joined to the inference loop (`infer_loop`, on the
//! calling thread) by bounded channels; it also holds what the stages count, for reports.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver};

use super::accumulate::{Accumulator, StreamOptions, StreamStats};
use super::batching::{Batching, PAIRS_PER_STREAM};
use super::lifecycle::Heartbeat;
use super::output::{Output, ResultsSink};
use super::recognise::StreamState;
use super::swap::{Incoming, Reload};
use crate::capture::CaptureLink;
use crate::infer::stream_cache::StreamingModel;
use crate::report::{Report, Stages};
use crate::sink::{Metrics, MqttSink, Sinks};

/// Why [`Pipeline::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every source ended (files) and everything was processed.
    SourceEnded,
    /// A stop was requested (signal).
    Stopped,
}

/// One stream as the inference side sees it: its capture link (stop, drops, errors), where its
/// events come from, and its accumulate stage's counts and heartbeat.
pub(super) struct Watched {
    pub(super) link: CaptureLink,
    pub(super) source: String,
    pub(super) stats: Arc<StreamStats>,
    pub(super) heartbeat: Heartbeat,
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
    pub(super) streams: Vec<StreamState>,
    /// The accumulate stages, until `run` starts them.
    pub(super) accumulators: Vec<Accumulator>,
    /// What the inference side sees of each stream's capture and accumulate stages.
    pub(super) watched: Vec<Watched>,
    pub(super) batching: Batching,
    pub(super) top_k: usize,
    pub stages: Stages,
    /// End-to-end latency of every recognition, ms (replay plots it; run does not keep it).
    pub latencies_ms: Vec<f64>,
    pub keep_latencies: bool,
    pub(super) metrics: Option<Metrics>,
    pub(super) started: Instant,
    /// Dataset replay: where sample results go (taken by `run`, given back after).
    pub results: Option<ResultsSink>,
    /// The model's name in the output lines.
    pub model_name: String,
    /// After `run`: the broker client, to be finished.
    pub mqtt: Option<MqttSink>,
    /// Reloads, taken between two batches.
    pub(super) reloads: Option<Receiver<Reload>>,
    /// A model being swapped in.
    pub(super) incoming: Option<Incoming>,
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
            p.accumulators.push(Accumulator {
                me,
                opts,
                link,
                input,
                stats,
                counters: None,
                heartbeat,
                view: None,
                ros2_images: None,
            });
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

    /// Hands each stream's images to the live view (it takes them only while watched).
    pub fn with_view(mut self, view: crate::view::ViewHub) -> Self {
        for a in &mut self.accumulators {
            a.view = Some(view.clone());
        }
        self
    }

    /// Hands each stream's event images to `[output.ros2] image_topic`.
    pub fn with_ros2_images(mut self, tap: crate::sink::ros2::Ros2ImageTap) -> Self {
        for a in &mut self.accumulators {
            a.ros2_images = Some(tap.clone());
        }
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

    pub(super) fn stop_requested(&self) -> bool {
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
