//! Packet decoding on worker threads, for files: a framer thread cuts packets, workers
//! decompress and decode them, and `next` hands them out in input order. Channels are bounded,
//! so at most a few packets per worker are in flight; dropping the pipeline stops every thread
//! and waits for them (briefly: a framer blocked on a pipe is left to finish on its own).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, never, Receiver, RecvTimeoutError, Sender};

use super::packet::{PacketDecoder, RawPacket};
use super::positioned::read_body;
#[cfg(target_endian = "little")]
use super::positioned::read_events_in_place;
use super::PacketHead;
use crate::events::{EventError, Packet, PacketData, Place, StreamKind};

/// What the framer hands a worker: a body it read, or where to read one (positioned files).
pub enum Job {
    Owned(RawPacket),
    At(PacketHead, Arc<File>),
}

type Numbered<T> = (u64, T);

pub struct Pipeline {
    results: Receiver<Numbered<Result<Packet, EventError>>>,
    /// The consumer decodes a job itself rather than wait for a worker: on a 2-core machine
    /// two workers alone left a core idle whenever both waited on the consumer.
    jobs: Receiver<Numbered<Result<Job, EventError>>>,
    helper: Worker,
    waiting: BTreeMap<u64, Result<Packet, EventError>>,
    next_seq: u64,
    done: bool,
    /// Nothing is sent on it: each thread holds a sender, so it disconnects once all are done.
    finished: Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

/// How long dropping a pipeline waits for its threads. Workers stop after the packet in hand;
/// only a framer blocked reading a pipe or socket can take longer, and is then left detached.
const JOIN_DEADLINE: Duration = Duration::from_secs(1);

/// Decodes jobs: one per thread, with its own decoder and body buffer.
struct Worker {
    decoder: PacketDecoder,
    place: Place,
    body: Vec<u8>,
}

impl Worker {
    fn run(&mut self, item: Result<Job, EventError>) -> Result<Packet, EventError> {
        match item? {
            Job::Owned(raw) => self.decoder.decode_raw(&raw),
            #[cfg(target_endian = "little")]
            Job::At(head, file) if self.decoder.is_uncompressed() && head.kind == StreamKind::Events => {
                let events = read_events_in_place(&file, &head, &self.place)?;
                Ok(Packet { stream: head.stream, data: PacketData::Events(events) })
            }
            Job::At(head, file) => {
                read_body(&file, &head, &mut self.body, &self.place)?;
                self.decoder.decode(head.stream, head.kind, head.body_at, &self.body)
            }
        }
    }
}

impl Pipeline {
    /// `next_job` runs on the framer thread until it returns `None` or an error; up to `queued`
    /// jobs wait for a worker. A deep queue keeps the workers fed while the framer waits for a
    /// core (on 2 cores, 4 queued jobs left a tenth of the CPU idle); decoded packets, which
    /// are what is large, wait in a short one.
    pub fn start(
        mut next_job: impl FnMut() -> Result<Option<Job>, EventError> + Send + 'static,
        decoder: PacketDecoder,
        place: Place,
        workers: usize,
        queued: usize,
    ) -> io::Result<Self> {
        let (job_tx, job_rx) = bounded::<Numbered<Result<Job, EventError>>>(queued.max(1));
        let (out_tx, out_rx) = bounded(2 * workers);
        let (alive, finished) = bounded::<()>(0);
        let mut threads = Vec::with_capacity(workers + 1);
        let framer_alive = alive.clone();
        threads.push(thread::Builder::new().name("aedat4-framer".into()).spawn(move || {
            let _alive = framer_alive;
            for seq in 0.. {
                let item = match next_job() {
                    Ok(Some(job)) => Ok(job),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if job_tx.send((seq, item)).is_err() || stop {
                    return;
                }
            }
        })?);
        let worker = || Worker { decoder: decoder.clone(), place: place.clone(), body: Vec::new() };
        for i in 0..workers {
            let (job_rx, out_tx, mut worker) = (job_rx.clone(), out_tx.clone(), worker());
            let alive: Sender<()> = alive.clone();
            threads.push(thread::Builder::new().name(format!("aedat4-decode-{i}")).spawn(move || {
                let _alive = alive;
                for (seq, item) in job_rx {
                    if out_tx.send((seq, worker.run(item))).is_err() {
                        return;
                    }
                }
            })?);
        }
        Ok(Pipeline {
            results: out_rx,
            jobs: job_rx,
            helper: worker(),
            waiting: BTreeMap::new(),
            next_seq: 0,
            done: false,
            finished,
            threads,
        })
    }

    pub fn next(&mut self) -> Result<Option<Packet>, EventError> {
        while !self.done {
            if let Some(result) = self.waiting.remove(&self.next_seq) {
                self.next_seq += 1;
                self.done = result.is_err();
                return result.map(Some);
            }
            let received = match self.results.try_recv() {
                Ok(numbered) => Ok(numbered),
                Err(_) => match self.jobs.try_recv() {
                    Ok((seq, item)) => Ok((seq, self.helper.run(item))),
                    Err(_) => self.results.recv(),
                },
            };
            match received {
                Ok((seq, result)) => {
                    self.waiting.insert(seq, result);
                }
                // Every worker has finished and everything received was handed out.
                Err(_) => self.done = true,
            }
        }
        Ok(None)
    }
}

impl Drop for Pipeline {
    /// Threads left running after their source is gone would hold its file and memory for a
    /// while after (and make every fuzz input look like a leak to libFuzzer).
    fn drop(&mut self) {
        // With our ends closed, each thread's next send or receive fails and it returns.
        self.results = never();
        self.jobs = never();
        if let Err(RecvTimeoutError::Disconnected) = self.finished.recv_timeout(JOIN_DEADLINE) {
            for handle in self.threads.drain(..) {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::events::aedat4::Compression;

    fn pipeline(next_job: impl FnMut() -> Result<Option<Job>, EventError> + Send + 'static) -> Pipeline {
        let decoder = PacketDecoder::new("test".into(), Compression::None);
        Pipeline::start(next_job, decoder, Place::new("test"), 2, 4).unwrap()
    }

    #[test]
    fn dropping_a_pipeline_joins_its_threads() {
        let token = Arc::new(());
        let held = Arc::clone(&token);
        // Endless empty packets: each decodes to an error, and the framer keeps producing.
        let mut p = pipeline(move || {
            let _ = &held;
            Ok(Some(Job::Owned(RawPacket { kind: StreamKind::Events, ..RawPacket::default() })))
        });
        assert!(p.next().is_err(), "an empty body is not an EVTS flatbuffer");
        drop(p);
        assert_eq!(Arc::strong_count(&token), 1, "the framer (and its closure) is gone once drop returns");
    }

    #[test]
    fn a_framer_blocked_on_its_input_does_not_hold_up_the_drop() {
        let (unblock, blocked) = crossbeam_channel::bounded::<()>(0);
        let p = pipeline(move || {
            let _ = blocked.recv(); // a read from a pipe that never delivers
            Ok(None)
        });
        let start = Instant::now();
        drop(p);
        assert!(start.elapsed() < Duration::from_secs(10), "drop waited {:?}", start.elapsed());
        drop(unblock); // lets the detached framer finish
    }
}
