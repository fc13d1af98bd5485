//! A small ONNX graph builder over the prost types: named values, initializers, nodes with
//! attributes, graph inputs/outputs and model metadata. It hides proto2's `Option` fields and
//! gives every node output a unique name.

use prost::Message;

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The opset we emit: LayerNormalization exists, ReduceMean takes axes as an attribute.
pub const OPSET: i64 = 17;
const IR_VERSION: i64 = 8;

/// A dimension of a graph input or output.
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// A node attribute value.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    /// An element type (Cast's `to`).
    Type(DataType),
}

#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
    /// Initializer names already added (a weight used twice is stored once).
    stored: std::collections::HashSet<String>,
    /// Prefix of generated names (a scope such as "visual.block3").
    scope: Vec<String>,
    /// How `x @ W` for a constant weight is written (float, int8, or tapped for calibration).
    pub weight_matmul: WeightMatmul,
    /// (activation, weight name) of every weight MatMul, in calibration mode.
    pub taps: Vec<(String, String)>,
}

/// How the graphs write a MatMul by a constant weight.
#[derive(Debug, Clone, Default)]
pub enum WeightMatmul {
    #[default]
    Float,
    /// Weights int8 per output channel, activations quantised per call (ONNX Runtime's
    /// MatMulInteger path).
    Int8Dynamic,
    /// Weights int8 per output channel, activations int8 with the calibrated ranges, as
    /// QuantizeLinear / DequantizeLinear pairs around a float MatMul (the QDQ form OpenVINO and
    /// ONNX Runtime both fuse into integer kernels).
    Int8Static(std::sync::Arc<super::ranges::Ranges>),
    /// Float MatMuls, each activation recorded in `taps` to be made a graph output.
    Calibrate,
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(n) => tensor_shape_proto::dimension::Value::DimParam(n.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with names prefixed by `scope`.
    pub fn scoped<T>(&mut self, scope: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.scope.push(scope.to_string());
        let out = f(self);
        self.scope.pop();
        out
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        let mut name = self.scope.join(".");
        if !name.is_empty() {
            name.push('/');
        }
        format!("{name}{hint}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem, dims));
        name.to_string()
    }

    /// Declares `value` a graph output named `name` (an Identity node renames it).
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) {
        self.nodes.push(NodeProto {
            input: vec![value.to_string()],
            output: vec![name.to_string()],
            op_type: Some("Identity".into()),
            name: Some(format!("{name}_out")),
            ..Default::default()
        });
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Declares `value` a graph output named `name` of float elements and any shape.
    pub fn output_any_shape(&mut self, value: &str, name: &str) {
        self.output(value, name, DataType::Float, &[]);
        if let Some(tensor) = self.outputs.last_mut().and_then(|o| o.r#type.as_mut()).and_then(|t| match &mut t.value {
            Some(type_proto::Value::TensorType(t)) => Some(t),
            _ => None,
        }) {
            tensor.shape = None;
        }
    }

    /// A float initializer; `name` is kept (weights keep the checkpoint's names).
    pub fn weight(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        if !self.stored.insert(name.to_string()) {
            return name.to_string();
        }
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}: shape and data disagree");
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            name: Some(name.to_string()),
            raw_data: Some(raw),
            ..Default::default()
        });
        name.to_string()
    }

    pub fn const_f32(&mut self, dims: &[i64], data: &[f32]) -> String {
        let name = self.fresh("const");
        self.weight(&name, dims, data)
    }

    /// An initializer of raw little-endian bytes of `data_type` (int8 weights and the like).
    pub fn raw(&mut self, name: &str, dims: &[i64], data_type: DataType, raw: Vec<u8>) -> String {
        if self.stored.insert(name.to_string()) {
            self.initializers.push(TensorProto {
                dims: dims.to_vec(),
                data_type: Some(data_type as i32),
                name: Some(name.to_string()),
                raw_data: Some(raw),
                ..Default::default()
            });
        }
        name.to_string()
    }

    pub fn const_i64(&mut self, data: &[i64]) -> String {
        let name = self.fresh("const");
        self.stored.insert(name.clone());
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.clone()),
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name
    }

    /// Whether a node already produces `name`.
    pub fn stored_value(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| n.output.iter().any(|o| o == name))
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.fresh(op);
        self.node_n(op, inputs, attrs, &[&out]);
        out
    }

    /// Adds a node with the given output names.
    pub fn node_n(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)], outputs: &[&str]) {
        let attribute = attrs
            .iter()
            .map(|(name, a)| {
                let mut p = AttributeProto { name: Some(name.to_string()), ..Default::default() };
                match a {
                    Attr::Int(v) => {
                        p.i = Some(*v);
                        p.r#type = Some(AttributeType::Int as i32);
                    }
                    Attr::Ints(v) => {
                        p.ints = v.clone();
                        p.r#type = Some(AttributeType::Ints as i32);
                    }
                    Attr::Float(v) => {
                        p.f = Some(*v);
                        p.r#type = Some(AttributeType::Float as i32);
                    }
                    Attr::Type(t) => {
                        p.i = Some(*t as i64);
                        p.r#type = Some(AttributeType::Int as i32);
                    }
                }
                p
            })
            .collect();
        let name = self.fresh(&format!("{op}_node"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name),
            op_type: Some(op.to_string()),
            attribute,
            ..Default::default()
        });
    }

    /// Finishes the model, with `metadata` as its metadata properties.
    pub fn finish(self, graph_name: &str, metadata: &[(String, String)]) -> ModelProto {
        ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some("safe-train".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some(graph_name.into()),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto { key: Some(k.clone()), value: Some(v.clone()) })
                .collect(),
            ..Default::default()
        }
    }
}

pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
