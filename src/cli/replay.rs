//! `safed replay`: the whole pipeline on a recording, paced as recorded (or faster), ending
//! with a latency report. With no arguments: the bundled demo recording through the bundled
//! demo model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::infer_args::SessionArgs;
use crate::accumulate::WindowMode;
use crate::capture::{file, CaptureLink, CaptureStatus, Item};
use crate::events::{EventSource, StreamKind};
use crate::infer::stream_cache::{StageTimes, StreamingModel};
use crate::infer::SafeModel;
use crate::report::{Report, Stages};
use crate::ring::{Overflow, Ring};
use crate::sink::{JsonlSink, Latency, Recognition, Scored};
use crate::sync::Pairer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An AEDAT4 recording with events and frames (default: the bundled demo recording).
    recording: Option<PathBuf>,
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
    /// Capture ring capacity (items: event packets and frames).
    #[arg(long, default_value_t = 1024)]
    ring: usize,
    #[command(flatten)]
    session: SessionArgs,
}

fn parse_speed(s: &str) -> Result<Option<f64>> {
    if s == "max" {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Some(v)),
        _ => bail!("--speed {s:?}: expected a positive factor or `max`"),
    }
}

fn load_models(model: Option<&Path>, args: &SessionArgs) -> Result<(StreamingModel, String)> {
    let mut cfg = args.config();
    // Two sessions take turns: spinning threads of one would starve the other.
    cfg.spin = false;
    let (encoder, fusion, name) = match model {
        Some(full) => {
            let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let part = |role: &str| full.with_file_name(format!("{stem}.{role}.onnx"));
            let (e, f) = (part("encoder"), part("fusion"));
            (SafeModel::load(&e, &cfg)?, SafeModel::load(&f, &cfg)?, full.display().to_string())
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

pub fn run(args: Args) -> Result<()> {
    let speed = parse_speed(&args.speed)?;
    let (mut model, model_name) = load_models(args.model.as_deref(), &args.session)?;
    let source_name = match &args.recording {
        Some(p) => p.display().to_string(),
        None => format!("(bundled) {}", crate::demo::SAMPLE_NAME),
    };
    let recording = args.recording.clone();
    let open = move || -> Result<Box<dyn EventSource>, crate::events::EventError> {
        match &recording {
            Some(p) => crate::events::open(&p.display().to_string()),
            None => crate::demo::open_sample(),
        }
    };
    // Read the stream layout once up front: a bad file fails here, before any thread starts.
    let probe = open().with_context(|| format!("opening {source_name}"))?;
    let streams = &probe.info().streams;
    let events_stream = streams.iter().find(|s| s.kind == StreamKind::Events);
    let sensor = events_stream.and_then(|s| s.size).map(|(w, h)| (w as u32, h as u32)).unwrap_or((346, 260));
    let has_frames = streams.iter().any(|s| s.kind == StreamKind::Frames);
    drop(probe);
    let mode = match (has_frames, args.window.as_str()) {
        (false, _) => {
            tracing::warn!("{source_name}: no frames: event-only mode (33 ms windows; the RGB branch sees event images, unlike the paper)");
            WindowMode::Time { us: 33_333 }
        }
        (true, "exposure") => WindowMode::Exposure,
        (true, _) => WindowMode::FrameInterval,
    };

    let link = CaptureLink {
        ring: Ring::new(args.ring, Overflow::DropOldest),
        status: Arc::new(CaptureStatus::default()),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let stop = link.stop.clone();
    // SIGINT/SIGTERM end the replay cleanly, with the report.
    let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    let capture = file::spawn(Box::new(open), file::ReplayOptions { speed, looping: false }, link.clone())?;

    let mut sink = match &args.output {
        Some(p) => JsonlSink::file(p).with_context(|| format!("creating {}", p.display()))?,
        None => JsonlSink::stdout(),
    };
    let mut pairer = Pairer::new(mode, sensor, 8 << 20);
    let mut stages = Stages::default();
    let (mut events, mut frames, mut pair_count, mut seq) = (0u64, 0u64, 0u64, 0u64);
    let mut labels = BTreeMap::new();
    let mut window: std::collections::VecDeque<(i64, i64, usize)> = Default::default();
    let started = Instant::now();
    let mut pairs = Vec::new();
    let mut since_last = 0usize;
    loop {
        let item = link.ring.pop();
        let finished = item.is_none() && link.status.is_done() && link.ring.is_empty();
        match item {
            Some(Item::Events { events: ev, arrived }) => {
                events += ev.len() as u64;
                pairer.push_events(&ev, arrived, &mut pairs);
            }
            Some(Item::Frame { frame, arrived }) => {
                frames += 1;
                pairer.push_frame(frame, arrived, &mut pairs);
            }
            None if finished => pairer.finish(&mut pairs),
            None => {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
        }
        for pair in pairs.drain(..) {
            let dequeued = Instant::now();
            pair_count += 1;
            let mut times = StageTimes::default();
            model.push(&pair.rgb, &pair.events, &mut times)?;
            window.push_back((pair.start, pair.end, pair.event_count));
            while window.len() > model.frames() {
                window.pop_front();
            }
            since_last += 1;
            if since_last < args.hop.max(1) {
                continue;
            }
            let Some(log_probs) = model.recognise(&mut times)? else { continue };
            since_last = 0;
            seq += 1;
            let top = model.fusion.top(&log_probs, args.top_k);
            *labels.entry(top[0].0.clone()).or_insert(0) += 1;
            // Milliseconds to the microsecond.
            let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
            let rec = Recognition {
                stream: source_name.clone(),
                seq,
                t_start: window.front().map_or(pair.start, |w| w.0),
                t_end: pair.end,
                frames: window.len(),
                events: window.iter().map(|w| w.2).sum(),
                rgb: if has_frames { "frames" } else { "events" },
                top: top.into_iter().map(|(label, lp)| Scored { label, p: lp.exp() }).collect(),
                latency_ms: Latency {
                    queue: ms(dequeued - pair.arrived),
                    preprocess: ms(times.preprocess),
                    encode: ms(times.encode),
                    fuse: ms(times.fuse),
                    total: ms(pair.arrived.elapsed()),
                },
            };
            sink.write(&rec)?;
            stages.queue.record(dequeued - pair.arrived);
            stages.preprocess.record(times.preprocess);
            stages.encode.record(times.encode);
            stages.fuse.record(times.fuse);
            stages.total.record(pair.arrived.elapsed());
        }
        if finished {
            break;
        }
    }
    let _ = capture.join();
    if let Some(err) = link.status.error() {
        bail!("{source_name}: {err}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        source: source_name,
        model: model_name,
        seconds,
        events,
        frames,
        pairs: pair_count,
        recognitions: seq,
        events_per_second: events as f64 / seconds.max(1e-9),
        recognitions_per_second: seq as f64 / seconds.max(1e-9),
        ring_dropped: link.ring.dropped(),
        window_dropped: pairer.dropped_events(),
        labels,
        latency_ms: stages.report(),
    };
    report.print();
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
