//! One stream's side of the processing stage: its capture queue, its pairer (frames and event
//! windows), its held tokens and its counts. The model and the sink are shared (`super`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::accumulate::{Representation, WindowMode};
use crate::capture::{CaptureLink, Item};
use crate::infer::stream_cache::{PairTokens, TokenWindow};
use crate::sink::StreamCounters;
use crate::sync::{Pair, Pairer};

/// A stream's items taken per turn at most, so that one busy stream cannot starve the others.
const ITEMS_PER_TURN: usize = 64;

pub struct StreamOptions {
    /// The stream id in the output lines.
    pub name: String,
    /// Where its events come from (for messages).
    pub source: String,
    pub mode: WindowMode,
    pub sensor: (u32, u32),
    pub max_buffered_events: usize,
    pub hop: usize,
    /// False: event-only mode (the RGB branch sees the event image).
    pub has_frames: bool,
}

/// What the processing stage does next, in order per stream.
pub enum Work {
    /// Encode this pair of stream `.0`, then maybe recognise.
    Pair(usize, Pair),
    /// Stream `.0`'s connection ended: forget its held frames.
    Reset(usize),
}

/// Counts for the report.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub events: u64,
    pub frames: u64,
    pub pairs: u64,
    pub recognitions: u64,
    pub labels: BTreeMap<String, u64>,
}

/// A recognition that is due: the span its frame-averaged tokens cover.
pub struct Due {
    pub stream: usize,
    pub t_start: i64,
    pub t_end: i64,
    pub frames: usize,
    pub events: usize,
    pub arrived: Instant,
}

pub struct Stream {
    pub opts: StreamOptions,
    pub link: CaptureLink,
    pairer: Pairer,
    /// How windows are rendered (the model's input).
    events: Representation,
    tokens: TokenWindow,
    /// (start, end, events) of the held pairs' windows.
    held: VecDeque<(i64, i64, usize)>,
    since_last: usize,
    window_dropped_before: u64,
    /// Counters already passed to the metrics.
    exported: (u64, u64, u64),
    pub counters: Option<StreamCounters>,
    pub counts: Counts,
    /// The source ended and everything it sent is in the work list.
    pub ended: bool,
    scratch: Vec<Pair>,
}

impl Stream {
    pub fn new(opts: StreamOptions, link: CaptureLink, frames: usize, events: Representation) -> Self {
        Stream {
            pairer: Pairer::new(opts.mode, opts.sensor, opts.max_buffered_events).with_representation(events),
            events,
            opts,
            link,
            tokens: TokenWindow::new(frames),
            held: VecDeque::new(),
            since_last: 0,
            window_dropped_before: 0,
            exported: (0, 0, 0),
            counters: None,
            counts: Counts::default(),
            ended: false,
            scratch: Vec::new(),
        }
    }

    pub fn window_dropped(&self) -> u64 {
        self.window_dropped_before + self.pairer.dropped_events()
    }

    /// Takes items off the queue until one completes a pair, the queue is empty, or this turn's
    /// share is used; what is ready goes to `out` as stream `me`'s work. True when an item was
    /// taken.
    pub fn poll(&mut self, me: usize, out: &mut Vec<Work>) -> bool {
        if self.ended {
            return false;
        }
        let (mut took, before) = (false, out.len());
        for _ in 0..ITEMS_PER_TURN {
            let Some(item) = self.link.ring.pop() else {
                if self.link.status.is_done() && self.link.ring.is_empty() {
                    self.finish(me, out);
                }
                break;
            };
            took = true;
            self.push(me, item, out);
            if out.len() > before {
                break;
            }
        }
        self.export_counts();
        took
    }

    /// On stop: what is queued (until `deadline`), then the frames still waiting get the events
    /// that came.
    pub fn drain(&mut self, me: usize, out: &mut Vec<Work>, deadline: Instant) {
        while !self.ended && Instant::now() < deadline {
            match self.link.ring.pop() {
                Some(Item::Reset) | None => break,
                Some(item) => self.push(me, item, out),
            }
        }
        self.finish(me, out);
        self.export_counts();
    }

    fn finish(&mut self, me: usize, out: &mut Vec<Work>) {
        if !self.ended {
            self.pairer.finish(&mut self.scratch);
            out.extend(self.scratch.drain(..).map(|p| Work::Pair(me, p)));
            self.ended = true;
        }
    }

    /// Counts an item (for the report and the metrics) and hands it to the pairer.
    fn push(&mut self, me: usize, item: Item, out: &mut Vec<Work>) {
        match item {
            Item::Events { events, arrived } => {
                self.counts.events += events.len() as u64;
                if let Some(c) = &self.counters {
                    c.events.inc_by(events.len() as u64);
                }
                self.pairer.push_events(&events, arrived, &mut self.scratch);
            }
            Item::Frame { frame, arrived } => {
                self.counts.frames += 1;
                if let Some(c) = &self.counters {
                    c.frames.inc();
                }
                if self.opts.has_frames {
                    self.pairer.push_frame(frame, arrived, &mut self.scratch);
                }
            }
            // A connection ended: its last frames get the events that came, then windows and
            // held frames start afresh (the next connection's clock is its own).
            Item::Reset => {
                self.pairer.finish(&mut self.scratch);
                self.window_dropped_before += self.pairer.dropped_events();
                self.pairer = Pairer::new(self.opts.mode, self.opts.sensor, self.opts.max_buffered_events)
                    .with_representation(self.events);
                out.extend(self.scratch.drain(..).map(|p| Work::Pair(me, p)));
                out.push(Work::Reset(me));
                return;
            }
        }
        out.extend(self.scratch.drain(..).map(|p| Work::Pair(me, p)));
    }

    /// Keeps an encoded pair; every `hop` pairs, once F are held, returns a recognition that is
    /// due and its input (the held tokens' mean).
    pub fn keep(&mut self, me: usize, pair: &Pair, tokens: PairTokens) -> Option<(Due, PairTokens)> {
        self.counts.pairs += 1;
        self.tokens.push(tokens);
        self.held.push_back((pair.start, pair.end, pair.event_count));
        while self.held.len() > self.tokens.held() {
            self.held.pop_front();
        }
        self.since_last += 1;
        if self.since_last < self.opts.hop {
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
        };
        Some((due, tokens))
    }

    /// Forget held frames.
    pub fn reset(&mut self) {
        self.tokens.reset();
        self.held.clear();
        self.since_last = 0;
    }

    /// Moves the drop and reconnect counts into the metrics (one atomic load each).
    fn export_counts(&mut self) {
        let Some(c) = &self.counters else { return };
        let now = (self.link.ring.dropped(), self.window_dropped(), self.link.reconnects.load(Ordering::Relaxed));
        c.ring_dropped.inc_by(now.0 - self.exported.0.min(now.0));
        c.window_dropped.inc_by(now.1 - self.exported.1.min(now.1));
        c.reconnects.inc_by(now.2 - self.exported.2.min(now.2));
        self.exported = now;
    }
}
