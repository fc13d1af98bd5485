//! Inference with ONNX Runtime: loading the runtime library (`runtime`), sessions with execution
//! providers chosen by configuration, and the SAFE model contract (`model`).

pub mod gpu;
pub mod model;
pub mod onnx_meta;
pub mod openvino;
pub mod parity;
pub mod preprocess;
pub mod runtime;
pub mod stream_cache;

pub use model::{ModelError, SafeModel};
/// The ONNX Runtime binding safed is built with, for tools that share its sessions.
pub use ort;
pub use runtime::{Backend, InferError, Provider, SessionConfig};
