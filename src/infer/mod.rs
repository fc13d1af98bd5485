//! Inference: what runs the graphs (`backend`: settings shared by both runtimes), ONNX Runtime
//! (`runtime`: its library, sessions with execution providers) or OpenVINO (`openvino`), and
//! the SAFE model contract (`model`) either runs.

pub mod backend;
pub mod gpu;
pub mod locate;
pub mod model;
pub mod onnx_meta;
pub mod openvino;
pub mod parity;
pub mod preprocess;
pub mod runtime;
pub mod stream_cache;

pub use backend::{Backend, InferError, OvPrecision, Provider, SessionConfig};
pub use model::{ModelError, SafeModel};
/// The ONNX Runtime binding safed is built with, for tools that share its sessions.
pub use ort;
