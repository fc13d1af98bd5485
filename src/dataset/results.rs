//! A dataset replay's results: one JSON line per sample as it finishes (`--results`), flushed
//! line by line, so a replay killed at any point leaves every finished sample on disk.
//! `--resume` reads them back (a torn last line, from a kill mid-write, is cut off) and skips
//! those samples; `safed report merge` reads several shards' files into one report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::Percentiles;
use crate::sink::Scored;

/// The paper's protocol: F evenly spaced pairs fused once at the end of the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipScore {
    /// The top 5 labels with probabilities.
    pub top: Vec<Scored>,
    /// The log-probability of every model label (in the model's label order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_probs: Vec<f32>,
}

/// What a live user sees: the sample's streaming recognitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamScore {
    pub recognitions: u64,
    /// Recognitions whose top-1 is the sample's label.
    pub correct: u64,
    /// correct / recognitions (None without recognitions: a sample shorter than F pairs).
    pub accuracy: Option<f64>,
    /// The last recognition's top-1.
    pub last: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    /// Position in the split's sample list (what shards and resume count by).
    pub index: usize,
    pub id: String,
    /// The dataset's class name (None for a sample whose label is not a class).
    pub label: Option<String>,
    /// Whether the model has a label of that name (an unknown class is scored as a miss).
    pub known: bool,
    /// Why the sample could not be scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipScore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamScore>,
    pub pairs: u64,
    pub events: u64,
    /// Per stage (queue, preprocess, encode, fuse, end_to_end) over this sample's recognitions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// The same stages' histograms, encoded ([`crate::report::StageHistogram::encode`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms: BTreeMap<String, String>,
    /// From the sample's first item to its result, s.
    pub seconds: f64,
    /// When the result was written (Unix time, ms).
    pub finished_ms: u64,
}

impl SampleResult {
    pub fn clip_top1(&self) -> Option<&str> {
        self.clip.as_ref().and_then(|c| c.top.first()).map(|s| s.label.as_str())
    }

    pub fn clip_correct(&self, k: usize) -> bool {
        let (Some(c), Some(label)) = (&self.clip, &self.label) else { return false };
        c.top.iter().take(k).any(|s| &s.label == label)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}:{line}: not a result line: {err}")]
    Line { path: String, line: usize, err: serde_json::Error },
}

/// A results file read back: its complete lines, and the byte length they end at.
pub struct ReadBack {
    pub results: Vec<SampleResult>,
    pub complete_len: u64,
}

/// Reads a results file. A last line without its newline (a replay killed mid-write) is not a
/// result; any other line that does not parse is an error naming it.
pub fn read(path: &Path) -> Result<ReadBack, ResultsError> {
    let shown = || path.display().to_string();
    let text = std::fs::read(path).map_err(|err| ResultsError::Io { path: shown(), err })?;
    let complete_len = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut results = Vec::new();
    for (i, line) in text[..complete_len].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let r = serde_json::from_slice(line).map_err(|err| ResultsError::Line { path: shown(), line: i + 1, err })?;
        results.push(r);
    }
    Ok(ReadBack { results, complete_len: complete_len as u64 })
}

/// The samples already in a results file.
pub fn done_indices(results: &[SampleResult]) -> BTreeSet<usize> {
    results.iter().map(|r| r.index).collect()
}

/// Appends result lines, each flushed as written.
pub struct ResultsWriter {
    file: std::fs::File,
    path: String,
}

impl ResultsWriter {
    /// A new file, or (resume) the existing one cut after its last complete line.
    pub fn open(path: &Path, resume_at: Option<u64>) -> Result<ResultsWriter, ResultsError> {
        let shown = path.display().to_string();
        let io = |err| ResultsError::Io { path: shown.clone(), err };
        let file = match resume_at {
            Some(len) => {
                let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map_err(io)?;
                f.set_len(len).map_err(io)?;
                let mut f = f;
                std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
                f
            }
            None => std::fs::File::create(path).map_err(io)?,
        };
        Ok(ResultsWriter { file, path: shown })
    }

    pub fn write(&mut self, r: &SampleResult) -> Result<(), ResultsError> {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line).map_err(|err| ResultsError::Io { path: self.path.clone(), err })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(index: usize) -> SampleResult {
        SampleResult {
            index,
            id: format!("s{index}"),
            label: Some("a".into()),
            known: true,
            error: None,
            clip: Some(ClipScore { top: vec![Scored { label: "a".into(), p: 0.9 }], log_probs: vec![] }),
            stream: None,
            pairs: 3,
            events: 10,
            latency_ms: BTreeMap::new(),
            histograms: BTreeMap::new(),
            seconds: 0.1,
            finished_ms: 1,
        }
    }

    #[test]
    fn a_torn_last_line_is_cut_on_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r.jsonl");
        let mut w = ResultsWriter::open(&path, None).unwrap();
        w.write(&result(0)).unwrap();
        w.write(&result(1)).unwrap();
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"index\":2,\"id\"");
        std::fs::write(&path, bytes).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(done_indices(&back.results).into_iter().collect::<Vec<_>>(), [0, 1]);
        let mut w = ResultsWriter::open(&path, Some(back.complete_len)).unwrap();
        w.write(&result(2)).unwrap();
        drop(w);
        let again = read(&path).unwrap();
        assert_eq!(again.results, vec![result(0), result(1), result(2)]);
        std::fs::write(&path, "{\"index\":0}\n").unwrap();
        let e = read(&path).err().unwrap().to_string();
        assert!(e.contains("r.jsonl:1: not a result line"), "{e}");
    }
}
