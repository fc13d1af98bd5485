//! `[output.mqtt]`: what the config says, its checks, and the client options it builds (the
//! password read from its file or variable, the TLS files read and parsed). Errors name the key
//! and the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use serde::Deserialize;

use super::MqttError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883, TLS).
    pub url: String,
    /// Where recognitions go; `{host}` and `{stream}` are filled in.
    pub topic: String,
    /// Retained `online` / `offline` (the latter also as Last Will).
    pub status_topic: String,
    /// The periodic health message.
    pub health_topic: String,
    /// Seconds between health messages; 0: none.
    pub health_interval_s: u64,
    /// 0 (at most once) or 1 (at least once).
    pub qos: u8,
    /// Default `safed-{host}`.
    pub client_id: String,
    pub keep_alive_s: u64,
    pub username: String,
    /// The password: the first line of this file, or this environment variable's value.
    pub password_file: Option<PathBuf>,
    pub password_env: String,
    /// TLS: the CA that signed the broker's certificate (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// TLS client certificate and its key (PEM), both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Messages waiting for the broker at most; past it the oldest are dropped (and counted).
    pub queue: usize,
    /// Reconnect delay cap, ms (the delay starts at 50 ms and doubles).
    pub reconnect_max_ms: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: String::new(),
            topic: "safed/{host}/{stream}/recognitions".into(),
            status_topic: "safed/{host}/status".into(),
            health_topic: "safed/{host}/health".into(),
            health_interval_s: 10,
            qos: 1,
            client_id: String::new(),
            keep_alive_s: 30,
            username: String::new(),
            password_file: None,
            password_env: String::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            queue: 10_000,
            reconnect_max_ms: 500,
        }
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Option<Endpoint> {
        let (tls, rest) = match url.split_once("://")? {
            ("mqtt", rest) => (false, rest),
            ("mqtts", rest) => (true, rest),
            _ => return None,
        };
        let rest = rest.trim_end_matches('/');
        let default = if tls { 8883 } else { 1883 };
        // "[v6]:port", "[v6]", "host:port", "host".
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                match after.strip_prefix(':') {
                    Some(p) => (host, p.parse().ok()?),
                    None if after.is_empty() => (host, default),
                    None => return None,
                }
            }
            None => match rest.split_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (rest, default),
            },
        };
        (!host.is_empty() && !host.contains('/')).then(|| Endpoint { tls, host: host.to_string(), port })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", if self.tls { "mqtts" } else { "mqtt" }, self.host, self.port)
    }
}

/// The options a connection is made with, and the topics.
#[derive(Clone)]
pub struct Built {
    pub endpoint: Endpoint,
    pub options: MqttOptions,
    pub client_id: String,
    /// With `{stream}` still to fill.
    pub topic: String,
    pub status_topic: String,
    pub health_topic: String,
    pub health_every: Option<Duration>,
    pub qos: QoS,
    pub queue: usize,
    pub reconnect_max: Duration,
}

/// This machine's host name ("localhost" if it has none).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if ok && !name.is_empty() {
        name
    } else {
        "localhost".into()
    }
}

/// A name as one topic level: no MQTT wildcards, and no `/` to add levels.
pub fn topic_level(name: &str) -> String {
    name.replace(['/', '+', '#'], "_")
}

fn fill_host(template: &str, host: &str) -> String {
    template.replace("{host}", &topic_level(host))
}

impl MqttConfig {
    /// Value checks: (key under output.mqtt, what is wrong).
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, what: String| Err((key.to_string(), what));
        let Some(endpoint) = Endpoint::parse(&self.url) else {
            return bad("url", format!("{:?}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", self.url));
        };
        for (key, t) in
            [("topic", &self.topic), ("status_topic", &self.status_topic), ("health_topic", &self.health_topic)]
        {
            if t.is_empty() || t.contains(['+', '#']) {
                return bad(key, format!("{t:?}: a topic to publish to must be non-empty, without + or #"));
            }
        }
        if self.qos > 1 {
            return bad("qos", format!("{}: expected 0 or 1", self.qos));
        }
        if self.queue == 0 {
            return bad("queue", "must be positive".into());
        }
        if self.reconnect_max_ms == 0 || self.reconnect_max_ms > 60_000 {
            return bad("reconnect_max_ms", format!("{}: expected 1 to 60000", self.reconnect_max_ms));
        }
        if self.keep_alive_s > 65_535 {
            return bad("keep_alive_s", format!("{}: at most 65535", self.keep_alive_s));
        }
        if self.password_file.is_some() && !self.password_env.is_empty() {
            return bad("password_file", "give password_file or password_env, not both".into());
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return bad("cert_file", "cert_file and key_file go together".into());
        }
        let tls_files = self.ca_file.is_some() || self.cert_file.is_some();
        if tls_files && !endpoint.tls {
            return bad("url", format!("{}: TLS files are set, but the URL is not mqtts://", self.url));
        }
        Ok(())
    }

    /// The client options: reads the password and the TLS files now.
    pub fn build(&self) -> Result<Built, MqttError> {
        self.build_as(false)
    }

    /// Options for a trial connection: its own client id (the running one stays connected)
    /// and no Last Will (its end says nothing about safed).
    pub fn build_probe(&self) -> Result<Built, MqttError> {
        self.build_as(true)
    }

    fn build_as(&self, probe: bool) -> Result<Built, MqttError> {
        self.check().map_err(|(key, what)| MqttError::Config { key, what })?;
        let endpoint = Endpoint::parse(&self.url)
            .ok_or_else(|| MqttError::Config { key: "url".into(), what: format!("{:?}", self.url) })?;
        let host = host_name();
        let client_id = if self.client_id.is_empty() { format!("safed-{host}") } else { self.client_id.clone() };
        let qos = if self.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        let status_topic = fill_host(&self.status_topic, &host);
        let id = if probe { format!("{client_id}-check") } else { client_id.clone() };
        let mut o = MqttOptions::new(id, endpoint.host.clone(), endpoint.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_s.max(1)));
        // A clean session: what the broker has not acknowledged is safed's to send again (its
        // own queue), not a session's to resume.
        o.set_clean_session(true);
        if !probe {
            o.set_last_will(LastWill::new(&status_topic, "offline", QoS::AtLeastOnce, true));
        }
        o.set_max_packet_size(1 << 20, 1 << 20);
        if let Some(password) = self.password()? {
            o.set_credentials(self.username.clone(), password);
        } else if !self.username.is_empty() {
            o.set_credentials(self.username.clone(), String::new());
        }
        if endpoint.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(self.tls()?))));
        }
        Ok(Built {
            endpoint,
            options: o,
            client_id,
            topic: fill_host(&self.topic, &host),
            status_topic,
            health_topic: fill_host(&self.health_topic, &host),
            health_every: (self.health_interval_s > 0).then(|| Duration::from_secs(self.health_interval_s)),
            qos,
            queue: self.queue,
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
        })
    }

    fn password(&self) -> Result<Option<String>, MqttError> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| file_error("password_file", path, e.to_string()))?;
            return Ok(Some(text.lines().next().unwrap_or("").to_string()));
        }
        if !self.password_env.is_empty() {
            return match std::env::var(&self.password_env) {
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(MqttError::Config {
                    key: "password_env".into(),
                    what: format!("the environment variable {} is not set", self.password_env),
                }),
            };
        }
        Ok(None)
    }

    fn tls(&self) -> Result<rustls::ClientConfig, MqttError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in pem_certs("ca_file", path)? {
                    roots.add(cert).map_err(|e| file_error("ca_file", path, e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(MqttError::Config {
                        key: "ca_file".into(),
                        what: "no CA given and no system certificates found".into(),
                    });
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MqttError::Tls(e.to_string()))?
            .with_root_certificates(roots);
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let chain = pem_certs("cert_file", cert)?;
                let mut reader = std::io::BufReader::new(
                    std::fs::File::open(key).map_err(|e| file_error("key_file", key, e.to_string()))?,
                );
                let key_der = rustls_pemfile::private_key(&mut reader)
                    .map_err(|e| file_error("key_file", key, e.to_string()))?
                    .ok_or_else(|| file_error("key_file", key, "no private key in it (PEM)".into()))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    let what = format!("{} with {}: {e}", cert.display(), key.display());
                    MqttError::Config { key: "cert_file".into(), what }
                })
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

fn file_error(key: &str, path: &Path, what: String) -> MqttError {
    MqttError::Config { key: key.into(), what: format!("{}: {what}", path.display()) }
}

fn pem_certs(key: &str, path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, MqttError> {
    let file = std::fs::File::open(path).map_err(|e| file_error(key, path, e.to_string()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(key, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no certificate in it (PEM)".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_topics_and_files_are_checked() {
        let e = |url: &str| Endpoint::parse(url);
        assert_eq!(e("mqtt://broker"), Some(Endpoint { tls: false, host: "broker".into(), port: 1883 }));
        assert_eq!(e("mqtts://10.0.0.2:9000"), Some(Endpoint { tls: true, host: "10.0.0.2".into(), port: 9000 }));
        assert_eq!(e("mqtts://[::1]"), Some(Endpoint { tls: true, host: "::1".into(), port: 8883 }));
        assert_eq!(e("mqtt://[::1]:1884").map(|e| e.port), Some(1884));
        for bad in ["broker:1883", "http://broker", "mqtt://", "mqtt://h:port"] {
            assert_eq!(e(bad), None, "{bad}");
        }
        let base = MqttConfig { url: "mqtt://127.0.0.1".into(), ..Default::default() };
        assert!(base.check().is_ok());
        let key = |c: MqttConfig| c.check().unwrap_err().0;
        assert_eq!(key(MqttConfig { topic: "a/#".into(), ..base.clone() }), "topic");
        assert_eq!(key(MqttConfig { qos: 2, ..base.clone() }), "qos");
        assert_eq!(key(MqttConfig { queue: 0, ..base.clone() }), "queue");
        assert_eq!(key(MqttConfig { cert_file: Some("c.pem".into()), ..base.clone() }), "cert_file");
        assert_eq!(key(MqttConfig { ca_file: Some("ca.pem".into()), ..base.clone() }), "url");
        let missing = MqttConfig { password_file: Some("/nonexistent/pw".into()), ..base.clone() };
        let err = missing.build().err().unwrap().to_string();
        assert!(err.contains("password_file") && err.contains("/nonexistent/pw"), "{err}");
        assert_eq!(fill_host("safed/{host}/{stream}", "a/b#"), "safed/a_b_/{stream}");
    }
}
