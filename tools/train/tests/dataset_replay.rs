//! `safed replay --dataset` scores every layout as `safe-train eval` does: the same samples,
//! the same argmax, log-probabilities within 1e-4 (the clip protocol: F evenly spaced pairs,
//! fused once), on SAFE's folders, per-sample AEDAT4 recordings, HARDVS's label files with `.npz` events, and DVS128
//! Gesture's segments of AEDAT 3.1 recordings.

use candle_core::Device;
use clap::Parser;
use safe_train::checkpoint;
use safe_train::data::batch::prepare;
use safe_train::data::synth::{write_dataset, write_dataset_as, SynthLayout, SynthOptions};
use safe_train::data::Dataset;
use safe_train::eval::{argmax, evaluate};
use safe_train::export::write_model;
use safe_train::fit::{fit, FitOptions, InitFrom};
use safe_train::model::TextTokens;
use safe_train::onnx::safe::Precision;
use safed::dataset::results;

#[test]
fn every_layout_replays_as_eval_scores_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = SynthOptions { classes: 3, samples_per_class: 4, seed: 5, frames: 6, ..Default::default() };
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data, &o).unwrap();
    let opts = FitOptions { epochs: 2, batch_size: 4, frames: 3, ..FitOptions::preset("tiny").unwrap() };
    fit(&data, &run, opts, &InitFrom::default(), None, &Device::Cpu).unwrap();
    let (model, state) = checkpoint::load_model(&run.join("last"), &Device::Cpu).unwrap();
    let onnx = tmp.path().join("m.onnx");
    write_model(&model, &state.labels, &onnx, true, Precision::Fp32, None, "test").unwrap();
    let text = TextTokens::new(&state.labels, model.config.context, &Device::Cpu).unwrap();

    for (layout, name) in [
        (SynthLayout::Folders, "folders"),
        (SynthLayout::Recordings, "recordings"),
        (SynthLayout::Hardvs, "hardvs"),
        (SynthLayout::DvsGesture, "dvs-gesture"),
    ] {
        let dir = tmp.path().join(name);
        write_dataset_as(&dir, &o, layout).unwrap();
        let test = Dataset::open_for(&dir, "test", model.config.events).unwrap();
        assert_eq!(test.labels, state.labels, "{name}: class names");
        let report =
            evaluate(&model, &text, &prepare(&test, model.config.image_size as u32).unwrap(), 4, &Device::Cpu).unwrap();

        let res = tmp.path().join(format!("{name}.jsonl"));
        let args = ["safed", "replay", "--speed", "max", "--streams", "3", "--batch", "3", "--dataset"];
        let cli = safed::cli::Cli::try_parse_from(args.iter().map(|s| s.to_string()).chain([
            dir.display().to_string(),
            "--model".into(),
            onnx.display().to_string(),
            "--results".into(),
            res.display().to_string(),
        ]))
        .unwrap();
        safed::cli::run(cli).unwrap();
        let mut replayed = results::read(&res).unwrap().results;
        replayed.sort_by_key(|r| r.index);
        assert_eq!(replayed.len(), test.samples.len(), "{name}: every sample replayed");
        let mut worst = 0f32;
        for ((r, p), s) in replayed.iter().zip(&report.predictions).zip(&test.samples) {
            assert_eq!(r.id, s.name);
            assert!(r.error.is_none(), "{name} {}: {:?}", r.id, r.error);
            let lp = &r.clip.as_ref().unwrap().log_probs;
            assert_eq!(argmax(lp), p.predicted, "{name} {}: replay and eval disagree", r.id);
            worst = lp.iter().zip(&p.log_probs).fold(worst, |w, (a, b)| w.max((a - b).abs()));
        }
        eprintln!("{name}: replay vs eval log-probs: max |diff| = {worst:e}, top-1 {:.3}", report.top1);
        assert!(worst < 1e-4, "{name}: log-probs differ by {worst}");
        let top1 = replayed.iter().filter(|r| r.clip_correct(1)).count() as f64 / replayed.len() as f64;
        assert!((top1 - report.top1).abs() < 1e-9, "{name}: clip top-1 {top1} vs eval {}", report.top1);
    }
}
