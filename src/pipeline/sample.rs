//! Dataset replay on the inference side: one sample's two scores as its pairs go by.
//!
//! - clip: the paper's protocol, as `safe-train eval` computes it: the tokens of F evenly
//!   spaced pairs (of the sample's n, known when it begins) averaged per modality and fused
//!   once at the end. The streaming encoder already encodes every pair, so the tokens of the
//!   chosen ones are summed as they pass (with their multiplicity when n < F) and nothing else
//!   is kept.
//! - stream: its streaming recognitions' top-1s against the label.

use crate::capture::dataset::SampleStart;
use crate::infer::preprocess::evenly_spaced;
use crate::infer::stream_cache::PairTokens;

pub struct SampleRun {
    pub start: Box<SampleStart>,
    /// How often each pair counts in the clip mean (0 for most).
    weights: Vec<u32>,
    frames: usize,
    sum: Option<PairTokens>,
    pub seen: u64,
    pub recognitions: u64,
    pub correct: u64,
    pub last: Option<String>,
}

impl SampleRun {
    pub fn new(start: Box<SampleStart>, frames: usize) -> Self {
        let mut weights = vec![0u32; start.pairs];
        if start.pairs > 0 {
            evenly_spaced(start.pairs, frames).into_iter().for_each(|k| weights[k] += 1);
        }
        SampleRun { start, weights, frames: frames.max(1), sum: None, seen: 0, recognitions: 0, correct: 0, last: None }
    }

    /// The sample's next pair's tokens.
    pub fn add(&mut self, t: &PairTokens) {
        let w = self.weights.get(self.seen as usize).copied().unwrap_or(0) as f32;
        self.seen += 1;
        if w == 0.0 {
            return;
        }
        let sum = self
            .sum
            .get_or_insert_with(|| PairTokens { rgb: vec![0.0; t.rgb.len()], events: vec![0.0; t.events.len()] });
        sum.rgb.iter_mut().zip(&t.rgb).for_each(|(s, v)| *s += w * v);
        sum.events.iter_mut().zip(&t.events).for_each(|(s, v)| *s += w * v);
    }

    /// A streaming recognition of this sample, by its top-1.
    pub fn recognised(&mut self, top1: Option<&str>) {
        self.recognitions += 1;
        if top1.is_some() && top1 == self.start.label.as_deref() {
            self.correct += 1;
        }
        self.last = top1.map(String::from);
    }

    /// The clip protocol's fusion input, once every announced pair has been seen.
    pub fn clip_input(&mut self) -> Result<PairTokens, String> {
        if self.start.pairs == 0 {
            return Err("no frame/event pairs".into());
        }
        if self.seen != self.start.pairs as u64 {
            return Err(format!("expected {} pairs, {} were made", self.start.pairs, self.seen));
        }
        let mut m = self.sum.take().ok_or("no pairs were encoded")?;
        let f = self.frames as f32;
        m.rgb.iter_mut().chain(m.events.iter_mut()).for_each(|v| *v /= f);
        Ok(m)
    }
}
