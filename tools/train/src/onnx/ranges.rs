//! Calibrated activation ranges: what `calibrate` observes at the input of every weight MatMul,
//! and what an int8-static graph quantises with (`quant`).

use std::collections::BTreeMap;

/// The observed range of one weight MatMul's input activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    pub fn of(values: &[f32]) -> Option<Range> {
        let mut it = values.iter().copied().filter(|v| v.is_finite());
        let first = it.next()?;
        Some(it.fold(Range { min: first, max: first }, |r, v| Range { min: r.min.min(v), max: r.max.max(v) }))
    }

    pub fn union(self, o: Range) -> Range {
        Range { min: self.min.min(o.min), max: self.max.max(o.max) }
    }

    /// The scale of symmetric int8 (zero point 0) covering the range. Symmetric, not uint8
    /// with a zero point: OpenVINO 2026.4.1 cannot compile the fusion graph with activation
    /// zero points (its MatMul transformation fails a broadcast check on the per-token zero
    /// point it builds through the Concat before self-attention). ONNX Runtime, whose int8 is
    /// the dynamic graph, runs neither form faster than that (docs/models.md).
    pub fn int8_scale(self) -> f32 {
        let m = self.min.abs().max(self.max.abs());
        if m > 0.0 {
            m / 127.0
        } else {
            1.0
        }
    }
}

/// Calibrated activation ranges by weight name (the checkpoint's, as the graphs store it), and
/// what they were calibrated on.
#[derive(Debug, Clone, Default)]
pub struct Ranges {
    pub ranges: BTreeMap<String, Range>,
    /// The samples, in words (goes into the graphs' `safe.calibration`).
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_values_that_are_not_finite() {
        assert_eq!(Range::of(&[]), None);
        assert_eq!(Range::of(&[f32::NAN, f32::INFINITY]), None);
        let r = Range::of(&[f32::NAN, -2.0, 0.5, f32::NEG_INFINITY, 3.0]).unwrap();
        assert_eq!(r, Range { min: -2.0, max: 3.0 });
        assert_eq!(r.union(Range { min: -5.0, max: 1.0 }), Range { min: -5.0, max: 3.0 });
        assert_eq!(r.int8_scale(), 3.0 / 127.0);
        assert_eq!(Range { min: 0.0, max: 0.0 }.int8_scale(), 1.0, "an all-zero input still has a usable scale");
    }
}
