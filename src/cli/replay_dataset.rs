//! `safed replay --dataset ROOT`: every sample of a split through the real pipeline (capture
//! threads, queues, accumulate, batched streaming inference, output), N samples at once as N
//! streams of one process; one report of accuracy and latency together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::infer_args::SessionArgs;
use crate::accumulate::WindowMode;
use crate::capture::dataset::{self as feed, Feed, FeedOptions, Planned};
use crate::capture::CaptureLink;
use crate::dataset::results::{self, ResultsWriter};
use crate::dataset::score::Tally;
use crate::dataset::{Dataset, Shard, DEFAULT_FPS};
use crate::pipeline::{load_model, Batching, Pipeline, ResultsSink, StreamOptions};
use crate::ring::{Overflow, Ring};
use crate::sink::JsonlSink;

#[derive(Debug, Clone, clap::Args)]
pub struct DatasetArgs {
    /// Replay every sample of a dataset split (see docs/replay.md for the layouts read).
    #[arg(long, conflicts_with_all = ["recording", "video"])]
    pub dataset: Option<PathBuf>,
    /// The split to replay.
    #[arg(long, default_value = "test", requires = "dataset")]
    pub split: String,
    /// Samples replayed at once, each as a stream of its own (default: --batch).
    #[arg(long, requires = "dataset")]
    pub streams: Option<usize>,
    /// Pairs encoded in one inference call at most (the several-stream batching of `safed run`).
    #[arg(long, default_value_t = 4, requires = "dataset")]
    pub batch: usize,
    /// Replay only the first K samples (after --shard and --resume).
    #[arg(long, requires = "dataset")]
    pub limit: Option<usize>,
    /// I/N: every N-th sample from the I-th (0-based), for a cluster's array jobs.
    #[arg(long, requires = "dataset")]
    pub shard: Option<String>,
    /// One JSON line per sample as it finishes.
    #[arg(long, requires = "dataset")]
    pub results: Option<PathBuf>,
    /// Skip the samples already in --results and append the rest.
    #[arg(long, requires = "results")]
    pub resume: bool,
    /// The rate frame-folder samples are stamped at (frames per second).
    #[arg(long, default_value_t = DEFAULT_FPS, requires = "dataset")]
    pub fps: f64,
}

/// What `replay` passes on (its own options, shared with a single recording's replay).
pub struct Common {
    pub model: Option<PathBuf>,
    pub speed: Option<f64>,
    pub hop: usize,
    pub top_k: usize,
    pub report: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub ring: usize,
    pub session: SessionArgs,
}

/// Queue capacity (items) of a dataset lane: a few pairs ahead of the pipeline, enough to
/// overlap reading with inference; more would only hold decoded images (and time) in memory.
const DATASET_RING: usize = 32;

pub fn run(a: DatasetArgs, c: Common) -> Result<()> {
    let Some(root) = &a.dataset else { bail!("--dataset is required") };
    let shard = match &a.shard {
        Some(s) => Some(Shard::parse(s).with_context(|| format!("--shard {s:?}: expected I/N with 0 <= I < N"))?),
        None => None,
    };
    if !(a.fps.is_finite() && a.fps > 0.0) {
        bail!("--fps {}: expected a positive rate", a.fps);
    }
    let batch = a.batch.clamp(1, 256);
    let streams = a.streams.unwrap_or(batch).clamp(1, 256);
    let data = Dataset::open(root, &a.split)?;
    let (model, model_name) = load_model(c.model.as_deref(), c.session.config())?;
    let unknown: Vec<&String> = data.classes.iter().filter(|c| !model.labels().contains(c)).collect();
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(10).map(|s| s.as_str()).collect();
        tracing::warn!(
            "{} of the dataset's {} classes are not labels of {model_name} (their samples are scored as misses): {}",
            unknown.len(),
            data.classes.len(),
            shown.join(", ")
        );
    }
    let mut tally = Tally::new(&data.classes);
    let resume_at = match (&a.results, a.resume) {
        (Some(path), true) if path.exists() => {
            let back = results::read(path)?;
            back.results.iter().for_each(|r| tally.add_resumed(r));
            Some((results::done_indices(&back.results), back.complete_len))
        }
        _ => None,
    };
    let mut planned: Vec<Planned> = data
        .samples
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.takes(*i)))
        .filter(|(i, _)| resume_at.as_ref().is_none_or(|(done, _)| !done.contains(i)))
        .map(|(index, s)| Planned { index, label: data.class_of(s).map(String::from), sample: s.clone() })
        .collect();
    if let Some(k) = a.limit {
        planned.truncate(k);
    }
    let total = planned.len();
    eprintln!(
        "{} ({}, split {}): {} samples to replay, {} streams, batch {batch}{}",
        root.display(),
        data.layout.name(),
        a.split,
        total,
        streams.min(total.max(1)),
        resume_at.as_ref().map_or(String::new(), |(d, _)| format!(", {} already in the results", d.len()))
    );
    let writer = match &a.results {
        Some(p) => Some(ResultsWriter::open(p, resume_at.as_ref().map(|r| r.1))?),
        None => None,
    };
    let feed = Feed::new(planned);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_signal = stop.clone();
    let _ = ctrlc::set_handler(move || stop_signal.store(true, Ordering::Relaxed));
    let opts = FeedOptions { speed: c.speed, fps: a.fps };
    let mut lanes = Vec::new();
    let mut captures = Vec::new();
    for k in 0..streams.min(total.max(1)) {
        // Shallow: the feeder waits for room, so a deep queue only holds decoded images.
        let link = CaptureLink::new(Ring::new(c.ring.min(DATASET_RING), Overflow::DropOldest), stop.clone());
        let o = StreamOptions {
            name: format!("sample-lane-{k}"),
            source: root.display().to_string(),
            mode: WindowMode::FrameInterval,
            sensor: (346, 260),
            max_buffered_events: 8 << 20,
            hop: c.hop.max(1),
            has_frames: true,
        };
        captures.push(feed::spawn(k, feed.clone(), opts, link.clone())?);
        lanes.push((o, link));
    }
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut pipeline = Pipeline::new(model, lanes, c.top_k.max(1))
        .named(&model_name)
        .with_batching(Batching { max_pairs: batch, wait: Duration::ZERO });
    pipeline.results = Some(ResultsSink { writer, tally, done: done.clone() });
    let sink = match &c.output {
        Some(p) => JsonlSink::file(p).with_context(|| format!("creating {}", p.display()))?,
        None => JsonlSink::new(Box::new(std::io::sink())),
    };
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} samples {per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut last = Instant::now();
    pipeline.run(sink.into(), |p| {
        if last.elapsed() >= Duration::from_millis(200) {
            last = Instant::now();
            bar.set_position(done.load(Ordering::Relaxed));
            bar.set_message(format!("{} recognitions", p.totals().recognitions));
        }
    })?;
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    captures.into_iter().for_each(|h| drop(h.join()));
    let seconds = started.elapsed().as_secs_f64();
    let Some(sink) = pipeline.results.take() else { bail!("the output stage lost the results") };
    let report = sink.tally.report(&root.display().to_string(), &model_name, seconds);
    report.print();
    if let Some(path) = &c.report {
        report.write(path, &data.classes)?;
        eprintln!("report: {} (confusion and per-class CSV, confusion PNG beside it)", path.display());
    }
    if let Some(path) = &c.plot {
        sink.tally.plot(path)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(())
}
