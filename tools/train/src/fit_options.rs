//! `safe-train fit`'s recipe: the options a run trains with and the presets they start from.
//! A checkpoint stores them, so that `--resume` continues with the same recipe.

use anyhow::Result;
use safed::accumulate::Representation;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FitOptions {
    pub preset: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_epochs: f64,
    /// Gradient-norm clip (over all trained parameters).
    pub grad_clip: f64,
    pub seed: u64,
    pub frames: usize,
    /// The split evaluated after every epoch (and used to pick `best`).
    pub val_split: String,
    /// Train only the fusion model on CLIP features computed once.
    pub freeze_clip: bool,
    /// The event branch's input: the event image (the paper) or voxel grids.
    #[serde(default)]
    pub events: Representation,
}

impl FitOptions {
    /// The preset's defaults: `vit-b16` as the paper (AdamW lr 8e-6, weight decay 1e-4, 50
    /// epochs, batch 4 as the authors' code); `tiny` from scratch on a CPU: 100 epochs with 5 of
    /// warm-up, because 40 left some synth seeds under-fitted (seed 0: 87% top-1 on its own
    /// training clips, 83% test; docs/training.md), in less wall time than 40 epochs took
    /// before the fused ops.
    pub fn preset(name: &str) -> Result<Self> {
        let base = FitOptions {
            preset: name.to_string(),
            epochs: 50,
            batch_size: 4,
            lr: 8e-6,
            weight_decay: 1e-4,
            warmup_epochs: 1.0,
            grad_clip: 1.0,
            seed: 0,
            frames: 5,
            val_split: "test".into(),
            freeze_clip: false,
            events: Representation::Image,
        };
        Ok(match name {
            "vit-b16" => base,
            "tiny" => {
                FitOptions { epochs: 100, batch_size: 8, lr: 1e-3, weight_decay: 1e-4, warmup_epochs: 5.0, ..base }
            }
            other => anyhow::bail!("unknown preset {other:?} (expected vit-b16 or tiny)"),
        })
    }
}
