//! The bundled demo: a small SAFE model trained on safe-train's synthetic set, and one
//! synthetic recording for it to recognise (rebuilt by tools/train/make-demo.sh). They make
//! `safed replay` with no arguments work on any machine.

use crate::events::{open_reader, EventError, EventSource, OpenOptions};

pub const SAMPLE_NAME: &str = "demo-sample.aedat4";
pub static SAMPLE: &[u8] = include_bytes!("../onnx/demo-sample.aedat4");
static ENCODER: &[u8] = include_bytes!("../onnx/demo.encoder.onnx");
static FUSION: &[u8] = include_bytes!("../onnx/demo.fusion.onnx");

/// The demo model's encoder and fusion graphs.
pub fn model_bytes() -> (&'static [u8], &'static [u8]) {
    (ENCODER, FUSION)
}

pub fn open_sample() -> Result<Box<dyn EventSource>, EventError> {
    open_reader(std::io::Cursor::new(SAMPLE), &format!("(bundled) {SAMPLE_NAME}"), &OpenOptions::default())
}
