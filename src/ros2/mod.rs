//! safed as a ROS 2 node, with no ROS install: ros2-client over RustDDS (pure Rust DDS). One
//! node per process, made by the first source or sink that needs it, with `[ros2]`'s settings;
//! its discovery runs on a thread of its own (the spinner). Messages are in [`msgs`]; event
//! packets come in through [`events_in`], recognitions go out through `sink::ros2`.

pub mod events_in;
pub mod msgs;

use std::sync::{Arc, Mutex, OnceLock};

use ros2_client::{Context, MessageTypeName, Name, Node, NodeName, NodeOptions, QosProfile};
use serde::Deserialize;

/// `[ros2]`: the node safed is on the ROS 2 graph.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ros2Config {
    /// The DDS domain (ROS_DOMAIN_ID); unset: ROS_DOMAIN_ID from the environment, else 0.
    pub domain_id: Option<u16>,
    pub node: String,
    /// The node's namespace ("/" by default).
    pub namespace: String,
}

impl Default for Ros2Config {
    fn default() -> Self {
        Ros2Config { domain_id: None, node: "safed".into(), namespace: "/".into() }
    }
}

impl Ros2Config {
    /// The domain: the configured one, else ROS_DOMAIN_ID, else 0.
    pub fn domain(&self) -> Result<u16, String> {
        if let Some(d) = self.domain_id {
            return check_domain(d);
        }
        match std::env::var("ROS_DOMAIN_ID") {
            Ok(v) if !v.trim().is_empty() => {
                let d = v.trim().parse::<u16>().map_err(|_| format!("ROS_DOMAIN_ID={v:?} is not a number"))?;
                check_domain(d)
            }
            _ => Ok(0),
        }
    }

    /// Checks the values; `Err((key, what))` names the key at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        self.domain().map_err(|e| ("domain_id", e))?;
        NodeName::new(&self.namespace, &self.node).map_err(|e| ("node", format!("{:?}: {e:?}", self.node)))?;
        Ok(())
    }
}

fn check_domain(d: u16) -> Result<u16, String> {
    // DDS's port mapping leaves room for domains 0..=232.
    if d <= 232 {
        Ok(d)
    } else {
        Err(format!("domain {d}: expected 0 to 232"))
    }
}

/// A topic name as ROS 2 takes it (`/a/b`, `a/b`, `~/a`); the error says why not.
pub fn topic_name(topic: &str) -> Result<Name, String> {
    Name::parse(topic).map_err(|e| format!("{topic:?} is not a ROS 2 topic name ({e:?})"))
}

#[derive(Debug, thiserror::Error)]
pub enum Ros2Error {
    #[error("[ros2] {0}")]
    Config(String),
    #[error("ROS 2: {0}")]
    Dds(String),
    #[error("ROS 2: this process's node is already {have}; [ros2] asks for {want} (one node per process)")]
    OtherNode { have: String, want: String },
}

/// The process's node.
pub struct Ros2Node {
    node: Mutex<Node>,
    /// "namespace/name on domain D", for messages.
    pub describe: String,
}

static NODE: OnceLock<Arc<Ros2Node>> = OnceLock::new();
static MAKING: Mutex<()> = Mutex::new(());

/// The process's node, made now with `config` if there is none yet.
pub fn node(config: &Ros2Config) -> Result<Arc<Ros2Node>, Ros2Error> {
    let domain = config.domain().map_err(Ros2Error::Config)?;
    let describe = format!("{}{} on domain {domain}", ns_prefix(&config.namespace), config.node);
    let _making = MAKING.lock().map_err(|_| Ros2Error::Dds("node lock poisoned".into()))?;
    if let Some(n) = NODE.get() {
        return if n.describe == describe {
            Ok(n.clone())
        } else {
            Err(Ros2Error::OtherNode { have: n.describe.clone(), want: describe })
        };
    }
    let name = NodeName::new(&config.namespace, &config.node).map_err(|e| Ros2Error::Config(format!("node: {e:?}")))?;
    let context = Context::with_options(ros2_client::ContextOptions::new().domain_id(domain))
        .map_err(|e| Ros2Error::Dds(format!("starting DDS on domain {domain}: {e:?}")))?;
    let mut node = context
        .new_node(name, NodeOptions::new().enable_rosout(false))
        .map_err(|e| Ros2Error::Dds(format!("creating node {describe}: {e:?}")))?;
    let spinner = node.spinner().map_err(|e| Ros2Error::Dds(format!("{e:?}")))?;
    std::thread::Builder::new()
        .name("ros2-spin".into())
        .spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                if let Err(e) = rt.block_on(spinner.spin()) {
                    tracing::error!("ROS 2 discovery stopped: {e:?}");
                }
            }
            Err(e) => tracing::error!("ROS 2 discovery could not start: {e}"),
        })
        .map_err(|e| Ros2Error::Dds(e.to_string()))?;
    tracing::info!("ROS 2 node {describe}");
    let n = Arc::new(Ros2Node { node: Mutex::new(node), describe });
    let _ = NODE.set(n.clone());
    Ok(n)
}

fn ns_prefix(namespace: &str) -> String {
    let ns = namespace.trim_end_matches('/');
    format!("{ns}/")
}

/// A message type as ROS 2 names it: `package/msg/name`.
pub type MsgType = (&'static str, &'static str);

impl Ros2Node {
    /// The topic's name, checked, and the node, locked.
    fn lock(&self, topic: &str) -> Result<(Name, std::sync::MutexGuard<'_, Node>), Ros2Error> {
        let name = topic_name(topic).map_err(Ros2Error::Config)?;
        let node = self.node.lock().map_err(|_| Ros2Error::Dds("node lock poisoned".into()))?;
        Ok((name, node))
    }

    /// A subscription to `topic` of `kind`.
    pub fn subscribe<M: ros2_client::Message + 'static>(
        &self,
        topic: &str,
        kind: MsgType,
        qos: &QosProfile,
    ) -> Result<ros2_client::Subscription<M>, Ros2Error> {
        let (name, mut node) = self.lock(topic)?;
        let dds = |e| Ros2Error::Dds(format!("subscribing to {topic}: {e:?}"));
        let t = node.create_topic(&name, MessageTypeName::new(kind.0, kind.1), qos).map_err(dds)?;
        node.create_subscription::<M>(&t, Some(qos.clone())).map_err(dds)
    }

    /// A publisher on `topic` of `kind`.
    pub fn publisher<M: ros2_client::Message>(
        &self,
        topic: &str,
        kind: MsgType,
        qos: &QosProfile,
    ) -> Result<ros2_client::Publisher<M>, Ros2Error> {
        let (name, mut node) = self.lock(topic)?;
        let dds = |e| Ros2Error::Dds(format!("publishing on {topic}: {e:?}"));
        let t = node.create_topic(&name, MessageTypeName::new(kind.0, kind.1), qos).map_err(dds)?;
        node.create_publisher::<M>(&t, Some(qos.clone())).map_err(dds)
    }
}

/// The event subscription's QoS: best effort, volatile, the last 1000, what metavision_driver
/// publishes events with; a best-effort, volatile reader matches every writer (reliable or not,
/// volatile or transient-local), libcaer_driver's included.
pub fn sensor_qos() -> QosProfile {
    use ros2_client::qos::{Durability, History};
    QosProfile::subscription_default()
        .reliability_best_effort()
        .durability(Durability::Volatile)
        .history(History::KeepLast { depth: 1000 })
}

/// What recognitions are published with: reliable (a consumer gets every one), volatile, the
/// last 100. A full send window makes the publishing thread wait up to a second (it is off the
/// recognition path, behind its own bounded queue) before the message counts as dropped.
pub fn results_qos() -> QosProfile {
    use ros2_client::qos::{Durability, History, WhenFull};
    QosProfile::publisher_default()
        .reliability_reliable(WhenFull::Wait(std::time::Duration::from_secs(1)))
        .durability(Durability::Volatile)
        .history(History::KeepLast { depth: 100 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_domains_are_checked() {
        assert!(topic_name("/dvs/events").is_ok());
        assert!(topic_name("/bad topic").is_err());
        assert_eq!(check_domain(233).unwrap_err(), "domain 233: expected 0 to 232");
        let c = Ros2Config { node: "9lives".into(), ..Ros2Config::default() };
        assert_eq!(c.check().unwrap_err().0, "node");
    }
}
