//! What a rewritten graph (int8, fp16, another quantizer's) costs in answers: two full graphs
//! classify the same samples, and the comparison counts top-1 agreement and log-prob drift.

use serde::Serialize;

use super::model::Role;
use super::{ModelError, SafeModel};

#[derive(Debug, Clone, Serialize, Default)]
pub struct Parity {
    pub samples: usize,
    /// Samples whose top class is the same in both.
    pub top1_agree: usize,
    /// max over samples and classes of |log_prob(a) - log_prob(b)|.
    pub max_log_prob_drift: f32,
    /// mean over samples of each sample's largest drift.
    pub mean_max_log_prob_drift: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    #[error("the {which} graph is the {role} graph of a split pair: compare full graphs (NAME.onnx)")]
    NotFull { which: &'static str, role: &'static str },
    #[error("the two graphs differ in frames, image size or labels")]
    Mismatch,
    #[error("{rgb} RGB values and {event} event values are not the same whole number of samples of {per_sample}")]
    Inputs { rgb: usize, event: usize, per_sample: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

/// Classifies every sample of `rgb` / `event` ([B, F, 3, S, S]) with both graphs, one sample at
/// a time (memory stays one sample's activations whatever B is).
pub fn compare(a: &mut SafeModel, b: &mut SafeModel, rgb: &[f32], event: &[f32]) -> Result<Parity, ParityError> {
    for (which, m) in [("first", &*a), ("second", &*b)] {
        if m.role != Role::Full {
            return Err(ParityError::NotFull { which, role: m.role.name() });
        }
    }
    if (a.frames, a.image_size, &a.labels) != (b.frames, b.image_size, &b.labels) {
        return Err(ParityError::Mismatch);
    }
    let per_sample = a.frames * a.image_len();
    if rgb.len() != event.len() || rgb.is_empty() || !rgb.len().is_multiple_of(per_sample) {
        return Err(ParityError::Inputs { rgb: rgb.len(), event: event.len(), per_sample });
    }
    let mut p = Parity::default();
    for (r, e) in rgb.chunks(per_sample).zip(event.chunks(per_sample)) {
        let (x, y) = (a.classify(r, e)?, b.classify(r, e)?);
        let (x, y) = (&x[0], &y[0]);
        let drift = x.iter().zip(y).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
        p.samples += 1;
        p.top1_agree += usize::from(argmax(x) == argmax(y));
        p.max_log_prob_drift = p.max_log_prob_drift.max(drift);
        p.mean_max_log_prob_drift += drift;
    }
    p.mean_max_log_prob_drift /= p.samples as f32;
    Ok(p)
}
