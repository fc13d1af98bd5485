//! safed on a ROS 2 graph, against a real peer: Eclipse Cyclone DDS from PyPI (tests/peers/
//! ros2_peer.py), on loopback only, each test on a DDS domain of its own. A vendor-written EVT 3.0
//! recording published as EventPackets comes back as one Classification per recognition, equal
//! to `safed replay` of the file; libcaer_cmp packets decode to the events written; hostile
//! packets are counted and decoding goes on.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{safed, write_config, Daemon};

/// A DDS domain no other test of this run uses (10..=209).
fn domain(n: u16) -> u16 {
    10 + (std::process::id() as u16 % 50) * 4 + n
}

fn loopback_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/cyclonedds-loopback.xml")
}

fn peer(py: &Path, args: &[&str]) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ros2_peer.py");
    let mut c = Command::new(py);
    c.arg(script).args(args).env("CYCLONEDDS_URI", format!("file://{}", loopback_config().display()));
    c
}

/// RustDDS on loopback too (its same-host discovery), for the safed under test.
fn ros2_env(cmd: &mut Command, domain: u16) -> &mut Command {
    cmd.env("ROS_DOMAIN_ID", domain.to_string())
}

/// A peer receiving `count` messages of `topic` (`listen`: Classifications, `listen-images`).
fn listen(py: &Path, what: &str, topic: &str, d: u16, count: usize) -> Child {
    let (d, count) = (d.to_string(), count.to_string());
    peer(py, &[what, "--topic", topic, "--domain", &d, "--count", &count, "--timeout", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(mut child: Child, what: &str, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            assert!(status.success(), "{what} failed: {err}");
            return;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn evt3_packets_in_give_the_classifications_of_a_replay_of_the_file() {
    let Some(py) = common::venv_python() else { return };
    let d = domain(0);
    let file = common::data("faery_evt3.raw");
    let dir = tempfile::tempdir().unwrap();
    // The first 8 s of the recording, at its recorded pace, ~1 kHz of packets; the peer writes
    // what it published as a file of its own, which `safed replay` then reads.
    let published = dir.path().join("published.raw");
    let publish = [
        "publish-evt3",
        file.to_str().unwrap(),
        "--topic",
        "/cam/events",
        "--domain",
        &d.to_string(),
        "--seconds",
        "8",
        "--cut-file",
        published.to_str().unwrap(),
        // Time for the listener below to be matched before the first packet.
        "--delay",
        "4",
    ];
    let publisher = peer(&py, &publish).stderr(Stdio::piped()).spawn().unwrap();
    // Written before the peer looks for a subscriber.
    let until = Instant::now() + Duration::from_secs(60);
    while !published.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let replay = safed().args(["replay", "--speed", "max"]).arg(&published).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let expected: Vec<serde_json::Value> =
        String::from_utf8_lossy(&replay.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(expected.len() > 50, "{} recognitions in the replay", expected.len());

    let body = format!(
        "[source]\nevents = \"ros2:/cam/events\"\nname = \"cam0\"\n[ros2]\ndomain_id = {d}\n\
         [output]\njsonl = \"stdout\"\n[output.ros2]\ntopic = \"/safed/{{stream}}/classification\"\n\
         image_topic = \"/safed/{{stream}}/event_image\"\n"
    );
    // The camera is on the graph first (the peer waits for a subscriber before it publishes):
    // discovery must find it when safed comes.
    let daemon = Daemon::start(&write_config(dir.path(), &body));
    daemon.wait_log("ready", Duration::from_secs(60));
    let mut listener = listen(&py, "listen", "/safed/cam0/classification", d, expected.len());
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    let images = listen(&py, "listen-images", "/safed/cam0/event_image", d, 20);
    wait_ok(publisher, "the publisher", Duration::from_secs(120));
    // The last window of a live stream stays open: everything before it comes.
    let until = Instant::now() + Duration::from_secs(20);
    let mut got: Vec<serde_json::Value> = Vec::new();
    while got.len() + 1 < expected.len() && Instant::now() < until {
        match lines.next() {
            Some(Ok(l)) => got.push(serde_json::from_str(&l).unwrap()),
            _ => break,
        }
    }
    let _ = listener.kill();
    let _ = listener.wait();
    // The event images the model saw, as rqt_image_view takes them.
    let images = images.wait_with_output().unwrap();
    let images: Vec<serde_json::Value> =
        String::from_utf8_lossy(&images.stdout).lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(images.len(), 20, "event images received");
    for i in &images {
        assert_eq!(
            (i["width"].as_u64(), i["height"].as_u64(), i["encoding"].as_str()),
            (Some(346), Some(260), Some("rgb8"))
        );
        assert_eq!((i["step"].as_u64(), i["len"].as_u64()), (Some(346 * 3), Some(346 * 3 * 260)));
    }
    assert!(got.len() + 1 >= expected.len(), "{} classifications for {} recognitions", got.len(), expected.len());
    for (i, (c, r)) in got.iter().zip(&expected).enumerate() {
        let results = c["results"].as_array().unwrap();
        let top = r["top"].as_array().unwrap();
        assert_eq!(results.len(), top.len(), "classification {i}");
        for (h, s) in results.iter().zip(top) {
            assert_eq!(h["class_id"], s["label"], "classification {i}: {c} against {r}");
            let (a, b) = (h["score"].as_f64().unwrap(), s["p"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-4, "classification {i}: score {a} against {b}");
        }
        assert_eq!(c["frame_id"], "cam0");
    }
    // Stamps: ROS time (the packets' headers are wall-clock stamps), in order.
    let stamps: Vec<u64> = got.iter().map(|c| c["stamp_ns"].as_u64().unwrap()).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]) && stamps.iter().all(|s| now - s < 600_000_000_000), "{stamps:?}");
}

/// `safed dump ros2:TOPIC --idle SECONDS [ARGS]` on `domain`, started before the publisher.
fn start_dump(topic: &str, d: u16, idle: &str, more: &[&str]) -> Child {
    let child = ros2_env(safed().args(["dump", &format!("ros2:{topic}"), "--idle", idle]).args(more), d)
        .env("SAFED_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let RustDDS announce the subscription.
    std::thread::sleep(Duration::from_secs(1));
    child
}

fn finish_dump(child: Child) -> (String, String) {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dump failed: {err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

#[test]
fn libcaer_cmp_packets_decode_to_the_events_written() {
    let Some(py) = common::venv_python() else { return };
    let d = domain(1);
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected.csv");
    let dump = start_dump("/davis/events", d, "8", &[]);
    let file = common::data("dv_events_lz4.aedat4");
    let publisher = peer(
        &py,
        &[
            "publish-libcaer-cmp",
            file.to_str().unwrap(),
            "--topic",
            "/davis/events",
            "--domain",
            &d.to_string(),
            "--expected",
            expected.to_str().unwrap(),
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_ok(publisher, "the publisher", Duration::from_secs(120));
    let (got, summary) = finish_dump(dump);
    let expected = std::fs::read_to_string(&expected).unwrap();
    assert_eq!(got.lines().count(), expected.lines().count(), "{summary}");
    assert!(got == expected, "libcaer_cmp: not the events written ({summary})");
    assert!(summary.contains("0 packets lost"), "{summary}");
}

#[test]
fn hostile_packets_are_counted_and_decoding_goes_on() {
    let Some(py) = common::venv_python() else { return };
    let d = domain(2);
    // The peer takes ~10 s to write its 100 MB packet: the dump ends at the 4th good event.
    let dump = start_dump("/hostile/events", d, "60", &["--limit", "4"]);
    let publisher = peer(&py, &["publish-hostile", "--topic", "/hostile/events", "--domain", &d.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ok(publisher, "the publisher", Duration::from_secs(120));
    let (got, summary) = finish_dump(dump);
    // The packets that decode: y = 0, 2 (its cut word lost, its event kept), 4, 5.
    assert_eq!(got, "t,x,y,p\n4096,10,0,1\n4098,10,2,1\n4100,10,4,1\n4101,10,5,1\n", "{summary}");
    assert!(summary.contains("1 of an unknown encoding") && summary.contains("1 of another sensor size"), "{summary}");
    assert!(summary.contains("1 cut short"), "{summary}");
    // The 100 MB packet is either taken and skipped, or never delivered by DDS (then a seq gap).
    let number = |label: &str| -> u64 {
        let at = summary.find(label).unwrap_or_else(|| panic!("{label} in {summary}"));
        summary[..at].trim_end().rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (lost, huge) = (number("packets lost"), number("over 64 MiB"));
    assert_eq!(lost + huge, 7, "6 packets skipped by seq and the 100 MB one: {summary}");
}

#[test]
fn a_publisher_restarting_mid_stream_starts_a_new_stream_not_a_loss() {
    let Some(py) = common::venv_python() else { return };
    let d = domain(3);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("first-second.raw");
    let dump = start_dump("/restart/events", d, "8", &[]);
    for _ in 0..2 {
        let args = [
            "publish-evt3".to_string(),
            common::data("faery_evt3.raw").to_str().unwrap().to_string(),
            "--topic".into(),
            "/restart/events".into(),
            "--domain".into(),
            d.to_string(),
            "--seconds".into(),
            "1".into(),
            "--speed".into(),
            "2".into(),
            "--cut-file".into(),
            cut.to_str().unwrap().to_string(),
        ];
        let publisher =
            peer(&py, &args.iter().map(String::as_str).collect::<Vec<_>>()).stderr(Stdio::piped()).spawn().unwrap();
        wait_ok(publisher, "the publisher", Duration::from_secs(60));
    }
    let (got, summary) = finish_dump(dump);
    let once = safed().arg("dump").arg(&cut).output().unwrap();
    let once = String::from_utf8(once.stdout).unwrap();
    let twice = format!("{once}{}", once.strip_prefix("t,x,y,p\n").unwrap());
    assert!(
        got == twice,
        "not the first second twice ({} lines, {} expected): {summary}",
        got.lines().count(),
        twice.lines().count()
    );
    assert!(summary.contains(" 0 packets lost") && summary.contains("the publisher restarted"), "{summary}");
}

#[test]
fn check_config_names_the_bad_ros2_key() {
    let dir = tempfile::tempdir().unwrap();
    for (body, key) in [
        ("[source]\nevents = \"ros2:/bad topic\"\n", "source.events"),
        ("[ros2]\ndomain_id = 300\n", "ros2.domain_id"),
        ("[ros2]\nnode = \"9lives\"\n", "ros2.node"),
        ("[output.ros2]\ntopic = \"/safed//{stream}\"\n", "output.ros2.topic"),
    ] {
        let out = safed().arg("check-config").arg(write_config(dir.path(), body)).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(key), "{body:?}: {err}");
    }
    let good = "[source]\nevents = \"ros2:/dvs/events\"\n[ros2]\ndomain_id = 7\n[output.ros2]\ntopic = \"/safed/{stream}/classification\"\n";
    let out = safed().arg("check-config").arg(write_config(dir.path(), good)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn image_frames_pair_with_event_packets_as_the_recording_pairs_them() {
    let Some(py) = common::venv_python() else { return };
    let d = domain(4);
    let file = common::data("dv_davis_frames_lz4.aedat4");
    let replay = safed().args(["replay", "--speed", "max"]).arg(&file).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let expected: Vec<serde_json::Value> =
        String::from_utf8_lossy(&replay.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(expected.len() >= 20 && expected.iter().all(|r| r["rgb"] == "frames"));

    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "[source]\nevents = \"ros2:/davis/events\"\nname = \"davis\"\n[rgb]\nsource = \"ros2:/davis/image\"\n\
         [ros2]\ndomain_id = {d}\n"
    );
    let daemon = Daemon::start(&write_config(dir.path(), &body));
    daemon.wait_log("ready", Duration::from_secs(60));
    let publisher = peer(
        &py,
        &[
            "publish-davis",
            file.to_str().unwrap(),
            "--events-topic",
            "/davis/events",
            "--image-topic",
            "/davis/image",
            "--domain",
            &d.to_string(),
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_ok(publisher, "the publisher", Duration::from_secs(120));
    // The last frame's window stays open in a live stream.
    let until = Instant::now() + Duration::from_secs(20);
    while daemon.lines().len() + 1 < expected.len() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = daemon.lines();
    assert!(got.len() + 1 >= expected.len(), "{} recognitions for the replay's {}", got.len(), expected.len());
    for (i, ((_, g), r)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g["rgb"], "frames", "recognition {i}: paired with frames");
        assert_eq!(
            (g["t_start"].as_i64(), g["t_end"].as_i64()),
            (r["t_start"].as_i64(), r["t_end"].as_i64()),
            "recognition {i}: windows"
        );
        for (a, b) in g["top"].as_array().unwrap().iter().zip(r["top"].as_array().unwrap()) {
            assert_eq!(a["label"], b["label"], "recognition {i}");
            assert!(
                (a["p"].as_f64().unwrap() - b["p"].as_f64().unwrap()).abs() <= 1e-4,
                "recognition {i}: {a} against {b}"
            );
        }
    }
}
