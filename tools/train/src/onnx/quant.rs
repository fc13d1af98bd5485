//! int8 weight MatMuls: weights int8 per output channel (symmetric), activations either uint8
//! quantised per call (dynamic: ONNX Runtime's MatMulInteger path) or int8 with ranges
//! calibrated on samples (static: QuantizeLinear / DequantizeLinear around a float MatMul, the
//! QDQ form that OpenVINO's low-precision transformations and ONNX Runtime's QDQ fusions turn
//! into integer kernels).

use anyhow::{bail, ensure, Result};

use super::builder::{Attr, GraphBuilder};
use super::proto::tensor_proto::DataType;
use super::ranges::Ranges;
use crate::tensor::Tensor;

/// Per-output-channel symmetric int8 of a [in, out] weight: (values, scales).
fn per_channel_int8(w: &Tensor) -> (Vec<u8>, Vec<f32>) {
    let (rows, cols) = (w.dims[0] as usize, w.dims[1] as usize);
    let mut scales = vec![0f32; cols];
    for r in 0..rows {
        for (c, s) in scales.iter_mut().enumerate() {
            *s = s.max(w.data[r * cols + c].abs());
        }
    }
    scales.iter_mut().for_each(|s| *s = if *s > 0.0 { *s / 127.0 } else { 1.0 });
    let q = w
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[i % cols]).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect();
    (q, scales)
}

/// The int8 weight, its per-channel scales and (zero) zero points, as initializers.
fn int8_weight(g: &mut GraphBuilder, name: &str, w: &Tensor) -> (String, String, String) {
    let cols = w.dims[1];
    let (q, scales) = per_channel_int8(w);
    let wq = g.raw(&format!("{name}_int8"), &w.dims, DataType::Int8, q);
    let wzp = g.raw(&format!("{name}_zero_point"), &[cols], DataType::Int8, vec![0; cols as usize]);
    let ws = g.weight(&format!("{name}_scale"), &[cols], &scales);
    (wq, ws, wzp)
}

/// `x @ w` with x quantised per call: the pattern ONNX Runtime's dynamic quantisation writes
/// (and fuses into DynamicQuantizeMatMul).
pub fn dynamic_matmul(g: &mut GraphBuilder, x: &str, name: &str, w: &Tensor) -> String {
    let (wq, ws, wzp) = int8_weight(g, name, w);
    let (xq, xs, xzp) = (format!("{x}_quantized"), format!("{x}_scale"), format!("{x}_zero_point"));
    // One quantisation of x serves every weight it meets.
    if !g.stored_value(&xq) {
        g.node_n("DynamicQuantizeLinear", &[x], &[], &[&xq, &xs, &xzp]);
    }
    let y = g.node("MatMulInteger", &[&xq, &wq, &xzp, &wzp], &[]);
    let y = g.node("Cast", &[&y], &[("to", Attr::Type(DataType::Float))]);
    let scale = g.node("Mul", &[&xs, &ws], &[]);
    g.node("Mul", &[&y, &scale], &[])
}

/// `x @ w` in QDQ form with x's calibrated range.
pub fn static_matmul(g: &mut GraphBuilder, x: &str, name: &str, w: &Tensor, ranges: &Ranges) -> Result<String> {
    let Some(range) = ranges.ranges.get(name) else {
        bail!("no calibrated range for the input of {name}: calibrate on the same model");
    };
    ensure!(range.min.is_finite() && range.max.is_finite(), "{name}: calibrated range {range:?} is not finite");
    let xd = format!("{x}_dequantized");
    // x is quantised once for every weight it meets (q, k and v read the same activation).
    if !g.stored_value(&xd) {
        let s = g.weight(&format!("{x}_scale"), &[], &[range.int8_scale()]);
        let zp = g.raw(&format!("{x}_zero_point"), &[], DataType::Int8, vec![0]);
        let xq = g.node("QuantizeLinear", &[x, &s, &zp], &[]);
        g.node_n("DequantizeLinear", &[&xq, &s, &zp], &[], &[&xd]);
    }
    let (wq, ws, wzp) = int8_weight(g, name, w);
    let wd = format!("{name}_dequantized");
    if !g.stored_value(&wd) {
        g.node_n("DequantizeLinear", &[&wq, &ws, &wzp], &[("axis", Attr::Int(1))], &[&wd]);
    }
    Ok(g.node("MatMul", &[&xd, &wd], &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_weights_round_trip_within_half_a_step() {
        let w = Tensor { dims: vec![3, 2], data: vec![1.0, -0.01, -0.5, 0.02, 0.25, 0.0] };
        let (q, scales) = per_channel_int8(&w);
        assert_eq!(scales, vec![1.0 / 127.0, 0.02 / 127.0]);
        for (i, (&v, &b)) in w.data.iter().zip(&q).enumerate() {
            let back = b as i8 as f32 * scales[i % 2];
            assert!((back - v).abs() <= scales[i % 2] / 2.0, "{v} came back as {back}");
        }
    }
}
