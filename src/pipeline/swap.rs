//! A model swapped without a gap (a reload). The new model is loaded elsewhere and handed over
//! ready; from then on every pair is encoded by both models, the running one's recognitions
//! go on, and once the new model holds as many pairs' tokens as the running one for every
//! stream (F pairs, or fewer where a stream has fewer), it takes over between two batches.
//! No pair is skipped and no recognition is missed; the cost is a second encoder call per
//! batch for F pairs.

use std::time::{Duration, Instant};

use crate::infer::stream_cache::{StageTimes, StreamingModel, TokenWindow};
use crate::sink::SinkChange;

use super::batching::Batching;
use super::recognise::StreamState;

/// A stream that sends no pairs (paused, but not ended) would hold a swap back for ever: after
/// this long the new model takes over with what it has (that stream's next recognitions wait
/// for its window to fill).
const SWAP_WAIT: Duration = Duration::from_secs(10);

/// What a reload changes in the running pipeline.
pub struct Reload {
    /// The new model and its name (None: the model stays).
    pub model: Option<(StreamingModel, String)>,
    pub top_k: usize,
    pub batching: Batching,
    /// New sinks, applied in order between two lines.
    pub sinks: Option<SinkChange>,
}

/// A model on its way in: its own token window per stream, filled alongside the running one's.
pub struct Incoming {
    pub model: StreamingModel,
    pub name: String,
    windows: Vec<TokenWindow>,
    since: Instant,
}

impl Incoming {
    pub fn new(model: StreamingModel, name: String, streams: usize) -> Self {
        let windows = (0..streams).map(|_| TokenWindow::new(model.frames())).collect();
        Incoming { model, name, windows, since: Instant::now() }
    }

    /// Encodes the batch's pairs (`of[j]` is the stream of pair j) with the new model too.
    pub fn encode(&mut self, tensors: &[(&[f32], &[f32])], of: &[usize]) -> Result<(), crate::infer::ModelError> {
        let mut times = StageTimes::default();
        for (tokens, &i) in self.model.encode(tensors, &mut times)?.into_iter().zip(of) {
            self.windows[i].push(tokens);
        }
        Ok(())
    }

    /// Stream `i` forgot its held pairs (a gap, a new sample).
    pub fn reset(&mut self, i: usize) {
        self.windows[i].reset();
    }

    /// Whether the new model can take over now: as many pairs held as the running model holds
    /// (up to its own F), for every stream; or waited long enough.
    pub fn ready(&self, streams: &[StreamState]) -> bool {
        let caught_up = streams.iter().zip(&self.windows).all(|(s, w)| w.held() >= s.held().min(self.model.frames()));
        caught_up || self.since.elapsed() >= SWAP_WAIT
    }

    /// Hands the new model's windows to the streams; returns the model and its name.
    pub fn take_over(self, streams: &mut [StreamState]) -> (StreamingModel, String) {
        for (s, w) in streams.iter_mut().zip(self.windows) {
            s.replace_tokens(w);
        }
        (self.model, self.name)
    }
}
