//! Bad input gets a clear error (input, byte offset, what was expected): never a panic, a hang
//! or an unbounded allocation.

mod common;

use std::io::{Cursor, Write};

use common::{data, drain, FIXTURES};
use safed::events::aedat4::writer::{Aedat4Writer, DeclKind, StreamDecl};
use safed::events::aedat4::Compression;
use safed::events::{open_reader, Event, EventError, OpenOptions};

fn open_bytes(bytes: Vec<u8>, threads: usize) -> Result<usize, EventError> {
    let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
    drain(open_reader(Cursor::new(bytes), "mem.bin", &opts)?)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// Deterministic pseudo-random numbers, so failures replay.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn truncation_anywhere_never_panics_and_errors_name_the_offset() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let step = (bytes.len() / 60).max(1);
        for cut in (1..bytes.len()).step_by(step) {
            for threads in [1, 2] {
                if let Err(e) = open_bytes(bytes[..cut].to_vec(), threads) {
                    let msg = e.to_string();
                    assert!(msg.starts_with("mem.bin: "), "{name} cut at {cut}: {msg}");
                    if matches!(e, EventError::Truncated { .. }) {
                        assert!(msg.contains("truncated at byte") && msg.contains("expected"), "{msg}");
                    }
                }
            }
        }
    }
}

#[test]
fn aedat4_cut_inside_a_packet_is_reported_as_truncated() {
    let bytes = fixture("dv_events_lz4.aedat4");
    let cut = bytes.len() * 2 / 3;
    let err = open_bytes(bytes[..cut].to_vec(), 1).unwrap_err();
    assert!(matches!(err, EventError::Truncated { offset, .. } if offset == cut as u64), "{err}");
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut rng = Lcg(42);
    for name in FIXTURES {
        let original = fixture(name);
        for _ in 0..40 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.next() % 8 {
                let at = (rng.next() as usize) % bytes.len();
                bytes[at] = rng.next() as u8;
            }
            let _ = open_bytes(bytes, 1 + (rng.next() % 2) as usize);
        }
    }
}

#[test]
fn unknown_content_lists_the_formats_we_read() {
    let err = open_bytes(b"#!AER-DAT4.1\r\nhello".to_vec(), 1).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("unrecognised event format") && msg.contains("AEDAT 4.0 (#!AER-DAT4.0)"), "{msg}");
    assert!(open_bytes(Vec::new(), 1).is_err());
}

/// The IO header and first packet header of a real file, with the packet's size replaced.
fn aedat4_with_packet(stream: i32, size: i32, body: &[u8]) -> Vec<u8> {
    let file = fixture("dv_events_lz4.aedat4");
    let header_len = 14 + 4 + u32::from_le_bytes(file[14..18].try_into().unwrap()) as usize;
    let mut out = file[..header_len].to_vec();
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn a_huge_packet_size_is_refused_before_allocating() {
    let err = open_bytes(aedat4_with_packet(0, i32::MAX, b"xx"), 1).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EventError::TooLarge { .. }) && msg.contains("over the limit"), "{msg}");
    // A plausible size with too few bytes behind it: truncated, read as far as data came.
    let err = open_bytes(aedat4_with_packet(0, 50 << 20, &[0; 100]), 1).unwrap_err();
    assert!(matches!(err, EventError::Truncated { .. }), "{err}");
    let err = open_bytes(aedat4_with_packet(0, -5, &[]), 1).unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
}

#[test]
fn a_packet_of_an_undeclared_stream_is_an_error() {
    let err = open_bytes(aedat4_with_packet(9, 4, &[0; 4]), 2).unwrap_err();
    assert!(err.to_string().contains("stream 9, which the IO header does not declare"), "{err}");
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let mut enc = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        enc.write_all(&zeros).unwrap();
    }
    let (bomb, r) = enc.finish();
    r.unwrap();
    assert!(bomb.len() < 4 << 20, "the bomb is small on disk: {}", bomb.len());
    let err = open_bytes(aedat4_with_packet(0, bomb.len() as i32, &bomb), 1).unwrap_err();
    assert!(err.to_string().contains("a decompressed packet"), "{err}");
}

#[test]
fn garbage_instead_of_an_lz4_frame_names_the_body_offset() {
    let bytes = aedat4_with_packet(0, 16, &[0x55; 16]);
    let body_at = bytes.len() - 16;
    let err = open_bytes(bytes, 1).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("at byte {body_at}")) && msg.contains("not a valid lz4 frame"), "{msg}");
}

#[test]
fn a_wrong_flatbuffer_type_is_an_error() {
    // An uncompressed file whose event stream carries a frame.
    let decl = StreamDecl { id: 0, name: "events".into(), kind: DeclKind::Events, size: (8, 8), source: "t".into() };
    let mut w = Aedat4Writer::new(Vec::new(), Compression::None, std::slice::from_ref(&decl), true).unwrap();
    w.write_events(0, &[Event { t: 1, x: 2, y: 3, p: true }]).unwrap();
    let good = w.into_inner().unwrap();
    assert_eq!(open_bytes(good, 1).unwrap(), 1);
    let frame = safed::events::Frame {
        t: 0,
        exposure_start: 0,
        exposure_end: 0,
        width: 1,
        height: 1,
        position: (0, 0),
        format: safed::events::PixelFormat::Gray,
        pixels: vec![7],
    };
    let mut w = Aedat4Writer::new(Vec::new(), Compression::None, &[decl], true).unwrap();
    w.write_frame(0, &frame).unwrap();
    let err = open_bytes(w.into_inner().unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("expected a EVTS flatbuffer, found identifier"), "{err}");
}

#[test]
fn raw_without_an_event_format_line_is_an_error() {
    let err = open_bytes(b"% geometry 10x10\n% end\n\x00\x00".to_vec(), 1).unwrap_err();
    assert!(err.to_string().contains("names no event format"), "{err}");
    let err = open_bytes(b"% evt 4.0\n% end\n".to_vec(), 1).unwrap_err();
    assert!(err.to_string().contains("only EVT 2.0 and 3.0"), "{err}");
    let err = open_bytes(b"% evt 3.0\n% end\n\x00\x80\x00".to_vec(), 1).unwrap_err();
    assert!(err.to_string().contains("truncated") && err.to_string().contains("2-byte word"), "{err}");
}

#[test]
fn dat_with_a_bad_type_size_header_value_or_record_is_an_error_with_offset() {
    let msg = |bytes: &[u8]| open_bytes(bytes.to_vec(), 1).unwrap_err().to_string();
    let e = msg(b"% Version 2\n% Width 640\n\x07\x08");
    assert!(e.contains("DAT event type 7") && e.contains("at byte 24"), "{e}");
    let e = msg(b"% Version 2\n\x0c\x10");
    assert!(e.contains("DAT event size 16: expected 8"), "{e}");
    let e = msg(b"% Version 2\n% Width wide\n\x0c\x08");
    assert!(e.contains("% Width \"wide\": expected a width"), "{e}");
    let e = msg(b"% Version 2\n% Width 70000\n% Height 10\n\x0c\x08");
    assert!(e.contains("70000x10: out of range"), "{e}");
    let e = msg(b"% Version 2\n");
    assert!(e.contains("truncated") && e.contains("event type and size"), "{e}");
    let e = msg(b"% Version 2\n\x0c\x08\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00");
    assert!(e.contains("truncated") && e.contains("8-byte word (got 2 bytes)"), "{e}");
    // A RAW header is still RAW, a DAT header DAT.
    let e = msg(b"% evt 3.0\n% Width 10\n% end\n\x00\x80\x00");
    assert!(e.contains("2-byte word"), "{e}");
}

#[test]
fn aedat2_outside_the_sensor_is_an_error_with_offset() {
    let mut bytes = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n".to_vec();
    let header = bytes.len();
    let address: u32 = (300 << 12) | (5 << 22); // x = 300 on a 240-wide sensor
    bytes.extend_from_slice(&address.to_be_bytes());
    bytes.extend_from_slice(&7u32.to_be_bytes());
    let err = open_bytes(bytes, 1).unwrap_err();
    assert!(err.to_string().contains(&format!("at byte {header}: DVS address x=300")), "{err}");
}

#[test]
fn aedat31_without_end_of_header_is_truncated() {
    let err = open_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n".to_vec(), 1).unwrap_err();
    assert!(err.to_string().contains("#!END-HEADER"), "{err}");
}

#[test]
fn truncated_files_on_disk_read_by_position_say_where_they_end() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["dv_events_none.aedat4", "dv_events_lz4.aedat4", "dv_events_zstd.aedat4"] {
        let bytes = fixture(name);
        // Cuts inside the packets (these files end with a data table, which packets never read).
        for cut in [bytes.len() / 3, bytes.len() / 2] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let p = path.to_str().unwrap();
            for threads in [1, 2] {
                let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
                let err = drain(safed::events::open_with(p, &opts).unwrap()).unwrap_err();
                assert!(
                    matches!(err, EventError::Truncated { offset, .. } if offset == cut as u64),
                    "{name} cut {cut} threads {threads}: {err}"
                );
                assert!(err.to_string().starts_with(p), "{err}");
            }
        }
    }
}

#[test]
fn files_on_disk_decode_alike_inline_and_by_position_even_when_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.aedat4");
    let p = path.to_str().unwrap();
    let original = fixture("dv_events_none.aedat4");
    let mut rng = Lcg(7);
    for round in 0..30 {
        let mut bytes = original.clone();
        // Round 0: only polarity bytes other than 0/1 (they read as ON); later: random bytes.
        for _ in 0..1 + rng.next() % 6 {
            let at = 2000 + (rng.next() as usize) % (bytes.len() - 2000);
            bytes[at] = if round == 0 { 0x55 } else { rng.next() as u8 };
        }
        std::fs::write(&path, &bytes).unwrap();
        let decode = |threads| {
            let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
            safed::events::open_with(p, &opts)
                .map_err(|e| e.to_string())
                .and_then(|s| common::csv_of(s).map_err(|e| e.to_string()))
        };
        let (inline, positioned) = (decode(1), decode(2));
        match (&inline, &positioned) {
            (Ok(a), Ok(b)) => assert!(a == b, "round {round}: inline and positioned decodes differ"),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "round {round}: inline {:?} vs positioned {:?}",
                inline.as_ref().map(|_| ()),
                positioned.as_ref().map(|_| ())
            ),
        }
    }
}

#[test]
fn empty_event_packets_read_by_position_are_empty() {
    // An uncompressed file with an empty event packet between two others, read both ways.
    let decl = StreamDecl { id: 0, name: "events".into(), kind: DeclKind::Events, size: (8, 8), source: "t".into() };
    let mut w = Aedat4Writer::new(Vec::new(), Compression::None, &[decl], true).unwrap();
    w.write_events(0, &[Event { t: 1, x: 2, y: 3, p: true }]).unwrap();
    w.write_events(0, &[]).unwrap();
    w.write_events(0, &[Event { t: 4, x: 5, y: 6, p: false }]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.aedat4");
    std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    for threads in [1, 2] {
        let opts = OpenOptions { decode_threads: threads, ..OpenOptions::default() };
        let csv = common::csv_of(safed::events::open_with(path.to_str().unwrap(), &opts).unwrap()).unwrap();
        assert_eq!(csv, "t,x,y,p\n1,2,3,1\n4,5,6,0\n", "threads {threads}");
    }
}

/// HDF5 files that the library opens but that do not hold events as DSEC lays them out: each
/// error names the dataset (and the index, for a bad value).
#[test]
fn hdf5_without_events_or_with_lying_datasets_is_an_error_naming_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, build: &dyn Fn(&hdf5::Group)| {
        let path = dir.path().join(name);
        let file = hdf5::File::create(&path).unwrap();
        build(&file.create_group("events").unwrap());
        path.to_str().unwrap().to_string()
    };
    let column = |g: &hdf5::Group, key: &str, values: &[i32]| {
        g.new_dataset_builder().with_data(values).create(key).unwrap();
    };
    let full = |g: &hdf5::Group| {
        for key in ["t", "x", "y", "p"] {
            column(g, key, &[1, 2, 3]);
        }
    };
    type Build<'a> = Box<dyn Fn(&hdf5::Group) + 'a>;
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "missing.h5",
            Box::new(|g| ["t", "x", "y"].iter().for_each(|k| column(g, k, &[1]))),
            "no dataset \"events/p\"",
        ),
        (
            "lengths.h5",
            Box::new(move |g| {
                ["t", "x", "p"].iter().for_each(|k| column(g, k, &[1, 2, 3]));
                column(g, "y", &[1, 2]);
            }),
            "events/y holds 2 values, events/t 3",
        ),
        (
            "range.h5",
            Box::new(move |g| {
                ["t", "y", "p"].iter().for_each(|k| column(g, k, &[1, 2, 3]));
                column(g, "x", &[1, -4, 3]);
            }),
            "events/x[1] = -4: expected 0..=65535",
        ),
        (
            "two_d.h5",
            Box::new(move |g| {
                ["x", "y", "p"].iter().for_each(|k| column(g, k, &[1, 2, 3]));
                g.new_dataset::<i64>().shape((2, 2)).create("t").unwrap();
            }),
            "events/t: 2 dimensions, expected 1",
        ),
        ("ok.h5", Box::new(full), ""),
    ];
    for (name, build, want) in &cases {
        let p = write(name, build.as_ref());
        let got = safed::events::open(&p).and_then(drain);
        if want.is_empty() {
            assert_eq!(got.unwrap(), 1, "{name}");
            continue;
        }
        let err = got.unwrap_err().to_string();
        assert!(err.contains(want) && err.starts_with(&p), "{name}: {err}");
    }
}

/// The fuzz target's finds, which made libhdf5 allocate gigabytes: 31 bytes whose superblock
/// declares 2-byte addresses, and a driver block past the end. Refused before libhdf5 sees them.
#[test]
fn hdf5_superblocks_that_make_libhdf5_allocate_gigabytes_are_refused_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.h5");
    let p = path.to_str().unwrap();
    let mut bytes = b"\x89HDF\r\n\x1a\n\0\0\0\0\0\x02\x02\0\r\n\x1a\n\0\0\0\xff\xff\xff\xff\xff\xff\xff\x14".to_vec();
    std::fs::write(&path, &bytes).unwrap();
    let err = safed::events::open(p).and_then(drain).unwrap_err().to_string();
    assert!(err.starts_with(p) && err.contains("addresses of 2 bytes at offset 13, expected 4 or 8"), "{err}");
    // The same sizes after a 512-byte user block, taken by name.
    let mut shifted = vec![0u8; 512];
    shifted.append(&mut bytes);
    std::fs::write(&path, &shifted).unwrap();
    let opts = safed::events::OpenOptions { format: Some(safed::events::Format::Hdf5), ..Default::default() };
    let err = safed::events::open_with(p, &opts).and_then(drain).unwrap_err().to_string();
    assert!(err.contains("superblock at byte 512"), "{err}");
    // Its second find: 49 bytes whose driver information block declares 4 GiB.
    let mut bytes = b"\x89HDF\r\n\x1a\n\0\0\0\0\0\x08\x08\0\x04\0\x10\0\0\0\0".to_vec();
    bytes.extend([0xff; 25]);
    bytes.push(0x15);
    std::fs::write(&path, &bytes).unwrap();
    let err = safed::events::open(p).and_then(drain).unwrap_err().to_string();
    assert!(err.contains("driver information block at byte 21 declares 4294967295 bytes"), "{err}");
}

/// Cut or corrupted HDF5 files: an error (or, where the damage missed what is read, events),
/// never a panic.
#[test]
fn hdf5_cut_or_corrupted_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture("h5py_blosc.h5");
    let path = dir.path().join("c.h5");
    let p = path.to_str().unwrap();
    for cut in [8, 100, original.len() / 4, original.len() / 2, original.len() - 1] {
        std::fs::write(&path, &original[..cut]).unwrap();
        let err = safed::events::open(p).and_then(drain).unwrap_err();
        assert!(err.to_string().starts_with(p), "cut {cut}: {err}");
    }
    let mut rng = Lcg(11);
    for _ in 0..40 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = 8 + (rng.next() as usize) % (bytes.len() - 8);
            bytes[at] = rng.next() as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = safed::events::open(p).and_then(drain);
    }
}
