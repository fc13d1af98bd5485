use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use super::infer_args::SessionArgs;
use super::npy::read_npy;
use crate::infer::preprocess::frames_from_dir;
use crate::infer::SafeModel;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A full SAFE graph (rgb, event -> log_probs).
    #[arg(long)]
    pub model: PathBuf,
    /// RGB input: [B, F, 3, S, S] or [F, 3, S, S] float32 .npy, already normalised.
    #[arg(long, requires = "event_tensor", conflicts_with_all = ["rgb_dir", "event_dir"])]
    pub rgb_tensor: Option<PathBuf>,
    /// Event input, as --rgb-tensor.
    #[arg(long, requires = "rgb_tensor")]
    pub event_tensor: Option<PathBuf>,
    /// A folder of RGB frames (PNG/JPEG, as the datasets store them); F evenly spaced frames
    /// are resized and normalised.
    #[arg(long, requires = "event_dir")]
    pub rgb_dir: Option<PathBuf>,
    /// A folder of event images, as --rgb-dir.
    #[arg(long, requires = "rgb_dir")]
    pub event_dir: Option<PathBuf>,
    /// How many labels to list per sample.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Serialize)]
struct Top<'a> {
    label: &'a str,
    log_prob: f32,
}

#[derive(Serialize)]
struct Line<'a> {
    sample: usize,
    log_probs: &'a [f32],
    top: Vec<Top<'a>>,
}

pub fn run(args: Args) -> Result<()> {
    let mut model = SafeModel::load(&args.model, &args.session.config())?;
    if args.event_dir.is_some() && model.events != crate::accumulate::Representation::Image {
        tracing::warn!(
            "{}: this model takes {} event images (safe.events): --event-dir must hold those, not the datasets' event images",
            args.model.display(),
            model.events
        );
    }
    let per_sample = model.frames * model.image_len();
    let (rgb, event) = match (&args.rgb_tensor, &args.event_tensor, &args.rgb_dir, &args.event_dir) {
        (Some(r), Some(e), _, _) => (read_npy(r, per_sample)?, read_npy(e, per_sample)?),
        (_, _, Some(r), Some(e)) => {
            let s = model.image_size as u32;
            let (f, mean, std) = (model.frames, model.mean, model.std);
            (frames_from_dir(r, f, s, mean, std)?, frames_from_dir(e, f, s, mean, std)?)
        }
        _ => bail!("give --rgb-tensor and --event-tensor, or --rgb-dir and --event-dir"),
    };
    let rows = model.classify(&rgb, &event)?;
    let mut out = std::io::stdout().lock();
    for (sample, row) in rows.iter().enumerate() {
        let top = model.top(row, args.top);
        let top = top.iter().map(|(label, log_prob)| Top { label, log_prob: *log_prob }).collect();
        serde_json::to_writer(&mut out, &Line { sample, log_probs: row, top })?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
