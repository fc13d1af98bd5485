//! safe-train: imports, trains and exports SAFE models for safed.

pub mod bench;
pub mod calibrate;
pub mod checkpoint;
pub mod clip_names;
pub mod config;
pub mod data;
pub mod eval;
pub mod export;
pub mod fit;
pub mod fit_options;
pub mod model;
pub mod onnx;
pub mod optim;
pub mod tensor;
pub mod tokenizer;
pub mod weights;
