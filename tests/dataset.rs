//! `safed replay --dataset` as a user runs it on a per-sample-recordings dataset made of the
//! bundled demo recording: killed with SIGKILL and resumed, every sample is counted once;
//! two shards merged give one run's report; broken samples are reported with their reasons
//! and the rest are scored; an event file with a video beside it takes its RGB from the video.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn safed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safed"))
}

fn demo_recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4")
}

fn results(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn replay(root: &Path, extra: &[&str]) -> std::process::Output {
    let out = safed().args(["replay", "--dataset"]).arg(root).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_killed_replay_resumes_and_counts_every_sample_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, 24);
    let res = tmp.path().join("results.jsonl");
    // Recorded speed (0.27 s a sample, 2 at a time): about 3 s in all; killed part way.
    let mut child = safed()
        .args(["replay", "--speed", "1", "--streams", "2", "--batch", "2", "--dataset"])
        .arg(&root)
        .arg("--results")
        .arg(&res)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::fs::read_to_string(&res).map_or(0, |s| s.lines().count()) < 4 {
        assert!(t.elapsed() < Duration::from_secs(30), "no results after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = results(&res).len();
    assert!((4..24).contains(&before), "killed after {before} samples");

    let report = tmp.path().join("report.json");
    let out = replay(
        &root,
        &["--speed", "max", "--results", res.to_str().unwrap(), "--resume", "--report", report.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} samples to replay", 24 - before)), "{err}");
    let mut seen = BTreeMap::new();
    for r in results(&res) {
        *seen.entry(r["index"].as_u64().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 24, "every sample is in the results");
    assert!(seen.values().all(|&n| n == 1), "a sample counted twice: {seen:?}");
    let r = json(&report);
    assert_eq!((r["samples"].as_u64(), r["failed"].as_u64()), (Some(24), Some(0)));
    // 18 triangles recognised as such; the 6 "circle" copies are triangles too: misses.
    assert_eq!(r["clip_top1"].as_f64(), Some(0.75));
    assert_eq!(r["unknown_class"].as_u64(), Some(0));
}

#[test]
fn two_shards_merged_give_the_report_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, 10);
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    replay(&root, &["--speed", "max", "--results", &path("all.jsonl"), "--report", &path("all.json")]);
    for i in 0..2 {
        let shard = format!("{i}/2");
        replay(&root, &["--speed", "max", "--shard", &shard, "--results", &path(&format!("s{i}.jsonl"))]);
    }
    let out = safed()
        .args(["report", "merge", &path("s0.jsonl"), &path("s1.jsonl"), "--report", &path("merged.json"), "--dataset"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (one, merged) = (json(Path::new(&path("all.json"))), json(Path::new(&path("merged.json"))));
    for key in
        ["samples", "failed", "clip_top1", "clip_top5", "stream_top1", "stream_last_top1", "per_class", "confusion"]
    {
        assert_eq!(one[key], merged[key], "{key} differs");
    }
    let ids = |files: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = files
            .iter()
            .flat_map(|f| results(Path::new(&path(f))))
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&["all.jsonl"]), ids(&["s0.jsonl", "s1.jsonl"]), "the shards cover the split once");
    assert!(Path::new(&path("merged.confusion.csv")).exists() && Path::new(&path("merged.confusion.png")).exists());
    let overlap = safed().args(["report", "merge", &path("s0.jsonl"), &path("all.jsonl")]).output().unwrap();
    assert!(!overlap.status.success(), "overlapping shards are refused");
}

#[test]
fn a_merge_missing_a_shard_names_the_samples_and_fails_with_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, 6);
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    replay(&root, &["--speed", "max", "--shard", "0/2", "--results", &path("s0.jsonl")]);
    let merge = |extra: &[&str]| {
        safed()
            .args(["report", "merge", &path("s0.jsonl"), "--report", &path("merged.json"), "--dataset"])
            .arg(&root)
            .args(extra)
            .output()
            .unwrap()
    };
    let warned = merge(&[]);
    let err = String::from_utf8_lossy(&warned.stderr);
    assert!(warned.status.success() && err.contains("cover 3 of the split's 6 samples; 3 missing"), "{err}");
    std::fs::remove_file(path("merged.json")).unwrap();
    let failed = merge(&["--complete"]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "--complete with a shard missing must fail: {err}");
    assert!(err.contains("a shard did not finish"), "{err}");
    let replayed: Vec<String> = results(Path::new(&path("s0.jsonl"))).iter().map(|r| r["id"].to_string()).collect();
    let missing: Vec<String> = (0..6)
        .map(|i| format!("{}/s{i:03}", if i % 4 == 3 { "circle" } else { "triangle" }))
        .filter(|id| !replayed.contains(&format!("{id:?}")))
        .collect();
    assert_eq!(missing.len(), 3);
    for id in missing {
        assert!(err.contains(&id), "{id} is missing and not named: {err}");
    }
    assert!(Path::new(&path("merged.json")).exists(), "the report of what is there is written first");
}

fn png(path: &Path) {
    image::RgbImage::from_pixel(80, 60, image::Rgb([255, 255, 255])).save(path).unwrap();
}

#[test]
fn broken_samples_are_reported_with_their_reasons_and_the_rest_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, 4);
    let tri = root.join("test/triangle");
    let whole = std::fs::read(demo_recording()).unwrap();
    std::fs::write(tri.join("truncated.aedat4"), &whole[..whole.len() / 2]).unwrap();
    std::fs::create_dir_all(tri.join("empty")).unwrap();
    let bad = tri.join("badpng");
    for d in ["badpng_aps", "badpng_dvs"] {
        std::fs::create_dir_all(bad.join(d)).unwrap();
        png(&bad.join(d).join("00000000.png"));
    }
    std::fs::write(bad.join("badpng_dvs/00000001.png"), b"not a png").unwrap();
    png(&bad.join("badpng_aps/00000001.png"));
    let res = tmp.path().join("r.jsonl");
    let report = tmp.path().join("report.json");
    replay(&root, &["--speed", "max", "--results", res.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    let by_id: BTreeMap<String, serde_json::Value> =
        results(&res).into_iter().map(|r| (r["id"].as_str().unwrap().to_string(), r)).collect();
    let error = |id: &str| by_id[id]["error"].as_str().unwrap_or_default().to_string();
    assert!(error("triangle/truncated").contains("truncated.aedat4"), "{}", error("triangle/truncated"));
    assert!(error("triangle/empty").contains("neither"), "{}", error("triangle/empty"));
    assert!(error("triangle/badpng").contains("00000001.png"), "{}", error("triangle/badpng"));
    assert!(by_id["triangle/s000"]["error"].is_null());
    let r = json(&report);
    assert_eq!((r["samples"].as_u64(), r["failed"].as_u64()), (Some(4), Some(3)));

    // A label outside the dataset's own labels file (HARDVS layout).
    let h = tmp.path().join("hardvs");
    std::fs::create_dir_all(h.join("clips")).unwrap();
    std::fs::copy(demo_recording(), h.join("clips/a.aedat4")).unwrap();
    std::fs::write(h.join("labels.txt"), "triangle\ncircle\n").unwrap();
    std::fs::write(h.join("test_label.txt"), "clips/a.aedat4 8 0\nclips/a.aedat4 8 7\nclips/missing 8 1\n").unwrap();
    let res = tmp.path().join("h.jsonl");
    replay(&h, &["--speed", "max", "--results", res.to_str().unwrap()]);
    let rows = results(&res);
    assert_eq!(rows.len(), 3);
    let errors: Vec<&str> = rows.iter().map(|r| r["error"].as_str().unwrap_or("")).collect();
    assert!(errors.contains(&""), "the good sample is scored: {errors:?}");
    assert!(errors.iter().any(|e| e.contains("label 7")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("missing")), "{errors:?}");
}

#[test]
fn a_root_that_is_no_dataset_names_the_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let out = safed().args(["replay", "--dataset"]).arg(tmp.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("test_label.txt") && err.contains("notes.txt"), "{err}");
}

/// The demo recording's first `n` frames as an MJPG video written by OpenCV's VideoWriter.
fn write_video(path: &Path, n: usize) {
    assert_eq!(common::write_frames_as_video(&demo_recording(), path, n), n);
}

#[test]
fn an_event_file_with_a_video_beside_it_takes_its_rgb_from_the_video() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, 1);
    let tri = root.join("test/triangle");
    std::fs::copy(demo_recording(), tri.join("withvideo.aedat4")).unwrap();
    write_video(&tri.join("withvideo.avi"), 5);
    let res = tmp.path().join("r.jsonl");
    replay(&root, &["--speed", "max", "--results", res.to_str().unwrap()]);
    let by_id: BTreeMap<String, serde_json::Value> =
        results(&res).into_iter().map(|r| (r["id"].as_str().unwrap().to_string(), r)).collect();
    assert_eq!(by_id.len(), 2, "the video is no sample of its own: {:?}", by_id.keys());
    let (plain, video) = (&by_id["triangle/s000"], &by_id["triangle/withvideo"]);
    assert!(video["error"].is_null(), "{}", video["error"]);
    let pairs = |r: &serde_json::Value| r["pairs"].as_u64().unwrap();
    // The recording holds 8 frames, the video 5: the pairs follow the video's frames.
    assert!(
        pairs(video) < pairs(plain) && pairs(video) >= 4,
        "pairs: video {} vs recording {}",
        pairs(video),
        pairs(plain)
    );
    assert_eq!(video["clip"]["top"][0]["label"], "triangle", "{}", video["clip"]);
}
