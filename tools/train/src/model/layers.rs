//! SAFE's building blocks in candle, each with a backward: candle's fused layer_norm and
//! softmax_last_dim have none (shared/BUILD-NOTES.md), so on the CPU they run as this crate's
//! fused ops (`fused.rs`) and elsewhere as the composites in [`composite`].

use candle_core::{DType, Result, Tensor, D};

use super::fused;
use super::Params;

/// Whether `x` runs through the fused CPU ops.
fn fused_cpu(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// x + b, b broadcast over x's leading dims (b's dims are x's trailing ones, or 1s before them).
pub fn add_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fused_cpu(x) {
        x.contiguous()?.apply_op2(&b.contiguous()?, fused::RowBias)
    } else {
        x.broadcast_add(b)
    }
}

/// x @ W^T + b for PyTorch's Linear [out, in], over any leading dims.
pub fn linear(p: &Params, x: &Tensor, name: &str, bias: bool) -> Result<Tensor> {
    let b = if bias { Some(p.get(&format!("{name}.bias"))?) } else { None };
    affine(x, p.get(&format!("{name}.weight"))?, b)
}

/// x @ w^T (+ b) for a weight w [out, in].
fn affine(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    match b {
        Some(b) if fused_cpu(x) => x.contiguous()?.apply_op3(w, b, fused::Linear),
        Some(b) => add_bias(&matmul_rows(x, &w.t()?)?, b),
        None => matmul_rows(x, &w.t()?),
    }
}

/// x [.., K] @ w [K, N] as one 2-D product over all rows: a broadcast matmul would make w's
/// gradient one [K, N] block per leading index and then sum them.
pub fn matmul_rows(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let k = dims.pop().unwrap_or(1);
    let rows: usize = dims.iter().product();
    let y = x.reshape((rows, k))?.matmul(w)?;
    dims.push(w.dim(1)?);
    y.reshape(dims)
}

pub fn layer_norm(p: &Params, x: &Tensor, name: &str, eps: f64) -> Result<Tensor> {
    let (w, b) = (p.get(&format!("{name}.weight"))?, p.get(&format!("{name}.bias"))?);
    if fused_cpu(x) {
        x.contiguous()?.apply_op3(w, b, fused::LayerNorm { eps: eps as f32 })
    } else {
        composite::layer_norm(x, w, b, eps)
    }
}

pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    if fused_cpu(x) {
        x.contiguous()?.apply_op1(fused::Softmax)
    } else {
        composite::softmax_last(x)
    }
}

pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// x * sigmoid(1.702 x), CLIP's activation.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if fused_cpu(x) {
        x.contiguous()?.apply_op1(fused::QuickGelu)
    } else {
        composite::quick_gelu(x)
    }
}

/// The same ops from candle's basic ones (each with candle's own backward): the reference the
/// fused ops are tested against, and what runs on other devices.
pub mod composite {
    use candle_core::{Result, Tensor, D};

    pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
        normed.broadcast_mul(w)?.broadcast_add(b)
    }

    pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let e = x.broadcast_sub(&max)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    }

    /// Self-attention over a packed q|k|v projection [B, N, 3W], `causal` masking later tokens.
    pub fn packed_self_attention(packed: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        let (q, k, v) = super::qkv(packed)?;
        let mask = if causal {
            let n = packed.dim(1)?;
            let m: Vec<f32> = (0..n * n).map(|i| if i % n > i / n { f32::NEG_INFINITY } else { 0.0 }).collect();
            Some(Tensor::from_vec(m, (n, n), packed.device())?)
        } else {
            None
        };
        super::attention(&q, &k, &v, heads, mask.as_ref())
    }

    pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
        let s = ((x * -1.702)?.exp()? + 1.0)?.recip()?;
        x * s
    }
}

/// softmax(q k^T * scale + mask) v with `heads` heads; q [B, Nq, W], k/v [B, Nk, W].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, nq, w) = q.dims3()?;
    let nk = k.dim(1)?;
    let hd = w / heads;
    let split = |t: &Tensor, n| t.reshape((b, n, heads, hd))?.transpose(1, 2)?.contiguous();
    let (q, k, v) = (split(q, nq)?, split(k, nk)?, split(v, nk)?);
    let mut att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    if let Some(m) = mask {
        att = add_bias(&att, m)?;
    }
    let out = softmax_last(&att)?.matmul(&v)?;
    out.transpose(1, 2)?.reshape((b, nq, w))
}

/// Splits a packed [.., 3W] projection into q, k, v.
fn qkv(x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let w = x.dim(D::Minus1)? / 3;
    Ok((x.narrow(D::Minus1, 0, w)?, x.narrow(D::Minus1, w, w)?, x.narrow(D::Minus1, 2 * w, w)?))
}

/// Multi-head self-attention over a packed q|k|v projection [B, N, 3W] -> [B, N, W].
pub fn packed_self_attention(packed: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
    if fused_cpu(packed) {
        return packed.contiguous()?.apply_op1(super::attention::SelfAttention::new(heads, causal));
    }
    composite::packed_self_attention(packed, heads, causal)
}

/// CLIP's residual block (packed in_proj, QuickGELU, LayerNorm eps 1e-5); `causal` masks
/// attention to earlier tokens (the text encoder).
pub fn clip_block(p: &Params, x: &Tensor, name: &str, heads: usize, causal: bool) -> Result<Tensor> {
    let h = layer_norm(p, x, &format!("{name}.ln_1"), 1e-5)?;
    let (w, b) = (p.get(&format!("{name}.attn.in_proj_weight"))?, p.get(&format!("{name}.attn.in_proj_bias"))?);
    let packed = affine(&h, w, Some(b))?;
    let a = packed_self_attention(&packed, heads, causal)?;
    let x = (x + linear(p, &a, &format!("{name}.attn.out_proj"), true)?)?;
    let h = layer_norm(p, &x, &format!("{name}.ln_2"), 1e-5)?;
    let h = quick_gelu(&linear(p, &h, &format!("{name}.mlp.c_fc"), true)?)?;
    x + linear(p, &h, &format!("{name}.mlp.c_proj"), true)?
}

/// timm's ViT block (qkv Linear, exact GELU, LayerNorm eps 1e-6).
pub fn vit_block(p: &Params, x: &Tensor, name: &str, heads: usize) -> Result<Tensor> {
    let h = layer_norm(p, x, &format!("{name}.norm1"), 1e-6)?;
    let a = packed_self_attention(&linear(p, &h, &format!("{name}.attn.qkv"), true)?, heads, false)?;
    let x = (x + linear(p, &a, &format!("{name}.attn.proj"), true)?)?;
    let h = layer_norm(p, &x, &format!("{name}.norm2"), 1e-6)?;
    let h = linear(p, &h, &format!("{name}.mlp.fc1"), true)?.gelu_erf()?;
    x + linear(p, &h, &format!("{name}.mlp.fc2"), true)?
}

/// Mean cross-entropy of log-probabilities [B, C] against class indices [B].
pub fn nll(log_probs: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let picked = log_probs.gather(&targets.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    picked.mean_all()?.neg()
}
