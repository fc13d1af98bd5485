//! Named float tensors, loaded from the authors' checkpoints (torch.save zip pickles, read by
//! candle's pickle reader: no Python at run time). Names are kept as in the checkpoint, less
//! the `module.` prefix DistributedDataParallel adds.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::DType;

use crate::clip_names;
use crate::tensor::Tensor;

pub struct Weights {
    source: String,
    map: HashMap<String, Tensor>,
}

/// Fusion-model keys the SAFE forward never reads (the timm ViT it was cut from, and layers
/// the authors define but do not use).
const UNUSED: &[&str] = &["vit.", "weight_layer.", "remain_weight_layer.", "bn."];

fn to_tensor(t: &candle_core::Tensor) -> candle_core::Result<Tensor> {
    let dims = t.dims().iter().map(|&d| d as i64).collect();
    let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Tensor { dims, data })
}

/// Every tensor of a `.safetensors` file, or of a torch file holding its state dict at the top
/// level or under `model` / `state_dict`, less DistributedDataParallel's `module.` prefix.
fn read_state_dict(path: &Path, source: &str) -> Result<HashMap<String, Tensor>> {
    let raw: Vec<(String, candle_core::Tensor)> = if path.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("{source}: not a readable safetensors file"))?
            .into_iter()
            .collect()
    } else {
        let mut found = Vec::new();
        for key in [None, Some("model"), Some("state_dict")] {
            found = candle_core::pickle::read_all_with_key(path, key)
                .with_context(|| format!("{source}: not a readable torch file"))?;
            if !found.is_empty() {
                break;
            }
        }
        found
    };
    let mut map = HashMap::new();
    for (name, t) in raw {
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        map.insert(name.clone(), to_tensor(&t).with_context(|| format!("{source}: tensor {name}"))?);
    }
    Ok(map)
}

impl Weights {
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.map.get(name).with_context(|| format!("{}: no tensor {name:?}", self.source))
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A 2-D weight, transposed: PyTorch's Linear [out, in] as MatMul's [in, out].
    pub fn linear_t(&self, name: &str) -> Result<Tensor> {
        self.get(name)?.transposed().with_context(|| format!("{}: {name}", self.source))
    }

    /// The first dimension of `name`.
    pub fn dim(&self, name: &str, axis: usize) -> Result<i64> {
        let t = self.get(name)?;
        t.dims.get(axis).copied().with_context(|| format!("{}: {name} has no axis {axis}", self.source))
    }

    /// CLIP weights from OpenAI (`.pt`, or `.safetensors` with OpenAI's names) or Hugging Face
    /// (`CLIPModel` safetensors), renamed to OpenAI's names.
    pub fn load_clip(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let map = read_state_dict(path, &source)?;
        let map =
            if clip_names::is_hf(&map) { clip_names::from_hf(&map).with_context(|| source.clone())? } else { map };
        let map: HashMap<String, Tensor> = map.into_iter().filter(|(k, _)| clip_names::is_clip_name(k)).collect();
        if !map.contains_key("visual.conv1.weight") || !map.contains_key("token_embedding.weight") {
            bail!("{source}: no CLIP vision and text weights found (expected OpenAI or Hugging Face CLIP names)");
        }
        Ok(Weights { source, map })
    }

    /// A timm ViT checkpoint (`.safetensors`, or a torch file holding the state dict at the
    /// top level or under `model` / `state_dict`).
    pub fn load_timm(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let map = read_state_dict(path, &source)?;
        Ok(Weights { source, map })
    }

    /// The highest N of `blocks.N.*` (a timm ViT's last block).
    pub fn last_block(&self) -> Option<usize> {
        self.map.keys().filter_map(|k| k.strip_prefix("blocks.")?.split('.').next()?.parse().ok()).max()
    }

    /// Replaces every CLIP tensor by `clip`'s (the fusion model's stay).
    pub fn replace_clip(&mut self, clip: Weights) {
        self.map.retain(|k, _| !clip_names::is_clip_name(k));
        self.map.extend(clip.map);
        self.source = format!("{} + CLIP from {}", self.source, clip.source);
    }

    pub fn from_map(source: &str, map: HashMap<String, Tensor>) -> Self {
        Weights { source: source.to_string(), map }
    }

    /// Every tensor, by name (for writing the weights out).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.map.iter()
    }

    /// The authors' checkpoint: `model_state_dict` (fusion, `module.`-prefixed) and
    /// `ViT_model_state_dict` (CLIP).
    pub fn load_authors_checkpoint(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let mut map = HashMap::new();
        for key in ["model_state_dict", "ViT_model_state_dict"] {
            let tensors = candle_core::pickle::read_all_with_key(path, Some(key))
                .with_context(|| format!("{source}: reading {key} (expected the authors' torch.save checkpoint)"))?;
            if tensors.is_empty() {
                bail!("{source}: {key} holds no tensors (is this the authors' checkpoint?)");
            }
            for (name, t) in tensors {
                let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
                if key == "model_state_dict" && UNUSED.iter().any(|p| name.starts_with(p)) {
                    continue;
                }
                let tensor = to_tensor(&t).with_context(|| format!("{source}: tensor {name}"))?;
                map.insert(name, tensor);
            }
        }
        Ok(Weights { source, map })
    }
}
