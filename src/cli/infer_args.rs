//! Options shared by the commands that run a model.

use std::path::PathBuf;

use crate::infer::OvPrecision;
use crate::infer::{Backend, Provider, SessionConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// Which runtime runs the graphs: ONNX Runtime (CPU, CUDA, TensorRT) or OpenVINO (CPU).
    #[arg(long, value_enum, default_value_t = Backend::Onnxruntime)]
    pub backend: Backend,
    /// OpenVINO's compute precision: f32 (the graph's own), or bf16 where the CPU has it.
    #[arg(long, value_enum, default_value_t = OvPrecision::F32)]
    pub openvino_precision: OvPrecision,
    /// OpenVINO's C API library, libopenvino_c.so* (default: SAFED_OPENVINO_LIBRARY, else the
    /// one `tools/setup.sh` unpacked into tools/openvino/lib).
    #[arg(long)]
    pub openvino_library: Option<PathBuf>,
    /// Execution provider (a GPU provider that cannot start is an error, not a fallback).
    #[arg(long, value_enum, default_value_t = Provider::Cpu)]
    pub provider: Provider,
    /// GPU device id for cuda / tensorrt.
    #[arg(long, default_value_t = 0)]
    pub device_id: i32,
    /// Intra-op threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Graph optimisation level: 0 none, 1 basic, 2 extended, 3 all.
    #[arg(long, default_value_t = 3)]
    pub optimization: u8,
    /// If the GPU provider cannot start, run on the CPU with a warning instead of failing.
    #[arg(long)]
    pub cpu_fallback: bool,
    /// The ONNX Runtime library (default: ORT_DYLIB_PATH, else for cuda / tensorrt the GPU build
    /// `tools/setup.sh --gpu` fetched, else the CPU build `tools/setup.sh` fetched).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
}

impl SessionArgs {
    pub fn config(&self) -> SessionConfig {
        SessionConfig {
            backend: self.backend,
            openvino_library: self.openvino_library.clone(),
            openvino_precision: self.openvino_precision,
            library: self.ort_library.clone(),
            provider: self.provider,
            device_id: self.device_id,
            threads: self.threads,
            optimization: self.optimization,
            spin: true,
            cpu_fallback: self.cpu_fallback,
        }
    }
}
