//! Small PNG charts without a plotting stack: training curves, confusion matrices (safe-train)
//! and replay latency (safed). They carry no text; the numbers are beside them (metrics.jsonl,
//! confusion.csv, the replay report).

use std::path::Path;

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);

/// The confusion matrix, row-normalised: cell (true, predicted), darker = more; the
/// diagonal in green, errors in red.
pub fn confusion_png(confusion: &[Vec<usize>], path: &Path) -> Result<()> {
    let n = confusion.len().max(1) as u32;
    let cell = (480 / n).clamp(4, 48);
    let mut img = RgbImage::from_pixel(n * cell + 1, n * cell + 1, WHITE);
    for (r, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        for (c, &v) in row.iter().enumerate() {
            let a = v as f32 / total;
            let base = if r == c { [30.0, 150.0, 60.0] } else { [200.0, 40.0, 40.0] };
            let px = Rgb(base.map(|b: f32| (255.0 + (b - 255.0) * a).round() as u8));
            for y in 0..cell - 1 {
                for x in 0..cell - 1 {
                    img.put_pixel(c as u32 * cell + 1 + x, r as u32 * cell + 1 + y, px);
                }
            }
        }
    }
    img.save(path).with_context(|| format!("writing {}", path.display()))
}

/// Line charts side by side, one panel per group of series; each series is (values, colour),
/// x = index. Each panel is scaled to its own range (the range is in the metrics file).
pub fn curves_png(panels: &[Vec<(Vec<f64>, [u8; 3])>], path: &Path) -> Result<()> {
    let (pw, ph, margin) = (420u32, 300u32, 16u32);
    let mut img = RgbImage::from_pixel(panels.len().max(1) as u32 * (pw + margin) + margin, ph + 2 * margin, WHITE);
    for (i, series) in panels.iter().enumerate() {
        let x0 = margin + i as u32 * (pw + margin);
        let (lo, hi) = series
            .iter()
            .flat_map(|(v, _)| v.iter().copied().filter(|x| x.is_finite()))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
        for k in 0..=4 {
            let y = margin + k * (ph - 1) / 4;
            (x0..x0 + pw).for_each(|x| img.put_pixel(x, y, GRID));
        }
        for y in margin..margin + ph {
            img.put_pixel(x0, y, AXIS);
        }
        (x0..x0 + pw).for_each(|x| img.put_pixel(x, margin + ph - 1, AXIS));
        for (values, colour) in series {
            let n = values.len();
            let point = |j: usize| {
                let x = x0 as f64 + if n > 1 { j as f64 * (pw - 1) as f64 / (n - 1) as f64 } else { 0.0 };
                let y = (margin + ph - 1) as f64 - (values[j] - lo) / (hi - lo) * (ph - 1) as f64;
                (x, y)
            };
            for j in 1..n {
                line(&mut img, point(j - 1), point(j), Rgb(*colour));
            }
        }
    }
    img.save(path).with_context(|| format!("writing {}", path.display()))
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let (px, py) = (x.round() as i64 + dx, y.round() as i64 + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, colour);
            }
        }
    }
}
