//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use safed::events::{EventError, EventReader, EventSource, StreamSelector};

pub mod broker;
pub mod daemon;
mod venv;
mod video;
#[allow(unused_imports)] // not every test crate needs it
pub use venv::venv_python;
#[allow(unused_imports)]
pub use video::write_frames_as_video;

pub const FIXTURES: &[&str] = &[
    "dv_events_none.aedat4",
    "dv_events_lz4.aedat4",
    "dv_events_zstd.aedat4",
    "dv_davis_frames_lz4.aedat4",
    "faery_zstd.aedat4",
    "davis346_aedat-crate_trimmed.aedat4",
    "faery_evt2.raw",
    "faery_evt3.raw",
    "faery_dat2.dat",
    "cair_dvs128.aedat",
    "jaer_davis240c.aedat",
    "sample_events.npz",
    "nmnist_like.bin",
    "rpg_events.txt",
];

/// Fixtures read only from a path (the HDF5 library reads no byte streams).
pub const PATH_FIXTURES: &[&str] = &["h5py_blosc.h5"];

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The `t,x,y,p` CSV of the first event stream of a source, as `safed dump` writes it.
pub fn csv_of(source: Box<dyn EventSource>) -> Result<String, EventError> {
    let mut reader = EventReader::new(source, &StreamSelector::FirstEvents)?;
    let mut out = String::from("t,x,y,p\n");
    while let Some(batch) = reader.next_batch()? {
        for e in batch {
            out.push_str(&format!("{},{},{},{}\n", e.t, e.x, e.y, u8::from(e.p)));
        }
    }
    Ok(out)
}

/// Reads every packet of a source to its end: the first error, or the number of packets.
pub fn drain(mut source: Box<dyn EventSource>) -> Result<usize, EventError> {
    let mut n = 0;
    while source.next_packet()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Collects a child's stdout lines on a thread (a full pipe would block the child).
pub fn stdout_lines(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<String>> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map(|l| l.unwrap()).collect())
}

/// `<root>/test/<class>/sNNN.aedat4`: `n` copies of the bundled demo recording (a triangle) in
/// two class folders, every fourth a "circle", which the demo model does not know: a dataset
/// split for replay tests.
pub fn demo_recordings(root: &std::path::Path, n: usize) {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4");
    for i in 0..n {
        let class = if i % 4 == 3 { "circle" } else { "triangle" };
        let dir = root.join("test").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&demo, dir.join(format!("s{i:03}.aedat4"))).unwrap();
    }
}
