//! Streaming recognition with the split graphs: each new (RGB, event) pair is encoded once,
//! its tokens kept for the last F pairs, and each recognition runs only the fusion graph on
//! their mean (the full graph would re-encode all F frames every time).
//!
//! The model is shared, the held tokens are per stream: [`StreamingModel`] encodes the pairs of
//! any number of streams in one encoder call and fuses any number of token windows in one fusion
//! call (the graphs' batch dimension), and each stream keeps its own [`TokenWindow`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::model::{ModelError, SafeModel};
use super::preprocess::image_to_chw;
use crate::accumulate::Representation;

pub struct StreamingModel {
    pub encoder: SafeModel,
    pub fusion: SafeModel,
    input: Vec<f32>,
}

/// The encoder's input: how images become its tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// How event windows are rendered.
    pub events: Representation,
}

impl InputSpec {
    /// `img` resized to S x S and normalised, channel-first.
    pub fn tensor(&self, img: &RgbImage) -> Vec<f32> {
        let mut out = vec![0f32; 3 * (self.size * self.size) as usize];
        image_to_chw(img, self.size, self.mean, self.std, &mut out);
        out
    }
}

/// Time spent per stage on one batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub encode: Duration,
    pub fuse: Duration,
}

/// One pair's tokens: [T, E] for the RGB image and for the event image.
#[derive(Debug, Clone)]
pub struct PairTokens {
    pub rgb: Vec<f32>,
    pub events: Vec<f32>,
}

impl StreamingModel {
    pub fn new(encoder: SafeModel, fusion: SafeModel) -> Result<Self, ModelError> {
        let same = encoder.image_size == fusion.image_size
            && encoder.tokens == fusion.tokens
            && encoder.embed_dim == fusion.embed_dim
            && encoder.frames == fusion.frames
            && encoder.events == fusion.events;
        if !same {
            return Err(ModelError::Contract {
                path: "model".into(),
                what: "the encoder and fusion graphs disagree on image size, tokens, width, frames or event representation".into(),
            });
        }
        Ok(StreamingModel { encoder, fusion, input: Vec::new() })
    }

    pub fn labels(&self) -> &[String] {
        &self.fusion.labels
    }

    pub fn frames(&self) -> usize {
        self.fusion.frames
    }

    /// What the event branch takes (the pairs must be rendered so).
    pub fn events(&self) -> crate::accumulate::Representation {
        self.encoder.events
    }

    /// What the encoder takes: image size, normalisation, event representation.
    pub fn input(&self) -> InputSpec {
        let e = &self.encoder;
        InputSpec { size: e.image_size as u32, mean: e.mean, std: e.std, events: e.events }
    }

    /// Encodes `pairs` (RGB tensor, event tensor; each normalised [3, S, S] as
    /// [`InputSpec::tensor`] makes them), from any streams, in one encoder call of 2 x pairs
    /// images.
    pub fn encode(
        &mut self,
        pairs: &[(&[f32], &[f32])],
        times: &mut StageTimes,
    ) -> Result<Vec<PairTokens>, ModelError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let len = self.encoder.image_len();
        if let Some((r, e)) = pairs.iter().find(|(r, e)| r.len() != len || e.len() != len) {
            return Err(ModelError::Contract {
                path: "input".into(),
                what: format!("tensors of {} and {} values; the encoder takes {len}", r.len(), e.len()),
            });
        }
        let t0 = Instant::now();
        self.input.clear();
        for (r, e) in pairs {
            self.input.extend_from_slice(r);
            self.input.extend_from_slice(e);
        }
        let tokens = self.encoder.encode(&self.input)?;
        times.encode += t0.elapsed();
        let per = tokens.len() / (2 * pairs.len());
        Ok(tokens
            .chunks_exact(2 * per)
            .map(|t| PairTokens { rgb: t[..per].to_vec(), events: t[per..].to_vec() })
            .collect())
    }

    /// Log-probabilities for frame-averaged token windows (from [`TokenWindow::mean`]), from any
    /// streams, in one fusion call.
    pub fn fuse(&mut self, windows: &[PairTokens], times: &mut StageTimes) -> Result<Vec<Vec<f32>>, ModelError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let t0 = Instant::now();
        let rgb: Vec<f32> = windows.iter().flat_map(|w| w.rgb.iter().copied()).collect();
        let events: Vec<f32> = windows.iter().flat_map(|w| w.events.iter().copied()).collect();
        let out = self.fusion.fuse(&rgb, &events)?;
        times.fuse += t0.elapsed();
        Ok(out)
    }
}

/// One stream's tokens of its last F pairs.
pub struct TokenWindow {
    frames: usize,
    held: VecDeque<PairTokens>,
}

impl TokenWindow {
    pub fn new(frames: usize) -> Self {
        TokenWindow { frames: frames.max(1), held: VecDeque::new() }
    }

    pub fn push(&mut self, tokens: PairTokens) {
        self.held.push_back(tokens);
        while self.held.len() > self.frames {
            self.held.pop_front();
        }
    }

    /// Pairs held (at most F).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The mean over the held pairs per modality (the fusion graph's input), once F are held.
    pub fn mean(&self) -> Option<PairTokens> {
        if self.held.len() < self.frames {
            return None;
        }
        Some(PairTokens {
            rgb: mean(self.held.iter().map(|p| &p.rgb)),
            events: mean(self.held.iter().map(|p| &p.events)),
        })
    }

    /// Forget held pairs (a gap in the stream).
    pub fn reset(&mut self) {
        self.held.clear();
    }
}

fn mean<'a>(rows: impl ExactSizeIterator<Item = &'a Vec<f32>>) -> Vec<f32> {
    let n = rows.len().max(1) as f32;
    let mut out: Vec<f32> = Vec::new();
    for r in rows {
        out.resize(r.len(), 0.0);
        out.iter_mut().zip(r).for_each(|(o, v)| *o += v);
    }
    out.iter_mut().for_each(|o| *o /= n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(v: f32) -> PairTokens {
        PairTokens { rgb: vec![v; 2], events: vec![-v; 2] }
    }

    #[test]
    fn a_window_averages_its_last_f_pairs() {
        let mut w = TokenWindow::new(2);
        w.push(pair(1.0));
        assert!(w.mean().is_none(), "one pair of two");
        w.push(pair(3.0));
        w.push(pair(5.0));
        let m = w.mean().unwrap();
        assert_eq!((m.rgb, m.events), (vec![4.0; 2], vec![-4.0; 2]));
        w.reset();
        assert_eq!(w.held(), 0);
    }
}
