//! `safed run --config FILE`: the daemon. Loads the model and opens the source (errors here come
//! before READY), tells systemd it is ready, then processes until the source ends or SIGTERM /
//! SIGINT, and exits 0 with every JSON line flushed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::accumulate::WindowMode;
use crate::capture::rgb::RgbSpec;
use crate::capture::{CaptureLink, Opened, SourceSpec};
use crate::config::{Config, FramesFrom, StreamSettings};
use crate::infer::SessionConfig;
use crate::pipeline::{effective_mode, load_model, Batching, Ended, Pipeline, StreamOptions};
use crate::ring::Ring;
use crate::service::Notifier;
use crate::sink::JsonlSink;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML configuration (see config/safed.toml).
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let processing = Arc::new(AtomicBool::new(false));
    {
        let (stop, processing, notify) = (stop.clone(), processing.clone(), cfg.service.notify);
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::Relaxed);
            if !processing.load(Ordering::Relaxed) {
                // Still loading: nothing to flush, and loading a large model may take longer
                // than the 2 s a stop may take.
                Notifier::from_env(notify).stopping();
                std::process::exit(0);
            }
        })
        .context("installing the signal handler")?;
    }
    let mut notifier = Notifier::from_env(cfg.service.notify);
    let m = &cfg.model;
    let session = SessionConfig {
        library: m.ort_library.clone(),
        provider: m.provider,
        device_id: m.device_id,
        threads: m.threads,
        optimization: 3,
        spin: false,
        cpu_fallback: m.cpu_fallback,
    };
    let (model, model_name) = load_model(m.path.as_deref(), session)?;
    let mode = cfg.window_mode().context("window.mode")?;
    // Every source is opened now, so that a bad file, server or camera fails before READY.
    let streams: Vec<OpenStream> =
        cfg.streams().iter().map(|s| OpenStream::open(s, &cfg, mode)).collect::<Result<_>>()?;
    let sink = JsonlSink::open(&cfg.output.jsonl).with_context(|| format!("output.jsonl: {}", cfg.output.jsonl))?;
    let mut links = Vec::new();
    let mut captures = Vec::new();
    let mut names = Vec::new();
    for s in streams {
        let link = CaptureLink::new(Ring::new(cfg.queue.capacity, cfg.queue.overflow), stop.clone());
        names.push(s.opened.name.clone());
        captures.push(s.spec.spawn(s.opened.source, link.clone())?);
        if let Some((r, cap)) = s.rgb {
            r.spawn(cap, link.clone())?;
        }
        links.push((s.opts, link));
    }
    let sources = names.join(", ");
    let batching = Batching { max_pairs: m.batch, wait: Duration::from_millis(m.batch_wait_ms) };
    let mut pipeline = Pipeline::new(model, links, m.top_k).with_batching(batching);
    if !cfg.metrics.listen.is_empty() {
        let metrics = crate::sink::Metrics::new();
        let at =
            metrics.serve(&cfg.metrics.listen).with_context(|| format!("metrics.listen: {}", cfg.metrics.listen))?;
        tracing::info!("metrics on http://{at}/metrics");
        pipeline = pipeline.with_metrics(metrics);
    }
    processing.store(true, Ordering::Relaxed);
    notifier.ready(&format!("model {model_name}, source {sources}"));
    tracing::info!("ready: model {model_name}, source {sources}");
    let result = pipeline.run(sink, |_| notifier.tick());
    notifier.stopping();
    stop.store(true, Ordering::Relaxed);
    // A capture thread sees the stop within 50 ms (file) or its read timeout (network); do not
    // let a blocked read hold up the exit.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !captures.iter().all(|c| c.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended = result?;
    for (name, c) in pipeline.stream_counts() {
        tracing::info!(
            "stopped ({ended:?}): {name}: {} events, {} frames, {} recognitions, {} dropped",
            c.events,
            c.frames,
            c.recognitions,
            c.ring_dropped,
        );
    }
    if ended == Ended::SourceEnded {
        if let Some(err) = pipeline.stream_errors().into_iter().next() {
            bail!("{err}");
        }
    }
    Ok(())
}

/// One configured stream, opened: its event source, its OpenCV RGB source if any, and the
/// processing options they imply.
struct OpenStream {
    spec: SourceSpec,
    opened: Opened,
    rgb: Option<(RgbSpec, opencv::videoio::VideoCapture)>,
    opts: StreamOptions,
}

impl OpenStream {
    fn open(settings: &StreamSettings, cfg: &Config, mode: WindowMode) -> Result<Self> {
        let s = &settings.source;
        let spec = SourceSpec {
            events: s.events.clone(),
            speed: s.speed.factor(),
            looping: s.looping,
            reconnect_initial: Duration::from_millis(s.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            forward_frames: settings.rgb.is_empty(),
        };
        let opened = spec.open().with_context(|| format!("stream {}", s.name))?;
        let rgb = if settings.rgb.is_empty() {
            None
        } else {
            let r = RgbSpec { source: settings.rgb.clone(), speed: s.speed.factor(), looping: s.looping };
            let cap = r.open().with_context(|| format!("{}: rgb source", s.name))?;
            Some((r, cap))
        };
        let has_frames = rgb.is_some() || (opened.has_frames && s.frames == FramesFrom::Stream);
        let opts = StreamOptions {
            name: s.name.clone(),
            source: opened.name.clone(),
            mode: effective_mode(mode, has_frames, cfg.window.time_us, &opened.name),
            sensor: opened.sensor.unwrap_or((346, 260)),
            max_buffered_events: cfg.window.max_buffered_events,
            hop: cfg.model.hop,
            has_frames,
        };
        Ok(OpenStream { spec, opened, rgb, opts })
    }
}
