//! The fused CPU ops (layer norm, softmax, QuickGELU, row bias) and the fused AdamW: each op's
//! forward and gradients against candle's composite of basic ops, and its gradients against
//! central finite differences of a weighted sum of its output.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safe_train::model::attention::SelfAttention;
use safe_train::model::fused::{LayerNorm, Linear, QuickGelu, RowBias, Softmax};
use safe_train::model::layers::composite;

type Op = dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>;

fn random(shape: &[usize], scale: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-scale..scale)).collect()
}

fn tensor(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_slice(data, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// sum(op(inputs) * weights) in f64, from the op's f32 output.
fn weighted_sum(op: &Op, inputs: &[Tensor], weights: &[f32]) -> f64 {
    values(&op(inputs).unwrap()).iter().zip(weights).map(|(&y, &w)| y as f64 * w as f64).sum()
}

/// The gradients of sum(op(inputs) * weights) with respect to every input, by backprop.
fn gradients(op: &Op, inputs: &[(Vec<usize>, Vec<f32>)], weights: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let vars: Vec<Var> = inputs.iter().map(|(s, d)| Var::from_tensor(&tensor(s, d)).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = op(&ts).unwrap();
    let w = tensor(y.dims(), weights);
    let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let g = vars.iter().map(|v| values(grads.get(v.as_tensor()).expect("every input gets a gradient"))).collect();
    (values(&y), g)
}

/// Checks `fused` against `reference` (forward and gradients) and against finite differences.
fn check(name: &str, fused: &Op, reference: &Op, shapes: &[&[usize]], seed: u64) {
    check_with(name, fused, reference, shapes, seed, true)
}

fn check_with(name: &str, fused: &Op, reference: &Op, shapes: &[&[usize]], seed: u64, finite_differences: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let inputs: Vec<(Vec<usize>, Vec<f32>)> = shapes.iter().map(|s| (s.to_vec(), random(s, 1.5, &mut rng))).collect();
    let ts: Vec<Tensor> = inputs.iter().map(|(s, d)| tensor(s, d)).collect();
    let out_len = fused(&ts).unwrap().elem_count();
    let weights = random(&[out_len], 1.0, &mut rng);
    let (y, g) = gradients(fused, &inputs, &weights);
    let (y_ref, g_ref) = gradients(reference, &inputs, &weights);
    let close = |a: f32, b: f32, tol: f32| (a - b).abs() <= tol * (1.0 + b.abs());
    for (a, b) in y.iter().zip(&y_ref) {
        assert!(close(*a, *b, 1e-5), "{name}: forward {a} against the composite's {b}");
    }
    for (k, (ga, gb)) in g.iter().zip(&g_ref).enumerate() {
        for (i, (a, b)) in ga.iter().zip(gb).enumerate() {
            assert!(close(*a, *b, 1e-4), "{name}: input {k}[{i}] gradient {a} against the composite's {b}");
        }
    }
    if !finite_differences {
        return;
    }
    // Central differences on every element of every input (the shapes are small).
    let h = 1e-2f32;
    for (k, (shape, data)) in inputs.iter().enumerate() {
        for i in 0..data.len() {
            let at = |delta: f32| {
                let mut moved: Vec<Tensor> = ts.clone();
                let mut d = data.clone();
                d[i] += delta;
                moved[k] = tensor(shape, &d);
                weighted_sum(fused, &moved, &weights)
            };
            let numeric = ((at(h) - at(-h)) / (2.0 * h as f64)) as f32;
            assert!(
                close(g[k][i], numeric, 5e-3),
                "{name}: input {k}[{i}] gradient {} against finite differences {numeric}",
                g[k][i]
            );
        }
    }
}

#[test]
fn layer_norm_gradients() {
    for (eps, seed) in [(1e-5, 1), (1e-6, 2)] {
        check(
            "layer-norm",
            &move |t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], LayerNorm { eps: eps as f32 }),
            &move |t: &[Tensor]| composite::layer_norm(&t[0], &t[1], &t[2], eps),
            &[&[2, 3, 8], &[8], &[8]],
            seed,
        );
    }
}

#[test]
fn softmax_gradients() {
    check(
        "softmax",
        &|t: &[Tensor]| t[0].apply_op1(Softmax),
        &|t: &[Tensor]| composite::softmax_last(&t[0]),
        &[&[2, 3, 7]],
        3,
    );
}

#[test]
fn quick_gelu_gradients() {
    check(
        "quick-gelu",
        &|t: &[Tensor]| t[0].apply_op1(QuickGelu),
        &|t: &[Tensor]| composite::quick_gelu(&t[0]),
        &[&[4, 9]],
        4,
    );
}

#[test]
fn row_bias_gradients() {
    // A bias over rows, a positional embedding [T, W] over [B, T, W], and an embedding
    // [1, 1, W] (SAFE's rgb_embed) over [B, T, W].
    for (bias, seed) in [(&[5usize][..], 5), (&[3, 5][..], 6), (&[1, 1, 5][..], 7)] {
        check(
            "row-bias",
            &|t: &[Tensor]| t[0].apply_op2(&t[1], RowBias),
            &|t: &[Tensor]| t[0].broadcast_add(&t[1]),
            &[&[2, 3, 5], bias],
            seed,
        );
    }
}

#[test]
fn self_attention_gradients() {
    // One head and several, with and without the causal mask (CLIP's text encoder).
    for (heads, causal, seed) in [(1, false, 21), (2, false, 22), (2, true, 23), (3, true, 24)] {
        check(
            "self-attention",
            &move |t: &[Tensor]| t[0].apply_op1(SelfAttention::new(heads, causal)),
            &move |t: &[Tensor]| composite::packed_self_attention(&t[0], heads, causal),
            &[&[2, 5, 3 * 6 * heads]],
            seed,
        );
    }
}

fn linear_reference(t: &[Tensor]) -> candle_core::Result<Tensor> {
    t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2])
}

#[test]
fn linear_gradients() {
    check(
        "linear",
        &|t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], Linear),
        &linear_reference,
        &[&[2, 3, 4], &[5, 4], &[5]],
        31,
    );
    check(
        "linear",
        &|t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], Linear),
        &linear_reference,
        &[&[6, 3], &[2, 3], &[2]],
        32,
    );
}

#[test]
fn linear_refuses_mismatched_sizes() {
    let z = |s: &[usize]| Tensor::zeros(s, candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = z(&[2, 4]).apply_op3(&z(&[5, 3]), &z(&[5]), Linear).unwrap_err().to_string();
    assert!(err.contains("input width 4, weight 5 x 3"), "{err}");
    let err = z(&[2, 3]).apply_op3(&z(&[5, 3]), &z(&[4]), Linear).unwrap_err().to_string();
    assert!(err.contains("bias of 4 for 5 outputs"), "{err}");
}

#[test]
fn self_attention_refuses_a_width_that_does_not_split() {
    let x = Tensor::zeros((1, 2, 10), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = x.apply_op1(SelfAttention::new(1, false)).unwrap_err().to_string();
    assert!(err.contains("packed width 10"), "{err}");
}

/// Inputs the size of a tiny-preset step (past the size where the ops split rows over
/// threads) against the composites: forward and every gradient.
#[test]
fn ops_split_over_threads_match_the_composites() {
    let big: &[usize] = &[40, 65, 64];
    check_with(
        "layer-norm",
        &|t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], LayerNorm { eps: 1e-5 }),
        &|t: &[Tensor]| composite::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        &[big, &[64], &[64]],
        11,
        false,
    );
    check_with(
        "softmax",
        &|t: &[Tensor]| t[0].apply_op1(Softmax),
        &|t: &[Tensor]| composite::softmax_last(&t[0]),
        &[big],
        12,
        false,
    );
    check_with(
        "quick-gelu",
        &|t: &[Tensor]| t[0].apply_op1(QuickGelu),
        &|t: &[Tensor]| composite::quick_gelu(&t[0]),
        &[big],
        13,
        false,
    );
    check_with(
        "row-bias",
        &|t: &[Tensor]| t[0].apply_op2(&t[1], RowBias),
        &|t: &[Tensor]| t[0].broadcast_add(&t[1]),
        &[big, &[65, 64]],
        14,
        false,
    );
    check_with(
        "linear",
        &|t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], Linear),
        &linear_reference,
        &[big, &[256, 64], &[256]],
        16,
        false,
    );
    for (heads, causal) in [(1, false), (4, true)] {
        check_with(
            "self-attention",
            &move |t: &[Tensor]| t[0].apply_op1(SelfAttention::new(heads, causal)),
            &move |t: &[Tensor]| composite::packed_self_attention(&t[0], heads, causal),
            &[&[40, 65, 192]],
            15,
            false,
        );
    }
}

#[test]
fn row_bias_refuses_a_bias_that_is_not_a_row() {
    let x = Tensor::zeros((2, 3, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = x.apply_op2(&b, RowBias).unwrap_err().to_string();
    assert!(err.contains("not rows of 4"), "{err}");
}

/// Two fused AdamW steps against the update written out in f64 (PyTorch's AdamW: decoupled
/// weight decay, bias-corrected moments, the gradient scaled by the clipping factor first).
#[test]
fn adamw_matches_its_formula() {
    use safe_train::model::Params;
    use safe_train::optim::AdamW;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (p0, c) = (random(&[2, 3], 1.0, &mut rng), random(&[2, 3], 1.0, &mut rng));
    let params = Params::from_tensors([("w".to_string(), tensor(&[2, 3], &p0))]).unwrap();
    let mut opt = AdamW::new(&params, 0.1).unwrap();
    let (lr, scale) = (0.01, 0.5);
    let (mut p, mut m, mut v) = (p0.iter().map(|&x| x as f64).collect::<Vec<_>>(), vec![0f64; 6], vec![0f64; 6]);
    for step in 1..=2 {
        // loss = sum(w^2 * c): the gradient 2 w c depends on the weights, so step 2 checks
        // that step 1 wrote them.
        let w = params.get("w").unwrap();
        let loss = (w.sqr().unwrap() * tensor(&[2, 3], &c)).unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap(), lr, scale).unwrap();
        for i in 0..6 {
            let g = 2.0 * p[i] * c[i] as f64 * scale;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            let (mh, vh) = (m[i] / (1.0 - 0.9f64.powi(step)), v[i] / (1.0 - 0.999f64.powi(step)));
            p[i] = p[i] * (1.0 - lr * 0.1) - lr * mh / (vh.sqrt() + 1e-8);
        }
        for (a, b) in values(params.get("w").unwrap()).iter().zip(&p) {
            assert!((*a as f64 - b).abs() < 1e-6, "step {step}: {a} against {b}");
        }
    }
}
