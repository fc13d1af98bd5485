//! A voxel grid: B time bins per pixel, each event's polarity (+1 ON, -1 OFF) split between
//! the two nearest bins by its normalised time (Zhu et al. 2019, as E2VID and EST use it).

use crate::events::Event;

#[derive(Debug, Clone, PartialEq)]
pub struct VoxelGrid {
    pub bins: usize,
    pub width: usize,
    pub height: usize,
    /// [bins, height, width], row-major.
    pub data: Vec<f32>,
}

impl VoxelGrid {
    /// The grid of one window of time-ordered events. Events outside the sensor are skipped.
    pub fn from_events(events: &[Event], bins: usize, width: usize, height: usize) -> Self {
        let bins = bins.max(1);
        let mut data = vec![0.0f32; bins * width * height];
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            let span = (last.t - first.t).max(1) as f32;
            let plane = width * height;
            for e in events {
                let (x, y) = (e.x as usize, e.y as usize);
                if x >= width || y >= height {
                    continue;
                }
                let tn = (bins - 1) as f32 * ((e.t - first.t) as f32 / span).clamp(0.0, 1.0);
                let lower = tn.floor() as usize;
                let frac = tn - lower as f32;
                let v = if e.p { 1.0 } else { -1.0 };
                let at = y * width + x;
                data[lower * plane + at] += v * (1.0 - frac);
                if lower + 1 < bins {
                    data[(lower + 1) * plane + at] += v * frac;
                }
            }
        }
        VoxelGrid { bins, width, height, data }
    }

    /// A 3-bin grid as an image, bin k in colour channel k (early, middle, late): 128 where
    /// nothing happened, 255 / 0 from one net ON / OFF event on (saturating, as the event image
    /// does: scaling by the grid's largest count instead let a few busy pixels fade every edge).
    /// This is how the voxel representation enters CLIP's 3-channel encoder; `None` unless
    /// bins == 3.
    pub fn to_rgb(&self) -> Option<image::RgbImage> {
        if self.bins != 3 {
            return None;
        }
        let plane = self.width * self.height;
        let level = |v: f32| (127.5 + 127.5 * v.clamp(-1.0, 1.0)).round() as u8;
        Some(image::RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let at = y as usize * self.width + x as usize;
            image::Rgb([level(self.data[at]), level(self.data[plane + at]), level(self.data[2 * plane + at])])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polarity_splits_between_neighbouring_bins() {
        let ev = |t, p| Event { t, x: 1, y: 0, p };
        let g = VoxelGrid::from_events(&[ev(0, true), ev(50, false), ev(100, true)], 3, 2, 1);
        // t=0 -> bin 0; t=50 -> bin 1 exactly (-1); t=100 -> bin 2.
        assert_eq!(g.data, [0.0, 1.0, 0.0, -1.0, 0.0, 1.0]);
        let total: f32 = VoxelGrid::from_events(&[ev(0, true), ev(30, true), ev(100, true)], 4, 2, 1).data.iter().sum();
        assert!((total - 3.0).abs() < 1e-6, "each event contributes its whole polarity");
        // Bins become channels: the pixel saw ON early, OFF in the middle, ON late.
        let img = g.to_rgb().unwrap();
        assert_eq!(img.get_pixel(1, 0).0, [255, 0, 255]);
        // Half an event (between two bins) is half the swing; more than one saturates.
        let ev2 = |t, p| Event { t, x: 0, y: 0, p };
        let g = VoxelGrid::from_events(&[ev2(0, true), ev2(0, true), ev2(25, true), ev2(100, false)], 3, 1, 1);
        assert_eq!(g.data, [2.5, 0.5, -1.0]);
        assert_eq!(g.to_rgb().unwrap().get_pixel(0, 0).0, [255, 191, 0]);
        assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128], "no events: the middle level");
        assert!(VoxelGrid::from_events(&[ev(0, true)], 4, 2, 1).to_rgb().is_none());
    }
}
