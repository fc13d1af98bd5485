//! Training checkpoints: a folder with `weights.safetensors` (the authors' parameter names),
//! `optimizer.safetensors` (AdamW moments) and `state.json` (sizes, labels, options, progress).
//! `export` and `eval` need only the weights and state.json.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::SafeConfig;
use crate::fit_options::FitOptions;
use crate::model::{Params, Safe};
use crate::optim::AdamW;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub config: SafeConfig,
    pub labels: Vec<String>,
    pub options: FitOptions,
    /// Epochs completed.
    pub epoch: usize,
    pub step: usize,
    pub best_top1: f64,
    pub best_epoch: usize,
}

pub fn save(dir: &Path, params: &Params, opt: Option<&AdamW>, state: &State) -> Result<()> {
    // Write beside, then rename: a crash mid-save leaves the previous checkpoint intact.
    let tmp = dir.with_extension("partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let weights: HashMap<String, Tensor> = params.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    candle_core::safetensors::save(&weights, tmp.join("weights.safetensors"))?;
    if let Some(opt) = opt {
        let moments: HashMap<String, Tensor> = opt.moments()?.into_iter().collect();
        candle_core::safetensors::save(&moments, tmp.join("optimizer.safetensors"))?;
    }
    std::fs::write(tmp.join("state.json"), serde_json::to_string_pretty(state)?)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("moving the checkpoint to {}", dir.display()))?;
    Ok(())
}

pub fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a safe-train checkpoint (no readable state.json)", dir.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: bad state.json", path.display()))
}

/// The model stored in a checkpoint folder.
pub fn load_model(dir: &Path, device: &Device) -> Result<(Safe, State)> {
    let state = read_state(dir)?;
    let path = dir.join("weights.safetensors");
    let tensors =
        candle_core::safetensors::load(&path, device).with_context(|| format!("{}: unreadable", path.display()))?;
    let names = crate::model::init::names(&state.config);
    let mut picked = BTreeMap::new();
    for n in names {
        let t = tensors.get(&n).with_context(|| format!("{}: no tensor {n}", path.display()))?;
        picked.insert(n, t.clone());
    }
    let params = Params::from_tensors(picked)?;
    Ok((Safe { params, config: state.config.clone() }, state))
}

pub fn load_optimizer(dir: &Path, opt: &mut AdamW, step: usize, device: &Device) -> Result<()> {
    let path = dir.join("optimizer.safetensors");
    let moments =
        candle_core::safetensors::load(&path, device).with_context(|| format!("{}: unreadable", path.display()))?;
    opt.restore(step, &moments)
}
