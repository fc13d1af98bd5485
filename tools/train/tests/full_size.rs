//! A full-size ViT-B/16 SAFE checkpoint in the authors' format (random weights, 114 classes,
//! written by scripts/make_checkpoint.py without torch) imports and classifies, and the import
//! stays within memory. Needs the venv (numpy): without it the test says SKIPPED, except
//! under CI.

mod common;

use std::path::Path;
use std::process::Command;

use common::venv_python;

/// Peak resident memory of a finished child, from GNU time's format.
fn run_measured(cmd: &mut Command) -> (std::process::Output, Option<u64>) {
    let out = cmd.output().unwrap();
    let peak = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb=").and_then(|v| v.trim().parse().ok()));
    (out, peak)
}

#[test]
fn full_size_checkpoint_imports_and_classifies() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("vitb16.pth");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make_checkpoint.py");
    let st = Command::new(&python)
        .arg(&script)
        .arg(&ckpt)
        .args(["--preset", "vit-b16", "--classes", "114"])
        .status()
        .unwrap();
    assert!(st.success());
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, (0..114).map(|i| format!("class {i}\n")).collect::<String>()).unwrap();
    let model = dir.path().join("vitb16.onnx");

    // Import in a child process, so that its peak memory is its own.
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() { Command::new(time) } else { Command::new(env!("CARGO_BIN_EXE_safe-train")) };
    if time.exists() {
        cmd.args(["-f", "peak_rss_kb=%M", env!("CARGO_BIN_EXE_safe-train")]);
    }
    cmd.arg("import").arg(&ckpt).arg("-o").arg(&model).arg("--labels").arg(&labels);
    let (out, peak_kb) = run_measured(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Some(kb) = peak_kb {
        eprintln!("full-size import: peak RSS {:.2} GB", kb as f64 / 1e6);
        // ~0.68 GB of weights: the import holds them, the graph's copy and its encoding.
        assert!(kb < 3_500_000, "import peaked at {kb} kB");
    }

    // A dataset-shaped sample through safed (the full graph, 5 RGB + 5 event images).
    let frames = dir.path().join("frames");
    for (name, colour) in [("rgb", [90u8, 140, 200]), ("dvs", [255, 255, 255])] {
        let d = frames.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..8 {
            let img = image::RgbImage::from_fn(346, 260, |x, y| {
                if (x + y + i) % 17 == 0 {
                    image::Rgb([220, 30, 30])
                } else {
                    image::Rgb(colour)
                }
            });
            img.save(d.join(format!("{i:08}.png"))).unwrap();
        }
    }
    // Through safed's own loading, preprocessing and classification.
    let mut safe = safed::infer::SafeModel::load(&model, &safed::infer::SessionConfig::default()).unwrap();
    assert_eq!((safe.frames, safe.image_size, safe.tokens, safe.labels.len()), (5, 224, 197, 114));
    let (s, f) = (safe.image_size as u32, safe.frames);
    let rgb = safed::infer::preprocess::frames_from_dir(&frames.join("rgb"), f, s, safe.mean, safe.std).unwrap();
    let event = safed::infer::preprocess::frames_from_dir(&frames.join("dvs"), f, s, safe.mean, safe.std).unwrap();
    let rows = safe.classify(&rgb, &event).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].len(), 114);
    let total: f64 = rows[0].iter().map(|v| (*v as f64).exp()).sum();
    assert!((total - 1.0).abs() < 1e-3, "probabilities sum to {total}");
    assert_eq!(safe.top(&rows[0], 3).len(), 3);
}
