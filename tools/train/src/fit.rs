//! `safe-train fit`: training with AdamW, a cosine schedule with warm-up, gradient-norm
//! clipping, seeded sampling and augmentation, an evaluation per epoch, and checkpoints
//! (`RUN_DIR/last` every epoch, `RUN_DIR/best` on the best validation top-1) that `--resume`
//! continues from exactly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, State};
use crate::config::SafeConfig;
use crate::data::batch::{make_batch, pick_frames, prepare, Batch, Prepared};
use crate::data::Dataset;
use crate::eval::{evaluate, Report};
use crate::model::{init, layers, Params, Safe, TextTokens};
use crate::optim::{clip_factor, cosine_lr, AdamW};
use crate::weights::Weights;

/// The recipe lives beside the checkpoint that stores it; it is part of `fit`'s interface.
pub use crate::fit_options::FitOptions;

/// Where the starting weights come from (anything not supplied is seeded random).
#[derive(Debug, Clone, Default)]
pub struct InitFrom {
    /// The authors' checkpoint (CLIP + fusion; fc1 only when the class count matches).
    pub authors: Option<PathBuf>,
    /// OpenAI or Hugging Face CLIP weights.
    pub clip: Option<PathBuf>,
    /// A timm ViT-B/16 checkpoint: its last block initialises the fusion block, as the
    /// authors do.
    pub timm: Option<PathBuf>,
}

/// One line of metrics.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: f64,
    pub val_top1: f64,
    pub val_top5: f64,
    pub seconds: f64,
}

pub(crate) fn initial_model(train: &Dataset, opts: &FitOptions, from: &InitFrom, device: &Device) -> Result<Safe> {
    let classes = train.labels.len() as i64;
    let authors = from.authors.as_deref().map(Weights::load_authors_checkpoint).transpose()?;
    let config = match &authors {
        Some(w) => SafeConfig { classes, ..SafeConfig::infer(w, opts.frames as i64)? },
        None => SafeConfig::preset(&opts.preset, classes, opts.frames as i64)?,
    };
    let config = SafeConfig { events: opts.events, ..config };
    let mut tensors: std::collections::BTreeMap<String, Tensor> =
        init::random(&config, opts.seed, device)?.into_iter().collect();
    let mut copy = |w: &Weights, rename: &dyn Fn(&str) -> Option<String>| -> Result<usize> {
        let mut n = 0;
        for (name, t) in w.iter() {
            let Some(target) = rename(name) else { continue };
            let Some(slot) = tensors.get_mut(&target) else { continue };
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            if slot.dims() == dims.as_slice() {
                *slot = Tensor::from_slice(&t.data, dims, device)?;
                n += 1;
            } else {
                eprintln!(
                    "warning: {target}: shape {:?} in the initial weights, {:?} in the model: kept random",
                    dims,
                    slot.dims()
                );
            }
        }
        Ok(n)
    };
    if let Some(w) = &authors {
        let n = copy(w, &|k| Some(k.to_string()))?;
        eprintln!(
            "init: {n} tensors from {}",
            from.authors.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        );
    }
    if let Some(path) = &from.clip {
        let n = copy(&Weights::load_clip(path)?, &|k| Some(k.to_string()))?;
        eprintln!("init: {n} CLIP tensors from {}", path.display());
    }
    if let Some(path) = &from.timm {
        let w = Weights::load_timm(path)?;
        let last = w.last_block().with_context(|| format!("{}: no blocks.N.* tensors", path.display()))?;
        let prefix = format!("blocks.{last}.");
        let n = copy(&w, &|k| k.strip_prefix(&prefix).map(|rest| format!("blocks.0.{rest}")))?;
        eprintln!("init: fusion block from {} (block {last}, {n} tensors)", path.display());
    }
    Ok(Safe { params: Params::from_tensors(tensors)?, config })
}

/// Per-frame CLIP tokens of every sample, for `--freeze-clip`, cached on disk in `dir`.
struct FeatureCache {
    /// Per sample: (rgb tokens [n, T, E], event tokens [m, T, E]).
    tokens: Vec<(Tensor, Tensor)>,
}

impl FeatureCache {
    fn build(model: &Safe, data: &[Prepared], dir: &Path, device: &Device) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let size = model.config.image_size as u32;
        let mut tokens = Vec::with_capacity(data.len());
        let bar = progress(data.len() as u64, "CLIP features");
        for (i, p) in data.iter().enumerate() {
            let path = dir.join(format!("{i:06}.safetensors"));
            if let Ok(t) = candle_core::safetensors::load(&path, device) {
                if let (Some(r), Some(e)) = (t.get("rgb"), t.get("event")) {
                    tokens.push((r.clone(), e.clone()));
                    bar.inc(1);
                    continue;
                }
            }
            let encode = |imgs: &[image::RgbImage]| -> Result<Tensor> {
                let per = 3 * (size * size) as usize;
                let mut buf = vec![0f32; imgs.len() * per];
                for (k, img) in imgs.iter().enumerate() {
                    safed::infer::preprocess::image_to_chw(
                        img,
                        size,
                        crate::data::batch::MEAN,
                        crate::data::batch::STD,
                        &mut buf[k * per..(k + 1) * per],
                    );
                }
                let s = size as usize;
                Ok(model.encode_images(&Tensor::from_vec(buf, (imgs.len(), 3, s, s), device)?)?.detach())
            };
            let (r, e) = (encode(&p.rgb)?, encode(&p.events)?);
            let map =
                std::collections::HashMap::from([("rgb".to_string(), r.clone()), ("event".to_string(), e.clone())]);
            candle_core::safetensors::save(&map, &path)?;
            tokens.push((r, e));
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(FeatureCache { tokens })
    }

    /// Frame-averaged tokens of a batch: rgb, event [B, T, E].
    fn batch(&self, idx: &[usize], frames: usize, rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)> {
        let (mut r, mut e) = (Vec::new(), Vec::new());
        for &i in idx {
            let (rt, et) = &self.tokens[i];
            let n = rt.dim(0)?;
            let picked = pick_frames(n, frames, Some(rng));
            let m = et.dim(0)?;
            let pe: Vec<u32> = picked.iter().map(|&j| (j * m / n).min(m - 1) as u32).collect();
            let pr: Vec<u32> = picked.iter().map(|&j| j as u32).collect();
            let dev = rt.device();
            r.push(rt.index_select(&Tensor::new(pr, dev)?, 0)?.mean(0)?);
            e.push(et.index_select(&Tensor::new(pe, dev)?, 0)?.mean(0)?);
        }
        Ok((Tensor::stack(&r, 0)?, Tensor::stack(&e, 0)?))
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Batches ahead of the step: the step never waits for data, and memory stays bounded.
const PREFETCH: usize = 2;

/// One batch's inputs: images for the whole model, or cached CLIP tokens for the fusion model.
enum Inputs {
    Images(Batch),
    Tokens { rgb: Tensor, event: Tensor, targets: Tensor, labels: Vec<usize> },
}

/// Builds training batches (frame sampling, augmentation, tensors) on its own thread.
struct Batcher<'a> {
    opts: &'a FitOptions,
    data: &'a [Prepared],
    /// With --freeze-clip: the cached CLIP tokens.
    cache: Option<&'a FeatureCache>,
    size: u32,
    device: &'a Device,
}

impl Batcher<'_> {
    fn build(&self, idx: &[usize], rng: &mut ChaCha8Rng) -> Result<Inputs> {
        let o = self.opts;
        Ok(match self.cache {
            Some(cache) => {
                let (rgb, event) = cache.batch(idx, o.frames, rng)?;
                let labels: Vec<usize> = idx.iter().map(|&i| self.data[i].label).collect();
                let targets =
                    Tensor::from_vec(labels.iter().map(|&l| l as u32).collect::<Vec<_>>(), labels.len(), self.device)?;
                Inputs::Tokens { rgb, event, targets, labels }
            }
            None => {
                let items: Vec<&Prepared> = idx.iter().map(|&i| &self.data[i]).collect();
                Inputs::Images(make_batch(&items, o.frames, self.size, Some(rng), self.device)?)
            }
        })
    }
}

/// One epoch's training: everything a step needs, borrowed from `fit`.
struct Trainer<'a> {
    model: &'a Safe,
    opt: &'a mut AdamW,
    opts: &'a FitOptions,
    batcher: Batcher<'a>,
    text: &'a TextTokens,
    /// With --freeze-clip: the text features computed once.
    frozen_text: Option<&'a Tensor>,
    warmup: usize,
    total: usize,
}

impl Trainer<'_> {
    /// Trains one epoch; returns (mean loss, top-1, last learning rate) and advances `step`.
    fn epoch(&mut self, epoch: usize, step: &mut usize) -> Result<(f64, f64, f64)> {
        let o = self.opts;
        // Seeded per epoch, so a resumed run samples exactly as an uninterrupted one; the
        // batcher draws from it in batch order, as the steps would.
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..self.batcher.data.len()).collect();
        order.shuffle(&mut rng);
        let bar = progress(order.len().div_ceil(o.batch_size) as u64, &format!("epoch {}/{}", epoch + 1, o.epochs));
        let (mut loss_sum, mut correct, mut seen, mut lr) = (0.0, 0usize, 0usize, 0.0);
        let batcher = &self.batcher;
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH);
            s.spawn(move || {
                for idx in order.chunks(o.batch_size) {
                    let inputs = batcher.build(idx, &mut rng);
                    let failed = inputs.is_err();
                    // A closed channel: the step failed and the epoch is over.
                    if tx.send(inputs).is_err() || failed {
                        break;
                    }
                }
            });
            for inputs in rx {
                let (lp, targets, labels) = match inputs? {
                    Inputs::Images(b) => (self.model.forward(&b.rgb, &b.event, self.text)?, b.targets, b.labels),
                    Inputs::Tokens { rgb, event, targets, labels } => {
                        let text = self.frozen_text.context("cached CLIP tokens without text features")?;
                        (self.model.fuse(&rgb, &event, text)?, targets, labels)
                    }
                };
                let loss = layers::nll(&lp, &targets)?;
                let grads = loss.backward()?;
                let scale = clip_factor(&self.model.params, &grads, o.grad_clip)?;
                lr = cosine_lr(o.lr, *step, self.warmup, self.total);
                self.opt.step(&grads, lr, scale)?;
                *step += 1;
                let l = loss.to_scalar::<f32>()? as f64;
                loss_sum += l * labels.len() as f64;
                let rows = lp.detach().to_vec2::<f32>()?;
                correct += rows.iter().zip(&labels).filter(|(row, &y)| crate::eval::argmax(row) == y).count();
                seen += labels.len();
                bar.set_message(format!("loss {l:.3} lr {lr:.1e}"));
                bar.inc(1);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok((loss_sum / seen.max(1) as f64, correct as f64 / seen.max(1) as f64, lr))
    }
}

pub struct FitResult {
    pub best_top1: f64,
    pub best_epoch: usize,
    pub seconds: f64,
}

/// Trains on `data/train`, evaluates on `data/<val_split>` after every epoch.
pub fn fit(
    data: &Path,
    out: &Path,
    opts: FitOptions,
    from: &InitFrom,
    resume: Option<&Path>,
    device: &Device,
) -> Result<FitResult> {
    let started = Instant::now();
    // A resumed run reads its data as it began.
    let events = match resume {
        Some(dir) => checkpoint::read_state(dir)?.config.events,
        None => opts.events,
    };
    let train = Dataset::open_for(data, "train", events)?;
    let val = Dataset::open_for(data, &opts.val_split, events)?;
    ensure!(train.labels == val.labels, "train and {} splits name different classes", opts.val_split);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (model, mut state) = match resume {
        Some(dir) => {
            let (model, mut state) = checkpoint::load_model(dir, device)?;
            ensure!(
                state.labels == train.labels,
                "{}: trained on other classes than {}",
                dir.display(),
                data.display()
            );
            state.options.epochs = opts.epochs.max(state.options.epochs);
            (model, state)
        }
        None => {
            let model = initial_model(&train, &opts, from, device)?;
            let state = State {
                config: model.config.clone(),
                labels: train.labels.clone(),
                options: opts.clone(),
                epoch: 0,
                step: 0,
                best_top1: -1.0,
                best_epoch: 0,
            };
            (model, state)
        }
    };
    let opts = state.options.clone();
    let c = model.config.clone();
    eprintln!(
        "fit: {} train / {} {} samples, {} classes, preset {}, {:.2} M parameters",
        train.samples.len(),
        val.samples.len(),
        opts.val_split,
        c.classes,
        opts.preset,
        model.params.count() as f64 / 1e6
    );
    let size = c.image_size as u32;
    let (train_data, val_data) = (prepare(&train, size)?, prepare(&val, size)?);
    let text = TextTokens::new(&train.labels, c.context, device)?;
    let mut opt = AdamW::new(&model.params, opts.weight_decay)?;
    if let Some(dir) = resume {
        checkpoint::load_optimizer(dir, &mut opt, state.step, device)?;
    }
    let cache = if opts.freeze_clip {
        Some(FeatureCache::build(&model, &train_data, &out.join("clip-features"), device)?)
    } else {
        None
    };
    let frozen_text = if opts.freeze_clip { Some(model.text_features(&text)?.detach()) } else { None };
    let steps_per_epoch = train_data.len().div_ceil(opts.batch_size);
    let total = steps_per_epoch * opts.epochs;
    let warmup = ((opts.warmup_epochs * steps_per_epoch as f64) as usize).max(1);
    let mut metrics = std::fs::OpenOptions::new().create(true).append(true).open(out.join("metrics.jsonl"))?;
    let mut trainer = Trainer {
        model: &model,
        opt: &mut opt,
        opts: &opts,
        batcher: Batcher { opts: &opts, data: &train_data, cache: cache.as_ref(), size, device },
        text: &text,
        frozen_text: frozen_text.as_ref(),
        warmup,
        total,
    };
    for epoch in state.epoch..opts.epochs {
        let t0 = Instant::now();
        let (train_loss, train_top1, lr) = trainer.epoch(epoch, &mut state.step)?;
        let report: Report = evaluate(&model, &text, &val_data, opts.batch_size.max(8), device)?;
        state.epoch = epoch + 1;
        let m = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            lr,
            train_loss,
            train_top1,
            val_loss: report.loss,
            val_top1: report.top1,
            val_top5: report.top5,
            seconds: t0.elapsed().as_secs_f64(),
        };
        writeln!(metrics, "{}", serde_json::to_string(&m)?)?;
        eprintln!(
            "epoch {:>3}: train loss {:.4} top-1 {:.3} | {} loss {:.4} top-1 {:.3} top-5 {:.3} | {:.1} s",
            m.epoch, m.train_loss, m.train_top1, opts.val_split, m.val_loss, m.val_top1, m.val_top5, m.seconds
        );
        if report.top1 > state.best_top1 {
            state.best_top1 = report.top1;
            state.best_epoch = epoch + 1;
            checkpoint::save(&out.join("best"), &model.params, None, &state)?;
        }
        checkpoint::save(&out.join("last"), &model.params, Some(&*trainer.opt), &state)?;
        plot_metrics(out)?;
    }
    Ok(FitResult { best_top1: state.best_top1, best_epoch: state.best_epoch, seconds: started.elapsed().as_secs_f64() })
}

/// curves.png from metrics.jsonl: loss (train blue, validation red) and top-1 (same colours).
fn plot_metrics(out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl"))?;
    let rows: Vec<EpochMetrics> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let col = |f: fn(&EpochMetrics) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let (blue, red) = ([40, 90, 200], [210, 50, 40]);
    safed::plot::curves_png(
        &[
            vec![(col(|m| m.train_loss), blue), (col(|m| m.val_loss), red)],
            vec![(col(|m| m.train_top1), blue), (col(|m| m.val_top1), red)],
        ],
        &out.join("curves.png"),
    )
}
