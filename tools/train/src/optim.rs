//! AdamW, a cosine schedule with linear warm-up, and gradient-norm clipping. candle-nn's AdamW
//! keeps its moments private, and a resumable checkpoint needs them, so the few lines live here.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use crate::model::fused::with_data;
use crate::model::Params;

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: usize,
    /// (name, parameter, first moment, second moment), moments flat in the parameter's order.
    state: Vec<(String, Var, Vec<f32>, Vec<f32>)>,
}

/// One AdamW update of a parameter, in place: one pass over the parameter, its gradient and
/// both moments (as candle ops it is eleven tensors per parameter, each a pass and an
/// allocation).
struct Update<'a> {
    grad: &'a [f32],
    m: std::cell::RefCell<&'a mut [f32]>,
    v: std::cell::RefCell<&'a mut [f32]>,
    /// grad_scale, beta1, beta2, 1 / bias correction 1, 1 / bias correction 2, eps, lr,
    /// 1 - lr * weight decay.
    k: [f32; 8],
}

impl candle_core::InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, s: &mut candle_core::CpuStorage, l: &candle_core::Layout) -> Result<()> {
        let [scale, b1, b2, c1, c2, eps, lr, decay] = self.k;
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("adamw: a non-contiguous parameter") };
        let p = match s {
            candle_core::CpuStorage::F32(d) => &mut d[a..b],
            _ => candle_core::bail!("adamw: parameters are f32"),
        };
        if p.len() != self.grad.len() || p.len() != m.len() || p.len() != v.len() {
            candle_core::bail!("adamw: parameter, gradient and moments differ in size");
        }
        for (((p, &g), m), v) in p.iter_mut().zip(self.grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * scale;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p = *p * decay - lr * (*m * c1) / ((*v * c2).sqrt() + eps);
        }
        Ok(())
    }
}

impl AdamW {
    pub fn new(params: &Params, weight_decay: f64) -> Result<Self> {
        let state = params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), vec![0f32; v.elem_count()], vec![0f32; v.elem_count()]))
            .collect();
        Ok(AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, state })
    }

    /// One update with learning rate `lr`; gradients are multiplied by `grad_scale` first
    /// (the clipping factor).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        let k = [grad_scale, b1, b2, 1.0 / c1, 1.0 / c2, self.eps, lr, 1.0 - lr * self.weight_decay].map(|x| x as f32);
        for (_, var, m, v) in &mut self.state {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            with_data(g, "adamw", |grad| {
                let update = Update { grad, m: std::cell::RefCell::new(m), v: std::cell::RefCell::new(v), k };
                var.as_tensor().inplace_op1(&update)
            })?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for checkpoints.
    pub fn moments(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(2 * self.state.len());
        for (k, var, m, v) in &self.state {
            let shape = var.shape();
            out.push((format!("m.{k}"), Tensor::from_slice(m, shape, var.device())?));
            out.push((format!("v.{k}"), Tensor::from_slice(v, shape, var.device())?));
        }
        Ok(out)
    }

    pub fn restore(&mut self, step: usize, moments: &std::collections::HashMap<String, Tensor>) -> anyhow::Result<()> {
        use anyhow::Context;
        self.step = step;
        for (k, var, m, v) in &mut self.state {
            for (prefix, dst) in [("m", m), ("v", v)] {
                let t = moments
                    .get(&format!("{prefix}.{k}"))
                    .with_context(|| format!("optimizer state has no {prefix}.{k}"))?;
                anyhow::ensure!(
                    t.dims() == var.dims(),
                    "optimizer state {prefix}.{k} is {:?}, the parameter {:?}",
                    t.dims(),
                    var.dims()
                );
                *dst = t.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }
}

/// The factor that scales the gradients of `params` to a global L2 norm of at most `max_norm`.
pub fn clip_factor(params: &Params, grads: &GradStore, max_norm: f64) -> Result<f64> {
    let norm = grad_norm(params, grads)?;
    Ok(if norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 })
}

/// The global L2 norm of the gradients of `params`.
pub fn grad_norm(params: &Params, grads: &GradStore) -> Result<f64> {
    let mut sum = 0f64;
    for (_, v) in params.iter() {
        if let Some(g) = grads.get(v.as_tensor()) {
            sum += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    Ok(sum.sqrt())
}

/// Linear warm-up to `base`, then cosine decay to 1% of it at `total`.
pub fn cosine_lr(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    let floor = 0.01 * base;
    floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((cosine_lr(1.0, 0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 9, 10, 100) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 100, 10, 100) - 0.01).abs() < 1e-12);
        assert!(cosine_lr(1.0, 50, 10, 100) < 0.6);
    }
}
