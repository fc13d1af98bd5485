//! SAFE in candle, op for op as shared/SAFE.md (the same ops as the ONNX graphs in
//! `crate::onnx::safe`, tied to them by the parity tests). Parameters keep the authors' names,
//! so one set of weights loads from their checkpoints, trains here and exports to ONNX.

pub mod attention;
pub mod fused;
mod gemm;
pub mod init;
pub mod layers;

use std::collections::BTreeMap;

use anyhow::Context;
use candle_core::{DType, Device, Result, Tensor, Var};

use crate::config::SafeConfig;
use crate::weights::Weights;
use layers::{attention, clip_block, layer_norm, linear, log_softmax_last, vit_block};

/// Trainable tensors by the authors' names.
#[derive(Clone)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

impl Params {
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.vars
            .get(name)
            .map(|v| v.as_tensor())
            .ok_or_else(|| candle_core::Error::Msg(format!("SAFE parameter {name:?} is missing")))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Number of scalars.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    pub fn from_tensors(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Result<Self> {
        let vars = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, Var::from_tensor(&t.to_dtype(DType::F32)?)?)))
            .collect::<Result<_>>()?;
        Ok(Params { vars })
    }

    pub fn from_weights(w: &Weights, device: &Device) -> Result<Self> {
        Self::from_tensors(
            w.iter()
                .map(|(k, t)| {
                    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
                    Ok((k.clone(), Tensor::from_slice(&t.data, dims, device)?))
                })
                .collect::<Result<Vec<_>>>()?,
        )
    }

    /// The current values as [`Weights`], for the ONNX builder.
    pub fn to_weights(&self, source: &str) -> anyhow::Result<Weights> {
        let mut map = std::collections::HashMap::new();
        for (k, v) in &self.vars {
            let dims = v.dims().iter().map(|&d| d as i64).collect();
            let data = v.flatten_all()?.to_vec1::<f32>().with_context(|| format!("parameter {k}"))?;
            map.insert(k.clone(), crate::tensor::Tensor { dims, data });
        }
        Ok(Weights::from_map(source, map))
    }

    /// Copies `other`'s values into the tensors of the same name (resume, best-model restore).
    pub fn assign(&self, other: &BTreeMap<String, Tensor>) -> anyhow::Result<()> {
        for (k, v) in &self.vars {
            let t = other.get(k).with_context(|| format!("checkpoint has no tensor {k}"))?;
            anyhow::ensure!(
                t.dims() == v.dims(),
                "checkpoint tensor {k} is {:?}, the model's is {:?}",
                t.dims(),
                v.dims()
            );
            v.set(t)?;
        }
        Ok(())
    }
}

/// The class names as CLIP token ids, cut to the longest name (the causal mask makes the
/// features equal to those on all 77 positions: SAFE.md).
#[derive(Debug, Clone)]
pub struct TextTokens {
    /// [C, L] u32.
    pub ids: Tensor,
    /// [C] u32: c * L + the EOT position of row c.
    pub eot: Tensor,
}

impl TextTokens {
    pub fn new(labels: &[String], context: i64, device: &Device) -> anyhow::Result<Self> {
        let (rows, eot) = crate::tokenizer::tokens(labels, context)?;
        let ctx = context as usize;
        let len = eot.iter().enumerate().map(|(c, &e)| e as usize - c * ctx + 1).max().unwrap_or(1);
        let mut ids = Vec::with_capacity(labels.len() * len);
        for row in rows.chunks(ctx) {
            ids.extend(row[..len].iter().map(|&v| v as u32));
        }
        let eot: Vec<u32> = eot.iter().enumerate().map(|(c, &e)| (c * len + (e as usize - c * ctx)) as u32).collect();
        Ok(TextTokens {
            ids: Tensor::from_vec(ids, (labels.len(), len), device)?,
            eot: Tensor::from_vec(eot, labels.len(), device)?,
        })
    }
}

pub struct Safe {
    pub params: Params,
    pub config: SafeConfig,
}

impl Safe {
    /// CLIP's vision encoder: images [N, 3, S, S] -> tokens [N, T, E].
    pub fn encode_images(&self, images: &Tensor) -> Result<Tensor> {
        let (c, p) = (&self.config, &self.params);
        let (n, _, s, _) = images.dims4()?;
        let (patch, width) = (c.patch as usize, c.vision_width as usize);
        let g = s / patch;
        // The stride-P convolution as a matmul over flattened patches (channel, row, column),
        // the order of conv1.weight's [W, 3, P, P].
        let patches = images.reshape((n, 3, g, patch, g, patch))?.permute((0, 2, 4, 1, 3, 5))?.reshape((
            n,
            g * g,
            3 * patch * patch,
        ))?;
        let conv = p.get("visual.conv1.weight")?.reshape((width, 3 * patch * patch))?;
        let x = layers::matmul_rows(&patches, &conv.t()?)?;
        let cls = p.get("visual.class_embedding")?.reshape((1, 1, width))?.broadcast_as((n, 1, width))?;
        let x = layers::add_bias(&Tensor::cat(&[&cls, &x], 1)?, p.get("visual.positional_embedding")?)?;
        let mut x = layer_norm(p, &x, "visual.ln_pre", 1e-5)?;
        for k in 0..c.vision_layers {
            x = clip_block(p, &x, &format!("visual.transformer.resblocks.{k}"), c.vision_heads as usize, false)?;
        }
        let x = layer_norm(p, &x, "visual.ln_post", 1e-5)?;
        layers::matmul_rows(&x, p.get("visual.proj")?)
    }

    /// CLIP's text encoder on the class names -> [C, E].
    pub fn text_features(&self, t: &TextTokens) -> Result<Tensor> {
        let (c, p) = (&self.config, &self.params);
        let (classes, len) = t.ids.dims2()?;
        let x = p.get("token_embedding.weight")?.index_select(&t.ids.flatten_all()?, 0)?;
        let width = c.text_width as usize;
        let pos = p.get("positional_embedding")?.narrow(0, 0, len)?;
        let mut x = layers::add_bias(&x.reshape((classes, len, width))?, &pos)?;
        for k in 0..c.text_layers {
            x = clip_block(p, &x, &format!("transformer.resblocks.{k}"), c.text_heads as usize, true)?;
        }
        let x = layer_norm(p, &x, "ln_final", 1e-5)?;
        x.reshape((classes * len, width))?.index_select(&t.eot, 0)?.matmul(p.get("text_projection")?)
    }

    /// The fusion model: frame-averaged tokens [B, T, E] and text features [C, E] ->
    /// log-probabilities [B, C].
    pub fn fuse(&self, rgb: &Tensor, event: &Tensor, text: &Tensor) -> Result<Tensor> {
        let (c, p) = (&self.config, &self.params);
        let b = rgb.dim(0)?;
        let (classes, t_len, d) = (c.classes as usize, c.tokens as usize, c.fusion_dim as usize);
        let r = layers::add_bias(&linear(p, rgb, "visual_embed", true)?, p.get("rgb_embed")?)?;
        let e = layers::add_bias(&linear(p, event, "visual_embed", true)?, p.get("event_embed")?)?;
        let text = layers::add_bias(&linear(p, text, "word_embed", true)?.unsqueeze(0)?, p.get("tex_embed")?)?;
        let text = text.broadcast_as((b, classes, d))?;
        let x = Tensor::cat(&[&text, &r, &e], 1)?;
        let x = vit_block(p, &x, "blocks.0", c.fusion_heads as usize)?;
        let x = layer_norm(p, &x, "norm", 1e-6)?;
        let t = x.narrow(1, 0, classes)?;
        let both = x.narrow(1, classes, 2 * t_len)?;
        let out = self.self_attention(&both)?;
        let (vr, ve) = (out.narrow(1, 0, t_len)?, out.narrow(1, t_len, t_len)?);
        let enhanced = (&vr + &ve)?;
        let cross = (self.cross_attention(&t, &vr)? + self.cross_attention(&t, &ve)?)?;
        let cls = p.get("CLS_token")?.broadcast_as((b, c.cls_tokens as usize, d))?;
        let z = self.self_attention(&Tensor::cat(&[&enhanced, &cross, &cls], 1)?)?;
        let last = z.narrow(1, t_len + classes, c.cls_tokens as usize)?.reshape((b, c.cls_tokens as usize * d))?;
        log_softmax_last(&linear(p, &last, "fc1", true)?)
    }

    /// rgb, event [B, F, 3, S, S] -> log-probabilities [B, C].
    pub fn forward(&self, rgb: &Tensor, event: &Tensor, text: &TextTokens) -> Result<Tensor> {
        let (b, f, ch, s, _) = rgb.dims5()?;
        let images = Tensor::cat(&[rgb.reshape((b * f, ch, s, s))?, event.reshape((b * f, ch, s, s))?], 0)?;
        let tokens = self.encode_images(&images)?;
        let (_, t, e) = tokens.dims3()?;
        let mean = tokens.reshape((2, b, f, t, e))?.mean(2)?;
        self.fuse(&mean.get(0)?, &mean.get(1)?, &self.text_features(text)?)
    }

    fn self_attention(&self, x: &Tensor) -> Result<Tensor> {
        let p = &self.params;
        let q = linear(p, x, "self_attention.query", true)?;
        let k = linear(p, x, "self_attention.key", true)?;
        let v = linear(p, x, "self_attention.value", true)?;
        attention(&q, &k, &v, 1, None)
    }

    fn cross_attention(&self, t: &Tensor, y: &Tensor) -> Result<Tensor> {
        let p = &self.params;
        let q = linear(p, t, "cross_model.query", false)?;
        let k = linear(p, y, "cross_model.key", false)?;
        let v = linear(p, &k, "cross_model.value", false)?;
        attention(&q, &k, &v, 1, None)
    }
}
