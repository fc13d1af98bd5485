//! The Python venv tools/setup.sh makes at the workspace root (dv-processing, faery, numpy),
//! for the tests that compare with the vendors' own tools. Shared by the safed and safe-train
//! test crates (safe-train includes this file by path).

use std::path::{Path, PathBuf};

/// The venv's python: `SAFED_VENV`, else `.venv` at the workspace root (the ancestor of this
/// crate holding Cargo.lock). Without it the tests that need it say SKIPPED, except under CI,
/// where a missing venv is a failure.
pub fn venv_python() -> Option<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.ancestors().find(|d| d.join("Cargo.lock").exists()).unwrap_or(crate_dir);
    let venv = std::env::var_os("SAFED_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv"));
    let python = venv.join("bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!("interop venv missing at {}: run tools/setup.sh", venv.display());
    }
    eprintln!("SKIPPED: no interop venv at {} (run tools/setup.sh)", venv.display());
    None
}
