//! CLIP weights from other sources, renamed to OpenAI's names (the names the authors'
//! checkpoint and our graphs use): OpenAI's own `.pt` / `.safetensors`, and Hugging Face's
//! `CLIPModel` safetensors (`openai/clip-vit-base-patch16`), whose separate q/k/v projections
//! are packed into `in_proj` and whose projections are transposed.

use std::collections::HashMap;

use anyhow::{Context, Result};

use crate::tensor::Tensor;

fn concat(parts: [&Tensor; 3]) -> Tensor {
    let mut dims = parts[0].dims.clone();
    dims[0] = parts.iter().map(|p| p.dims[0]).sum();
    Tensor { dims, data: parts.iter().flat_map(|p| p.data.iter().copied()).collect() }
}

/// True if the names are Hugging Face's.
pub fn is_hf(names: &HashMap<String, Tensor>) -> bool {
    names.keys().any(|k| k.starts_with("vision_model.") || k.starts_with("text_model."))
}

/// Hugging Face CLIPModel names -> OpenAI CLIP names.
pub fn from_hf(hf: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let get = |k: &str| hf.get(k).with_context(|| format!("Hugging Face CLIP weights have no {k:?}"));
    let mut out = HashMap::new();
    let mut put = |k: String, t: Tensor| {
        out.insert(k, t);
    };
    for (tower, block_prefix) in
        [("vision_model", "visual.transformer.resblocks"), ("text_model", "transformer.resblocks")]
    {
        let e = format!("{tower}.embeddings");
        if tower == "vision_model" {
            put("visual.conv1.weight".into(), get(&format!("{e}.patch_embedding.weight"))?.clone());
            put("visual.class_embedding".into(), get(&format!("{e}.class_embedding"))?.clone());
            put("visual.positional_embedding".into(), get(&format!("{e}.position_embedding.weight"))?.clone());
            for (hf_name, name) in [("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")] {
                for p in ["weight", "bias"] {
                    put(format!("visual.{name}.{p}"), get(&format!("{tower}.{hf_name}.{p}"))?.clone());
                }
            }
        } else {
            put("token_embedding.weight".into(), get(&format!("{e}.token_embedding.weight"))?.clone());
            put("positional_embedding".into(), get(&format!("{e}.position_embedding.weight"))?.clone());
            for p in ["weight", "bias"] {
                put(format!("ln_final.{p}"), get(&format!("{tower}.final_layer_norm.{p}"))?.clone());
            }
        }
        for k in 0.. {
            let l = format!("{tower}.encoder.layers.{k}");
            if !hf.contains_key(&format!("{l}.layer_norm1.weight")) {
                break;
            }
            let b = format!("{block_prefix}.{k}");
            for p in ["weight", "bias"] {
                let qkv = [
                    get(&format!("{l}.self_attn.q_proj.{p}"))?,
                    get(&format!("{l}.self_attn.k_proj.{p}"))?,
                    get(&format!("{l}.self_attn.v_proj.{p}"))?,
                ];
                put(format!("{b}.attn.in_proj_{p}"), concat(qkv));
                for (hf_name, name) in [
                    ("self_attn.out_proj", "attn.out_proj"),
                    ("layer_norm1", "ln_1"),
                    ("layer_norm2", "ln_2"),
                    ("mlp.fc1", "mlp.c_fc"),
                    ("mlp.fc2", "mlp.c_proj"),
                ] {
                    put(format!("{b}.{name}.{p}"), get(&format!("{l}.{hf_name}.{p}"))?.clone());
                }
            }
        }
    }
    // Hugging Face stores the projections as Linear weights [out, in]; OpenAI as [in, out].
    put("visual.proj".into(), get("visual_projection.weight")?.transposed()?);
    put("text_projection".into(), get("text_projection.weight")?.transposed()?);
    Ok(out)
}

/// Whether an OpenAI-named key belongs to CLIP (not to the fusion model).
pub fn is_clip_name(name: &str) -> bool {
    name.starts_with("visual.")
        || name.starts_with("transformer.")
        || name.starts_with("ln_final.")
        || ["token_embedding.weight", "positional_embedding", "text_projection", "logit_scale"].contains(&name)
}
