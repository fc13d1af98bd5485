//! The dataset report, computed from the per-sample results alone, so one run, a resumed run
//! and merged shards give the same figures for the same samples.
//!
//! Accuracies count every sample that was replayed; a failed sample is counted apart
//! (`failed`), and a sample whose class the model does not know is a miss (`unknown_class`
//! says how many). `stream_top1` is the mean, over samples with at least one streaming
//! recognition, of the share of recognitions whose top-1 is the label; `stream_last_top1` the
//! share of those samples whose last recognition is right.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::results::SampleResult;
use crate::report::{Percentiles, StageHistogram};

pub const STAGES: [&str; 5] = ["queue", "preprocess", "encode", "fuse", "end_to_end"];

#[derive(Debug, Clone, Serialize)]
pub struct ClassScore {
    pub class: String,
    pub samples: usize,
    pub clip_top1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub seconds: f64,
    pub samples_per_s: f64,
    pub events_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    pub dataset: String,
    pub model: String,
    /// Samples replayed and scored (failed ones not included).
    pub samples: usize,
    pub failed: usize,
    /// Scored samples whose class the model has no label for (each a miss).
    pub unknown_class: usize,
    pub clip_top1: f64,
    pub clip_top5: f64,
    pub stream_top1: f64,
    pub stream_last_top1: f64,
    /// Scored samples too short for one streaming recognition (fewer than F pairs).
    pub without_recognitions: usize,
    pub per_class: Vec<ClassScore>,
    /// Rows: the dataset's classes; columns: the same, then `(other)` for a prediction that is
    /// none of them.
    pub confusion: Vec<Vec<usize>>,
    /// Per stage over every recognition: queue, preprocess, encode, fuse (ms).
    pub latency_ms: BTreeMap<String, Percentiles>,
    pub end_to_end: Percentiles,
    pub throughput: Throughput,
    /// The first failures, with their reasons (all are in the results file).
    pub failures: Vec<Failure>,
}

/// The report built one result at a time (a replay of any length holds only this).
pub struct Tally {
    classes: Vec<String>,
    scored: usize,
    unknown: usize,
    top1: usize,
    top5: usize,
    streamed: usize,
    stream_sum: f64,
    last_right: usize,
    confusion: Vec<Vec<usize>>,
    hist: BTreeMap<&'static str, StageHistogram>,
    failures: Vec<Failure>,
    failed: usize,
    /// Results of this run (not read back by a resume): what throughput counts.
    fresh: usize,
    fresh_events: u64,
}

impl Tally {
    pub fn new(classes: &[String]) -> Self {
        Tally {
            classes: classes.to_vec(),
            scored: 0,
            unknown: 0,
            top1: 0,
            top5: 0,
            streamed: 0,
            stream_sum: 0.0,
            last_right: 0,
            confusion: vec![vec![0usize; classes.len() + 1]; classes.len()],
            hist: STAGES.iter().map(|s| (*s, StageHistogram::default())).collect(),
            failures: Vec::new(),
            failed: 0,
            fresh: 0,
            fresh_events: 0,
        }
    }

    /// A result of this run.
    pub fn add(&mut self, r: &SampleResult) {
        self.fresh += 1;
        self.fresh_events += r.events;
        self.count(r);
    }

    /// A result read back from an earlier run (counted, but not in this run's throughput).
    pub fn add_resumed(&mut self, r: &SampleResult) {
        self.count(r);
    }

    fn count(&mut self, r: &SampleResult) {
        if let Some(error) = &r.error {
            self.failed += 1;
            if self.failures.len() < 20 {
                self.failures.push(Failure { id: r.id.clone(), error: error.clone() });
            }
            return;
        }
        self.scored += 1;
        self.unknown += !r.known as usize;
        self.top1 += r.clip_correct(1) as usize;
        self.top5 += r.clip_correct(5) as usize;
        let class_index = |name: Option<&str>| name.and_then(|n| self.classes.iter().position(|c| c == n));
        if let Some(t) = class_index(r.label.as_deref()) {
            let p = class_index(r.clip_top1()).unwrap_or(self.classes.len());
            self.confusion[t][p] += 1;
        }
        if let Some(s) = r.stream.as_ref().filter(|s| s.recognitions > 0) {
            self.streamed += 1;
            self.stream_sum += s.accuracy.unwrap_or(0.0);
            self.last_right += (s.last.is_some() && s.last == r.label) as usize;
        }
        for (stage, h) in self.hist.iter_mut() {
            if let Some(d) = r.histograms.get(*stage).and_then(|t| StageHistogram::decode(t)) {
                h.add(&d);
            }
        }
    }

    /// `seconds`: the replay's wall time (samples/s and events/s are over it).
    pub fn report(&self, dataset: &str, model: &str, seconds: f64) -> DatasetReport {
        let share = |k: usize, of: usize| if of == 0 { 0.0 } else { k as f64 / of as f64 };
        let mut latency_ms: BTreeMap<String, Percentiles> =
            self.hist.iter().map(|(k, h)| (k.to_string(), h.summary())).collect();
        let end_to_end = latency_ms.remove("end_to_end").unwrap_or_else(|| StageHistogram::default().summary());
        let seconds = seconds.max(1e-9);
        DatasetReport {
            dataset: dataset.to_string(),
            model: model.to_string(),
            samples: self.scored,
            failed: self.failed,
            unknown_class: self.unknown,
            clip_top1: share(self.top1, self.scored),
            clip_top5: share(self.top5, self.scored),
            stream_top1: if self.streamed == 0 { 0.0 } else { self.stream_sum / self.streamed as f64 },
            stream_last_top1: share(self.last_right, self.streamed),
            without_recognitions: self.scored - self.streamed,
            per_class: self.per_class(),
            confusion: self.confusion.clone(),
            latency_ms,
            end_to_end,
            throughput: Throughput {
                seconds,
                samples_per_s: self.fresh as f64 / seconds,
                events_per_s: self.fresh_events as f64 / seconds,
            },
            failures: self.failures.clone(),
        }
    }
}

impl Tally {
    /// Clip top-1 per class, from the confusion matrix's rows (0 for a class without samples).
    fn per_class(&self) -> Vec<ClassScore> {
        let rows = self.classes.iter().zip(&self.confusion).enumerate();
        rows.map(|(i, (c, row))| {
            let n: usize = row.iter().sum();
            ClassScore { class: c.clone(), samples: n, clip_top1: if n == 0 { 0.0 } else { row[i] as f64 / n as f64 } }
        })
        .collect()
    }

    /// Left: clip top-1 per class (green); right: end-to-end latency at quantiles 1% .. 100%
    /// (blue). The figures are in the report.
    pub fn plot(&self, path: &Path) -> Result<()> {
        let per_class: Vec<f64> = self.per_class().iter().map(|c| c.clip_top1).collect();
        let quantiles = self.hist.get("end_to_end").map(|h| h.quantiles_ms(100)).unwrap_or_default();
        crate::plot::curves_png(&[vec![(per_class, [30, 150, 60])], vec![(quantiles, [40, 90, 200])]], path)
    }
}

/// A results file's wall time: from its first sample's start to its last result.
pub fn span_seconds(results: &[SampleResult]) -> f64 {
    let end = results.iter().map(|r| r.finished_ms).max().unwrap_or(0) as f64;
    let start = results.iter().map(|r| r.finished_ms as f64 - r.seconds * 1e3).fold(f64::INFINITY, f64::min);
    if start.is_finite() {
        ((end - start) / 1e3).max(0.0)
    } else {
        0.0
    }
}

impl DatasetReport {
    pub fn print(&self) {
        eprintln!(
            "{}: {} samples scored, {} failed, {} of a class the model does not know",
            self.dataset, self.samples, self.failed, self.unknown_class
        );
        eprintln!(
            "clip top-1 {:.4}  top-5 {:.4}  stream top-1 {:.4}  last {:.4}",
            self.clip_top1, self.clip_top5, self.stream_top1, self.stream_last_top1
        );
        eprintln!("latency ms      p50      p95      p99      max");
        for (name, p) in self.latency_ms.iter().chain([(&"end_to_end".to_string(), &self.end_to_end)]) {
            eprintln!("{name:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2}", p.p50, p.p95, p.p99, p.max);
        }
        let t = &self.throughput;
        eprintln!("{:.1} samples/s, {:.0} events/s over {:.1} s", t.samples_per_s, t.events_per_s, t.seconds);
        for f in &self.failures {
            eprintln!("failed: {}: {}", f.id, f.error);
        }
    }

    /// The report as JSON, with confusion.csv, per_class.csv and confusion.png beside it.
    pub fn write(&self, path: &Path, classes: &[String]) -> Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
        let mut csv = format!("true\\predicted,{},(other)\n", classes.join(","));
        for (c, row) in classes.iter().zip(&self.confusion) {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            csv.push_str(&format!("{c},{}\n", cells.join(",")));
        }
        let write = |name: String, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
        };
        write(format!("{stem}.confusion.csv"), csv)?;
        let mut per = String::from("class,samples,clip_top1\n");
        for c in &self.per_class {
            per.push_str(&format!("{},{},{:.4}\n", c.class, c.samples, c.clip_top1));
        }
        write(format!("{stem}.per_class.csv"), per)?;
        // The image is square: the (other) column is in the CSV only.
        let square: Vec<Vec<usize>> = self.confusion.iter().map(|r| r[..classes.len()].to_vec()).collect();
        crate::plot::confusion_png(&square, &dir.join(format!("{stem}.confusion.png")))
    }
}
