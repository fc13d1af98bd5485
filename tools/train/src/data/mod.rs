//! Training data, read through safed's dataset module (`safed::dataset`: SAFE's folders,
//! recordings, HARDVS label files, DVS128 Gesture), and turned into paired RGB / event images
//! by safed's own code (`safed::accumulate`, `safed::infer::preprocess`), so training,
//! evaluation and `safed replay --dataset` see the same samples and the same pixels.
//!
//! With voxel grids as the event input ([`Representation::Voxel`]) every sample needs its
//! recording: frame folders hold event images already rendered, which no voxel grid can be made
//! from.

pub mod batch;
pub mod synth;

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use safed::accumulate::Representation;
use safed::dataset::{folders, load_images};

/// Where a sample's data is (safed's definition).
pub use safed::dataset::SampleSource as Source;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub label: usize,
    pub source: Source,
}

/// A split as training and evaluation take it: every sample usable, read for `events`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: std::path::PathBuf,
    pub split: String,
    pub labels: Vec<String>,
    pub samples: Vec<Sample>,
    /// How recordings' event windows are rendered.
    pub events: Representation,
}

impl Dataset {
    /// A split, its samples read for the event image.
    pub fn open(root: &Path, split: &str) -> Result<Dataset> {
        Self::open_for(root, split, Representation::Image)
    }

    /// A split of any layout safed reads (`safed::dataset`), for `events`: voxel grids need
    /// every sample's recording. A sample that cannot be used is an error here (a replay
    /// reports it and goes on; training must not silently learn from less).
    pub fn open_for(root: &Path, split: &str, events: Representation) -> Result<Dataset> {
        let d = safed::dataset::Dataset::open(root, split)?;
        let mut samples = Vec::with_capacity(d.samples.len());
        for s in d.samples {
            let (Some(label), false) = (s.label, matches!(s.source, Source::Broken(_))) else {
                let why = match &s.source {
                    Source::Broken(why) => why.clone(),
                    _ => "no label".into(),
                };
                bail!("{}: sample {}: {why}", root.display(), s.id);
            };
            let source = match (events, s.source) {
                (Representation::Voxel, Source::Frames { aps, .. }) => match folders::recording_beside(&aps) {
                    Some(rec) => Source::Recording(rec),
                    None => bail!(
                        "{}: voxel input needs the recorded events ({}.aedat4 beside the frame folders); frame folders hold event images already rendered",
                        aps.parent().unwrap_or(&aps).display(),
                        sample_folder_name(&aps)
                    ),
                },
                (_, source) => source,
            };
            samples.push(Sample { name: s.id, label, source });
        }
        Ok(Dataset { root: d.root, split: d.split, labels: d.classes, samples, events })
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.labels.len()];
        self.samples.iter().for_each(|s| n[s.label] += 1);
        n
    }
}

fn sample_folder_name(aps: &Path) -> String {
    aps.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A sample's frames and event images, in time order, at their recorded size.
pub struct SampleImages {
    pub rgb: Vec<RgbImage>,
    pub events: Vec<RgbImage>,
}

/// A sample's images, its event windows rendered as `events` (safed's reading of the sample,
/// the one its dataset replay uses).
pub fn load_sample(s: &Sample, events: Representation) -> Result<SampleImages> {
    if events != Representation::Image && matches!(s.source, Source::Frames { .. }) {
        bail!("sample {}: {events} input needs the recorded events, not rendered event images", s.name);
    }
    let images = load_images(&s.source, events, &s.name).context(s.name.clone())?;
    Ok(SampleImages { rgb: images.rgb, events: images.events })
}
