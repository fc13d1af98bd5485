//! How streams share inference calls: the pairs ready across streams are taken up to a batch,
//! a ready pair waiting at most `wait` for others to fill it.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::accumulate::Work;

/// Pairs waiting between the accumulate and inference stages, per stream (at least a batch).
/// One: under overload a pair waits in this FIFO for every pair ahead of it, while the capture
/// queue before it drops the oldest and stays fresh (4 per stream added ~20 ms end to end with
/// 4 streams, and no throughput).
pub const PAIRS_PER_STREAM: usize = 1;

/// How streams share inference calls.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Pairs encoded in one call at most.
    pub max_pairs: usize,
    /// How long a ready pair may wait for more to fill the batch.
    pub wait: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_pairs: 1, wait: Duration::ZERO }
    }
}

impl Batching {
    /// Takes what the accumulate stages sent, up to a batch: waits for the first item (at most
    /// 50 ms, so the loop turns for the watchdog; or what is left of the batch wait), then takes
    /// what else is there. True when every accumulate stage has ended.
    pub fn gather(&self, rx: &Receiver<Work>, ready: &mut Vec<Work>, since: Option<Instant>) -> bool {
        let wait = match since {
            None => Duration::from_millis(50),
            Some(t) => (t + self.wait).saturating_duration_since(Instant::now()),
        };
        match rx.recv_timeout(wait) {
            Ok(w) => ready.push(w),
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => return true,
        }
        while pairs(ready) < self.max_pairs {
            match rx.try_recv() {
                Ok(w) => ready.push(w),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
        false
    }
}

/// Pairs (not resets) in a work list.
pub fn pairs(work: &[Work]) -> usize {
    work.iter().filter(|w| matches!(w, Work::Pair(..))).count()
}
