//! The `safe.*` metadata of an ONNX graph read from its bytes, for backends that do not hand it
//! over (OpenVINO's C API has no access to an ONNX model's `metadata_props`). Only
//! `ModelProto.metadata_props` (field 14) is declared: prost skips every other field, the
//! weights included, without copying them.

#[derive(Clone, PartialEq, prost::Message)]
struct ModelMetadata {
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, optional, tag = "1")]
    key: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// Key/value pairs of the model's metadata, in file order.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, String)>, prost::DecodeError> {
    let m = <ModelMetadata as prost::Message>::decode(bytes)?;
    Ok(m.metadata_props.into_iter().map(|e| (e.key.unwrap_or_default(), e.value.unwrap_or_default())).collect())
}
