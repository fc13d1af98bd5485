//! A live source (an AEDAT4 stream over tcp:// or unix://, a udp:// socket, a usb: camera),
//! reopened with exponential backoff when it fails, the server goes away or falls silent, so a
//! restarted camera server or a camera plugged in again is picked up.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CaptureLink, Item};
use crate::events::{open_with, EventSource, OpenOptions, PacketData, StreamKind};

#[derive(Debug, Clone)]
pub struct LiveCapture {
    pub endpoint: String,
    pub options: OpenOptions,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
}

/// Reads `first` (already connected) and reconnects to `endpoint` after any error, until stopped.
pub fn spawn(
    first: Box<dyn EventSource>,
    cfg: LiveCapture,
    forward_frames: bool,
    link: CaptureLink,
) -> std::io::Result<JoinHandle<()>> {
    link.status.enter();
    std::thread::Builder::new().name("capture-live".into()).spawn(move || {
        let mut source = Some(first);
        let mut delay = cfg.reconnect_initial;
        // What earlier connections lost (each source counts from 0).
        let mut dropped_before = 0;
        while !link.stop.load(Ordering::Relaxed) {
            let mut s = match source.take() {
                Some(s) => s,
                None => match open_with(&cfg.endpoint, &cfg.options) {
                    Ok(s) => {
                        tracing::info!("{}: reconnected", cfg.endpoint);
                        link.reconnects.fetch_add(1, Ordering::Relaxed);
                        s
                    }
                    Err(e) => {
                        tracing::warn!("{e}; retrying in {} ms", delay.as_millis());
                        link.sleep_until(Instant::now() + delay);
                        delay = (delay * 2).min(cfg.reconnect_max);
                        continue;
                    }
                },
            };
            let started = Instant::now();
            let result = pump(s.as_mut(), forward_frames, &link, dropped_before);
            dropped_before += s.dropped();
            match result {
                Ok(()) => tracing::warn!("{}: the server closed the stream", cfg.endpoint),
                Err(e) => tracing::warn!("{}: {e}", cfg.endpoint),
            }
            // The connection is over: its last frames get what came, and the next one starts
            // a new clock.
            link.ring.push(Item::Reset);
            // A connection that lived a while resets the backoff.
            if started.elapsed() > cfg.reconnect_max {
                delay = cfg.reconnect_initial;
            }
        }
        link.status.finish(None);
    })
}

fn pump(
    source: &mut dyn EventSource,
    forward_frames: bool,
    link: &CaptureLink,
    dropped_before: u64,
) -> Result<(), crate::events::EventError> {
    let info = source.info();
    let events_id = info.first(StreamKind::Events).map(|s| s.id);
    let frames_id = info.first(StreamKind::Frames).map(|s| s.id);
    let mut sensor = source.sensor();
    while let Some(packet) = source.next_packet()? {
        if source.restarted() {
            link.ring.push(Item::Reset);
            link.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((w, h)) = source.sensor().filter(|s| Some(*s) != sensor) {
            sensor = Some((w, h));
            link.ring.push(Item::Sensor(w as u32, h as u32));
        }
        if link.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let arrived = Instant::now();
        link.source_dropped.store(dropped_before + source.dropped(), Ordering::Relaxed);
        match packet.data {
            // A live source with nothing to say returns empty packets, so the stop flag is seen.
            PacketData::Events(events) if events.is_empty() => {}
            PacketData::Events(events) if Some(packet.stream) == events_id => {
                link.saw_events(&events);
                link.ring.push(Item::Events { events, arrived });
            }
            PacketData::Frame(frame) if forward_frames && Some(packet.stream) == frames_id => {
                link.ring.push(Item::Frame { frame, arrived });
            }
            _ => {}
        }
    }
    Ok(())
}
