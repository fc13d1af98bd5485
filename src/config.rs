//! safed's TOML configuration: every option, its default, and its validation. Unknown keys and
//! bad values are errors that name the key (serde's deny_unknown_fields, then [`Config::check`]).
//! `config/safed.toml` documents every option.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::accumulate::WindowMode;
use crate::infer::Provider;
use crate::ring::Overflow;

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub window: WindowConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub service: ServiceConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub rgb: RgbConfig,
    /// The live view in a browser (off unless `listen` is set).
    #[serde(default)]
    pub view: crate::view::ViewConfig,
    /// The ROS 2 node (for `ros2:` sources and `[output.ros2]`).
    #[serde(default)]
    pub ros2: crate::ros2::Ros2Config,
    /// More streams in the same process, sharing the model (see [`Config::streams`]).
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
}

/// A `[[streams]]` entry: one more event source (and its RGB), with [source]'s options for what
/// it leaves out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    pub events: String,
    #[serde(default)]
    pub frames: Option<FramesFrom>,
    /// An OpenCV source for this stream's RGB (default: none; frames as `frames` says).
    #[serde(default)]
    pub rgb: String,
    #[serde(default)]
    pub speed: Option<Speed>,
    #[serde(default, rename = "loop")]
    pub looping: Option<bool>,
    #[serde(default)]
    pub camera_config: Option<std::path::PathBuf>,
    #[serde(default)]
    pub rate_limit: Option<u64>,
}

/// One stream as `safed run` opens it: its source settings and its OpenCV RGB source ("" for
/// none).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub source: SourceConfig,
    pub rgb: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RgbConfig {
    /// An OpenCV source for the RGB branch: a camera index ("0"), "/dev/video0", a video file,
    /// or an RTSP / GStreamer URL. Empty: RGB comes from `source.frames`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Prometheus endpoint address ("127.0.0.1:9187"); empty: off.
    pub listen: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// `bundled` (the demo recording), a file path, `-` (standard input), a FIFO,
    /// `tcp://HOST:PORT` or `unix:///PATH`.
    pub events: String,
    /// Where RGB frames come from: `stream` (the frames inside the event source: DAVIS APS,
    /// recorded frames) or `none` (event-only mode).
    pub frames: FramesFrom,
    /// Files: recorded-time factor, or "max".
    pub speed: Speed,
    /// Files: start again at the end.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Network: first reconnect delay and its cap (doubling in between), ms.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Network: a stream silent this long is reconnected, ms.
    pub idle_timeout_ms: u64,
    /// Stream id in the output lines.
    pub name: String,
    /// USB cameras (`usb:`): the camera's settings as the neuromorphic-drivers crate's JSON
    /// (`safed cameras --configuration TYPE` prints the defaults to start from).
    pub camera_config: Option<std::path::PathBuf>,
    /// USB cameras: the EVK4 / EVK3 HD hardware rate limiter, events per second (unset: off).
    pub rate_limit: Option<u64>,
}

impl SourceConfig {
    /// The USB camera settings, the configuration file read and checked.
    pub fn usb_options(&self) -> Result<crate::events::usb::UsbOptions, String> {
        let configuration = match &self.camera_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
                crate::events::usb::check_configuration(&text)?;
                Some(text)
            }
            None => None,
        };
        Ok(crate::events::usb::UsbOptions { configuration, rate_limit: self.rate_limit })
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            events: "bundled".into(),
            frames: FramesFrom::Stream,
            speed: Speed::Factor(1.0),
            looping: false,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 1000,
            idle_timeout_ms: 2000,
            name: "cam0".into(),
            camera_config: None,
            rate_limit: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FramesFrom {
    Stream,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Speed {
    Factor(f64),
    Named(SpeedName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeedName {
    Max,
}

impl Speed {
    /// "max" or a positive factor, as the command line gives it.
    pub fn parse(s: &str) -> Option<Speed> {
        let speed = if s == "max" { Speed::Named(SpeedName::Max) } else { Speed::Factor(s.parse().ok()?) };
        speed.is_valid().then_some(speed)
    }

    /// A factor must be positive and finite.
    pub fn is_valid(self) -> bool {
        match self {
            Speed::Factor(f) => f > 0.0 && f.is_finite(),
            Speed::Named(_) => true,
        }
    }

    pub fn factor(self) -> Option<f64> {
        match self {
            Speed::Factor(f) => Some(f),
            Speed::Named(SpeedName::Max) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// `interval` (previous frame to this one), `exposure`, `time`, `count`.
    pub mode: String,
    /// For `time` (and event-only mode), µs.
    pub time_us: i64,
    /// For `count`.
    pub count: usize,
    /// Events held while frames wait for their windows.
    pub max_buffered_events: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { mode: "interval".into(), time_us: 33_333, count: 20_000, max_buffered_events: 8 << 20 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Items (event packets and frames) between capture and processing.
    pub capacity: usize,
    pub overflow: Overflow,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: 1024, overflow: Overflow::DropOldest }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The full graph (its split pair beside it); absent: the bundled demo model.
    pub path: Option<PathBuf>,
    /// "onnxruntime" (CPU, CUDA, TensorRT) or "openvino" (CPU).
    pub backend: crate::infer::Backend,
    /// OpenVINO's compute precision: "f32" or "bf16".
    pub openvino_precision: crate::infer::OvPrecision,
    pub openvino_library: Option<PathBuf>,
    pub provider: Provider,
    pub device_id: i32,
    /// Intra-op threads (0: one per core).
    pub threads: usize,
    pub cpu_fallback: bool,
    pub ort_library: Option<PathBuf>,
    /// Recognise every `hop` frames.
    pub hop: usize,
    pub top_k: usize,
    /// Pairs (from any streams) encoded in one inference call at most.
    pub batch: usize,
    /// How long a ready pair may wait for other streams' pairs to fill a batch, ms.
    pub batch_wait_ms: u64,
}

impl ModelConfig {
    /// How the model's sessions are made.
    pub fn session(&self) -> crate::infer::SessionConfig {
        crate::infer::SessionConfig {
            backend: self.backend,
            openvino_library: self.openvino_library.clone(),
            openvino_precision: self.openvino_precision,
            library: self.ort_library.clone(),
            provider: self.provider,
            device_id: self.device_id,
            threads: self.threads,
            optimization: 3,
            spin: false,
            cpu_fallback: self.cpu_fallback,
        }
    }

    /// Whether `other` loads a different model (path or session settings), as opposed to
    /// using the same one differently (hop, top-k, batching).
    pub fn loads_differently(&self, other: &ModelConfig) -> bool {
        let key = |m: &ModelConfig| ModelConfig { hop: 0, top_k: 0, batch: 0, batch_wait_ms: 0, ..m.clone() };
        key(self) != key(other)
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            path: None,
            backend: Default::default(),
            openvino_precision: Default::default(),
            openvino_library: None,
            provider: Provider::Cpu,
            device_id: 0,
            threads: 0,
            cpu_fallback: false,
            ort_library: None,
            hop: 1,
            top_k: 3,
            batch: 1,
            batch_wait_ms: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// `stdout`, a file path, `tcp://HOST:PORT` or `unix:///PATH` (servers).
    pub jsonl: String,
    /// The same lines to an MQTT broker.
    pub mqtt: Option<crate::sink::MqttConfig>,
    /// Recognitions as vision_msgs/Classification on the ROS 2 graph.
    pub ros2: Option<crate::sink::ros2::Ros2OutputConfig>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { jsonl: "stdout".into(), mqtt: None, ros2: None }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// systemd notifications (READY, WATCHDOG, STOPPING) when NOTIFY_SOCKET is set.
    pub notify: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { notify: true }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{path}: {err}")]
    Parse { path: String, err: toml::de::Error },
    #[error("{path}: {key}: {what}")]
    Invalid { path: String, key: String, what: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read { path: shown.clone(), err })?;
        Self::parse(&text, &shown)
    }

    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|err| ConfigError::Parse { path: name.to_string(), err })?;
        c.check(name)?;
        Ok(c)
    }

    /// Value checks serde cannot express.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        let bad =
            |key: &str, what: String| Err(ConfigError::Invalid { path: name.to_string(), key: key.to_string(), what });
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.streams().iter().enumerate() {
            let table = if i == 0 { "source".to_string() } else { format!("streams[{}]", i - 1) };
            if let Speed::Factor(f) = s.source.speed {
                if !s.source.speed.is_valid() {
                    return bad(&format!("{table}.speed"), format!("{f} is not a positive factor (or \"max\")"));
                }
            }
            if s.source.events.is_empty() {
                return bad(&format!("{table}.events"), "empty".into());
            }
            if let Some(Err(e)) = crate::events::udp::UdpEndpoint::parse(&s.source.events) {
                return bad(&format!("{table}.events"), e.to_string());
            }
            if let Some(path) = &s.source.camera_config {
                if let Err(what) = s.source.usb_options() {
                    return bad(&format!("{table}.camera_config"), format!("{}: {what}", path.display()));
                }
            }
            if let Some(topic) = s.source.events.strip_prefix(crate::ros2::events_in::PREFIX) {
                if let Err(e) = crate::ros2::topic_name(topic) {
                    return bad(&format!("{table}.events"), e);
                }
            }
            if s.source.rate_limit == Some(0) {
                return bad(&format!("{table}.rate_limit"), "0 events/s: leave it out to turn the limiter off".into());
            }
            if !names.insert(s.source.name.clone()) {
                return bad(&format!("{table}.name"), format!("{:?} names two streams", s.source.name));
            }
        }
        if self.source.reconnect_initial_ms == 0 || self.source.reconnect_max_ms < self.source.reconnect_initial_ms {
            return bad("source.reconnect_max_ms", "must be >= reconnect_initial_ms > 0".into());
        }
        if self.window_mode().is_none() {
            return bad("window.mode", format!("{:?}: expected interval, exposure, time or count", self.window.mode));
        }
        if self.window.time_us <= 0 || self.window.count == 0 || self.window.max_buffered_events == 0 {
            return bad("window", "time_us, count and max_buffered_events must be positive".into());
        }
        if self.queue.capacity == 0 {
            return bad("queue.capacity", "must be positive".into());
        }
        if self.model.hop == 0 || self.model.top_k == 0 {
            return bad("model.hop", "hop and top_k must be positive".into());
        }
        if self.model.batch == 0 || self.model.batch > 256 {
            return bad("model.batch", format!("{}: expected 1 to 256 pairs", self.model.batch));
        }
        if self.model.batch_wait_ms > 1000 {
            return bad("model.batch_wait_ms", format!("{} ms: at most 1000", self.model.batch_wait_ms));
        }
        if let Err((key, what)) = self.view.check() {
            return bad(&format!("view.{key}"), what);
        }
        if let Err((key, what)) = self.ros2.check() {
            return bad(&format!("ros2.{key}"), what);
        }
        if let Some(r) = &self.output.ros2 {
            let names: Vec<String> = self.streams().iter().map(|s| s.source.name.clone()).collect();
            if let Err((key, what)) = r.check(&names) {
                return bad(&format!("output.ros2.{key}"), what);
            }
        }
        if let Some(m) = &self.output.mqtt {
            if let Err((key, what)) = m.check() {
                return bad(&format!("output.mqtt.{key}"), what);
            }
        }
        if let Some(p) = &self.model.path {
            if !p.exists() {
                return bad("model.path", format!("{} does not exist", p.display()));
            }
        }
        Ok(())
    }

    /// Every stream: [source] with [rgb] first, then each [[streams]] entry, which takes
    /// [source]'s options for what it does not set (its RGB is its own: none unless given).
    pub fn streams(&self) -> Vec<StreamSettings> {
        let mut out = vec![StreamSettings { source: self.source.clone(), rgb: self.rgb.source.clone() }];
        for s in &self.streams {
            let mut source = self.source.clone();
            source.name = s.name.clone();
            source.events = s.events.clone();
            source.frames = s.frames.unwrap_or(source.frames);
            source.speed = s.speed.unwrap_or(source.speed);
            source.looping = s.looping.unwrap_or(source.looping);
            source.camera_config = s.camera_config.clone().or(source.camera_config);
            source.rate_limit = s.rate_limit.or(source.rate_limit);
            out.push(StreamSettings { source, rgb: s.rgb.clone() });
        }
        out
    }

    /// The window mode; event-only sources get fixed-time windows whatever the mode says.
    pub fn window_mode(&self) -> Option<WindowMode> {
        Some(match self.window.mode.as_str() {
            "interval" => WindowMode::FrameInterval,
            "exposure" => WindowMode::Exposure,
            "time" => WindowMode::Time { us: self.window.time_us },
            "count" => WindowMode::Count { events: self.window.count },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bad_keys_are_named() {
        let c = Config::parse("", "empty.toml").unwrap();
        assert_eq!(c.source.events, "bundled");
        let e = Config::parse("[source]\nevent = \"x\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("unknown field `event`"), "{e}");
        let e = Config::parse("[source]\nspeed = -2.0\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("source.speed"), "{e}");
        let e = Config::parse("[window]\nmode = \"frames\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("window.mode"), "{e}");
        let e = Config::parse("[queue]\noverflow = \"drop-all\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("drop-all"), "{e}");
        let c = Config::parse("[source]\nspeed = \"max\"\nloop = true\n", "t.toml").unwrap();
        assert_eq!((c.source.speed.factor(), c.source.looping), (None, true));
    }

    #[test]
    fn streams_take_source_defaults_and_need_unique_names() {
        let text = "[source]\nloop = true\nspeed = 2.0\n[[streams]]\nname = \"cam1\"\nevents = \"a.aedat4\"\nspeed = \"max\"\n";
        let c = Config::parse(text, "t.toml").unwrap();
        let s = c.streams();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].source.name.as_str(), s[1].source.name.as_str()), ("cam0", "cam1"));
        assert_eq!((s[1].source.looping, s[1].source.speed.factor(), s[1].rgb.as_str()), (true, None, ""));
        let e = Config::parse("[[streams]]\nname = \"cam0\"\nevents = \"x\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("streams[0].name") && e.contains("two streams"), "{e}");
        let e = Config::parse("[[streams]]\nname = \"b\"\nevents = \"x\"\nspeed = 0.0\n", "t.toml").unwrap_err();
        assert!(e.to_string().contains("streams[0].speed"), "{e}");
        let e = Config::parse("[[streams]]\nname = \"b\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("events"), "{e}");
        let e = Config::parse("[model]\nbatch = 0\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("model.batch"), "{e}");
    }
}
