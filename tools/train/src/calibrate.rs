//! Calibration for static int8: the float full graph with the input of every weight MatMul made
//! a graph output, run by ONNX Runtime (safed's own session) over dataset samples, and the
//! min/max each input took. Ranges are keyed by weight name, so one calibration serves the full
//! graph and the encoder/fusion pair alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use safed::infer::ort::value::TensorRef;
use safed::infer::{runtime, SessionConfig};

use crate::data::batch::{make_batch, prepare};
use crate::data::Dataset;
use crate::onnx::builder::{encode, GraphBuilder, WeightMatmul};
use crate::onnx::ranges::{Range, Ranges};
use crate::onnx::safe::{self, Export};

/// One batch of model inputs: shape [B, F, 3, S, S], rgb, event.
pub type Inputs = (Vec<usize>, Vec<f32>, Vec<f32>);

/// The ranges of every weight MatMul's input over `batches` (each run on its own, so memory
/// stays that of one batch's activations). `e`'s weights are used in float whatever its
/// precision.
pub fn ranges(
    e: &Export,
    batches: impl IntoIterator<Item = Result<Inputs>>,
    session: &SessionConfig,
    source: String,
) -> Result<Ranges> {
    let mut g = GraphBuilder::new();
    g.weight_matmul = WeightMatmul::Calibrate;
    safe::full_graph(&mut g, e)?;
    // Several weights can read one activation (q, k and v): one output for each activation.
    let mut readers: Vec<(String, Vec<String>)> = Vec::new();
    for (value, weight) in std::mem::take(&mut g.taps) {
        match readers.iter_mut().find(|(v, _)| *v == value) {
            Some((_, names)) => names.push(weight),
            None => readers.push((value, vec![weight])),
        }
    }
    let outputs: Vec<String> = (0..readers.len()).map(|i| format!("calibration_{i}")).collect();
    for ((value, _), name) in readers.iter().zip(&outputs) {
        g.output_any_shape(value, name);
    }
    let model = encode(&g.finish("safe_calibration", &[]));
    let mut s = runtime::session(&model, session, "calibration graph")?;
    let mut found: BTreeMap<String, Range> = BTreeMap::new();
    let mut seen = 0;
    for batch in batches {
        let (shape, rgb, event) = batch?;
        let inputs = safed::infer::ort::inputs![
            "rgb" => TensorRef::from_array_view((shape.clone(), &rgb[..]))?,
            "event" => TensorRef::from_array_view((shape.clone(), &event[..]))?,
        ];
        let out = s.run(inputs).context("running the calibration graph")?;
        for ((_, weights), name) in readers.iter().zip(&outputs) {
            let (_, values) = out[name.as_str()].try_extract_tensor::<f32>()?;
            let Some(r) = Range::of(values) else { continue };
            for w in weights {
                found.entry(w.clone()).and_modify(|old| *old = old.union(r)).or_insert(r);
            }
        }
        seen += shape.first().copied().unwrap_or(0);
    }
    ensure!(seen > 0, "no samples to calibrate on");
    let missing: Vec<&String> =
        readers.iter().flat_map(|(_, w)| w).filter(|w| !found.contains_key(w.as_str())).collect();
    ensure!(missing.is_empty(), "calibration saw no finite value at the input of {missing:?}");
    Ok(Ranges { ranges: found, source })
}

/// Which samples to calibrate on.
#[derive(Debug, Clone)]
pub struct CalibrationSet {
    /// A dataset of any layout safed reads.
    pub root: PathBuf,
    pub split: String,
    /// How many samples, evenly spaced over the split.
    pub samples: usize,
}

/// Ranges from samples of a dataset split, evenly spaced over it (so every class present in
/// order gets its share), read and preprocessed as evaluation reads them.
pub fn ranges_from_dataset(e: &Export, set: &CalibrationSet, session: &SessionConfig) -> Result<Ranges> {
    let (root, split, count) = (set.root.as_path(), set.split.as_str(), set.samples);
    ensure!(count > 0, "--calibration-samples must be at least 1");
    let mut data = Dataset::open_for(root, split, e.config.events)?;
    ensure!(!data.samples.is_empty(), "{}: the {split} split has no samples to calibrate on", root.display());
    if data.labels != e.labels {
        eprintln!(
            "safe-train: warning: {}: the dataset names other classes than the model; calibrating on its images anyway",
            root.display()
        );
    }
    let total = data.samples.len();
    let n = count.min(total);
    data.samples = (0..n).map(|i| data.samples[i * total / n].clone()).collect();
    let c = e.config;
    let prepared = prepare(&data, c.image_size as u32)?;
    let batches = prepared.iter().map(|p| {
        let b = make_batch(&[p], c.frames as usize, c.image_size as u32, None, &Device::Cpu)?;
        let shape = b.rgb.dims().to_vec();
        Ok((shape, b.rgb.flatten_all()?.to_vec1()?, b.event.flatten_all()?.to_vec1()?))
    });
    let source = format!("min/max over {n} samples of {} ({split})", root.display());
    ranges(e, batches, session, source)
}
