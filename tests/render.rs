//! Training and serving render the same pixels: safed's streaming pairer (what `run` and
//! `replay` feed the model) gives, frame for frame, the images safe-train reads from the same
//! recording (`RecordedClip::images`), for both event representations.

mod common;

use std::time::Instant;

use safed::accumulate::{read_clip, FrameWindow, Representation, WindowMode};
use safed::events::{EventSource, PacketData, StreamKind};
use safed::sync::{Pair, Pairer};

fn open(name: &str) -> Box<dyn EventSource> {
    match name {
        "bundled" => safed::demo::open_sample().unwrap(),
        file => safed::events::open(&common::data(file).display().to_string()).unwrap(),
    }
}

/// Every pair the streaming pairer makes from the recording, fed packet by packet as replay does.
fn streamed(name: &str, events: Representation) -> Vec<Pair> {
    let mut src = open(name);
    let info = src.info();
    let ev = info.first(StreamKind::Events).unwrap();
    let (sensor, ev_id) = (ev.size.map(|(w, h)| (w as u32, h as u32)).unwrap(), ev.id);
    let fr_id = info.first(StreamKind::Frames).unwrap().id;
    let mut pairer = Pairer::new(WindowMode::FrameInterval, sensor, 1 << 24).with_representation(events);
    let mut out = Vec::new();
    while let Some(p) = src.next_packet().unwrap() {
        match p.data {
            PacketData::Events(e) if p.stream == ev_id => pairer.push_events(&e, Instant::now(), &mut out),
            PacketData::Frame(f) if p.stream == fr_id => pairer.push_frame(f, Instant::now(), &mut out),
            _ => {}
        }
    }
    pairer.finish(&mut out);
    out
}

#[test]
fn streamed_pairs_equal_the_trainers_images() {
    for name in ["bundled", "davis346_aedat-crate_trimmed.aedat4", "dv_davis_frames_lz4.aedat4"] {
        for events in Representation::ALL {
            let clip = read_clip(open(name).as_mut()).unwrap();
            let want = clip.images(FrameWindow::Interval, events, safed::dataset::EVENT_ONLY_WINDOW_US, name).unwrap();
            let got = streamed(name, events);
            assert_eq!(got.len(), want.events.len(), "{name} {events}: pairs");
            for (k, pair) in got.iter().enumerate() {
                assert!(pair.rgb == want.rgb[k], "{name} {events}: frame {k} differs");
                assert!(pair.events == want.events[k], "{name} {events}: event image {k} differs");
            }
        }
    }
}
