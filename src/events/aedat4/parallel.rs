//! Packet decoding on worker threads, for files: a framer thread cuts packets, workers
//! decompress and decode them, and `next` hands them out in input order. Channels are bounded,
//! so at most a few packets per worker are in flight; dropping the pipeline stops every thread.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver};

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
    waiting: BTreeMap<u64, Result<Packet, EventError>>,
    next_seq: u64,
    done: bool,
}

impl Pipeline {
    /// `next_job` runs on the framer thread until it returns `None` or an error.
    pub fn start(
        mut next_job: impl FnMut() -> Result<Option<Job>, EventError> + Send + 'static,
        decoder: PacketDecoder,
        place: Place,
        workers: usize,
    ) -> io::Result<Self> {
        let in_flight = 2 * workers;
        let (job_tx, job_rx) = bounded::<Numbered<Result<Job, EventError>>>(in_flight);
        let (out_tx, out_rx) = bounded(in_flight);
        thread::Builder::new().name("aedat4-framer".into()).spawn(move || {
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
        })?;
        for i in 0..workers {
            let (job_rx, out_tx, mut decoder) = (job_rx.clone(), out_tx.clone(), decoder.clone());
            let place = place.clone();
            thread::Builder::new().name(format!("aedat4-decode-{i}")).spawn(move || {
                let mut body = Vec::new();
                for (seq, item) in job_rx {
                    let result = item.and_then(|job| match job {
                        Job::Owned(raw) => decoder.decode_raw(&raw),
                        #[cfg(target_endian = "little")]
                        Job::At(head, file) if decoder.is_uncompressed() && head.kind == StreamKind::Events => {
                            let events = read_events_in_place(&file, &head, &place)?;
                            Ok(Packet { stream: head.stream, data: PacketData::Events(events) })
                        }
                        Job::At(head, file) => {
                            read_body(&file, &head, &mut body, &place)?;
                            decoder.decode(head.stream, head.kind, head.body_at, &body)
                        }
                    });
                    if out_tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            })?;
        }
        Ok(Pipeline { results: out_rx, waiting: BTreeMap::new(), next_seq: 0, done: false })
    }

    pub fn next(&mut self) -> Result<Option<Packet>, EventError> {
        while !self.done {
            if let Some(result) = self.waiting.remove(&self.next_seq) {
                self.next_seq += 1;
                self.done = result.is_err();
                return result.map(Some);
            }
            match self.results.recv() {
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
