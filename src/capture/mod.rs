//! Capture threads: each owns one source and pushes what it reads into a [`Ring`], stamped
//! with its arrival time; it never waits on the consumer.

pub mod file;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::events::{Event, Frame};
use crate::ring::Ring;

/// What a capture thread hands on.
#[derive(Debug)]
pub enum Item {
    Events { events: Vec<Event>, arrived: Instant },
    Frame { frame: Frame, arrived: Instant },
}

/// A capture thread's end state, shared with the consumer: `done` is set after the last push.
#[derive(Debug, Default)]
pub struct CaptureStatus {
    done: AtomicBool,
    error: Mutex<Option<String>>,
}

impl CaptureStatus {
    pub fn finish(&self, error: Option<String>) {
        if let Ok(mut e) = self.error.lock() {
            *e = error;
        }
        self.done.store(true, Ordering::Release);
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// Everything a capture thread shares with the rest of the pipeline.
#[derive(Clone)]
pub struct CaptureLink {
    pub ring: Arc<Ring<Item>>,
    pub status: Arc<CaptureStatus>,
    pub stop: Arc<AtomicBool>,
}
