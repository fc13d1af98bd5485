//! `ros2:TOPIC`: events from `event_camera_msgs/msg/EventPacket` messages, as metavision_driver
//! (Prophesee, `evt3`) and libcaer_driver (iniVation, `libcaer_cmp`, `libcaer`) publish them.
//! The sensor size comes from the first packet. A gap in `seq` counts lost packets; an unknown
//! encoding, a size that changes, a huge packet are counted and logged once (with the topic and
//! seq), and the packet is skipped; recognition goes on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::msgs::EventPacket;
use super::{node, sensor_qos, Ros2Config, Ros2Node};
use crate::events::packet_codecs::{Encoding, PacketDecoder};
use crate::events::{EventError, EventSource, Format, Packet, PacketData, SourceInfo};

pub const PREFIX: &str = "ros2:";

/// A packet larger than this is skipped (counted): 64 MiB is ~30 M EVT 3.0 events, seconds of
/// a busy camera, where drivers send a packet every millisecond or so.
pub const MAX_PACKET: usize = 64 << 20;

/// How long one wait for a packet lasts before an empty packet is returned (so that the reader
/// can look at its stop flag).
const POLL: Duration = Duration::from_millis(100);

/// What an EventPacket source counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ros2Counts {
    pub packets: u64,
    pub events: u64,
    /// Packets missing from the `seq` numbers.
    pub lost: u64,
    pub unknown_encoding: u64,
    pub size_changed: u64,
    pub huge: u64,
    pub truncated: u64,
    pub outside: u64,
}

/// For each `ros2:` source, the ROS time minus the sensor time of its newest packet (ns): how
/// recognitions' windows (sensor µs) map back to ROS time for their headers.
pub fn clock_offsets() -> &'static Mutex<HashMap<String, i64>> {
    static OFFSETS: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    OFFSETS.get_or_init(Default::default)
}

pub struct Ros2EventSource {
    name: String,
    topic: String,
    info: SourceInfo,
    _node: Arc<Ros2Node>,
    subscription: ros2_client::Subscription<EventPacket>,
    runtime: tokio::runtime::Runtime,
    decoder: Option<PacketDecoder>,
    size: Option<(u32, u32)>,
    last_seq: Option<u64>,
    /// A message that restarted the stream (its seq went back), held for the next call.
    restarting: Option<EventPacket>,
    /// The stream restarted since the last call to `restarted`.
    restarted: bool,
    counts: Ros2Counts,
    /// What was logged once already.
    logged: u32,
}

impl Ros2EventSource {
    /// Subscribes now (no publisher needs to exist yet: discovery finds it later).
    pub fn open(source: &str, config: &Ros2Config) -> Result<Ros2EventSource, EventError> {
        let topic = source.strip_prefix(PREFIX).unwrap_or(source).to_string();
        let fail = |what: String| EventError::Unsupported { input: source.to_string(), what };
        let node = node(config).map_err(|e| fail(e.to_string()))?;
        let subscription = node
            .subscribe::<EventPacket>(&topic, ("event_camera_msgs", "EventPacket"), &sensor_qos())
            .map_err(|e| fail(e.to_string()))?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| fail(e.to_string()))?;
        Ok(Ros2EventSource {
            name: source.to_string(),
            info: SourceInfo::single_event_stream(
                Format::Ros2,
                None,
                Some(format!("ROS 2 {topic} ({})", node.describe)),
            ),
            topic,
            _node: node,
            subscription,
            runtime,
            decoder: None,
            size: None,
            last_seq: None,
            restarting: None,
            restarted: false,
            counts: Ros2Counts::default(),
            logged: 0,
        })
    }

    pub fn counts(&self) -> Ros2Counts {
        let mut c = self.counts;
        if let Some(d) = &self.decoder {
            let p = d.counts();
            (c.events, c.truncated, c.outside) = (p.events, p.truncated, p.outside);
        }
        c
    }

    /// Logs a problem the first time it happens (each kind once: a bit in `logged`).
    fn once(&mut self, kind: u32, what: String) {
        if self.logged & kind == 0 {
            self.logged |= kind;
            tracing::warn!("{}: {what} (counted; logged once)", self.topic);
        }
    }

    /// Whether `msg` starts the stream again: its publisher restarted (seq back to the start), so
    /// its clock did too.
    fn restarts(&self, msg: &EventPacket) -> bool {
        self.last_seq.is_some_and(|last| msg.seq <= last)
    }

    /// Decodes one message into `out`, or says why it was skipped.
    fn take(&mut self, msg: EventPacket, out: &mut Vec<crate::events::Event>) {
        self.counts.packets += 1;
        if let Some(last) = self.last_seq {
            if msg.seq > last + 1 {
                self.counts.lost += msg.seq - last - 1;
            }
        }
        self.last_seq = Some(msg.seq);
        if msg.events.len() > MAX_PACKET {
            self.counts.huge += 1;
            return self
                .once(1, format!("seq {}: a {} byte packet, over {MAX_PACKET}: skipped", msg.seq, msg.events.len()));
        }
        let encoding = match msg.encoding.parse::<Encoding>() {
            Ok(e) => e,
            Err(e) => {
                self.counts.unknown_encoding += 1;
                return self.once(2, format!("seq {}: {e}", msg.seq));
            }
        };
        let size = (msg.width, msg.height);
        match self.size {
            None if (1..=32767).contains(&size.0) && (1..=32767).contains(&size.1) => {
                self.size = Some(size);
                self.info.streams[0].size = Some((size.0 as u16, size.1 as u16));
            }
            Some(s) if s == size => {}
            _ => {
                self.counts.size_changed += 1;
                return self.once(4, format!("seq {}: sensor {}x{}, not {:?}", msg.seq, size.0, size.1, self.size));
            }
        }
        let (w, h) = (size.0 as u16, size.1 as u16);
        let had = self.decoder.get_or_insert_with(|| PacketDecoder::new(encoding, w, h)).encoding();
        if had != encoding {
            self.counts.unknown_encoding += 1;
            return self.once(8, format!("seq {}: encoding {} after {had:?}", msg.seq, msg.encoding));
        }
        let Some(decoder) = self.decoder.as_mut() else { return };
        let start = out.len();
        decoder.decode(msg.time_base, &msg.events, out);
        // The header stamps the packet's newest event in ROS time.
        if let Some(last) = out[start..].last() {
            let offset = msg.header.stamp.nanos() as i64 - last.t.saturating_mul(1000);
            if let Ok(mut o) = clock_offsets().lock() {
                o.insert(self.name.clone(), offset);
            }
        }
    }
}

impl EventSource for Ros2EventSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    /// Every message waiting (or, first, one within 100 ms) decoded into one packet; an empty
    /// packet when none came.
    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let mut events = Vec::new();
        let first = match self.restarting.take() {
            Some(msg) => {
                // A new stream: a new decoder state, and the reader is told (`restarted`).
                tracing::info!("{}: the publisher restarted (seq {})", self.topic, msg.seq);
                (self.decoder, self.last_seq, self.restarted) = (None, None, true);
                Some(msg)
            }
            None => {
                match self.runtime.block_on(async { tokio::time::timeout(POLL, self.subscription.async_take()).await })
                {
                    Ok(Ok((msg, _))) => Some(msg),
                    Ok(Err(e)) => {
                        self.once(16, format!("a message that does not read as an EventPacket: {e:?}"));
                        None
                    }
                    Err(_) => None,
                }
            }
        };
        let mut next = first;
        while let Some(msg) = next.take() {
            if self.restarts(&msg) {
                self.restarting = Some(msg);
                break;
            }
            self.take(msg, &mut events);
            if events.len() >= 1 << 20 {
                break;
            }
            next = match self.subscription.take() {
                Ok(m) => m.map(|(msg, _)| msg),
                Err(e) => {
                    self.once(16, format!("a message that does not read as an EventPacket: {e:?}"));
                    None
                }
            };
        }
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }

    fn restarted(&mut self) -> bool {
        std::mem::take(&mut self.restarted)
    }

    fn dropped(&self) -> u64 {
        let c = self.counts();
        c.lost + c.unknown_encoding + c.size_changed + c.huge
    }

    fn summary(&self) -> Option<String> {
        let c = self.counts();
        Some(format!(
            "{} packets, {} events; {} packets lost (seq), {} of an unknown encoding, {} of another sensor size, \
             {} over {} MiB, {} cut short; {} events outside the sensor",
            c.packets,
            c.events,
            c.lost,
            c.unknown_encoding,
            c.size_changed,
            c.huge,
            MAX_PACKET >> 20,
            c.truncated,
            c.outside
        ))
    }

    fn sensor(&self) -> Option<(u16, u16)> {
        self.info.streams[0].size
    }
}
