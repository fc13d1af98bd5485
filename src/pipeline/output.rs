//! The output stage: a thread that writes each recognition as a JSON line, so a slow reader or
//! disk never holds up inference for longer than the channel between them takes to fill. The
//! end-to-end latency is taken here, when the line is written.

use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};

use crate::dataset::results::{ResultsWriter, SampleResult};
use crate::dataset::score::{Tally, STAGES};
use crate::report::StageHistogram;
use crate::sink::{Metrics, MqttSink, Recognition, SinkChange, Sinks};

/// Recognitions waiting to be written at most.
const CAPACITY: usize = 1024;

/// A recognition on its way out, and when its last input arrived; or (dataset replay) a
/// sample's result, after every recognition of that sample.
pub enum Outgoing {
    Line {
        rec: Recognition,
        arrived: Instant,
    },
    Sample {
        stream: String,
        result: Box<SampleResult>,
    },
    /// A reload's new sinks, from this line on.
    Sinks(Box<SinkChange>),
}

/// Where a dataset replay's per-sample results go: the results file and the running report.
pub struct ResultsSink {
    pub writer: Option<ResultsWriter>,
    pub tally: Tally,
    /// Results written so far (the progress bar).
    pub done: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What the output stage measured.
#[derive(Default)]
pub struct Written {
    pub total: StageHistogram,
    /// End-to-end latency of every line, ms (kept only when asked: replay's plot).
    pub latencies_ms: Vec<f64>,
    /// Dataset replay: the results seen.
    pub results: Option<ResultsSink>,
    /// The broker client, still to be finished (its queue delivered, `offline` published).
    pub mqtt: Option<MqttSink>,
}

pub struct Output {
    tx: Option<Sender<Outgoing>>,
    handle: std::thread::JoinHandle<Result<Written>>,
}

impl Output {
    pub fn spawn(
        mut sinks: Sinks,
        metrics: Option<Metrics>,
        keep_latencies: bool,
        results: Option<ResultsSink>,
    ) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Outgoing>, Receiver<Outgoing>) = bounded(CAPACITY);
        let handle = std::thread::Builder::new().name("output".into()).spawn(move || {
            let end_to_end = metrics.as_ref().map(|m| m.stage("end_to_end"));
            let mut written = Written { results, ..Written::default() };
            // Dataset replay: each stream's current sample's latencies, per stage.
            let mut per_sample: std::collections::HashMap<String, SampleLatency> = Default::default();
            for out in rx {
                match out {
                    Outgoing::Line { mut rec, arrived } => {
                        let total = arrived.elapsed();
                        rec.latency_ms.total = (total.as_secs_f64() * 1e6).round() / 1e3;
                        sinks.write(&rec)?;
                        written.total.record(total);
                        if keep_latencies {
                            written.latencies_ms.push(total.as_secs_f64() * 1e3);
                        }
                        if let Some(h) = &end_to_end {
                            h.observe(total.as_secs_f64());
                        }
                        if written.results.is_some() {
                            per_sample.entry(rec.stream.clone()).or_default().record(&rec, total);
                        }
                    }
                    Outgoing::Sample { stream, mut result } => {
                        if let Some(lat) = per_sample.remove(&stream) {
                            lat.fill(&mut result);
                        }
                        result.finished_ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64);
                        if let Some(r) = &mut written.results {
                            if let Some(w) = &mut r.writer {
                                w.write(&result)?;
                            }
                            r.tally.add(&result);
                            r.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Outgoing::Sinks(change) => sinks.apply(*change),
                }
            }
            written.mqtt = sinks.mqtt.take();
            Ok(written)
        })?;
        Ok(Output { tx: Some(tx), handle })
    }

    /// Hands a line to the writer, waiting while its queue is full, until `give_up` says so
    /// (a stop past its deadline). False when the line was not taken: the writer failed or
    /// gave up.
    pub fn send(&self, out: Outgoing, give_up: impl Fn() -> bool) -> bool {
        let Some(tx) = &self.tx else { return false };
        let mut out = out;
        loop {
            match tx.send_timeout(out, Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Disconnected(_)) => return false,
                Err(SendTimeoutError::Timeout(back)) if !give_up() => out = back,
                Err(SendTimeoutError::Timeout(_)) => return false,
            }
        }
    }

    /// Closes the queue and waits (until `deadline`) for every line to be written. A writer
    /// still blocked then (a reader that stopped reading) is left behind; its error, if it
    /// failed, is returned.
    pub fn finish(mut self, deadline: Instant) -> Result<Written> {
        self.tx = None;
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if !self.handle.is_finished() {
            tracing::warn!("output: lines still unwritten at exit (the reader is not reading)");
            return Ok(Written::default());
        }
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the output thread panicked"),
        }
    }
}

/// One sample's recognition latencies, per stage.
#[derive(Default)]
struct SampleLatency([StageHistogram; 5]);

impl SampleLatency {
    fn record(&mut self, rec: &Recognition, total: Duration) {
        let l = &rec.latency_ms;
        let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e3);
        for (h, d) in self.0.iter_mut().zip([ms(l.queue), ms(l.preprocess), ms(l.encode), ms(l.fuse), total]) {
            h.record(d);
        }
    }

    fn fill(self, r: &mut SampleResult) {
        for (stage, h) in STAGES.iter().zip(self.0) {
            if !h.is_empty() {
                r.latency_ms.insert(stage.to_string(), h.summary());
                r.histograms.insert(stage.to_string(), h.encode());
            }
        }
    }
}
