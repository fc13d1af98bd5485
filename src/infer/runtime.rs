//! The ONNX Runtime library is loaded at run time (ort's `load-dynamic`): from an explicit
//! path, `ORT_DYLIB_PATH`, the GPU build when a GPU provider is asked for and it is installed,
//! or the CPU build, each found beside the installed binary or in the checkout (`locate`). A
//! missing library is an error that says where we looked, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::backend::{InferError, Provider, SessionConfig};
use super::locate::{self, Runtime, ORT_LIBRARY};

fn ort_err(what: impl Into<String>) -> impl FnOnce(ort::Error) -> InferError {
    let what = what.into();
    move |err| InferError::Ort { what, err }
}

/// The library a session with `config` loads: the configured one, else `ORT_DYLIB_PATH`, else
/// for a GPU provider the GPU build when it is installed, else the CPU build.
pub fn library_path(config: &SessionConfig) -> PathBuf {
    if let Some(path) = &config.library {
        return path.clone();
    }
    if config.provider != Provider::Cpu && std::env::var_os("ORT_DYLIB_PATH").is_none() {
        if let Some(dir) = super::gpu::runtime_dir() {
            return dir.join(ORT_LIBRARY);
        }
    }
    default_library_path()
}

/// Where the library is looked for when no path is given: `ORT_DYLIB_PATH`, else beside the
/// installed binary or in the checkout (`locate`).
pub fn default_library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    locate::find(Runtime::OrtCpu, ORT_LIBRARY).unwrap_or_else(|| PathBuf::from(ORT_LIBRARY))
}

static ENVIRONMENT: OnceLock<(Environment, PathBuf)> = OnceLock::new();

/// The library this process loaded, once it has.
pub fn loaded_library() -> Option<&'static Path> {
    ENVIRONMENT.get().map(|(_, path)| path.as_path())
}

/// Loads the runtime once per process (later calls return the same environment).
pub fn environment(library: Option<&Path>) -> Result<&'static Environment, InferError> {
    if let Some((env, _)) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = library.map(Path::to_path_buf).unwrap_or_else(default_library_path);
    if !path.exists() {
        // A bare file name is what `default_library_path` gives when no folder had it.
        let looked = if path.as_os_str() == ORT_LIBRARY {
            locate::looked_in(Runtime::OrtCpu)
        } else if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| p == path.as_os_str()) {
            "ORT_DYLIB_PATH".to_string()
        } else {
            "the configured path".to_string()
        };
        return Err(InferError::LibraryMissing { path, looked });
    }
    let builder =
        ort::init_from(&path).map_err(|e| InferError::LibraryLoad { path: path.clone(), err: e.to_string() })?;
    let env = builder.with_name("safed").build().map_err(ort_err("creating the ONNX Runtime environment"))?;
    Ok(&ENVIRONMENT.get_or_init(|| (env, path)).0)
}

/// Creates a session for an ONNX model held in memory; `what` names it in errors.
pub fn session(model: &[u8], config: &SessionConfig, what: &str) -> Result<Session, InferError> {
    let env = environment(Some(&library_path(config)))?;
    let level = match config.optimization {
        0 => GraphOptimizationLevel::Disable,
        1 => GraphOptimizationLevel::Level1,
        2 => GraphOptimizationLevel::Level2,
        _ => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(env)
        .map_err(ort_err(format!("{what}: session options")))?
        .with_optimization_level(level)
        .map_err(|e| InferError::Ort { what: format!("{what}: optimisation level"), err: e.into() })?;
    if config.threads > 0 {
        builder = builder
            .with_intra_threads(config.threads)
            .map_err(|e| InferError::Ort { what: format!("{what}: thread count"), err: e.into() })?;
    }
    if !config.spin {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| InferError::Ort { what: format!("{what}: thread spinning"), err: e.into() })?;
    }
    builder = providers::apply(builder, config, what)?;
    builder.commit_from_memory(model).map_err(ort_err(format!("{what}: loading the model")))
}

mod providers {
    use ort::ep::{self, ExecutionProvider};
    use ort::session::builder::SessionBuilder;

    use crate::infer::backend::{InferError, Provider, SessionConfig};

    /// Registers the configured provider. One that cannot start (a CPU build of ONNX Runtime,
    /// no driver or device, a missing CUDA library) is an error naming why, before ONNX Runtime
    /// is asked; with `cpu_fallback` the session runs on the CPU and a warning says why.
    pub fn apply(builder: SessionBuilder, config: &SessionConfig, what: &str) -> Result<SessionBuilder, InferError> {
        let problems = blockers(config);
        if !problems.is_empty() {
            if config.cpu_fallback {
                tracing::warn!(model = what, provider = ?config.provider, reason = %problems.join("; "), "execution provider cannot start: running on the CPU");
                return Ok(builder);
            }
            return Err(InferError::ProviderUnavailable {
                what: what.to_string(),
                provider: config.provider,
                problems,
            });
        }
        let provider = match config.provider {
            Provider::Cpu => return Ok(builder),
            Provider::Cuda => ep::CUDA::default().with_device_id(config.device_id).build().error_on_failure(),
            Provider::Tensorrt => {
                // Building an engine takes minutes; ONNX Runtime names cached ones by the graph.
                let cache = tensorrt_cache_dir();
                if let Err(e) = std::fs::create_dir_all(&cache) {
                    tracing::warn!(dir = %cache.display(), error = %e, "TensorRT engine cache unavailable");
                }
                let cache = cache.display().to_string();
                ep::TensorRT::default()
                    .with_device_id(config.device_id)
                    .with_engine_cache(true)
                    .with_engine_cache_path(&cache)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&cache)
                    .build()
                    .error_on_failure()
            }
        };
        match builder.with_execution_providers([provider]) {
            Ok(b) => {
                tracing::info!(model = what, provider = ?config.provider, device = config.device_id, "execution provider registered");
                Ok(b)
            }
            Err(e) if config.cpu_fallback => {
                tracing::warn!(model = what, provider = ?config.provider, error = %e, "execution provider unavailable: running on the CPU");
                Ok(e.recover())
            }
            Err(e) => Err(InferError::Ort {
                what: format!(
                    "{what}: execution provider {:?} (set cpu_fallback to run on the CPU instead)",
                    config.provider
                ),
                err: e.into(),
            }),
        }
    }

    /// Where TensorRT keeps its engines: `SAFED_TENSORRT_CACHE`, else `safed/tensorrt` in the
    /// user's cache folder (`XDG_CACHE_HOME`, `~/.cache`), else in the temp folder.
    pub fn tensorrt_cache_dir() -> std::path::PathBuf {
        if let Some(dir) = std::env::var_os("SAFED_TENSORRT_CACHE") {
            return dir.into();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")));
        cache.unwrap_or_else(std::env::temp_dir).join("safed/tensorrt")
    }

    /// Why the configured provider cannot start in this process; empty when it can.
    fn blockers(config: &SessionConfig) -> Vec<String> {
        let name = match config.provider {
            Provider::Cpu => return Vec::new(),
            Provider::Cuda => "CUDAExecutionProvider",
            Provider::Tensorrt => "TensorrtExecutionProvider",
        };
        let built_in = match config.provider {
            Provider::Cuda => ep::CUDA::is_available(),
            _ => ep::TensorRT::is_available(),
        };
        if !built_in.unwrap_or(false) {
            let library =
                crate::infer::runtime::loaded_library().map_or_else(|| "?".into(), |p| p.display().to_string());
            return vec![format!(
                "the ONNX Runtime library {library} has no {name} (a CPU build): install the GPU build with \
                 `{}`, or point ort_library at one",
                crate::infer::gpu::runtime_install_hint()
            )];
        }
        crate::infer::gpu::blockers(config.provider, config.device_id)
    }
}
