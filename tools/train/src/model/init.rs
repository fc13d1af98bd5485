//! Seeded random initialisation of every SAFE parameter, for training from scratch (the tiny
//! preset) or for the parts a given checkpoint does not supply. Scales follow CLIP's and timm's
//! own initialisers: Linear N(0, 0.02) with zero bias, LayerNorm (1, 0), CLIP's embeddings and
//! projections scaled by width^-0.5.

use candle_core::{Device, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::SafeConfig;

enum Init {
    Normal(f32),
    /// U(-b, b): PyTorch's default for nn.Linear (weight and bias, b = 1/sqrt(in)).
    Uniform(f32),
    Zeros,
    Ones,
}

/// The parameter list under construction.
#[derive(Default)]
struct Layout(Vec<(String, Vec<usize>, Init)>);

impl Layout {
    fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, init: Init) {
        self.0.push((name.into(), shape, init));
    }

    fn norm(&mut self, name: &str, w: usize) {
        self.push(format!("{name}.weight"), vec![w], Init::Ones);
        self.push(format!("{name}.bias"), vec![w], Init::Zeros);
    }

    /// timm's Linear: N(0, 0.02), zero bias.
    fn timm_linear(&mut self, name: &str, o: usize, i: usize) {
        self.push(format!("{name}.weight"), vec![o, i], Init::Normal(0.02));
        self.push(format!("{name}.bias"), vec![o], Init::Zeros);
    }

    /// PyTorch's default nn.Linear: U(+-1/sqrt(in)) for weight and bias. The authors' own
    /// layers (embeddings, attention heads, classifier) are plain nn.Linear; from scratch this
    /// matters: three 0.02-std layers in a row with no norm or residual between them starve
    /// the head of signal for hundreds of steps.
    fn torch_linear(&mut self, name: &str, o: usize, i: usize, bias: bool) {
        let b = (i as f32).powf(-0.5);
        self.push(format!("{name}.weight"), vec![o, i], Init::Uniform(b));
        if bias {
            self.push(format!("{name}.bias"), vec![o], Init::Uniform(b));
        }
    }

    /// CLIP's initialize_parameters: attention in_proj width^-0.5, MLP in (2 width)^-0.5,
    /// output projections width^-0.5 (2 layers)^-0.5. A flat 0.02 at width 64 leaves
    /// attention uniform, and training from scratch crawls.
    fn clip_block(&mut self, name: &str, w: usize, layers: usize) {
        let wf = w as f32;
        let (attn, fc, proj) = (wf.powf(-0.5), (2.0 * wf).powf(-0.5), wf.powf(-0.5) * (2.0 * layers as f32).powf(-0.5));
        self.norm(&format!("{name}.ln_1"), w);
        self.push(format!("{name}.attn.in_proj_weight"), vec![3 * w, w], Init::Normal(attn));
        self.push(format!("{name}.attn.in_proj_bias"), vec![3 * w], Init::Zeros);
        self.push(format!("{name}.attn.out_proj.weight"), vec![w, w], Init::Normal(proj));
        self.push(format!("{name}.attn.out_proj.bias"), vec![w], Init::Zeros);
        self.norm(&format!("{name}.ln_2"), w);
        self.push(format!("{name}.mlp.c_fc.weight"), vec![4 * w, w], Init::Normal(fc));
        self.push(format!("{name}.mlp.c_fc.bias"), vec![4 * w], Init::Zeros);
        self.push(format!("{name}.mlp.c_proj.weight"), vec![w, 4 * w], Init::Normal(proj));
        self.push(format!("{name}.mlp.c_proj.bias"), vec![w], Init::Zeros);
    }
}

/// Every parameter SAFE reads, with its shape and initialiser, in a fixed order (so a seed
/// always gives the same weights).
fn layout(c: &SafeConfig) -> Vec<(String, Vec<usize>, Init)> {
    let u = |v: i64| v as usize;
    let (vw, tw, d, e) = (u(c.vision_width), u(c.text_width), u(c.fusion_dim), u(c.embed_dim));
    let scale = |w: usize| (w as f32).powf(-0.5);
    let mut l = Layout::default();
    // CLIP vision.
    // CLIP keeps PyTorch's default Conv2d init for the patch embedding.
    l.push("visual.conv1.weight", vec![vw, 3, u(c.patch), u(c.patch)], Init::Uniform(scale(3 * u(c.patch * c.patch))));
    l.push("visual.class_embedding", vec![vw], Init::Normal(scale(vw)));
    l.push("visual.positional_embedding", vec![u(c.tokens), vw], Init::Normal(scale(vw)));
    l.norm("visual.ln_pre", vw);
    for k in 0..c.vision_layers {
        l.clip_block(&format!("visual.transformer.resblocks.{k}"), vw, u(c.vision_layers));
    }
    l.norm("visual.ln_post", vw);
    l.push("visual.proj", vec![vw, e], Init::Normal(scale(vw)));
    // CLIP text.
    l.push("token_embedding.weight", vec![49408, tw], Init::Normal(0.02));
    l.push("positional_embedding", vec![u(c.context), tw], Init::Normal(0.01));
    for k in 0..c.text_layers {
        l.clip_block(&format!("transformer.resblocks.{k}"), tw, u(c.text_layers));
    }
    l.norm("ln_final", tw);
    l.push("text_projection", vec![tw, e], Init::Normal(scale(tw)));
    // Fusion.
    for name in ["tex_embed", "rgb_embed", "event_embed"] {
        l.push(name, vec![1, 1, d], Init::Normal(0.02));
    }
    l.push("CLS_token", vec![1, u(c.cls_tokens), d], Init::Normal(0.02));
    l.torch_linear("word_embed", d, e, true);
    l.torch_linear("visual_embed", d, e, true);
    l.norm("blocks.0.norm1", d);
    l.timm_linear("blocks.0.attn.qkv", 3 * d, d);
    l.timm_linear("blocks.0.attn.proj", d, d);
    l.norm("blocks.0.norm2", d);
    l.timm_linear("blocks.0.mlp.fc1", 4 * d, d);
    l.timm_linear("blocks.0.mlp.fc2", d, 4 * d);
    l.norm("norm", d);
    for name in ["query", "key", "value"] {
        l.torch_linear(&format!("self_attention.{name}"), d, d, true);
    }
    for name in ["query", "key", "value"] {
        l.torch_linear(&format!("cross_model.{name}"), d, d, false);
    }
    l.torch_linear("fc1", u(c.classes), u(c.cls_tokens) * d, true);
    l.0
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
                Init::Uniform(b) => (0..n).map(|_| rng.random_range(-b..b)).collect(),
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
