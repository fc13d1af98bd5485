//! The inference loop, on the thread that calls `Pipeline::run`: it takes what the accumulate
//! stages sent, up to a batch, encodes every pair in one encoder call and fuses every
//! recognition due in one fusion call, and hands lines and sample results to the output stage.
//! Between two batches it applies reloads and swaps a new model in (`swap`).

use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::Receiver;

use super::accumulate::Work;
use super::batching::{pairs, Batching};
use super::lifecycle::DRAIN_BUDGET;
use super::output::{Outgoing, Output};
use super::recognise::{Due, RunRef};
use super::sample::SampleRun;
use super::stages::{Ended, Pipeline};
use super::swap::Incoming;
use crate::dataset::results::{ClipScore, SampleResult, StreamScore};
use crate::infer::stream_cache::StageTimes;
use crate::sink::{Latency, Recognition, Scored};

impl Pipeline {
    pub(super) fn infer(
        &mut self,
        rx: &Receiver<Work>,
        output: &Output,
        tick: &mut impl FnMut(&Self),
    ) -> Result<Ended> {
        let mut ready: Vec<Work> = Vec::new();
        let mut since: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        let mut closed = false;
        let mut warned = false;
        loop {
            match self.watched.iter().position(|w| w.heartbeat.stalled()) {
                None => tick(self),
                Some(i) if !warned => {
                    tracing::warn!("{}: the accumulate stage stalled; the watchdog is not fed", self.streams[i].name);
                    warned = true;
                }
                Some(_) => {}
            }
            if deadline.is_none() {
                self.take_reload(output);
            }
            if deadline.is_none() && self.stop_requested() {
                deadline = Some(Instant::now() + DRAIN_BUDGET);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Ended::Stopped);
            }
            if !closed && pairs(&ready) < self.batching.max_pairs {
                closed = self.batching.gather(rx, &mut ready, since);
            }
            if !ready.is_empty() {
                let t = *since.get_or_insert_with(Instant::now);
                let full = pairs(&ready) >= self.batching.max_pairs;
                if closed || full || deadline.is_some() || t.elapsed() >= self.batching.wait {
                    since = None;
                    if !self.process_batch(std::mem::take(&mut ready), output, deadline)? {
                        // The output stage failed (its error comes from `finish`) or gave up.
                        return Ok(Ended::Stopped);
                    }
                }
            }
            if closed && ready.is_empty() {
                return Ok(if deadline.is_some() { Ended::Stopped } else { Ended::SourceEnded });
            }
        }
    }

    /// One encoder call for every pair of `work`, one fusion call for every recognition due.
    /// False when the output stage no longer takes lines.
    fn process_batch(&mut self, work: Vec<Work>, output: &Output, deadline: Option<Instant>) -> Result<bool> {
        let dequeued = Instant::now();
        let mut times = StageTimes::default();
        let tensors: Vec<(&[f32], &[f32])> = work
            .iter()
            .filter_map(|w| match w {
                Work::Pair(_, p) => Some((p.rgb.as_slice(), p.events.as_slice())),
                Work::Reset(_) | Work::Begin(..) | Work::End(..) => None,
            })
            .collect();
        let batch = tensors.len();
        let mut encoded = self.model.encode(&tensors, &mut times)?.into_iter();
        self.encode_incoming(&work, &tensors);
        drop(tensors);
        let frames = self.model.frames();
        let (mut due, mut inputs) = (Vec::new(), Vec::new());
        // Dataset replay: samples that ended in this batch, and their clip inputs.
        let mut ended: Vec<(usize, SampleRun, Option<String>)> = Vec::new();
        let mut clips = Vec::new();
        for w in work {
            if let (Work::Reset(i) | Work::Begin(i, _), Some(inc)) = (&w, &mut self.incoming) {
                inc.reset(*i);
            }
            match w {
                Work::Reset(i) => self.streams[i].reset(),
                Work::Begin(i, start) => {
                    self.streams[i].reset();
                    self.streams[i].sample = Some(SampleRun::new(start, frames));
                }
                Work::End(i, error) => {
                    let Some(mut run) = self.streams[i].sample.take() else { continue };
                    let j = ended.len();
                    // Recognitions of this sample due in this batch are tallied to it.
                    due.iter_mut()
                        .filter(|d: &&mut Due| d.stream == i && d.run == RunRef::Live)
                        .for_each(|d| d.run = RunRef::Ended(j));
                    let error = error.or_else(|| match run.clip_input() {
                        Ok(t) => {
                            clips.push((j, t));
                            None
                        }
                        Err(e) => Some(e),
                    });
                    ended.push((i, run, error));
                }
                Work::Pair(i, pair) => {
                    let tokens = encoded.next().ok_or_else(|| anyhow::anyhow!("the encoder returned too few rows"))?;
                    if let Some(run) = &mut self.streams[i].sample {
                        run.add(&tokens);
                    }
                    if let Some((d, t)) = self.streams[i].keep(i, &pair, tokens) {
                        due.push(d);
                        inputs.push(t);
                    }
                }
            }
        }
        // One fusion call: the recognitions due, then the clips of the samples that ended.
        let mut clip_of: Vec<Option<Vec<f32>>> = vec![None; ended.len()];
        let clip_ids: Vec<usize> = clips.iter().map(|c| c.0).collect();
        inputs.extend(clips.into_iter().map(|c| c.1));
        let mut log_probs = self.model.fuse(&inputs, &mut times)?;
        for (j, lp) in clip_ids.into_iter().zip(log_probs.split_off(due.len())) {
            clip_of[j] = Some(lp);
        }
        if let Some(m) = &self.metrics {
            if batch > 0 {
                m.batch_pairs.observe(batch as f64);
            }
        }
        let give_up = || deadline.is_some_and(|d| Instant::now() >= d);
        for (d, lp) in due.iter().zip(log_probs) {
            let out = self.recognition(d, &lp, batch, dequeued, &times);
            if let Outgoing::Line { rec, .. } = &out {
                let top1 = rec.top.first().map(|s| s.label.as_str());
                let run = match d.run {
                    RunRef::Live => self.streams[d.stream].sample.as_mut(),
                    RunRef::Ended(j) => ended.get_mut(j).map(|e| &mut e.1),
                };
                if let Some(run) = run {
                    run.recognised(top1);
                }
            }
            if !output.send(out, give_up) {
                return Ok(false);
            }
        }
        for ((i, run, error), lp) in ended.into_iter().zip(clip_of) {
            let result = self.sample_result(run, error, lp);
            let out = Outgoing::Sample { stream: self.streams[i].name.clone(), result: Box::new(result) };
            if !output.send(out, give_up) {
                return Ok(false);
            }
        }
        self.swap_if_ready();
        Ok(true)
    }

    /// A finished sample's result (its latencies are filled in when written).
    fn sample_result(&self, run: SampleRun, error: Option<String>, log_probs: Option<Vec<f32>>) -> SampleResult {
        let s = &run.start;
        let known = s.label.as_ref().is_some_and(|l| self.model.labels().contains(l));
        let clip = log_probs.filter(|_| error.is_none()).map(|lp| ClipScore {
            top: self.model.fusion.top(&lp, 5).into_iter().map(|(label, v)| Scored { label, p: v.exp() }).collect(),
            log_probs: lp,
        });
        let stream = error.is_none().then(|| StreamScore {
            recognitions: run.recognitions,
            correct: run.correct,
            accuracy: (run.recognitions > 0).then(|| run.correct as f64 / run.recognitions as f64),
            last: run.last.clone(),
        });
        SampleResult {
            index: s.index,
            id: s.id.clone(),
            label: s.label.clone(),
            known,
            error,
            clip,
            stream,
            pairs: run.seen,
            events: s.events,
            latency_ms: Default::default(),
            histograms: Default::default(),
            seconds: s.started.elapsed().as_secs_f64(),
            finished_ms: 0,
        }
    }

    /// The line for one recognition (its end-to-end latency is filled in when written).
    fn recognition(&mut self, d: &Due, log_probs: &[f32], batch: usize, dequeued: Instant, t: &StageTimes) -> Outgoing {
        let top = self.model.fusion.top(log_probs, self.top_k);
        let stream = &mut self.streams[d.stream];
        stream.recognitions += 1;
        if let Some((label, _)) = top.first() {
            *stream.labels.entry(label.clone()).or_insert(0) += 1;
        }
        if let Some(c) = &stream.counters {
            c.recognitions.inc();
        }
        // Milliseconds to the microsecond.
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let queue = dequeued.saturating_duration_since(d.arrived);
        let rec = Recognition {
            stream: stream.name.clone(),
            model: self.model_name.clone(),
            sample: d.sample.clone(),
            seq: stream.recognitions,
            t_start: d.t_start,
            t_end: d.t_end,
            frames: d.frames,
            events: d.events,
            rgb: stream.rgb,
            batch,
            top: top.into_iter().map(|(label, lp)| Scored { label, p: lp.exp() }).collect(),
            latency_ms: Latency {
                queue: ms(queue),
                preprocess: ms(d.preprocess),
                encode: ms(t.encode),
                fuse: ms(t.fuse),
                total: 0.0,
            },
        };
        self.stages.queue.record(queue);
        self.stages.preprocess.record(d.preprocess);
        self.stages.encode.record(t.encode);
        self.stages.fuse.record(t.fuse);
        if let Some(m) = &self.metrics {
            for (stage, v) in [("queue", queue), ("preprocess", d.preprocess), ("encode", t.encode), ("fuse", t.fuse)] {
                m.stage(stage).observe(v.as_secs_f64());
            }
            m.inference_seconds.observe((t.encode + t.fuse).as_secs_f64());
        }
        Outgoing::Line { rec, arrived: d.arrived }
    }

    /// Applies a reload that came in: sinks at once (in line order), the new model through a
    /// swap (this module).
    fn take_reload(&mut self, output: &Output) {
        let Some(reload) = self.reloads.as_ref().and_then(|rx| rx.try_recv().ok()) else { return };
        self.top_k = reload.top_k.max(1);
        self.batching = Batching { max_pairs: reload.batching.max_pairs.max(1), ..reload.batching };
        if let Some(change) = reload.sinks {
            output.send(Outgoing::Sinks(Box::new(change)), || false);
        }
        match reload.model {
            Some((model, name)) => {
                tracing::info!(
                    "reload: {name} loaded; encoding beside {} until it holds every stream's window",
                    self.model_name
                );
                self.incoming = Some(Incoming::new(model, name, self.streams.len()));
            }
            None => {
                if let Some(m) = &self.metrics {
                    m.reloaded("applied");
                }
            }
        }
    }

    /// A model on its way in encodes the batch's pairs too; if it fails, it is refused.
    fn encode_incoming(&mut self, work: &[Work], tensors: &[(&[f32], &[f32])]) {
        if let Some(inc) = &mut self.incoming {
            let of: Vec<usize> = work
                .iter()
                .filter_map(|w| match w {
                    Work::Pair(i, _) => Some(*i),
                    _ => None,
                })
                .collect();
            if let Err(e) = inc.encode(tensors, &of) {
                tracing::error!("reload: the new model {} failed: {e}; {} runs on", inc.name, self.model_name);
                if let Some(m) = &self.metrics {
                    m.reloaded("refused");
                }
                self.incoming = None;
            }
        }
    }

    /// The model on its way in takes over once it holds every stream's window.
    fn swap_if_ready(&mut self) {
        if self.incoming.as_ref().is_some_and(|inc| inc.ready(&self.streams)) {
            if let Some(inc) = self.incoming.take() {
                let (model, name) = inc.take_over(&mut self.streams);
                let old = std::mem::replace(&mut self.model, model);
                tracing::info!("reload: model {} swapped in for {}", name, self.model_name);
                self.model_name = name;
                if let Some(m) = &self.metrics {
                    m.set_model(&self.model_name);
                    m.reloaded("applied");
                }
                // Its sessions' memory is freed off the inference thread.
                std::thread::spawn(move || drop(old));
            }
        }
    }
}
