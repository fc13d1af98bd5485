//! The SAFE model contract (see onnx/README.md): the graph roles, their inputs and outputs,
//! and the metadata every exported graph carries.

use std::path::Path;

use ort::session::Session;

use super::runtime::{self, InferError, SessionConfig};

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
        [Role::Full, Role::Encoder, Role::Fusion]
            .into_iter()
            .find(|r| r.name() == s)
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

/// A loaded SAFE graph with its metadata checked.
pub struct SafeModel {
    pub session: Session,
    pub role: Role,
    pub labels: Vec<String>,
    pub frames: usize,
    pub image_size: usize,
    pub tokens: usize,
    pub embed_dim: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl SafeModel {
    pub fn load(path: &Path, config: &SessionConfig) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| ModelError::Read {
            path: shown.clone(),
            err,
        })?;
        Self::from_bytes(&bytes, &shown, config)
    }

    pub fn from_bytes(
        bytes: &[u8],
        name: &str,
        config: &SessionConfig,
    ) -> Result<Self, ModelError> {
        let session = runtime::session(bytes, config, name)?;
        let bad = |what: String| ModelError::Contract {
            path: name.to_string(),
            what,
        };
        let meta = session.metadata().map_err(|err| InferError::Ort {
            what: format!("{name}: metadata"),
            err,
        })?;
        let get = |key: &str| {
            meta.custom(key)
                .ok_or_else(|| bad(format!("metadata has no {key:?}")))
        };
        let version = get("safe.format_version")?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}, this safed reads {FORMAT_VERSION}"
            )));
        }
        let role_name = get("safe.role")?;
        let role =
            Role::parse(&role_name).ok_or_else(|| bad(format!("unknown role {role_name:?}")))?;
        let labels: Vec<String> = serde_json::from_str(&get("safe.labels")?)
            .map_err(|e| bad(format!("safe.labels is not a JSON list: {e}")))?;
        let number = |key: &str| -> Result<usize, ModelError> {
            get(key)?
                .parse()
                .map_err(|_| bad(format!("{key} is not a number")))
        };
        let triple = |key: &str| -> Result<[f32; 3], ModelError> {
            serde_json::from_str(&get(key)?)
                .map_err(|e| bad(format!("{key} is not three numbers: {e}")))
        };
        let (frames, image_size, tokens, embed_dim) = (
            number("safe.frames")?,
            number("safe.image_size")?,
            number("safe.tokens")?,
            number("safe.embed_dim")?,
        );
        let (mean, std) = (triple("safe.mean")?, triple("safe.std")?);
        drop(meta);
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if inputs != role.inputs() {
            return Err(bad(format!(
                "a {} graph takes inputs {:?}, this one {inputs:?}",
                role.name(),
                role.inputs()
            )));
        }
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if outputs != [role.output()] {
            return Err(bad(format!(
                "a {} graph gives {:?}, this one {outputs:?}",
                role.name(),
                role.output()
            )));
        }
        if role != Role::Encoder && labels.is_empty() {
            return Err(bad("no labels".into()));
        }
        Ok(SafeModel {
            session,
            role,
            labels,
            frames,
            image_size,
            tokens,
            embed_dim,
            mean,
            std,
        })
    }
}
