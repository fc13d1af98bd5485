//! `safed run --config FILE`: the daemon. Loads the model and opens the source (errors here come
//! before READY), tells systemd it is ready, then processes until the source ends or SIGTERM /
//! SIGINT, and exits 0 with every JSON line flushed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::capture::rgb::RgbSpec;
use crate::capture::{CaptureLink, SourceSpec};
use crate::config::{Config, FramesFrom};
use crate::infer::SessionConfig;
use crate::pipeline::{effective_mode, load_model, Ended, Pipeline, PipelineOptions};
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
    let s = &cfg.source;
    let spec = SourceSpec {
        events: s.events.clone(),
        speed: s.speed.factor(),
        looping: s.looping,
        reconnect_initial: Duration::from_millis(s.reconnect_initial_ms),
        reconnect_max: Duration::from_millis(s.reconnect_max_ms),
        idle_timeout: Duration::from_millis(s.idle_timeout_ms),
        forward_frames: cfg.rgb.source.is_empty(),
    };
    let opened = spec.open().with_context(|| format!("opening {}", spec.events))?;
    // RGB from OpenCV, opened now so that a bad camera or file fails before READY.
    let rgb = if cfg.rgb.source.is_empty() {
        None
    } else {
        let r = RgbSpec { source: cfg.rgb.source.clone(), speed: s.speed.factor(), looping: s.looping };
        let cap = r.open().context("rgb.source")?;
        Some((r, cap))
    };
    let has_frames = rgb.is_some() || (opened.has_frames && s.frames == FramesFrom::Stream);
    let mode = cfg.window_mode().context("window.mode")?;
    let opts = PipelineOptions {
        stream: s.name.clone(),
        mode: effective_mode(mode, has_frames, cfg.window.time_us, &opened.name),
        sensor: opened.sensor.unwrap_or((346, 260)),
        max_buffered_events: cfg.window.max_buffered_events,
        hop: m.hop,
        top_k: m.top_k,
        has_frames,
    };
    let mut sink = JsonlSink::open(&cfg.output.jsonl).with_context(|| format!("output.jsonl: {}", cfg.output.jsonl))?;
    let link = CaptureLink::new(Ring::new(cfg.queue.capacity, cfg.queue.overflow), stop.clone());
    let capture = spec.spawn(opened.source, link.clone())?;
    if let Some((r, cap)) = rgb {
        r.spawn(cap, link.clone())?;
    }
    let mut pipeline = Pipeline::new(model, opts);
    if !cfg.metrics.listen.is_empty() {
        let metrics = crate::sink::Metrics::new();
        let at =
            metrics.serve(&cfg.metrics.listen).with_context(|| format!("metrics.listen: {}", cfg.metrics.listen))?;
        tracing::info!("metrics on http://{at}/metrics");
        pipeline = pipeline.with_metrics(metrics);
    }
    processing.store(true, Ordering::Relaxed);
    notifier.ready(&format!("model {model_name}, source {}", opened.name));
    tracing::info!("ready: model {model_name}, source {}", opened.name);
    let result = pipeline.run(&link, &mut sink, |_| notifier.tick());
    notifier.stopping();
    link.stop.store(true, Ordering::Relaxed);
    // The capture thread sees the stop within 50 ms (file) or its read timeout (network); do
    // not let a blocked read hold up the exit.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !capture.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended = result?;
    let r = pipeline.report(&opened.name, &model_name, &link);
    tracing::info!(
        "stopped ({ended:?}): {} events, {} frames, {} recognitions, {} dropped",
        r.events,
        r.frames,
        r.recognitions,
        r.ring_dropped
    );
    if ended == Ended::SourceEnded {
        if let Some(err) = link.status.error() {
            bail!("{}: {err}", opened.name);
        }
    }
    Ok(())
}
