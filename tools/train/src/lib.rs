//! safe-train: imports, trains and exports SAFE models for safed.

pub mod clip_names;
pub mod config;
pub mod export;
pub mod model;
pub mod onnx;
pub mod tokenizer;
pub mod weights;
