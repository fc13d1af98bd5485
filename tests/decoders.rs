//! Decoder cases the vendor fixtures do not cover, on hand-built bytes laid out as FORMATS.md
//! describes: AEDAT 3.1 frames, jAER DVS128 addresses, EVT 3.0 vectors and triggers, RAW
//! headers without `% end`, npz dtypes.

mod common;

use std::io::Cursor;

use npyz::WriterBuilder;

use safed::events::{open_reader, Event, EventSource, OpenOptions, PacketData, PixelFormat, StreamKind};

fn open(bytes: Vec<u8>) -> Box<dyn EventSource> {
    open_reader(Cursor::new(bytes), "mem", &OpenOptions::default()).unwrap()
}

fn all_packets(mut s: Box<dyn EventSource>) -> Vec<PacketData> {
    let mut out = Vec::new();
    while let Some(p) = s.next_packet().unwrap() {
        out.push(p.data);
    }
    out
}

fn events(packets: &[PacketData]) -> Vec<Event> {
    packets
        .iter()
        .filter_map(|p| if let PacketData::Events(e) = p { Some(e.clone()) } else { None })
        .flatten()
        .collect()
}

fn aedat31_packet(kind: i16, size: i32, overflow: i32, events: &[u8]) -> Vec<u8> {
    let number = events.len() as i32 / size;
    let mut p = Vec::new();
    p.extend_from_slice(&kind.to_le_bytes());
    p.extend_from_slice(&1i16.to_le_bytes());
    for v in [size, 4, overflow, number, number, number] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(events);
    p
}

#[test]
fn aedat31_frames_and_polarity() {
    let mut f = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS346\r\n#!END-HEADER\r\n".to_vec();
    // One valid RGB frame 2x1: info (valid, 3 channels), 4 timestamps, size, position, pixels.
    let mut frame = Vec::new();
    let info: u32 = 1 | (3 << 1);
    frame.extend_from_slice(&info.to_le_bytes());
    for v in [100i32, 200, 110, 190, 2, 1, 5, 6] {
        frame.extend_from_slice(&v.to_le_bytes());
    }
    for rgb in [[0x1000u16, 0x2000, 0x3000], [0xFF00, 0x8000, 0x0100]] {
        for c in rgb {
            frame.extend_from_slice(&c.to_le_bytes());
        }
    }
    f.extend(aedat31_packet(2, frame.len() as i32, 1, &frame));
    // Polarity: one valid ON event at (3, 4), one invalid.
    let mut pol = Vec::new();
    let valid: u32 = 1 | 2 | (4 << 2) | (3 << 17);
    pol.extend_from_slice(&valid.to_le_bytes());
    pol.extend_from_slice(&77i32.to_le_bytes());
    pol.extend_from_slice(&(valid & !1).to_le_bytes());
    pol.extend_from_slice(&78i32.to_le_bytes());
    f.extend(aedat31_packet(1, 8, 1, &pol));
    let source = open(f);
    assert_eq!(source.info().streams[0].size, Some((346, 260)));
    assert_eq!(source.info().streams[1].kind, StreamKind::Frames);
    let packets = all_packets(source);
    let PacketData::Frame(fr) = &packets[0] else { panic!("{packets:?}") };
    assert_eq!((fr.width, fr.height, fr.format, fr.position), (2, 1, PixelFormat::Bgr, (5, 6)));
    assert_eq!(fr.pixels, [0x30, 0x20, 0x10, 0x01, 0x80, 0xFF], "8-bit, reordered to BGR");
    let epoch = 1i64 << 31;
    assert_eq!((fr.exposure_start, fr.exposure_end, fr.t), (epoch + 110, epoch + 190, epoch + 150));
    assert_eq!(events(&packets), [Event { t: epoch + 77, x: 3, y: 4, p: true }]);
}

#[test]
fn aedat2_dvs128_layout_follows_jaer() {
    let mut f = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n".to_vec();
    // raw x = 10, raw y = 20, bit 0 = 0 (ON in jAER's DVS128 extractor).
    let address: u32 = (20 << 8) | (10 << 1);
    f.extend_from_slice(&address.to_be_bytes());
    f.extend_from_slice(&1234i32.to_be_bytes());
    f.extend_from_slice(&(address | 1).to_be_bytes());
    f.extend_from_slice(&1235i32.to_be_bytes());
    let source = open(f);
    assert_eq!(source.info().streams[0].size, Some((128, 128)));
    let got = events(&all_packets(source));
    assert_eq!(got, [Event { t: 1234, x: 117, y: 107, p: true }, Event { t: 1235, x: 117, y: 107, p: false }]);
}

fn evt3(words: &[u16]) -> Vec<u8> {
    let mut f = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n".to_vec();
    for w in words {
        f.extend_from_slice(&w.to_le_bytes());
    }
    f
}

#[test]
fn evt3_vectors_triggers_and_words_before_time_high() {
    let words = [
        0x2005,               // ADDR_X before any TIME_HIGH: skipped
        0x8001,               // TIME_HIGH = 1 -> t = 4096
        0x6010,               // TIME_LOW = 16 -> t = 4112
        50,                   // ADDR_Y 50 (type 0000)
        0x3000 | 100 | 0x800, // VECT_BASE_X 100, ON
        0x4000 | 0b101,       // VECT_12: x = 100, 102; base -> 112
        0x5000 | 0b1000_0001, // VECT_8: x = 112, 119; base -> 120
        0x2000 | 7,           // ADDR_X 7, OFF
        0xA001,               // EXT_TRIGGER value 1
        0xE123,
        0x7FFF, // OTHERS, CONTINUED: skipped
    ];
    let source = open(evt3(&words));
    assert_eq!(source.info().streams[0].size, Some((1280, 720)));
    let packets = all_packets(source);
    let t = 4112;
    let xs: Vec<(u16, bool)> = events(&packets).iter().map(|e| (e.x, e.p)).collect();
    assert_eq!(xs, [(100, true), (102, true), (112, true), (119, true), (7, false)]);
    assert!(events(&packets).iter().all(|e| e.t == t && e.y == 50));
    assert!(packets.iter().any(|p| matches!(p, PacketData::Triggers(v) if v[0].t == t && v[0].kind == 1)));
}

#[test]
fn evt3_time_wraps_and_repeated_time_high_is_not_time_passing() {
    let words = [0x8FFF, 0x8FFF, 0x0001, 0x2001, 0x8000, 0x2002];
    let got = events(&all_packets(open(evt3(&words))));
    assert_eq!(got.iter().map(|e| e.t).collect::<Vec<_>>(), [0xFFF << 12, 1 << 24]);
}

#[test]
fn raw_header_without_end_and_with_plugin_name() {
    let mut f = b"% date 2020-01-01\n% plugin_name hal_plugin_imx636_evk4\n% evt 2.0\n".to_vec();
    let words: [u32; 2] = [0x8000_0002, (1 << 28) | (3 << 22) | (5 << 11) | 6];
    for w in words {
        f.extend_from_slice(&w.to_le_bytes());
    }
    let source = open(f);
    assert_eq!(source.info().streams[0].size, Some((1280, 720)));
    assert_eq!(events(&all_packets(source)), [Event { t: 2 << 6 | 3, x: 5, y: 6, p: true }]);
}

#[test]
fn npz_with_float_times_and_bad_arrays() {
    let write = |t: Vec<f64>, x: Vec<u16>| -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut npz = npyz::npz::NpzWriter::new(&mut buf);
            let opts = Default::default;
            let n = t.len() as u64;
            npz.array::<f64>("t", opts()).unwrap().default_dtype().shape(&[n]).begin_nd().unwrap().extend(t).unwrap();
            npz.array::<u16>("x", opts())
                .unwrap()
                .default_dtype()
                .shape(&[x.len() as u64])
                .begin_nd()
                .unwrap()
                .extend(x)
                .unwrap();
            npz.array::<u16>("y", opts())
                .unwrap()
                .default_dtype()
                .shape(&[n])
                .begin_nd()
                .unwrap()
                .extend(vec![4u16; n as usize])
                .unwrap();
            npz.array::<u8>("p", opts())
                .unwrap()
                .default_dtype()
                .shape(&[n])
                .begin_nd()
                .unwrap()
                .extend(vec![1u8; n as usize])
                .unwrap();
        }
        buf.into_inner()
    };
    let got = events(&all_packets(open(write(vec![10.0, 20.0], vec![1, 2]))));
    assert_eq!(got, [Event { t: 10, x: 1, y: 4, p: true }, Event { t: 20, x: 2, y: 4, p: true }]);
    let err =
        open_reader(Cursor::new(write(vec![10.5], vec![1])), "mem", &OpenOptions::default()).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("not a whole number"), "{err}");
    let err = open_reader(Cursor::new(write(vec![1.0, 2.0], vec![1])), "mem", &OpenOptions::default())
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("arrays differ in length"), "{err}");
}

fn dat(header: &str, kind: u8, records: &[(u32, u32)]) -> Vec<u8> {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[kind, 8]);
    for (t, d) in records {
        bytes.extend_from_slice(&t.to_le_bytes());
        bytes.extend_from_slice(&d.to_le_bytes());
    }
    bytes
}

#[test]
fn dat_layouts_t0_wraps_and_triggers() {
    let ev = |t, x, y, p| Event { t, x, y, p };
    // Version 2: x bits 0-13, y 14-27, polarity 28-31 (any nonzero is ON); T0 is added.
    let v2 = dat(
        "% Version 2\n% Width 1280\n% Height 720\n% T0 100\n",
        12,
        &[(5, 1279 | 719 << 14 | 1 << 28), (6, 3 | 4 << 14 | 8 << 28)],
    );
    let s = open(v2);
    assert_eq!((s.info().format.name(), s.info().streams[0].size), ("dat", Some((1280, 720))));
    assert_eq!(events(&all_packets(s)), vec![ev(105, 1279, 719, true), ev(106, 3, 4, true)]);
    // Version 1: x bits 0-8, y 9-16, polarity bit 17.
    let v1 = dat("% Version 1\n% Width 304\n% Height 240\n", 12, &[(7, 303 | 239 << 9 | 1 << 17), (8, 2 | 1 << 9)]);
    assert_eq!(events(&all_packets(open(v1))), vec![ev(7, 303, 239, true), ev(8, 2, 1, false)]);
    // An old header without size or version: version 2's layout, the 2^32 µs wrap unwrapped.
    let old = dat("% Data file containing Event2D events.\n% Date 2017-01-01\n", 0, &[(u32::MAX - 1, 1), (3, 2)]);
    let s = open(old);
    assert_eq!(s.info().streams[0].size, None);
    let got = events(&all_packets(s));
    assert_eq!((got[0].t, got[1].t), (u32::MAX as i64 - 1, (1 << 32) + 3));
    // External triggers: a trigger stream.
    let trig = dat("% Version 2\n", 14, &[(9, 1), (10, 0)]);
    let s = open(trig);
    assert_eq!(s.info().streams[0].kind, StreamKind::Triggers);
    match &all_packets(s)[..] {
        [PacketData::Triggers(t)] => {
            assert_eq!(t.iter().map(|t| (t.t, t.kind)).collect::<Vec<_>>(), vec![(9, 1), (10, 0)])
        }
        other => panic!("{other:?}"),
    }
}

fn open_as(bytes: Vec<u8>, format: &str) -> Result<Box<dyn EventSource>, safed::events::EventError> {
    let opts = OpenOptions { format: Some(format.parse().unwrap()), ..OpenOptions::default() };
    open_reader(Cursor::new(bytes), "mem", &opts)
}

fn atis(records: &[(u8, u8, bool, u32)]) -> Vec<u8> {
    records.iter().flat_map(|&(x, y, p, t)| [x, y, (p as u8) << 7 | (t >> 16) as u8, (t >> 8) as u8, t as u8]).collect()
}

#[test]
fn atis_bin_overflow_markers_guessing_and_forcing() {
    let ev = |t, x, y, p| Event { t, x, y, p };
    // A y = 240 record adds 2^13 µs to every later time and is not an event.
    let bytes = atis(&[(1, 2, true, 0x7F_FFFF), (0, 240, false, 0), (33, 33, false, 5)]);
    let s = open(bytes.clone());
    assert_eq!(s.info().format.name(), "atis-bin");
    assert_eq!(events(&all_packets(s)), vec![ev(0x7F_FFFF, 1, 2, true), ev(8192 + 5, 33, 33, false)]);
    // Times going back (with no marker between) are not ATIS: no guess, but forcing reads them.
    let back = atis(&[(1, 1, true, 500), (2, 2, true, 100)]);
    let err = open_reader(Cursor::new(back.clone()), "mem", &OpenOptions::default()).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("--input-format atis-bin"), "{err}");
    assert_eq!(events(&all_packets(open_as(back, "atis-bin").unwrap())).len(), 2);
    // A partial record at the end names its offset.
    let mut cut = bytes;
    cut.truncate(13);
    let mut s = open_as(cut, "atis-bin").unwrap();
    let err = std::iter::from_fn(|| Some(s.next_packet())).find_map(|r| r.err()).unwrap();
    assert!(err.to_string().contains("truncated at byte 13") && err.to_string().contains("5-byte"), "{err}");
}

#[test]
fn text_seconds_round_exactly_and_csv_is_microseconds() {
    let ev = |t, x, y, p| Event { t, x, y, p };
    // Nine decimals round to the nearest µs without a float; -1 is OFF; comments and blank
    // lines are skipped; tabs and CRLF are fine; the last line needs no newline.
    let text = b"# t x y p\n0.0000004 1 2 1\n0.0000005\t3 4 0\r\n\n12.345678501 5 6 -1\n1e-3 7 8 1".to_vec();
    let s = open(text);
    assert_eq!(s.info().format.name(), "text");
    assert_eq!(
        events(&all_packets(s)),
        vec![ev(0, 1, 2, true), ev(1, 3, 4, false), ev(12_345_679, 5, 6, false), ev(1000, 7, 8, true)]
    );
    let csv = b"t,x,y,on\n100,1,2,1\n-5,3,4,0\n".to_vec();
    let s = open(csv);
    assert_eq!(s.info().format.name(), "csv");
    assert_eq!(events(&all_packets(s)), vec![ev(100, 1, 2, true), ev(-5, 3, 4, false)]);
    // A bad line names its number, its offset and what was expected.
    for (bytes, want) in [
        (&b"0.1 1 2 1\n0.2 1 2\n"[..], "at byte 10: line 2: expected 4 fields"),
        (b"0.1 1 2 1\n0.2 70000 2 1\n", "line 2: x \"70000\": expected an integer in 0..=65535"),
        (b"t,x,y,p\n1,2,3,1\n1.5,2,3,1\n", "line 3: t \"1.5\": expected an integer"),
        (b"0.1 1 2 1\n0.2 1 2 7\n", "line 2: p \"7\": expected 1, 0 or -1"),
    ] {
        let mut s = open(bytes.to_vec());
        let err = loop {
            match s.next_packet() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(bytes)),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains(want), "{err}");
    }
    // A line without end is refused, not buffered without bound.
    let mut long = b"0.1 1 2 1\n".to_vec();
    long.extend(std::iter::repeat_n(b'1', 3 << 20));
    let mut s = open(long);
    let err = std::iter::from_fn(|| Some(s.next_packet())).find_map(|r| r.err()).unwrap();
    assert!(err.to_string().contains("longer than 4096 bytes"), "{err}");
}

/// HDF5 beyond DSEC's exact layout: datasets at the root, t as float seconds, `t_offset`
/// added, the size from `width`/`height` attributes, and more events than one read slice.
#[test]
fn hdf5_root_datasets_float_seconds_offset_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.h5");
    let n = 300_000usize;
    {
        let file = hdf5::File::create(&path).unwrap();
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 1e-6 * 3.0).collect();
        let x: Vec<i32> = (0..n).map(|i| (i % 640) as i32).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 480 % 256) as u8).collect();
        let p: Vec<i8> = (0..n).map(|i| if i % 3 == 0 { -1 } else { 1 }).collect();
        file.new_dataset_builder().with_data(&t).create("t").unwrap();
        file.new_dataset_builder().with_data(&x).create("x").unwrap();
        file.new_dataset_builder().with_data(&y).create("y").unwrap();
        file.new_dataset_builder().with_data(&p).create("p").unwrap();
        file.new_dataset::<i64>().create("t_offset").unwrap().write_scalar(&5_000_000i64).unwrap();
        file.new_attr::<u16>().create("width").unwrap().write_scalar(&640u16).unwrap();
        file.new_attr::<u16>().create("height").unwrap().write_scalar(&480u16).unwrap();
    }
    let source = safed::events::open(path.to_str().unwrap()).unwrap();
    assert_eq!(source.info().streams[0].size, Some((640, 480)));
    let csv = common::csv_of(source).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), n);
    for i in [0, 1, 131_071, 131_072, n - 1] {
        let want = format!("{},{},{},{}", 5_000_000 + 3 * i as i64, i % 640, i % 480 % 256, u8::from(i % 3 != 0));
        assert_eq!(rows[i], want, "event {i}");
    }
}
