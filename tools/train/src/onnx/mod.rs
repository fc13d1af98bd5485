//! Writing SAFE as ONNX graphs: the prost types generated from onnx.proto, a small builder, and
//! the layers SAFE is made of, and their int8 forms.

pub mod builder;
pub mod fp16;
pub mod layers;
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod proto;
pub mod quant;
pub mod ranges;
pub mod safe;
