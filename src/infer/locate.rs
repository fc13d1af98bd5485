//! Where safed's runtime libraries are: ONNX Runtime (the CPU build, and the optional GPU
//! build) and OpenVINO. They are found relative to the running binary, never through a path of
//! the machine that built it, so a binary still works after its build folder moved or went:
//!
//! - installed (`PREFIX/bin/safed`, as the Debian package lays it out): `PREFIX/lib/safed/`
//!   holds `libonnxruntime.so`, `openvino/` and, once installed, `gpu/`;
//! - in a checkout: `tools/ort/lib`, `tools/openvino/lib`, `tools/ort/gpu` of the checkout named
//!   by `SAFED_CHECKOUT` (`cargo run` and `cargo test` set it: `.cargo/config.toml`), or of the
//!   checkout the binary sits in (`target/release/safed`).
//!
//! The explicit settings (`ORT_DYLIB_PATH`, `[model] ort_library`, `SAFED_OPENVINO_LIBRARY`)
//! come before all of these; their callers check them.

use std::path::{Path, PathBuf};

/// ONNX Runtime's library, by this name in every folder safed looks in (CPU and GPU builds).
pub const ORT_LIBRARY: &str = "libonnxruntime.so";

/// One of the runtimes safed loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// ONNX Runtime's CPU build (`libonnxruntime.so`).
    OrtCpu,
    /// ONNX Runtime's GPU build with its CUDA libraries (`bash tools/setup.sh --gpu`).
    OrtGpu,
    /// OpenVINO's C API, core and CPU plugin.
    OpenVino,
}

impl Runtime {
    /// Below an installed prefix: the package's folder first, then the layout docs/service.md
    /// described before the package existed (`lib/`, `lib/openvino`, `lib/safed-gpu`).
    fn installed(self) -> [&'static str; 2] {
        match self {
            Runtime::OrtCpu => ["lib/safed", "lib"],
            Runtime::OrtGpu => ["lib/safed/gpu", "lib/safed-gpu"],
            Runtime::OpenVino => ["lib/safed/openvino", "lib/openvino"],
        }
    }

    /// Below a checkout, where `tools/setup.sh` puts it.
    fn in_checkout(self) -> &'static str {
        match self {
            Runtime::OrtCpu => "tools/ort/lib",
            Runtime::OrtGpu => "tools/ort/gpu",
            Runtime::OpenVino => "tools/openvino/lib",
        }
    }
}

/// Whether `dir` is a safed checkout (its setup script and workspace manifest).
fn is_checkout(dir: &Path) -> bool {
    dir.join("tools/setup.sh").is_file() && dir.join("Cargo.toml").is_file()
}

/// The folders that may hold `runtime`, in the order they are tried, for a binary at `exe`
/// with `checkout_env` as `SAFED_CHECKOUT`.
pub fn candidates_for(runtime: Runtime, exe: Option<&Path>, checkout_env: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let exe_dir = exe.and_then(Path::parent);
    if let Some(prefix) = exe_dir.and_then(Path::parent) {
        dirs.extend(runtime.installed().iter().map(|sub| prefix.join(sub)));
    }
    let mut roots: Vec<PathBuf> = checkout_env.map(Path::to_path_buf).into_iter().collect();
    // target/release/safed, target/x86_64-unknown-linux-gnu/release/safed, ...
    roots.extend(
        exe_dir.into_iter().flat_map(Path::ancestors).take(4).filter(|d| is_checkout(d)).map(Path::to_path_buf),
    );
    // SAFED_CHECKOUT is usually the checkout the binary sits in: list it once.
    roots.dedup();
    dirs.extend(roots.iter().map(|root| root.join(runtime.in_checkout())));
    dirs
}

/// The folders that may hold `runtime` for this process.
pub fn candidates(runtime: Runtime) -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    // Canonical, so that paths read the same however it was written (cargo writes "CHECKOUT/.").
    let checkout = std::env::var_os("SAFED_CHECKOUT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|p| p.canonicalize().unwrap_or(p));
    candidates_for(runtime, exe.as_deref(), checkout.as_deref())
}

/// The first candidate folder holding `file`.
pub fn find(runtime: Runtime, file: &str) -> Option<PathBuf> {
    candidates(runtime).into_iter().map(|d| d.join(file)).find(|p| p.is_file())
}

/// The candidate folders as one line, for "not found" messages.
pub fn looked_in(runtime: Runtime) -> String {
    let dirs: Vec<String> = candidates(runtime).iter().map(|d| d.display().to_string()).collect();
    if dirs.is_empty() {
        "no folder (the running binary's path is unknown)".into()
    } else {
        dirs.join(", ")
    }
}

/// Whether this binary runs from an installed prefix (the package) rather than a checkout:
/// what to tell a user who lacks the GPU runtime depends on it.
pub fn installed_prefix() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let prefix = exe.parent()?.parent()?;
    prefix.join("lib/safed").is_dir().then(|| prefix.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_binary_looks_beside_its_prefix_first() {
        let dirs = candidates_for(Runtime::OrtCpu, Some(Path::new("/usr/bin/safed")), None);
        assert_eq!(dirs, [PathBuf::from("/usr/lib/safed"), PathBuf::from("/usr/lib")]);
        let dirs = candidates_for(Runtime::OpenVino, Some(Path::new("/opt/x/bin/safed")), None);
        assert_eq!(dirs[0], PathBuf::from("/opt/x/lib/safed/openvino"));
    }

    #[test]
    fn a_checkout_is_found_from_the_environment_or_above_the_binary() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = repo.join("target/release/safed");
        let dirs = candidates_for(Runtime::OrtGpu, Some(&exe), None);
        assert!(dirs.contains(&repo.join("tools/ort/gpu")), "{dirs:?}");
        let elsewhere = Path::new("/nonexistent/cache/release/safed");
        let dirs = candidates_for(Runtime::OpenVino, Some(elsewhere), Some(repo));
        assert_eq!(dirs.last(), Some(&repo.join("tools/openvino/lib")));
        let dirs = candidates_for(Runtime::OpenVino, Some(elsewhere), None);
        assert!(dirs.iter().all(|d| !d.starts_with(repo)), "no checkout without one: {dirs:?}");
    }
}
