//! What a viewer sees of one recognition: the event image and the RGB frame side by side, the
//! top labels with probability bars drawn under them (so a plain MJPEG player shows them too),
//! encoded as JPEG by jpeg-encoder. Runs on the view's encoder thread, never on the recognition
//! path.

use image::RgbImage;
use opencv::core::{Mat, Point, Rect, Scalar, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

/// Height of the label band under the images: 3 rows.
const ROW: i32 = 24;
const BAND: i32 = 3 * ROW + 10;
/// Images shorter than this are enlarged by a whole factor.
const MIN_HEIGHT: u32 = 240;
/// JPEG quality: labels stay crisp, a 346x260 pair is ~25 KB.
pub const QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("drawing the labels: {0}")]
    Draw(#[from] opencv::Error),
    #[error("encoding the JPEG: {0}")]
    Jpeg(#[from] jpeg_encoder::EncodingError),
}

/// The two images side by side (the RGB frame scaled to the event image's height), a caption
/// in the corner and, given `labels` (label, probability), those in a band below.
pub fn compose(
    events: &RgbImage,
    rgb: &RgbImage,
    caption: &str,
    labels: Option<&[(String, f32)]>,
) -> Result<RgbImage, ComposeError> {
    // A small sensor (a demo's 80x60, a DVS128) is enlarged by whole pixels, to be seen.
    let k = MIN_HEIGHT.div_ceil(events.height().max(1)).max(1);
    let enlarged;
    let events = if k > 1 {
        enlarged = image::imageops::resize(
            events,
            events.width() * k,
            events.height() * k,
            image::imageops::FilterType::Nearest,
        );
        &enlarged
    } else {
        events
    };
    let h = events.height().max(1);
    let rgb = if rgb.height() == h || rgb.height() == 0 {
        std::borrow::Cow::Borrowed(rgb)
    } else {
        let w = (rgb.width() as u64 * h as u64 / rgb.height() as u64).max(1) as u32;
        let filter =
            if rgb.height() < h { image::imageops::FilterType::Nearest } else { image::imageops::FilterType::Triangle };
        std::borrow::Cow::Owned(image::imageops::resize(rgb, w, h, filter))
    };
    let (we, wr) = (events.width(), if rgb.height() == 0 { 0 } else { rgb.width() });
    let band = if labels.is_some() { BAND } else { 0 };
    let (width, height) = ((we + wr).max(240) as i32, h as i32 + band);
    let mut mat = Mat::new_rows_cols_with_default(height, width, CV_8UC3, Scalar::all(24.0))?;
    {
        let data = mat.data_bytes_mut()?;
        let stride = width as usize * 3;
        for y in 0..h as usize {
            let row = &mut data[y * stride..(y + 1) * stride];
            let e = &events.as_raw()[y * we as usize * 3..(y + 1) * we as usize * 3];
            row[..e.len()].copy_from_slice(e);
            if wr > 0 {
                let r = &rgb.as_raw()[y * wr as usize * 3..(y + 1) * wr as usize * 3];
                row[e.len()..e.len() + r.len()].copy_from_slice(r);
            }
        }
    }
    draw_text(&mut mat, caption, Point::new(6, 16), 0.45, Scalar::new(255.0, 255.0, 255.0, 0.0))?;
    let band_top = h as i32 + 6;
    let bar_max = (width - 200).max(40);
    for (i, (label, p)) in labels.unwrap_or_default().iter().take(3).enumerate() {
        let y = band_top + i as i32 * ROW;
        let grey = Scalar::new(60.0, 60.0, 60.0, 0.0);
        imgproc::rectangle(&mut mat, Rect::new(190, y + 4, bar_max, ROW - 8), grey, -1, imgproc::LINE_8, 0)?;
        let fill = (bar_max as f32 * p.clamp(0.0, 1.0)).round() as i32;
        let colour = if i == 0 { Scalar::new(80.0, 200.0, 120.0, 0.0) } else { Scalar::new(110.0, 150.0, 220.0, 0.0) };
        if fill > 0 {
            imgproc::rectangle(&mut mat, Rect::new(190, y + 4, fill, ROW - 8), colour, -1, imgproc::LINE_8, 0)?;
        }
        let text = format!("{} {:.0}%", shorten(label, 18), p * 100.0);
        draw_text(&mut mat, &text, Point::new(6, y + ROW - 7), 0.5, Scalar::new(235.0, 235.0, 235.0, 0.0))?;
    }
    let bytes = mat.data_bytes()?.to_vec();
    Ok(RgbImage::from_raw(width as u32, height as u32, bytes).unwrap_or_default())
}

fn draw_text(mat: &mut Mat, text: &str, at: Point, scale: f64, colour: Scalar) -> Result<(), opencv::Error> {
    // OpenCV's Hershey fonts draw ASCII only.
    let ascii: String = text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    let font = imgproc::FONT_HERSHEY_SIMPLEX;
    // On a dark box, so it reads on a white event image too.
    let mut baseline = 0;
    let size = imgproc::get_text_size(&ascii, font, scale, 1, &mut baseline)?;
    let dark = Scalar::new(24.0, 24.0, 24.0, 0.0);
    let r = Rect::new(at.x - 3, at.y - size.height - 3, size.width + 6, size.height + baseline + 5);
    imgproc::rectangle(mat, r, dark, -1, imgproc::LINE_8, 0)?;
    imgproc::put_text(mat, &ascii, at, font, scale, colour, 1, imgproc::LINE_AA, false)
}

fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        label.chars().take(max - 1).chain(std::iter::once('~')).collect()
    }
}

/// JPEG bytes of `img` (jpeg-encoder; 4:2:0 sampling, as browsers and players expect).
pub fn jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ComposeError> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb)?;
    Ok(out)
}

/// The same image through the `image` crate's encoder (the benchmark's peer).
pub fn jpeg_with_image(img: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(img)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_composite_holds_both_images_and_decodes_as_a_jpeg() {
        let events = RgbImage::from_pixel(346, 260, image::Rgb([255, 0, 0]));
        let rgb = RgbImage::from_pixel(640, 480, image::Rgb([0, 0, 255]));
        let top = vec![("clapping".to_string(), 0.9), ("waving".to_string(), 0.07)];
        let c = compose(&events, &rgb, "cam0", Some(&top)).unwrap();
        // 640x480 scaled to 260 high is 346 wide.
        assert_eq!((c.width(), c.height()), (346 + 346, 260 + BAND as u32));
        assert_eq!(c.get_pixel(200, 200).0, [255, 0, 0]);
        assert_eq!(c.get_pixel(500, 200).0, [0, 0, 255]);
        let bytes = jpeg(&c, QUALITY).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (c.width(), c.height()));
        let plain = compose(&events, &rgb, "cam0", None).unwrap();
        assert_eq!(plain.height(), 260, "no band without labels");
    }
}
