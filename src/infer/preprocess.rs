//! Images into SAFE's input tensors, as shared/SAFE.md says the authors prepare them: RGB,
//! resized to S x S, scaled to [0, 1], normalised per channel with mean/std (0.5/0.5), laid out
//! channel-first. Shared by safed and safe-train so that serving and training see the same input.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessError {
    #[error("{path}: {err}")]
    Image { path: String, err: image::ImageError },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: no PNG or JPEG frames")]
    NoFrames { path: String },
}

/// Writes `img` (any size) as a normalised [3, S, S] tensor into `out`. Resizing uses a
/// triangle (bilinear) filter whose support widens when shrinking, as PIL's BILINEAR does
/// under torchvision's Resize.
pub fn image_to_chw(img: &RgbImage, size: u32, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    let resized;
    let img = if img.dimensions() == (size, size) {
        img
    } else {
        resized = image::imageops::resize(img, size, size, FilterType::Triangle);
        &resized
    };
    let plane = (size * size) as usize;
    debug_assert_eq!(out.len(), 3 * plane);
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
}

pub fn load_image(path: &Path) -> Result<RgbImage, PreprocessError> {
    let shown = || path.display().to_string();
    Ok(image::open(path).map_err(|err| PreprocessError::Image { path: shown(), err })?.to_rgb8())
}

/// F indices spread evenly over `n` frames (the middle of F equal segments): deterministic,
/// as evaluation needs. With fewer than F frames, some repeat.
pub fn evenly_spaced(n: usize, f: usize) -> Vec<usize> {
    (0..f).map(|i| ((2 * i + 1) * n / (2 * f)).min(n.saturating_sub(1))).collect()
}

/// The PNG/JPEG files of a folder, in name order (the datasets number their frames).
pub fn frame_files(dir: &Path) -> Result<Vec<PathBuf>, PreprocessError> {
    let shown = || dir.display().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|err| PreprocessError::Io { path: shown(), err })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PreprocessError::NoFrames { path: shown() });
    }
    Ok(files)
}

/// F evenly spaced frames of a folder as one [F, 3, S, S] tensor.
pub fn frames_from_dir(
    dir: &Path,
    frames: usize,
    size: u32,
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<Vec<f32>, PreprocessError> {
    let files = frame_files(dir)?;
    let per = 3 * (size * size) as usize;
    let mut out = vec![0.0; frames * per];
    for (k, i) in evenly_spaced(files.len(), frames).into_iter().enumerate() {
        let img = load_image(&files[i])?;
        image_to_chw(&img, size, mean, std, &mut out[k * per..(k + 1) * per]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spaced_covers_the_clip() {
        assert_eq!(evenly_spaced(10, 5), [1, 3, 5, 7, 9]);
        assert_eq!(evenly_spaced(5, 5), [0, 1, 2, 3, 4]);
        assert_eq!(evenly_spaced(2, 5), [0, 0, 1, 1, 1]);
        assert_eq!(evenly_spaced(1, 3), [0, 0, 0]);
    }

    #[test]
    fn normalisation_maps_0_255_to_minus_1_1() {
        let img =
            RgbImage::from_fn(2, 2, |x, _| if x == 0 { image::Rgb([0, 255, 0]) } else { image::Rgb([255, 0, 255]) });
        let mut out = vec![0.0; 12];
        image_to_chw(&img, 2, [0.5; 3], [0.5; 3], &mut out);
        assert_eq!(&out[..4], &[-1.0, 1.0, -1.0, 1.0]); // R plane
        assert_eq!(&out[4..8], &[1.0, -1.0, 1.0, -1.0]); // G plane
    }
}
