//! The layers SAFE is made of, as ONNX subgraphs. Weights are looked up by the checkpoint's own
//! names; PyTorch's Linear weights [out, in] are stored transposed ([in, out]) for MatMul.

use anyhow::{ensure, Result};

use super::builder::{Attr, GraphBuilder, WeightMatmul};
use super::quant;
use crate::tensor::Tensor;
use crate::weights::Weights;

/// `x @ w` for a constant [in, out] weight named `name`, as `g.weight_matmul` says: a float
/// MatMul, int8 (dynamic or static, `quant`), or a float MatMul whose input is tapped for
/// calibration.
pub fn matmul_weight(g: &mut GraphBuilder, x: &str, name: &str, w: &Tensor) -> Result<String> {
    match g.weight_matmul.clone() {
        WeightMatmul::Int8Dynamic => Ok(quant::dynamic_matmul(g, x, name, w)),
        WeightMatmul::Int8Static(ranges) => quant::static_matmul(g, x, name, w, &ranges),
        mode => {
            if matches!(mode, WeightMatmul::Calibrate) {
                g.taps.push((x.to_string(), name.to_string()));
            }
            let wt = g.weight(name, &w.dims, &w.data);
            Ok(g.node("MatMul", &[x, &wt], &[]))
        }
    }
}

/// `x @ W^T + b` for a PyTorch Linear named `prefix` (`bias`: whether it has one).
pub fn linear(g: &mut GraphBuilder, w: &Weights, x: &str, prefix: &str, bias: bool) -> Result<String> {
    let weight = w.linear_t(&format!("{prefix}.weight"))?;
    let y = matmul_weight(g, x, &format!("{prefix}.weight^T"), &weight)?;
    if !bias {
        return Ok(y);
    }
    let b = w.get(&format!("{prefix}.bias"))?;
    let b = g.weight(&format!("{prefix}.bias"), &b.dims, &b.data);
    Ok(g.node("Add", &[&y, &b], &[]))
}

pub fn layer_norm(g: &mut GraphBuilder, w: &Weights, x: &str, prefix: &str, eps: f32) -> Result<String> {
    let scale = w.get(&format!("{prefix}.weight"))?;
    let bias = w.get(&format!("{prefix}.bias"))?;
    let s = g.weight(&format!("{prefix}.weight"), &scale.dims, &scale.data);
    let b = g.weight(&format!("{prefix}.bias"), &bias.dims, &bias.data);
    Ok(g.node("LayerNormalization", &[x, &s, &b], &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))]))
}

/// CLIP's QuickGELU: x * sigmoid(1.702 x).
pub fn quick_gelu(g: &mut GraphBuilder, x: &str) -> String {
    let k = g.const_f32(&[], &[1.702]);
    let kx = g.node("Mul", &[x, &k], &[]);
    let s = g.node("Sigmoid", &[&kx], &[]);
    g.node("Mul", &[x, &s], &[])
}

/// Exact (erf) GELU: 0.5 x (1 + erf(x / sqrt 2)); ONNX Runtime fuses the pattern into Gelu.
pub fn gelu(g: &mut GraphBuilder, x: &str) -> String {
    let sqrt2 = g.const_f32(&[], &[std::f32::consts::SQRT_2]);
    let one = g.const_f32(&[], &[1.0]);
    let half = g.const_f32(&[], &[0.5]);
    let d = g.node("Div", &[x, &sqrt2], &[]);
    let e = g.node("Erf", &[&d], &[]);
    let p = g.node("Add", &[&e, &one], &[]);
    let m = g.node("Mul", &[x, &p], &[]);
    g.node("Mul", &[&m, &half], &[])
}

/// softmax(q k^T * scale [+ mask]) v over [N, T, W] tensors split into `heads` heads.
pub fn attention(
    g: &mut GraphBuilder,
    q: &str,
    k: &str,
    v: &str,
    width: i64,
    heads: i64,
    mask: Option<&str>,
) -> Result<String> {
    ensure!(heads > 0 && width % heads == 0, "width {width} does not split into {heads} heads");
    let dh = width / heads;
    let split = g.const_i64(&[0, 0, heads, dh]);
    let merge = g.const_i64(&[0, 0, width]);
    let qh = g.node("Reshape", &[q, &split], &[]);
    let qh = g.node("Transpose", &[&qh], &[("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
    let kh = g.node("Reshape", &[k, &split], &[]);
    let kh = g.node("Transpose", &[&kh], &[("perm", Attr::Ints(vec![0, 2, 3, 1]))]);
    let vh = g.node("Reshape", &[v, &split], &[]);
    let vh = g.node("Transpose", &[&vh], &[("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
    let scores = g.node("MatMul", &[&qh, &kh], &[]);
    let scale = g.const_f32(&[], &[1.0 / (dh as f32).sqrt()]);
    let mut scores = g.node("Mul", &[&scores, &scale], &[]);
    if let Some(m) = mask {
        scores = g.node("Add", &[&scores, m], &[]);
    }
    let p = g.node("Softmax", &[&scores], &[("axis", Attr::Int(-1))]);
    let o = g.node("MatMul", &[&p, &vh], &[]);
    let o = g.node("Transpose", &[&o], &[("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
    Ok(g.node("Reshape", &[&o, &merge], &[]))
}

/// Splits the last axis of a packed q/k/v projection into three.
fn split3(g: &mut GraphBuilder, qkv: &str, width: i64) -> (String, String, String) {
    let sizes = g.const_i64(&[width, width, width]);
    let names: Vec<String> = (0..3).map(|i| format!("{qkv}_split{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    g.node_n("Split", &[qkv, &sizes], &[("axis", Attr::Int(-1))], &refs);
    (names[0].clone(), names[1].clone(), names[2].clone())
}

/// CLIP's ResidualAttentionBlock (`prefix` = `...resblocks.K`), LayerNorm eps 1e-5.
pub fn clip_block(
    g: &mut GraphBuilder,
    w: &Weights,
    x: &str,
    prefix: &str,
    heads: i64,
    mask: Option<&str>,
) -> Result<String> {
    let width = w.get(&format!("{prefix}.ln_1.weight"))?.dims[0];
    let h = layer_norm(g, w, x, &format!("{prefix}.ln_1"), 1e-5)?;
    let in_w = w.linear_t(&format!("{prefix}.attn.in_proj_weight"))?;
    let qkv = matmul_weight(g, &h, &format!("{prefix}.attn.in_proj_weight^T"), &in_w)?;
    let in_b = w.get(&format!("{prefix}.attn.in_proj_bias"))?;
    let in_b = g.weight(&format!("{prefix}.attn.in_proj_bias"), &in_b.dims, &in_b.data);
    let qkv = g.node("Add", &[&qkv, &in_b], &[]);
    let (q, k, v) = split3(g, &qkv, width);
    let a = attention(g, &q, &k, &v, width, heads, mask)?;
    let a = linear(g, w, &a, &format!("{prefix}.attn.out_proj"), true)?;
    let x = g.node("Add", &[x, &a], &[]);
    let h = layer_norm(g, w, &x, &format!("{prefix}.ln_2"), 1e-5)?;
    let h = linear(g, w, &h, &format!("{prefix}.mlp.c_fc"), true)?;
    let h = quick_gelu(g, &h);
    let h = linear(g, w, &h, &format!("{prefix}.mlp.c_proj"), true)?;
    Ok(g.node("Add", &[&x, &h], &[]))
}

/// A timm ViT Block (`prefix` = `blocks.K`): pre-norm, eps 1e-6, exact GELU.
pub fn vit_block(g: &mut GraphBuilder, w: &Weights, x: &str, prefix: &str, heads: i64) -> Result<String> {
    let width = w.get(&format!("{prefix}.norm1.weight"))?.dims[0];
    let h = layer_norm(g, w, x, &format!("{prefix}.norm1"), 1e-6)?;
    let qkv = linear(g, w, &h, &format!("{prefix}.attn.qkv"), true)?;
    let (q, k, v) = split3(g, &qkv, width);
    let a = attention(g, &q, &k, &v, width, heads, None)?;
    let a = linear(g, w, &a, &format!("{prefix}.attn.proj"), true)?;
    let x = g.node("Add", &[x, &a], &[]);
    let h = layer_norm(g, w, &x, &format!("{prefix}.norm2"), 1e-6)?;
    let h = linear(g, w, &h, &format!("{prefix}.mlp.fc1"), true)?;
    let h = gelu(g, &h);
    let h = linear(g, w, &h, &format!("{prefix}.mlp.fc2"), true)?;
    Ok(g.node("Add", &[&x, &h], &[]))
}
