//! Recognitions to an MQTT broker (`[output.mqtt]`), through rumqttc: each JSON line published
//! on its stream's topic, a retained status (`online` once READY, `offline` on a clean stop and
//! as Last Will), and a periodic health message.
//!
//! The pipeline never waits for the broker: lines go into a bounded [`outbox`] (the oldest go
//! when it is full, counted), and two threads of this sink's own take them from there
//! ([`connection`]). A broker that cannot be reached at start is waited for in the background;
//! credentials or certificates it refuses are an error before READY.

mod connection;
mod outbox;
pub mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};

use connection::{FirstOutcome, Shared};
pub use outbox::Counts;
use outbox::{Kind, Message, Outbox};
pub use settings::MqttConfig;

use crate::sink::Metrics;

/// How long start-up waits for the first connection's outcome before going on without it.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("output.mqtt.{key}: {what}")]
    Config { key: String, what: String },
    #[error("output.mqtt: {0}")]
    Tls(String),
    /// Refused credentials, a certificate that does not verify: no retry mends it.
    #[error("output.mqtt: {0}")]
    Refused(String),
    #[error("output.mqtt: {0}")]
    Io(#[from] std::io::Error),
}

/// What the health message reports, read when it is sent.
pub type HealthSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub struct MqttSink {
    shared: Arc<Shared>,
    rebuild: Sender<()>,
    /// Topic per stream, `{stream}` filled in.
    topics: HashMap<String, String>,
    template: String,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MqttSink {
    /// Connects (waiting up to 3 s for the outcome): refused credentials or certificates are an
    /// error; a broker that is not there is logged and waited for in the background.
    pub fn start(config: &MqttConfig, metrics: Metrics, health: HealthSource) -> Result<Self, MqttError> {
        let built = config.build()?;
        let endpoint = built.endpoint.to_string();
        let template = built.topic.clone();
        let health_every = built.health_every;
        let shared = Arc::new(Shared {
            outbox: Outbox::new(built.queue),
            built: std::sync::Mutex::new(built),
            client: Default::default(),
            ready: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            metrics,
        });
        let (first_tx, first_rx) = bounded(1);
        let (rebuild, rebuild_rx) = bounded(4);
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("mqtt-conn".into())
                .spawn(move || connection::drive(s, Some(first_tx), rebuild_rx))?,
        );
        let s = shared.clone();
        threads.push(std::thread::Builder::new().name("mqtt-pub".into()).spawn(move || connection::publish(s))?);
        if let Some(every) = health_every {
            let s = shared.clone();
            threads.push(std::thread::Builder::new().name("mqtt-health".into()).spawn(move || beat(s, every, health))?);
        }
        let sink = MqttSink { shared, rebuild, topics: HashMap::new(), template, threads };
        match first_rx.recv_timeout(FIRST_CONNECT_WAIT) {
            Ok(FirstOutcome::Connected) => Ok(sink),
            Ok(FirstOutcome::Fatal(what)) => {
                sink.abandon();
                Err(MqttError::Refused(what))
            }
            Ok(FirstOutcome::Unreachable(what)) => {
                tracing::warn!("mqtt: {what}: starting without the broker; reconnecting in the background");
                Ok(sink)
            }
            Err(_) => {
                tracing::warn!(
                    "mqtt: {endpoint}: no answer within {FIRST_CONNECT_WAIT:?}; reconnecting in the background"
                );
                Ok(sink)
            }
        }
    }

    /// Tries `config` with a throw-away client (its own client id, no will): an error when the
    /// broker refuses it; Ok when it accepts or cannot be reached (a reload must not wait on a
    /// network).
    pub fn probe(config: &MqttConfig) -> Result<(), MqttError> {
        let built = config.build_probe()?;
        let (client, mut connection) = rumqttc::Client::new(built.options.clone(), 4);
        let endpoint = built.endpoint.to_string();
        let until = Instant::now() + FIRST_CONNECT_WAIT;
        let outcome = loop {
            match connection.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => break Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let (fatal, what) = connection::classify(&e, &endpoint);
                    break if fatal { Err(MqttError::Refused(what)) } else { Ok(()) };
                }
                Err(_) => break Ok(()),
            }
        };
        let _ = client.disconnect();
        let _ = connection.recv_timeout(Duration::from_millis(200));
        outcome
    }

    /// READY: the retained status says `online` (now, and after every reconnection).
    pub fn ready(&self) {
        self.shared.ready.store(true, Ordering::Relaxed);
        if self.shared.outbox.counts().connected {
            self.shared.outbox.push_front(self.shared.status("online"));
        }
    }

    /// Queues one JSON line (without its newline) on its stream's topic. Never waits.
    pub fn publish(&mut self, stream: &str, line: &[u8]) {
        let topic = match self.topics.get(stream) {
            Some(t) => t.clone(),
            None => {
                let t = self.template.replace("{stream}", &settings::topic_level(stream));
                self.topics.insert(stream.to_string(), t.clone());
                t
            }
        };
        self.shared.queue(Message { topic, payload: line.to_vec(), retain: false, kind: Kind::Recognition });
    }

    /// New settings (a reload): the connection is made again with them; what is queued stays
    /// queued and goes out on the new connection.
    pub fn reconfigure(&mut self, config: &MqttConfig) -> Result<(), MqttError> {
        let built = config.build()?;
        self.template = built.topic.clone();
        self.topics.clear();
        self.shared.outbox.set_capacity(built.queue);
        if let Ok(mut b) = self.shared.built.lock() {
            *b = built;
        }
        let _ = self.rebuild.try_send(());
        if let Ok(c) = self.shared.client.lock() {
            if let Some(c) = c.as_ref() {
                let _ = c.try_disconnect();
            }
        }
        Ok(())
    }

    pub fn counts(&self) -> Counts {
        self.shared.outbox.counts()
    }

    /// A clean stop: delivers what is queued until `deadline`, then publishes `offline`
    /// (retained) and disconnects. What could not be delivered is logged.
    pub fn finish(self, deadline: Instant) {
        let s = &self.shared;
        let status_at = deadline.checked_sub(Duration::from_millis(300)).unwrap_or(deadline);
        if !s.outbox.drained(status_at) {
            let c = s.outbox.counts();
            tracing::warn!("mqtt: {} messages not delivered at exit", c.queued + c.in_flight);
        }
        if s.outbox.counts().connected {
            s.outbox.push_front(s.status("offline"));
            s.outbox.drained(deadline);
        }
        self.abandon();
    }

    /// Stops the threads without waiting for the broker.
    fn abandon(self) {
        let s = &self.shared;
        s.stop.store(true, Ordering::Relaxed);
        s.outbox.close();
        if let Ok(c) = s.client.lock() {
            if let Some(c) = c.as_ref() {
                let _ = c.try_disconnect();
            }
        }
        let until = Instant::now() + Duration::from_millis(200);
        while !self.threads.iter().all(|t| t.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The health message every `every`: the source's numbers plus the MQTT queue's.
fn beat(shared: Arc<Shared>, every: Duration, health: HealthSource) {
    let mut next = Instant::now() + every;
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(20).min(every));
            continue;
        }
        next += every;
        let mut value = health();
        let c = shared.outbox.counts();
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "mqtt".into(),
                serde_json::json!({"queued": c.queued + c.in_flight, "dropped": c.dropped, "published": c.published}),
            );
        }
        let topic = shared.built.lock().map(|b| b.health_topic.clone()).unwrap_or_default();
        let payload = serde_json::to_vec(&value).unwrap_or_default();
        shared.queue(Message { topic, payload, retain: false, kind: Kind::Health });
    }
}
