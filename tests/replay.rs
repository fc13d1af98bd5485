//! `safed replay` end to end, as a user runs it: the bundled demo recognises its recording,
//! JSON lines and the report are complete, and bad inputs fail before anything runs, with a
//! message that names them.

use std::path::Path;
use std::process::Command;

fn safed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safed"))
}

#[test]
fn the_bundled_demo_recognises_its_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report.json");
    let plot = tmp.path().join("latency.png");
    let out =
        safed().args(["replay", "--speed", "max", "--report"]).arg(&report).arg("--plot").arg(&plot).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 8 frames, F = 5, hop 1: recognitions at frames 5..8.
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1);
        assert_eq!(l["top"][0]["label"], "triangle", "{l}");
        assert!(l["top"][0]["p"].as_f64().unwrap() > 0.9);
        assert_eq!(l["frames"], 5);
        assert!(l["latency_ms"]["total"].as_f64().unwrap() >= l["latency_ms"]["encode"].as_f64().unwrap());
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (r["frames"].as_u64(), r["recognitions"].as_u64(), r["ring_dropped"].as_u64()),
        (Some(8), Some(4), Some(0))
    );
    assert_eq!(r["labels"]["triangle"], 4);
    assert!(r["latency_ms"]["end_to_end"]["p99"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"), "the latency plot is a PNG");
}

#[test]
fn paced_replay_takes_the_recorded_time() {
    // The demo recording spans 0.27 s; at speed 0.5 it takes about twice that.
    let t = std::time::Instant::now();
    let out = safed().args(["replay", "--speed", "0.5"]).output().unwrap();
    assert!(out.status.success());
    assert!(t.elapsed().as_secs_f64() > 0.45, "replay was not paced");
}

#[test]
fn bad_inputs_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.aedat4");
    let sample = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4")).unwrap();
    std::fs::write(&bad, &sample[..sample.len() * 2 / 3]).unwrap();
    let out = safed().args(["replay", "--speed", "max"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bad.aedat4"), "truncated recording: {err}");

    let out = safed().args(["replay", "--model", "/nonexistent/model.onnx"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("/nonexistent/model.encoder.onnx"), "{err}");

    // Said once: the file, the offset, the OS error.
    let out = safed().args(["replay", "/nonexistent/rec.aedat4"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.matches("No such file").count() == 1, "{err}");
    assert!(err.contains("/nonexistent/rec.aedat4: at byte 0"), "{err}");

    let out = safed().args(["replay", "--speed", "fast"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--speed"));
}
