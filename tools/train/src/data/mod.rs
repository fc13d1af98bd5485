//! Training data: the authors' folder layout, HARDVS-style label files, and recordings, all
//! turned into paired RGB / event images by safed's own code (`safed::accumulate`,
//! `safed::infer::preprocess`), so training sees what serving sees.
//!
//! Layouts under a dataset root (`labels.txt` gives the class names in class order; without
//! it the class folders, sorted):
//! - `<split>/<class>/<name>/<name>_aps/*.png` and `<name>_dvs/*.png` (SAFE's layout);
//! - `<split>/<class>/<name>.aedat4`, or `<split>/<class>/<name>/<name>.aedat4` (recordings);
//! - `<split>_label.txt` with lines `<path> <num_frames> <label>` (HARDVS), where `<path>` is a
//!   sample folder (with `_aps`/`_dvs` folders, or `aps/` and `dvs/`) or a recording.
//!
//! With voxel grids as the event input ([`Representation::Voxel`]) every sample needs its
//! recording: frame folders hold event images already rendered, which no voxel grid can be made
//! from.

pub mod batch;
pub mod synth;

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use image::RgbImage;
use safed::accumulate::{read_clip, FrameWindow, Representation};
use safed::infer::preprocess::{frame_files, load_image};

#[derive(Debug, Clone)]
pub enum Source {
    Frames { aps: PathBuf, dvs: PathBuf },
    Recording(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub label: usize,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub split: String,
    pub labels: Vec<String>,
    pub samples: Vec<Sample>,
    /// How recordings' event windows are rendered.
    pub events: Representation,
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

fn is_recording(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "aedat4" | "aedat" | "raw"))
}

/// What a sample folder or file holds: for the event image, its frame folders if it has them,
/// else its recording; for voxel grids, its recording.
fn source_of(path: &Path, events: Representation) -> Result<Source> {
    if path.is_file() {
        return Ok(Source::Recording(path.to_path_buf()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let rec = path.join(format!("{name}.aedat4"));
    if events == Representation::Voxel {
        ensure!(
            rec.is_file(),
            "{}: voxel input needs the recorded events ({name}.aedat4); frame folders hold event images already rendered",
            path.display()
        );
        return Ok(Source::Recording(rec));
    }
    for (aps, dvs) in [(format!("{name}_aps"), format!("{name}_dvs")), ("aps".into(), "dvs".into())] {
        let (a, d) = (path.join(&aps), path.join(&dvs));
        if a.is_dir() && d.is_dir() {
            return Ok(Source::Frames { aps: a, dvs: d });
        }
    }
    if rec.is_file() {
        return Ok(Source::Recording(rec));
    }
    bail!("{}: neither {name}_aps/{name}_dvs frame folders nor a {name}.aedat4 recording", path.display())
}

impl Dataset {
    /// A split, its samples read for the event image.
    pub fn open(root: &Path, split: &str) -> Result<Dataset> {
        Self::open_for(root, split, Representation::Image)
    }

    /// A split, its samples read for `events` (voxel grids need every sample's recording).
    pub fn open_for(root: &Path, split: &str, events: Representation) -> Result<Dataset> {
        let label_file = root.join(format!("{split}_label.txt"));
        let labels_path = root.join("labels.txt");
        let named = if labels_path.exists() { Some(crate::export::read_labels(&labels_path)?) } else { None };
        if label_file.exists() {
            let labels = named.with_context(|| {
                format!("{}: needs {} for the class names", label_file.display(), labels_path.display())
            })?;
            let samples = Self::from_label_file(root, &label_file, labels.len(), events)?;
            return Ok(Dataset { root: root.into(), split: split.into(), labels, samples, events });
        }
        let split_dir = root.join(split);
        ensure!(split_dir.is_dir(), "{}: no {split}/ folder and no {split}_label.txt", root.display());
        let class_dirs = subdirs(&split_dir)?;
        let labels = match named {
            Some(l) => l,
            None => class_dirs.iter().filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).collect(),
        };
        let mut samples = Vec::new();
        for dir in class_dirs {
            let class = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let label = labels
                .iter()
                .position(|l| *l == class)
                .with_context(|| format!("{}: class folder {class:?} is not in the labels", dir.display()))?;
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for path in entries.into_iter().filter(|p| p.is_dir() || is_recording(p)) {
                let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                samples.push(Sample { name: format!("{class}/{name}"), label, source: source_of(&path, events)? });
            }
        }
        ensure!(!samples.is_empty(), "{}: no samples", split_dir.display());
        Ok(Dataset { root: root.into(), split: split.into(), labels, samples, events })
    }

    fn from_label_file(root: &Path, file: &Path, classes: usize, events: Representation) -> Result<Vec<Sample>> {
        let text = std::fs::read_to_string(file).with_context(|| format!("{}: cannot read", file.display()))?;
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = || format!("{}:{}", file.display(), i + 1);
            let [path, _frames, label] = fields[..] else { bail!("{}: expected `<path> <num_frames> <label>`", at()) };
            let label: usize = label.parse().with_context(|| format!("{}: label {label:?} is not a number", at()))?;
            ensure!(label < classes, "{}: label {label} but only {classes} classes", at());
            let source = source_of(&root.join(path), events).with_context(at)?;
            samples.push(Sample { name: path.to_string(), label, source });
        }
        ensure!(!samples.is_empty(), "{}: no samples", file.display());
        Ok(samples)
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.labels.len()];
        self.samples.iter().for_each(|s| n[s.label] += 1);
        n
    }
}

/// A sample's frames and event images, in time order, at their recorded size.
pub struct SampleImages {
    pub rgb: Vec<RgbImage>,
    pub events: Vec<RgbImage>,
}

/// A sample's images, its event windows rendered as `events`.
pub fn load_sample(s: &Sample, events: Representation) -> Result<SampleImages> {
    match &s.source {
        Source::Frames { aps, dvs } => {
            ensure!(
                events == Representation::Image,
                "{}: {events} input needs the recorded events, not rendered event images",
                dvs.display()
            );
            let load = |dir: &Path| -> Result<Vec<RgbImage>> {
                frame_files(dir)?.iter().map(|p| Ok(load_image(p)?)).collect()
            };
            let (rgb, events) = (load(aps)?, load(dvs)?);
            Ok(SampleImages { rgb, events })
        }
        Source::Recording(path) => {
            let shown = path.display().to_string();
            let mut src = safed::events::open(&shown)?;
            let clip = read_clip(src.as_mut())?;
            let images = clip.images(FrameWindow::Interval, events, 8, &shown)?;
            Ok(SampleImages { rgb: images.rgb, events: images.events })
        }
    }
}
