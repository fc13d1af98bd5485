//! AdamW, a cosine schedule with linear warm-up, and gradient-norm clipping. candle-nn's AdamW
//! keeps its moments private, and a resumable checkpoint needs them, so the few lines live here.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use crate::model::Params;

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: usize,
    /// (name, parameter, first moment, second moment).
    state: Vec<(String, Var, Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(params: &Params, weight_decay: f64) -> Result<Self> {
        let state = params
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.clone(), v.zeros_like()?, v.zeros_like()?)))
            .collect::<Result<_>>()?;
        Ok(AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, state })
    }

    /// One update with learning rate `lr`; gradients are multiplied by `grad_scale` first
    /// (the clipping factor).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        for (_, var, m, v) in &mut self.state {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached: a gradient keeps its graph, and the moments would chain every step's.
            let g = (g.detach() * grad_scale)?;
            *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + self.eps)?)?;
            let decayed = (var.as_tensor().detach() * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for checkpoints.
    pub fn moments(&self) -> Vec<(String, Tensor)> {
        self.state
            .iter()
            .flat_map(|(k, _, m, v)| [(format!("m.{k}"), m.clone()), (format!("v.{k}"), v.clone())])
            .collect()
    }

    pub fn restore(&mut self, step: usize, moments: &std::collections::HashMap<String, Tensor>) -> anyhow::Result<()> {
        use anyhow::Context;
        self.step = step;
        for (k, _, m, v) in &mut self.state {
            *m = moments.get(&format!("m.{k}")).with_context(|| format!("optimizer state has no m.{k}"))?.clone();
            *v = moments.get(&format!("v.{k}")).with_context(|| format!("optimizer state has no v.{k}"))?.clone();
        }
        Ok(())
    }
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
