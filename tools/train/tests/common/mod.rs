//! Shared by the train crate's integration tests: the official-tiny fixture and npy helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[path = "../../../../tests/common/venv.rs"]
mod venv;
#[allow(unused_imports)] // not every test crate needs it
pub use venv::venv_python;

pub fn fixture() -> Option<PathBuf> {
    let dir = std::env::var_os("SAFE_OFFICIAL_TINY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/official-tiny"));
    if dir.join("checkpoint.pth").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("official-tiny fixture missing at {} (CI must have it)", dir.display());
    }
    eprintln!("SKIPPED: official-tiny fixture not found at {} (set SAFE_OFFICIAL_TINY)", dir.display());
    None
}

pub fn npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let f = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
