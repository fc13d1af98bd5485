//! What the Prometheus endpoint exports: events and frames in, drops, stage latency
//! histograms, inference time, reconnects, the model running and its reloads, the MQTT queue.
//! Served by [`super::metrics_server`] on the configured address (127.0.0.1 by default: metrics
//! are not for the whole network unless configured).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(1e-4, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    // 1, 2, 4 .. 256 pairs.
    Histogram::new(exponential_buckets(1.0, 2.0, 9))
}

/// Counters per stream (label `stream`).
#[derive(Clone)]
pub struct Metrics {
    pub events: Family<Labels, Counter>,
    pub frames: Family<Labels, Counter>,
    pub recognitions: Family<Labels, Counter>,
    pub ring_dropped: Family<Labels, Counter>,
    pub window_dropped: Family<Labels, Counter>,
    pub reconnects: Family<Labels, Counter>,
    /// Live sources: lost before safed read them (UDP datagrams, USB buffers).
    pub source_dropped: Family<Labels, Counter>,
    /// Per stage: queue, preprocess, encode, fuse, end_to_end.
    pub stage_seconds: HistogramFamily,
    /// Encoder + fusion time per recognition.
    pub inference_seconds: Histogram,
    /// The live view: drawing and JPEG-encoding one stream's image.
    pub view_encode: Histogram,
    /// Pairs per encoder call (streams batched together).
    pub batch_pairs: Histogram,
    /// 1 for the model running (label `model`); the one it replaced is removed.
    pub model_info: Family<Labels, Gauge>,
    /// Config reloads (SIGHUP), by `result`: applied or refused.
    pub reloads: Family<Labels, Counter>,
    /// MQTT: messages published (acknowledged at QoS 1), and dropped by the full queue.
    pub mqtt_published: Counter,
    pub mqtt_dropped: Counter,
    /// ROS 2: classifications dropped by the full outgoing queue.
    pub ros2_dropped: Counter,
    /// MQTT: messages waiting for the broker.
    pub mqtt_queued: Gauge,
    /// MQTT: connections made (the first and every reconnection).
    pub mqtt_connects: Counter,
    /// The running model's name (for the health message).
    model_name: Arc<Mutex<String>>,
    registry: Arc<Mutex<Registry>>,
}

/// One stream's counters, resolved once (each is a shared atomic).
#[derive(Clone)]
pub struct StreamCounters {
    pub events: Counter,
    pub frames: Counter,
    pub recognitions: Counter,
    pub ring_dropped: Counter,
    pub window_dropped: Counter,
    pub reconnects: Counter,
    pub source_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("safed");
        let m = Metrics {
            events: Family::default(),
            frames: Family::default(),
            recognitions: Family::default(),
            ring_dropped: Family::default(),
            window_dropped: Family::default(),
            reconnects: Family::default(),
            source_dropped: Family::default(),
            stage_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            inference_seconds: latency_histogram(),
            view_encode: latency_histogram(),
            batch_pairs: batch_histogram(),
            model_info: Family::default(),
            reloads: Family::default(),
            mqtt_published: Counter::default(),
            mqtt_dropped: Counter::default(),
            ros2_dropped: Counter::default(),
            mqtt_queued: Gauge::default(),
            mqtt_connects: Counter::default(),
            model_name: Default::default(),
            registry: Arc::new(Mutex::new(Registry::default())),
        };
        r.register("events", "Events taken off the capture queue", m.events.clone());
        r.register("frames", "RGB frames taken off the capture queue", m.frames.clone());
        r.register("recognitions", "Recognitions written", m.recognitions.clone());
        r.register("ring_dropped", "Items dropped by the full capture queue", m.ring_dropped.clone());
        r.register("window_dropped", "Events dropped while frames waited for their windows", m.window_dropped.clone());
        r.register(
            "reconnects",
            "Live source reconnections (a server back, a camera plugged in again)",
            m.reconnects.clone(),
        );
        r.register(
            "source_dropped",
            "Live sources: lost before safed read them (UDP datagrams the kernel dropped or that came out of order, USB buffers the driver dropped)",
            m.source_dropped.clone(),
        );
        r.register_with_unit("stage", "Latency per pipeline stage", Unit::Seconds, m.stage_seconds.clone());
        r.register_with_unit(
            "inference",
            "Encoder + fusion time per recognition",
            Unit::Seconds,
            m.inference_seconds.clone(),
        );
        r.register_with_unit(
            "view_encode",
            "The live view: drawing and JPEG-encoding one image (only while somebody watches)",
            Unit::Seconds,
            m.view_encode.clone(),
        );
        r.register(
            "batch_pairs",
            "Frame/window pairs per encoder call (streams batched together)",
            m.batch_pairs.clone(),
        );
        r.register("model_info", "The model running (1), by its name", m.model_info.clone());
        r.register("reloads", "Configuration reloads (SIGHUP), applied or refused", m.reloads.clone());
        r.register("mqtt_published", "MQTT messages published (acknowledged at QoS 1)", m.mqtt_published.clone());
        r.register("mqtt_dropped", "MQTT messages dropped by the full outgoing queue", m.mqtt_dropped.clone());
        r.register("ros2_dropped", "ROS 2 classifications dropped by the full outgoing queue", m.ros2_dropped.clone());
        r.register("mqtt_queued", "MQTT messages waiting for the broker", m.mqtt_queued.clone());
        r.register("mqtt_connects", "MQTT connections made (the first and reconnections)", m.mqtt_connects.clone());
        for result in ["applied", "refused"] {
            let _ = m.reloads.get_or_create(&vec![("result".to_string(), result.to_string())]);
        }
        Metrics { registry: Arc::new(Mutex::new(r)), ..m }
    }

    pub fn stage(&self, stage: &str) -> Histogram {
        self.stage_seconds.get_or_create(&vec![("stage".to_string(), stage.to_string())]).clone()
    }

    /// The counters of stream `name` (they appear in the output from now on, at 0).
    pub fn stream(&self, name: &str) -> StreamCounters {
        let labels = vec![("stream".to_string(), name.to_string())];
        let get = |f: &Family<Labels, Counter>| f.get_or_create(&labels).clone();
        StreamCounters {
            events: get(&self.events),
            frames: get(&self.frames),
            recognitions: get(&self.recognitions),
            ring_dropped: get(&self.ring_dropped),
            window_dropped: get(&self.window_dropped),
            reconnects: get(&self.reconnects),
            source_dropped: get(&self.source_dropped),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &r);
        }
        out
    }

    /// The model running (reloads change it).
    pub fn model(&self) -> String {
        self.model_name.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// The model running is now `name`.
    pub fn set_model(&self, name: &str) {
        if let Ok(mut n) = self.model_name.lock() {
            *n = name.to_string();
        }
        self.model_info.clear();
        self.model_info.get_or_create(&vec![("model".to_string(), name.to_string())]).set(1);
    }

    /// A reload was `result` ("applied" or "refused").
    pub fn reloaded(&self, result: &str) {
        self.reloads.get_or_create(&vec![("result".to_string(), result.to_string())]).inc();
    }

    /// The health message's numbers for `streams`, rates over the time since the last call.
    pub fn health_source(&self, streams: Vec<String>) -> crate::sink::mqtt::HealthSource {
        let me = self.clone();
        let started = std::time::Instant::now();
        let last = Mutex::new((started, 0u64, 0u64));
        let host = crate::sink::mqtt::settings::host_name();
        Arc::new(move || {
            let (mut events, mut recognitions, mut queue, mut window, mut source) = (0, 0, 0, 0, 0);
            for s in &streams {
                let c = me.stream(s);
                (events, recognitions) = (events + c.events.get(), recognitions + c.recognitions.get());
                (queue, window) = (queue + c.ring_dropped.get(), window + c.window_dropped.get());
                source += c.source_dropped.get();
            }
            let now = std::time::Instant::now();
            let (ev_rate, rec_rate) = match last.lock() {
                Ok(mut l) => {
                    let dt = now.duration_since(l.0).as_secs_f64().max(1e-3);
                    let rates =
                        ((events - l.1.min(events)) as f64 / dt, (recognitions - l.2.min(recognitions)) as f64 / dt);
                    *l = (now, events, recognitions);
                    rates
                }
                Err(_) => (0.0, 0.0),
            };
            let model = me.model_name.lock().map(|n| n.clone()).unwrap_or_default();
            serde_json::json!({
                "host": host,
                "uptime_s": (now.duration_since(started).as_secs_f64() * 10.0).round() / 10.0,
                "model": model,
                "streams": streams,
                "events": events,
                "recognitions": recognitions,
                "events_per_s": ev_rate.round(),
                "recognitions_per_s": (rec_rate * 100.0).round() / 100.0,
                "dropped": {"queue": queue, "window": window, "source": source},
            })
        })
    }

    /// Serves `GET /metrics` on `addr` (see [`super::metrics_server`]).
    pub fn serve(&self, addr: &str) -> std::io::Result<std::net::SocketAddr> {
        super::metrics_server::serve(self.clone(), addr)
    }
}
