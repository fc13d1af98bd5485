//! The ROS 2 messages safed reads and writes, as serde structs in the `.msg` files' field order
//! (ROS 2 speaks CDR, which has no field names: the order is the format). Written here rather
//! than taken from the `ros2-interfaces-*` crates, which pull an older ros2-client.

use serde::{Deserialize, Serialize};

/// `builtin_interfaces/msg/Time`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}

impl Time {
    pub fn from_nanos(ns: u64) -> Time {
        Time { sec: (ns / 1_000_000_000).min(i32::MAX as u64) as i32, nanosec: (ns % 1_000_000_000) as u32 }
    }

    pub fn nanos(self) -> u64 {
        (self.sec.max(0) as u64) * 1_000_000_000 + self.nanosec as u64
    }

    /// The wall clock now (what ROS time is without simulated time).
    pub fn now() -> Time {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Time::from_nanos(d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

/// `std_msgs/msg/Header`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

/// `event_camera_msgs/msg/EventPacket`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPacket {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub seq: u64,
    pub time_base: u64,
    pub encoding: String,
    pub is_bigendian: bool,
    pub events: Vec<u8>,
}

/// `sensor_msgs/msg/Image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    pub data: Vec<u8>,
}

/// `vision_msgs/msg/ObjectHypothesis`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectHypothesis {
    pub class_id: String,
    pub score: f64,
}

/// `vision_msgs/msg/Classification`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub header: Header,
    pub results: Vec<ObjectHypothesis>,
}

impl ros2_client::Message for EventPacket {}
impl ros2_client::Message for Image {}
impl ros2_client::Message for Classification {}
