//! A whole recorded clip as SAFE's paired images: every RGB/APS frame, and the event image of
//! each frame's window. safe-train reads recordings through this, and so does safed's replay:
//! one rendering for training and serving.

use image::RgbImage;

use super::{frame_image::frame_to_rgb, window, Representation, Window, WindowMode, Windower};
use crate::events::{Event, EventError, EventSource, Frame, PacketData, StreamKind};

/// Events read from one clip at most (1 GiB of events): a clip is seconds long.
pub const MAX_CLIP_EVENTS: usize = 64 << 20;

/// How a frame's event window is chosen (the datasets' two frame-aligned renderings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameWindow {
    /// The frame's exposure interval.
    Exposure,
    /// From the previous frame to this one.
    Interval,
}

/// The first event stream's events and the first frame stream's frames of a recording.
#[derive(Debug, Default)]
pub struct RecordedClip {
    pub events: Vec<Event>,
    pub frames: Vec<Frame>,
    /// Sensor size (from the stream declaration, else the frames, else the events).
    pub size: (u32, u32),
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error(transparent)]
    Events(#[from] EventError),
    #[error("{input}: more than {MAX_CLIP_EVENTS} events; a clip this long must be split before training")]
    TooLong { input: String },
    #[error("{input}: no events")]
    NoEvents { input: String },
    #[error("{input}: frame at t={t} has {len} bytes of pixels, not {width}x{height}")]
    BadFrame { input: String, t: i64, len: usize, width: u16, height: u16 },
}

pub fn read_clip(source: &mut dyn EventSource) -> Result<RecordedClip, ClipError> {
    let input = source.input_name().to_string();
    let info = source.info();
    let ev_stream = info.first(StreamKind::Events).map(|s| (s.id, s.size));
    let fr_stream = info.first(StreamKind::Frames).map(|s| s.id);
    let mut clip = RecordedClip::default();
    while let Some(packet) = source.next_packet()? {
        match packet.data {
            PacketData::Events(ev) if Some(packet.stream) == ev_stream.map(|s| s.0) => {
                if clip.events.len() + ev.len() > MAX_CLIP_EVENTS {
                    return Err(ClipError::TooLong { input });
                }
                clip.events.extend_from_slice(&ev);
            }
            PacketData::Frame(f) if Some(packet.stream) == fr_stream => clip.frames.push(f),
            _ => {}
        }
    }
    if clip.events.is_empty() {
        return Err(ClipError::NoEvents { input });
    }
    clip.size = match (ev_stream.and_then(|s| s.1), clip.frames.first()) {
        (Some((w, h)), _) => (w as u32, h as u32),
        (None, Some(f)) => (f.width as u32, f.height as u32),
        (None, None) => {
            let w = clip.events.iter().map(|e| e.x).max().unwrap_or(0) as u32 + 1;
            (w, clip.events.iter().map(|e| e.y).max().unwrap_or(0) as u32 + 1)
        }
    };
    Ok(clip)
}

/// Paired images: frame k and the event image of its window.
#[derive(Debug, Clone, Default)]
pub struct ClipImages {
    pub rgb: Vec<RgbImage>,
    pub events: Vec<RgbImage>,
}

impl RecordedClip {
    /// Each frame and its window's event image (rendered as `events`). A clip without
    /// frames (an event-only camera) gets fixed windows of `window_us`, cut as a live stream
    /// cuts them ([`Windower`]: complete windows only, quiet stretches skipped), whose event
    /// images stand in for the RGB frames too.
    pub fn images(
        &self,
        mode: FrameWindow,
        events: Representation,
        window_us: i64,
        input: &str,
    ) -> Result<ClipImages, ClipError> {
        let (w, h) = self.size;
        let render = |e: &[Event]| events.render(e, w, h);
        if self.frames.is_empty() {
            let events: Vec<RgbImage> = self.event_windows(window_us).iter().map(|w| render(&w.events)).collect();
            return Ok(ClipImages { rgb: events.clone(), events });
        }
        let windows = match mode {
            FrameWindow::Exposure => self.frames.iter().map(|f| (f.exposure_start, f.exposure_end)).collect(),
            FrameWindow::Interval => {
                window::frame_interval_windows(&self.frames.iter().map(|f| f.t).collect::<Vec<_>>())
            }
        };
        let mut out = ClipImages::default();
        for (f, (s, e)) in self.frames.iter().zip(windows) {
            let rgb = frame_to_rgb(f).ok_or_else(|| ClipError::BadFrame {
                input: input.to_string(),
                t: f.t,
                len: f.pixels.len(),
                width: f.width,
                height: f.height,
            })?;
            out.rgb.push(rgb);
            out.events.push(render(window::slice(&self.events, s, e)));
        }
        Ok(out)
    }

    /// An event-only clip's windows of `window_us`, as a live stream's are cut.
    pub fn event_windows(&self, window_us: i64) -> Vec<Window> {
        Windower::new(WindowMode::Time { us: window_us }, usize::MAX).push(&self.events)
    }

    /// The (frame, event image) pairs [`RecordedClip::images`] makes, and streaming makes.
    pub fn pair_count(&self, window_us: i64) -> usize {
        if self.frames.is_empty() {
            self.event_windows(window_us).len()
        } else {
            self.frames.len()
        }
    }
}
