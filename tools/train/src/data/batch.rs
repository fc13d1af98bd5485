//! Samples into input tensors. Every image is resized to S x S once (safed's resize, so an
//! evaluation tensor equals what safed computes from the same file), then each use picks
//! frames and, for training, augments as the authors do: pad (10 px at 224, scaled with S),
//! random crop back to S, random horizontal flip. One crop and flip per sample, shared by its
//! RGB and event frames so the two stay aligned.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::RgbImage;
use rand::seq::index::sample as sample_indices;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use safed::infer::preprocess::{evenly_spaced, image_to_chw};

use super::{load_sample, Dataset};

pub const MEAN: [f32; 3] = [0.5; 3];
pub const STD: [f32; 3] = [0.5; 3];

/// One sample's images at S x S.
pub struct Prepared {
    pub label: usize,
    pub rgb: Vec<RgbImage>,
    pub events: Vec<RgbImage>,
}

fn resize(img: RgbImage, size: u32) -> RgbImage {
    if img.dimensions() == (size, size) {
        img
    } else {
        image::imageops::resize(&img, size, size, FilterType::Triangle)
    }
}

/// Loads and resizes every sample (in parallel over the cores: PNG decoding dominates).
pub fn prepare(data: &Dataset, size: u32) -> Result<Vec<Prepared>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = data.samples.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .samples
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|smp| {
                            let img = load_sample(smp, data.events).with_context(|| format!("sample {}", smp.name))?;
                            anyhow::ensure!(
                                !img.rgb.is_empty() && !img.events.is_empty(),
                                "sample {}: no frames",
                                smp.name
                            );
                            Ok(Prepared {
                                label: smp.label,
                                rgb: img.rgb.into_iter().map(|i| resize(i, size)).collect(),
                                events: img.events.into_iter().map(|i| resize(i, size)).collect(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(data.samples.len());
        for h in handles {
            out.extend(h.join().map_err(|_| anyhow::anyhow!("a loader thread panicked"))??);
        }
        Ok(out)
    })
}

/// Crop offset and flip for one sample.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    pub pad: u32,
    pub dx: u32,
    pub dy: u32,
    pub flip: bool,
}

impl Augment {
    pub fn random(size: u32, rng: &mut impl Rng) -> Self {
        let pad = ((10 * size) as f32 / 224.0).round().max(1.0) as u32;
        Augment {
            pad,
            dx: rng.random_range(0..=2 * pad),
            dy: rng.random_range(0..=2 * pad),
            flip: rng.random_bool(0.5),
        }
    }

    /// Pad with black (torchvision's Pad fill 0), crop S x S at (dx, dy), maybe mirror.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        RgbImage::from_fn(w, h, |x, y| {
            let sx = x as i64 + self.dx as i64 - self.pad as i64;
            let sx = if self.flip { w as i64 - 1 - sx } else { sx };
            let sy = y as i64 + self.dy as i64 - self.pad as i64;
            if sx < 0 || sy < 0 || sx >= w as i64 || sy >= h as i64 {
                image::Rgb([0, 0, 0])
            } else {
                *img.get_pixel(sx as u32, sy as u32)
            }
        })
    }
}

/// Which frames to use: F sorted random ones for training (repeats only when a clip is
/// shorter than F), F evenly spaced for evaluation.
pub fn pick_frames(n: usize, f: usize, rng: Option<&mut ChaCha8Rng>) -> Vec<usize> {
    match rng {
        Some(rng) if n >= f => {
            let mut idx = sample_indices(rng, n, f).into_vec();
            idx.sort_unstable();
            idx
        }
        Some(rng) => {
            let mut idx: Vec<usize> = (0..f).map(|_| rng.random_range(0..n)).collect();
            idx.sort_unstable();
            idx
        }
        None => evenly_spaced(n, f),
    }
}

/// A batch as tensors: rgb, event [B, F, 3, S, S] and targets [B] (u32).
pub struct Batch {
    pub rgb: Tensor,
    pub event: Tensor,
    pub targets: Tensor,
    pub labels: Vec<usize>,
}

/// Builds a batch of `items`; `rng` switches on training-time sampling and augmentation.
pub fn make_batch(
    items: &[&Prepared],
    frames: usize,
    size: u32,
    mut rng: Option<&mut ChaCha8Rng>,
    device: &Device,
) -> Result<Batch> {
    let per = 3 * (size * size) as usize;
    let b = items.len();
    let (mut rgb, mut event) = (vec![0f32; b * frames * per], vec![0f32; b * frames * per]);
    for (i, p) in items.iter().enumerate() {
        let aug = rng.as_deref_mut().map(|r| Augment::random(size, r));
        let idx = pick_frames(p.rgb.len(), frames, rng.as_deref_mut());
        for (k, &j) in idx.iter().enumerate() {
            // Event images follow the RGB frame they pair with (counts may differ slightly).
            let je = (j * p.events.len() / p.rgb.len()).min(p.events.len() - 1);
            for (src, dst) in [(&p.rgb[j], &mut rgb), (&p.events[je], &mut event)] {
                let at = (i * frames + k) * per;
                match &aug {
                    Some(a) => image_to_chw(&a.apply(src), size, MEAN, STD, &mut dst[at..at + per]),
                    None => image_to_chw(src, size, MEAN, STD, &mut dst[at..at + per]),
                }
            }
        }
    }
    let s = size as usize;
    let labels: Vec<usize> = items.iter().map(|p| p.label).collect();
    Ok(Batch {
        rgb: Tensor::from_vec(rgb, (b, frames, 3, s, s), device)?,
        event: Tensor::from_vec(event, (b, frames, 3, s, s), device)?,
        targets: Tensor::from_vec(labels.iter().map(|&l| l as u32).collect::<Vec<_>>(), b, device)?,
        labels,
    })
}
