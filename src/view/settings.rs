//! `[view]`: where the live view listens, who may look, how often it draws. Off unless
//! `listen` is set; beyond loopback it needs a token (or `allow_unauthenticated = true`, said
//! out loud), because it shows what the camera sees.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewConfig {
    /// HOST:PORT to serve the view on ("127.0.0.1:8090"); empty: off.
    pub listen: String,
    /// The bearer token: this environment variable's value, or the first line of this file.
    pub token_env: String,
    pub token_file: Option<PathBuf>,
    /// Images drawn per second per stream at most.
    pub fps: f64,
    /// Connections open at once at most (page, images, streams).
    pub max_clients: usize,
    /// Serve beyond loopback without a token.
    pub allow_unauthenticated: bool,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig {
            listen: String::new(),
            token_env: String::new(),
            token_file: None,
            fps: 10.0,
            max_clients: 32,
            allow_unauthenticated: false,
        }
    }
}

/// What the view server runs with, resolved from [`ViewConfig`].
#[derive(Debug, Clone)]
pub struct ViewSettings {
    pub listen: String,
    /// None: no token asked (loopback, or allowed).
    pub token: Option<String>,
    pub fps: f64,
    pub max_clients: usize,
}

impl ViewConfig {
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// Checks the values; `Err((key, what))` names the key at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled() {
            return Ok(());
        }
        if !(self.fps > 0.0 && self.fps <= 60.0) {
            return Err(("fps", format!("{}: expected more than 0 and at most 60", self.fps)));
        }
        if self.max_clients == 0 || self.max_clients > 1024 {
            return Err(("max_clients", format!("{}: expected 1 to 1024", self.max_clients)));
        }
        if !self.token_env.is_empty() && self.token_file.is_some() {
            return Err(("token_file", "token_env and token_file both set: keep one".into()));
        }
        Ok(())
    }

    /// The token read, and the loopback rule applied: an error says which key and why.
    pub fn resolve(&self) -> Result<ViewSettings, (&'static str, String)> {
        self.check()?;
        let token = if !self.token_env.is_empty() {
            let t = std::env::var(&self.token_env)
                .map_err(|_| ("token_env", format!("the environment variable {} is not set", self.token_env)))?;
            Some(t)
        } else if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| ("token_file", format!("{}: {e}", path.display())))?;
            Some(text.lines().next().unwrap_or_default().to_string())
        } else {
            None
        };
        if let Some(t) = &token {
            if t.trim().len() < 16 {
                return Err(("token_env", "the token is shorter than 16 characters".into()));
            }
        }
        if token.is_none() && !self.allow_unauthenticated && !is_loopback(&self.listen) {
            return Err((
                "listen",
                format!(
                    "{} is reachable beyond this machine and the view shows camera images: set token_env or \
                     token_file (or allow_unauthenticated = true, to serve them to anyone who can connect)",
                    self.listen
                ),
            ));
        }
        Ok(ViewSettings {
            listen: self.listen.clone(),
            token: token.map(|t| t.trim().to_string()),
            fps: self.fps,
            max_clients: self.max_clients,
        })
    }
}

/// Whether every address `listen` resolves to is a loopback one.
pub fn is_loopback(listen: &str) -> bool {
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_a_token_is_needed_unless_said_otherwise() {
        let c = |listen: &str| ViewConfig { listen: listen.into(), ..ViewConfig::default() };
        assert!(c("127.0.0.1:0").resolve().unwrap().token.is_none());
        assert!(c("localhost:0").resolve().is_ok());
        let (key, what) = c("0.0.0.0:8090").resolve().unwrap_err();
        assert_eq!(key, "listen");
        assert!(what.contains("token_env"), "{what}");
        let open = ViewConfig { allow_unauthenticated: true, ..c("0.0.0.0:8090") };
        assert!(open.resolve().unwrap().token.is_none());
        let bad = ViewConfig { fps: 0.0, ..c("127.0.0.1:0") };
        assert_eq!(bad.check().unwrap_err().0, "fps");
        assert!(ViewConfig::default().check().is_ok(), "off: nothing to check");
    }
}
