//! The processing stages after the capture queues, joined by bounded crossbeam channels:
//!
//! - accumulate (one thread per stream, [`accumulate`]): frame/window pairs, rendered and
//!   preprocessed into tensors;
//! - inference (the thread that calls [`Pipeline::run`]): streaming split-graph inference, the
//!   pairs ready across streams encoded in one encoder call and the recognitions due fused in one
//!   fusion call, up to `batch.max_pairs` pairs (with `batch.wait`, a ready pair waits that long
//!   for others to fill the batch);
//! - output (one thread, [`output`]): JSON lines.
//!
//! Shared by `safed run` (one or more streams) and `safed replay` (one).
//!
//! One file per concern: `stages` (the [`Pipeline`], its wiring and counts), `infer_loop` (the
//! inference loop), `batching`, `accumulate`, `recognise` (a stream's token window and when a
//! recognition is due), `sample` (dataset replay's per-sample scores), `swap` (a model swapped
//! in by a reload), `output`, `lifecycle` (heartbeats and the stop deadline) and `load` (the
//! model files). Dependencies run one way; this file only declares and re-exports.

mod accumulate;
mod batching;
mod infer_loop;
mod lifecycle;
mod load;
mod output;
mod recognise;
mod sample;
mod stages;
mod swap;

pub use accumulate::{effective_mode, StreamOptions, StreamStats};
pub use batching::Batching;
pub use lifecycle::Heartbeat;
pub use load::{load_model, split_parts};
pub use output::ResultsSink;
pub use stages::{Counts, Ended, Pipeline};
pub use swap::Reload;
