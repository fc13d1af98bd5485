//! `safed bench --against`: the parity report a user reads before deploying a rewritten graph;
//! and the OpenVINO backend beside ONNX Runtime.
//! The demo model against itself must agree everywhere with no drift; wrong graphs and wrong
//! tensors are errors that say which.

use std::path::Path;
use std::process::{Command, Output};

use npyz::WriterBuilder;

const DEMO: &str = "onnx/demo.onnx";

fn safed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safed")).args(args).env("SAFED_LOG", "info").output().expect("safed runs")
}

fn write_npy(path: &Path, shape: &[u64], data: &[f32]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(file).begin_nd().unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Two samples of the demo model's input shape, values spread over [-1, 1).
fn inputs(dir: &Path) -> (String, String) {
    let model = safed::infer::SafeModel::load(DEMO.as_ref(), &Default::default()).unwrap();
    let shape = [2, model.frames as u64, 3, model.image_size as u64, model.image_size as u64];
    let n = shape.iter().product::<u64>() as usize;
    let (rgb, event) = (dir.join("rgb.npy"), dir.join("event.npy"));
    write_npy(&rgb, &shape, &(0..n).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect::<Vec<_>>());
    write_npy(&event, &shape, &(0..n).map(|i| ((i * 104_729) % 2000) as f32 / 1000.0 - 1.0).collect::<Vec<_>>());
    (rgb.to_str().unwrap().into(), event.to_str().unwrap().into())
}

#[test]
fn a_graph_against_itself_agrees_on_every_sample_with_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (rgb, event) = inputs(dir.path());
    let out =
        safed(&["bench", "--model", DEMO, "--against", DEMO, "--rgb-tensor", &rgb, "--event-tensor", &event, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["samples"].as_u64(), r["top1_agree"].as_u64()), (Some(2), Some(2)), "{r}");
    assert_eq!(r["max_log_prob_drift"].as_f64(), Some(0.0), "{r}");
    assert_eq!(r["top1_agreement"].as_f64(), Some(1.0), "{r}");
}

#[test]
fn against_an_encoder_graph_or_with_wrong_tensors_is_an_error_that_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let (rgb, event) = inputs(dir.path());
    let encoder = "onnx/demo.encoder.onnx";
    let out = safed(&["bench", "--model", DEMO, "--against", encoder, "--rgb-tensor", &rgb, "--event-tensor", &event]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("second graph is the encoder graph of a split pair"), "{err}");

    let short = dir.path().join("short.npy");
    write_npy(&short, &[7], &[0.0; 7]);
    let short = short.to_str().unwrap();
    let out = safed(&["bench", "--model", DEMO, "--against", DEMO, "--rgb-tensor", short, "--event-tensor", &event]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(short) && err.contains("is not [B, F, 3, S, S]"), "{err}");

    // --against needs the samples.
    let out = safed(&["bench", "--model", DEMO, "--against", DEMO]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rgb-tensor"));
}

#[test]
fn the_openvino_backend_runs_the_demo_and_a_missing_library_says_where_it_looked() {
    let out = safed(&["bench", "--model", DEMO, "--backend", "openvino", "--runs", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");

    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-openvino");
    let out =
        safed(&["bench", "--model", DEMO, "--backend", "openvino", "--openvino-library", nowhere.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("OpenVINO library") && err.contains(nowhere.to_str().unwrap()) && err.contains("tools/setup.sh"),
        "{err}"
    );
}

/// The same answers from both backends on the demo model (its graphs are fp32).
#[test]
fn both_backends_give_the_demo_the_same_log_probs() {
    let dir = tempfile::tempdir().unwrap();
    let (rgb, event) = inputs(dir.path());
    let classify = |backend: &str| -> Vec<Vec<f64>> {
        let out =
            safed(&["classify", "--model", DEMO, "--rgb-tensor", &rgb, "--event-tensor", &event, "--backend", backend]);
        assert!(out.status.success(), "{backend}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["log_probs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
            })
            .collect()
    };
    let (ort, ov) = (classify("onnxruntime"), classify("openvino"));
    assert_eq!(ort.len(), 2);
    let d = ort.iter().flatten().zip(ov.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d < 1e-4, "ONNX Runtime and OpenVINO differ by {d}");
}

/// `--against-backend`: one graph on OpenVINO compared with itself on ONNX Runtime.
#[test]
fn against_backend_compares_the_same_graph_across_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let (rgb, event) = inputs(dir.path());
    let out = safed(&[
        "bench",
        "--model",
        DEMO,
        "--backend",
        "openvino",
        "--against",
        DEMO,
        "--against-backend",
        "onnxruntime",
        "--rgb-tensor",
        &rgb,
        "--event-tensor",
        &event,
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["top1_agree"].as_u64(), Some(2), "{r}");
    let drift = r["max_log_prob_drift"].as_f64().unwrap();
    assert!(drift < 1e-4, "OpenVINO f32 against ONNX Runtime: {drift}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("graph loaded on OpenVINO") && log.contains("graph loaded on ONNX Runtime"), "{log}");
}
