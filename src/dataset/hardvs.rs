//! HARDVS's label files: `<split>_label.txt`, one line per sample, `<path> <num_frames>
//! <label>` (label 0-based), `<path>` relative to the root. A path names
//! - a sample folder with frame folders (`<name>_aps/` + `<name>_dvs/`, or `aps/` + `dvs/`);
//! - a compact event file (`.npz` with t, x, y, p), whose RGB frames are the `_aps` (or `aps`)
//!   folder of the folder of the same name beside it, when there is one;
//! - a recording (`.aedat4`, or another event file safed reads).
//!
//! Class names come from `labels.txt` (one per line, in label order); without it, the labels'
//! numbers stand for the names. `<num_frames>` is the count the authors' loader was told; it
//! is not checked (the frames on disk are what is replayed).

use std::path::{Path, PathBuf};

use super::{file_name, folders, read_labels_file, Dataset, DatasetError, Layout, Sample, SampleSource};

/// The split, or None when `<split>_label.txt` does not exist.
pub fn open(root: &Path, split: &str) -> Result<Option<Dataset>, DatasetError> {
    let file = root.join(format!("{split}_label.txt"));
    if !file.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| DatasetError::io(&file, e))?;
    let named = read_labels_file(root)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields[..] {
            [path, _frames, label] => {
                label.parse::<usize>().map(|l| (path, l)).map_err(|_| format!("label {label:?} is not a number"))
            }
            _ => Err("expected `<path> <num_frames> <label>`".to_string()),
        };
        rows.push((i + 1, fields.first().copied().unwrap_or_default().to_string(), parsed));
    }
    if rows.is_empty() {
        return Err(DatasetError::Empty { path: file.display().to_string() });
    }
    let classes = match named {
        Some(l) => l,
        None => {
            let max = rows.iter().filter_map(|r| r.2.as_ref().ok().map(|p| p.1)).max().unwrap_or(0);
            (0..=max).map(|l| l.to_string()).collect()
        }
    };
    let shown = file.display();
    let samples = rows
        .into_iter()
        .map(|(line, path, parsed)| match parsed {
            Err(what) => {
                Sample { id: path, label: None, source: SampleSource::Broken(format!("{shown}:{line}: {what}")) }
            }
            Ok((_, label)) if label >= classes.len() => Sample {
                id: path,
                label: None,
                source: SampleSource::Broken(format!(
                    "{shown}:{line}: label {label}, but labels.txt names {} classes",
                    classes.len()
                )),
            },
            Ok((p, label)) => Sample { id: p.to_string(), label: Some(label), source: source_of(&root.join(p)) },
        })
        .collect();
    Ok(Some(Dataset { root: root.into(), split: split.into(), layout: Layout::Hardvs, classes, samples }))
}

fn source_of(path: &Path) -> SampleSource {
    let npz = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
        Some(path.to_path_buf())
    } else {
        let p = PathBuf::from(format!("{}.npz", path.display()));
        (!path.exists() && p.is_file()).then_some(p)
    };
    match npz {
        Some(events) if events.is_file() => {
            let aps = frames_beside(&events);
            SampleSource::EventsWithFrames { events, aps }
        }
        Some(events) => SampleSource::Broken(format!("{}: no such file", events.display())),
        None => folders::source_of(path),
    }
}

/// `<stem>/<stem>_aps` or `<stem>/aps` beside an event file.
fn frames_beside(events: &Path) -> Option<PathBuf> {
    let dir = events.with_extension("");
    let name = file_name(&dir);
    [dir.join(format!("{name}_aps")), dir.join("aps")].into_iter().find(|p| p.is_dir())
}
