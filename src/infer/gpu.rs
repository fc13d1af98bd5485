//! ONNX Runtime's GPU side: where its CUDA build and NVIDIA's libraries are, what the driver
//! says, and loading those libraries by path before ONNX Runtime asks for them by name.
//!
//! `tools/setup.sh --gpu` unpacks onnxruntime-gpu and NVIDIA's CUDA / cuDNN wheels flat into
//! `tools/ort/gpu/`. ONNX Runtime's CUDA provider library has no search path of its own: it
//! names `libcublas.so.13` and the like, and the loader takes a library already loaded under
//! that name. So each is loaded here by path first, from (in this order, first found wins):
//! the folders in `SAFED_GPU_LIBS`, the GPU runtime folder (its libraries match ONNX Runtime's
//! build), then the system's search path (a system CUDA install, `ldconfig`, `LD_LIBRARY_PATH`).
//! The driver (`libcuda.so.1`) only ever comes from the system.

use std::ffi::{c_char, c_int, CStr};
use std::path::{Path, PathBuf};

use super::backend::Provider;
use super::locate::{self, Runtime};

/// A library a provider needs, and what provides it.
#[derive(Debug, Clone, Copy)]
pub struct Lib {
    pub name: &'static str,
    pub package: &'static str,
}

const fn lib(name: &'static str, package: &'static str) -> Lib {
    Lib { name, package }
}

/// What ONNX Runtime 1.31's CUDA provider loads (its own needs, then cuDNN, which it opens
/// when the first convolution or attention kernel wants it), each after its dependencies.
pub const CUDA_LIBS: &[Lib] = &[
    lib("libcudart.so.13", "nvidia-cuda-runtime"),
    lib("libcublasLt.so.13", "nvidia-cublas"),
    lib("libcublas.so.13", "nvidia-cublas"),
    lib("libcurand.so.10", "nvidia-curand"),
    lib("libcufft.so.12", "nvidia-cufft"),
    lib("libnvrtc.so.13", "nvidia-cuda-nvrtc"),
    lib("libcudnn.so.9", "nvidia-cudnn-cu13"),
];

/// TensorRT's, on top of the CUDA ones (its provider falls back to CUDA for what it cannot
/// build an engine for).
pub const TENSORRT_LIBS: &[Lib] =
    &[lib("libnvinfer.so.10", "tensorrt-cu13-libs"), lib("libnvonnxparser.so.10", "tensorrt-cu13-libs")];

/// The libraries `provider` needs, in load order.
pub fn libs_for(provider: Provider) -> Vec<Lib> {
    match provider {
        Provider::Cpu => Vec::new(),
        Provider::Cuda => CUDA_LIBS.to_vec(),
        Provider::Tensorrt => CUDA_LIBS.iter().chain(TENSORRT_LIBS).copied().collect(),
    }
}

/// The folder holding the GPU build of ONNX Runtime and its CUDA libraries: `lib/safed/gpu`
/// beside an installed binary, else the checkout's `tools/ort/gpu` (`locate`). `None` when
/// none is installed.
pub fn runtime_dir() -> Option<PathBuf> {
    let lib = locate::find(Runtime::OrtGpu, locate::ORT_LIBRARY)?;
    lib.parent().map(Path::to_path_buf)
}

/// The command that installs the GPU runtime for this binary: the package's script when it
/// runs installed, else the checkout's setup.
pub fn runtime_install_hint() -> String {
    match locate::installed_prefix() {
        Some(prefix) => format!("sudo {}", prefix.join("lib/safed/install-gpu-runtime").display()),
        None => "bash tools/setup.sh --gpu".into(),
    }
}

/// Where a library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file in one of our folders.
    At(PathBuf),
    /// The system's loader found it by name.
    System,
    Missing,
}

/// The folders searched before the system: `SAFED_GPU_LIBS` (colon-separated), then the GPU
/// runtime folder.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("SAFED_GPU_LIBS").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    dirs.extend(runtime_dir());
    dirs
}

/// Finds `name` without loading it from our folders; the system's loader is asked by loading
/// it (a library found that way stays loaded, as it would be a moment later anyway).
pub fn locate(name: &str) -> Found {
    if let Some(path) = search_dirs().into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Found::At(path);
    }
    // SAFETY: loading a system library runs its initialisers; these are NVIDIA's libraries,
    // loaded here exactly as ONNX Runtime's provider would load them.
    match unsafe { libloading::Library::new(name) } {
        Ok(lib) => {
            std::mem::forget(lib);
            Found::System
        }
        Err(_) => Found::Missing,
    }
}

/// Loads each of `libs` (from our folders, by path; else by name from the system) and keeps it
/// loaded for the process's life, so that ONNX Runtime's provider finds them by name. Returns
/// the ones that could not be loaded, with why.
pub fn preload(libs: &[Lib]) -> Vec<(Lib, String)> {
    let mut failed = Vec::new();
    for &lib in libs {
        let result = match locate(lib.name) {
            // SAFETY: as in `locate`.
            Found::At(path) => {
                unsafe { libloading::Library::new(&path) }.map(std::mem::forget).map_err(|e| e.to_string())
            }
            Found::System => Ok(()),
            Found::Missing => Err("not found".to_string()),
        };
        if let Err(why) = result {
            failed.push((lib, why));
        }
    }
    failed
}

/// One visible CUDA device.
#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub memory_bytes: u64,
}

/// What the NVIDIA driver reports.
#[derive(Debug, Clone)]
pub struct Driver {
    /// CUDA driver API version, e.g. 13000 for 13.0.
    pub cuda_version: i32,
    pub devices: Vec<Device>,
}

/// Why the driver gives no device.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    #[error("no NVIDIA driver: libcuda.so.1 not found ({0}); install NVIDIA's driver (>= 580 for CUDA 13)")]
    NotInstalled(String),
    #[error("the NVIDIA driver's libcuda.so.1 lacks {0}")]
    Symbol(&'static str),
    #[error("the NVIDIA driver failed to start: {name} ({code}){hint}")]
    Init { code: i32, name: String, hint: &'static str },
}

/// Asks the driver (`libcuda.so.1`, dlopened) for its version and devices.
pub fn driver() -> Result<Driver, DriverError> {
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Version = unsafe extern "C" fn(*mut i32) -> i32;
    type Count = unsafe extern "C" fn(*mut i32) -> i32;
    type Get = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type Name = unsafe extern "C" fn(*mut c_char, i32, i32) -> i32;
    type Mem = unsafe extern "C" fn(*mut usize, i32) -> i32;
    type ErrName = unsafe extern "C" fn(i32, *mut *const c_char) -> i32;

    // SAFETY: libcuda.so.1 is the driver's own library; its initialisers expect to be loaded.
    let cuda =
        unsafe { libloading::Library::new("libcuda.so.1") }.map_err(|e| DriverError::NotInstalled(e.to_string()))?;
    // SAFETY: the signatures are the CUDA driver API's (cuda.h), stable since CUDA 3.2.
    unsafe {
        let init = cuda.get::<Init>(b"cuInit\0").map_err(|_| DriverError::Symbol("cuInit"))?;
        let code = init(0);
        if code != 0 {
            let name = cuda
                .get::<ErrName>(b"cuGetErrorName\0")
                .ok()
                .and_then(|f| {
                    let mut s = std::ptr::null();
                    (f(code, &mut s) == 0 && !s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "CUDA_ERROR".into());
            let hint = match code {
                100 => ": no CUDA device is visible (CUDA_VISIBLE_DEVICES, a container without --gpus?)",
                35 => ": the driver is older than this CUDA runtime needs",
                _ => "",
            };
            return Err(DriverError::Init { code, name, hint });
        }
        let mut cuda_version = 0;
        if let Ok(f) = cuda.get::<Version>(b"cuDriverGetVersion\0") {
            f(&mut cuda_version);
        }
        let mut count = 0;
        let get_count =
            cuda.get::<Count>(b"cuDeviceGetCount\0").map_err(|_| DriverError::Symbol("cuDeviceGetCount"))?;
        get_count(&mut count);
        let get = cuda.get::<Get>(b"cuDeviceGet\0").map_err(|_| DriverError::Symbol("cuDeviceGet"))?;
        let name = cuda.get::<Name>(b"cuDeviceGetName\0").map_err(|_| DriverError::Symbol("cuDeviceGetName"))?;
        let mem = cuda.get::<Mem>(b"cuDeviceTotalMem_v2\0").map_err(|_| DriverError::Symbol("cuDeviceTotalMem_v2"))?;
        let mut devices = Vec::new();
        for ordinal in 0..count {
            let mut device = 0;
            if get(&mut device, ordinal) != 0 {
                continue;
            }
            let mut buf = [0 as c_char; 256];
            name(buf.as_mut_ptr(), buf.len() as i32, device);
            let mut bytes = 0usize;
            mem(&mut bytes, device);
            let name = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
            devices.push(Device { name, memory_bytes: bytes as u64 });
        }
        // The driver stays loaded: ONNX Runtime's provider links against it.
        std::mem::forget(cuda);
        Ok(Driver { cuda_version, devices })
    }
}

/// An ONNX Runtime library, probed without initialising it: its version and the execution
/// providers it was built with. Works on any library, so both the CPU and the GPU build can be
/// reported by one process (ort itself can load only one).
#[derive(Debug, Clone)]
pub struct Probe {
    pub version: String,
    pub providers: Vec<String>,
}

pub fn probe_library(path: &Path) -> Result<Probe, String> {
    // SAFETY: an ONNX Runtime library; loading it runs no more than its static initialisers.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    // SAFETY: OrtGetApiBase and the OrtApi table are ONNX Runtime's C API; `GetApi` returns
    // null for an API version the library does not have, which is checked.
    unsafe {
        let base = lib
            .get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase\0")
            .map_err(|_| "no OrtGetApiBase: not an ONNX Runtime library".to_string())?;
        let base = base();
        if base.is_null() {
            return Err("OrtGetApiBase returned nothing".into());
        }
        let version = CStr::from_ptr(((*base).GetVersionString)()).to_string_lossy().into_owned();
        let api = ((*base).GetApi)(ort::sys::ORT_API_VERSION);
        if api.is_null() {
            return Err(format!(
                "version {version} is older than the API level safed is built for (1.{})",
                ort::sys::ORT_API_VERSION
            ));
        }
        // A failed call's status is freed; the list is then reported empty.
        let ok = |status: ort::sys::OrtStatusPtr| {
            let failed = !status.0.is_null();
            if failed {
                ((*api).ReleaseStatus)(status.0);
            }
            !failed
        };
        let mut names: *mut *mut c_char = std::ptr::null_mut();
        let mut count: c_int = 0;
        let mut providers = Vec::new();
        if ok(((*api).GetAvailableProviders)(&mut names, &mut count)) && !names.is_null() {
            for i in 0..count as usize {
                providers.push(CStr::from_ptr(*names.add(i)).to_string_lossy().into_owned());
            }
            ok(((*api).ReleaseAvailableProviders)(names, count));
        }
        // Kept loaded: unloading ONNX Runtime is not supported (its threads and statics).
        std::mem::forget(lib);
        Ok(Probe { version, providers })
    }
}

/// Everything that keeps `provider` from starting on `device_id`, as sentences; empty when
/// nothing does. Loads the provider's libraries (kept loaded) as a side effect.
pub fn blockers(provider: Provider, device_id: i32) -> Vec<String> {
    let mut problems = Vec::new();
    if provider == Provider::Cpu {
        return problems;
    }
    match driver() {
        Err(e) => problems.push(e.to_string()),
        Ok(d) if d.devices.is_empty() => problems.push("the NVIDIA driver sees no CUDA device".into()),
        Ok(d) if device_id < 0 || device_id as usize >= d.devices.len() => problems.push(format!(
            "no CUDA device {device_id}: the driver sees {} (0..{})",
            d.devices.len(),
            d.devices.len() - 1
        )),
        Ok(_) => {}
    }
    let missing = preload(&libs_for(provider));
    if !missing.is_empty() {
        let names: Vec<String> =
            missing.iter().map(|(lib, why)| format!("{} ({}: {why})", lib.name, lib.package)).collect();
        problems.push(format!("missing {}; {}", names.join(", "), install_hint(&missing)));
    }
    problems
}

fn install_hint(missing: &[(Lib, String)]) -> String {
    if missing.iter().all(|(lib, _)| lib.package.starts_with("tensorrt")) {
        "TensorRT 10 comes from NVIDIA's package index (see tools/requirements-gpu.txt), then SAFED_GPU_LIBS=its tensorrt_libs folder".into()
    } else {
        format!("run `{}`, or set SAFED_GPU_LIBS to the folders that hold them", runtime_install_hint())
    }
}
