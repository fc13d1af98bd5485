//! Packet decoding on worker threads, for files: a framer thread cuts raw packets, workers
//! decompress and decode them, and `next` hands them out in input order. Channels are bounded,
//! so at most a few packets per worker are in flight; dropping the pipeline stops every thread.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::thread;

use crossbeam_channel::{bounded, Receiver};

use super::packet::{PacketDecoder, RawPacket};
use super::Framer;
use crate::events::{EventError, Packet};

type Numbered<T> = (u64, T);

pub struct Pipeline {
    results: Receiver<Numbered<Result<Packet, EventError>>>,
    waiting: BTreeMap<u64, Result<Packet, EventError>>,
    next_seq: u64,
    done: bool,
}

impl Pipeline {
    pub fn start<R: BufRead + Send + 'static>(
        mut framer: Framer<R>,
        decoder: PacketDecoder,
        workers: usize,
    ) -> Self {
        let in_flight = 2 * workers;
        let (raw_tx, raw_rx) = bounded::<Numbered<Result<RawPacket, EventError>>>(in_flight);
        let (out_tx, out_rx) = bounded(in_flight);
        thread::Builder::new()
            .name("aedat4-framer".into())
            .spawn(move || {
                for seq in 0.. {
                    let mut raw = RawPacket::default();
                    let item = match framer.next_owned(&mut raw) {
                        Ok(true) => Ok(raw),
                        Ok(false) => return,
                        Err(e) => Err(e),
                    };
                    let stop = item.is_err();
                    if raw_tx.send((seq, item)).is_err() || stop {
                        return;
                    }
                }
            })
            .expect("spawning a thread");
        for i in 0..workers {
            let (raw_rx, out_tx, mut decoder) = (raw_rx.clone(), out_tx.clone(), decoder.clone());
            thread::Builder::new()
                .name(format!("aedat4-decode-{i}"))
                .spawn(move || {
                    for (seq, item) in raw_rx {
                        let result = item.and_then(|raw| decoder.decode_raw(&raw));
                        if out_tx.send((seq, result)).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawning a thread");
        }
        Pipeline {
            results: out_rx,
            waiting: BTreeMap::new(),
            next_seq: 0,
            done: false,
        }
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
