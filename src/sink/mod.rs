//! Where recognitions go.

pub mod jsonl;

pub use jsonl::{JsonlSink, Latency, Recognition, Scored};
