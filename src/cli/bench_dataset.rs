//! `safed bench-dataset`: what the model alone sustains on a dataset split, for `safed replay
//! --dataset` to be measured against. Every sample's pairs are read and turned into tensors
//! first (not timed); then only the encoder and fusion calls are timed, batched as the
//! pipeline batches them: pairs `batch` at a time, and per sample one fusion per streaming
//! recognition (hop 1: n - F + 1) plus one for its clip score, `batch` windows at a time.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::infer_args::SessionArgs;
use crate::dataset::{load_images, Dataset, SampleSource};
use crate::infer::stream_cache::{InputSpec, StageTimes};
use crate::pipeline::load_model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset root (any layout `replay --dataset` reads).
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, default_value = "test")]
    split: String,
    /// The full SAFE graph, its split pair beside it (default: the bundled demo model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Pairs per encoder call, windows per fusion call.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// The first K samples only.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    session: SessionArgs,
}

#[derive(Serialize)]
struct Report {
    samples: usize,
    pairs: usize,
    fusions: usize,
    batch: usize,
    /// Reading and preprocessing every pair, on one thread (not in samples_per_s).
    read_s: f64,
    encode_s: f64,
    fuse_s: f64,
    samples_per_s: f64,
}

/// A sample's pairs as tensors.
fn tensors(source: &SampleSource, input: &InputSpec) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let images = load_images(source, input.events, "sample")?;
    Ok(images.rgb.iter().zip(&images.events).map(|(r, e)| (input.tensor(r), input.tensor(e))).collect())
}

pub fn run(a: Args) -> Result<()> {
    let data = Dataset::open(&a.dataset, &a.split)?;
    let (mut model, _) = load_model(a.model.as_deref(), a.session.config())?;
    let (input, frames, batch) = (model.input(), model.frames(), a.batch.max(1));
    let samples: Vec<_> = data.samples.iter().take(a.limit.unwrap_or(usize::MAX)).collect();
    let mut pairs = Vec::new();
    let mut fusions = 0;
    let reading = Instant::now();
    for s in &samples {
        let t = tensors(&s.source, &input).with_context(|| format!("sample {}", s.id))?;
        fusions += t.len().saturating_sub(frames - 1) + 1;
        pairs.extend(t);
    }
    let read_s = reading.elapsed().as_secs_f64();
    let mut times = StageTimes::default();
    // One untimed call of each first: the session's first run allocates its arena.
    if let Some((r, e)) = pairs.first() {
        let warm = model.encode(&[(r.as_slice(), e.as_slice())], &mut times)?;
        model.fuse(&warm[..1], &mut times)?;
    }
    let mut times = StageTimes::default();
    let mut tokens = None;
    let start = Instant::now();
    for chunk in pairs.chunks(batch) {
        let refs: Vec<(&[f32], &[f32])> = chunk.iter().map(|(r, e)| (r.as_slice(), e.as_slice())).collect();
        let out = model.encode(&refs, &mut times)?;
        tokens.get_or_insert_with(|| out[0].clone());
    }
    if let Some(t) = tokens {
        let windows = vec![t; batch];
        for k in (0..fusions).step_by(batch) {
            model.fuse(&windows[..batch.min(fusions - k)], &mut times)?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let r = Report {
        samples: samples.len(),
        pairs: pairs.len(),
        fusions,
        batch,
        read_s,
        encode_s: times.encode.as_secs_f64(),
        fuse_s: times.fuse.as_secs_f64(),
        samples_per_s: samples.len() as f64 / seconds.max(1e-9),
    };
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
