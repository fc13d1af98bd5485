//! Stage lifecycle: a stage thread's heartbeat (the watchdog feeds only while every stage
//! beats) and how long a stop may drain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a stop may spend processing what is already queued: SIGTERM must end the
/// process within 2 s.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(1000);
/// A stage thread silent for this long is stalled, and the watchdog is no longer fed.
const STALL: Duration = Duration::from_secs(2);
/// A stage thread's last sign of life, for the watchdog.
#[derive(Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    const DONE: u64 = u64::MAX;

    fn now_ms() -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    pub fn beat(&self) {
        self.0.store(Self::now_ms(), Ordering::Relaxed);
    }

    /// The thread ended on purpose: not a stall.
    pub fn done(&self) {
        self.0.store(Self::DONE, Ordering::Relaxed);
    }

    pub(super) fn stalled(&self) -> bool {
        self.stalled_at(Self::now_ms())
    }

    fn stalled_at(&self, now_ms: u64) -> bool {
        let last = self.0.load(Ordering::Relaxed);
        last != Self::DONE && now_ms.saturating_sub(last) > STALL.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_stage_is_stalled_and_a_finished_one_is_not() {
        let h = Heartbeat::default();
        h.0.store(1_000, Ordering::Relaxed);
        assert!(!h.stalled_at(2_500), "1.5 s of silence is within the 2 s allowed");
        assert!(h.stalled_at(3_500));
        h.done();
        assert!(!h.stalled_at(1_000_000), "a stage that ended on purpose is not a stall");
    }
}
