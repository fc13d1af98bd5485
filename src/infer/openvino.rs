//! OpenVINO, safed's second backend: the same graphs and metadata contract as ONNX Runtime,
//! through OpenVINO's C API (the `openvino` crate), loaded at run time from the library
//! `tools/setup.sh` unpacks out of the `openvino` wheel. Chosen per process (`[model] backend`,
//! `--backend`). Inference runs at f32 unless the config asks for bf16: OpenVINO would otherwise
//! pick bf16 by itself on CPUs with AVX-512 BF16 or AMX, and the parity contract is f32's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openvino::{CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape, Tensor};

use super::backend::{InferError, Provider, SessionConfig};
use super::locate::{self, Runtime};

/// The C API's file name prefix (the wheel versions it: `libopenvino_c.so.2641`).
const C_LIBRARY: &str = "libopenvino_c.so";

/// Where the library is looked for, in order: `SAFED_OPENVINO_LIBRARY`, else beside the
/// installed binary (`lib/safed/openvino/`) or in the checkout (`tools/openvino/lib/`): `locate`.
pub fn library_candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("SAFED_OPENVINO_LIBRARY") {
        return vec![PathBuf::from(p)];
    }
    locate::candidates(Runtime::OpenVino)
}

/// The C API library in `dir` (any version suffix), or `dir` itself when it names a file.
fn library_in(dir: &Path) -> Option<PathBuf> {
    if dir.is_file() {
        return Some(dir.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(C_LIBRARY)))
        .collect();
    found.sort();
    found.pop()
}

/// Loads the C API once per process; later calls return the first outcome.
fn load(explicit: Option<&Path>) -> Result<PathBuf, InferError> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        let looked: Vec<PathBuf> = match explicit {
            Some(p) => vec![p.to_path_buf()],
            None => library_candidates(),
        };
        let Some(path) = looked.iter().find_map(|d| library_in(d)) else {
            let shown: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "OpenVINO library ({C_LIBRARY}*) not found in {} (run tools/setup.sh, or set SAFED_OPENVINO_LIBRARY)",
                shown.join(", ")
            ));
        };
        openvino_sys::library::load_from(&path)
            .map(|()| path.clone())
            .map_err(|e| format!("loading {}: {e}", path.display()))
    });
    outcome.clone().map_err(InferError::OpenVino)
}

/// The library that loads (or why none does) and OpenVINO's version, for `safed doctor`.
pub fn describe(explicit: Option<&Path>) -> Result<(PathBuf, String), String> {
    let path = load(explicit).map_err(|e| e.to_string())?;
    let v = openvino::version();
    Ok((path, format!("{} {}", v.description, v.build_number)))
}

/// One compiled graph and its inference request.
pub struct OvGraph {
    request: InferRequest,
    compiled: CompiledModel,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl OvGraph {
    /// Reads and compiles an ONNX graph held in memory for the CPU; `what` names it in errors.
    pub fn new(bytes: &[u8], config: &SessionConfig, what: &str) -> Result<Self, InferError> {
        if config.provider != Provider::Cpu {
            return Err(InferError::OpenVino(format!(
                "{what}: the OpenVINO backend runs on the CPU; provider {:?} is ONNX Runtime's (backend = \"onnxruntime\")",
                config.provider
            )));
        }
        load(config.openvino_library.as_deref())?;
        let err = |step: &str| {
            let what = format!("{what}: OpenVINO {step}");
            move |e: openvino::InferenceError| InferError::OpenVino(format!("{what}: {e}"))
        };
        let mut core = Core::new().map_err(|e| InferError::OpenVino(format!("{what}: OpenVINO core: {e}")))?;
        let threads = config.threads.to_string();
        let mut properties = vec![
            (RwPropertyKey::HintPerformanceMode, "LATENCY"),
            (RwPropertyKey::HintInferencePrecision, config.openvino_precision.hint()),
        ];
        if config.threads > 0 {
            properties.push((RwPropertyKey::InferenceNumThreads, threads.as_str()));
        }
        core.set_properties(&DeviceType::CPU, properties).map_err(err("properties"))?;
        let model = core.read_model_from_buffer(bytes, None).map_err(err("reading the graph"))?;
        let mut compiled = core.compile_model(&model, DeviceType::CPU).map_err(err("compiling the graph"))?;
        let names = |n: usize, get: &dyn Fn(usize) -> Result<openvino::Node, openvino::InferenceError>| {
            (0..n).map(|i| get(i).and_then(|node| node.get_name())).collect::<Result<Vec<_>, _>>()
        };
        let inputs = names(compiled.get_input_size().map_err(err("inputs"))?, &|i| compiled.get_input_by_index(i))
            .map_err(err("input names"))?;
        let outputs = names(compiled.get_output_size().map_err(err("outputs"))?, &|i| compiled.get_output_by_index(i))
            .map_err(err("output names"))?;
        let request = compiled.create_infer_request().map_err(err("infer request"))?;
        Ok(OvGraph { request, compiled, inputs, outputs })
    }

    /// Whether one of the graph's outputs goes by `name` (an output may have several names).
    pub fn has_output(&self, name: &str) -> bool {
        self.compiled.get_output_by_name(name).is_ok()
    }

    /// Runs on float32 inputs (name, shape, values) and returns the named float32 output.
    pub fn run(
        &mut self,
        inputs: &[(&str, Vec<usize>, &[f32])],
        output: &str,
        what: &str,
    ) -> Result<Vec<f32>, InferError> {
        let err = |e: openvino::InferenceError| InferError::OpenVino(format!("{what}: OpenVINO: {e}"));
        for (name, shape, data) in inputs {
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let mut tensor = Tensor::new(ElementType::F32, &Shape::new(&dims).map_err(err)?).map_err(err)?;
            tensor.get_data_mut::<f32>().map_err(err)?.copy_from_slice(data);
            self.request.set_tensor(name, &tensor).map_err(err)?;
        }
        self.request.infer().map_err(err)?;
        let out = self.request.get_tensor(output).map_err(err)?;
        Ok(out.get_data::<f32>().map_err(err)?.to_vec())
    }
}
