//! Parity with the authors' code on `official-tiny` (a checkpoint in their exact format, its
//! inputs, and the outputs their code computed): tokens, text features, per-image encoder
//! tokens, log-probabilities of the full graph, and split graphs == full graph.
//! The fixture is 95 MB and lives in the shared folder (SAFE_OFFICIAL_TINY, default
//! ../shared/fixtures/official-tiny beside the checkout); without it these tests say SKIPPED.

use std::path::{Path, PathBuf};

use safe_train::config::SafeConfig;
use safe_train::export::{self, read_labels, Graph};
use safe_train::onnx::safe::Export;
use safe_train::weights::Weights;
use safed::infer::ort::value::TensorRef;
use safed::infer::{runtime, SessionConfig};

fn fixture() -> Option<PathBuf> {
    let dir = std::env::var_os("SAFE_OFFICIAL_TINY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/official-tiny"));
    if dir.join("checkpoint.pth").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("official-tiny fixture missing at {} (CI must have it)", dir.display());
    }
    eprintln!("SKIPPED: official-tiny fixture not found at {} (set SAFE_OFFICIAL_TINY)", dir.display());
    None
}

fn npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let f = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

struct Loaded {
    dir: PathBuf,
    weights: Weights,
    config: SafeConfig,
    labels: Vec<String>,
    text: Vec<f32>,
}

fn load() -> Option<Loaded> {
    let dir = fixture()?;
    let weights = Weights::load_authors_checkpoint(&dir.join("checkpoint.pth")).unwrap();
    let config = SafeConfig::infer(&weights, 5).unwrap();
    let labels = read_labels(&dir.join("labels.txt")).unwrap();
    let text = export::text_features(&weights, &config, &labels, &SessionConfig::default()).unwrap();
    Some(Loaded { dir, weights, config, labels, text })
}

fn run(model: &[u8], inputs: Vec<(&str, (Vec<usize>, Vec<f32>))>, output: &str) -> Vec<f32> {
    let mut s = runtime::session(model, &SessionConfig::default(), "test").unwrap();
    let values: Vec<_> = inputs
        .iter()
        .map(|(name, (shape, data))| (*name, TensorRef::from_array_view((shape.clone(), &data[..])).unwrap()))
        .collect();
    let feed: Vec<(std::borrow::Cow<str>, safed::infer::ort::session::SessionInputValue)> =
        values.into_iter().map(|(n, v)| (n.into(), v.into())).collect();
    let out = s.run(feed).unwrap();
    out[output].try_extract_tensor::<f32>().unwrap().1.to_vec()
}

#[test]
fn sizes_are_read_off_the_checkpoint() {
    let Some(l) = load() else { return };
    let c = &l.config;
    assert_eq!(
        (c.vision_width, c.vision_layers, c.vision_heads, c.patch, c.image_size, c.tokens),
        (64, 2, 1, 4, 56, 197)
    );
    assert_eq!((c.text_width, c.text_layers, c.text_heads, c.context, c.embed_dim), (64, 2, 1, 77, 512));
    assert_eq!((c.fusion_dim, c.fusion_heads, c.classes, c.cls_tokens), (768, 12, 10, 10));
}

#[test]
fn tokens_match_the_authors_tokenizer() {
    let Some(dir) = fixture() else { return };
    let labels = read_labels(&dir.join("labels.txt")).unwrap();
    let (rows, _) = export::tokens(&labels, 77).unwrap();
    let f = npyz::NpyFile::new(std::fs::File::open(dir.join("tokens.npy")).unwrap()).unwrap();
    let want: Vec<i64> = match f.dtype().descr().trim_matches('\'') {
        "<i4" => f.into_vec::<i32>().unwrap().into_iter().map(i64::from).collect(),
        _ => f.into_vec::<i64>().unwrap(),
    };
    assert_eq!(rows, want);
}

#[test]
fn text_features_match() {
    let Some(l) = load() else { return };
    let (shape, want) = npy_f32(&l.dir.join("text_features.npy"));
    assert_eq!(shape, [10, 512]);
    let d = max_diff(&l.text, &want);
    assert!(d < 1e-5, "text features differ by {d}");
}

#[test]
fn full_graph_log_probs_match_and_split_graphs_agree() {
    let Some(l) = load() else { return };
    let e = Export { weights: &l.weights, config: &l.config, labels: &l.labels, text_features: &l.text, int8: false };
    let (rgb_shape, rgb) = npy_f32(&l.dir.join("rgb.npy"));
    let (_, event) = npy_f32(&l.dir.join("event.npy"));
    let shape: Vec<usize> = rgb_shape.iter().map(|&d| d as usize).collect();
    let full = export::build(&e, Graph::Full, "test").unwrap();
    let got =
        run(&full, vec![("rgb", (shape.clone(), rgb.clone())), ("event", (shape.clone(), event.clone()))], "log_probs");
    let (_, want) = npy_f32(&l.dir.join("logits.npy"));
    let d = max_diff(&got, &want);
    assert!(d < 1e-4, "log_probs differ from the authors' by {d}");
    eprintln!("full graph: max |log_prob - authors'| = {d:e}");

    // Encoder tokens of every image, RGB first, then events.
    let (b, f, s) = (shape[0], shape[1], shape[3]);
    let encoder = export::build(&e, Graph::Encoder, "test").unwrap();
    let images: Vec<f32> = rgb.iter().chain(&event).copied().collect();
    let tokens = run(&encoder, vec![("images", (vec![2 * b * f, 3, s, s], images))], "tokens");
    let (_, want_tokens) = npy_f32(&l.dir.join("image_features.npy"));
    let d = max_diff(&tokens, &want_tokens);
    assert!(d < 1e-4, "encoder tokens differ from the authors' by {d}");

    // Fusion on frame-averaged tokens == the full graph.
    let (t, dim) = (l.config.tokens as usize, l.config.embed_dim as usize);
    let per_image = t * dim;
    let mean = |modality: usize| -> Vec<f32> {
        let mut out = vec![0.0; b * per_image];
        for bi in 0..b {
            for fi in 0..f {
                let img = (modality * b + bi) * f + fi;
                for (o, v) in out[bi * per_image..][..per_image].iter_mut().zip(&tokens[img * per_image..][..per_image])
                {
                    *o += v / f as f32;
                }
            }
        }
        out
    };
    let fusion = export::build(&e, Graph::Fusion, "test").unwrap();
    let split = run(
        &fusion,
        vec![("rgb_tokens", (vec![b, t, dim], mean(0))), ("event_tokens", (vec![b, t, dim], mean(1)))],
        "log_probs",
    );
    let d = max_diff(&split, &got);
    assert!(d < 1e-5, "encoder + fusion differ from the full graph by {d}");
}

#[test]
fn int8_keeps_the_top_class_and_reports_its_drift() {
    let Some(l) = load() else { return };
    let e = Export { weights: &l.weights, config: &l.config, labels: &l.labels, text_features: &l.text, int8: true };
    let (rgb_shape, rgb) = npy_f32(&l.dir.join("rgb.npy"));
    let (_, event) = npy_f32(&l.dir.join("event.npy"));
    let shape: Vec<usize> = rgb_shape.iter().map(|&d| d as usize).collect();
    let model = export::build(&e, Graph::Full, "test").unwrap();
    let got = run(&model, vec![("rgb", (shape.clone(), rgb)), ("event", (shape, event))], "log_probs");
    let (_, want) = npy_f32(&l.dir.join("logits.npy"));
    let argmax = |row: &[f32]| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    for (g, w) in got.chunks(10).zip(want.chunks(10)) {
        assert_eq!(argmax(g), argmax(w), "int8 changed the top class");
    }
    let d = max_diff(&got, &want);
    eprintln!("int8: max |log_prob - authors'| = {d:e}");
    assert!(d < 0.2, "int8 drift {d} is larger than expected");
}
