//! Replays a recorded file at its recorded pace (`speed` 1.0), any factor, or as fast as it
//! decodes (`None`); optionally in a loop, with timestamps kept increasing across loops.

use std::thread::JoinHandle;
use std::time::Instant;

use super::{CaptureLink, Item, Pacer};
use crate::events::{EventError, EventSource, PacketData, StreamKind};

pub struct ReplayOptions {
    /// Recorded-time factor (2.0 = twice as fast); None = no pacing.
    pub speed: Option<f64>,
    /// Start again at the end (the demo); every loop shifts timestamps past the last one.
    pub looping: bool,
    /// Pass on the recording's frames (false when RGB comes from elsewhere).
    pub forward_frames: bool,
}

/// Opens the source again for each loop.
pub type Reopen = Box<dyn FnMut() -> Result<Box<dyn EventSource>, EventError> + Send>;

/// Replays `first` (already open: a bad file fails before the pipeline reports ready), then,
/// when looping, what `reopen` opens.
pub fn spawn(
    first: Box<dyn EventSource>,
    mut reopen: Reopen,
    opts: ReplayOptions,
    link: CaptureLink,
) -> std::io::Result<JoinHandle<()>> {
    link.status.enter();
    std::thread::Builder::new().name("capture-file".into()).spawn(move || {
        let result = replay(first, &mut reopen, &opts, &link);
        link.status.finish(result.err().map(|e| e.to_string()));
    })
}

fn replay(
    first: Box<dyn EventSource>,
    reopen: &mut Reopen,
    opts: &ReplayOptions,
    link: &CaptureLink,
) -> Result<(), EventError> {
    let mut pacer = Pacer::new(opts.speed);
    let mut offset = 0i64;
    let mut next = Some(first);
    loop {
        let mut source = match next.take() {
            Some(s) => s,
            None => reopen()?,
        };
        let info = source.info();
        let events_id = info.first(StreamKind::Events).map(|s| s.id);
        let frames_id = info.first(StreamKind::Frames).map(|s| s.id);
        let mut last_t = None;
        let mut loop_first = None;
        while let Some(packet) = source.next_packet()? {
            if link.stopped() {
                return Ok(());
            }
            let item_t = match &packet.data {
                PacketData::Events(e) if Some(packet.stream) == events_id => e.last().map(|e| e.t),
                PacketData::Frame(f) if opts.forward_frames && Some(packet.stream) == frames_id => Some(f.t),
                _ => None,
            };
            let Some(t) = item_t else { continue };
            loop_first.get_or_insert(t);
            // Every loop replays the same file: its timestamps move on by `offset`.
            pacer.wait(t + offset, link);
            last_t = Some(t);
            let arrived = Instant::now();
            let item = match packet.data {
                PacketData::Events(mut events) => {
                    if offset != 0 {
                        events.iter_mut().for_each(|e| e.t += offset);
                    }
                    link.saw_events(&events);
                    Item::Events { events, arrived }
                }
                PacketData::Frame(mut frame) => {
                    frame.t += offset;
                    frame.exposure_start += offset;
                    frame.exposure_end += offset;
                    Item::Frame { frame, arrived }
                }
                _ => continue,
            };
            link.ring.push(item);
        }
        if !opts.looping {
            return Ok(());
        }
        // Next loop: continue one frame interval (33 ms) after the last item.
        let (Some(lf), Some(lt)) = (loop_first, last_t) else { return Ok(()) };
        offset += lt - lf + 33_333;
    }
}
