//! What runs the graphs, shared by both runtimes: the backend (ONNX Runtime or OpenVINO), the
//! execution provider, the session settings and the error type. The runtimes themselves live in
//! `runtime` (ONNX Runtime) and `openvino`; neither knows the other.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    #[error("ONNX Runtime library {path} not found (looked in: {looked}); in a checkout run tools/setup.sh (SAFED_CHECKOUT=CHECKOUT for a binary built elsewhere), else set ORT_DYLIB_PATH or [model] ort_library")]
    LibraryMissing { path: PathBuf, looked: String },
    #[error("loading ONNX Runtime from {path}: {err}")]
    LibraryLoad { path: PathBuf, err: String },
    #[error("{what}: {err}")]
    Ort { what: String, err: ort::Error },
    #[error("{what}: execution provider {provider:?} cannot start: {}; `safed doctor` says what is missing (set cpu_fallback to run on the CPU instead)", problems.join("; "))]
    ProviderUnavailable { what: String, provider: Provider, problems: Vec<String> },
    #[error("{0}")]
    OpenVino(String),
}

/// Which runtime runs the graphs (one per process: each loads its library once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Onnxruntime,
    /// OpenVINO on the CPU (`tools/openvino/lib`, from the openvino wheel).
    Openvino,
}

/// Which execution provider runs the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    Tensorrt,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub backend: Backend,
    pub library: Option<PathBuf>,
    /// OpenVINO's C API library (default: where the `openvino` module looks).
    pub openvino_library: Option<PathBuf>,
    pub openvino_precision: OvPrecision,
    pub provider: Provider,
    pub device_id: i32,
    /// Intra-op threads (0: ONNX Runtime's default, one per core).
    pub threads: usize,
    /// 0 disables graph optimisations, 1 basic, 2 extended, 3 all.
    pub optimization: u8,
    /// Let idle intra-op threads spin for the next run. Good for one session run back to back;
    /// off where several sessions take turns (split graphs), or their spinning threads starve
    /// each other.
    pub spin: bool,
    /// Run on the CPU, with a warning, when the configured GPU provider cannot be registered
    /// (default: that is an error).
    pub cpu_fallback: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            backend: Backend::Onnxruntime,
            library: None,
            openvino_library: None,
            openvino_precision: Default::default(),
            provider: Provider::Cpu,
            device_id: 0,
            threads: 0,
            optimization: 3,
            spin: true,
            cpu_fallback: false,
        }
    }
}

/// The precision OpenVINO computes in on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OvPrecision {
    /// The graph's own float32: log-probs match ONNX Runtime's.
    #[default]
    F32,
    /// bfloat16 where the CPU has it (AVX-512 BF16, AMX): ~2x faster on such CPUs, less exact.
    Bf16,
}

impl OvPrecision {
    /// OpenVINO's name for it (the inference precision hint).
    pub(crate) fn hint(self) -> &'static str {
        match self {
            OvPrecision::F32 => "f32",
            OvPrecision::Bf16 => "bf16",
        }
    }
}
