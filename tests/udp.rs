//! Events over UDP, against the senders people use: faery's own CLI (`faery input file F
//! output udp HOST:PORT --format ...`) in both of its formats, and aestream's SPIF layout (a
//! writer in tests/peers/peer.py following aestream's dvs_to_udp.cpp). What `safed dump` receives
//! must be every event, in order, as faery reads the same vendor-written file. Hostile datagrams
//! and a receiver that falls behind are counted, not fatal; `safed run` recognises from UDP.

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{http_get, metric, safed, write_config, Daemon};

fn peer(python: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py");
    let out = Command::new(python).arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "peer.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A UDP port nobody is bound to now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something is bound to UDP `port` on loopback (the receiver must be ready
/// before the sender starts: UDP has no connection to wait on).
fn wait_bound(port: u16) {
    let hex = format!(":{port:04X} ");
    let until = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/net/udp").unwrap().lines().any(|l| l.contains(&hex)) {
        assert!(Instant::now() < until, "nothing bound to udp port {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `safed dump` on `udp://127.0.0.1:PORT?QUERY`, ending 1.5 s after the last datagram.
fn start_dump(port: u16, query: &str) -> Child {
    let url = format!("udp://127.0.0.1:{port}?{query}");
    let child =
        safed().args(["dump", &url, "--idle", "1.5"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_bound(port);
    child
}

fn finish(child: Child) -> (String, String) {
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert!(status.success(), "dump failed: {stderr}");
    (String::from_utf8(stdout).unwrap(), stderr)
}

fn faery(python: &Path) -> PathBuf {
    python.with_file_name("faery")
}

fn dimensions(python: &Path, file: &Path) -> (u16, u16) {
    let d = peer(python, &["spif-send", file.to_str().unwrap(), "--dimensions"]);
    let mut it = d.split_whitespace().map(|v| v.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// A CSV's times as a 32-bit clock carries them: the low 32 bits, unwrapped as faery's UDP
/// reader does (a drop of more than 2^31 is a wrap). The same as the file's for times under
/// 2^32 µs (71 minutes).
fn as_32_bit_clock(csv: &str) -> String {
    let (mut wraps, mut last) = (0i64, 0i64);
    let mut out = String::from("t,x,y,p\n");
    for line in csv.lines().skip(1) {
        let (t, rest) = line.split_once(',').unwrap();
        let mut t = (t.parse::<i64>().unwrap() & 0xFFFF_FFFF) + wraps;
        if last - t > 1 << 31 {
            wraps += 1 << 32;
            t += 1 << 32;
        }
        last = t;
        out += &format!("{t},{rest}\n");
    }
    out
}

const FILES: [&str; 3] = ["faery_evt3.raw", "faery_evt2.raw", "dv_events_lz4.aedat4"];

#[test]
fn faery_sends_both_formats_and_every_event_arrives_as_faery_reads_the_file() {
    let Some(py) = common::venv_python() else { return };
    for name in FILES {
        let file = common::data(name);
        let expected = peer(&py, &["faery-read", file.to_str().unwrap()]);
        let (w, h) = dimensions(&py, &file);
        for format in ["t64_x16_y16_on8", "t32_x16_y15_on1"] {
            let port = free_port();
            let dump = start_dump(port, &format!("format={format}&width={w}&height={h}"));
            let sent = Command::new(faery(&py))
                .args(["input", "file"])
                .arg(&file)
                .args(["output", "udp", &format!("127.0.0.1:{port}"), "--format", format, "--no-progress"])
                .output()
                .unwrap();
            assert!(sent.status.success(), "faery: {}", String::from_utf8_lossy(&sent.stderr));
            let (got, summary) = finish(dump);
            let expected = if format.starts_with("t32") { as_32_bit_clock(&expected) } else { expected.clone() };
            assert_eq!(got.lines().count(), expected.lines().count(), "{name} as {format}: {summary}");
            assert!(got == expected, "{name} as {format}: not the events faery reads");
            assert!(summary.contains("dropped: 0 by the kernel") && summary.contains("0 out of order"), "{summary}");
        }
    }
}

#[test]
fn spif_with_timestamps_equals_the_file_and_without_them_keeps_every_event_in_order() {
    let Some(py) = common::venv_python() else { return };
    let file = common::data("dv_events_lz4.aedat4");
    let f = file.to_str().unwrap();
    let expected = peer(&py, &["faery-read", f]);
    let (w, h) = dimensions(&py, &file);
    let query = format!("format=spif&width={w}&height={h}");

    let port = free_port();
    let dump = start_dump(port, &query);
    peer(&py, &["spif-send", f, &format!("127.0.0.1:{port}")]);
    let (got, summary) = finish(dump);
    assert!(got == as_32_bit_clock(&expected), "SPIF with timestamps: not the file's events ({summary})");

    let port = free_port();
    let dump = start_dump(port, &query);
    peer(&py, &["spif-send", f, &format!("127.0.0.1:{port}"), "--no-timestamps"]);
    let (got, summary) = finish(dump);
    let xyp = |csv: &str| csv.lines().skip(1).map(|l| l.split_once(',').unwrap().1.to_string()).collect::<Vec<_>>();
    assert_eq!(xyp(&got), xyp(&expected), "SPIF without timestamps: x, y, p ({summary})");
    let t: Vec<i64> = got.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert!(t.windows(2).all(|p| p[0] <= p[1]), "arrival stamps go forward");
}

/// t64_x16_y16_on8 datagrams of `(t, x, y, on)`.
fn t64(events: &[(u64, u16, u16, u8)]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|&(t, x, y, on)| [&t.to_le_bytes()[..], &x.to_le_bytes(), &y.to_le_bytes(), &[on]].concat())
        .collect()
}

#[test]
fn hostile_datagrams_are_counted_and_the_good_ones_still_decode() {
    let port = free_port();
    let dump = start_dump(port, "width=100&height=100");
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |d: &[u8]| {
        s.send_to(d, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    };
    send(&t64(&[(10, 1, 2, 1), (20, 3, 4, 0)]));
    send(&[0xAB; 7]); // not one whole event
    send(&t64(&[(5, 5, 5, 1)])); // back in time
    send(&[&t64(&[(30, 6, 7, 1)])[..], &[1, 2, 3]].concat()); // an event and 3 stray bytes
    send(&t64(&[(40, 500, 7, 1), (41, 8, 9, 0)])); // one outside the 100 x 100 sensor
    send(&[0u8; 0]);
    send(&[0xFF; 65_001]); // u64::MAX times (past i64) and a stray byte
    send(&t64(&[(50, 9, 9, 1)]));
    let (got, summary) = finish(dump);
    assert_eq!(got, "t,x,y,p\n10,1,2,1\n20,3,4,0\n30,6,7,1\n41,8,9,0\n50,9,9,1\n", "{summary}");
    assert!(summary.contains("8 datagrams, 5 events"), "{summary}");
    assert!(summary.contains("1 out of order") && summary.contains("3 malformed"), "{summary}");
}

#[test]
fn a_receiver_that_falls_behind_counts_what_the_kernel_dropped() {
    let port = free_port();
    // A small receive buffer, and the receiver stopped while datagrams pour in.
    let dump = start_dump(port, "width=640&height=480&buffer=65536");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(dump.id() as i32, libc::SIGSTOP) };
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let events: Vec<_> = (0..100u64).map(|i| (i, (i % 640) as u16, 3, 1)).collect();
    for k in 0..2000u64 {
        let shifted: Vec<_> = events.iter().map(|&(t, x, y, on)| (t + k * 100, x, y, on)).collect();
        s.send_to(&t64(&shifted), ("127.0.0.1", port)).unwrap();
    }
    unsafe { libc::kill(dump.id() as i32, libc::SIGCONT) };
    // The kernel stamps its drop count on the datagrams queued after the drops: one more.
    std::thread::sleep(Duration::from_millis(300));
    s.send_to(&t64(&[(1_000_000, 1, 1, 1)]), ("127.0.0.1", port)).unwrap();
    let (got, summary) = finish(dump);
    let received = got.lines().count() as u64 - 2;
    let dropped: u64 = summary
        .split("dropped: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(dropped > 0, "nothing dropped with a 64 KiB buffer and 2000 datagrams waiting: {summary}");
    assert_eq!(received + dropped * 100, 200_000, "every datagram is received or counted: {summary}");
}

#[test]
fn ctrl_c_ends_a_live_dump_with_its_summary() {
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}?width=10&height=10");
    let child = safed().args(["dump", &url]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_bound(port);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&t64(&[(7, 1, 2, 1)]), ("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    common::daemon::signal(child.id(), libc::SIGINT);
    let (got, summary) = finish(child);
    assert_eq!(got, "t,x,y,p\n7,1,2,1\n");
    assert!(summary.starts_with("dump: interrupted: 1 events") && summary.contains("1 datagrams"), "{summary}");
}

#[test]
fn run_recognises_events_from_udp_and_exports_the_source_drops() {
    let Some(py) = common::venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let body = format!(
        "[source]\nevents = \"udp://127.0.0.1:{port}?format=t64_x16_y16_on8&width=346&height=260\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n"
    );
    let d = Daemon::start(&write_config(dir.path(), &body));
    let addr = d.metrics_addr();
    wait_bound(port);
    let file = common::data("dv_events_lz4.aedat4");
    let sent = Command::new(faery(&py))
        .args(["input", "file"])
        .arg(&file)
        .args(["output", "udp", &format!("127.0.0.1:{port}"), "--no-progress"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "faery: {}", String::from_utf8_lossy(&sent.stderr));
    d.wait_lines(1, Duration::from_secs(30));
    let metrics = http_get(&addr, "/metrics");
    assert!(metric(&metrics, "safed_events_total{stream=\"cam0\"} ") > 0.0, "{metrics}");
    assert_eq!(metric(&metrics, "safed_source_dropped_total{stream=\"cam0\"} "), 0.0);
}
