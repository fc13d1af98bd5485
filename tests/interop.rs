//! Interop with the vendors' own tools from PyPI (dv-processing, faery), run from the venv that
//! `tools/setup.sh` makes. Each test writes a fresh random stream with a vendor's writer (or
//! serves it with dv-processing's NetworkWriter) and compares our decode event by event; our
//! AEDAT4 writer is checked by dv-processing's reader. Without the venv the tests say that they
//! skipped, except under CI, where a missing venv is a failure.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{csv_of, venv_python};
use safed::events::aedat4::writer::{Aedat4Writer, DeclKind, StreamDecl};
use safed::events::aedat4::Compression;
use safed::events::{open, open_with, Event, EventSource, Frame, OpenOptions, PacketData, PixelFormat};

fn peer(python: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py");
    let out = Command::new(python).arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "peer.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// (t, width, height, pixel sum) of every frame of a source.
fn frames_of(mut source: Box<dyn EventSource>) -> Vec<(i64, u16, u16, u64)> {
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        if let PacketData::Frame(f) = p.data {
            assert_eq!(f.format, PixelFormat::Gray);
            out.push((f.t, f.width, f.height, f.pixels.iter().map(|&v| v as u64).sum()));
        }
    }
    out
}

#[test]
fn dv_processing_files_none_lz4_zstd_with_frames() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (compression, seed) in [("none", "11"), ("lz4", "12"), ("zstd", "13")] {
        let path = dir.path().join(format!("dv_{compression}.aedat4"));
        let p = path.to_str().unwrap();
        peer(&py, &["dv-write", p, "--compression", compression, "--events", "60000", "--frames", "6", "--seed", seed]);
        for threads in [1, 2] {
            let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
            let got = csv_of(open_with(p, &opts).unwrap()).unwrap();
            assert!(
                got == read(&with_suffix(&path, ".expected.csv")),
                "{compression}: events differ (threads {threads})"
            );
        }
        let want: Vec<(i64, u16, u16, u64)> = read(&with_suffix(&path, ".frames.csv"))
            .lines()
            .skip(1)
            .map(|l| {
                let v: Vec<i64> = l.split(',').map(|x| x.parse().unwrap()).collect();
                (v[0], v[1] as u16, v[2] as u16, v[3] as u64)
            })
            .collect();
        assert_eq!(want.len(), 6);
        assert_eq!(frames_of(open(p).unwrap()), want, "{compression}: frames differ");
    }
}

#[test]
fn faery_evt2_evt3_aedat4_and_dat() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = [("evt2", "f.raw"), ("evt3", "f3.raw"), ("aedat4", "f.aedat4"), ("dat1", "f1.dat"), ("dat2", "f2.dat")];
    for (version, file) in files {
        let path = dir.path().join(file);
        let p = path.to_str().unwrap();
        peer(&py, &["faery-write", p, "--version", version, "--events", "50000", "--seed", "5"]);
        let got = csv_of(open(p).unwrap()).unwrap();
        assert!(got == read(&with_suffix(&path, ".expected.csv")), "{version}: events differ");
    }
}

/// No vendor writes N-MNIST's `.bin`: the file is checked through tonic's own reader, with and
/// without `--input-format atis-bin`.
#[test]
fn atis_bin_reads_as_tonic_reads_it() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.bin");
    let p = path.to_str().unwrap();
    peer(&py, &["atis-write", p, "--events", "40000", "--seed", "7"]);
    let tonic = peer(&py, &["tonic-read", p]);
    assert!(csv_of(open(p).unwrap()).unwrap() == tonic, "guessed: events differ from tonic's");
    let forced = OpenOptions { format: Some(safed::events::Format::AtisBin), ..OpenOptions::default() };
    assert!(csv_of(open_with(p, &forced).unwrap()).unwrap() == tonic, "forced: events differ from tonic's");
}

#[test]
fn rpg_events_txt() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.txt");
    let p = path.to_str().unwrap();
    peer(&py, &["text-write", p, "--events", "40000", "--seed", "8"]);
    assert!(csv_of(open(p).unwrap()).unwrap() == read(&with_suffix(&path, ".expected.csv")), "events differ");
}

/// DSEC's layout written by h5py: plain, deflate and Blosc (zstd, lz4: hdf5plugin's filter, the
/// one DSEC ships with), 300k events so reads cross the reader's slices and the chunks.
#[test]
fn h5py_files_plain_deflate_and_blosc() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (compression, seed) in [("none", "21"), ("gzip", "22"), ("blosc-zstd", "23"), ("blosc-lz4", "24")] {
        let path = dir.path().join(format!("{compression}.h5"));
        let p = path.to_str().unwrap();
        peer(&py, &["h5-write", p, "--events", "300000", "--compression", compression, "--seed", seed]);
        let want = read(&with_suffix(&path, ".expected.csv"));
        assert!(csv_of(open(p).unwrap()).unwrap() == want, "{compression}: events differ");
        assert!(peer(&py, &["h5-read", p]) == want, "{compression}: h5py reads another stream");
    }
}

/// `safed convert ARGS...`, its output collected.
fn convert(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_safed")).arg("convert").args(args).output().unwrap()
}

/// `safed convert` of a dv-processing recording (epoch µs times, 6 frames) into every format it
/// writes, each read back by a vendor's or a peer's own reader: dv-processing (AEDAT4, frames
/// too), faery (EVT 2.0, EVT 3.0, DAT, CSV), numpy (npz), h5py (HDF5). RAW has no time origin:
/// those go through `--zero-time` and are compared shifted.
#[test]
fn convert_round_trips_through_the_peers_readers() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.aedat4");
    let i = input.to_str().unwrap();
    peer(&py, &["dv-write", i, "--compression", "lz4", "--events", "80000", "--frames", "6", "--seed", "31"]);
    let want = read(&with_suffix(&input, ".expected.csv"));
    let t0: i64 = want.lines().nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let shifted: String = want
        .lines()
        .enumerate()
        .map(|(n, l)| match (n, l.split_once(',')) {
            (0, _) | (_, None) => format!("{l}\n"),
            (_, Some((t, rest))) => format!("{},{rest}\n", t.parse::<i64>().unwrap() - t0),
        })
        .collect();
    let cases: [(&str, &[&str], &str, bool); 7] = [
        ("out.aedat4", &[], "dv-read", false),
        ("out2.raw", &["--to", "evt2", "--zero-time"], "faery-read", true),
        ("out3.raw", &["--zero-time"], "faery-read", true),
        ("out.dat", &[], "faery-read", false),
        ("out.csv", &[], "faery-read", false),
        ("out.npz", &[], "npz-read", false),
        ("out.h5", &[], "h5-read", false),
    ];
    for (name, flags, reader, zeroed) in cases {
        let out = dir.path().join(name);
        let o = out.to_str().unwrap();
        let done = convert(&[&[i, o], flags].concat());
        assert!(done.status.success(), "{name}: convert failed: {}", String::from_utf8_lossy(&done.stderr));
        let got = peer(&py, &[reader, o]);
        let events: String = got.lines().filter(|l| !l.starts_with("frame,")).map(|l| format!("{l}\n")).collect();
        assert!(events == if zeroed { shifted.as_str() } else { want.as_str() }, "{name}: {reader} reads other events");
        if name.ends_with(".aedat4") {
            assert_eq!(got.lines().filter(|l| l.starts_with("frame,")).count(), 6, "frames lost");
        }
    }
}

#[test]
fn convert_keeps_a_time_range_and_says_what_a_format_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.csv");
    let input = common::data("dv_events_zstd.aedat4");
    let all = csv_of(open(input.to_str().unwrap()).unwrap()).unwrap();
    let times: Vec<i64> = all.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    let (a, b) = (times[times.len() / 4], times[times.len() / 2]);
    let range = format!("{a}..{b}");
    assert!(convert(&[input.to_str().unwrap(), out.to_str().unwrap(), "--time-range", &range]).status.success());
    let want: String = std::iter::once("t,x,y,p\n".to_string())
        .chain(
            all.lines()
                .skip(1)
                .filter(|l| {
                    let t: i64 = l.split(',').next().unwrap().parse().unwrap();
                    t >= a && t < b
                })
                .map(|l| format!("{l}\n")),
        )
        .collect();
    assert!(read(&out) == want, "time range: other events");
    // Epoch-µs times do not fit RAW: the error names the event and the way out.
    let raw = dir.path().join("x.raw");
    let failed = convert(&[input.to_str().unwrap(), raw.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && err.contains("event 0 (t ") && err.contains("--zero-time"), "{err}");
    // A text input states no sensor size: RAW and DAT ask for one.
    let dat = dir.path().join("x.dat");
    let failed = convert(&[common::data("rpg_events.txt").to_str().unwrap(), dat.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&failed.stderr).contains("--size WIDTHxHEIGHT"));
}

#[test]
fn our_aedat4_writer_is_read_by_dv_processing() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let decls = [
        StreamDecl { id: 0, name: "events".into(), kind: DeclKind::Events, size: (64, 48), source: "safed".into() },
        StreamDecl { id: 1, name: "frames".into(), kind: DeclKind::Frames, size: (64, 48), source: "safed".into() },
    ];
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let path = dir.path().join(format!("ours_{}.aedat4", compression.name()));
        let mut w = Aedat4Writer::new(std::fs::File::create(&path).unwrap(), compression, &decls, true).unwrap();
        let mut expected = String::from("t,x,y,p\n");
        let mut frames = Vec::new();
        for k in 0..4i64 {
            let t = 1_700_000_000_000_000 + k * 10_000;
            let pixels: Vec<u8> = (0..64 * 48).map(|i| ((i as i64 * 7 + k * 13) % 256) as u8).collect();
            let sum: u64 = pixels.iter().map(|&v| v as u64).sum();
            let f = Frame {
                t,
                exposure_start: t - 500,
                exposure_end: t + 500,
                width: 64,
                height: 48,
                position: (0, 0),
                format: PixelFormat::Gray,
                pixels,
            };
            w.write_frame(1, &f).unwrap();
            // dv-processing's Frame.timestamp is the start of exposure (DV's field `timestamp`
            // is the midpoint, which is what we keep as Frame::t).
            frames.push(format!("frame,{},64,48,{sum}", f.exposure_start));
            let events: Vec<Event> = (0..500)
                .map(|i| Event { t: t + i, x: (i % 64) as u16, y: ((i * 7) % 48) as u16, p: i % 3 == 0 })
                .collect();
            for e in &events {
                expected.push_str(&format!("{},{},{},{}\n", e.t, e.x, e.y, u8::from(e.p)));
            }
            w.write_events(0, &events).unwrap();
        }
        w.into_inner().unwrap();
        let dv = peer(&py, &["dv-read", path.to_str().unwrap()]);
        let (dv_events, dv_frames): (Vec<&str>, Vec<&str>) = dv.lines().partition(|l| !l.starts_with("frame,"));
        assert!(dv_events.join("\n") + "\n" == expected, "{}: dv-processing reads other events", compression.name());
        assert_eq!(dv_frames, frames, "{}: dv-processing reads other frames", compression.name());
    }
}

/// Starts `peer.py dv-serve` and waits until its server accepts connections.
fn serve(py: &Path, where_: &[&str], expected: &Path) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py");
    let mut args: Vec<&str> = vec!["dv-serve"];
    args.extend_from_slice(where_);
    args.extend_from_slice(&["--events", "40000", "--expected", expected.to_str().unwrap()]);
    let mut child = Command::new(py).arg(script).args(&args).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    child
}

fn read_stream(url: &str) -> String {
    let start = Instant::now();
    loop {
        match open(url) {
            Ok(source) => return csv_of(source).unwrap(),
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                eprintln!("retrying {url}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn dv_processing_network_writer_over_tcp() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let expected = dir.path().join("tcp.csv");
    let mut child = serve(&py, &["--tcp", &port], &expected);
    let got = read_stream(&format!("tcp://127.0.0.1:{port}"));
    assert!(child.wait().unwrap().success());
    assert!(got == read(&expected), "TCP stream differs from what NetworkWriter sent");
}

#[test]
fn dv_processing_network_writer_over_unix_socket() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("dv.sock");
    let expected = dir.path().join("unix.csv");
    let mut child = serve(&py, &["--unix", socket.to_str().unwrap()], &expected);
    let got = read_stream(&format!("unix://{}", socket.display()));
    assert!(child.wait().unwrap().success());
    assert!(got == read(&expected), "Unix-socket stream differs from what NetworkWriter sent");
}
