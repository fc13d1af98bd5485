//! Recognitions as JSON lines, one per recognition, flushed as written (a reader sees each
//! result at once, and a clean shutdown loses none).

use std::io::{self, Write};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub label: String,
    pub p: f32,
}

/// Milliseconds per stage for one recognition.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Arrival of the last input this recognition needed -> taken off the queue.
    pub queue: f64,
    /// Event image and RGB frame into tensors.
    pub preprocess: f64,
    pub encode: f64,
    pub fuse: f64,
    /// Arrival of the last input -> this line written.
    pub total: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recognition {
    pub stream: String,
    pub seq: u64,
    /// The recognised span: start of the first window .. end of the last, µs.
    pub t_start: i64,
    pub t_end: i64,
    pub frames: usize,
    pub events: usize,
    /// "frames" (the paper's pairing) or "events" (event-only mode: the RGB branch sees the
    /// event image).
    pub rgb: &'static str,
    pub top: Vec<Scored>,
    pub latency_ms: Latency,
}

pub struct JsonlSink {
    out: Box<dyn Write + Send>,
}

impl JsonlSink {
    pub fn stdout() -> Self {
        JsonlSink { out: Box::new(io::stdout()) }
    }

    pub fn file(path: &std::path::Path) -> io::Result<Self> {
        Ok(JsonlSink { out: Box::new(std::fs::File::create(path)?) })
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonlSink { out }
    }

    pub fn write(&mut self, r: &Recognition) -> io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}
