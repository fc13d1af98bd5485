//! Parity with the authors' code on `official-tiny` (a checkpoint in their exact format, its
//! inputs, and the outputs their code computed): tokens, text features, per-image encoder
//! tokens, log-probabilities of the full graph, and split graphs == full graph.
//! The fixture is 95 MB and lives in the shared folder (SAFE_OFFICIAL_TINY, default
//! ../shared/fixtures/official-tiny beside the checkout); without it these tests say SKIPPED.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, max_diff, npy_f32};

use prost::Message;
use safe_train::calibrate;
use safe_train::config::SafeConfig;
use safe_train::eval::argmax;
use safe_train::export::{self, read_labels, Graph};
use safe_train::onnx::safe::{Export, Precision};
use safe_train::weights::Weights;
use safed::infer::ort::value::TensorRef;
use safed::infer::{runtime, SessionConfig};

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

/// Named inputs: (shape, values).
type Feed<'a> = Vec<(&'a str, (Vec<usize>, Vec<f32>))>;

fn run(model: &[u8], inputs: Feed, output: &str) -> Vec<f32> {
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

/// The fixture's model, ready to write at `precision`.
fn export_of(l: &Loaded, precision: Precision) -> Export<'_> {
    Export {
        weights: &l.weights,
        config: &l.config,
        labels: &l.labels,
        text_features: &l.text,
        precision,
        calibration: None,
    }
}

/// The fixture's inputs: shape [B, F, 3, S, S], rgb, event.
fn inputs(l: &Loaded) -> (Vec<usize>, Vec<f32>, Vec<f32>) {
    let (shape, rgb) = npy_f32(&l.dir.join("rgb.npy"));
    let (_, event) = npy_f32(&l.dir.join("event.npy"));
    (shape.iter().map(|&d| d as usize).collect(), rgb, event)
}

/// The full graph's log-probabilities on the fixture's inputs, and the authors'.
fn full_log_probs(l: &Loaded, precision: Precision) -> (Vec<f32>, Vec<f32>) {
    let e = export_of(l, precision);
    let (shape, rgb, event) = inputs(l);
    let model = export::build(&e, Graph::Full, "test").unwrap();
    let got = run(&model, vec![("rgb", (shape.clone(), rgb)), ("event", (shape, event))], "log_probs");
    (got, npy_f32(&l.dir.join("logits.npy")).1)
}

/// `graph` run by safed on `session` over the fixture's inputs: it must give the authors' top
/// class on every sample and come within `bound` of their log-probs. Returns the log-probs.
fn classify_near_authors(l: &Loaded, graph: &[u8], session: &SessionConfig, what: &str, bound: f32) -> Vec<f32> {
    let (_, rgb, event) = inputs(l);
    let want = npy_f32(&l.dir.join("logits.npy")).1;
    let mut model = safed::infer::SafeModel::from_bytes(graph, "test", session).unwrap();
    let got: Vec<f32> = model.classify(&rgb, &event).unwrap().concat();
    let classes = l.labels.len();
    for (g, w) in got.chunks(classes).zip(want.chunks(classes)) {
        assert_eq!(argmax(g), argmax(w), "{what} changed the top class");
    }
    let d = max_diff(&got, &want);
    eprintln!("{what}: max |log_prob - authors'| = {d:e}");
    assert!(d < bound, "{what}: {d} from the authors'");
    got
}

#[test]
fn full_graph_log_probs_match_and_split_graphs_agree() {
    let Some(l) = load() else { return };
    let e = export_of(&l, Precision::Fp32);
    let (shape, rgb, event) = inputs(&l);
    let (got, want) = full_log_probs(&l, Precision::Fp32);
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
    let (got, want) = full_log_probs(&l, Precision::Int8);
    for (g, w) in got.chunks(10).zip(want.chunks(10)) {
        assert_eq!(argmax(g), argmax(w), "int8 changed the top class");
    }
    let d = max_diff(&got, &want);
    eprintln!("int8: max |log_prob - authors'| = {d:e}");
    assert!(d < 0.2, "int8 drift {d} is larger than expected");

    // The same through the parity report `safed bench --against` prints.
    let load = |p| {
        let graph = export::build(&export_of(&l, p), Graph::Full, "test").unwrap();
        safed::infer::SafeModel::from_bytes(&graph, "test", &SessionConfig::default()).unwrap()
    };
    let (_, rgb, event) = inputs(&l);
    let p =
        safed::infer::parity::compare(&mut load(Precision::Int8), &mut load(Precision::Fp32), &rgb, &event).unwrap();
    assert_eq!(p.top1_agree, p.samples, "int8 changed a top class: {p:?}");
    assert!(p.max_log_prob_drift < 0.2 && p.max_log_prob_drift > 0.0, "{p:?}");
    eprintln!("int8 against fp32: {p:?}");
}

#[test]
fn fp16_keeps_the_top_class_and_reports_its_drift() {
    let Some(l) = load() else { return };
    let (fp32, want) = full_log_probs(&l, Precision::Fp32);
    // Through safed's own loader: the fp16 graph keeps the float32 contract.
    let e = export_of(&l, Precision::Fp16);
    let graph = export::build(&e, Graph::Full, "test").unwrap();
    let mut model = safed::infer::SafeModel::from_bytes(&graph, "fp16", &SessionConfig::default()).unwrap();
    let (_, rgb, event) = inputs(&l);
    let fp16: Vec<f32> = model.classify(&rgb, &event).unwrap().concat();
    for ((h, f), w) in fp16.chunks(10).zip(fp32.chunks(10)).zip(want.chunks(10)) {
        assert_eq!(argmax(h), argmax(f), "fp16 changed the top class");
        assert_eq!(argmax(h), argmax(w), "fp16 disagrees with the authors' top class");
    }
    let (d32, d) = (max_diff(&fp16, &fp32), max_diff(&fp16, &want));
    eprintln!("fp16: max |log_prob - fp32| = {d32:e}, - authors' = {d:e}");
    assert!(d32 < 0.05, "fp16 drift {d32} from fp32 is larger than expected");
}

/// The fixture's CLIP weights under Hugging Face CLIPModel names (the inverse of the import's
/// renaming), written as safetensors.
fn write_hf_clip(w: &Weights, c: &SafeConfig, path: &Path) {
    use candle_core::{Device, Tensor as CTensor};
    let mut out = std::collections::HashMap::new();
    let mut put = |name: String, dims: &[i64], data: &[f32]| {
        let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        out.insert(name, CTensor::from_slice(data, shape, &Device::Cpu).unwrap());
    };
    let t = |n: &str| w.get(n).unwrap().clone();
    for (tower, ours, layers) in [
        ("vision_model", "visual.transformer.resblocks", c.vision_layers),
        ("text_model", "transformer.resblocks", c.text_layers),
    ] {
        for k in 0..layers {
            let (l, b) = (format!("{tower}.encoder.layers.{k}"), format!("{ours}.{k}"));
            for p in ["weight", "bias"] {
                let packed = t(&format!("{b}.attn.in_proj_{p}"));
                let third = packed.data.len() / 3;
                let mut dims = packed.dims.clone();
                dims[0] /= 3;
                for (i, q) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    put(format!("{l}.self_attn.{q}.{p}"), &dims, &packed.data[i * third..(i + 1) * third]);
                }
                for (hf, name) in [
                    ("self_attn.out_proj", "attn.out_proj"),
                    ("layer_norm1", "ln_1"),
                    ("layer_norm2", "ln_2"),
                    ("mlp.fc1", "mlp.c_fc"),
                    ("mlp.fc2", "mlp.c_proj"),
                ] {
                    let x = t(&format!("{b}.{name}.{p}"));
                    put(format!("{l}.{hf}.{p}"), &x.dims, &x.data);
                }
            }
        }
    }
    for (hf, ours) in [
        ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
        ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
        ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
        ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
        ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        ("vision_model.post_layernorm.weight", "visual.ln_post.weight"),
        ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
        ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
        ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
    ] {
        let x = t(ours);
        put(hf.into(), &x.dims, &x.data);
    }
    // HF keeps the projections as Linear weights [out, in].
    for (hf, ours) in [("visual_projection.weight", "visual.proj"), ("text_projection.weight", "text_projection")] {
        let x = w.linear_t(ours).unwrap();
        put(hf.into(), &x.dims, &x.data);
    }
    candle_core::safetensors::save(&out, path).unwrap();
}

#[test]
fn hugging_face_clip_weights_import_to_the_same_model() {
    let Some(l) = load() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("clip.safetensors");
    write_hf_clip(&l.weights, &l.config, &hf);
    let mut weights = Weights::load_authors_checkpoint(&l.dir.join("checkpoint.pth")).unwrap();
    weights.replace_clip(Weights::load_clip(&hf).unwrap());
    let config = SafeConfig::infer(&weights, 5).unwrap();
    let text = export::text_features(&weights, &config, &l.labels, &SessionConfig::default()).unwrap();
    assert!(max_diff(&text, &l.text) < 1e-6, "text features differ after the HF round trip");
    let again = Loaded { dir: l.dir.clone(), weights, config, labels: l.labels.clone(), text };
    let (got, want) = full_log_probs(&again, Precision::Fp32);
    let d = max_diff(&got, &want);
    assert!(d < 1e-4, "log_probs with HF CLIP weights differ from the authors' by {d}");
}

#[test]
fn a_gpu_provider_that_cannot_start_is_an_error_unless_cpu_fallback_is_set() {
    let Some(l) = load() else { return };
    let e = export_of(&l, Precision::Fp32);
    let model = export::build(&e, Graph::Fusion, "test").unwrap();
    let cuda = SessionConfig { provider: safed::infer::Provider::Cuda, ..SessionConfig::default() };
    // The CPU build of ONNX Runtime (what tools/setup.sh fetches) has no CUDA provider; on a
    // machine with onnxruntime-gpu this test has nothing to refuse.
    if let Err(err) = safed::infer::SafeModel::from_bytes(&model, "m.onnx", &cuda) {
        let msg = err.to_string();
        assert!(msg.contains("execution provider Cuda") && msg.contains("cpu_fallback"), "{msg}");
        let fallback = SessionConfig { cpu_fallback: true, ..cuda };
        let mut m = safed::infer::SafeModel::from_bytes(&model, "m.onnx", &fallback).unwrap();
        let tokens = vec![0.1f32; (l.config.tokens * l.config.embed_dim) as usize];
        assert_eq!(m.fuse(&tokens, &tokens).unwrap().len(), 1);
    }
}

#[test]
fn a_graph_without_the_contract_is_refused_with_the_reason() {
    let Some(l) = load() else { return };
    let mut g = safe_train::onnx::builder::GraphBuilder::new();
    safe_train::onnx::safe::text_graph(&mut g, &l.weights, &l.config).unwrap();
    let bytes = safe_train::onnx::builder::encode(&g.finish("text", &[]));
    let err = safed::infer::SafeModel::from_bytes(&bytes, "text.onnx", &SessionConfig::default()).err().unwrap();
    assert!(err.to_string().contains("text.onnx: not a SAFE graph: metadata has no \"safe.format_version\""), "{err}");
}

/// The OpenVINO backend runs the same graphs: fp32 within 1e-4 of the authors' log-probs (at
/// f32: OpenVINO would pick bf16 by itself on CPUs that have it), int8 keeps the top class.
#[test]
fn openvino_backend_matches_the_authors_and_int8_keeps_the_top_class() {
    let Some(l) = load() else { return };
    let ov = SessionConfig { backend: safed::infer::Backend::Openvino, ..SessionConfig::default() };
    for (precision, bound) in [(Precision::Fp32, 1e-4), (Precision::Int8, 0.2)] {
        let graph = export::build(&export_of(&l, precision), Graph::Full, "test").unwrap();
        classify_near_authors(&l, &graph, &ov, &format!("OpenVINO {precision:?}"), bound);
    }
}

/// int8-static (QDQ, calibrated on the fixture's own inputs: the fixture has no other samples)
/// keeps the authors' top classes on both backends, the backends agree on it, and the graph
/// says what it is.
#[test]
fn int8_static_keeps_the_top_class_on_both_backends() {
    let Some(l) = load() else { return };
    let (shape, rgb, event) = inputs(&l);
    let float = export_of(&l, Precision::Fp32);
    let batches = [Ok((shape, rgb, event))];
    let ranges = calibrate::ranges(&float, batches, &SessionConfig::default(), "fixture inputs".into()).unwrap();
    // Every weight MatMul of the encoder (4 a block, and the projection) and of the fusion model.
    let layers = l.config.vision_layers as usize;
    assert_eq!(ranges.ranges.len(), 4 * layers + 1 + 13, "{:?}", ranges.ranges.keys());
    let e = Export { precision: Precision::Int8Static, calibration: Some(&ranges), ..float };
    let graph = export::build(&e, Graph::Full, "test").unwrap();
    let meta = safed::infer::onnx_meta::read(&graph).unwrap();
    let value = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(value("safe.weights"), Some("int8-static"));
    assert_eq!(value("safe.calibration"), Some("fixture inputs"));
    let model = safe_train::onnx::proto::ModelProto::decode(&graph[..]).unwrap();
    let ops = |op: &str| model.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type() == op).count();
    assert!(ops("QuantizeLinear") > 0 && ops("MatMulInteger") == 0, "not a QDQ graph");

    let by_backend: Vec<Vec<f32>> = [safed::infer::Backend::Onnxruntime, safed::infer::Backend::Openvino]
        .into_iter()
        .map(|backend| {
            let session = SessionConfig { backend, ..SessionConfig::default() };
            classify_near_authors(&l, &graph, &session, &format!("int8-static on {backend:?}"), 0.2)
        })
        .collect();
    let d = max_diff(&by_backend[0], &by_backend[1]);
    eprintln!("int8-static: ONNX Runtime against OpenVINO: max |diff| = {d:e}");
    assert!(d < 0.05, "the backends differ by {d} on the same int8-static graph");
}

/// int8-static without samples to calibrate on, or samples for a precision that takes none, is
/// an error that says what to give.
#[test]
fn int8_static_asks_for_calibration_samples() {
    let Some(l) = load() else { return };
    let e = export_of(&l, Precision::Int8Static);
    let err = export::build(&e, Graph::Full, "test").unwrap_err().to_string();
    assert!(err.contains("--calibrate DATA"), "{err}");
    let err = export::calibration(&e, None).unwrap_err().to_string();
    assert!(err.contains("--calibrate DATA"), "{err}");
    let set = safe_train::calibrate::CalibrationSet { root: "data".into(), split: "train".into(), samples: 4 };
    let err = export::calibration(&export_of(&l, Precision::Fp32), Some(&set)).unwrap_err().to_string();
    assert!(err.contains("--calibrate is for int8-static"), "{err}");
}
