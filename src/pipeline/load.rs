//! The streaming model a pipeline runs: the split pair beside a full graph, or the bundled demo.

use anyhow::Result;

use crate::infer::stream_cache::StreamingModel;

/// The split pair beside a full graph NAME.onnx: NAME.encoder.onnx and NAME.fusion.onnx.
pub fn split_parts(full: &std::path::Path) -> [std::path::PathBuf; 2] {
    let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    ["encoder", "fusion"].map(|role| full.with_file_name(format!("{stem}.{role}.onnx")))
}

/// The split pair beside `full` (see [`split_parts`]), or the bundled demo.
pub fn load_model(
    full: Option<&std::path::Path>,
    mut cfg: crate::infer::SessionConfig,
) -> Result<(StreamingModel, String)> {
    use crate::infer::SafeModel;
    // Two sessions take turns: spinning threads of one would starve the other.
    cfg.spin = false;
    let (encoder, fusion, name) = match full {
        Some(full) => {
            let [encoder, fusion] = split_parts(full);
            (SafeModel::load(&encoder, &cfg)?, SafeModel::load(&fusion, &cfg)?, full.display().to_string())
        }
        None => {
            let (e, f) = crate::demo::model_bytes();
            let enc = SafeModel::from_bytes(e, "(bundled) demo.encoder.onnx", &cfg)?;
            let fus = SafeModel::from_bytes(f, "(bundled) demo.fusion.onnx", &cfg)?;
            (enc, fus, "(bundled) demo.onnx".to_string())
        }
    };
    let model = StreamingModel::new(encoder, fusion)?;
    tracing::info!("{name}: event windows rendered as {} (safe.events)", model.events());
    Ok((model, name))
}
