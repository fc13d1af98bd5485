//! The output stage: a thread that writes each recognition as a JSON line, so a slow reader or
//! disk never holds up inference for longer than the channel between them takes to fill. The
//! end-to-end latency is taken here, when the line is written.

use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};

use crate::report::StageHistogram;
use crate::sink::{JsonlSink, Metrics, Recognition};

/// Recognitions waiting to be written at most.
const CAPACITY: usize = 1024;

/// A recognition on its way out, and when its last input arrived.
pub struct Outgoing {
    pub rec: Recognition,
    pub arrived: Instant,
}

/// What the output stage measured.
#[derive(Default)]
pub struct Written {
    pub total: StageHistogram,
    /// End-to-end latency of every line, ms (kept only when asked: replay's plot).
    pub latencies_ms: Vec<f64>,
}

pub struct Output {
    tx: Option<Sender<Outgoing>>,
    handle: std::thread::JoinHandle<Result<Written>>,
}

impl Output {
    pub fn spawn(mut sink: JsonlSink, metrics: Option<Metrics>, keep_latencies: bool) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Outgoing>, Receiver<Outgoing>) = bounded(CAPACITY);
        let handle = std::thread::Builder::new().name("output".into()).spawn(move || {
            let end_to_end = metrics.as_ref().map(|m| m.stage("end_to_end"));
            let mut written = Written::default();
            for Outgoing { mut rec, arrived } in rx {
                let total = arrived.elapsed();
                rec.latency_ms.total = (total.as_secs_f64() * 1e6).round() / 1e3;
                sink.write(&rec)?;
                written.total.record(total);
                if keep_latencies {
                    written.latencies_ms.push(total.as_secs_f64() * 1e3);
                }
                if let Some(h) = &end_to_end {
                    h.observe(total.as_secs_f64());
                }
            }
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
