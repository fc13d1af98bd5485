//! SAFE's building blocks in candle, each with a backward: candle's fused layer_norm and
//! softmax_last_dim have none (shared/BUILD-NOTES.md), so these are written from basic ops.

use candle_core::{DType, Result, Tensor, D};

use super::Params;

/// x @ W^T + b for PyTorch's Linear [out, in], over any leading dims.
pub fn linear(p: &Params, x: &Tensor, name: &str, bias: bool) -> Result<Tensor> {
    let w = p.get(&format!("{name}.weight"))?;
    let y = x.broadcast_matmul(&w.t()?)?;
    if bias {
        y.broadcast_add(p.get(&format!("{name}.bias"))?)
    } else {
        Ok(y)
    }
}

pub fn layer_norm(p: &Params, x: &Tensor, name: &str, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(p.get(&format!("{name}.weight"))?)?.broadcast_add(p.get(&format!("{name}.bias"))?)
}

pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// x * sigmoid(1.702 x), CLIP's activation.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    let s = ((x * -1.702)?.exp()? + 1.0)?.recip()?;
    x * s
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
        att = att.broadcast_add(m)?;
    }
    let out = softmax_last(&att)?.matmul(&v)?;
    out.transpose(1, 2)?.reshape((b, nq, w))
}

/// Splits a packed [.., 3W] projection into q, k, v.
fn qkv(x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let w = x.dim(D::Minus1)? / 3;
    Ok((x.narrow(D::Minus1, 0, w)?, x.narrow(D::Minus1, w, w)?, x.narrow(D::Minus1, 2 * w, w)?))
}

/// CLIP's residual block (packed in_proj, QuickGELU, LayerNorm eps 1e-5).
pub fn clip_block(p: &Params, x: &Tensor, name: &str, heads: usize, mask: Option<&Tensor>) -> Result<Tensor> {
    let h = layer_norm(p, x, &format!("{name}.ln_1"), 1e-5)?;
    let w = p.get(&format!("{name}.attn.in_proj_weight"))?;
    let packed = h.broadcast_matmul(&w.t()?)?.broadcast_add(p.get(&format!("{name}.attn.in_proj_bias"))?)?;
    let (q, k, v) = qkv(&packed)?;
    let a = attention(&q, &k, &v, heads, mask)?;
    let x = (x + linear(p, &a, &format!("{name}.attn.out_proj"), true)?)?;
    let h = layer_norm(p, &x, &format!("{name}.ln_2"), 1e-5)?;
    let h = quick_gelu(&linear(p, &h, &format!("{name}.mlp.c_fc"), true)?)?;
    x + linear(p, &h, &format!("{name}.mlp.c_proj"), true)?
}

/// timm's ViT block (qkv Linear, exact GELU, LayerNorm eps 1e-6).
pub fn vit_block(p: &Params, x: &Tensor, name: &str, heads: usize) -> Result<Tensor> {
    let h = layer_norm(p, x, &format!("{name}.norm1"), 1e-6)?;
    let (q, k, v) = qkv(&linear(p, &h, &format!("{name}.attn.qkv"), true)?)?;
    let a = attention(&q, &k, &v, heads, None)?;
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
