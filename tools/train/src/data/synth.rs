//! A synthetic RGB + event dataset: card-like symbols moving over a textured background, RGB
//! frames rendered at the frame rate, and events simulated from log-intensity changes between
//! finely spaced renderings, with per-pixel thresholds and background noise (the ESIM / v2e
//! model). Written in the authors' folder layout (`<split>/<class>/<name>/<name>_aps|_dvs`)
//! plus one AEDAT4 recording (events + frames) per sample.
//!
//! The symbols are left-right symmetric because the authors' augmentation flips images.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safed::accumulate::{render, window};
use safed::events::aedat4::writer::{Aedat4Writer, DeclKind, StreamDecl};
use safed::events::aedat4::Compression;
use safed::events::{Event, Frame, PixelFormat};

pub const SHAPES: [&str; 8] = ["circle", "square", "triangle", "cross", "diamond", "ring", "bar", "hourglass"];

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub classes: usize,
    pub samples_per_class: usize,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// RGB frames per sample.
    pub frames: usize,
    /// Frame interval, µs.
    pub interval_us: i64,
    /// Event-simulation steps per frame interval.
    pub substeps: usize,
    /// Fraction of each class held out as the test split.
    pub test_fraction: f64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            classes: 6,
            samples_per_class: 60,
            seed: 0,
            width: 80,
            height: 60,
            frames: 8,
            interval_us: 33_333,
            substeps: 12,
            test_fraction: 0.2,
        }
    }
}

/// Whether (u, v), relative to the centre in units of the radius, lies in `shape`.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    let (au, av) = (u.abs(), v.abs());
    match shape {
        0 => u * u + v * v <= 1.0,
        1 => au <= 0.8 && av <= 0.8,
        2 => (-1.0..=0.8).contains(&v) && au <= (v + 1.0) * 0.55,
        3 => (au <= 0.3 && av <= 1.0) || (av <= 0.3 && au <= 1.0),
        4 => au + av <= 1.0,
        5 => (0.55..=1.0).contains(&(u * u + v * v).sqrt()),
        6 => au <= 1.0 && av <= 0.3,
        _ => av <= 1.0 && au <= 0.8 && au <= av + 0.15,
    }
}

/// One clip's scene: what moves, and how.
struct Scene {
    shape: usize,
    radius: f32,
    start: (f32, f32),
    velocity: (f32, f32), // pixels per µs
    colour: [f32; 3],
    background: [f32; 3],
    texture: (f32, f32, f32), // amplitude, frequency x, frequency y
}

impl Scene {
    fn random(shape: usize, o: &SynthOptions, rng: &mut ChaCha8Rng) -> Scene {
        let (w, h) = (o.width as f32, o.height as f32);
        let radius = h * rng.random_range(0.3..0.4);
        let duration = (o.frames as i64 * o.interval_us) as f32;
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let speed = w * rng.random_range(0.15..0.35) / duration;
        let velocity = (angle.cos() * speed, angle.sin() * speed);
        // Start so that the middle of the clip is near the centre.
        let mid = (w / 2.0 + rng.random_range(-0.15..0.15) * w, h / 2.0 + rng.random_range(-0.15..0.15) * h);
        let start = (mid.0 - velocity.0 * duration / 2.0, mid.1 - velocity.1 * duration / 2.0);
        let dark_bg = rng.random_bool(0.5);
        let level = |rng: &mut ChaCha8Rng, lo: f32, hi: f32| rng.random_range(lo..hi);
        let bg = if dark_bg { level(rng, 0.1, 0.3) } else { level(rng, 0.65, 0.9) };
        let tint = |rng: &mut ChaCha8Rng, base: f32| (base + rng.random_range(-0.08..0.08)).clamp(0.02, 0.98);
        let background = [tint(rng, bg), tint(rng, bg), tint(rng, bg)];
        // The symbol contrasts with the background in brightness, in a random hue.
        let fg = if dark_bg { level(rng, 0.6, 0.95) } else { level(rng, 0.05, 0.35) };
        let hue = [rng.random_range(0.5..1.0f32), rng.random_range(0.5..1.0), rng.random_range(0.5..1.0)];
        let peak = hue.iter().cloned().fold(0.0, f32::max);
        let colour = hue.map(|c| (fg * c / peak).clamp(0.02, 0.98));
        let texture = (rng.random_range(0.02..0.06), rng.random_range(0.1..0.4), rng.random_range(0.1..0.4));
        Scene { shape, radius, start, velocity, colour, background, texture }
    }

    /// Linear RGB in [0, 1] at time t (µs), 2x2 supersampled so edges move smoothly.
    fn render(&self, t: f32, w: u32, h: u32, out: &mut Vec<[f32; 3]>) {
        out.clear();
        let (cx, cy) = (self.start.0 + self.velocity.0 * t, self.start.1 + self.velocity.1 * t);
        for y in 0..h {
            for x in 0..w {
                let (a, fx, fy) = self.texture;
                let shade = 1.0 + a * ((x as f32 * fx).sin() + (y as f32 * fy).cos());
                let mut cover = 0.0;
                for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                    let (u, v) = ((x as f32 + sx - cx) / self.radius, (y as f32 + sy - cy) / self.radius);
                    if inside(self.shape, u, v) {
                        cover += 0.25;
                    }
                }
                out.push(std::array::from_fn(|c| {
                    (self.background[c] * shade * (1.0 - cover) + self.colour[c] * cover).clamp(0.0, 1.0)
                }));
            }
        }
    }
}

fn luminance(px: &[f32; 3]) -> f32 {
    0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]
}

/// Events from log-intensity changes (ESIM): each pixel keeps a reference log level and fires
/// one event per threshold crossed, timed by linear interpolation within the step.
struct EventSim {
    reference: Vec<f32>,
    threshold_on: Vec<f32>,
    threshold_off: Vec<f32>,
    last: Vec<f32>,
    noise_per_step: f64,
}

impl EventSim {
    fn new(first: &[[f32; 3]], rng: &mut ChaCha8Rng, noise_per_step: f64) -> Self {
        let log: Vec<f32> = first.iter().map(|p| (luminance(p) + 0.02).ln()).collect();
        let spread = Normal::new(0.22f32, 0.03).expect("valid normal");
        let mut draw = || (0..log.len()).map(|_| spread.sample(rng).clamp(0.1, 0.4)).collect::<Vec<f32>>();
        let (threshold_on, threshold_off) = (draw(), draw());
        EventSim { reference: log.clone(), threshold_on, threshold_off, last: log, noise_per_step }
    }

    fn step(&mut self, frame: &[[f32; 3]], t0: i64, t1: i64, width: u32, rng: &mut ChaCha8Rng, out: &mut Vec<Event>) {
        let first = out.len();
        for (i, px) in frame.iter().enumerate() {
            let now = (luminance(px) + 0.02).ln();
            let before = self.last[i];
            self.last[i] = now;
            let (x, y) = ((i as u32 % width) as u16, (i as u32 / width) as u16);
            loop {
                let diff = now - self.reference[i];
                let (p, c) = if diff > 0.0 { (true, self.threshold_on[i]) } else { (false, self.threshold_off[i]) };
                if diff.abs() < c {
                    break;
                }
                self.reference[i] += if p { c } else { -c };
                let span = now - before;
                let frac = if span.abs() > 1e-6 { ((self.reference[i] - before) / span).clamp(0.0, 1.0) } else { 1.0 };
                out.push(Event { t: t0 + ((t1 - t0) as f32 * frac) as i64, x, y, p });
            }
            if rng.random_bool(self.noise_per_step) {
                out.push(Event { t: rng.random_range(t0..t1.max(t0 + 1)), x, y, p: rng.random_bool(0.5) });
            }
        }
        out[first..].sort_by_key(|e| e.t);
    }
}

fn to_rgb8(px: &[[f32; 3]], w: u32, h: u32, noise: &Normal<f32>, rng: &mut ChaCha8Rng) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let p = px[(y * w + x) as usize];
        Rgb(p.map(|c| ((c + noise.sample(rng)).clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// One synthetic clip: RGB frames with their times, and the events.
pub struct Clip {
    pub frames: Vec<(i64, RgbImage)>,
    pub events: Vec<Event>,
}

pub fn clip(shape: usize, o: &SynthOptions, rng: &mut ChaCha8Rng) -> Clip {
    let scene = Scene::random(shape, o, rng);
    let (w, h) = (o.width, o.height);
    let mut buf = Vec::new();
    scene.render(0.0, w, h, &mut buf);
    let step_us = o.interval_us / o.substeps as i64;
    // ~0.3 noise events per pixel per second.
    let mut sim = EventSim::new(&buf, rng, 0.3 * step_us as f64 * 1e-6);
    let pixel_noise = Normal::new(0.0f32, 0.01).expect("valid normal");
    let (mut events, mut frames) = (Vec::new(), Vec::new());
    for i in 0..o.frames {
        for s in 0..o.substeps {
            let (t0, t1) =
                (i as i64 * o.interval_us + s as i64 * step_us, i as i64 * o.interval_us + (s as i64 + 1) * step_us);
            scene.render(t1 as f32, w, h, &mut buf);
            sim.step(&buf, t0, t1, w, rng, &mut events);
        }
        // The frame closes its interval: its event window is the interval before it.
        let t = (i as i64 + 1) * o.interval_us;
        scene.render(t as f32, w, h, &mut buf);
        frames.push((t, to_rgb8(&buf, w, h, &pixel_noise, rng)));
    }
    Clip { frames, events }
}

impl Clip {
    /// The event image of each frame: the events since the previous frame (FrameInterval).
    pub fn event_images(&self, width: u32, height: u32) -> Vec<RgbImage> {
        let times: Vec<i64> = self.frames.iter().map(|(t, _)| *t).collect();
        window::frame_interval_windows(&times)
            .into_iter()
            .map(|(s, e)| render(window::slice(&self.events, s, e), width, height))
            .collect()
    }

    pub fn write_aedat4(&self, path: &Path, width: u32, height: u32) -> Result<()> {
        let size = (width as u16, height as u16);
        let streams = [
            StreamDecl {
                id: 0,
                name: "events".into(),
                kind: DeclKind::Events,
                size,
                source: "safe-train-synth".into(),
            },
            StreamDecl {
                id: 1,
                name: "frames".into(),
                kind: DeclKind::Frames,
                size,
                source: "safe-train-synth".into(),
            },
        ];
        let file = BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
        let mut wr = Aedat4Writer::new(file, Compression::Lz4, &streams, true)?;
        let times: Vec<i64> = self.frames.iter().map(|(t, _)| *t).collect();
        for ((s, e), (t, img)) in window::frame_interval_windows(&times).into_iter().zip(&self.frames) {
            wr.write_events(0, window::slice(&self.events, s, e))?;
            let pixels = img.pixels().flat_map(|p| [p[2], p[1], p[0]]).collect();
            let frame = Frame {
                t: *t,
                exposure_start: *t - 5_000,
                exposure_end: *t,
                width: size.0,
                height: size.1,
                position: (0, 0),
                format: PixelFormat::Bgr,
                pixels,
            };
            wr.write_frame(1, &frame)?;
        }
        wr.into_inner()?;
        Ok(())
    }
}

/// How a synthetic dataset is laid out on disk: each of the layouts `safed::dataset` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthLayout {
    /// SAFE's `<split>/<class>/<name>/<name>_aps|_dvs` folders, with each sample's AEDAT4.
    Folders,
    /// HARDVS: `<split>_label.txt`; every other sample a frame folder, the rest `.npz` events
    /// with an `_aps` folder beside them.
    Hardvs,
    /// DVS128 Gesture: AEDAT 3.1 recordings (one per "user", one labelled segment per class),
    /// `_labels.csv`, `trials_to_<split>.txt`, `gesture_mapping.csv`. Event-only.
    DvsGesture,
    /// Per-sample recordings, PokerEvent's raw layout: `<split>/<class>/<name>.aedat4` (events
    /// and frames), nothing else.
    Recordings,
}

impl SynthLayout {
    pub fn parse(s: &str) -> Option<SynthLayout> {
        match s {
            "folders" => Some(SynthLayout::Folders),
            "hardvs" => Some(SynthLayout::Hardvs),
            "dvs-gesture" => Some(SynthLayout::DvsGesture),
            "recordings" => Some(SynthLayout::Recordings),
            _ => None,
        }
    }
}

fn sample_rng(o: &SynthOptions, c: usize, k: usize) -> ChaCha8Rng {
    // One RNG per sample: any sample can be regenerated alone.
    ChaCha8Rng::seed_from_u64(o.seed ^ ((c as u64) << 32 | k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Writes the whole dataset under `out` in `layout`; returns the number of samples written.
pub fn write_dataset_as(out: &Path, o: &SynthOptions, layout: SynthLayout) -> Result<usize> {
    match layout {
        SynthLayout::Folders => write_folders(out, o, false),
        SynthLayout::Recordings => write_folders(out, o, true),
        SynthLayout::Hardvs => write_hardvs(out, o),
        SynthLayout::DvsGesture => write_dvs_gesture(out, o),
    }
}

fn check(o: &SynthOptions) -> Result<usize> {
    ensure!((1..=SHAPES.len()).contains(&o.classes), "--classes must be 1..={} (one symbol per class)", SHAPES.len());
    ensure!(o.samples_per_class >= 2, "--samples-per-class must be at least 2 (one for each split)");
    ensure!(o.frames >= 1 && o.substeps >= 1 && o.interval_us >= o.substeps as i64, "bad frame timing");
    Ok(((o.samples_per_class as f64 * o.test_fraction).round() as usize).clamp(1, o.samples_per_class - 1))
}

fn split_of(o: &SynthOptions, k: usize, test_n: usize) -> &'static str {
    if k < o.samples_per_class - test_n {
        "train"
    } else {
        "test"
    }
}

fn write_hardvs(out: &Path, o: &SynthOptions) -> Result<usize> {
    let test_n = check(o)?;
    let labels: Vec<&str> = SHAPES[..o.classes].to_vec();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("labels.txt"), labels.join("\n") + "\n")?;
    let mut lists = [String::new(), String::new()];
    for (c, label) in labels.iter().enumerate() {
        for k in 0..o.samples_per_class {
            let split = split_of(o, k, test_n);
            let name = format!("{label}_{k:04}");
            let rel = format!("{split}/{label}/{name}");
            let dir = out.join(&rel);
            let clip = clip(c, o, &mut sample_rng(o, c, k));
            let listed = if k % 2 == 0 {
                write_sample(&dir, &name, &clip, o)?;
                rel
            } else {
                let aps = dir.join(format!("{name}_aps"));
                std::fs::create_dir_all(&aps)?;
                for (i, (_, rgb)) in clip.frames.iter().enumerate() {
                    rgb.save(aps.join(format!("{i:08}.png"))).with_context(|| format!("writing {}", aps.display()))?;
                }
                let npz = out.join(format!("{rel}.npz"));
                safed::events::npz::write(&npz, &clip.events).with_context(|| format!("writing {}", npz.display()))?;
                format!("{rel}.npz")
            };
            lists[(split == "test") as usize].push_str(&format!("{listed} {} {c}\n", o.frames));
        }
    }
    std::fs::write(out.join("train_label.txt"), &lists[0])?;
    std::fs::write(out.join("test_label.txt"), &lists[1])?;
    Ok(o.classes * o.samples_per_class)
}

fn write_dvs_gesture(out: &Path, o: &SynthOptions) -> Result<usize> {
    let test_n = check(o)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut mapping = String::from("action,label\n");
    SHAPES[..o.classes].iter().enumerate().for_each(|(c, s)| mapping.push_str(&format!("{s},{}\n", c + 1)));
    std::fs::write(out.join("gesture_mapping.csv"), mapping)?;
    let span = o.frames as i64 * o.interval_us;
    let mut trials = [String::new(), String::new()];
    for user in 0..o.samples_per_class {
        let stem = format!("user{:02}_synthetic", user + 1);
        let mut events = Vec::new();
        let mut csv = String::from("class,startTime_usec,endTime_usec\n");
        for c in 0..o.classes {
            // Segments 200 ms apart, after 1 s of nothing but noise-free silence.
            let offset = 1_000_000 + c as i64 * (span + 200_000);
            let clip = clip(c, o, &mut sample_rng(o, c, user));
            events.extend(clip.events.iter().map(|e| Event { t: e.t + offset, ..*e }));
            csv.push_str(&format!("{},{},{}\n", c + 1, offset, offset + span));
        }
        let file = out.join(format!("{stem}.aedat"));
        safed::events::aedat31::write_polarity(&file, "DVS128", &events)
            .with_context(|| format!("writing {}", file.display()))?;
        std::fs::write(out.join(format!("{stem}_labels.csv")), csv)?;
        trials[(split_of(o, user, test_n) == "test") as usize].push_str(&format!("{stem}.aedat\n"));
    }
    std::fs::write(out.join("trials_to_train.txt"), &trials[0])?;
    std::fs::write(out.join("trials_to_test.txt"), &trials[1])?;
    Ok(o.classes * o.samples_per_class)
}

/// Writes the whole dataset under `out` (SAFE's folders); returns the number of samples written.
pub fn write_dataset(out: &Path, o: &SynthOptions) -> Result<usize> {
    write_folders(out, o, false)
}

/// `<split>/<class>/<name>/` sample folders, or with `recordings_only` just `<name>.aedat4`.
fn write_folders(out: &Path, o: &SynthOptions, recordings_only: bool) -> Result<usize> {
    let test_n = check(o)?;
    let labels: Vec<&str> = SHAPES[..o.classes].to_vec();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("labels.txt"), labels.join("\n") + "\n")?;
    let mut written = 0;
    for (c, label) in labels.iter().enumerate() {
        for k in 0..o.samples_per_class {
            let mut rng = sample_rng(o, c, k);
            let split = split_of(o, k, test_n);
            let name = format!("{label}_{k:04}");
            let class_dir: PathBuf = out.join(split).join(label);
            let clip = clip(c, o, &mut rng);
            if recordings_only {
                std::fs::create_dir_all(&class_dir)?;
                clip.write_aedat4(&class_dir.join(format!("{name}.aedat4")), o.width, o.height)?;
            } else {
                write_sample(&class_dir.join(&name), &name, &clip, o)?;
            }
            written += 1;
        }
    }
    Ok(written)
}

fn write_sample(dir: &Path, name: &str, clip: &Clip, o: &SynthOptions) -> Result<()> {
    let (aps, dvs) = (dir.join(format!("{name}_aps")), dir.join(format!("{name}_dvs")));
    std::fs::create_dir_all(&aps)?;
    std::fs::create_dir_all(&dvs)?;
    for (i, ((_, rgb), ev)) in clip.frames.iter().zip(clip.event_images(o.width, o.height)).enumerate() {
        rgb.save(aps.join(format!("{i:04}.png"))).with_context(|| format!("writing {}", aps.display()))?;
        ev.save(dvs.join(format!("{i:04}.png"))).with_context(|| format!("writing {}", dvs.display()))?;
    }
    clip.write_aedat4(&dir.join(format!("{name}.aedat4")), o.width, o.height)
}
