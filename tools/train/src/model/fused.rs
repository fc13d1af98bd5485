//! Fused CPU ops with their own backward (candle's custom-op traits): layer norm, softmax over
//! the last dimension, QuickGELU and a bias added over rows. Written from basic ops, each is
//! 4 to 10 tensors with their allocations, and the gradient of a parameter broadcast over rows
//! (a bias, a norm's scale, a positional embedding) goes through candle's general reduction,
//! which divides per element: a third of a training step's backward. Each op here is one pass
//! over its rows forward and one backward. On other devices the callers keep the composite
//! versions (`layers.rs`), which the tests also hold these to, beside finite differences.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};

use super::gemm::{gemm, Mat};

/// The contiguous f32 elements of a CPU storage seen through `layout`.
pub(crate) fn slice<'a>(s: &'a CpuStorage, layout: &Layout, op: &'static str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: needs a contiguous f32 input"),
    }
}

/// Runs `f` on the contiguous f32 elements of `t` (a CPU tensor).
pub(crate) fn with_data<R>(t: &Tensor, op: &'static str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout, op)?),
        _ => candle_core::bail!("{op}: runs on the CPU only"),
    }
}

pub(crate) fn cpu_tensor(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
}

/// Below this many elements an op runs on the calling thread: handing work to the pool costs
/// more than it saves.
pub(crate) const PARALLEL_MIN: usize = 1 << 14;

/// Runs `f(index, part)` on every part, spread over candle's own thread pool (the one its
/// element-wise ops use) when `parallel`, and hands the parts back.
pub(crate) fn par_blocks<T: Send>(parts: Vec<T>, parallel: bool, f: impl Fn(usize, &mut T) + Sync) -> Vec<T> {
    let parts: Vec<std::sync::Mutex<T>> = parts.into_iter().map(std::sync::Mutex::new).collect();
    let run = |b: usize| {
        // Each part is locked by the one unit that owns it: never contended.
        f(b, &mut parts[b].lock().unwrap_or_else(|e| e.into_inner()));
    };
    if parallel && parts.len() > 1 {
        candle_core::utils::barrier_pool().execute_chunked(parts.len(), |range| range.for_each(run));
    } else {
        (0..parts.len()).for_each(run);
    }
    parts.into_iter().map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner())).collect()
}

/// Splits `out` into consecutive blocks of `sizes` elements.
pub(crate) fn split_blocks(out: &mut [f32], sizes: impl Iterator<Item = usize>) -> Vec<&mut [f32]> {
    let mut rest = out;
    sizes
        .map(|n| {
            let (block, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            block
        })
        .collect()
}

/// Fills an output of `rows` x `width` elements block by block of rows, in parallel past
/// [`PARALLEL_MIN`]. `f(rows, out, partial)` writes `out` for `rows` and may add into
/// `partial`, `acc` elements per block, summed over blocks and returned (a parameter's
/// gradient, reduced over rows).
fn par_rows(
    rows: usize,
    width: usize,
    acc: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f32], &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0f32; rows * width];
    let parallel = rows * width.max(acc) >= PARALLEL_MIN;
    let blocks = if parallel { (candle_core::utils::barrier_pool().n_workers() + 1) * 4 } else { 1 };
    let per = rows.div_ceil(blocks).max(1);
    let starts: Vec<usize> = (0..rows).step_by(per).collect();
    let sizes = starts.iter().map(|&s| ((s + per).min(rows) - s) * width);
    let parts: Vec<_> = split_blocks(&mut out, sizes).into_iter().map(|o| (o, vec![0f32; acc])).collect();
    let parts = par_blocks(parts, parallel, |b, (o, partial)| {
        f(starts[b]..(starts[b] + per).min(rows), o, partial);
    });
    let mut total = vec![0f32; acc];
    for (_, partial) in parts {
        total.iter_mut().zip(&partial).for_each(|(t, p)| *t += p);
    }
    (out, total)
}

/// e^x to about 1 ulp, in operations a compiler vectorises (libm's expf is a call per
/// element, and QuickGELU takes one per activation forward and backward): 2^n e^r with
/// n = round(x / ln 2), |r| <= ln 2 / 2, e^r by its Taylor series to r^6 (error < 2e-7).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest through the float adder (1.5 * 2^23 pushes the fraction out).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// x + b, with b's elements matching x's trailing ones (a bias [N] over [.., N], a positional
/// embedding [T, W] over [B, T, W]): x seen as rows of b's size.
pub struct RowBias;

impl CustomOp2 for RowBias {
    fn name(&self) -> &'static str {
        "row-bias"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        if b.is_empty() || x.len() % b.len() != 0 {
            candle_core::bail!("row-bias: {} elements are not rows of {}", x.len(), b.len());
        }
        let n = b.len();
        let (y, _) = par_rows(x.len() / n, n, 0, |rows, out, _| {
            for (o, row) in out.chunks_exact_mut(n).zip(x[rows.start * n..rows.end * n].chunks_exact(n)) {
                o.iter_mut().zip(row.iter().zip(b)).for_each(|(o, (a, c))| *o = a + c);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = b.elem_count();
        let db = with_data(g, self.name(), |g| {
            let (_, db) = par_rows(g.len() / n, 0, n, |rows, _, db| {
                for row in g[rows.start * n..rows.end * n].chunks_exact(n) {
                    db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
                }
            });
            Ok(db)
        })?;
        Ok((Some(g.clone()), Some(cpu_tensor(db, b.shape())?)))
    }
}

/// LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * w + b.
pub struct LayerNorm {
    pub eps: f32,
}

impl LayerNorm {
    /// Mean and 1 / std of one row.
    fn stats(&self, row: &[f32]) -> (f32, f32) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let n = l1.shape().dims().last().copied().unwrap_or(0);
        if n == 0 || w.len() != n || b.len() != n {
            candle_core::bail!("layer-norm: width {n}, weight {} and bias {}", w.len(), b.len());
        }
        let (y, _) = par_rows(x.len() / n, n, 0, |rows, out, _| {
            for (o, row) in out.chunks_exact_mut(n).zip(x[rows.start * n..rows.end * n].chunks_exact(n)) {
                let (mean, rstd) = self.stats(row);
                for k in 0..n {
                    o[k] = (row[k] - mean) * rstd * w[k] + b[k];
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = w.elem_count();
        let (dx, dw, db) = with_data(x, self.name(), |x| {
            with_data(w, self.name(), |w| {
                with_data(g, self.name(), |g| {
                    // The partial per block: dw in [..n], db in [n..].
                    let (dx, dwb) = par_rows(x.len() / n, n, 2 * n, |rows, dx, dwb| {
                        let mut xhat = vec![0f32; n];
                        let span = rows.start * n..rows.end * n;
                        let (dw, db) = dwb.split_at_mut(n);
                        for ((row, grow), dxr) in
                            x[span.clone()].chunks_exact(n).zip(g[span].chunks_exact(n)).zip(dx.chunks_exact_mut(n))
                        {
                            let (mean, rstd) = self.stats(row);
                            let (mut sum_d, mut sum_dx) = (0f32, 0f32);
                            for k in 0..n {
                                xhat[k] = (row[k] - mean) * rstd;
                                let d = grow[k] * w[k];
                                sum_d += d;
                                sum_dx += d * xhat[k];
                                dw[k] += grow[k] * xhat[k];
                                db[k] += grow[k];
                            }
                            let (mean_d, mean_dx) = (sum_d / n as f32, sum_dx / n as f32);
                            for k in 0..n {
                                dxr[k] = rstd * (grow[k] * w[k] - mean_d - xhat[k] * mean_dx);
                            }
                        }
                    });
                    let mut dw = dwb;
                    let db = dw.split_off(n);
                    Ok((dx, dw, db))
                })
            })
        })?;
        Ok((Some(cpu_tensor(dx, x.shape())?), Some(cpu_tensor(dw, w.shape())?), Some(cpu_tensor(db, w.shape())?)))
    }
}

/// Softmax over the last dimension.
pub struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = l.shape().dims().last().copied().unwrap_or(0);
        if n == 0 {
            candle_core::bail!("softmax: an empty last dimension");
        }
        let (y, _) = par_rows(x.len() / n, n, 0, |rows, out, _| {
            for (o, row) in out.chunks_exact_mut(n).zip(x[rows.start * n..rows.end * n].chunks_exact(n)) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                o.iter_mut().zip(row).for_each(|(o, v)| *o = exp(v - max));
                let inv = 1.0 / o.iter().sum::<f32>();
                o.iter_mut().for_each(|v| *v *= inv);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let n = y.dims().last().copied().unwrap_or(1);
        let dx = with_data(y, self.name(), |y| {
            with_data(g, self.name(), |g| {
                let (dx, _) = par_rows(y.len() / n, n, 0, |rows, dx, _| {
                    let span = rows.start * n..rows.end * n;
                    for ((yr, gr), d) in
                        y[span.clone()].chunks_exact(n).zip(g[span].chunks_exact(n)).zip(dx.chunks_exact_mut(n))
                    {
                        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                        d.iter_mut().zip(yr.iter().zip(gr)).for_each(|(d, (a, b))| *d = a * (b - dot));
                    }
                });
                Ok(dx)
            })
        })?;
        Ok(Some(cpu_tensor(dx, y.shape())?))
    }
}

/// CLIP's QuickGELU: x * sigmoid(1.702 x).
pub struct QuickGelu;

#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp(-1.702 * v))
}

impl CustomOp1 for QuickGelu {
    fn name(&self) -> &'static str {
        "quick-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let (y, _) = par_rows(x.len(), 1, 0, |rows, out, _| {
            out.iter_mut().zip(&x[rows]).for_each(|(o, &v)| *o = v * sigmoid(v));
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(x, self.name(), |x| {
            with_data(g, self.name(), |g| {
                let (dx, _) = par_rows(x.len(), 1, 0, |rows, out, _| {
                    for ((o, &v), &d) in out.iter_mut().zip(&x[rows.clone()]).zip(&g[rows.clone()]) {
                        let s = sigmoid(v);
                        *o = d * (s + 1.702 * v * s * (1.0 - s));
                    }
                });
                Ok(dx)
            })
        })?;
        Ok(Some(cpu_tensor(dx, x.shape())?))
    }
}

/// PyTorch's Linear, x [.., K] @ w^T + b with w [N, K]: one node instead of a matmul, a
/// transpose, two reshapes and a bias, each of whose gradients candle zero-fills and adds.
/// Rows are split over the thread pool; w's and b's gradients are summed over the blocks.
pub struct Linear;

impl Linear {
    /// (rows M, K, N) of x against w.
    fn sizes(x: &Shape, w: &Shape) -> Result<(usize, usize, usize)> {
        let (n, k) = w.dims2()?;
        let xk = x.dims().last().copied().unwrap_or(0);
        if xk != k || k == 0 {
            candle_core::bail!("linear: input width {xk}, weight {n} x {k}");
        }
        Ok((x.elem_count() / k, k, n))
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let (m, k, n) = Self::sizes(l1.shape(), l2.shape())?;
        if b.len() != n {
            candle_core::bail!("linear: bias of {} for {n} outputs", b.len());
        }
        let (y, _) = par_rows(m, n, 0, |rows, y, _| {
            let r = rows.len();
            gemm(r, n, k, y, Mat::rows(0, n), x, Mat::rows(rows.start * k, k), w, Mat::rows(0, k).t(), 1.0);
            for row in y.chunks_exact_mut(n) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        });
        let mut dims = l1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (m, k, n) = Self::sizes(x.shape(), w.shape())?;
        let (dx, dwb) = with_data(x, self.name(), |x| {
            with_data(w, self.name(), |w| {
                with_data(g, self.name(), |g| {
                    // Per block: dx = g W for its rows; dW += g^T x and db += g over them.
                    Ok(par_rows(m, k, n * k + n, |rows, dx, dwb| {
                        let (r, at) = (rows.len(), rows.start);
                        let (dw, db) = dwb.split_at_mut(n * k);
                        gemm(r, k, n, dx, Mat::rows(0, k), g, Mat::rows(at * n, n), w, Mat::rows(0, k), 1.0);
                        gemm(n, k, r, dw, Mat::rows(0, k), g, Mat::rows(at * n, n).t(), x, Mat::rows(at * k, k), 1.0);
                        for row in g[at * n..(at + r) * n].chunks_exact(n) {
                            db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
                        }
                    }))
                })
            })
        })?;
        let mut dw = dwb;
        let db = dw.split_off(n * k);
        Ok((Some(cpu_tensor(dx, x.shape())?), Some(cpu_tensor(dw, w.shape())?), Some(cpu_tensor(db, n)?)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_is_within_an_ulp_or_two_of_libm() {
        let mut worst = 0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let (ours, libm) = (super::exp(x) as f64, (x as f64).exp());
            worst = worst.max((ours - libm).abs() / libm);
        }
        assert!(worst < 3e-7, "relative error {worst}");
        // Saturates instead of overflowing to inf or NaN.
        assert!(super::exp(-1e4) >= 0.0 && super::exp(1e4).is_finite());
    }
}
