//! `safed bench --model Q.onnx --against M.onnx --rgb-tensor R.npy --event-tensor E.npy`: what a
//! quantised (or otherwise rewritten) graph costs in answers before it is deployed: top-1
//! agreement and log-prob drift on the given samples ([`crate::infer::parity`]).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::npy::read_npy;
use crate::infer::parity::{compare, Parity};
use crate::infer::{SafeModel, SessionConfig};

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    against: String,
    top1_agreement: f64,
    #[serde(flatten)]
    parity: &'a Parity,
}

/// `configs`: how `model` and `against` are loaded (they differ in backend with --against-backend).
pub fn run(
    model: &Path,
    against: &Path,
    rgb: &Path,
    event: &Path,
    configs: (&SessionConfig, &SessionConfig),
    json: bool,
) -> Result<()> {
    let mut a = SafeModel::load(model, configs.0)?;
    let mut b = SafeModel::load(against, configs.1)?;
    let per_sample = a.frames * a.image_len();
    let (rgb, event) = (read_npy(rgb, per_sample)?, read_npy(event, per_sample)?);
    let parity = compare(&mut a, &mut b, &rgb, &event)
        .with_context(|| format!("comparing {} against {}", model.display(), against.display()))?;
    let report = Report {
        model: model.display().to_string(),
        against: against.display().to_string(),
        top1_agreement: parity.top1_agree as f64 / parity.samples as f64,
        parity: &parity,
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "{} against {}: top-1 agrees on {}/{} samples ({:.1}%), log-prob drift max {:.4}, mean of per-sample max {:.4}",
            report.model,
            report.against,
            parity.top1_agree,
            parity.samples,
            100.0 * report.top1_agreement,
            parity.max_log_prob_drift,
            parity.mean_max_log_prob_drift
        )?;
    }
    Ok(())
}
