//! What a dataset is: its layout on disk, its class names and the samples of a split. One
//! definition for training and evaluation (safe-train) and for replay (`safed replay
//! --dataset`), so a sample means the same thing to both.
//!
//! Layouts, one module each, looked for in this order:
//! - [`dvs_gesture`]: DVS128 Gesture (`user*_*.aedat` + `_labels.csv`, `trials_to_<split>.txt`);
//! - [`hardvs`]: a `<split>_label.txt` label file (HARDVS);
//! - [`folders`]: `<split>/<class>/<sample>` folders or recordings (SAFE's layout, PokerEvent).
//!
//! Opening a split lists its samples and checks what can be checked from names alone; a
//! sample that cannot be used (a missing folder, a label outside the labels file) is kept as
//! [`SampleSource::Broken`] with its reason, so a replay reports it and goes on. Samples are
//! read one at a time ([`load`]), never all at once.

pub mod dvs_gesture;
pub mod folders;
pub mod hardvs;
pub mod load;
pub mod results;
pub mod score;

use std::path::{Path, PathBuf};

pub use load::{frame_pairs, load_clip, load_images, LoadError, SampleClip};

/// The rate at which the frames of a frame-folder sample are stamped when nothing says
/// otherwise: neither SAFE's repository nor HARDVS's or PokerEvent's readme states one (their
/// DAVIS346 recordings run the APS at about 30 fps).
pub const DEFAULT_FPS: f64 = 30.0;

/// The window of an event-only sample (no frames): what a live event-only stream uses too.
pub const EVENT_ONLY_WINDOW_US: i64 = 33_333;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}:{line}: {what}")]
    Line { path: String, line: usize, what: String },
    #[error("{root}: no dataset layout found for split {split:?}; looked for {looked}; found {found}")]
    NoLayout { root: String, split: String, looked: String, found: String },
    #[error("{path}: no samples")]
    Empty { path: String },
    #[error("{path}: {what}")]
    Layout { path: String, what: String },
}

impl DatasetError {
    pub(crate) fn io(path: &Path, err: std::io::Error) -> Self {
        DatasetError::Io { path: path.display().to_string(), err }
    }
}

/// Which layout a dataset root has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `<split>/<class>/<sample>`: frame folders (SAFE) or recordings.
    Folders,
    /// `<split>_label.txt` (HARDVS).
    Hardvs,
    /// DVS128 Gesture.
    DvsGesture,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Folders => "folders",
            Layout::Hardvs => "hardvs",
            Layout::DvsGesture => "dvs-gesture",
        }
    }
}

/// Where one sample's data is.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSource {
    /// RGB/APS frames and the event images the dataset's authors rendered (`_aps` / `_dvs`).
    Frames { aps: PathBuf, dvs: PathBuf },
    /// A recording: events, and frames when it has them.
    Recording(PathBuf),
    /// An event file without frames of its own (HARDVS's `.npz`), with the sample's RGB frames
    /// from a folder when there is one: they are spread over the events' span, one per equal
    /// time slice.
    EventsWithFrames { events: PathBuf, aps: Option<PathBuf> },
    /// An event file with a video of the same name beside it: the video's frames, aligned to
    /// the events as `safed replay --rgb` aligns a video (first event = the video's start).
    EventsWithVideo { events: PathBuf, video: PathBuf },
    /// The labelled span [start, end) µs of a longer recording (DVS128 Gesture).
    Segment { recording: PathBuf, start: i64, end: i64 },
    /// Listed by the dataset but unusable: why.
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// Unique within the split: `class/name`, the label file's path, `recording#segment`.
    pub id: String,
    /// Index into [`Dataset::classes`]; None when the listed label is not a class.
    pub label: Option<usize>,
    pub source: SampleSource,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub split: String,
    pub layout: Layout,
    /// Class names, in label order.
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// The samples of `split` under `root`, whichever layout it has.
    pub fn open(root: &Path, split: &str) -> Result<Dataset, DatasetError> {
        if let Some(d) = dvs_gesture::open(root, split)? {
            return Ok(d);
        }
        if let Some(d) = hardvs::open(root, split)? {
            return Ok(d);
        }
        if let Some(d) = folders::open(root, split)? {
            return Ok(d);
        }
        Err(DatasetError::NoLayout {
            root: root.display().to_string(),
            split: split.to_string(),
            looked: format!(
                "trials_to_{split}.txt with user*.aedat (DVS128 Gesture), {split}_label.txt (HARDVS), \
                 {split}/<class>/<sample> (SAFE's folders or recordings)"
            ),
            found: describe(root),
        })
    }

    /// Samples per class (broken samples without a label are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.classes.len()];
        self.samples.iter().filter_map(|s| s.label).for_each(|l| n[l] += 1);
        n
    }

    /// The class name of a sample.
    pub fn class_of(&self, s: &Sample) -> Option<&str> {
        s.label.map(|l| self.classes[l].as_str())
    }
}

/// `labels.txt` under `root` when it exists: one class name per line, in label order.
pub fn read_labels_file(root: &Path) -> Result<Option<Vec<String>>, DatasetError> {
    let path = root.join("labels.txt");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let labels: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            if labels.is_empty() {
                return Err(DatasetError::Empty { path: path.display().to_string() });
            }
            Ok(Some(labels))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DatasetError::io(&path, e)),
    }
}

/// A folder's entries, sorted by name.
pub(crate) fn entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DatasetError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// The last path component as text.
pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What a root holds, for the no-layout error: its first entries.
fn describe(root: &Path) -> String {
    match entries(root) {
        Err(e) => e.to_string(),
        Ok(list) if list.is_empty() => "an empty folder".into(),
        Ok(list) => {
            let mut names: Vec<String> = list
                .iter()
                .take(8)
                .map(|p| if p.is_dir() { format!("{}/", file_name(p)) } else { file_name(p) })
                .collect();
            if list.len() > 8 {
                names.push(format!("... ({} entries)", list.len()));
            }
            names.join(", ")
        }
    }
}

/// Every `n`-th sample from the `i`-th (a cluster's array job `i` of `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 <= I < N.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// Fuzzing entry: the text files a dataset root holds (HARDVS's label files, DVS128 Gesture's
/// trial list, labels CSV and class mapping, `labels.txt`) and a `--results` file to resume
/// from, each a part of `bytes` (split at 0xFF), written to one scratch root per process and
/// opened as a user's would be. Errors are fine; a panic or a hang is the bug.
#[doc(hidden)]
pub fn fuzz_text_files(bytes: &[u8]) {
    // The same file names every input, each rewritten: nothing of the last input survives, and
    // no directory is removed and made again per input (that was most of the target's time).
    let root = std::env::temp_dir().join(format!("safed-fuzz-dataset-{}", std::process::id()));
    let (hardvs, gesture) = (root.join("hardvs"), root.join("gesture"));
    if std::fs::create_dir_all(&hardvs).is_err() || std::fs::create_dir_all(&gesture).is_err() {
        return;
    }
    let mut parts = bytes.split(|&b| b == 0xFF);
    let mut next = || parts.next().unwrap_or_default();
    let files = [
        hardvs.join("test_label.txt"),
        hardvs.join("labels.txt"),
        gesture.join("trials_to_test.txt"),
        gesture.join("user01_fluorescent_labels.csv"),
        gesture.join("gesture_mapping.csv"),
        root.join("results.jsonl"),
    ];
    for f in &files {
        if std::fs::write(f, next()).is_err() {
            return;
        }
    }
    let _ = std::fs::write(gesture.join("user01_fluorescent.aedat"), b"");
    let _ = Dataset::open(&hardvs, "test");
    let _ = Dataset::open(&gesture, "test");
    let _ = results::read(&files[5]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_samples() {
        assert_eq!(Shard::parse("1/3"), Some(Shard { index: 1, count: 3 }));
        assert!(Shard::parse("3/3").is_none() && Shard::parse("0/0").is_none() && Shard::parse("x").is_none());
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for p in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(p)).count(), 1);
        }
    }

    #[test]
    fn a_root_without_a_layout_says_what_was_looked_for_and_found() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("readme.md"), "x").unwrap();
        std::fs::create_dir(tmp.path().join("train")).unwrap();
        let e = Dataset::open(tmp.path(), "test").unwrap_err().to_string();
        assert!(e.contains("test_label.txt") && e.contains("trials_to_test.txt") && e.contains("test/<class>"), "{e}");
        assert!(e.contains("readme.md, train/"), "{e}");
    }
}
