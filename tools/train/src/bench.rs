//! `safe-train bench`: one training step split into its phases (batch building, forward with
//! the loss, backward, gradient-norm clipping, AdamW), timed over real batches of a dataset,
//! so the split can be set beside PyTorch's for the same model (tools/bench/train.sh).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::batch::{make_batch, prepare, Prepared};
use crate::data::Dataset;
use crate::fit::{initial_model, FitOptions, InitFrom};
use crate::model::{layers, TextTokens};
use crate::optim::{clip_factor, AdamW};

/// Median milliseconds per phase, and their sum.
#[derive(Debug, Clone, Serialize)]
pub struct StepTimes {
    pub steps: usize,
    pub batch_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub clip_ms: f64,
    pub optimizer_ms: f64,
    /// Median of whole steps (not the sum of the medians).
    pub step_ms: f64,
    pub parameters: usize,
    /// Tokens per class name (the text encoder's sequence length).
    pub text_len: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Times `steps` training steps after `warmup` untimed ones, on `data/train`.
pub fn step_times(data: &Path, opts: &FitOptions, warmup: usize, steps: usize, device: &Device) -> Result<StepTimes> {
    let train = Dataset::open_for(data, "train", opts.events)?;
    let model = initial_model(&train, opts, &InitFrom::default(), device)?;
    let size = model.config.image_size as u32;
    let prepared = prepare(&train, size)?;
    anyhow::ensure!(prepared.len() >= opts.batch_size, "{}: fewer samples than one batch", data.display());
    let text = TextTokens::new(&train.labels, model.config.context, device)?;
    let mut opt = AdamW::new(&model.params, opts.weight_decay)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    let mut phases: [Vec<f64>; 6] = Default::default();
    for s in 0..warmup + steps {
        if s % (prepared.len() / opts.batch_size) == 0 {
            order.shuffle(&mut rng);
        }
        let at = (s % (prepared.len() / opts.batch_size)) * opts.batch_size;
        let items: Vec<&Prepared> = order[at..at + opts.batch_size].iter().map(|&i| &prepared[i]).collect();
        let t0 = Instant::now();
        let b = make_batch(&items, opts.frames, size, Some(&mut rng), device)?;
        let t1 = Instant::now();
        let loss = layers::nll(&model.forward(&b.rgb, &b.event, &text)?, &b.targets)?;
        let t2 = Instant::now();
        let grads = loss.backward()?;
        let t3 = Instant::now();
        let scale = clip_factor(&model.params, &grads, opts.grad_clip)?;
        let t4 = Instant::now();
        opt.step(&grads, opts.lr, scale)?;
        let t5 = Instant::now();
        if s >= warmup {
            for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t0, t5)].into_iter().enumerate() {
                phases[k].push((b - a).as_secs_f64() * 1e3);
            }
        }
    }
    let [batch, forward, backward, clip, optimizer, step] = phases.map(median);
    Ok(StepTimes {
        steps,
        batch_ms: batch,
        forward_ms: forward,
        backward_ms: backward,
        clip_ms: clip,
        optimizer_ms: optimizer,
        step_ms: step,
        parameters: model.params.count(),
        text_len: text.ids.dim(1)?,
    })
}
