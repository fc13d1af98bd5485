//! `safed bench-view`: what the live view's JPEGs cost, per image, with the encoder safed uses
//! (jpeg-encoder, SIMD) beside the `image` crate's, on the same composites in the same run: a
//! recording's frames and event images at the sensor's size, and scaled to an HD sensor's.

use std::time::Instant;

use anyhow::Context;
use image::RgbImage;

use crate::accumulate::clip::{read_clip, FrameWindow};
use crate::accumulate::Representation;
use crate::events;
use crate::view::compose;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A recording with frames (default: the bundled DAVIS346 sample).
    pub recording: Option<String>,
    /// Passes over the images; the median pass is reported, and the spread of the ratio.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut source = match &args.recording {
        Some(r) => events::open(r)?,
        None => events::open_sample()?,
    };
    let name = source.input_name().to_string();
    let clip = read_clip(source.as_mut()).with_context(|| name.clone())?;
    let images = clip.images(FrameWindow::Interval, Representation::Image, 33_333, &name)?;
    let top = [("a label".to_string(), 0.72), ("another".to_string(), 0.2), ("a third".to_string(), 0.08)];
    let sensor: Vec<RgbImage> = images
        .events
        .iter()
        .zip(&images.rgb)
        .map(|(e, r)| compose::compose(e, r, "cam0", Some(&top)))
        .collect::<Result<_, _>>()?;
    let hd = |img: &RgbImage| image::imageops::resize(img, 1280, 720, image::imageops::FilterType::Triangle);
    let hd: Vec<RgbImage> = images
        .events
        .iter()
        .zip(&images.rgb)
        .map(|(e, r)| compose::compose(&hd(e), &hd(r), "cam0", Some(&top)))
        .collect::<Result<_, _>>()?;
    println!("{name}: {} composites; CPU: {}", sensor.len(), cpu_model());
    println!("{:<22} {:>14} {:>14} {:>10} {:>12}", "images", "jpeg-encoder", "image crate", "ratio", "KB / image");
    for (label, set) in [("sensor size", &sensor), ("HD (2x 1280x720)", &hd)] {
        let Some(first) = set.first() else { continue };
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.rounds.max(1) {
            let a = time_per_image(set, |i| compose::jpeg(i, compose::QUALITY).map(|b| b.len()).unwrap_or(0));
            let b =
                time_per_image(set, |i| compose::jpeg_with_image(i, compose::QUALITY).map(|b| b.len()).unwrap_or(0));
            ratios.push(b / a);
            ours.push(a);
            theirs.push(b);
        }
        let size = compose::jpeg(first, compose::QUALITY)?.len() as f64 / 1024.0;
        ratios.sort_by(f64::total_cmp);
        println!(
            "{:<22} {:>11.2} ms {:>11.2} ms {:>5.2}x ({:.2}-{:.2}) {:>6.1}  ({}x{})",
            label,
            median(&mut ours) * 1e3,
            median(&mut theirs) * 1e3,
            median(&mut ratios.clone()),
            ratios[0],
            ratios[ratios.len() - 1],
            size,
            first.width(),
            first.height()
        );
    }
    Ok(())
}

/// Seconds per image, encoding every image of `set` once.
fn time_per_image(set: &[RgbImage], encode: impl Fn(&RgbImage) -> usize) -> f64 {
    let t0 = Instant::now();
    let bytes: usize = set.iter().map(&encode).sum();
    std::hint::black_box(bytes);
    t0.elapsed().as_secs_f64() / set.len().max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
