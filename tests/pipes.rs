//! Events from a pipe: standard input (`-`) and a FIFO, read as the bytes arrive and detected
//! as files are. Every vendor-written fixture piped in decodes to the same events as the file;
//! a FIFO fed in small pieces over time too; `replay -` and `run` with `events = "-"` recognise
//! what the file gives; formats that need the whole file and an empty pipe are clear errors.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::daemon::safed;

/// `safed ARGS` with `input` written to its standard input (from a thread, as a pipe fills).
fn piped(args: &[&str], input: Vec<u8>) -> Output {
    let mut child =
        safed().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader may stop early (an error): a broken pipe is its answer, not ours.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn dump_of_file(path: &Path) -> String {
    let out = safed().arg("dump").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_streamable_fixture_piped_into_stdin_decodes_as_its_file() {
    let mut checked = 0;
    for name in common::FIXTURES.iter().filter(|n| !n.ends_with(".npz")) {
        let path = common::data(name);
        let out = piped(&["dump", "-"], std::fs::read(&path).unwrap());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} through stdin: {err}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), dump_of_file(&path), "{name} through stdin");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} fixtures checked");
}

#[test]
fn a_fifo_fed_in_pieces_over_time_decodes_as_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("events.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own; no memory is shared.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    for name in ["faery_evt3.raw", "dv_events_zstd.aedat4"] {
        let bytes = std::fs::read(common::data(name)).unwrap();
        let target = fifo.clone();
        let writer = std::thread::spawn(move || {
            // Opening a FIFO for writing waits for its reader.
            let mut w = std::fs::OpenOptions::new().write(true).open(target).unwrap();
            for piece in bytes.chunks(4096) {
                w.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let out = safed().arg("dump").arg(&fifo).output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), dump_of_file(&common::data(name)), "{name} through a FIFO");
    }
}

/// The labels of a replay's JSON lines, in order.
fn labels(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["top"][0]["label"].to_string())
        .collect()
}

#[test]
fn replay_and_run_recognise_a_recording_piped_in_as_from_its_file() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4");
    let file = safed().arg("replay").arg(&demo).args(["--speed", "max"]).output().unwrap();
    assert!(file.status.success());
    let from_file = labels(&file.stdout);
    assert!(!from_file.is_empty());

    let replayed = piped(&["replay", "-"], std::fs::read(&demo).unwrap());
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert_eq!(labels(&replayed.stdout), from_file, "replay -");

    let tmp = tempfile::tempdir().unwrap();
    let config = common::daemon::write_config(tmp.path(), "[source]\nevents = \"-\"\nloop = true\n");
    let run = piped(&["run", "--config", config.to_str().unwrap()], std::fs::read(&demo).unwrap());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert_eq!(labels(&run.stdout), from_file, "run with events = \"-\"");
    assert!(err.contains("a pipe is read once: loop is ignored"), "{err}");
}

#[test]
fn what_a_pipe_cannot_carry_and_an_empty_pipe_are_clear_errors() {
    let npz = piped(&["dump", "-"], std::fs::read(common::data("sample_events.npz")).unwrap());
    let err = String::from_utf8_lossy(&npz.stderr);
    assert_eq!(npz.status.code(), Some(1), "{err}");
    assert!(err.contains("(stdin): npz cannot be read from a pipe") && err.contains("give its path"), "{err}");

    let empty = piped(&["dump", "-"], Vec::new());
    let err = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(empty.status.code(), Some(1), "{err}");
    assert!(err.contains("(stdin): no bytes arrived"), "{err}");

    let garbage = piped(&["dump", "-"], b"not an event file\n".repeat(100));
    let err = String::from_utf8_lossy(&garbage.stderr);
    assert_eq!(garbage.status.code(), Some(1), "{err}");
    assert!(err.contains("(stdin): unrecognised event format"), "{err}");
}
