//! Evaluation on evenly spaced frames (deterministic): top-1, top-5, per-class accuracy, the
//! confusion matrix, and each sample's prediction (to compare with safed on the same files).

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::data::batch::{make_batch, Prepared};
use crate::model::{layers, Safe, TextTokens};

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: usize,
    pub predicted: usize,
    pub log_probs: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub samples: usize,
    pub top1: f64,
    pub top5: f64,
    pub loss: f64,
    pub per_class: Vec<f64>,
    /// confusion[true][predicted].
    pub confusion: Vec<Vec<usize>>,
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
}

/// Runs the model on every prepared sample, `batch` at a time, without augmentation.
pub fn evaluate(model: &Safe, text: &TextTokens, data: &[Prepared], batch: usize, device: &Device) -> Result<Report> {
    let c = &model.config;
    let classes = c.classes as usize;
    // Text features do not depend on the images: once for the whole evaluation.
    let features = model.text_features(text)?.detach();
    let mut predictions = Vec::with_capacity(data.len());
    let mut loss_sum = 0.0;
    let refs: Vec<&Prepared> = data.iter().collect();
    for items in refs.chunks(batch.max(1)) {
        let b = make_batch(items, c.frames as usize, c.image_size as u32, None, device)?;
        let (bs, f, ch, s, _) = b.rgb.dims5()?;
        let images = Tensor::cat(&[b.rgb.reshape((bs * f, ch, s, s))?, b.event.reshape((bs * f, ch, s, s))?], 0)?;
        let tokens = model.encode_images(&images)?.detach();
        let (_, t, e) = tokens.dims3()?;
        let mean = tokens.reshape((2, bs, f, t, e))?.mean(2)?;
        let lp = model.fuse(&mean.get(0)?, &mean.get(1)?, &features)?.detach();
        loss_sum += layers::nll(&lp, &b.targets)?.to_scalar::<f32>()? as f64 * bs as f64;
        for (row, &label) in lp.to_vec2::<f32>()?.into_iter().zip(&b.labels) {
            let predicted = argmax(&row);
            predictions.push(Prediction { label, predicted, log_probs: row });
        }
    }
    Ok(summarise(predictions, classes, loss_sum))
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best }).0
}

fn summarise(predictions: Vec<Prediction>, classes: usize, loss_sum: f64) -> Report {
    let n = predictions.len().max(1);
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut top5 = 0;
    for p in &predictions {
        confusion[p.label][p.predicted] += 1;
        let better = p.log_probs.iter().filter(|&&x| x > p.log_probs[p.label]).count();
        top5 += (better < 5) as usize;
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: usize = row.iter().sum();
            if total == 0 {
                f64::NAN
            } else {
                row[c] as f64 / total as f64
            }
        })
        .collect();
    Report {
        samples: predictions.len(),
        top1: correct as f64 / n as f64,
        top5: top5 as f64 / n as f64,
        loss: loss_sum / n as f64,
        per_class,
        confusion,
        predictions,
    }
}

impl Report {
    /// confusion.csv (rows: true class, columns: predicted) and per_class.csv.
    pub fn write_csv(&self, dir: &Path, labels: &[String]) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut csv = format!("true\\predicted,{}\n", labels.join(","));
        for (label, row) in labels.iter().zip(&self.confusion) {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            csv.push_str(&format!("{label},{}\n", cells.join(",")));
        }
        std::fs::write(dir.join("confusion.csv"), csv)?;
        let mut per = String::from("class,samples,accuracy\n");
        for (c, label) in labels.iter().enumerate() {
            per.push_str(&format!("{label},{},{:.4}\n", self.confusion[c].iter().sum::<usize>(), self.per_class[c]));
        }
        std::fs::write(dir.join("per_class.csv"), per)?;
        safed::plot::confusion_png(&self.confusion, &dir.join("confusion.png"))
    }
}
