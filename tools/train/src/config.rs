//! SAFE's sizes, read off the weights' shapes (SAFE.md: heads are width / 64, at least one).

use anyhow::{ensure, Result};
use serde::Serialize;

use safed::accumulate::Representation;

use crate::weights::Weights;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SafeConfig {
    pub vision_width: i64,
    pub vision_layers: i64,
    pub vision_heads: i64,
    pub patch: i64,
    pub image_size: i64,
    /// Tokens per image: (S / P)^2 + 1.
    pub tokens: i64,
    /// CLIP's joint embedding width (512 for ViT-B/16).
    pub embed_dim: i64,
    pub text_width: i64,
    pub text_layers: i64,
    pub text_heads: i64,
    pub context: i64,
    pub fusion_dim: i64,
    pub fusion_heads: i64,
    pub classes: i64,
    pub cls_tokens: i64,
    /// Frames per modality (not in the checkpoint; the authors use 5).
    pub frames: i64,
    /// What the event branch takes (not in the checkpoint; the authors': the event image).
    #[serde(default)]
    pub events: Representation,
}

fn heads(width: i64) -> i64 {
    (width / 64).max(1)
}

fn count_layers(w: &Weights, prefix: &str) -> i64 {
    (0..).take_while(|k| w.has(&format!("{prefix}{k}.ln_1.weight"))).count() as i64
}

impl SafeConfig {
    /// The sizes of a named preset: `vit-b16` (the paper: CLIP ViT-B/16, fusion at 768) or
    /// `tiny` (64x64 images, 8x8 patches, widths 64: trains on a CPU in minutes).
    pub fn preset(name: &str, classes: i64, frames: i64) -> Result<Self> {
        let c = match name {
            "vit-b16" => SafeConfig {
                vision_width: 768,
                vision_layers: 12,
                vision_heads: 12,
                patch: 16,
                image_size: 224,
                tokens: 197,
                embed_dim: 512,
                text_width: 512,
                text_layers: 12,
                text_heads: 8,
                context: 77,
                fusion_dim: 768,
                fusion_heads: 12,
                classes,
                cls_tokens: 10,
                frames,
                events: Representation::Image,
            },
            "tiny" => SafeConfig {
                vision_width: 64,
                vision_layers: 2,
                vision_heads: 1,
                patch: 8,
                image_size: 64,
                tokens: 65,
                embed_dim: 64,
                text_width: 64,
                text_layers: 1,
                text_heads: 1,
                context: 77,
                fusion_dim: 64,
                fusion_heads: 1,
                classes,
                cls_tokens: 10,
                frames,
                events: Representation::Image,
            },
            other => anyhow::bail!("unknown preset {other:?} (expected vit-b16 or tiny)"),
        };
        Ok(c)
    }

    pub fn infer(w: &Weights, frames: i64) -> Result<Self> {
        let vision_width = w.dim("visual.conv1.weight", 0)?;
        let patch = w.dim("visual.conv1.weight", 2)?;
        let tokens = w.dim("visual.positional_embedding", 0)?;
        let grid = ((tokens - 1) as f64).sqrt().round() as i64;
        ensure!(grid * grid + 1 == tokens, "visual.positional_embedding has {tokens} rows, not a square grid + 1");
        let text_width = w.dim("token_embedding.weight", 1)?;
        let fusion_dim = w.dim("visual_embed.weight", 0)?;
        let c = SafeConfig {
            vision_width,
            vision_layers: count_layers(w, "visual.transformer.resblocks."),
            vision_heads: heads(vision_width),
            patch,
            image_size: grid * patch,
            tokens,
            embed_dim: w.dim("visual.proj", 1)?,
            text_width,
            text_layers: count_layers(w, "transformer.resblocks."),
            text_heads: heads(text_width),
            context: w.dim("positional_embedding", 0)?,
            fusion_dim,
            fusion_heads: heads(fusion_dim),
            classes: w.dim("fc1.weight", 0)?,
            cls_tokens: w.dim("CLS_token", 1)?,
            frames,
            events: Representation::Image,
        };
        ensure!(c.vision_layers > 0 && c.text_layers > 0, "no transformer blocks found in the CLIP weights");
        ensure!(
            w.dim("fc1.weight", 1)? == c.cls_tokens * fusion_dim,
            "fc1 does not take CLS_token x fusion width inputs"
        );
        Ok(c)
    }
}
