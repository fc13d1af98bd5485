//! A video of a recording's frames, written by OpenCV's own VideoWriter (MJPG, 30 fps): the
//! RGB a user would put beside an event file.

use std::path::Path;

use opencv::core::{Mat, Scalar, Size, CV_8UC3};
use opencv::prelude::*;
use opencv::videoio::VideoWriter;
use safed::events::{open, PacketData};

/// Writes the first `max_frames` 80x60 BGR frames of `recording` to `path`; returns how many.
pub fn write_frames_as_video(recording: &Path, path: &Path, max_frames: usize) -> usize {
    let mut src = open(recording.to_str().unwrap()).unwrap();
    let fourcc = VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
    let mut writer = VideoWriter::new(path.to_str().unwrap(), fourcc, 30.0, Size::new(80, 60), true).unwrap();
    assert!(writer.is_opened().unwrap());
    let mut written = 0;
    while let Some(p) = src.next_packet().unwrap() {
        if let (PacketData::Frame(f), true) = (p.data, written < max_frames) {
            let mut mat = Mat::new_rows_cols_with_default(60, 80, CV_8UC3, Scalar::all(0.0)).unwrap();
            mat.data_bytes_mut().unwrap().copy_from_slice(&f.pixels);
            writer.write(&mat).unwrap();
            written += 1;
        }
    }
    writer.release().unwrap();
    written
}
