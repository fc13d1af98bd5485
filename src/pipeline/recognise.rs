//! One stream's side of the inference stage: the tokens of its last F pairs, the windows they
//! cover, and when its next recognition is due.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::accumulate::Prepared;
use super::sample::SampleRun;
use crate::infer::stream_cache::{PairTokens, TokenWindow};
use crate::sink::StreamCounters;

/// A recognition that is due: the span its frame-averaged tokens cover.
pub struct Due {
    pub stream: usize,
    pub t_start: i64,
    pub t_end: i64,
    pub frames: usize,
    pub events: usize,
    pub arrived: Instant,
    /// The newest pair's preprocessing (accumulate stage).
    pub preprocess: Duration,
    /// Dataset replay: the sample's id, and which run its score goes to.
    pub sample: Option<String>,
    pub run: RunRef,
}

/// A recognition's sample: the stream's current one, or one that ended in the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef {
    Live,
    Ended(usize),
}

pub struct StreamState {
    pub name: String,
    /// "frames" (the paper's pairing) or "events" (event-only mode).
    pub rgb: &'static str,
    hop: usize,
    tokens: TokenWindow,
    /// (start, end, events) of the held pairs' windows.
    held: VecDeque<(i64, i64, usize)>,
    since_last: usize,
    pub recognitions: u64,
    pub labels: BTreeMap<String, u64>,
    pub counters: Option<StreamCounters>,
    /// Dataset replay: the sample being replayed.
    pub sample: Option<SampleRun>,
}

impl StreamState {
    pub fn new(name: String, has_frames: bool, hop: usize, frames: usize) -> Self {
        StreamState {
            name,
            rgb: if has_frames { "frames" } else { "events" },
            hop: hop.max(1),
            tokens: TokenWindow::new(frames),
            held: VecDeque::new(),
            since_last: 0,
            recognitions: 0,
            labels: BTreeMap::new(),
            counters: None,
            sample: None,
        }
    }

    /// Keeps an encoded pair; every `hop` pairs, once F are held, returns a recognition that is
    /// due and its input (the held tokens' mean).
    pub fn keep(&mut self, me: usize, pair: &Prepared, tokens: PairTokens) -> Option<(Due, PairTokens)> {
        self.tokens.push(tokens);
        self.held.push_back((pair.start, pair.end, pair.event_count));
        while self.held.len() > self.tokens.held() {
            self.held.pop_front();
        }
        self.since_last += 1;
        if self.since_last < self.hop {
            return None;
        }
        let tokens = self.tokens.mean()?;
        self.since_last = 0;
        let due = Due {
            stream: me,
            t_start: self.held.front().map_or(pair.start, |w| w.0),
            t_end: pair.end,
            frames: self.held.len(),
            events: self.held.iter().map(|w| w.2).sum(),
            arrived: pair.arrived,
            preprocess: pair.preprocess,
            sample: self.sample.as_ref().map(|r| r.start.id.clone()),
            run: RunRef::Live,
        };
        Some((due, tokens))
    }

    /// Pairs whose tokens are held.
    pub fn held(&self) -> usize {
        self.tokens.held()
    }

    /// Another model's tokens of the same pairs (a model swap).
    pub fn replace_tokens(&mut self, tokens: TokenWindow) {
        self.tokens = tokens;
    }

    /// Forget held frames (a new connection).
    pub fn reset(&mut self) {
        self.tokens.reset();
        self.held.clear();
        self.since_last = 0;
    }
}
