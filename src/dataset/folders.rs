//! SAFE's layout and per-sample recordings: `<split>/<class>/<sample>`, where a sample is
//! - a folder with `<name>_aps/` (RGB/APS frames) and `<name>_dvs/` (the authors' event
//!   images), or `aps/` and `dvs/` (SAFE's repository for PokerEvent and HARDVS);
//! - a folder with its recording `<name>.aedat4`;
//! - a recording file `<name>.aedat4` (PokerEvent's raw layout), or any event file safed reads
//!   (`.aedat`, `.raw`, `.npz`); with a video `<name>.mp4` (`.avi`, `.mkv`, `.mov`, `.webm`)
//!   beside it, the video gives the sample's RGB frames (in place of any the recording holds).
//!
//! Class names come from `labels.txt` at the root (one per line, in label order) or else from
//! the class folders, sorted.

use std::path::Path;

use super::{entries, file_name, read_labels_file, Dataset, DatasetError, Layout, Sample, SampleSource};

const EVENT_FILES: [&str; 4] = ["aedat4", "aedat", "raw", "npz"];
const VIDEO_FILES: [&str; 5] = ["mp4", "avi", "mkv", "mov", "webm"];

/// `<stem>.<video>` beside an event file, trying lower- and upper-case extensions.
fn video_beside(events: &Path) -> Option<std::path::PathBuf> {
    VIDEO_FILES
        .iter()
        .flat_map(|e| [e.to_string(), e.to_ascii_uppercase()])
        .map(|e| events.with_extension(e))
        .find(|p| p.is_file())
}
fn is_event_file(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| EVENT_FILES.contains(&e.to_ascii_lowercase().as_str()))
}

/// The split, or None when `root/split` is not a folder.
pub fn open(root: &Path, split: &str) -> Result<Option<Dataset>, DatasetError> {
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Ok(None);
    }
    let class_dirs: Vec<_> = entries(&split_dir)?.into_iter().filter(|p| p.is_dir()).collect();
    let classes = match read_labels_file(root)? {
        Some(l) => l,
        None => class_dirs.iter().map(|d| file_name(d)).collect(),
    };
    let mut samples = Vec::new();
    for dir in &class_dirs {
        let class = file_name(dir);
        let label = classes.iter().position(|c| *c == class);
        for path in entries(dir)?.into_iter().filter(|p| p.is_dir() || is_event_file(p)) {
            let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let source = match label {
                Some(_) => source_of(&path),
                None => SampleSource::Broken(format!("class folder {class:?} is not in labels.txt")),
            };
            samples.push(Sample { id: format!("{class}/{name}"), label, source });
        }
    }
    if samples.is_empty() {
        return Err(DatasetError::Empty { path: split_dir.display().to_string() });
    }
    Ok(Some(Dataset { root: root.into(), split: split.into(), layout: Layout::Folders, classes, samples }))
}

/// What a sample folder or file holds: its frame folders if it has them, else its recording.
pub fn source_of(path: &Path) -> SampleSource {
    if path.is_file() {
        if let Some(video) = video_beside(path) {
            return SampleSource::EventsWithVideo { events: path.to_path_buf(), video };
        }
        return if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            SampleSource::EventsWithFrames { events: path.to_path_buf(), aps: None }
        } else {
            SampleSource::Recording(path.to_path_buf())
        };
    }
    if !path.is_dir() {
        return SampleSource::Broken(format!("{}: no such folder or file", path.display()));
    }
    let name = file_name(path);
    for (aps, dvs) in [(format!("{name}_aps"), format!("{name}_dvs")), ("aps".into(), "dvs".into())] {
        let (a, d) = (path.join(&aps), path.join(&dvs));
        if a.is_dir() && d.is_dir() {
            return SampleSource::Frames { aps: a, dvs: d };
        }
    }
    let rec = path.join(format!("{name}.aedat4"));
    if rec.is_file() {
        return SampleSource::Recording(rec);
    }
    SampleSource::Broken(format!(
        "{}: neither {name}_aps/ and {name}_dvs/ frame folders nor a {name}.aedat4 recording",
        path.display()
    ))
}

/// A frame-folder sample's recording beside its folders (`<name>/<name>.aedat4`), if any.
pub fn recording_beside(aps: &Path) -> Option<std::path::PathBuf> {
    let dir = aps.parent()?;
    let rec = dir.join(format!("{}.aedat4", file_name(dir)));
    rec.is_file().then_some(rec)
}
