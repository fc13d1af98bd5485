//! The client's two threads: one drives rumqttc's connection (connect, reconnect with backoff,
//! packet ids and acknowledgements into the outbox), one takes messages from the outbox and
//! hands them to the client while connected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, NetworkOptions, Outgoing, Packet, QoS};

use super::outbox::{Kind, Message, Outbox, Take, WINDOW};
use super::settings::Built;
use crate::sink::Metrics;

/// The first reconnect delay (doubling up to the configured cap).
const BACKOFF_START: Duration = Duration::from_millis(50);
/// A TCP connect and MQTT handshake must finish this soon, s.
const CONNECT_TIMEOUT_S: u64 = 2;

/// How the first connection attempt went.
#[derive(Debug)]
pub enum FirstOutcome {
    Connected,
    /// No retry mends it (credentials, certificates).
    Fatal(String),
    /// The broker may come (refused, unreachable, timed out).
    Unreachable(String),
}

/// Shared by the sink and its threads.
pub struct Shared {
    pub outbox: Outbox,
    pub built: Mutex<Built>,
    /// The client of the current connection (the publisher sends through it).
    pub client: Mutex<Option<Client>>,
    /// Once READY: `online` goes out after every connection.
    pub ready: AtomicBool,
    /// Stop reconnecting: the sink is finishing.
    pub stop: AtomicBool,
    pub metrics: Metrics,
}

impl Shared {
    pub fn status(&self, text: &str) -> Message {
        let topic = self.built.lock().map(|b| b.status_topic.clone()).unwrap_or_default();
        Message { topic, payload: text.as_bytes().to_vec(), retain: true, kind: Kind::Status }
    }

    /// Queues a message, counting what the full queue pushes out.
    pub fn queue(&self, message: Message) {
        let dropped = self.outbox.push(message);
        if dropped > 0 {
            self.metrics.mqtt_dropped.inc_by(dropped);
        }
    }

    fn client(&self) -> Option<Client> {
        self.client.lock().ok()?.clone()
    }

    fn export(&self) {
        let c = self.outbox.counts();
        self.metrics.mqtt_queued.set((c.queued + c.in_flight) as i64);
    }
}

/// Whether a connection error is one no retry mends, and what to tell the user.
pub fn classify(e: &ConnectionError, endpoint: &str) -> (bool, String) {
    match e {
        ConnectionError::ConnectionRefused(code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized)) => (
            true,
            format!("{endpoint}: the broker refused the credentials ({code:?}): check output.mqtt.username and the password"),
        ),
        ConnectionError::ConnectionRefused(code @ ConnectReturnCode::BadClientId) => {
            (true, format!("{endpoint}: the broker refused the client id ({code:?}): check output.mqtt.client_id"))
        }
        ConnectionError::Tls(e) => (
            true,
            format!("{endpoint}: TLS handshake failed: {e} (check output.mqtt.ca_file, cert_file, key_file and the URL's host name)"),
        ),
        e => (false, format!("{endpoint}: {e}")),
    }
}

/// Drives connections until the sink stops: reconnects with backoff, and rebuilds the client
/// when the settings change (a reload).
pub fn drive(shared: Arc<Shared>, mut first: Option<Sender<FirstOutcome>>, rebuild: crossbeam_channel::Receiver<()>) {
    'configs: loop {
        let Ok(built) = shared.built.lock().map(|b| b.clone()) else { return };
        let endpoint = built.endpoint.to_string();
        let (client, mut connection) = Client::new(built.options.clone(), WINDOW + 16);
        let mut net = NetworkOptions::new();
        net.set_connection_timeout(CONNECT_TIMEOUT_S);
        connection.eventloop.set_network_options(net);
        if let Ok(mut c) = shared.client.lock() {
            *c = Some(client.clone());
        }
        let mut backoff = BACKOFF_START;
        let mut outage_logged = false;
        for event in connection.iter() {
            if rebuild.try_recv().is_ok() {
                shared.outbox.disconnected();
                let _ = client.disconnect();
                continue 'configs;
            }
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    shared.metrics.mqtt_connects.inc();
                    backoff = BACKOFF_START;
                    if outage_logged {
                        tracing::info!("mqtt: connected to {endpoint} again");
                    } else {
                        tracing::info!("mqtt: connected to {endpoint}");
                    }
                    outage_logged = false;
                    if shared.ready.load(Ordering::Relaxed) {
                        shared.outbox.push_front(shared.status("online"));
                    }
                    shared.outbox.connected();
                    if let Some(tx) = first.take() {
                        let _ = tx.send(FirstOutcome::Connected);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    shared.outbox.sent(pkid);
                    if pkid == 0 {
                        shared.metrics.mqtt_published.inc();
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    shared.outbox.acked(ack.pkid);
                    shared.metrics.mqtt_published.inc();
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) if shared.stop.load(Ordering::Relaxed) => break 'configs,
                Ok(_) => {}
                Err(e) => {
                    shared.outbox.disconnected();
                    if shared.stop.load(Ordering::Relaxed) {
                        break 'configs;
                    }
                    let (fatal, what) = classify(&e, &endpoint);
                    if let Some(tx) = first.take() {
                        let _ =
                            tx.send(if fatal { FirstOutcome::Fatal(what) } else { FirstOutcome::Unreachable(what) });
                    } else if !outage_logged {
                        if fatal {
                            tracing::error!("mqtt: {what}; retrying");
                        } else {
                            tracing::warn!(
                                "mqtt: {what}; reconnecting (queued messages wait, the oldest go when full)"
                            );
                        }
                    }
                    outage_logged = true;
                    if pause(&shared, backoff) {
                        break 'configs;
                    }
                    backoff = (backoff * 2).min(built.reconnect_max.max(BACKOFF_START));
                }
            }
            shared.export();
        }
        // The client's requests ended (every Client dropped): the sink is gone.
        break;
    }
    shared.outbox.disconnected();
    if let Ok(mut c) = shared.client.lock() {
        *c = None;
    }
}

/// Sleeps `d` unless the sink stops first (true then).
fn pause(shared: &Shared, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if shared.stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    shared.stop.load(Ordering::Relaxed)
}

/// Hands queued messages to the client while connected, until the outbox is closed and empty.
pub fn publish(shared: Arc<Shared>) {
    loop {
        match shared.outbox.take(Duration::from_millis(100)) {
            None => {}
            Some(Take::Done) => return,
            Some(Take::Send(m)) => {
                let qos = match m.kind {
                    Kind::Status => QoS::AtLeastOnce,
                    _ => shared.built.lock().map_or(QoS::AtLeastOnce, |b| b.qos),
                };
                let sent = shared.client().is_some_and(|c| c.try_publish(m.topic, qos, m.retain, m.payload).is_ok());
                if !sent {
                    shared.outbox.untake();
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        if shared.stop.load(Ordering::Relaxed) && shared.client().is_none() {
            return;
        }
    }
}
