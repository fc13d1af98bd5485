//! Train -> evaluate -> export -> safed, end to end on a small synthetic set: the exported
//! graphs give what the candle model gives (1e-4), on the frame folders and on the AEDAT4
//! recordings alike, and a resumed run continues exactly where an uninterrupted one would.

use std::path::Path;

use candle_core::Device;
use safe_train::calibrate::CalibrationSet;
use safe_train::checkpoint;
use safe_train::data::batch::prepare;
use safe_train::data::synth::{write_dataset, SynthOptions};
use safe_train::data::{Dataset, Source};
use safe_train::eval::{argmax, evaluate};
use safe_train::export::write_model;
use safe_train::fit::{fit, FitOptions, InitFrom};
use safe_train::model::TextTokens;
use safe_train::onnx::safe::Precision;
use safed::accumulate::{read_clip, FrameWindow, Representation};
use safed::infer::preprocess::{evenly_spaced, frames_from_dir, image_to_chw};
use safed::infer::{SafeModel, SessionConfig};

fn small_set(dir: &Path) {
    let o = SynthOptions { classes: 3, samples_per_class: 4, seed: 5, frames: 6, ..Default::default() };
    write_dataset(dir, &o).unwrap();
}

fn options() -> FitOptions {
    FitOptions { epochs: 2, batch_size: 4, frames: 3, ..FitOptions::preset("tiny").unwrap() }
}

#[test]
fn exported_graphs_agree_with_the_trained_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    small_set(&data);
    fit(&data, &run, options(), &InitFrom::default(), None, &Device::Cpu).unwrap();
    for f in ["metrics.jsonl", "curves.png", "last/optimizer.safetensors", "best/weights.safetensors"] {
        assert!(run.join(f).exists(), "{f} missing");
    }

    let (model, state) = checkpoint::load_model(&run.join("last"), &Device::Cpu).unwrap();
    let test = Dataset::open(&data, "test").unwrap();
    let text = TextTokens::new(&state.labels, model.config.context, &Device::Cpu).unwrap();
    let size = model.config.image_size as u32;
    let report = evaluate(&model, &text, &prepare(&test, size).unwrap(), 4, &Device::Cpu).unwrap();

    // The same samples read from their AEDAT4 recordings (rendered by safed's accumulator).
    let mut recorded = test.clone();
    for s in &mut recorded.samples {
        let Source::Frames { aps, .. } = &s.source else { panic!("synth writes frame folders") };
        let dir = aps.parent().unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        s.source = Source::Recording(dir.join(format!("{name}.aedat4")));
    }
    let from_recordings = evaluate(&model, &text, &prepare(&recorded, size).unwrap(), 4, &Device::Cpu).unwrap();

    let onnx = tmp.path().join("m.onnx");
    write_model(&model, &state.labels, &onnx, true, Precision::Fp32, None, "test").unwrap();
    let mut full = SafeModel::load(&onnx, &SessionConfig::default()).unwrap();

    let mut worst = 0f32;
    for ((sample, p), q) in test.samples.iter().zip(&report.predictions).zip(&from_recordings.predictions) {
        let Source::Frames { aps, dvs } = &sample.source else { unreachable!() };
        let rgb = frames_from_dir(aps, 3, size, full.mean, full.std).unwrap();
        let event = frames_from_dir(dvs, 3, size, full.mean, full.std).unwrap();
        let lp = full.classify(&rgb, &event).unwrap().remove(0);
        for (a, b) in lp.iter().zip(&p.log_probs).chain(q.log_probs.iter().zip(&p.log_probs)) {
            worst = worst.max((a - b).abs());
        }
        assert_eq!(argmax(&lp), p.predicted, "{}: safed and eval disagree", sample.name);
    }
    eprintln!("safed (ONNX) vs candle log-probs: max |diff| = {worst:e}");
    assert!(worst < 1e-4, "log-probs differ by {worst}");
}

#[test]
fn resume_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    small_set(&data);
    let whole = tmp.path().join("whole");
    fit(&data, &whole, options(), &InitFrom::default(), None, &Device::Cpu).unwrap();
    let split = tmp.path().join("split");
    fit(&data, &split, FitOptions { epochs: 1, ..options() }, &InitFrom::default(), None, &Device::Cpu).unwrap();
    fit(&data, &split, options(), &InitFrom::default(), Some(&split.join("last")), &Device::Cpu).unwrap();
    let (a, _) = checkpoint::load_model(&whole.join("last"), &Device::Cpu).unwrap();
    let (b, sb) = checkpoint::load_model(&split.join("last"), &Device::Cpu).unwrap();
    assert_eq!(sb.epoch, 2);
    for ((name, x), (_, y)) in a.params.iter().zip(b.params.iter()) {
        let d = (x.as_tensor() - y.as_tensor()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "{name} differs by {d} after resuming");
    }
}

#[test]
fn freeze_clip_trains_only_the_fusion_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    small_set(&data);
    let o = FitOptions { epochs: 1, freeze_clip: true, ..options() };
    fit(&data, &run, o, &InitFrom::default(), None, &Device::Cpu).unwrap();
    assert!(run.join("clip-features/000000.safetensors").exists(), "features are cached on disk");
    let (trained, _) = checkpoint::load_model(&run.join("last"), &Device::Cpu).unwrap();
    // The same seed's untouched initialisation.
    let fresh = safe_train::model::init::random(&trained.config, options().seed, &Device::Cpu).unwrap();
    let mut changed = Vec::new();
    for (name, init) in fresh {
        let (_, var) = trained.params.iter().find(|(k, _)| **k == name).unwrap();
        let d = (var.as_tensor() - &init).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let clip = name.starts_with("visual.")
            || name.starts_with("transformer.")
            || [
                "token_embedding.weight",
                "positional_embedding",
                "ln_final.weight",
                "ln_final.bias",
                "text_projection",
            ]
            .contains(&name.as_str());
        if clip {
            assert_eq!(d, 0.0, "{name} changed although CLIP is frozen");
        } else if d > 0.0 {
            changed.push(name);
        }
    }
    assert!(changed.iter().any(|n| n == "fc1.weight") && changed.iter().any(|n| n == "blocks.0.attn.qkv.weight"));
}

/// Trained on voxel grids: the checkpoint and the exported graphs say so, safed's streaming
/// model renders voxel grids for it, and the graphs give what the candle model gives on the
/// recordings' voxel grids.
#[test]
fn a_voxel_model_is_exported_and_served_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    small_set(&data);
    let o = FitOptions { epochs: 1, events: Representation::Voxel, ..options() };
    fit(&data, &run, o, &InitFrom::default(), None, &Device::Cpu).unwrap();
    let (model, state) = checkpoint::load_model(&run.join("last"), &Device::Cpu).unwrap();
    assert_eq!(model.config.events, Representation::Voxel);

    let test = Dataset::open_for(&data, "test", Representation::Voxel).unwrap();
    assert!(test.samples.iter().all(|s| matches!(s.source, Source::Recording(_))), "voxel grids need the events");
    let text = TextTokens::new(&state.labels, model.config.context, &Device::Cpu).unwrap();
    let size = model.config.image_size as u32;
    let report = evaluate(&model, &text, &prepare(&test, size).unwrap(), 4, &Device::Cpu).unwrap();

    let onnx = tmp.path().join("v.onnx");
    write_model(&model, &state.labels, &onnx, true, Precision::Fp32, None, "test").unwrap();
    let (streaming, _) = safed::pipeline::load_model(Some(&onnx), SessionConfig::default()).unwrap();
    assert_eq!(streaming.events(), Representation::Voxel, "safed renders what the model was trained on");
    let mut full = SafeModel::load(&onnx, &SessionConfig::default()).unwrap();
    assert_eq!(full.events, Representation::Voxel);

    let mut worst = 0f32;
    for (sample, p) in test.samples.iter().zip(&report.predictions) {
        let Source::Recording(path) = &sample.source else { unreachable!() };
        let shown = path.display().to_string();
        let clip = read_clip(safed::events::open(&shown).unwrap().as_mut()).unwrap();
        let images = clip
            .images(FrameWindow::Interval, Representation::Voxel, safed::dataset::EVENT_ONLY_WINDOW_US, &shown)
            .unwrap();
        let per = 3 * (size * size) as usize;
        let (mut rgb, mut event) = (vec![0f32; 3 * per], vec![0f32; 3 * per]);
        for (k, i) in evenly_spaced(images.rgb.len(), 3).into_iter().enumerate() {
            image_to_chw(&images.rgb[i], size, full.mean, full.std, &mut rgb[k * per..(k + 1) * per]);
            image_to_chw(&images.events[i], size, full.mean, full.std, &mut event[k * per..(k + 1) * per]);
        }
        let lp = full.classify(&rgb, &event).unwrap().remove(0);
        for (a, b) in lp.iter().zip(&p.log_probs) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-4, "log-probs differ by {worst}");

    // A sample with only rendered frame folders cannot give voxel grids: said, not guessed.
    let sample = test.samples[0].name.clone();
    let Source::Recording(rec) = &test.samples[0].source else { unreachable!() };
    std::fs::remove_file(rec).unwrap();
    let err = Dataset::open_for(&data, "test", Representation::Voxel).unwrap_err();
    assert!(format!("{err:#}").contains("voxel input needs the recorded events"), "{sample}: {err:#}");
}

/// int8-static through the exporter: calibrated on samples of the training split, its graphs
/// (the full one and the streaming pair) load on both backends, stay near the float model on the
/// test split, and the two backends agree on them.
#[test]
fn int8_static_export_calibrates_on_the_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    small_set(&data);
    fit(&data, &run, FitOptions { epochs: 1, ..options() }, &InitFrom::default(), None, &Device::Cpu).unwrap();
    let (model, state) = checkpoint::load_model(&run.join("last"), &Device::Cpu).unwrap();
    let (fp32, int8) = (tmp.path().join("f.onnx"), tmp.path().join("q.onnx"));
    write_model(&model, &state.labels, &fp32, false, Precision::Fp32, None, "test").unwrap();
    let set = CalibrationSet { root: data.clone(), split: "train".into(), samples: 4 };
    let written = write_model(&model, &state.labels, &int8, true, Precision::Int8Static, Some(&set), "test").unwrap();
    assert_eq!(written.len(), 3, "{written:?}");

    let ov = SessionConfig { backend: safed::infer::Backend::Openvino, ..SessionConfig::default() };
    let mut float = SafeModel::load(&fp32, &SessionConfig::default()).unwrap();
    let mut on_ort = SafeModel::load(&int8, &SessionConfig::default()).unwrap();
    let mut on_ov = SafeModel::load(&int8, &ov).unwrap();
    for session in [SessionConfig::default(), ov] {
        safed::pipeline::load_model(Some(&int8), session).expect("the int8-static streaming pair loads");
    }
    let size = model.config.image_size as u32;
    let (mut drift, mut backends) = (0f32, 0f32);
    for sample in &Dataset::open(&data, "test").unwrap().samples {
        let Source::Frames { aps, dvs } = &sample.source else { unreachable!() };
        let rgb = frames_from_dir(aps, 3, size, float.mean, float.std).unwrap();
        let event = frames_from_dir(dvs, 3, size, float.mean, float.std).unwrap();
        let want = float.classify(&rgb, &event).unwrap().remove(0);
        let (a, b) =
            (on_ort.classify(&rgb, &event).unwrap().remove(0), on_ov.classify(&rgb, &event).unwrap().remove(0));
        for ((w, x), y) in want.iter().zip(&a).zip(&b) {
            drift = drift.max((w - x).abs()).max((w - y).abs());
            backends = backends.max((x - y).abs());
        }
    }
    eprintln!("int8-static: max |log_prob - fp32| = {drift:e}, ONNX Runtime against OpenVINO {backends:e}");
    assert!(drift > 0.0 && drift < 0.3, "int8-static drifts {drift} from fp32");
    assert!(backends < 0.05, "the backends differ by {backends} on the same graph");
}
