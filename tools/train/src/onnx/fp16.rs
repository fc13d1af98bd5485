//! A finished float graph made fp16: weights stored as fp16 and every float op computed in fp16
//! (what a GPU's tensor cores want), while the graph's inputs and outputs stay float32 so that
//! safed feeds and reads every precision alike. A Cast follows each float input and precedes
//! each float output. `LayerNormalization` keeps its default `stash_type` (mean and variance in
//! float32); the float attributes (epsilon) are float in ONNX whatever the tensor type.

use anyhow::{ensure, Result};
use half::f16;

use super::proto::tensor_proto::DataType;
use super::proto::{type_proto, AttributeProto, ModelProto, NodeProto, ValueInfoProto};

const FLOAT: i32 = DataType::Float as i32;
const FLOAT16: i32 = DataType::Float16 as i32;

/// Converts `model` in place. Int8 graphs are refused: their float parts are the dequantised
/// activations, which fp16 would only make less exact.
pub fn convert(model: &mut ModelProto) -> Result<()> {
    let Some(graph) = model.graph.as_mut() else { return Ok(()) };
    ensure!(
        !graph.node.iter().any(|n| n.op_type.as_deref() == Some("MatMulInteger")),
        "an int8 graph cannot also be fp16: choose one precision"
    );
    for t in graph.initializer.iter_mut().filter(|t| t.data_type == Some(FLOAT)) {
        let values: Vec<f32> = match &t.raw_data {
            Some(raw) => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            None => std::mem::take(&mut t.float_data),
        };
        t.raw_data = Some(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect());
        t.float_data.clear();
        t.data_type = Some(FLOAT16);
    }
    for node in &mut graph.node {
        if node.op_type.as_deref() == Some("Cast") {
            for a in node.attribute.iter_mut().filter(|a| a.name.as_deref() == Some("to") && a.i == Some(FLOAT as i64))
            {
                a.i = Some(FLOAT16 as i64);
            }
        }
    }
    for v in &mut graph.value_info {
        set_elem(v, FLOAT, FLOAT16);
    }
    // Float inputs: the graph reads `name`, the rest of it `name` as fp16; float outputs: the
    // node that made `name` makes it in fp16, and a Cast makes `name`.
    let float_names = |values: &[ValueInfoProto]| -> Vec<String> {
        values.iter().filter(|v| elem(v) == Some(FLOAT)).filter_map(|v| v.name.clone()).collect()
    };
    let mut head = Vec::new();
    for name in float_names(&graph.input) {
        let half = rename(&mut graph.node, &name, |n| &mut n.input);
        head.push(cast(&name, &half, FLOAT16));
    }
    let mut tail = Vec::new();
    for name in float_names(&graph.output) {
        let half = rename(&mut graph.node, &name, |n| &mut n.output);
        tail.push(cast(&half, &name, FLOAT));
    }
    head.append(&mut graph.node);
    head.append(&mut tail);
    graph.node = head;
    Ok(())
}

/// Renames `name` to `name_fp16` wherever `side` (a node's inputs or outputs) holds it.
fn rename(nodes: &mut [NodeProto], name: &str, side: fn(&mut NodeProto) -> &mut Vec<String>) -> String {
    let half = format!("{name}_fp16");
    for node in nodes {
        for v in side(node).iter_mut().filter(|v| *v == name) {
            v.clone_from(&half);
        }
    }
    half
}

fn cast(from: &str, to: &str, elem_type: i32) -> NodeProto {
    NodeProto {
        input: vec![from.to_string()],
        output: vec![to.to_string()],
        name: Some(format!("{to}_cast")),
        op_type: Some("Cast".into()),
        attribute: vec![AttributeProto {
            name: Some("to".into()),
            r#type: Some(super::proto::attribute_proto::AttributeType::Int as i32),
            i: Some(elem_type as i64),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn elem(v: &ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.elem_type,
        _ => None,
    }
}

fn set_elem(v: &mut ValueInfoProto, from: i32, to: i32) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        if t.elem_type == Some(from) {
            t.elem_type = Some(to);
        }
    }
}
