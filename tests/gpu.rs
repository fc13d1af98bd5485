//! The GPU path on a machine without a GPU: `safed doctor` tells the truth about this machine,
//! and a GPU provider that cannot start is an error naming the real cause (a CPU build of ONNX
//! Runtime; no driver; a missing library), before any recognition, or with `--cpu-fallback` a
//! CPU run that logs why. The parts that need the GPU runtime (`tools/setup.sh --gpu`, or
//! SAFED_GPU=1 in tools/test.sh) say SKIPPED without it, and fail under CI with SAFED_GPU=1.
//! On a machine with a working driver they check nothing about "no driver", and say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn safed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safed"))
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .env("SAFED_LOG", "info")
        .output()
        .expect("safed runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cpu_library() -> PathBuf {
    root().join("tools/ort/lib/libonnxruntime.so")
}

fn gpu_runtime() -> Option<PathBuf> {
    let dir = root().join("tools/ort/gpu");
    if dir.join("libonnxruntime.so").is_file() {
        return Some(dir);
    }
    let asked = std::env::var("SAFED_GPU").is_ok_and(|v| v == "1");
    assert!(
        !(asked && std::env::var_os("CI").is_some()),
        "SAFED_GPU=1 under CI, but tools/setup.sh --gpu left no runtime"
    );
    eprintln!("SKIPPED: no GPU runtime (bash tools/setup.sh --gpu, or SAFED_GPU=1 bash tools/test.sh)");
    None
}

/// Whether this machine has an NVIDIA driver (then "no driver" cannot be checked here).
fn has_driver() -> bool {
    Path::new("/proc/driver/nvidia/version").exists()
}

const DEMO: &str = "onnx/demo.onnx";

#[test]
fn doctor_reports_this_machine() {
    let out = safed(&["doctor"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("version 1.32.0") && report.contains("CPUExecutionProvider"), "{report}");
    assert!(report.contains("  cpu       ready"), "the CPU provider is ready: {report}");
    if has_driver() {
        eprintln!("this machine has an NVIDIA driver: the no-driver lines are not checked");
    } else {
        assert!(report.contains("no NVIDIA driver: libcuda.so.1 not found"), "{report}");
        assert!(report.contains("  cuda      not ready: no NVIDIA driver"), "{report}");
        let cuda = safed(&["doctor", "--provider", "cuda"]);
        assert!(!cuda.status.success(), "--provider cuda must fail the check here: {}", text(&cuda));
    }
    assert!(safed(&["doctor", "--provider", "cpu"]).status.success());
    match gpu_runtime() {
        Some(dir) => {
            assert!(report.contains(&format!("GPU runtime     {}", dir.display())), "{report}");
            assert!(report.contains("version 1.31.1") && report.contains("CUDAExecutionProvider"), "{report}");
            for lib in ["libcudart.so.13", "libcublas.so.13", "libcudnn.so.9"] {
                let line = report.lines().find(|l| l.trim_start().starts_with(lib)).unwrap_or_default();
                assert!(line.contains(&dir.display().to_string()), "{lib} found in the GPU runtime: {line:?}");
            }
            // TensorRT is not on PyPI: named, with where it comes from.
            assert!(
                report.contains("libnvinfer.so.10") && report.contains("MISSING (pip package tensorrt-cu13-libs)"),
                "{report}"
            );
        }
        None => assert!(report.contains("GPU runtime     not installed: bash tools/setup.sh --gpu"), "{report}"),
    }
}

#[test]
fn a_cpu_build_of_onnx_runtime_is_named_as_such() {
    let lib = cpu_library();
    let out =
        safed(&["bench", "--model", DEMO, "--runs", "1", "--provider", "cuda", "--ort-library", lib.to_str().unwrap()]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("has no CUDAExecutionProvider (a CPU build)") && said.contains("tools/setup.sh --gpu"),
        "{said}"
    );
    assert!(!said.contains("not enabled in this build"), "our reason comes first: {said}");
}

#[test]
fn without_a_gpu_cuda_and_tensorrt_name_the_real_cause() {
    if gpu_runtime().is_none() {
        return;
    }
    if has_driver() {
        eprintln!("SKIPPED: this machine has an NVIDIA driver");
        return;
    }
    for provider in ["cuda", "tensorrt"] {
        let out = safed(&["bench", "--model", DEMO, "--runs", "1", "--provider", provider]);
        let said = text(&out);
        assert!(!out.status.success(), "{provider}: {said}");
        assert!(
            said.contains("cannot start") && said.contains("no NVIDIA driver: libcuda.so.1 not found"),
            "{provider}: {said}"
        );
        assert!(!said.contains("not enabled in this build"), "{provider}: the GPU build was loaded: {said}");
        assert!(!said.contains("per sample median"), "{provider}: nothing ran: {said}");
        if provider == "tensorrt" {
            assert!(said.contains("libnvinfer.so.10"), "the missing TensorRT library is named: {said}");
        } else {
            assert!(!said.contains("missing libcu"), "the CUDA libraries come from the GPU runtime: {said}");
        }
        let fallback = safed(&["bench", "--model", DEMO, "--runs", "1", "--provider", provider, "--cpu-fallback"]);
        let said = text(&fallback);
        assert!(fallback.status.success(), "{provider} --cpu-fallback runs on the CPU: {said}");
        assert!(said.contains("running on the CPU") && said.contains("no NVIDIA driver"), "the log says why: {said}");
    }
}

#[test]
fn a_daemon_with_an_unusable_provider_stops_before_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let config = tmp.path().join("safed.toml");
    let body = format!("[model]\nprovider = \"cuda\"\nort_library = {:?}\n", cpu_library().display().to_string());
    std::fs::write(&config, body).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_safed"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success() && said.contains("has no CUDAExecutionProvider"), "{said}");
    let mut buf = [0u8; 512];
    while let Ok(n) = sock.recv(&mut buf) {
        let note = String::from_utf8_lossy(&buf[..n]);
        assert!(!note.contains("READY=1"), "READY sent before the provider failed: {note}");
    }
    assert!(!said.contains("\"label\""), "no recognition: {said}");
}
