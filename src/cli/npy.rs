//! Float32 `.npy` tensors given on the command line (`classify`, `bench --against`).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// A float32 array of whole samples of `per_sample` values each ([B, F, 3, S, S] or
/// [F, 3, S, S] for a full graph's input).
pub fn read_npy(path: &Path, per_sample: usize) -> Result<Vec<f32>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file))
        .with_context(|| format!("{}: not a .npy file", path.display()))?;
    let descr = npy.dtype().descr();
    if descr.trim_matches('\'') != "<f4" {
        bail!("{}: dtype {descr}, expected float32 (<f4)", path.display());
    }
    let shape = npy.shape().to_vec();
    let data = npy.into_vec::<f32>().with_context(|| format!("{}: reading the array", path.display()))?;
    if data.is_empty() || data.len() % per_sample != 0 {
        bail!(
            "{}: shape {shape:?} is not [B, F, 3, S, S] for this model ({per_sample} values per sample)",
            path.display()
        );
    }
    Ok(data)
}
