//! Seeded random initialisation of every SAFE parameter, for training from scratch (the tiny
//! preset) or for the parts a given checkpoint does not supply. Scales follow CLIP's and timm's
//! own initialisers: Linear N(0, 0.02) with zero bias, LayerNorm (1, 0), CLIP's embeddings and
//! projections scaled by width^-0.5.

use candle_core::{Device, Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::SafeConfig;

enum Init {
    Normal(f32),
    Zeros,
    Ones,
}

/// Every parameter SAFE reads, with its shape and initialiser, in a fixed order (so a seed
/// always gives the same weights).
fn layout(c: &SafeConfig) -> Vec<(String, Vec<usize>, Init)> {
    let u = |v: i64| v as usize;
    let (vw, tw, d, e) = (u(c.vision_width), u(c.text_width), u(c.fusion_dim), u(c.embed_dim));
    let mut out: Vec<(String, Vec<usize>, Init)> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, init| out.push((name, shape, init));
    let mut linear = |push: &mut dyn FnMut(String, Vec<usize>, Init), name: &str, o: usize, i: usize, bias: bool| {
        push(format!("{name}.weight"), vec![o, i], Init::Normal(0.02));
        if bias {
            push(format!("{name}.bias"), vec![o], Init::Zeros);
        }
    };
    fn norm(push: &mut dyn FnMut(String, Vec<usize>, Init), name: &str, w: usize) {
        push(format!("{name}.weight"), vec![w], Init::Ones);
        push(format!("{name}.bias"), vec![w], Init::Zeros);
    }
    let clip_block = |push: &mut dyn FnMut(String, Vec<usize>, Init),
                      linear: &mut dyn FnMut(&mut dyn FnMut(String, Vec<usize>, Init), &str, usize, usize, bool),
                      name: &str,
                      w: usize| {
        norm(push, &format!("{name}.ln_1"), w);
        push(format!("{name}.attn.in_proj_weight"), vec![3 * w, w], Init::Normal(0.02));
        push(format!("{name}.attn.in_proj_bias"), vec![3 * w], Init::Zeros);
        linear(push, &format!("{name}.attn.out_proj"), w, w, true);
        norm(push, &format!("{name}.ln_2"), w);
        linear(push, &format!("{name}.mlp.c_fc"), 4 * w, w, true);
        linear(push, &format!("{name}.mlp.c_proj"), w, 4 * w, true);
    };
    let scale = |w: usize| (w as f32).powf(-0.5);
    // CLIP vision.
    push("visual.conv1.weight".into(), vec![vw, 3, u(c.patch), u(c.patch)], Init::Normal(0.02));
    push("visual.class_embedding".into(), vec![vw], Init::Normal(scale(vw)));
    push("visual.positional_embedding".into(), vec![u(c.tokens), vw], Init::Normal(scale(vw)));
    norm(&mut push, "visual.ln_pre", vw);
    for k in 0..c.vision_layers {
        clip_block(&mut push, &mut linear, &format!("visual.transformer.resblocks.{k}"), vw);
    }
    norm(&mut push, "visual.ln_post", vw);
    push("visual.proj".into(), vec![vw, e], Init::Normal(scale(vw)));
    // CLIP text.
    push("token_embedding.weight".into(), vec![49408, tw], Init::Normal(0.02));
    push("positional_embedding".into(), vec![u(c.context), tw], Init::Normal(0.01));
    for k in 0..c.text_layers {
        clip_block(&mut push, &mut linear, &format!("transformer.resblocks.{k}"), tw);
    }
    norm(&mut push, "ln_final", tw);
    push("text_projection".into(), vec![tw, e], Init::Normal(scale(tw)));
    // Fusion.
    for name in ["tex_embed", "rgb_embed", "event_embed"] {
        push(name.into(), vec![1, 1, d], Init::Normal(0.02));
    }
    push("CLS_token".into(), vec![1, u(c.cls_tokens), d], Init::Normal(0.02));
    linear(&mut push, "word_embed", d, e, true);
    linear(&mut push, "visual_embed", d, e, true);
    norm(&mut push, "blocks.0.norm1", d);
    linear(&mut push, "blocks.0.attn.qkv", 3 * d, d, true);
    linear(&mut push, "blocks.0.attn.proj", d, d, true);
    norm(&mut push, "blocks.0.norm2", d);
    linear(&mut push, "blocks.0.mlp.fc1", 4 * d, d, true);
    linear(&mut push, "blocks.0.mlp.fc2", d, 4 * d, true);
    norm(&mut push, "norm", d);
    for name in ["query", "key", "value"] {
        linear(&mut push, &format!("self_attention.{name}"), d, d, true);
    }
    for name in ["query", "key", "value"] {
        linear(&mut push, &format!("cross_model.{name}"), d, d, false);
    }
    linear(&mut push, "fc1", u(c.classes), u(c.cls_tokens) * d, true);
    out
}

/// Every parameter, freshly initialised from `seed`.
pub fn random(c: &SafeConfig, seed: u64, device: &Device) -> Result<Vec<(String, Tensor)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    layout(c)
        .into_iter()
        .map(|(name, shape, init)| {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = match init {
                Init::Zeros => vec![0.0; n],
                Init::Ones => vec![1.0; n],
                Init::Normal(std) => {
                    let dist = Normal::new(0.0, std).expect("a positive, finite std");
                    (0..n).map(|_| dist.sample(&mut rng)).collect()
                }
            };
            Ok((name, Tensor::from_vec(data, shape, device)?))
        })
        .collect()
}

/// The names SAFE's forward reads (to check a checkpoint is complete).
pub fn names(c: &SafeConfig) -> Vec<String> {
    layout(c).into_iter().map(|(n, _, _)| n).collect()
}
