//! `safed run --config FILE`: the daemon. Loads the model, opens the sources and the sinks
//! (errors here come before READY), tells systemd it is ready, then processes until the sources
//! end or SIGTERM / SIGINT, and exits 0 with every JSON line flushed. SIGHUP reloads the config
//! (see [`crate::reload`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::accumulate::WindowMode;
use crate::capture::rgb::RgbSpec;
use crate::capture::ros2_rgb::{self, Ros2Rgb};
use crate::capture::{CaptureLink, Opened, SourceSpec};
use crate::config::{Config, FramesFrom, StreamSettings};
use crossbeam_channel::Receiver;

use crate::pipeline::{effective_mode, load_model, Batching, Ended, Pipeline, StreamOptions};
use crate::reload::{model_stamp, Reloader};
use crate::ring::Ring;
use crate::service::Notifier;
use crate::sink::ros2::Ros2Sink;
use crate::sink::{JsonlSink, Metrics, MqttSink, Sinks};
use crate::view::ViewHub;

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
    let hups = signals(stop.clone(), processing.clone(), cfg.service.notify)?;
    let mut notifier = Notifier::from_env(cfg.service.notify);
    let m = &cfg.model;
    let (model, model_name) = load_model(m.path.as_deref(), m.session())?;
    let input = model.input();
    let mode = cfg.window_mode().context("window.mode")?;
    // Every source is opened now, so that a bad file, server or camera fails before READY.
    let streams: Vec<OpenStream> =
        cfg.streams().iter().map(|s| OpenStream::open(s, &cfg, mode)).collect::<Result<_>>()?;
    let jsonl = JsonlSink::open(&cfg.output.jsonl).with_context(|| format!("output.jsonl: {}", cfg.output.jsonl))?;
    let mut links = Vec::new();
    let mut captures = Vec::new();
    let mut names = Vec::new();
    for s in streams {
        let link = CaptureLink::new(Ring::new(cfg.queue.capacity, cfg.queue.overflow), stop.clone());
        names.push(s.opened.name.clone());
        captures.push(s.spec.spawn(s.opened.source, link.clone())?);
        match s.rgb {
            Some(RgbInput::OpenCv(r, cap)) => drop(r.spawn(cap, link.clone())?),
            Some(RgbInput::Ros2(r)) => drop(r.spawn(link.clone())?),
            None => {}
        }
        links.push((s.opts, link));
    }
    let sources = names.join(", ");
    let stream_names: Vec<String> = links.iter().map(|(o, _)| o.name.clone()).collect();
    let stream_sources: Vec<(String, String)> =
        cfg.streams().iter().map(|s| (s.source.name.clone(), s.source.events.clone())).collect();
    // Counters are kept whether or not they are served: the health message reads them.
    let metrics = Metrics::new();
    metrics.set_model(&model_name);
    let health = metrics.health_source(stream_names);
    let mqtt = match &cfg.output.mqtt {
        Some(c) => Some(MqttSink::start(c, metrics.clone(), health.clone())?),
        None => None,
    };
    if !cfg.metrics.listen.is_empty() {
        let at =
            metrics.serve(&cfg.metrics.listen).with_context(|| format!("metrics.listen: {}", cfg.metrics.listen))?;
        tracing::info!("metrics on http://{at}/metrics");
    }
    let view = if cfg.view.enabled() {
        let settings = cfg.view.resolve().map_err(|(key, what)| anyhow::anyhow!("view.{key}: {what}"))?;
        let sensors: Vec<_> = links.iter().map(|(o, _)| (o.name.clone(), o.sensor)).collect();
        let (hub, _) = ViewHub::start(&settings, &sensors, Some(metrics.clone()))
            .with_context(|| format!("view.listen: {}", settings.listen))?;
        Some(hub)
    } else {
        None
    };
    let ros2 = match &cfg.output.ros2 {
        Some(r) => {
            Some(Ros2Sink::start(r, &cfg.ros2, &stream_sources, metrics.ros2_dropped.clone()).context("output.ros2")?)
        }
        None => None,
    };
    let batching = Batching { max_pairs: m.batch, wait: Duration::from_millis(m.batch_wait_ms) };
    let (reload_tx, reload_rx) = crossbeam_channel::bounded(1);
    let mut pipeline = Pipeline::new(model, links, m.top_k)
        .named(&model_name)
        .with_batching(batching)
        .with_metrics(metrics.clone())
        .with_reloads(reload_rx);
    if let Some(v) = &view {
        pipeline = pipeline.with_view(v.clone());
    }
    if let Some(tap) = ros2.as_ref().and_then(|r| r.images.clone()) {
        pipeline = pipeline.with_ros2_images(tap);
    }
    let reloader = Reloader {
        path: args.config.clone(),
        model_stamp: model_stamp(cfg.model.path.as_deref()),
        running: cfg.clone(),
        input,
        metrics,
        health,
        tx: reload_tx,
    };
    reloader.spawn(hups)?;
    processing.store(true, Ordering::Relaxed);
    notifier.ready(&format!("model {model_name}, source {sources}"));
    if let Some(m) = &mqtt {
        m.ready();
    }
    tracing::info!("ready: model {model_name}, source {sources}");
    let result = pipeline.run(Sinks { jsonl, mqtt, view, ros2 }, |_| notifier.tick());
    notifier.stopping();
    stop.store(true, Ordering::Relaxed);
    if let Some(m) = pipeline.mqtt.take() {
        m.finish(Instant::now() + Duration::from_millis(500));
    }
    // A capture thread sees the stop within 50 ms (file) or its read timeout (network); do not
    // let a blocked read hold up the exit.
    let deadline = Instant::now() + Duration::from_millis(300);
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

/// SIGTERM and SIGINT stop (at once while still loading: nothing to flush, and loading a large
/// model may take longer than the 2 s a stop may take); each SIGHUP comes out of the returned
/// channel, for the reloader.
fn signals(stop: Arc<AtomicBool>, processing: Arc<AtomicBool>, notify: bool) -> Result<Receiver<()>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing the signal handlers")?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if sig == SIGHUP {
                let _ = tx.send(());
                continue;
            }
            stop.store(true, Ordering::Relaxed);
            if !processing.load(Ordering::Relaxed) {
                Notifier::from_env(notify).stopping();
                std::process::exit(0);
            }
        }
    })?;
    Ok(rx)
}

/// One configured stream, opened: its event source, its OpenCV RGB source if any, and the
/// processing options they imply.
struct OpenStream {
    spec: SourceSpec,
    opened: Opened,
    rgb: Option<RgbInput>,
    opts: StreamOptions,
}

/// Where a stream's RGB frames come from, beside its events.
enum RgbInput {
    OpenCv(RgbSpec, opencv::videoio::VideoCapture),
    Ros2(Box<Ros2Rgb>),
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
            format: None,
            usb: s.usb_options().map_err(|e| anyhow::anyhow!("stream {}: camera_config: {e}", s.name))?,
            ros2: cfg.ros2.clone(),
        };
        let opened = spec.open().with_context(|| format!("stream {}", s.name))?;
        let rgb = if settings.rgb.is_empty() {
            None
        } else if ros2_rgb::is_ros2(&settings.rgb) {
            let r = Ros2Rgb::open(&settings.rgb, &s.events, &cfg.ros2)
                .with_context(|| format!("{}: rgb source", s.name))?;
            Some(RgbInput::Ros2(Box::new(r)))
        } else {
            let r = RgbSpec { source: settings.rgb.clone(), speed: s.speed.factor(), looping: s.looping };
            let cap = r.open().with_context(|| format!("{}: rgb source", s.name))?;
            Some(RgbInput::OpenCv(r, cap))
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
