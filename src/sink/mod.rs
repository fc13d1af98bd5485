//! Where recognitions go.

pub mod jsonl;
pub mod metrics;

pub use jsonl::{JsonlSink, Latency, Recognition, Scored};
pub use metrics::{Metrics, StreamCounters};
