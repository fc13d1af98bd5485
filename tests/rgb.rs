//! RGB from OpenCV beside the event stream: a video file written here with OpenCV's own
//! VideoWriter (MJPG), replayed with the demo recording's events, and `safed run` live against
//! dv-processing's NetworkWriter plus that video file.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{stdout_lines, venv_python};

fn safed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safed"))
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4")
}

/// The demo recording's frames as an MJPG AVI at 30 fps.
fn write_video(path: &Path) {
    assert_eq!(common::write_frames_as_video(&demo(), path, usize::MAX), 8);
}

#[test]
fn replay_with_a_video_file_for_rgb() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("demo.avi");
    write_video(&video);
    let out = safed().args(["replay", "--speed", "max"]).arg(demo()).arg("--video").arg(&video).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 8 video frames, F = 5: 4 recognitions, and the (JPEG-compressed) frames still say triangle.
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l["top"][0]["label"] == "triangle" && l["rgb"] == "frames"), "{lines:?}");

    let out = safed().args(["replay", "--video", "/nonexistent.avi"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent.avi"));
}

#[test]
fn run_live_against_dv_processing_plus_a_video_file() {
    let Some(py) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("demo.avi");
    write_video(&video);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py");
    let expected = tmp.path().join("served.csv");
    // 40k random events over 400 ms: longer than the video's 8 frames at 30 fps.
    let mut server = Command::new(py)
        .arg(script)
        .args(["dv-serve", "--tcp", &port, "--events", "40000", "--span-us", "400000", "--expected"])
        .arg(&expected)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    let config = tmp.path().join("safed.toml");
    let toml = format!(
        "[source]\nevents = \"tcp://127.0.0.1:{port}\"\nspeed = \"max\"\n[rgb]\nsource = {:?}\n",
        video.display().to_string()
    );
    std::fs::write(&config, toml).unwrap();
    let mut child = safed().args(["run", "--config"]).arg(&config).stdout(Stdio::piped()).spawn().unwrap();
    let reader = stdout_lines(&mut child);
    assert!(server.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on a child we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    let lines: Vec<serde_json::Value> =
        reader.join().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Video frames paired with live events by time: every recognition holds 5 frames of both.
    assert_eq!(lines.len(), 4, "{lines:?}");
    for l in &lines {
        assert_eq!((l["rgb"].as_str(), l["frames"].as_u64()), (Some("frames"), Some(5)));
        assert!(l["events"].as_u64().unwrap() > 1000, "{l}");
    }
}
