use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Parser, Subcommand, ValueEnum};
use safe_train::calibrate::CalibrationSet;
use safe_train::checkpoint;
use safe_train::config::SafeConfig;
use safe_train::data::batch::prepare;
use safe_train::data::synth::{self, SynthOptions};
use safe_train::data::Dataset;
use safe_train::eval::evaluate;
use safe_train::export::{self, read_labels};
use safe_train::fit::{self, FitOptions, InitFrom};
use safe_train::model::TextTokens;
use safe_train::onnx::safe::{Export, Precision};
use safe_train::weights::Weights;
use safed::accumulate::Representation;
use safed::infer::SessionConfig;

#[derive(Debug, Parser)]
#[command(name = "safe-train", version, about = "Import, train and export SAFE models for safed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import the authors' checkpoint and write the ONNX graphs safed runs.
    Import(ImportArgs),
    /// Write a synthetic RGB + event dataset (moving symbols, events simulated from
    /// log-intensity changes) in the authors' layout, with an AEDAT4 recording per sample.
    Synth(SynthArgs),
    /// Train SAFE on a dataset (DIR/train, evaluated on DIR/test after every epoch).
    Fit(Box<FitArgs>),
    /// Evaluate a checkpoint: top-1, top-5, per-class accuracy, confusion matrix.
    Eval(EvalArgs),
    /// Write a checkpoint's ONNX graphs (full, and the encoder/fusion pair) for safed.
    Export(ExportArgs),
    /// Time training steps, split by phase (batch, forward, backward, clipping, optimizer).
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Dataset root with a train/ split.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed steps (after the warm-up ones).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SynthArgs {
    out: PathBuf,
    #[arg(long, default_value_t = 6)]
    classes: usize,
    #[arg(long, default_value_t = 60)]
    samples_per_class: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// RGB frames per sample.
    #[arg(long, default_value_t = 8)]
    frames: usize,
    /// On-disk layout: `folders` (SAFE's), `recordings` (one AEDAT4 per sample), `hardvs`
    /// (label files, .npz events) or `dvs-gesture` (AEDAT 3.1 recordings of labelled segments,
    /// event-only).
    #[arg(long, default_value = "folders", value_parser = ["folders", "recordings", "hardvs", "dvs-gesture"])]
    layout: String,
}

#[derive(Debug, clap::Args)]
struct FitArgs {
    /// Dataset root: train/ and test/ splits (see `safe-train synth`), or *_label.txt files.
    #[arg(long)]
    data: PathBuf,
    /// Sizes and training defaults: tiny (CPU) or vit-b16 (the paper).
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Run folder: metrics.jsonl, curves.png, last/ and best/ checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// Start from the authors' checkpoint (CLIP and fusion weights).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Start CLIP from OpenAI or Hugging Face CLIP weights.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// Initialise the fusion block from a timm ViT-B/16 checkpoint's last block.
    #[arg(long)]
    timm: Option<PathBuf>,
    /// Continue a run from its checkpoint folder (RUN/last).
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    warmup_epochs: Option<f64>,
    #[arg(long)]
    grad_clip: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Frames per modality.
    #[arg(long)]
    frames: Option<usize>,
    /// The split evaluated after each epoch (picks RUN/best).
    #[arg(long)]
    val_split: Option<String>,
    /// Train only the fusion model, on per-frame CLIP features computed once (cached in RUN).
    #[arg(long)]
    freeze_clip: bool,
    /// The event branch's input: `image` (the datasets' event image, the paper) or `voxel`
    /// (3-bin voxel grids, one bin per channel; needs recorded events). Exported graphs say
    /// which, and safed renders the same.
    #[arg(long, value_parser = ["image", "voxel"])]
    events: Option<String>,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// A checkpoint folder (RUN/best or RUN/last).
    checkpoint: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "test")]
    split: String,
    /// Print only {"top1":..,"top5":..}.
    #[arg(long)]
    json: bool,
    /// Where confusion.csv/.png and per_class.csv go (default CHECKPOINT/eval-SPLIT).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write each sample's prediction and log-probabilities as CSV.
    #[arg(long)]
    predictions: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// A checkpoint folder (RUN/best or RUN/last).
    checkpoint: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// Write only the full graph.
    #[arg(long)]
    no_split: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
}

/// How the graphs hold their weights, and what int8-static calibrates on.
#[derive(Debug, clap::Args)]
struct PrecisionArgs {
    /// Quantise weight MatMuls to int8 per output channel: `int8` (also `int8-dynamic`:
    /// activations quantised per call, ONNX Runtime's MatMulInteger path) or `int8-static`
    /// (activations with ranges calibrated on --calibrate DATA, as QuantizeLinear /
    /// DequantizeLinear pairs: the int8 OpenVINO is built for).
    #[arg(long, value_parser = ["int8", "int8-dynamic", "int8-static"], conflicts_with = "precision")]
    quantize: Option<String>,
    /// fp32, fp16 (weights and compute; inputs and outputs stay float32: for GPUs), int8 or
    /// int8-static (the same as --quantize).
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// The dataset int8-static's activation ranges are calibrated on (any layout safed reads).
    #[arg(long, value_name = "DATA")]
    calibrate: Option<PathBuf>,
    /// The split of --calibrate to use.
    #[arg(long, default_value = "train", requires = "calibrate")]
    calibration_split: String,
    /// How many samples of it, evenly spaced over the split.
    #[arg(long, default_value_t = 32, requires = "calibrate")]
    calibration_samples: usize,
}

impl PrecisionArgs {
    /// `--quantize Q` is `--precision Q` (clap keeps the two from being given together).
    fn precision(&self) -> Precision {
        let named = self.quantize.as_deref().and_then(|q| Precision::from_str(q, true).ok());
        named.or(self.precision).unwrap_or_default()
    }

    fn calibration_set(&self) -> Option<CalibrationSet> {
        let root = self.calibrate.clone()?;
        Some(CalibrationSet { root, split: self.calibration_split.clone(), samples: self.calibration_samples })
    }
}

fn synth(a: SynthArgs) -> Result<()> {
    let o = SynthOptions {
        classes: a.classes,
        samples_per_class: a.samples_per_class,
        seed: a.seed,
        frames: a.frames,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let layout = synth::SynthLayout::parse(&a.layout).context("--layout")?;
    let n = synth::write_dataset_as(&a.out, &o, layout)?;
    eprintln!("wrote {n} samples to {} in {:.1} s", a.out.display(), t.elapsed().as_secs_f64());
    Ok(())
}

fn fit_cmd(a: FitArgs) -> Result<()> {
    let mut o = FitOptions::preset(&a.preset)?;
    macro_rules! set { ($($f:ident),*) => { $(if let Some(v) = a.$f { o.$f = v; })* } }
    set!(epochs, batch_size, lr, weight_decay, warmup_epochs, grad_clip, seed, frames, val_split);
    o.freeze_clip = a.freeze_clip;
    if let Some(e) = &a.events {
        o.events = Representation::parse(e).context("--events")?;
    }
    let from = InitFrom { authors: a.init, clip: a.clip, timm: a.timm };
    let r = fit::fit(&a.data, &a.out, o, &from, a.resume.as_deref(), &Device::Cpu)?;
    eprintln!(
        "best {:.4} top-1 at epoch {} ({}), {:.0} s in all",
        r.best_top1,
        r.best_epoch,
        a.out.join("best").display(),
        r.seconds
    );
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let dev = Device::Cpu;
    let (model, state) = checkpoint::load_model(&a.checkpoint, &dev)?;
    let data = Dataset::open_for(&a.data, &a.split, model.config.events)?;
    anyhow::ensure!(
        data.labels == state.labels,
        "{}: the dataset names other classes than the checkpoint",
        a.data.display()
    );
    let prepared = prepare(&data, model.config.image_size as u32)?;
    let text = TextTokens::new(&state.labels, model.config.context, &dev)?;
    let report = evaluate(&model, &text, &prepared, 16, &dev)?;
    let out = a.out.unwrap_or_else(|| a.checkpoint.join(format!("eval-{}", a.split)));
    report.write_csv(&out, &state.labels)?;
    if let Some(path) = &a.predictions {
        let mut csv = String::from("sample,label,predicted,log_probs\n");
        for (s, p) in data.samples.iter().zip(&report.predictions) {
            let lp: Vec<String> = p.log_probs.iter().map(|v| format!("{v:.6}")).collect();
            csv.push_str(&format!("{},{},{},{}\n", s.name, p.label, p.predicted, lp.join(" ")));
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::json!({"top1": report.top1, "top5": report.top5}));
    } else {
        println!(
            "{} {} samples: top-1 {:.4}, top-5 {:.4}, loss {:.4}",
            a.split, report.samples, report.top1, report.top5, report.loss
        );
        for (label, acc) in state.labels.iter().zip(&report.per_class) {
            println!("  {label:<20} {acc:.4}");
        }
        println!("confusion matrix and per-class CSV in {}", out.display());
    }
    Ok(())
}

fn export_cmd(a: ExportArgs) -> Result<()> {
    let (model, state) = checkpoint::load_model(&a.checkpoint, &Device::Cpu)?;
    let source = a.checkpoint.display().to_string();
    for path in export::write_model(
        &model,
        &state.labels,
        &a.output,
        !a.no_split,
        a.precision.precision(),
        a.precision.calibration_set().as_ref(),
        &source,
    )? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    let mut o = FitOptions::preset(&a.preset)?;
    o.seed = a.seed;
    if let Some(b) = a.batch_size {
        o.batch_size = b;
    }
    let t = safe_train::bench::step_times(&a.data, &o, a.warmup, a.steps, &Device::Cpu)?;
    if a.json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        println!("{} parameters, batch {}, median of {} steps (ms):", t.parameters, o.batch_size, t.steps);
        for (name, v) in [
            ("batch", t.batch_ms),
            ("forward", t.forward_ms),
            ("backward", t.backward_ms),
            ("clip", t.clip_ms),
            ("optimizer", t.optimizer_ms),
            ("step", t.step_ms),
        ] {
            println!("  {name:<10} {v:8.1}");
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The authors' checkpoint (torch.save with model_state_dict and ViT_model_state_dict).
    checkpoint: PathBuf,
    /// The full graph; the split pair goes beside it as NAME.encoder.onnx / NAME.fusion.onnx.
    #[arg(short, long)]
    output: PathBuf,
    /// CLIP weights to use instead of the checkpoint's own: OpenAI CLIP (.pt or .safetensors)
    /// or Hugging Face CLIPModel safetensors.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// Class names, one per line, in the model's class order.
    #[arg(long)]
    labels: PathBuf,
    /// Frames per modality.
    #[arg(long, default_value_t = 5)]
    frames: i64,
    /// Write only the full graph.
    #[arg(long)]
    no_split: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
}

fn import(args: ImportArgs) -> Result<()> {
    let mut weights = Weights::load_authors_checkpoint(&args.checkpoint)?;
    if let Some(clip) = &args.clip {
        weights.replace_clip(Weights::load_clip(clip)?);
    }
    let config = SafeConfig::infer(&weights, args.frames)?;
    let labels = read_labels(&args.labels)?;
    anyhow::ensure!(
        labels.len() as i64 == config.classes,
        "{}: {} labels, but the checkpoint has {} classes",
        args.labels.display(),
        labels.len(),
        config.classes
    );
    let text_features = export::text_features(&weights, &config, &labels, &SessionConfig::default())?;
    let precision = args.precision.precision();
    let mut e = Export {
        weights: &weights,
        config: &config,
        labels: &labels,
        text_features: &text_features,
        precision,
        calibration: None,
    };
    let ranges = export::calibration(&e, args.precision.calibration_set().as_ref())?;
    e.calibration = ranges.as_ref();
    let source = args.checkpoint.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for path in export::write_all(&e, &args.output, !args.no_split, &source)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A training step allocates and frees the same large tensors (activations, gradients: up to
/// a few MB each) hundreds of times. glibc serves blocks over its adaptive mmap threshold with
/// fresh mappings and returns freed heap tops to the kernel, so every step paid for page faults,
/// zeroing and TLB shootdowns: 388 ms per tiny step against 159 ms with blocks up to 32 MB kept
/// in the heap and freed memory trimmed only past 1 GB (`safe-train bench`, this VM).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import(args) => import(args),
        Command::Synth(args) => synth(args),
        Command::Fit(args) => fit_cmd(*args),
        Command::Eval(args) => eval_cmd(args),
        Command::Export(args) => export_cmd(args),
        Command::Bench(args) => bench_cmd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("safe-train: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
