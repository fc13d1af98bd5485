use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use safe_train::config::SafeConfig;
use safe_train::export::{self, read_labels};
use safe_train::onnx::safe::Export;
use safe_train::weights::Weights;
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
    /// Quantise the weights: int8 per output channel, activations quantised dynamically
    /// (ONNX Runtime's MatMulInteger path; VNNI where the CPU has it).
    #[arg(long, value_parser = ["int8"])]
    quantize: Option<String>,
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
    let int8 = args.quantize.is_some();
    let e = Export { weights: &weights, config: &config, labels: &labels, text_features: &text_features, int8 };
    let source = args.checkpoint.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for path in export::write_all(&e, &args.output, !args.no_split, &source)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import(args) => import(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("safe-train: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
