//! `[output.ros2]`: one `vision_msgs/msg/Classification` per recognition on the robot's ROS 2
//! graph, and optionally the event image the model saw as `sensor_msgs/msg/Image` (for
//! rqt_image_view). Publishing happens on a thread of its own behind a bounded queue: a full
//! queue drops the oldest message (counted), recognition never waits for DDS.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;

use super::jsonl::Recognition;
use crate::ros2::events_in::clock_offsets;
use crate::ros2::msgs::{Classification, Header, Image, ObjectHypothesis, Time};
use crate::ros2::{node, results_qos, topic_name, Ros2Config, Ros2Error};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ros2OutputConfig {
    /// Where classifications go; `{stream}` is the stream's name.
    pub topic: String,
    /// The frame_id of the headers (default: the stream's name).
    pub frame_id: String,
    /// Where the event image the model saw goes, as sensor_msgs/Image (rgb8; `{stream}`);
    /// empty: not published.
    pub image_topic: String,
    /// Messages waiting for DDS at most; past it the oldest are dropped (and counted).
    pub queue: usize,
}

impl Default for Ros2OutputConfig {
    fn default() -> Self {
        Ros2OutputConfig {
            topic: "/safed/{stream}/classification".into(),
            frame_id: String::new(),
            image_topic: String::new(),
            queue: 256,
        }
    }
}

impl Ros2OutputConfig {
    /// The topic of `stream`, checked.
    pub fn topic_for(&self, stream: &str) -> Result<String, String> {
        let t = self.topic.replace("{stream}", stream);
        topic_name(&t).map(|_| t)
    }

    /// `Err((key, what))` names the key at fault.
    pub fn check(&self, streams: &[String]) -> Result<(), (&'static str, String)> {
        if self.queue == 0 {
            return Err(("queue", "must be positive".into()));
        }
        for s in streams {
            self.topic_for(s).map_err(|e| ("topic", e))?;
            if !self.image_topic.is_empty() {
                topic_name(&self.image_topic.replace("{stream}", s)).map_err(|e| ("image_topic", e))?;
            }
        }
        Ok(())
    }
}

struct Outgoing {
    stream: String,
    msg: Classification,
}

/// Event images on their way to `image_topic`: a short queue (images are big, and only the
/// newest matter to a viewer) into the thread that owns their publishers.
#[derive(Clone)]
pub struct Ros2ImageTap {
    tx: Sender<(usize, Image)>,
    dropped: Counter,
    sources: Vec<(String, String)>,
    frame_id: String,
}

impl Ros2ImageTap {
    fn start(
        config: &Ros2OutputConfig,
        node: &std::sync::Arc<crate::ros2::Ros2Node>,
        streams: &[(String, String)],
        dropped: Counter,
    ) -> Result<Ros2ImageTap, Ros2Error> {
        let mut publishers = Vec::new();
        for (name, _) in streams {
            let topic = config.image_topic.replace("{stream}", name);
            publishers.push(node.publisher::<Image>(&topic, ("sensor_msgs", "Image"), &results_qos())?);
            tracing::info!("ROS 2: publishing {name}'s event images on {topic}");
        }
        let (tx, rx) = bounded::<(usize, Image)>(4);
        let node = node.clone();
        std::thread::Builder::new()
            .name("ros2-images".into())
            .spawn(move || {
                let _node = node;
                for (stream, image) in rx {
                    if let Some(p) = publishers.get(stream) {
                        if let Err(e) = p.publish(image) {
                            tracing::debug!("ROS 2 image publish: {e:?}");
                        }
                    }
                }
            })
            .map_err(|e| Ros2Error::Dds(e.to_string()))?;
        Ok(Ros2ImageTap { tx, dropped, sources: streams.to_vec(), frame_id: config.frame_id.clone() })
    }

    /// Stream `stream`'s event image for the window ending at `t_end` (sensor µs); dropped
    /// (counted) when the queue is full, never waited for.
    pub fn offer(&self, stream: usize, t_end: i64, image: &image::RgbImage) {
        let Some((name, source)) = self.sources.get(stream) else { return };
        let frame_id = if self.frame_id.is_empty() { name.clone() } else { self.frame_id.clone() };
        let msg = Image {
            header: Header { stamp: ros_time(source, t_end, 0.0), frame_id },
            height: image.height(),
            width: image.width(),
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: image.width() * 3,
            data: image.as_raw().clone(),
        };
        if self.tx.try_send((stream, msg)).is_err() {
            self.dropped.inc();
        }
    }
}

/// The ROS time of sensor time `t_us` of `source`: through a `ros2:` source's packet stamps;
/// otherwise the wall clock less `latency_ms` (when the input arrived).
fn ros_time(source: &str, t_us: i64, latency_ms: f64) -> Time {
    match clock_offsets().lock().ok().and_then(|o| o.get(source).copied()) {
        Some(off) => Time::from_nanos(t_us.saturating_mul(1000).saturating_add(off).max(0) as u64),
        None => Time::from_nanos(Time::now().nanos().saturating_sub((latency_ms * 1e6) as u64)),
    }
}

/// The publishing side: a queue into the thread that owns the publishers.
pub struct Ros2Sink {
    tx: Sender<Outgoing>,
    rx: Receiver<Outgoing>,
    /// Messages dropped by the full queue (safed_ros2_dropped_total).
    dropped: Counter,
    /// Each stream's source (for the clock of `ros2:` sources).
    sources: Vec<(String, String)>,
    frame_id: String,
    /// The event images' side, when `image_topic` is set (handed to the accumulate stages).
    pub images: Option<Ros2ImageTap>,
}

impl Ros2Sink {
    /// Makes the node (if no source did) and a publisher per stream, now: a bad topic fails
    /// before READY. `streams`: (name, source).
    pub fn start(
        config: &Ros2OutputConfig,
        ros2: &Ros2Config,
        streams: &[(String, String)],
        dropped: Counter,
    ) -> Result<Ros2Sink, Ros2Error> {
        let node = node(ros2)?;
        let images = if config.image_topic.is_empty() {
            None
        } else {
            Some(Ros2ImageTap::start(config, &node, streams, dropped.clone())?)
        };
        let mut publishers = Vec::new();
        for (name, _) in streams {
            let topic = config.topic_for(name).map_err(Ros2Error::Config)?;
            let p = node.publisher::<Classification>(&topic, ("vision_msgs", "Classification"), &results_qos())?;
            tracing::info!("ROS 2: publishing {name}'s recognitions on {topic}");
            publishers.push((name.clone(), p));
        }
        let (tx, rx) = bounded::<Outgoing>(config.queue);
        let (worker_rx, failed) = (rx.clone(), dropped.clone());
        std::thread::Builder::new()
            .name("ros2-publish".into())
            .spawn(move || {
                let _node = node;
                let mut warned = false;
                for out in worker_rx {
                    if let Some((_, p)) = publishers.iter().find(|(n, _)| *n == out.stream) {
                        if let Err(e) = p.publish(out.msg) {
                            failed.inc();
                            if !std::mem::replace(&mut warned, true) {
                                tracing::warn!("ROS 2: a classification was not sent ({e:?}); counted, logged once");
                            }
                        }
                    }
                }
            })
            .map_err(|e| Ros2Error::Dds(e.to_string()))?;
        Ok(Ros2Sink { tx, rx, dropped, sources: streams.to_vec(), frame_id: config.frame_id.clone(), images })
    }

    /// Queues the recognition's Classification; never waits (a full queue drops its oldest).
    pub fn publish(&self, rec: &Recognition) {
        let stamp = self.stamp(rec);
        let frame_id = if self.frame_id.is_empty() { rec.stream.clone() } else { self.frame_id.clone() };
        let results =
            rec.top.iter().map(|s| ObjectHypothesis { class_id: s.label.clone(), score: s.p as f64 }).collect();
        let mut out = Outgoing {
            stream: rec.stream.clone(),
            msg: Classification { header: Header { stamp, frame_id }, results },
        };
        loop {
            match self.tx.try_send(out) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    // The oldest goes, this one waits its turn.
                    if self.rx.try_recv().is_ok() {
                        self.dropped.inc();
                    }
                    out = back;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// The ROS time of the newest input the recognition used: for a `ros2:` source, its window's
    /// end mapped through the packets' header stamps; otherwise the wall clock when that input
    /// arrived (now, less the recognition's latency).
    fn stamp(&self, rec: &Recognition) -> Time {
        let source = self.sources.iter().find(|(n, _)| *n == rec.stream).map_or("", |(_, s)| s.as_str());
        ros_time(source, rec.t_end, rec.latency_ms.total)
    }
}
