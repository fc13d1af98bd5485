//! Multi-head self-attention as one fused CPU op over the packed q|k|v projection of CLIP's and
//! timm's blocks: [B, N, 3W] -> [B, N, W], softmax(q k^T / sqrt(d) [+ causal mask]) v per head.
//! From basic ops it is a dozen tensors (narrows, reshapes, transposes and their copies, two
//! matmuls, scale, mask, softmax), each a gradient candle zero-fills and adds in backward; here
//! each head is five small GEMMs (the `gemm` crate candle itself uses) reading q, k and v in
//! place through strides, spread over batch items on candle's thread pool. The forward keeps
//! the attention probabilities for its backward (B x heads x N x N: 1.4 MB a layer at the tiny
//! preset's size).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::fused::{cpu_tensor, exp, par_blocks, slice, split_blocks, with_data, PARALLEL_MIN};
use super::gemm::{gemm, Mat};

pub struct SelfAttention {
    pub heads: usize,
    /// Token i attends to tokens 0..=i only (CLIP's text encoder).
    pub causal: bool,
    /// The forward's attention probabilities, [B, heads, N, N], for the backward.
    probs: Mutex<Vec<f32>>,
}

impl SelfAttention {
    pub fn new(heads: usize, causal: bool) -> Self {
        SelfAttention { heads, causal, probs: Mutex::new(Vec::new()) }
    }

    /// (batch, tokens, width W, head width) of a packed [B, N, 3W] input.
    fn sizes(&self, shape: &Shape) -> Result<(usize, usize, usize, usize)> {
        let (b, n, w3) = shape.dims3()?;
        if w3 % 3 != 0 || self.heads == 0 || (w3 / 3) % self.heads != 0 {
            candle_core::bail!("self-attention: packed width {w3} is not 3 x {} heads x a head width", self.heads);
        }
        Ok((b, n, w3 / 3, w3 / 3 / self.heads))
    }

    fn parallel(&self, b: usize, n: usize, w: usize) -> bool {
        b > 1 && b * n * w >= PARALLEL_MIN
    }
}

impl CustomOp1 for SelfAttention {
    fn name(&self) -> &'static str {
        "self-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = slice(s, l, self.name())?;
        let (b, n, w, hd) = self.sizes(l.shape())?;
        let (h, scale, causal) = (self.heads, 1.0 / (hd as f32).sqrt(), self.causal);
        let mut out = vec![0f32; b * n * w];
        let mut probs = vec![0f32; b * h * n * n];
        let parts: Vec<_> = split_blocks(&mut out, std::iter::repeat_n(n * w, b))
            .into_iter()
            .zip(split_blocks(&mut probs, std::iter::repeat_n(h * n * n, b)))
            .collect();
        par_blocks(parts, self.parallel(b, n, w), |item, (o, p)| {
            let base = item * n * 3 * w;
            for head in 0..h {
                let (q, k, v) = (base + head * hd, base + w + head * hd, base + 2 * w + head * hd);
                let ph = Mat::rows(head * n * n, n);
                // scores = q k^T * scale, then the row softmax in place.
                gemm(n, n, hd, p, ph, qkv, Mat::rows(q, 3 * w), qkv, Mat::rows(k, 3 * w).t(), scale);
                for (i, row) in p[ph.at..ph.at + n * n].chunks_exact_mut(n).enumerate() {
                    let live = if causal { i + 1 } else { n };
                    let max = row[..live].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    row[..live].iter_mut().for_each(|v| *v = exp(*v - max));
                    row[live..].iter_mut().for_each(|v| *v = 0.0);
                    let inv = 1.0 / row[..live].iter().sum::<f32>();
                    row[..live].iter_mut().for_each(|v| *v *= inv);
                }
                gemm(n, hd, n, o, Mat::rows(head * hd, w), p, ph, qkv, Mat::rows(v, 3 * w), 1.0);
            }
        });
        *self.probs.lock().unwrap_or_else(|e| e.into_inner()) = probs;
        Ok((CpuStorage::F32(out), Shape::from((b, n, w))))
    }

    fn bwd(&self, qkv: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, n, w, hd) = self.sizes(qkv.shape())?;
        let (h, scale) = (self.heads, 1.0 / (hd as f32).sqrt());
        let probs = self.probs.lock().unwrap_or_else(|e| e.into_inner());
        if probs.len() != b * h * n * n {
            candle_core::bail!("self-attention: backward without its forward's probabilities");
        }
        let mut dqkv = vec![0f32; b * n * 3 * w];
        with_data(qkv, self.name(), |qkv| {
            with_data(grad, self.name(), |g| {
                let parts = split_blocks(&mut dqkv, std::iter::repeat_n(n * 3 * w, b));
                par_blocks(parts, self.parallel(b, n, w), |item, d| {
                    let (base, gbase) = (item * n * 3 * w, item * n * w);
                    let mut dp = vec![0f32; n * n];
                    for head in 0..h {
                        let off = head * hd;
                        let (q, k, v) = (base + off, base + w + off, base + 2 * w + off);
                        let p = &probs[(item * h + head) * n * n..][..n * n];
                        let go = Mat::rows(gbase + off, w);
                        // dV = P^T dO; dP = dO V^T.
                        gemm(n, hd, n, d, Mat::rows(2 * w + off, 3 * w), p, Mat::rows(0, n).t(), g, go, 1.0);
                        gemm(n, n, hd, &mut dp, Mat::rows(0, n), g, go, qkv, Mat::rows(v, 3 * w).t(), 1.0);
                        // dS = P (dP - rowsum(dP P)) * scale (masked entries have P = 0).
                        for (pr, dr) in p.chunks_exact(n).zip(dp.chunks_exact_mut(n)) {
                            let dot: f32 = pr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                            dr.iter_mut().zip(pr).for_each(|(d, p)| *d = p * (*d - dot) * scale);
                        }
                        // dQ = dS K; dK = dS^T Q.
                        gemm(n, hd, n, d, Mat::rows(off, 3 * w), &dp, Mat::rows(0, n), qkv, Mat::rows(k, 3 * w), 1.0);
                        gemm(
                            n,
                            hd,
                            n,
                            d,
                            Mat::rows(w + off, 3 * w),
                            &dp,
                            Mat::rows(0, n).t(),
                            qkv,
                            Mat::rows(q, 3 * w),
                            1.0,
                        );
                    }
                });
                Ok(())
            })
        })?;
        Ok(Some(cpu_tensor(dqkv, qkv.shape())?))
    }
}
