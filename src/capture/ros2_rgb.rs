//! RGB frames from a ROS 2 topic of `sensor_msgs/msg/Image` (`[rgb] source = "ros2:TOPIC"`):
//! rgb8, bgr8, mono8 (and rgba8 / bgra8), on a capture thread of its own, into the stream's
//! queue like the events.
//!
//! The pairing rule: a frame is put on the events' clock through its header stamp (ROS time).
//! With a `ros2:` event source, t = frame stamp - (an event packet's stamp - that packet's newest
//! event time), the offset the event source keeps: for libcaer_driver's encodings, whose event
//! times are ROS time already, that offset is the driver's stamping delay; for evt3 (sensor time)
//! it is the sensor's clock against ROS time. Frames before the first event packet have no
//! offset yet and are dropped (logged once). With any other event source, t = the stamp in µs
//! since the Unix epoch, the host clock DV stamps live events with.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CaptureLink, Item};
use crate::events::{Frame, PixelFormat};
use crate::ros2::events_in::{clock_offsets, PREFIX};
use crate::ros2::msgs::Image;
use crate::ros2::{node, Ros2Config, Ros2Error};

/// An opened image subscription.
pub struct Ros2Rgb {
    topic: String,
    /// The stream's event source (for its clock).
    events_source: String,
    subscription: ros2_client::Subscription<Image>,
    _node: std::sync::Arc<crate::ros2::Ros2Node>,
}

/// Whether `source` names a ROS 2 image topic.
pub fn is_ros2(source: &str) -> bool {
    source.starts_with(PREFIX)
}

impl Ros2Rgb {
    /// Subscribes now (a bad topic fails before READY).
    pub fn open(source: &str, events_source: &str, config: &Ros2Config) -> Result<Ros2Rgb, Ros2Error> {
        use ros2_client::qos::{Durability, History};
        let topic = source.strip_prefix(PREFIX).unwrap_or(source).to_string();
        let node = node(config)?;
        let qos = ros2_client::QosProfile::subscription_default()
            .reliability_best_effort()
            .durability(Durability::Volatile)
            .history(History::KeepLast { depth: 10 });
        let subscription = node.subscribe::<Image>(&topic, ("sensor_msgs", "Image"), &qos)?;
        Ok(Ros2Rgb { topic, events_source: events_source.to_string(), subscription, _node: node })
    }

    pub fn spawn(self, link: CaptureLink) -> std::io::Result<JoinHandle<()>> {
        link.status.enter();
        std::thread::Builder::new().name("capture-ros2-rgb".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                self.pump(&rt, &link);
            }
            link.status.finish(None);
        })
    }

    fn pump(&self, rt: &tokio::runtime::Runtime, link: &CaptureLink) {
        let mut warned = 0u8;
        let mut warn = |bit: u8, what: String| {
            if warned & bit == 0 {
                warned |= bit;
                tracing::warn!("{}: {what} (logged once)", self.topic);
            }
        };
        while !link.stopped() {
            let taken = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), self.subscription.async_take()).await
            });
            let msg = match taken {
                Ok(Ok((msg, _))) => msg,
                Ok(Err(e)) => {
                    warn(1, format!("a message that does not read as an Image: {e:?}"));
                    continue;
                }
                Err(_) => continue,
            };
            let arrived = Instant::now();
            let stamp_ns = msg.header.stamp.nanos() as i64;
            let t = if is_ros2(&self.events_source) {
                match clock_offsets().lock().ok().and_then(|o| o.get(&self.events_source).copied()) {
                    Some(off) => (stamp_ns - off) / 1000,
                    None => {
                        warn(2, "a frame before the first event packet: dropped (no clock to put it on yet)".into());
                        continue;
                    }
                }
            } else {
                stamp_ns / 1000
            };
            match to_frame(&msg, t) {
                Ok(frame) => {
                    link.ring.push(Item::Frame { frame, arrived });
                }
                Err(what) => warn(4, what),
            }
        }
    }
}

/// A sensor_msgs/Image as a frame at `t` (µs); the error says what is wrong with it.
pub fn to_frame(img: &Image, t: i64) -> Result<Frame, String> {
    let (w, h) = (img.width as usize, img.height as usize);
    let (format, channels, swap) = match img.encoding.as_str() {
        "mono8" => (PixelFormat::Gray, 1, false),
        "bgr8" => (PixelFormat::Bgr, 3, false),
        "rgb8" => (PixelFormat::Bgr, 3, true),
        "bgra8" => (PixelFormat::Bgra, 4, false),
        "rgba8" => (PixelFormat::Bgra, 4, true),
        other => return Err(format!("encoding {other:?}: safed takes mono8, rgb8, bgr8, rgba8, bgra8")),
    };
    if w == 0 || h == 0 || w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(format!("a {w}x{h} image"));
    }
    let row = w * channels;
    let step = img.step as usize;
    if step < row || img.data.len() < step * (h - 1) + row {
        return Err(format!("{w}x{h} {} with step {step} needs more than {} bytes", img.encoding, img.data.len()));
    }
    let mut pixels = Vec::with_capacity(row * h);
    for y in 0..h {
        pixels.extend_from_slice(&img.data[y * step..y * step + row]);
    }
    if swap {
        for p in pixels.chunks_exact_mut(channels) {
            p.swap(0, 2);
        }
    }
    Ok(Frame {
        t,
        exposure_start: t,
        exposure_end: t,
        width: w as u16,
        height: h as u16,
        position: (0, 0),
        format,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_become_frames_and_bad_ones_say_why() {
        let img = |encoding: &str, step: u32, data: Vec<u8>| Image {
            width: 2,
            height: 2,
            encoding: encoding.into(),
            step,
            data,
            ..Image::default()
        };
        let f = to_frame(&img("rgb8", 8, vec![1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0]), 5).unwrap();
        assert_eq!((f.format, f.t, f.pixels), (PixelFormat::Bgr, 5, vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]));
        assert_eq!(to_frame(&img("mono8", 2, vec![1, 2, 3, 4]), 0).unwrap().format, PixelFormat::Gray);
        assert!(to_frame(&img("mono8", 2, vec![1, 2, 3]), 0).unwrap_err().contains("needs more than 3 bytes"));
        assert!(to_frame(&img("yuv422", 4, vec![0; 8]), 0).unwrap_err().contains("encoding \"yuv422\""));
    }
}
