//! The synthetic dataset: the layout the loaders read, event images that equal safed's own
//! rendering of the recording, and recordings that dv-processing's reader accepts whole.

mod common;

use std::path::Path;
use std::process::Command;

use common::venv_python;
use rand::SeedableRng;
use safe_train::data::synth::{clip, write_dataset, SynthOptions, SHAPES};
use safe_train::data::{load_sample, Dataset, Source};

#[test]
fn dataset_layout_and_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let o = SynthOptions { classes: 3, samples_per_class: 5, frames: 4, ..Default::default() };
    assert_eq!(write_dataset(tmp.path(), &o).unwrap(), 15);
    let train = Dataset::open(tmp.path(), "train").unwrap();
    let test = Dataset::open(tmp.path(), "test").unwrap();
    assert_eq!(train.labels, SHAPES[..3]);
    assert_eq!((train.class_counts(), test.class_counts()), (vec![4, 4, 4], vec![1, 1, 1]));
    let s = load_sample(&test.samples[0], Default::default()).unwrap();
    assert_eq!((s.rgb.len(), s.events.len(), s.rgb[0].dimensions()), (4, 4, (80, 60)));
    // The same sample read from its recording renders the same images, pixel for pixel.
    let Source::Frames { aps, .. } = &test.samples[0].source else { panic!() };
    let dir = aps.parent().unwrap();
    let rec = dir.join(format!("{}.aedat4", dir.file_name().unwrap().to_string_lossy()));
    let r = load_sample(
        &safe_train::data::Sample { name: "r".into(), label: 0, source: Source::Recording(rec) },
        Default::default(),
    )
    .unwrap();
    assert!(r.rgb == s.rgb && r.events == s.events, "recording and frame folders differ");
    assert!(write_dataset(tmp.path(), &SynthOptions { classes: 9, ..o }).is_err(), "only 8 symbols");
}

#[test]
fn dv_processing_reads_the_recordings() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let o = SynthOptions::default();
    let c = clip(2, &o, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
    let path = tmp.path().join("clip.aedat4");
    c.write_aedat4(&path, o.width, o.height).unwrap();
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/peer.py");
    let out = Command::new(python).arg(peer).arg("dv-read").arg(&path).output().unwrap();
    assert!(out.status.success(), "dv-read: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (frames, events): (Vec<&str>, Vec<&str>) = text.lines().skip(1).partition(|l| l.starts_with("frame,"));
    let ours: Vec<String> = c.events.iter().map(|e| format!("{},{},{},{}", e.t, e.x, e.y, u8::from(e.p))).collect();
    assert_eq!(events, ours, "dv-processing reads other events");
    assert_eq!(frames.len(), c.frames.len());
    for (line, (t, img)) in frames.iter().zip(&c.frames) {
        let sum: u64 = img.as_raw().iter().map(|&v| v as u64).sum();
        // dv-processing's Frame.timestamp is the start of exposure (5 ms before the frame).
        assert_eq!(*line, format!("frame,{},80,60,{sum}", t - 5_000), "frame differs");
    }
}
