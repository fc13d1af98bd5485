//! Several streams in one `safed run`, sharing the model: pairs from different streams (here
//! of different sensor sizes) are encoded in one call, and batching changes nothing but the
//! `batch` field and the latency: every stream's recognitions equal those of an unbatched run.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// Runs the three-stream config with `[model] batch`; the JSON lines by stream, in order.
fn run_three_streams(dir: &std::path::Path, batch: usize, wait_ms: u64) -> BTreeMap<String, Vec<Value>> {
    let out = dir.join(format!("batch{batch}.jsonl"));
    let config = dir.join(format!("batch{batch}.toml"));
    let body = format!(
        r#"[source]
events = "bundled"
speed = "max"
name = "demo"
[[streams]]
name = "davis"
events = "{davis}"
[[streams]]
name = "dv"
events = "{dv}"
[queue]
# Files at "max" speed: the whole recording fits, nothing is dropped.
capacity = 100000
[model]
batch = {batch}
batch_wait_ms = {wait_ms}
[output]
jsonl = "{out}"
[metrics]
listen = ""
"#,
        davis = common::data("davis346_aedat-crate_trimmed.aedat4").display(),
        dv = common::data("dv_davis_frames_lz4.aedat4").display(),
        out = out.display(),
    );
    std::fs::write(&config, body).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_safed")).args(["run", "--config"]).arg(&config).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut by_stream: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        by_stream.entry(v["stream"].as_str().unwrap().to_string()).or_default().push(v);
    }
    by_stream
}

#[test]
fn batched_streams_recognise_as_unbatched_ones_do() {
    let tmp = tempfile::tempdir().unwrap();
    let single = run_three_streams(tmp.path(), 1, 0);
    let batched = run_three_streams(tmp.path(), 4, 50);
    // 8 frames, 12 frames, 25 frames; F = 5, hop 1.
    let counts: Vec<(&str, usize)> = single.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(counts, [("davis", 8), ("demo", 4), ("dv", 21)]);
    assert!(single.values().flatten().all(|v| v["batch"] == 1));
    let sizes: Vec<u64> = batched.values().flatten().map(|v| v["batch"].as_u64().unwrap()).collect();
    assert!(sizes.iter().all(|&b| (1..=4).contains(&b)), "{sizes:?}");
    assert!(sizes.iter().any(|&b| b > 1), "nothing was batched: {sizes:?}");
    for (stream, lines) in &single {
        let other = &batched[stream];
        assert_eq!(lines.len(), other.len(), "{stream}");
        for (a, b) in lines.iter().zip(other) {
            for key in ["seq", "t_start", "t_end", "frames", "events"] {
                assert_eq!(a[key], b[key], "{stream} {key}");
            }
            let (ta, tb) = (a["top"].as_array().unwrap(), b["top"].as_array().unwrap());
            for (x, y) in ta.iter().zip(tb) {
                assert_eq!(x["label"], y["label"], "{stream} seq {}", a["seq"]);
                let d = (x["p"].as_f64().unwrap() - y["p"].as_f64().unwrap()).abs();
                assert!(d < 1e-4, "{stream} seq {}: p differs by {d}", a["seq"]);
            }
        }
    }
    assert_eq!(single["demo"][0]["top"][0]["label"], "triangle");
}
