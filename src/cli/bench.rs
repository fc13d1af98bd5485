use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use super::infer_args::SessionArgs;
use crate::infer::model::Role;
use crate::infer::SafeModel;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A full SAFE graph; with --streaming, the encoder graph (its fusion graph beside it, as
    /// safe-train writes them: NAME.encoder.onnx / NAME.fusion.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Samples per run.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed runs (after 2 warm-up runs).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Time a streaming update instead: 2 encoder passes (one new RGB frame, one new event
    /// image) + one fusion pass.
    #[arg(long)]
    pub streaming: bool,
    #[arg(long)]
    pub json: bool,
    /// Instead of timing, compare --model's answers with this full graph's (say an int8 graph
    /// against the fp32 one it came from): top-1 agreement and log-prob drift on the samples of
    /// --rgb-tensor / --event-tensor.
    #[arg(long, requires_all = ["rgb_tensor", "event_tensor"], conflicts_with = "streaming")]
    pub against: Option<PathBuf>,
    /// With --against: the backend that runs the --against graph (default: --backend's), so that
    /// one graph on OpenVINO (say at bf16) can be compared with itself on ONNX Runtime.
    #[arg(long, value_enum, requires = "against")]
    pub against_backend: Option<crate::infer::Backend>,
    /// With --against: RGB input, [B, F, 3, S, S] float32 .npy, normalised (as `classify` takes).
    #[arg(long, requires = "against")]
    pub rgb_tensor: Option<PathBuf>,
    /// With --against: event input, as --rgb-tensor.
    #[arg(long, requires = "against")]
    pub event_tensor: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Serialize)]
struct Report {
    model: String,
    /// The provider asked for (with --cpu-fallback it may have run on the CPU: the log says).
    provider: crate::infer::Provider,
    mode: &'static str,
    batch: usize,
    runs: usize,
    median_ms: f64,
    p90_ms: f64,
    min_ms: f64,
}

/// Deterministic inputs in [-1, 1] (values do not change the work done).
fn inputs(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect()
}

fn time_runs(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..2 {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

pub fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut config = args.session.config();
    if let (Some(against), Some(rgb), Some(event)) = (&args.against, &args.rgb_tensor, &args.event_tensor) {
        let mut against_config = config.clone();
        against_config.backend = args.against_backend.unwrap_or(config.backend);
        return super::bench_parity::run(&args.model, against, rgb, event, (&config, &against_config), args.json);
    }
    // Two sessions take turns in streaming mode: idle spinning would starve the other.
    config.spin = !args.streaming;
    let mut model = SafeModel::load(&args.model, &config)?;
    let (mode, per_sample_ms) = if args.streaming {
        if model.role != Role::Encoder {
            bail!("--streaming takes the encoder graph (NAME.encoder.onnx)");
        }
        let fusion_path = args.model.to_string_lossy().replace(".encoder.onnx", ".fusion.onnx");
        let mut fusion = SafeModel::load(fusion_path.as_ref(), &config)?;
        let images = inputs(2 * args.batch * model.image_len());
        let tokens = inputs(args.batch * model.tokens * model.embed_dim);
        let times = time_runs(args.runs, || {
            model.encode(&images)?;
            fusion.fuse(&tokens, &tokens)?;
            Ok(())
        })?;
        ("streaming-update", times)
    } else {
        if model.role != Role::Full {
            bail!("bench takes a full graph (or an encoder graph with --streaming)");
        }
        let x = inputs(args.batch * model.frames * model.image_len());
        let times = time_runs(args.runs, || {
            model.classify(&x, &x)?;
            Ok(())
        })?;
        ("full", times)
    };
    let per = |ms: f64| ms / args.batch as f64;
    let pick = |q: f64| per_sample_ms[((per_sample_ms.len() - 1) as f64 * q).round() as usize];
    let report = Report {
        model: args.model.display().to_string(),
        provider: args.session.provider,
        mode,
        batch: args.batch,
        runs: per_sample_ms.len(),
        median_ms: per(pick(0.5)),
        p90_ms: per(pick(0.9)),
        min_ms: per(per_sample_ms[0]),
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "{} ({}, batch {}): per sample median {:.1} ms, p90 {:.1} ms, min {:.1} ms over {} runs",
            report.model, report.mode, report.batch, report.median_ms, report.p90_ms, report.min_ms, report.runs
        )?;
    }
    Ok(())
}
