//! `safed doctor`: which ONNX Runtime each provider would load, what it was built with, what the
//! NVIDIA driver sees, where each GPU library comes from, and what to install for what is
//! missing. The first thing to run on a GPU machine.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::infer::gpu::{self, Found};
use crate::infer::runtime::library_path;
use crate::infer::Provider;
use crate::infer::SessionConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit non-zero unless this provider can start (for scripts); all are reported either way.
    #[arg(long, value_enum)]
    pub provider: Option<Provider>,
    /// The CUDA device a GPU provider would run on.
    #[arg(long, default_value_t = 0)]
    pub device_id: i32,
    /// An ONNX Runtime library to check instead of the default ones.
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = |provider| SessionConfig {
        library: args.ort_library.clone(),
        provider,
        device_id: args.device_id,
        ..SessionConfig::default()
    };
    println!("ONNX Runtime (what each provider loads):");
    let mut has = Vec::new();
    for provider in [Provider::Cpu, Provider::Cuda] {
        let path = library_path(&config(provider));
        let label = if provider == Provider::Cpu { "cpu" } else { "cuda, tensorrt" };
        match gpu::probe_library(&path) {
            Ok(probe) => {
                println!("  {label:<15} {} (version {})", path.display(), probe.version);
                println!("  {:<15} built with: {}", "", probe.providers.join(", "));
                has.push((provider, probe.providers));
            }
            Err(e) => println!("  {label:<15} {}: cannot load: {e}", path.display()),
        }
    }
    match gpu::runtime_dir() {
        Some(dir) => println!("  GPU runtime     {}", dir.display()),
        None => println!(
            "  GPU runtime     not installed: {} (onnxruntime-gpu + CUDA 13 / cuDNN 9 from PyPI, ~1.6 GB)",
            gpu::runtime_install_hint()
        ),
    }

    println!("OpenVINO (backend = \"openvino\", CPU):");
    match crate::infer::openvino::describe(None) {
        Ok((path, version)) => println!("  {} ({version})", path.display()),
        Err(e) => println!("  {e}"),
    }

    println!("NVIDIA driver:");
    match gpu::driver() {
        Ok(d) => {
            println!("  CUDA {}.{} (driver API)", d.cuda_version / 1000, d.cuda_version % 1000 / 10);
            for (i, dev) in d.devices.iter().enumerate() {
                println!("  device {i}: {}, {:.1} GiB", dev.name, dev.memory_bytes as f64 / (1u64 << 30) as f64);
            }
            if d.devices.is_empty() {
                println!("  no CUDA device visible");
            }
        }
        Err(e) => println!("  {e}"),
    }

    println!("GPU libraries (SAFED_GPU_LIBS, then the GPU runtime, then the system):");
    for lib in gpu::libs_for(Provider::Tensorrt) {
        let place = match gpu::locate(lib.name) {
            Found::At(path) => path.display().to_string(),
            Found::System => "the system's library path".into(),
            Found::Missing => format!("MISSING (pip package {})", lib.package),
        };
        println!("  {:<24} {place}", lib.name);
    }

    println!("Providers:");
    let mut wanted_ok = true;
    for provider in [Provider::Cpu, Provider::Cuda, Provider::Tensorrt] {
        let problems = provider_problems(provider, &has, args.device_id);
        let verdict =
            if problems.is_empty() { "ready".to_string() } else { format!("not ready: {}", problems.join("; ")) };
        println!("  {:<9} {verdict}", format!("{provider:?}").to_lowercase());
        if Some(provider) == args.provider && !problems.is_empty() {
            wanted_ok = false;
        }
    }
    Ok(if wanted_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Why `provider` cannot start, from the probed libraries and the GPU checks.
fn provider_problems(provider: Provider, has: &[(Provider, Vec<String>)], device_id: i32) -> Vec<String> {
    let (loads, name) = match provider {
        Provider::Cpu => (Provider::Cpu, "CPUExecutionProvider"),
        Provider::Cuda => (Provider::Cuda, "CUDAExecutionProvider"),
        Provider::Tensorrt => (Provider::Cuda, "TensorrtExecutionProvider"),
    };
    let Some((_, built)) = has.iter().find(|(p, _)| *p == loads) else {
        return vec!["its ONNX Runtime library cannot be loaded".into()];
    };
    if !built.iter().any(|p| p == name) {
        return vec![format!("its ONNX Runtime library has no {name}: {}", gpu::runtime_install_hint())];
    }
    gpu::blockers(provider, device_id)
}
