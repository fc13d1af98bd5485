//! One sample's data, read when it is replayed or trained on (never a whole split at once).
//!
//! Frame folders are listed in name order (the datasets number their frames with zero padding,
//! `{:08}.png`, so name order is frame order, as the authors' loaders sort `os.listdir`); a gap
//! in the numbering is no frame. When the APS and event-image folders hold different counts,
//! APS frame k pairs with event image `k * n_dvs / n_aps` (the event images follow the frames
//! they pair with), which is the same index when the counts agree.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::SampleSource;
use crate::accumulate::clip::MAX_CLIP_EVENTS;
use crate::accumulate::{read_clip, ClipError, ClipImages, FrameWindow, RecordedClip, Representation};
use crate::events::{Event, EventError, Frame, PacketData, PixelFormat, StreamKind};
use crate::infer::preprocess::{frame_files, load_image, PreprocessError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Broken(String),
    #[error(transparent)]
    Clip(#[from] ClipError),
    #[error(transparent)]
    Events(#[from] EventError),
    #[error(transparent)]
    Image(#[from] PreprocessError),
    #[error("{input}: no events in [{start}, {end}) µs")]
    EmptySegment { input: String, start: i64, end: i64 },
    #[error("{input}: more than {MAX_CLIP_EVENTS} events in one sample")]
    TooLong { input: String },
    #[error("{path}: {what}")]
    Frames { path: String, what: String },
    #[error(transparent)]
    Video(#[from] crate::capture::rgb::RgbError),
}

/// Decoded video frames one sample may hold (a 10 s 640x480 clip at 30 fps is 276 MB).
pub const MAX_VIDEO_BYTES: usize = 1 << 30;

/// A sample, ready to replay or render.
pub enum SampleClip {
    /// (APS frame, event image) file pairs: the dataset's own rendering.
    Rendered(Vec<(PathBuf, PathBuf)>),
    /// Events, with frames (or event-only), read whole (a sample is a short clip).
    Recorded(RecordedClip),
}

/// The frame-folder pairs of a sample: APS frame k with event image `k * n_dvs / n_aps`.
pub fn frame_pairs(aps: &Path, dvs: &Path) -> Result<Vec<(PathBuf, PathBuf)>, LoadError> {
    let (a, d) = (frame_files(aps)?, frame_files(dvs)?);
    Ok(a.iter().enumerate().map(|(k, p)| (p.clone(), d[(k * d.len() / a.len()).min(d.len() - 1)].clone())).collect())
}

pub fn load_clip(source: &SampleSource) -> Result<SampleClip, LoadError> {
    match source {
        SampleSource::Broken(why) => Err(LoadError::Broken(why.clone())),
        SampleSource::Frames { aps, dvs } => Ok(SampleClip::Rendered(frame_pairs(aps, dvs)?)),
        SampleSource::Recording(path) => Ok(SampleClip::Recorded(read_file(path)?)),
        SampleSource::EventsWithFrames { events, aps } => {
            let mut clip = read_file(events)?;
            if let Some(aps) = aps {
                clip.frames = spread_frames(&clip.events, aps)?;
                if let Some(f) = clip.frames.first() {
                    clip.size = (clip.size.0.max(f.width as u32), clip.size.1.max(f.height as u32));
                }
            }
            Ok(SampleClip::Recorded(clip))
        }
        SampleSource::EventsWithVideo { events, video } => {
            let mut clip = read_file(events)?;
            let zero = clip.events.first().map_or(0, |e| e.t);
            clip.frames = crate::capture::rgb::read_video(video, zero, MAX_VIDEO_BYTES)?;
            if let Some(f) = clip.frames.first() {
                clip.size = (clip.size.0.max(f.width as u32), clip.size.1.max(f.height as u32));
            }
            Ok(SampleClip::Recorded(clip))
        }
        SampleSource::Segment { recording, start, end } => {
            Ok(SampleClip::Recorded(read_segment(recording, *start, *end)?))
        }
    }
}

/// A sample's frames and event images in time order, at their recorded size: the dataset's
/// own pairs as they are, or its recording's frame windows rendered as `events` (event-only:
/// [`super::EVENT_ONLY_WINDOW_US`] windows). What training, evaluation and bench-dataset read.
pub fn load_images(source: &SampleSource, events: Representation, name: &str) -> Result<ClipImages, LoadError> {
    match load_clip(source)? {
        SampleClip::Rendered(pairs) => {
            let mut out = ClipImages { rgb: Vec::with_capacity(pairs.len()), events: Vec::with_capacity(pairs.len()) };
            for (aps, dvs) in &pairs {
                out.rgb.push(load_image(aps)?);
                out.events.push(load_image(dvs)?);
            }
            Ok(out)
        }
        SampleClip::Recorded(clip) => {
            Ok(clip.images(FrameWindow::Interval, events, super::EVENT_ONLY_WINDOW_US, name)?)
        }
    }
}

fn read_file(path: &Path) -> Result<RecordedClip, LoadError> {
    let mut src = crate::events::open(&path.display().to_string())?;
    Ok(read_clip(src.as_mut())?)
}

/// The events of [start, end) of a recording's first event stream (decoding stops past end).
fn read_segment(path: &Path, start: i64, end: i64) -> Result<RecordedClip, LoadError> {
    let input = path.display().to_string();
    let mut src = crate::events::open(&input)?;
    let info = src.info();
    let stream = info.first(StreamKind::Events).map(|s| (s.id, s.size));
    let mut events: Vec<Event> = Vec::new();
    while let Some(packet) = src.next_packet()? {
        let PacketData::Events(ev) = packet.data else { continue };
        if Some(packet.stream) != stream.map(|s| s.0) {
            continue;
        }
        events.extend(ev.iter().filter(|e| e.t >= start && e.t < end));
        if events.len() > MAX_CLIP_EVENTS {
            return Err(LoadError::TooLong { input });
        }
        if ev.last().is_some_and(|e| e.t >= end) {
            break;
        }
    }
    if events.is_empty() {
        return Err(LoadError::EmptySegment { input, start, end });
    }
    let size = match stream.and_then(|s| s.1) {
        Some((w, h)) => (w as u32, h as u32),
        None => {
            let w = events.iter().map(|e| e.x).max().unwrap_or(0) as u32 + 1;
            (w, events.iter().map(|e| e.y).max().unwrap_or(0) as u32 + 1)
        }
    };
    Ok(RecordedClip { events, frames: Vec::new(), size })
}

/// A folder's frames spread over the events' span: frame k closes the k-th of n equal time
/// slices, so its frame-interval window is that slice (how HARDVS's event images were cut).
fn spread_frames(events: &[Event], aps: &Path) -> Result<Vec<Frame>, LoadError> {
    let files = frame_files(aps)?;
    let slices = crate::accumulate::window::time_slices(events, files.len());
    let mut frames = Vec::with_capacity(slices.len());
    for (file, (s, t, _)) in files.iter().zip(slices) {
        frames.push(frame_of(&load_image(file)?, s, t, file)?);
    }
    Ok(frames)
}

fn frame_of(img: &RgbImage, start: i64, t: i64, file: &Path) -> Result<Frame, LoadError> {
    let (w, h) = img.dimensions();
    let too_big =
        || LoadError::Frames { path: file.display().to_string(), what: format!("{w}x{h} is larger than 65535") };
    let (width, height) = (u16::try_from(w).map_err(|_| too_big())?, u16::try_from(h).map_err(|_| too_big())?);
    let pixels = img.pixels().flat_map(|p| [p[2], p[1], p[0]]).collect();
    Ok(Frame {
        t,
        exposure_start: start,
        exposure_end: t,
        width,
        height,
        position: (0, 0),
        format: PixelFormat::Bgr,
        pixels,
    })
}
