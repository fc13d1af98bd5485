//! Fused CPU ops with their own backward (candle's custom-op traits): layer norm, softmax over
//! the last dimension, QuickGELU and a bias added over rows. Written from basic ops, each is
//! 4 to 10 tensors with their allocations, and the gradient of a parameter broadcast over rows
//! (a bias, a norm's scale, a positional embedding) goes through candle's general reduction,
//! which divides per element: a third of a training step's backward. Each op here is one pass
//! over its rows forward and one backward. On other devices the callers keep the composite
//! versions (`layers.rs`), which the tests also hold these to, beside finite differences.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};

/// The contiguous f32 elements of a CPU storage seen through `layout`.
fn slice<'a>(s: &'a CpuStorage, layout: &Layout, op: &'static str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: needs a contiguous f32 input"),
    }
}

/// Runs `f` on the contiguous f32 elements of `t` (a CPU tensor).
fn with_data<R>(t: &Tensor, op: &'static str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout, op)?),
        _ => candle_core::bail!("{op}: runs on the CPU only"),
    }
}

fn cpu_tensor(data: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
}

/// Sums `rows` consecutive blocks of `width` elements into one block.
fn sum_rows(data: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0f32; width];
    for row in data.chunks_exact(width) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
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
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(b.len()) {
            y.extend(row.iter().zip(b).map(|(a, c)| a + c));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = with_data(g, self.name(), |g| Ok(sum_rows(g, b.elem_count())))?;
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
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            let (mean, rstd) = self.stats(row);
            y.extend(row.iter().zip(w.iter().zip(b)).map(|(v, (w, b))| (v - mean) * rstd * w + b));
        }
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
                    let (mut dx, mut dw, mut db) = (Vec::with_capacity(x.len()), vec![0f32; n], vec![0f32; n]);
                    let mut xhat = vec![0f32; n];
                    for (row, grow) in x.chunks_exact(n).zip(g.chunks_exact(n)) {
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
                        dx.extend((0..n).map(|k| rstd * (grow[k] * w[k] - mean_d - xhat[k] * mean_dx)));
                    }
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
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let at = y.len();
            y.extend(row.iter().map(|v| (v - max).exp()));
            let inv = 1.0 / y[at..].iter().sum::<f32>();
            y[at..].iter_mut().for_each(|v| *v *= inv);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let n = y.dims().last().copied().unwrap_or(1);
        let dx = with_data(y, self.name(), |y| {
            with_data(g, self.name(), |g| {
                let mut dx = Vec::with_capacity(y.len());
                for (yr, gr) in y.chunks_exact(n).zip(g.chunks_exact(n)) {
                    let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    dx.extend(yr.iter().zip(gr).map(|(a, b)| a * (b - dot)));
                }
                Ok(dx)
            })
        })?;
        Ok(Some(cpu_tensor(dx, y.shape())?))
    }
}

/// CLIP's QuickGELU: x * sigmoid(1.702 x).
pub struct QuickGelu;

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-1.702 * v).exp())
}

impl CustomOp1 for QuickGelu {
    fn name(&self) -> &'static str {
        "quick-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        Ok((CpuStorage::F32(x.iter().map(|&v| v * sigmoid(v)).collect()), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(x, self.name(), |x| {
            with_data(g, self.name(), |g| {
                Ok(x.iter()
                    .zip(g)
                    .map(|(&v, &d)| {
                        let s = sigmoid(v);
                        d * (s + 1.702 * v * s * (1.0 - s))
                    })
                    .collect())
            })
        })?;
        Ok(Some(cpu_tensor(dx, x.shape())?))
    }
}
