//! Where recognitions go.

pub mod jsonl;
pub mod metrics;
pub mod metrics_server;
pub mod mqtt;
pub mod ros2;

pub use jsonl::{JsonlSink, Latency, Recognition, Scored};
pub use metrics::{Metrics, StreamCounters};
pub use mqtt::{MqttConfig, MqttSink};

/// Every sink a recognition goes to: JSON lines, and the broker when configured. The line is
/// serialised once; the broker gets the same bytes, without the newline.
pub struct Sinks {
    pub jsonl: JsonlSink,
    pub mqtt: Option<MqttSink>,
    /// The live view's event streams (and the last recognition it draws).
    pub view: Option<crate::view::ViewHub>,
    /// vision_msgs/Classification on the ROS 2 graph.
    pub ros2: Option<ros2::Ros2Sink>,
}

impl From<JsonlSink> for Sinks {
    fn from(jsonl: JsonlSink) -> Self {
        Sinks { jsonl, mqtt: None, view: None, ros2: None }
    }
}

/// New sinks from a reload, applied between two lines.
pub struct SinkChange {
    /// A new JSON lines target (None: keep the one open).
    pub jsonl: Option<JsonlSink>,
    pub mqtt: MqttChange,
}

pub enum MqttChange {
    Keep,
    /// The same broker client, connected again with these settings (its queue kept).
    Reconfigure(Box<MqttConfig>),
    /// A broker where there was none.
    Start(Box<MqttSink>),
    Stop,
}

impl Sinks {
    pub fn write(&mut self, rec: &Recognition) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        if let Some(m) = &mut self.mqtt {
            m.publish(&rec.stream, &line);
        }
        if let Some(r) = &self.ros2 {
            r.publish(rec);
        }
        if let Some(v) = &self.view {
            // serde_json writes UTF-8.
            v.publish(rec, std::str::from_utf8(&line).unwrap_or_default());
        }
        line.push(b'\n');
        self.jsonl.write_line(&line)
    }

    pub fn apply(&mut self, change: SinkChange) {
        if let Some(j) = change.jsonl {
            self.jsonl = j;
        }
        match change.mqtt {
            MqttChange::Keep => {}
            MqttChange::Reconfigure(c) => match &mut self.mqtt {
                Some(m) => {
                    if let Err(e) = m.reconfigure(&c) {
                        tracing::error!("reload: {e}; the broker connection keeps its old settings");
                    }
                }
                None => tracing::error!("reload: no broker client to reconfigure"),
            },
            MqttChange::Start(m) => {
                m.ready();
                retire(self.mqtt.replace(*m));
            }
            MqttChange::Stop => retire(self.mqtt.take()),
        }
    }
}

/// A broker client a reload replaced: it delivers its queue (2 s at most) off the output thread.
fn retire(old: Option<MqttSink>) {
    if let Some(old) = old {
        std::thread::spawn(move || old.finish(std::time::Instant::now() + std::time::Duration::from_secs(2)));
    }
}
