//! The SAFE model contract (see onnx/README.md): the graph roles, their inputs and outputs,
//! and the metadata every exported graph carries.

use std::path::Path;

use ort::session::Session;

use super::backend::{Backend, InferError, SessionConfig};
use super::openvino::OvGraph;
use super::runtime;
use crate::accumulate::Representation;

/// Version of the graph contract written into `safe.format_version`.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("{path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{path}: not a SAFE graph: {what}")]
    Contract { path: String, what: String },
}

/// What a graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// rgb, event [B, F, 3, S, S] -> log_probs [B, C]
    Full,
    /// images [N, 3, S, S] -> tokens [N, T, E]
    Encoder,
    /// rgb_tokens, event_tokens [B, T, E] (frame-averaged) -> log_probs [B, C]
    Fusion,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::Encoder => "encoder",
            Role::Fusion => "fusion",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Full, Role::Encoder, Role::Fusion].into_iter().find(|r| r.name() == s)
    }

    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Role::Full => &["rgb", "event"],
            Role::Encoder => &["images"],
            Role::Fusion => &["rgb_tokens", "event_tokens"],
        }
    }

    pub fn output(self) -> &'static str {
        match self {
            Role::Encoder => "tokens",
            Role::Full | Role::Fusion => "log_probs",
        }
    }
}

/// The runtime a graph is loaded into.
pub enum Engine {
    OnnxRuntime(Session),
    OpenVino(OvGraph),
}

/// A loaded SAFE graph with its metadata checked.
pub struct SafeModel {
    pub engine: Engine,
    pub role: Role,
    pub labels: Vec<String>,
    pub frames: usize,
    pub image_size: usize,
    pub tokens: usize,
    pub embed_dim: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// How event windows become the event branch's images (`safe.events`; graphs written
    /// before the key existed take the event image).
    pub events: Representation,
}

impl SafeModel {
    pub fn load(path: &Path, config: &SessionConfig) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| ModelError::Read { path: shown.clone(), err })?;
        Self::from_bytes(&bytes, &shown, config)
    }

    pub fn from_bytes(bytes: &[u8], name: &str, config: &SessionConfig) -> Result<Self, ModelError> {
        let bad = |what: String| ModelError::Contract { path: name.to_string(), what };
        // Read from the bytes for both backends (OpenVINO does not hand ONNX metadata over).
        let meta: std::collections::HashMap<String, String> =
            super::onnx_meta::read(bytes).map_err(|e| bad(format!("not an ONNX model: {e}")))?.into_iter().collect();
        let get = |key: &str| meta.get(key).cloned().ok_or_else(|| bad(format!("metadata has no {key:?}")));
        let version = get("safe.format_version")?;
        if version != FORMAT_VERSION {
            return Err(bad(format!("format version {version}, this safed reads {FORMAT_VERSION}")));
        }
        let role_name = get("safe.role")?;
        let role = Role::parse(&role_name).ok_or_else(|| bad(format!("unknown role {role_name:?}")))?;
        let (engine, inputs, outputs) = match config.backend {
            Backend::Onnxruntime => {
                let session = runtime::session(bytes, config, name)?;
                tracing::info!(model = name, "graph loaded on ONNX Runtime");
                let inputs: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
                let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
                (Engine::OnnxRuntime(session), inputs, outputs)
            }
            Backend::Openvino => {
                let graph = OvGraph::new(bytes, config, name)?;
                tracing::info!(model = name, precision = ?config.openvino_precision, "graph loaded on OpenVINO");
                // OpenVINO reports one of an output's tensor names; ask for the contract's.
                let output = role.output();
                let outputs = if graph.has_output(output) { vec![output.to_string()] } else { graph.outputs.clone() };
                let inputs = graph.inputs.clone();
                (Engine::OpenVino(graph), inputs, outputs)
            }
        };
        let labels: Vec<String> = serde_json::from_str(&get("safe.labels")?)
            .map_err(|e| bad(format!("safe.labels is not a JSON list: {e}")))?;
        let number = |key: &str| -> Result<usize, ModelError> {
            get(key)?.parse().map_err(|_| bad(format!("{key} is not a number")))
        };
        let triple = |key: &str| -> Result<[f32; 3], ModelError> {
            serde_json::from_str(&get(key)?).map_err(|e| bad(format!("{key} is not three numbers: {e}")))
        };
        let (frames, image_size, tokens, embed_dim) =
            (number("safe.frames")?, number("safe.image_size")?, number("safe.tokens")?, number("safe.embed_dim")?);
        let (mean, std) = (triple("safe.mean")?, triple("safe.std")?);
        let events = match meta.get("safe.events") {
            None => Representation::Image,
            Some(name) => Representation::parse(name)
                .ok_or_else(|| bad(format!("safe.events {name:?}: expected image or voxel")))?,
        };
        if inputs != role.inputs() {
            return Err(bad(format!("a {} graph takes inputs {:?}, this one {inputs:?}", role.name(), role.inputs())));
        }
        if outputs != [role.output()] {
            return Err(bad(format!("a {} graph gives {:?}, this one {outputs:?}", role.name(), role.output())));
        }
        if role != Role::Encoder && labels.is_empty() {
            return Err(bad("no labels".into()));
        }
        Ok(SafeModel { engine, role, labels, frames, image_size, tokens, embed_dim, mean, std, events })
    }
}

impl SafeModel {
    fn expect_role(&self, role: Role) -> Result<(), ModelError> {
        if self.role == role {
            return Ok(());
        }
        Err(ModelError::Contract {
            path: "model".into(),
            what: format!("this is a {} graph; a {} graph is needed", self.role.name(), role.name()),
        })
    }

    fn run_f32(&mut self, inputs: &[(&str, Vec<usize>, &[f32])], what: &str) -> Result<Vec<f32>, ModelError> {
        let output = self.role.output();
        let session = match &mut self.engine {
            Engine::OpenVino(graph) => return Ok(graph.run(inputs, output, what)?),
            Engine::OnnxRuntime(session) => session,
        };
        use ort::value::TensorRef;
        let err = |err: ort::Error| ModelError::Infer(InferError::Ort { what: what.to_string(), err });
        let mut feed = Vec::with_capacity(inputs.len());
        for (name, shape, data) in inputs {
            let t = TensorRef::from_array_view((shape.clone(), *data)).map_err(err)?;
            feed.push((std::borrow::Cow::Borrowed(*name), ort::session::SessionInputValue::from(t)));
        }
        let out = session.run(feed).map_err(err)?;
        let (_, data) = out[output].try_extract_tensor::<f32>().map_err(err)?;
        Ok(data.to_vec())
    }

    /// Per-image [3, S, S] tensor length.
    pub fn image_len(&self) -> usize {
        3 * self.image_size * self.image_size
    }

    /// Full graph: `rgb` and `event` hold B samples of F normalised images each.
    pub fn classify(&mut self, rgb: &[f32], event: &[f32]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.expect_role(Role::Full)?;
        let per_sample = self.frames * self.image_len();
        if rgb.len() != event.len() || rgb.is_empty() || !rgb.len().is_multiple_of(per_sample) {
            return Err(ModelError::Contract {
                path: "input".into(),
                what: format!(
                    "rgb has {} values and event {}: each must be B x {} frames x 3 x {s} x {s}",
                    rgb.len(),
                    event.len(),
                    self.frames,
                    s = self.image_size
                ),
            });
        }
        let b = rgb.len() / per_sample;
        let shape = vec![b, self.frames, 3, self.image_size, self.image_size];
        let out = self.run_f32(&[("rgb", shape.clone(), rgb), ("event", shape, event)], "classify")?;
        Ok(out.chunks(self.labels.len()).map(<[f32]>::to_vec).collect())
    }

    /// Encoder graph: N images -> N x T x E tokens.
    pub fn encode(&mut self, images: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.expect_role(Role::Encoder)?;
        let n = images.len() / self.image_len();
        let shape = vec![n, 3, self.image_size, self.image_size];
        self.run_f32(&[("images", shape, images)], "encode")
    }

    /// Fusion graph: frame-averaged tokens of B samples -> B rows of log-probabilities.
    pub fn fuse(&mut self, rgb_tokens: &[f32], event_tokens: &[f32]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.expect_role(Role::Fusion)?;
        let b = rgb_tokens.len() / (self.tokens * self.embed_dim);
        let shape = vec![b, self.tokens, self.embed_dim];
        let out =
            self.run_f32(&[("rgb_tokens", shape.clone(), rgb_tokens), ("event_tokens", shape, event_tokens)], "fuse")?;
        Ok(out.chunks(self.labels.len()).map(<[f32]>::to_vec).collect())
    }

    /// The `k` most likely labels of one row of log-probabilities.
    pub fn top(&self, log_probs: &[f32], k: usize) -> Vec<(String, f32)> {
        let mut order: Vec<usize> = (0..log_probs.len()).collect();
        order.sort_by(|&a, &b| log_probs[b].total_cmp(&log_probs[a]));
        order.into_iter().take(k).map(|i| (self.labels.get(i).cloned().unwrap_or_default(), log_probs[i])).collect()
    }
}
