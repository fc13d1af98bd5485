//! How a window of events becomes the event branch's image. A model is trained on one and says
//! which in its metadata (`safe.events`); safed renders what the model was trained on.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::{render, VoxelGrid};
use crate::events::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Representation {
    /// The datasets' event image (white, ON red, OFF blue, later events overwrite): the paper's
    /// input.
    #[default]
    Image,
    /// A 3-bin voxel grid, one time bin per colour channel: keeps the order of events within
    /// the window, which the event image overwrites. Not the paper's input: a model must be
    /// trained on it (`safe-train fit --events voxel`).
    Voxel,
}

impl Representation {
    pub const ALL: [Representation; 2] = [Representation::Image, Representation::Voxel];

    pub fn name(self) -> &'static str {
        match self {
            Representation::Image => "image",
            Representation::Voxel => "voxel",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The image of one window of time-ordered events on a `width` x `height` sensor.
    pub fn render(self, events: &[Event], width: u32, height: u32) -> RgbImage {
        match self {
            Representation::Image => render(events, width, height),
            Representation::Voxel => VoxelGrid::from_events(events, 3, width as usize, height as usize)
                .to_rgb()
                .expect("a 3-bin grid has an RGB image"),
        }
    }
}

impl std::fmt::Display for Representation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
