//! DVS128 Gesture (IBM, CVPR 2017), as its release lays it out (the dataset's README.txt, and
//! the loaders that read the original files: tonic's `DVSGesture` before its conversion step,
//! and SpikingJelly's `DVS128Gesture`):
//! - `trials_to_train.txt` / `trials_to_test.txt`: the AEDAT 3.1 recordings of each split, one
//!   `userNN_<lighting>.aedat` per line;
//! - beside each, `userNN_<lighting>_labels.csv`: a header `class,startTime_usec,endTime_usec`
//!   and one row per performed gesture, classes 1-based, times on the recording's own clock;
//! - `gesture_mapping.csv` (`action,label`) names the classes; without it the numbers do.
//!
//! Segments may overlap (the loaders note one in `user22_led_labels.csv`): each is read on its
//! own, [start, end) as SpikingJelly masks them.
//!
//! Each labelled row is one sample: the events of [start, end) of its recording, event-only
//! (a DVS128 has no frames).

use std::path::Path;

use super::{Dataset, DatasetError, Layout, Sample, SampleSource};

/// The split, or None when `trials_to_<split>.txt` does not exist (in the root, or in the
/// `DvsGesture/` folder the release's tarball unpacks to, with `gesture_mapping.csv`, a
/// separate download, beside that folder).
pub fn open(root: &Path, split: &str) -> Result<Option<Dataset>, DatasetError> {
    let name = format!("trials_to_{split}.txt");
    let Some(dir) = [root.to_path_buf(), root.join("DvsGesture")].into_iter().find(|d| d.join(&name).is_file()) else {
        return Ok(None);
    };
    let trials = dir.join(&name);
    let text = std::fs::read_to_string(&trials).map_err(|e| DatasetError::io(&trials, e))?;
    let mapping = match read_mapping(&dir)? {
        Some(m) => Some(m),
        None => dir.parent().map(read_mapping).transpose()?.flatten(),
    };
    let root = dir.as_path();
    let mut rows: Vec<(String, Result<Span, String>)> = Vec::new();
    for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let recording = root.join(name);
        let stem = name.strip_suffix(".aedat").unwrap_or(name);
        let labels = root.join(format!("{stem}_labels.csv"));
        if !recording.is_file() {
            rows.push((stem.to_string(), Err(format!("{}: no such recording", recording.display()))));
            continue;
        }
        let csv = match std::fs::read_to_string(&labels) {
            Ok(t) => t,
            Err(e) => {
                rows.push((stem.to_string(), Err(format!("{}: {e}", labels.display()))));
                continue;
            }
        };
        let mut k = 0;
        for (i, line) in csv.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
            k += 1;
            let id = format!("{stem}#{k}");
            let at = format!("{}:{}", labels.display(), i + 1);
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let parsed = match f[..] {
                [c, s, e] => match (c.parse::<usize>(), s.parse::<i64>(), e.parse::<i64>()) {
                    (Ok(class), Ok(start), Ok(end)) if class >= 1 && start < end => {
                        Ok(Span { class, recording: recording.clone(), start, end })
                    }
                    (Ok(_), Ok(_), Ok(_)) => Err(format!("{at}: class 0 or an empty span in {line:?}")),
                    _ => Err(format!("{at}: expected numbers in {line:?}")),
                },
                _ => Err(format!("{at}: expected `class,startTime_usec,endTime_usec`")),
            };
            rows.push((id, parsed));
        }
    }
    if rows.is_empty() {
        return Err(DatasetError::Empty { path: trials.display().to_string() });
    }
    let classes = match mapping {
        Some(m) => m,
        None => {
            let max = rows.iter().filter_map(|r| r.1.as_ref().ok().map(|p| p.class)).max().unwrap_or(1);
            (1..=max).map(|c| c.to_string()).collect()
        }
    };
    let samples = rows
        .into_iter()
        .map(|(id, parsed)| match parsed {
            Ok(Span { class, recording, start, end }) if class <= classes.len() => {
                Sample { id, label: Some(class - 1), source: SampleSource::Segment { recording, start, end } }
            }
            Ok(Span { class: c, .. }) => Sample {
                id,
                label: None,
                source: SampleSource::Broken(format!("class {c}, but gesture_mapping.csv names {}", classes.len())),
            },
            Err(why) => Sample { id, label: None, source: SampleSource::Broken(why) },
        })
        .collect();
    Ok(Some(Dataset { root: root.into(), split: split.into(), layout: Layout::DvsGesture, classes, samples }))
}

/// One labels-CSV row: a 1-based class over [start, end) µs of a recording.
struct Span {
    class: usize,
    recording: std::path::PathBuf,
    start: i64,
    end: i64,
}

/// `gesture_mapping.csv`: `action,label` rows (1-based labels) as names in label order.
fn read_mapping(root: &Path) -> Result<Option<Vec<String>>, DatasetError> {
    let path = root.join("gesture_mapping.csv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DatasetError::io(&path, e)),
    };
    let mut named: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: &str| DatasetError::Line { path: path.display().to_string(), line: i + 1, what: what.into() };
        let (action, label) = line.rsplit_once(',').ok_or_else(|| bad("expected `action,label`"))?;
        let label: usize = label.trim().parse().map_err(|_| bad("the label is not a number"))?;
        if label == 0 {
            return Err(bad("labels are 1-based"));
        }
        named.push((label, action.trim().to_string()));
    }
    named.sort();
    let in_order = named.iter().enumerate().all(|(i, (l, _))| *l == i + 1);
    if named.is_empty() || !in_order {
        return Err(DatasetError::Layout {
            path: path.display().to_string(),
            what: "expected labels 1, 2, ... each once".into(),
        });
    }
    Ok(Some(named.into_iter().map(|(_, n)| n).collect()))
}
