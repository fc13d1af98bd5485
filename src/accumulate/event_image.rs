//! The event image the SAFE datasets are made of (shared/FORMATS.md): a white canvas the size
//! of the sensor; each event paints its pixel, ON red = BGR(30,30,220), OFF blue =
//! BGR(200,30,30); a later event overwrites an earlier one at the same pixel.

use image::{Rgb, RgbImage};

use crate::events::Event;

/// ON (brighter) colour, as RGB (the datasets write BGR(30,30,220) with OpenCV).
pub const ON_RGB: [u8; 3] = [220, 30, 30];
/// OFF (darker) colour, as RGB (BGR(200,30,30)).
pub const OFF_RGB: [u8; 3] = [30, 30, 200];
const BACKGROUND: [u8; 3] = [255, 255, 255];

/// A reusable canvas: [`EventImage::clear`] then [`EventImage::paint`] per window, so the
/// streaming path allocates nothing per window.
#[derive(Debug, Clone)]
pub struct EventImage {
    image: RgbImage,
    painted: u64,
    outside: u64,
}

impl EventImage {
    pub fn new(width: u32, height: u32) -> Self {
        EventImage { image: RgbImage::from_pixel(width, height, Rgb(BACKGROUND)), painted: 0, outside: 0 }
    }

    pub fn clear(&mut self) {
        for px in self.image.pixels_mut() {
            *px = Rgb(BACKGROUND);
        }
        self.painted = 0;
        self.outside = 0;
    }

    /// Paints `events` in order. Events outside the canvas are counted, not painted (a
    /// mis-declared sensor size must not crash a daemon).
    pub fn paint(&mut self, events: &[Event]) {
        let (w, h) = self.image.dimensions();
        for e in events {
            if (e.x as u32) < w && (e.y as u32) < h {
                self.image.put_pixel(e.x as u32, e.y as u32, Rgb(if e.p { ON_RGB } else { OFF_RGB }));
                self.painted += 1;
            } else {
                self.outside += 1;
            }
        }
    }

    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    pub fn into_image(self) -> RgbImage {
        self.image
    }

    /// Events painted since the last clear.
    pub fn painted(&self) -> u64 {
        self.painted
    }

    /// Events dropped since the last clear because they lay outside the canvas.
    pub fn outside(&self) -> u64 {
        self.outside
    }
}

/// One window's event image on a fresh canvas.
pub fn render(events: &[Event], width: u32, height: u32) -> RgbImage {
    let mut img = EventImage::new(width, height);
    img.paint(events);
    img.into_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64, x: u16, y: u16, p: bool) -> Event {
        Event { t, x, y, p }
    }

    #[test]
    fn later_events_overwrite_and_outside_ones_are_counted() {
        let mut img = EventImage::new(4, 3);
        img.paint(&[ev(0, 1, 1, true), ev(1, 1, 1, false), ev(2, 3, 2, true), ev(3, 4, 0, true)]);
        assert_eq!(img.image().get_pixel(1, 1).0, OFF_RGB);
        assert_eq!(img.image().get_pixel(3, 2).0, ON_RGB);
        assert_eq!(img.image().get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!((img.painted(), img.outside()), (3, 1));
        img.clear();
        assert_eq!(img.image().get_pixel(1, 1).0, [255, 255, 255]);
        assert_eq!((img.painted(), img.outside()), (0, 0));
    }
}
