//! SAFE as ONNX graphs, op for op as shared/SAFE.md describes the authors' code: the CLIP vision
//! encoder (per image), the CLIP text encoder (run once at export: its output is a constant of
//! the other graphs), the fusion transformer, and the full graph that composes them.

use anyhow::{ensure, Result};

use super::builder::{Attr, Dim, GraphBuilder};
use super::layers::{attention, clip_block, layer_norm, linear, matmul_weight, vit_block};
use super::proto::tensor_proto::DataType;
use super::ranges::Ranges;
use crate::config::SafeConfig;
use crate::weights::Weights;

/// Everything a graph needs besides the weights.
pub struct Export<'a> {
    pub weights: &'a Weights,
    pub config: &'a SafeConfig,
    pub labels: &'a [String],
    /// CLIP text features of the labels, [C, E] row-major.
    pub text_features: &'a [f32],
    pub precision: Precision,
    /// Activation ranges for `Precision::Int8Static` (calibrated on samples: `safe-train
    /// --calibrate`).
    pub calibration: Option<&'a Ranges>,
}

/// How the graphs hold their weights and compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    #[default]
    Fp32,
    /// Weights and float compute in fp16 (inputs and outputs stay float32): for GPUs.
    Fp16,
    /// Weight MatMuls in int8 per output channel, activations quantised dynamically
    /// (ONNX Runtime's MatMulInteger path; VNNI where the CPU has it).
    #[value(name = "int8", alias = "int8-dynamic")]
    Int8,
    /// Weight MatMuls in int8 per output channel, activations int8 with ranges calibrated on
    /// dataset samples, as QuantizeLinear/DequantizeLinear pairs (the int8 OpenVINO is built for).
    #[value(name = "int8-static")]
    Int8Static,
}

impl Precision {
    /// The graphs' `safe.weights` metadata.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8-dynamic",
            Precision::Int8Static => "int8-static",
        }
    }
}

fn shape_with_batch(g: &mut GraphBuilder, like: &str, rest: &[i64]) -> String {
    let shape = g.node("Shape", &[like], &[]);
    let start = g.const_i64(&[0]);
    let end = g.const_i64(&[1]);
    let batch = g.node("Slice", &[&shape, &start, &end], &[]);
    let rest = g.const_i64(rest);
    g.node("Concat", &[&batch, &rest], &[("axis", Attr::Int(0))])
}

/// `x[:, start..end]` along axis 1.
fn slice1(g: &mut GraphBuilder, x: &str, start: i64, end: i64) -> String {
    let (s, e, a) = (g.const_i64(&[start]), g.const_i64(&[end]), g.const_i64(&[1]));
    g.node("Slice", &[x, &s, &e, &a], &[])
}

/// CLIP's vision encoder: images [N, 3, S, S] -> tokens [N, T, E] (ln_post on every token).
pub fn vision(g: &mut GraphBuilder, w: &Weights, c: &SafeConfig, images: &str) -> Result<String> {
    g.scoped("visual", |g| {
        let conv = w.get("visual.conv1.weight")?;
        let conv = g.weight("visual.conv1.weight", &conv.dims, &conv.data);
        let p = c.patch;
        let x = g.node(
            "Conv",
            &[images, &conv],
            &[("kernel_shape", Attr::Ints(vec![p, p])), ("strides", Attr::Ints(vec![p, p]))],
        );
        let flat = g.const_i64(&[0, c.vision_width, -1]);
        let x = g.node("Reshape", &[&x, &flat], &[]);
        let x = g.node("Transpose", &[&x], &[("perm", Attr::Ints(vec![0, 2, 1]))]);
        let cls = w.get("visual.class_embedding")?;
        let cls = g.weight("visual.class_embedding", &[1, 1, c.vision_width], &cls.data);
        let shape = shape_with_batch(g, images, &[1, c.vision_width]);
        let cls = g.node("Expand", &[&cls, &shape], &[]);
        let x = g.node("Concat", &[&cls, &x], &[("axis", Attr::Int(1))]);
        let pos = w.get("visual.positional_embedding")?;
        let pos = g.weight("visual.positional_embedding", &pos.dims, &pos.data);
        let mut x = g.node("Add", &[&x, &pos], &[]);
        x = layer_norm(g, w, &x, "visual.ln_pre", 1e-5)?;
        for k in 0..c.vision_layers {
            x = g.scoped(&format!("block{k}"), |g| {
                clip_block(g, w, &x, &format!("visual.transformer.resblocks.{k}"), c.vision_heads, None)
            })?;
        }
        x = layer_norm(g, w, &x, "visual.ln_post", 1e-5)?;
        matmul_weight(g, &x, "visual.proj", w.get("visual.proj")?)
    })
}

/// CLIP's text encoder: tokens [C, L] int64 and the flat index (c * L + EOT position) of each
/// row's end token -> features [C, E].
pub fn text(g: &mut GraphBuilder, w: &Weights, c: &SafeConfig, tokens: &str, eot: &str) -> Result<String> {
    let emb = w.get("token_embedding.weight")?;
    let emb = g.weight("token_embedding.weight", &emb.dims, &emb.data);
    let x = g.node("Gather", &[&emb, tokens], &[("axis", Attr::Int(0))]);
    let pos = w.get("positional_embedding")?;
    let pos = g.weight("positional_embedding", &pos.dims, &pos.data);
    let mut x = g.node("Add", &[&x, &pos], &[]);
    let l = c.context as usize;
    let mask: Vec<f32> = (0..l * l).map(|i| if i % l > i / l { f32::NEG_INFINITY } else { 0.0 }).collect();
    let mask = g.const_f32(&[l as i64, l as i64], &mask);
    for k in 0..c.text_layers {
        x = g.scoped(&format!("text{k}"), |g| {
            clip_block(g, w, &x, &format!("transformer.resblocks.{k}"), c.text_heads, Some(&mask))
        })?;
    }
    x = layer_norm(g, w, &x, "ln_final", 1e-5)?;
    let rows = g.const_i64(&[-1, c.text_width]);
    let flat = g.node("Reshape", &[&x, &rows], &[]);
    let picked = g.node("Gather", &[&flat, eot], &[("axis", Attr::Int(0))]);
    let proj = w.get("text_projection")?;
    let proj = g.weight("text_projection", &proj.dims, &proj.data);
    Ok(g.node("MatMul", &[&picked, &proj], &[]))
}

/// The authors' SelfAttention: one head over D, no output projection.
fn self_attention(g: &mut GraphBuilder, w: &Weights, c: &SafeConfig, x: &str) -> Result<String> {
    let q = linear(g, w, x, "self_attention.query", true)?;
    let k = linear(g, w, x, "self_attention.key", true)?;
    let v = linear(g, w, x, "self_attention.value", true)?;
    attention(g, &q, &k, &v, c.fusion_dim, 1, None)
}

/// The authors' CrossAttention: no biases, and the value layer applied to the KEY output.
fn cross_attention(g: &mut GraphBuilder, w: &Weights, c: &SafeConfig, t: &str, y: &str) -> Result<String> {
    let q = linear(g, w, t, "cross_model.query", false)?;
    let k = linear(g, w, y, "cross_model.key", false)?;
    let v = linear(g, w, &k, "cross_model.value", false)?;
    attention(g, &q, &k, &v, c.fusion_dim, 1, None)
}

fn embedding(g: &mut GraphBuilder, w: &Weights, name: &str) -> Result<String> {
    let t = w.get(name)?;
    Ok(g.weight(name, &t.dims, &t.data))
}

/// The fusion model: frame-averaged rgb / event tokens [B, T, E] -> log-probabilities [B, C].
pub fn fusion(g: &mut GraphBuilder, e: &Export, rgb: &str, event: &str) -> Result<String> {
    let (w, c) = (e.weights, e.config);
    let (classes, t_len, d) = (c.classes, c.tokens, c.fusion_dim);
    ensure!(e.text_features.len() as i64 == classes * c.embed_dim, "text features do not match {classes} classes");
    g.scoped("fusion", |g| {
        let r = linear(g, w, rgb, "visual_embed", true)?;
        let ev = linear(g, w, event, "visual_embed", true)?;
        let tf = g.weight("text_features", &[classes, c.embed_dim], e.text_features);
        let text = linear(g, w, &tf, "word_embed", true)?;
        let tex = embedding(g, w, "tex_embed")?;
        let text = g.node("Add", &[&text, &tex], &[]);
        let shape = shape_with_batch(g, rgb, &[classes, d]);
        let text = g.node("Expand", &[&text, &shape], &[]);
        let rgb_embed = embedding(g, w, "rgb_embed")?;
        let r = g.node("Add", &[&r, &rgb_embed], &[]);
        let event_embed = embedding(g, w, "event_embed")?;
        let ev = g.node("Add", &[&ev, &event_embed], &[]);
        let x = g.node("Concat", &[&text, &r, &ev], &[("axis", Attr::Int(1))]);
        let x = vit_block(g, w, &x, "blocks.0", c.fusion_heads)?;
        let x = layer_norm(g, w, &x, "norm", 1e-6)?;
        let t = slice1(g, &x, 0, classes);
        let rr = slice1(g, &x, classes, classes + t_len);
        let ee = slice1(g, &x, classes + t_len, classes + 2 * t_len);
        let both = g.node("Concat", &[&rr, &ee], &[("axis", Attr::Int(1))]);
        let out = self_attention(g, w, c, &both)?;
        let vr = slice1(g, &out, 0, t_len);
        let ve = slice1(g, &out, t_len, 2 * t_len);
        let enhanced = g.node("Add", &[&vr, &ve], &[]);
        let cr = cross_attention(g, w, c, &t, &vr)?;
        let ce = cross_attention(g, w, c, &t, &ve)?;
        let cross = g.node("Add", &[&cr, &ce], &[]);
        let cls = embedding(g, w, "CLS_token")?;
        let shape = shape_with_batch(g, rgb, &[c.cls_tokens, d]);
        let cls = g.node("Expand", &[&cls, &shape], &[]);
        let z = g.node("Concat", &[&enhanced, &cross, &cls], &[("axis", Attr::Int(1))]);
        let z = self_attention(g, w, c, &z)?;
        let n = t_len + classes;
        let last = slice1(g, &z, n, n + c.cls_tokens);
        let flat_shape = g.const_i64(&[0, c.cls_tokens * d]);
        let flat = g.node("Reshape", &[&last, &flat_shape], &[]);
        let logits = linear(g, w, &flat, "fc1", true)?;
        Ok(g.node("LogSoftmax", &[&logits], &[("axis", Attr::Int(-1))]))
    })
}

fn image_dims(c: &SafeConfig, frames: bool) -> Vec<Dim> {
    let s = Dim::Fixed(c.image_size);
    let mut dims = vec![Dim::Named("batch")];
    if frames {
        dims.push(Dim::Fixed(c.frames));
    }
    dims.extend([Dim::Fixed(3), s.clone(), s]);
    dims
}

/// rgb, event [B, F, 3, S, S] -> log_probs [B, C].
pub fn full_graph(g: &mut GraphBuilder, e: &Export) -> Result<()> {
    let c = e.config;
    let rgb = g.input("rgb", DataType::Float, &image_dims(c, true));
    let event = g.input("event", DataType::Float, &image_dims(c, true));
    let per_image = g.const_i64(&[-1, 3, c.image_size, c.image_size]);
    let ri = g.node("Reshape", &[&rgb, &per_image], &[]);
    let ei = g.node("Reshape", &[&event, &per_image], &[]);
    // One encoder call for all 2*B*F images: RGB first, then events.
    let images = g.node("Concat", &[&ri, &ei], &[("axis", Attr::Int(0))]);
    let tokens = vision(g, e.weights, c, &images)?;
    let grouped = g.const_i64(&[2, -1, c.frames, c.tokens, c.embed_dim]);
    let tokens = g.node("Reshape", &[&tokens, &grouped], &[]);
    let mean = g.node("ReduceMean", &[&tokens], &[("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(0))]);
    let halves = g.const_i64(&[1, 1]);
    let (r, ev) = ("rgb_mean_split".to_string(), "event_mean_split".to_string());
    g.node_n("Split", &[&mean, &halves], &[("axis", Attr::Int(0))], &[&r, &ev]);
    let axis0 = g.const_i64(&[0]);
    let r = g.node("Squeeze", &[&r, &axis0], &[]);
    let ev = g.node("Squeeze", &[&ev, &axis0], &[]);
    let out = fusion(g, e, &r, &ev)?;
    g.output(&out, "log_probs", DataType::Float, &[Dim::Named("batch"), Dim::Fixed(c.classes)]);
    Ok(())
}

/// images [N, 3, S, S] -> tokens [N, T, E].
pub fn encoder_graph(g: &mut GraphBuilder, e: &Export) -> Result<()> {
    let c = e.config;
    let images = g.input("images", DataType::Float, &image_dims(c, false));
    let tokens = vision(g, e.weights, c, &images)?;
    let dims = [Dim::Named("batch"), Dim::Fixed(c.tokens), Dim::Fixed(c.embed_dim)];
    g.output(&tokens, "tokens", DataType::Float, &dims);
    Ok(())
}

/// rgb_tokens, event_tokens [B, T, E] (each the mean of F frames' tokens) -> log_probs [B, C].
pub fn fusion_graph(g: &mut GraphBuilder, e: &Export) -> Result<()> {
    let c = e.config;
    let dims = [Dim::Named("batch"), Dim::Fixed(c.tokens), Dim::Fixed(c.embed_dim)];
    let rgb = g.input("rgb_tokens", DataType::Float, &dims);
    let event = g.input("event_tokens", DataType::Float, &dims);
    let out = fusion(g, e, &rgb, &event)?;
    g.output(&out, "log_probs", DataType::Float, &[Dim::Named("batch"), Dim::Fixed(c.classes)]);
    Ok(())
}

/// tokens [C, L], eot [C] -> text_features [C, E] (used by the exporter, not by safed).
pub fn text_graph(g: &mut GraphBuilder, w: &Weights, c: &SafeConfig) -> Result<()> {
    let tokens = g.input("tokens", DataType::Int64, &[Dim::Named("classes"), Dim::Fixed(c.context)]);
    let eot = g.input("eot", DataType::Int64, &[Dim::Named("classes")]);
    let f = text(g, w, c, &tokens, &eot)?;
    g.output(&f, "text_features", DataType::Float, &[Dim::Named("classes"), Dim::Fixed(c.embed_dim)]);
    Ok(())
}
