//! The bounded, lock-free queue between a capture thread and the processing stage. A capture
//! thread never waits on a slow consumer: when the queue is full, the configured policy drops
//! an item and counts it.
//!
//! - `drop-oldest` (default): the oldest queued item makes room, so what is processed next
//!   is recent: latency stays bounded under overload.
//! - `drop-newest`: the item being pushed is dropped; the backlog is kept.
//!
//! Built on crossbeam's `ArrayQueue` rather than `ringbuf`: an SPSC ring's producer cannot
//! evict the oldest item (only the consumer pops), and `ArrayQueue::force_push` does exactly
//! that, atomically and without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    #[default]
    DropOldest,
    DropNewest,
}

#[derive(Debug)]
pub struct Ring<T> {
    queue: ArrayQueue<T>,
    policy: Overflow,
    pushed: AtomicU64,
    dropped: AtomicU64,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize, policy: Overflow) -> Arc<Self> {
        Arc::new(Ring {
            queue: ArrayQueue::new(capacity.max(1)),
            policy,
            pushed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Never blocks; returns false when an item was dropped to make this push fit (or this
    /// item itself, with drop-newest).
    pub fn push(&self, item: T) -> bool {
        self.pushed.fetch_add(1, Ordering::Relaxed);
        let lost = match self.policy {
            Overflow::DropOldest => self.queue.force_push(item).is_some(),
            Overflow::DropNewest => self.queue.push(item).is_err(),
        };
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        !lost
    }

    /// Waits while the queue is full (a dataset replay, which must score every frame, not the
    /// freshest: its source is a file that can wait); false when `stop` was set first.
    pub fn push_wait(&self, item: T, stop: &std::sync::atomic::AtomicBool) -> bool {
        let mut item = item;
        loop {
            match self.queue.push(item) {
                Ok(()) => {
                    self.pushed.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(back) if !stop.load(Ordering::Relaxed) => {
                    item = back;
                    // 1 ms: the queue is a few pairs deep, and a shorter nap only costs wake-ups.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
    }

    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_newest_keeps_the_backlog() {
        let r = Ring::new(2, Overflow::DropNewest);
        assert!(r.push(1) && r.push(2));
        assert!(!r.push(3));
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some(1), Some(2), None));
        assert_eq!((r.pushed(), r.dropped()), (3, 1));
    }

    #[test]
    fn drop_oldest_keeps_the_newest() {
        let r = Ring::new(2, Overflow::DropOldest);
        for i in 1..=5 {
            r.push(i);
        }
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some(4), Some(5), None));
        assert_eq!(r.dropped(), 3);
    }
}
