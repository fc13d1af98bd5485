//! Streaming recognition with the split graphs: each new (RGB, event) pair is encoded once,
//! its tokens kept for the last F pairs, and each recognition runs only the fusion graph on
//! their mean (the full graph would re-encode all F frames every time).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::model::{ModelError, SafeModel};
use super::preprocess::image_to_chw;

pub struct StreamingModel {
    pub encoder: SafeModel,
    pub fusion: SafeModel,
    rgb: VecDeque<Vec<f32>>,
    events: VecDeque<Vec<f32>>,
    input: Vec<f32>,
}

/// Time spent per stage on one pair / recognition.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub encode: Duration,
    pub fuse: Duration,
}

impl StreamingModel {
    pub fn new(encoder: SafeModel, fusion: SafeModel) -> Result<Self, ModelError> {
        let same = encoder.image_size == fusion.image_size
            && encoder.tokens == fusion.tokens
            && encoder.embed_dim == fusion.embed_dim
            && encoder.frames == fusion.frames;
        if !same {
            return Err(ModelError::Contract {
                path: "model".into(),
                what: "the encoder and fusion graphs disagree on image size, tokens, width or frames".into(),
            });
        }
        Ok(StreamingModel { encoder, fusion, rgb: VecDeque::new(), events: VecDeque::new(), input: Vec::new() })
    }

    pub fn labels(&self) -> &[String] {
        &self.fusion.labels
    }

    pub fn frames(&self) -> usize {
        self.fusion.frames
    }

    /// Frames held (at most F).
    pub fn held(&self) -> usize {
        self.rgb.len()
    }

    /// Encodes one pair (one encoder call for both images) and keeps its tokens.
    pub fn push(&mut self, rgb: &RgbImage, events: &RgbImage, times: &mut StageTimes) -> Result<(), ModelError> {
        let t0 = Instant::now();
        let (s, len) = (self.encoder.image_size as u32, self.encoder.image_len());
        self.input.resize(2 * len, 0.0);
        image_to_chw(rgb, s, self.encoder.mean, self.encoder.std, &mut self.input[..len]);
        image_to_chw(events, s, self.encoder.mean, self.encoder.std, &mut self.input[len..]);
        let t1 = Instant::now();
        let tokens = self.encoder.encode(&self.input)?;
        times.preprocess += t1 - t0;
        times.encode += t1.elapsed();
        let half = tokens.len() / 2;
        self.rgb.push_back(tokens[..half].to_vec());
        self.events.push_back(tokens[half..].to_vec());
        while self.rgb.len() > self.frames() {
            self.rgb.pop_front();
            self.events.pop_front();
        }
        Ok(())
    }

    /// Log-probabilities over the held frames (once F are held), fusion only.
    pub fn recognise(&mut self, times: &mut StageTimes) -> Result<Option<Vec<f32>>, ModelError> {
        if self.rgb.len() < self.frames() {
            return Ok(None);
        }
        let t0 = Instant::now();
        let (r, e) = (mean(&self.rgb), mean(&self.events));
        let out = self.fusion.fuse(&r, &e)?;
        times.fuse += t0.elapsed();
        Ok(out.into_iter().next())
    }

    /// Forget held frames (a gap in the stream).
    pub fn reset(&mut self) {
        self.rgb.clear();
        self.events.clear();
    }
}

fn mean(rows: &VecDeque<Vec<f32>>) -> Vec<f32> {
    let mut out = vec![0f32; rows.front().map_or(0, Vec::len)];
    for r in rows {
        out.iter_mut().zip(r).for_each(|(o, v)| *o += v);
    }
    let n = rows.len().max(1) as f32;
    out.iter_mut().for_each(|o| *o /= n);
    out
}
