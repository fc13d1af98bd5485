//! Camera and APS frames as RGB images (the RGB branch's input). DAVIS APS frames are gray:
//! they become three equal channels, as the datasets' PNGs of them are.

use image::RgbImage;

use crate::events::{Frame, PixelFormat};

/// The frame as an RGB image, or None when its pixel buffer does not match its size.
pub fn frame_to_rgb(frame: &Frame) -> Option<RgbImage> {
    let (w, h) = (frame.width as u32, frame.height as u32);
    let n = w as usize * h as usize;
    let ch = frame.format.channels();
    if frame.pixels.len() != n * ch {
        return None;
    }
    let mut rgb = Vec::with_capacity(n * 3);
    match frame.format {
        PixelFormat::Gray => frame.pixels.iter().for_each(|&v| rgb.extend_from_slice(&[v, v, v])),
        PixelFormat::Bgr | PixelFormat::Bgra => {
            frame.pixels.chunks_exact(ch).for_each(|px| rgb.extend_from_slice(&[px[2], px[1], px[0]]))
        }
    }
    RgbImage::from_raw(w, h, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(format: PixelFormat, pixels: Vec<u8>) -> Frame {
        Frame { t: 0, exposure_start: 0, exposure_end: 0, width: 2, height: 1, position: (0, 0), format, pixels }
    }

    #[test]
    fn gray_and_bgr_become_rgb() {
        let g = frame_to_rgb(&frame(PixelFormat::Gray, vec![7, 9])).unwrap();
        assert_eq!(g.into_raw(), [7, 7, 7, 9, 9, 9]);
        let c = frame_to_rgb(&frame(PixelFormat::Bgr, vec![1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(c.into_raw(), [3, 2, 1, 6, 5, 4]);
        assert!(frame_to_rgb(&frame(PixelFormat::Bgr, vec![1, 2])).is_none());
    }
}
