//! `systemctl reload safed` (SIGHUP): the config is read again and what may change without a
//! restart is applied, the rest named in the log. The new model is loaded here, beside the
//! running one, and handed to the pipeline, which swaps it in between two batches
//! (`pipeline::swap`); new sinks are opened here and swapped in between two lines. A config or
//! model that fails is refused and logged, and what runs keeps running.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::infer::stream_cache::InputSpec;
use crate::pipeline::{load_model, split_parts, Batching, Reload};
use crate::sink::mqtt::HealthSource;
use crate::sink::{JsonlSink, Metrics, MqttChange, MqttSink, SinkChange};

pub struct Reloader {
    pub path: PathBuf,
    /// What runs now.
    pub running: Config,
    /// The running model files' newest modification time (a file replaced in place reloads).
    pub model_stamp: Option<SystemTime>,
    /// How the streams render and preprocess: a new model must take the same.
    pub input: InputSpec,
    pub metrics: Metrics,
    pub health: HealthSource,
    pub tx: Sender<Reload>,
}

/// The sections a running daemon cannot change, by name, where `new` changes them.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differs = |name, changed: bool| {
        if changed {
            out.push(name);
        }
    };
    differs("[source] and [[streams]]", old.streams != new.streams || old.source != new.source);
    differs("[rgb]", old.rgb != new.rgb);
    differs("[window]", old.window != new.window);
    differs("[queue]", old.queue != new.queue);
    differs("[metrics]", old.metrics != new.metrics);
    differs("[service]", old.service != new.service);
    differs("model.hop", old.model.hop != new.model.hop);
    out
}

/// The newest modification time of a model's files (the full graph and its split pair).
pub fn model_stamp(full: Option<&Path>) -> Option<SystemTime> {
    let full = full?;
    let [encoder, fusion] = split_parts(full);
    [full.to_path_buf(), encoder, fusion].iter().filter_map(|p| std::fs::metadata(p).ok()?.modified().ok()).max()
}

impl Reloader {
    /// Handles each SIGHUP that `hups` brings, until it closes.
    pub fn spawn(mut self, hups: Receiver<()>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("reload".into()).spawn(move || {
            for () in hups {
                tracing::info!("reload: reading {}", self.path.display());
                if let Err(why) = self.reload() {
                    tracing::error!("reload refused: {why}; what runs keeps running");
                    self.metrics.reloaded("refused");
                }
            }
        })
    }

    fn reload(&mut self) -> Result<(), String> {
        let new = Config::load(&self.path).map_err(|e| e.to_string())?;
        let mut applied = new.clone();
        let needs = restart_needed(&self.running, &new);
        if !needs.is_empty() {
            tracing::warn!("reload: {} changed; that needs a restart (systemctl restart safed)", needs.join(", "));
            // What needs a restart keeps its running value.
            let r = &self.running;
            (applied.source, applied.streams, applied.rgb) = (r.source.clone(), r.streams.clone(), r.rgb.clone());
            (applied.window, applied.queue) = (r.window.clone(), r.queue.clone());
            (applied.metrics, applied.service, applied.model.hop) = (r.metrics.clone(), r.service.clone(), r.model.hop);
        }
        let stamp = model_stamp(new.model.path.as_deref());
        let model = if self.running.model.loads_differently(&new.model) || stamp != self.model_stamp {
            let (model, name) =
                load_model(new.model.path.as_deref(), new.model.session()).map_err(|e| format!("{e:#}"))?;
            if model.input() != self.input {
                return Err(format!(
                    "{name} does not fit the streams: it takes {:?}, the streams make {:?} (a restart can change that)",
                    model.input(),
                    self.input
                ));
            }
            Some((model, name))
        } else {
            None
        };
        let sinks = self.sinks(&self.running.output, &new.output)?;
        let m = &new.model;
        let reload = Reload {
            model,
            top_k: m.top_k,
            batching: Batching { max_pairs: m.batch, wait: std::time::Duration::from_millis(m.batch_wait_ms) },
            sinks,
        };
        let what = match (&reload.model, &reload.sinks) {
            (Some((_, name)), _) => format!("model {name}"),
            (None, Some(_)) => "sinks".to_string(),
            (None, None) => "settings".to_string(),
        };
        self.tx.send(reload).map_err(|_| "the pipeline has stopped".to_string())?;
        tracing::info!("reload: {what} handed to the pipeline");
        self.running = applied;
        self.model_stamp = stamp;
        Ok(())
    }

    /// The sinks that change: opened (JSON lines) or tried (the broker) now, so that a bad one
    /// refuses the reload.
    fn sinks(
        &self,
        old: &crate::config::OutputConfig,
        new: &crate::config::OutputConfig,
    ) -> Result<Option<SinkChange>, String> {
        if old == new {
            return Ok(None);
        }
        let jsonl = if old.jsonl != new.jsonl {
            Some(JsonlSink::open(&new.jsonl).map_err(|e| format!("output.jsonl: {}: {e}", new.jsonl))?)
        } else {
            None
        };
        let mqtt = match (&old.mqtt, &new.mqtt) {
            (a, b) if a == b => MqttChange::Keep,
            (_, None) => MqttChange::Stop,
            (None, Some(c)) => MqttChange::Start(Box::new(
                MqttSink::start(c, self.metrics.clone(), self.health.clone()).map_err(|e| e.to_string())?,
            )),
            (Some(_), Some(c)) => {
                MqttSink::probe(c).map_err(|e| e.to_string())?;
                MqttChange::Reconfigure(Box::new(c.clone()))
            }
        };
        Ok(Some(SinkChange { jsonl, mqtt }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_need_a_restart_and_models_and_sinks_do_not() {
        let old = Config::parse("", "a.toml").unwrap();
        let new = Config::parse(
            "[source]\nspeed = 2.0\n[model]\ntop_k = 5\nbatch = 4\n[output]\njsonl = \"out.jsonl\"\n[metrics]\nlisten = \"127.0.0.1:9\"\n",
            "b.toml",
        )
        .unwrap();
        assert_eq!(restart_needed(&old, &new), vec!["[source] and [[streams]]", "[metrics]"]);
        assert!(!old.model.loads_differently(&new.model), "top-k and batching use the same model");
        let threads = Config::parse("[model]\nthreads = 1\n", "c.toml").unwrap();
        assert!(old.model.loads_differently(&threads.model));
    }
}
