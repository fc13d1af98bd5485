//! Every vendor fixture decodes to its expected CSV, byte for byte, with inline and threaded
//! packet decoding, through the library and through `safed dump`.

mod common;

use std::process::Command;

use common::{csv_of, data, FIXTURES, PATH_FIXTURES};
use safed::events::{self, OpenOptions, PacketData, PixelFormat, StreamKind};

fn expected(name: &str) -> String {
    std::fs::read_to_string(data(&format!("{name}.expected.csv"))).unwrap()
}

#[test]
fn every_fixture_matches_its_expected_csv() {
    for name in FIXTURES.iter().chain(PATH_FIXTURES) {
        for threads in [1, 3] {
            let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
            let source = events::open_with(data(name).to_str().unwrap(), &opts).unwrap();
            let got = csv_of(source).unwrap();
            assert!(got == expected(name), "{name} (threads {threads}) differs from its expected CSV");
        }
    }
}

#[test]
fn dump_command_prints_the_expected_csv() {
    for name in ["dv_events_zstd.aedat4", "faery_evt3.raw", "jaer_davis240c.aedat", "h5py_blosc.h5"] {
        let out = Command::new(env!("CARGO_BIN_EXE_safed")).arg("dump").arg(data(name)).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == expected(name).as_bytes(), "{name}: dump output differs");
    }
}

#[test]
fn davis_recording_keeps_frames_imu_and_triggers() {
    let mut source = events::open(data("davis346_aedat-crate_trimmed.aedat4").to_str().unwrap()).unwrap();
    let kinds: Vec<_> = source.info().streams.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [StreamKind::Events, StreamKind::Frames, StreamKind::Imu, StreamKind::Triggers]);
    let (mut frames, mut imu, mut triggers) = (Vec::new(), 0, 0);
    while let Some(p) = source.next_packet().unwrap() {
        match p.data {
            PacketData::Frame(f) => frames.push(f),
            PacketData::Imu(v) => imu += v.len(),
            PacketData::Triggers(v) => triggers += v.len(),
            PacketData::Events(_) => {}
        }
    }
    assert_eq!((frames.len(), imu, triggers), (12, 481, 49));
    for f in &frames {
        assert_eq!((f.width, f.height, f.format), (346, 260, PixelFormat::Gray));
        assert_eq!(f.pixels.len(), 346 * 260);
        assert!(f.exposure_start <= f.t && f.t <= f.exposure_end, "timestamp is the exposure midpoint");
    }
    // A real scene: frames are not blank.
    assert!(frames[0].pixels.iter().any(|&p| p != frames[0].pixels[0]));
}

#[test]
fn info_reports_counts_and_time_span() {
    let out = Command::new(env!("CARGO_BIN_EXE_safed"))
        .args(["info", "--json"])
        .arg(data("dv_davis_frames_lz4.aedat4"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "aedat4");
    assert_eq!(v["events"], 20000);
    assert_eq!(v["frames"], 25);
    assert_eq!(v["sensor_size"], serde_json::json!([346, 260]));
    assert_eq!(v["first_t"], 1764000000000002i64);
    assert_eq!(v["last_t"], 1764000000220100i64);
    assert_eq!(v["streams"][1]["type_id"], "FRME");
}

#[test]
fn stream_selection_by_name_and_id() {
    let path = data("dv_davis_frames_lz4.aedat4");
    let by_name =
        Command::new(env!("CARGO_BIN_EXE_safed")).args(["dump", "--stream", "events"]).arg(&path).output().unwrap();
    assert!(by_name.status.success());
    assert!(by_name.stdout == expected("dv_davis_frames_lz4.aedat4").as_bytes());
    let wrong = Command::new(env!("CARGO_BIN_EXE_safed")).args(["dump", "--stream", "7"]).arg(&path).output().unwrap();
    assert!(!wrong.status.success());
    let msg = String::from_utf8_lossy(&wrong.stderr);
    assert!(msg.contains("no stream with id 7") && msg.contains("\"frames\" (FRME)"), "{msg}");
    let not_events =
        Command::new(env!("CARGO_BIN_EXE_safed")).args(["dump", "--stream", "frames"]).arg(&path).output().unwrap();
    assert!(!not_events.status.success());
    assert!(String::from_utf8_lossy(&not_events.stderr).contains("as events (it is FRME)"));
}

#[test]
fn no_source_means_the_bundled_sample() {
    let out = Command::new(env!("CARGO_BIN_EXE_safed")).args(["dump", "--limit", "2"]).output().unwrap();
    assert!(out.status.success());
    let head: String =
        expected("davis346_aedat-crate_trimmed.aedat4").lines().take(3).map(|l| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), head);
}
