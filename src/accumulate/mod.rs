//! Events into images: pure functions, shared by safed (serving) and safe-train (training) so
//! both see the same pixels.
//!
//! - [`event_image`]: the datasets' own rendering (white background, ON red, OFF blue).
//! - [`voxel`]: a voxel grid (time bins with bilinear weights), the second representation.
//! - [`representation`]: which of the two a model takes.
//! - [`window`]: which events make one image (a frame's exposure, fixed time, fixed count).
//! - [`frame_image`]: camera/APS frames as RGB images.
//! - [`clip`]: a whole recording as paired RGB and event images (training, replay).

pub mod clip;
pub mod event_image;
pub mod frame_image;
pub mod representation;
pub mod voxel;
pub mod window;

pub use clip::{read_clip, ClipError, ClipImages, FrameWindow, RecordedClip};
pub use event_image::{render, EventImage, OFF_RGB, ON_RGB};
pub use frame_image::frame_to_rgb;
pub use representation::Representation;
pub use voxel::VoxelGrid;
pub use window::{frame_interval_windows, Window, WindowMode, Windower};
