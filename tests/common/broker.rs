//! A real mosquitto broker on a free loopback port, with its own config and directory, stopped
//! on drop; and a subscriber (rumqttc) that collects what arrives.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// mosquitto is required under CI; elsewhere a test without it says SKIPPED.
pub fn have_mosquitto() -> bool {
    let found = Command::new("mosquitto").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "mosquitto is missing under CI (tools/setup.sh installs it)");
        eprintln!("SKIPPED: mosquitto not installed (tools/setup.sh installs it)");
    }
    found
}

pub struct Broker {
    pub port: u16,
    pub dir: PathBuf,
    extra: String,
    child: Option<Child>,
}

impl Broker {
    /// A broker whose listener takes `extra` config lines (TLS, passwords); it keeps sessions
    /// on disk (saved when it stops on SIGTERM), so a subscriber's session survives a restart.
    /// It runs as the user running the test (`user root` keeps root's files readable).
    pub fn start(dir: &Path, extra: &str) -> Broker {
        Self::start_on(dir, free_port(), extra)
    }

    pub fn start_on(dir: &Path, port: u16, extra: &str) -> Broker {
        let mut b = Broker { port, dir: dir.to_path_buf(), extra: extra.to_string(), child: None };
        b.restart();
        b
    }

    pub fn restart(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        let body = format!(
            "listener {} 127.0.0.1\n{}\npersistence true\npersistence_location {}/\nuser root\n",
            self.port,
            if self.extra.is_empty() { "allow_anonymous true" } else { &self.extra },
            self.dir.display()
        );
        std::fs::write(&conf, body).unwrap();
        let log = std::fs::File::create(self.dir.join("mosquitto.log")).unwrap();
        self.child =
            Some(Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(log).spawn().unwrap());
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "mosquitto did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM: the broker saves its sessions and closes every connection.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// SIGKILL: the broker dies without a word to its clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message as a subscriber got it.
#[derive(Debug, Clone)]
pub struct Got {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

/// Subscribes to `filter` (QoS 1, a persistent session under `id`) and collects what arrives,
/// reconnecting when the broker goes; returns once subscribed.
pub fn subscribe(port: u16, id: &str, filter: &str) -> Arc<Mutex<Vec<Got>>> {
    let got: Arc<Mutex<Vec<Got>>> = Default::default();
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 16);
    client.subscribe(filter, QoS::AtLeastOnce).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = got.clone();
    std::thread::spawn(move || {
        let _client = client;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().unwrap().push(Got {
                    topic: p.topic.clone(),
                    payload: String::from_utf8_lossy(&p.payload).into_owned(),
                    retain: p.retain,
                }),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("subscribed");
    got
}

/// The retained message on `topic` once it is `want`, or what it still is after `within`: a
/// status is published asynchronously (READY queues `online`), so it may land a moment later.
pub fn retained_becomes(port: u16, topic: &str, want: &str, within: Duration) -> Option<String> {
    let until = Instant::now() + within;
    loop {
        let got = retained(port, topic);
        if got.as_deref() == Some(want) || Instant::now() >= until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The retained message on `topic` now (a fresh subscriber gets it at once), if any.
pub fn retained(port: u16, topic: &str) -> Option<String> {
    let mut o = MqttOptions::new(format!("retained-{}", free_port()), "127.0.0.1", port);
    o.set_clean_session(true);
    let (client, mut conn) = Client::new(o, 16);
    client.subscribe(topic, QoS::AtLeastOnce).unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    let mut subscribed_at = None;
    while Instant::now() < until {
        match conn.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => subscribed_at = Some(Instant::now()),
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.retain => {
                return Some(String::from_utf8_lossy(&p.payload).into_owned())
            }
            _ => {}
        }
        // Retained messages come right after the SUBACK.
        if subscribed_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
            return None;
        }
    }
    None
}
