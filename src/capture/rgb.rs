//! RGB frames from OpenCV (`VideoCapture`): a camera (index or /dev/videoN), a video file, or an
//! RTSP / GStreamer URL, on its own capture thread, into the same queue as the events.
//!
//! Timestamps must be on the event stream's clock for the pairing to work:
//! - a video file is aligned to the event stream: frame t = the first event's time + the
//!   frame's position in the video (so a recording and a video of it replay together), paced
//!   at the configured speed;
//! - a live camera or URL is stamped with the host's wall clock in µs since the Unix epoch,
//!   which is the clock DV stamps live events with.

use std::sync::atomic::{AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio;

use super::{CaptureLink, Item, Pacer};
use crate::events::{Frame, PixelFormat};

#[derive(Debug, Clone)]
pub struct RgbSpec {
    /// A camera index ("0"), a device ("/dev/video0"), a video file, or a URL.
    pub source: String,
    /// Video files: recorded-time factor (None: as fast as it decodes).
    pub speed: Option<f64>,
    pub looping: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RgbError {
    #[error("{input}: OpenCV cannot open it as a camera, video file or stream")]
    NotOpened { input: String },
    #[error("{input}: {err}")]
    OpenCv { input: String, err: opencv::Error },
    #[error("{input}: frame of type {typ} (expected 8-bit BGR or gray)")]
    BadFrame { input: String, typ: i32 },
    #[error("{input}: more than {limit} bytes of decoded frames in one sample")]
    TooLarge { input: String, limit: usize },
}

/// A video file's frames, read whole (a dataset sample is a short clip), stamped as a replayed
/// video is: `zero` (the events' first timestamp) + the frame's position in the video. Decoded
/// frames past `max_bytes` are an error, not a memory blow-up.
pub fn read_video(path: &std::path::Path, zero: i64, max_bytes: usize) -> Result<Vec<Frame>, RgbError> {
    let spec = RgbSpec { source: path.display().to_string(), speed: None, looping: false };
    let mut cap = spec.open()?;
    let input = || spec.source.clone();
    let err = |err| RgbError::OpenCv { input: input(), err };
    let (mut mat, mut frames, mut bytes) = (Mat::default(), Vec::new(), 0usize);
    while cap.read(&mut mat).map_err(err)? && !mat.empty() {
        let pos_us = (cap.get(videoio::CAP_PROP_POS_MSEC).map_err(err)? * 1000.0) as i64;
        let frame = to_frame(&mat, zero + pos_us).map_err(|typ| RgbError::BadFrame { input: input(), typ })?;
        bytes += frame.pixels.len();
        if bytes > max_bytes {
            return Err(RgbError::TooLarge { input: input(), limit: max_bytes });
        }
        frames.push(frame);
    }
    Ok(frames)
}

impl RgbSpec {
    fn is_live(&self) -> bool {
        self.source.parse::<i32>().is_ok() || self.source.starts_with("/dev/video") || self.source.contains("://")
    }

    /// Opens the capture now, so a bad source fails before the daemon reports ready.
    pub fn open(&self) -> Result<videoio::VideoCapture, RgbError> {
        let err = |err| RgbError::OpenCv { input: self.source.clone(), err };
        let cap = match self.source.parse::<i32>() {
            Ok(index) => videoio::VideoCapture::new(index, videoio::CAP_ANY).map_err(err)?,
            Err(_) => videoio::VideoCapture::from_file(&self.source, videoio::CAP_ANY).map_err(err)?,
        };
        // from_file on a bad path returns Ok: check it really opened.
        if !cap.is_opened().map_err(err)? {
            return Err(RgbError::NotOpened { input: self.source.clone() });
        }
        Ok(cap)
    }

    pub fn spawn(self, cap: videoio::VideoCapture, link: CaptureLink) -> std::io::Result<JoinHandle<()>> {
        link.status.enter();
        std::thread::Builder::new().name("capture-rgb".into()).spawn(move || {
            let result = self.run(cap, &link.first_event_t.clone(), &link);
            // An RGB error is logged: no more frames come.
            if let Err(e) = &result {
                tracing::error!("{e}");
            }
            link.status.finish(None);
        })
    }

    fn run(&self, mut cap: videoio::VideoCapture, epoch: &AtomicI64, link: &CaptureLink) -> Result<(), RgbError> {
        let err = |err| RgbError::OpenCv { input: self.source.clone(), err };
        let live = self.is_live();
        let mut mat = Mat::default();
        let mut offset_us = 0i64;
        let mut pacer = Pacer::new(self.speed);
        loop {
            if link.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if !cap.read(&mut mat).map_err(err)? || mat.empty() {
                if live || !self.looping {
                    return Ok(());
                }
                // Next loop of the video: continue after its last frame.
                offset_us += (cap.get(videoio::CAP_PROP_POS_MSEC).map_err(err)? * 1000.0) as i64 + 33_333;
                cap = self.open().map_err(|_| RgbError::NotOpened { input: self.source.clone() })?;
                continue;
            }
            let t = if live {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
            } else {
                let pos_us = (cap.get(videoio::CAP_PROP_POS_MSEC).map_err(err)? * 1000.0) as i64 + offset_us;
                // Wait for the event stream's first timestamp: the video's zero.
                let zero = loop {
                    let e = epoch.load(Ordering::Acquire);
                    if e != i64::MIN || link.stop.load(Ordering::Relaxed) {
                        break e;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                };
                pacer.wait(pos_us, link);
                zero + pos_us
            };
            let frame = to_frame(&mat, t).map_err(|typ| RgbError::BadFrame { input: self.source.clone(), typ })?;
            link.ring.push(Item::Frame { frame, arrived: Instant::now() });
        }
    }
}

/// An 8-bit BGR or gray Mat as a Frame (exposure unknown: zero length at `t`).
fn to_frame(mat: &Mat, t: i64) -> Result<Frame, i32> {
    let typ = mat.typ();
    let format = match typ {
        t if t == opencv::core::CV_8UC3 => PixelFormat::Bgr,
        t if t == opencv::core::CV_8UC1 => PixelFormat::Gray,
        t if t == opencv::core::CV_8UC4 => PixelFormat::Bgra,
        other => return Err(other),
    };
    let pixels = if mat.is_continuous() {
        mat.data_bytes().map_err(|_| typ)?.to_vec()
    } else {
        mat.try_clone().and_then(|m| m.data_bytes().map(<[u8]>::to_vec)).map_err(|_| typ)?
    };
    Ok(Frame {
        t,
        exposure_start: t,
        exposure_end: t,
        width: mat.cols() as u16,
        height: mat.rows() as u16,
        position: (0, 0),
        format,
        pixels,
    })
}
