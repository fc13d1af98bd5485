//! The replay report: per-stage and end-to-end latency percentiles (HdrHistogram), throughput,
//! drops and recognitions.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency of one stage, in µs, 3 significant digits, up to an hour.
pub struct StageHistogram(Histogram<u64>);

impl Default for StageHistogram {
    fn default() -> Self {
        StageHistogram(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl StageHistogram {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        let _ = self.0.record(us);
    }

    /// Adds another histogram's counts (exact: same bounds and precision).
    pub fn add(&mut self, other: &StageHistogram) {
        let _ = self.0.add(&other.0);
    }

    /// The latency at quantiles 1/n .. n/n, ms.
    pub fn quantiles_ms(&self, n: usize) -> Vec<f64> {
        (1..=n).map(|k| self.0.value_at_quantile(k as f64 / n as f64) as f64 / 1000.0).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The histogram as text (HdrHistogram's compressed V2 encoding in base64), so a results
    /// line carries its latencies exactly and merged shards give one run's percentiles.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        use hdrhistogram::serialization::Serializer;
        let _ = hdrhistogram::serialization::V2DeflateSerializer::new().serialize(&self.0, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads [`StageHistogram::encode`]'s text; None when it is not one.
    pub fn decode(text: &str) -> Option<StageHistogram> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
        let h: Histogram<u64> =
            hdrhistogram::serialization::Deserializer::new().deserialize(&mut std::io::Cursor::new(bytes)).ok()?;
        let mut out = StageHistogram::default();
        out.0.add(&h).ok()?;
        Some(out)
    }

    pub fn summary(&self) -> Percentiles {
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: self.0.len(),
            p50: ms(0.5),
            p95: ms(0.95),
            p99: ms(0.99),
            max: self.0.max() as f64 / 1000.0,
            mean: self.0.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Default)]
pub struct Stages {
    pub queue: StageHistogram,
    pub preprocess: StageHistogram,
    pub encode: StageHistogram,
    pub fuse: StageHistogram,
    pub total: StageHistogram,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub queue: Percentiles,
    pub preprocess: Percentiles,
    pub encode: Percentiles,
    pub fuse: Percentiles,
    pub end_to_end: Percentiles,
}

impl Stages {
    pub fn report(&self) -> StageReport {
        StageReport {
            queue: self.queue.summary(),
            preprocess: self.preprocess.summary(),
            encode: self.encode.summary(),
            fuse: self.fuse.summary(),
            end_to_end: self.total.summary(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub model: String,
    pub seconds: f64,
    pub events: u64,
    pub frames: u64,
    pub pairs: u64,
    pub recognitions: u64,
    pub events_per_second: f64,
    pub recognitions_per_second: f64,
    /// Items dropped by the capture ring (overload).
    pub ring_dropped: u64,
    /// Events dropped while frames waited for their windows.
    pub window_dropped: u64,
    /// Recognitions per label (the top-1 of each).
    pub labels: std::collections::BTreeMap<String, u64>,
    /// Milliseconds.
    pub latency_ms: StageReport,
}

impl Report {
    pub fn print(&self) {
        let l = &self.latency_ms;
        eprintln!(
            "replayed {} in {:.2} s: {} events, {} frames, {} recognitions ({:.1}/s), dropped {} ring items, {} window events",
            self.source, self.seconds, self.events, self.frames, self.recognitions, self.recognitions_per_second, self.ring_dropped, self.window_dropped
        );
        eprintln!("latency ms      p50      p95      p99      max");
        for (name, p) in [
            ("queue", &l.queue),
            ("preprocess", &l.preprocess),
            ("encode", &l.encode),
            ("fuse", &l.fuse),
            ("end-to-end", &l.end_to_end),
        ] {
            eprintln!("{name:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2}", p.p50, p.p95, p.p99, p.max);
        }
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        eprintln!("recognised: {}", labels.join(", "));
    }
}
