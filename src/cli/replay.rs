//! `safed replay`: the whole pipeline on a recording, paced as recorded (or faster), ending
//! with a latency report. With no arguments: the bundled demo recording through the bundled
//! demo model. With `--dataset`, every sample of a dataset split ([`super::replay_dataset`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::infer_args::SessionArgs;
use crate::accumulate::WindowMode;
use crate::capture::rgb::RgbSpec;
use crate::capture::{CaptureLink, SourceSpec};
use crate::config::Speed;
use crate::events::Format;
use crate::pipeline::{effective_mode, load_model, Pipeline, StreamOptions};
use crate::ring::{Overflow, Ring};
use crate::sink::{JsonlSink, Metrics, Sinks};
use crate::view::{ViewConfig, ViewHub};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An AEDAT4 recording with events and frames, or `-` / a FIFO to read one as it arrives
    /// (default: the bundled demo recording).
    recording: Option<PathBuf>,
    /// Read the recording as this format instead of recognising it (e.g. atis-bin).
    #[arg(long)]
    input_format: Option<Format>,
    /// RGB frames from this video file (OpenCV) instead of the recording's own frames; its
    /// first frame is aligned with the recording's first event.
    #[arg(long)]
    video: Option<PathBuf>,
    /// The full SAFE graph; its split pair (NAME.encoder.onnx, NAME.fusion.onnx) must lie
    /// beside it (default: the bundled demo model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Replay speed: a factor of recorded time, or `max`.
    #[arg(long, default_value = "1.0")]
    speed: String,
    /// Recognise every HOP frames (once F frames are held).
    #[arg(long, default_value_t = 1)]
    hop: usize,
    /// Event windows: `interval` (previous frame to this one) or `exposure`.
    #[arg(long, default_value = "interval", value_parser = ["interval", "exposure"])]
    window: String,
    /// Labels per recognition.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the JSON lines here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Draw the end-to-end latency histogram and its timeline (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Capture queue capacity (items: event packets and frames).
    #[arg(long, default_value_t = 1024)]
    ring: usize,
    /// Start the recording again at its end, until Ctrl-C (then the report).
    #[arg(long = "loop")]
    looping: bool,
    /// Serve the live view here during the replay (HOST:PORT, e.g. 127.0.0.1:8090; open
    /// http://HOST:PORT/). Beyond loopback it needs a token in SAFED_VIEW_TOKEN.
    #[arg(long, value_name = "ADDR")]
    view: Option<String>,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    dataset: super::replay_dataset::DatasetArgs,
}

/// The live view on `addr` for the replayed stream (its counters kept for the page).
fn start_view(addr: &str, name: &str, sensor: (u32, u32), model: &str) -> Result<(ViewHub, Metrics)> {
    const TOKEN_ENV: &str = "SAFED_VIEW_TOKEN";
    let token_env = if std::env::var_os(TOKEN_ENV).is_some() { TOKEN_ENV.to_string() } else { String::new() };
    let config = ViewConfig { listen: addr.to_string(), token_env, ..ViewConfig::default() };
    let settings = config.resolve().map_err(|(_, what)| anyhow::anyhow!("--view: {what} (the token: {TOKEN_ENV})"))?;
    let metrics = Metrics::new();
    metrics.set_model(model);
    let (hub, at) = ViewHub::start(&settings, &[(name.to_string(), sensor)], Some(metrics.clone()))
        .with_context(|| format!("--view {addr}"))?;
    eprintln!("view: open http://{at}/{}", if settings.token.is_some() { "?token=$SAFED_VIEW_TOKEN" } else { "" });
    Ok((hub, metrics))
}

fn parse_speed(s: &str) -> Result<Option<f64>> {
    match Speed::parse(s) {
        Some(speed) => Ok(speed.factor()),
        None => bail!("--speed {s:?}: expected a positive factor or `max`"),
    }
}

pub fn run(args: Args) -> Result<()> {
    let speed = parse_speed(&args.speed)?;
    if args.dataset.dataset.is_some() {
        let common = super::replay_dataset::Common {
            model: args.model,
            speed,
            hop: args.hop,
            top_k: args.top_k,
            report: args.report,
            output: args.output,
            plot: args.plot,
            ring: args.ring,
            session: args.session,
        };
        return super::replay_dataset::run(args.dataset, common);
    }
    let (model, model_name) = load_model(args.model.as_deref(), args.session.config())?;
    let spec = SourceSpec {
        events: args.recording.as_ref().map_or_else(|| "bundled".to_string(), |p| p.display().to_string()),
        speed,
        looping: args.looping,
        reconnect_initial: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        forward_frames: args.video.is_none(),
        format: args.input_format,
        usb: Default::default(),
        ros2: Default::default(),
    };
    let opened = spec.open()?;
    let video = match &args.video {
        Some(v) => {
            let r = RgbSpec { source: v.display().to_string(), speed, looping: false };
            let cap = r.open()?;
            Some((r, cap))
        }
        None => None,
    };
    let has_frames = opened.has_frames || video.is_some();
    let window = if args.window == "exposure" { WindowMode::Exposure } else { WindowMode::FrameInterval };
    let mode = effective_mode(window, has_frames, 33_333, &opened.name);
    let opts = StreamOptions {
        name: opened.name.clone(),
        source: opened.name.clone(),
        mode,
        sensor: opened.sensor.unwrap_or((346, 260)),
        max_buffered_events: 8 << 20,
        hop: args.hop.max(1),
        has_frames,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let link = CaptureLink::new(Ring::new(args.ring, Overflow::DropOldest), stop.clone());
    // SIGINT/SIGTERM end the replay early, still with the report.
    let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    let capture = spec.spawn(opened.source, link.clone())?;
    if let Some((r, cap)) = video {
        r.spawn(cap, link.clone())?;
    }
    let sink = match &args.output {
        Some(p) => JsonlSink::file(p).with_context(|| format!("creating {}", p.display()))?,
        None => JsonlSink::stdout(),
    };
    let view = match &args.view {
        Some(addr) => Some(start_view(addr, &opts.name, opts.sensor, &model_name)?),
        None => None,
    };
    let mut pipeline = Pipeline::new(model, vec![(opts, link.clone())], args.top_k.max(1)).named(&model_name);
    if let Some((hub, metrics)) = &view {
        pipeline = pipeline.with_metrics(metrics.clone()).with_view(hub.clone());
    }
    pipeline.keep_latencies = args.plot.is_some();
    // A progress line on a terminal (indicatif draws nothing when stderr is not one).
    let bar = indicatif::ProgressBar::new_spinner();
    let mut last = std::time::Instant::now();
    let sinks = Sinks { jsonl: sink, mqtt: None, view: view.map(|(hub, _)| hub), ros2: None };
    pipeline.run(sinks, |p| {
        if last.elapsed() >= Duration::from_millis(100) {
            last = std::time::Instant::now();
            let t = p.totals();
            bar.set_message(format!("{} events, {} frames, {} recognitions", t.events, t.frames, t.recognitions));
            bar.tick();
        }
    })?;
    bar.finish_and_clear();
    link.stop.store(true, Ordering::Relaxed);
    let _ = capture.join();
    if let Some(err) = link.status.error() {
        bail!("{}: {err}", opened.name);
    }
    let report = pipeline.report(&opened.name, &model_name);
    report.print();
    if let Some(path) = &args.plot {
        plot_latency(&pipeline.latencies_ms, path)?;
        eprintln!("latency plot: {}", path.display());
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Left: histogram of end-to-end latency (40 bins from 0 to the maximum). Right: latency of each
/// recognition in order (the timeline). Both blue; ranges are in the report.
fn plot_latency(ms: &[f64], path: &std::path::Path) -> Result<()> {
    let max = ms.iter().cloned().fold(0.0, f64::max).max(1e-3);
    let mut bins = vec![0.0; 40];
    for &v in ms {
        bins[((v / max) * 39.0).round() as usize] += 1.0;
    }
    let blue = [40, 90, 200];
    crate::plot::curves_png(&[vec![(bins, blue)], vec![(ms.to_vec(), blue)]], path)
}
