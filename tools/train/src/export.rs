//! Turning weights into the ONNX graphs safed runs: the text features are computed once (the
//! text encoder as its own graph, run with ONNX Runtime), then the full graph and the split
//! pair (per-image encoder + fusion) are written with the metadata safed checks at load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use safed::infer::ort::value::TensorRef;
use safed::infer::{runtime, SessionConfig};

use crate::calibrate::{self, CalibrationSet};
use crate::config::SafeConfig;
use crate::model::Safe;
use crate::onnx::builder::{encode, GraphBuilder, WeightMatmul};
use crate::onnx::fp16;
use crate::onnx::ranges::Ranges;
use crate::onnx::safe::{self, Export, Precision};
use crate::weights::Weights;

pub const MEAN: [f32; 3] = [0.5, 0.5, 0.5];
pub const STD: [f32; 3] = [0.5, 0.5, 0.5];

/// Class names, one per line (blank lines ignored).
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the labels file", path.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Tokenising lives with the tokenizer; the graphs' callers know it from here.
pub use crate::tokenizer::tokens;

/// CLIP text features of the labels, [C, E] row-major.
pub fn text_features(w: &Weights, c: &SafeConfig, labels: &[String], session: &SessionConfig) -> Result<Vec<f32>> {
    let (rows, eot) = tokens(labels, c.context)?;
    let mut g = GraphBuilder::new();
    safe::text_graph(&mut g, w, c)?;
    let model = encode(&g.finish("clip_text", &[]));
    let mut s = runtime::session(&model, session, "CLIP text encoder")?;
    let n = labels.len();
    let tokens = TensorRef::from_array_view(([n, c.context as usize], &rows[..]))?;
    let eot = TensorRef::from_array_view(([n], &eot[..]))?;
    let out = s.run(safed::infer::ort::inputs!["tokens" => tokens, "eot" => eot])?;
    let (_, data) = out["text_features"].try_extract_tensor::<f32>()?;
    Ok(data.to_vec())
}

/// Which graph to write.
#[derive(Debug, Clone, Copy)]
pub enum Graph {
    Full,
    Encoder,
    Fusion,
}

impl Graph {
    fn role(self) -> &'static str {
        match self {
            Graph::Full => "full",
            Graph::Encoder => "encoder",
            Graph::Fusion => "fusion",
        }
    }
}

pub fn build(e: &Export, graph: Graph, source: &str) -> Result<Vec<u8>> {
    let mut g = GraphBuilder::new();
    g.weight_matmul = match (e.precision, e.calibration) {
        (Precision::Int8, _) => WeightMatmul::Int8Dynamic,
        (Precision::Int8Static, Some(r)) => WeightMatmul::Int8Static(Arc::new(r.clone())),
        (Precision::Int8Static, None) => {
            bail!("int8-static needs activation ranges: calibrate on samples (--calibrate DATA)")
        }
        _ => WeightMatmul::Float,
    };
    match graph {
        Graph::Full => safe::full_graph(&mut g, e)?,
        Graph::Encoder => safe::encoder_graph(&mut g, e)?,
        Graph::Fusion => safe::fusion_graph(&mut g, e)?,
    }
    let c = e.config;
    let meta = [
        ("safe.format_version", safed::infer::model::FORMAT_VERSION.to_string()),
        ("safe.role", graph.role().to_string()),
        ("safe.labels", serde_json::to_string(e.labels)?),
        ("safe.frames", c.frames.to_string()),
        ("safe.image_size", c.image_size.to_string()),
        ("safe.tokens", c.tokens.to_string()),
        ("safe.embed_dim", c.embed_dim.to_string()),
        ("safe.mean", serde_json::to_string(&MEAN)?),
        ("safe.std", serde_json::to_string(&STD)?),
        ("safe.events", c.events.name().to_string()),
        ("safe.config", serde_json::to_string(c)?),
        ("safe.source", source.to_string()),
        ("safe.weights", e.precision.name().to_string()),
    ];
    let mut meta: Vec<(String, String)> = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if let (Precision::Int8Static, Some(r)) = (e.precision, e.calibration) {
        meta.push(("safe.calibration".into(), r.source.clone()));
    }
    let mut model = g.finish(&format!("safe_{}", graph.role()), &meta);
    if e.precision == Precision::Fp16 {
        fp16::convert(&mut model)?;
    }
    Ok(encode(&model))
}

/// `model.onnx` -> `model.encoder.onnx` / `model.fusion.onnx`.
pub fn split_path(full: &Path, role: &str) -> PathBuf {
    let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    full.with_file_name(format!("{stem}.{role}.onnx"))
}

/// A trained model's graphs written to `out` (and, with `split`, its encoder/fusion pair): its
/// weights under the checkpoint's names, its labels' text features computed once. `checkpoint`
/// names where the model came from, in the graphs' `safe.source`.
pub fn write_model(
    model: &Safe,
    labels: &[String],
    out: &Path,
    split: bool,
    precision: Precision,
    calibrate: Option<&CalibrationSet>,
    checkpoint: &str,
) -> Result<Vec<PathBuf>> {
    let weights = model.params.to_weights(checkpoint)?;
    let text_features = text_features(&weights, &model.config, labels, &SessionConfig::default())?;
    let mut e = Export {
        weights: &weights,
        config: &model.config,
        labels,
        text_features: &text_features,
        precision,
        calibration: None,
    };
    let ranges = calibration(&e, calibrate)?;
    e.calibration = ranges.as_ref();
    write_all(&e, out, split, &format!("safe-train checkpoint {checkpoint}"))
}

/// The activation ranges `e`'s precision needs: calibrated on `from` for int8-static, none
/// otherwise (calibration samples given for another precision are a mistake worth saying).
pub fn calibration(e: &Export, from: Option<&CalibrationSet>) -> Result<Option<Ranges>> {
    match (e.precision, from) {
        (Precision::Int8Static, Some(set)) => {
            let t = std::time::Instant::now();
            let r = calibrate::ranges_from_dataset(e, set, &SessionConfig::default())?;
            eprintln!(
                "calibrated {} activation ranges ({}) in {:.1} s",
                r.ranges.len(),
                r.source,
                t.elapsed().as_secs_f64()
            );
            Ok(Some(r))
        }
        (Precision::Int8Static, None) => {
            bail!("int8-static needs activation ranges: give samples to calibrate on (--calibrate DATA)")
        }
        (p, Some(_)) => bail!("--calibrate is for int8-static; {} has no activation ranges", p.name()),
        (_, None) => Ok(None),
    }
}

/// Writes the full graph to `out` and, with `split`, the encoder/fusion pair beside it.
pub fn write_all(e: &Export, out: &Path, split: bool, source: &str) -> Result<Vec<PathBuf>> {
    ensure!(
        e.labels.len() as i64 == e.config.classes,
        "{} labels for a {}-class model",
        e.labels.len(),
        e.config.classes
    );
    let mut written = vec![out.to_path_buf()];
    std::fs::write(out, build(e, Graph::Full, source)?).with_context(|| format!("writing {}", out.display()))?;
    if split {
        for (graph, role) in [(Graph::Encoder, "encoder"), (Graph::Fusion, "fusion")] {
            let path = split_path(out, role);
            std::fs::write(&path, build(e, graph, source)?).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}
