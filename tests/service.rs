//! `safed run` as systemd runs it, without systemd: NOTIFY_SOCKET points at a datagram socket
//! this test owns. READY comes after loading, WATCHDOG pings while processing, STOPPING on
//! SIGTERM, exit 0 within 2 s with every JSON line flushed; a bad model fails before READY; a
//! network source that goes away is reconnected within 1 s of coming back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{http_get, metric, safed, sigterm, write_config};
use common::stdout_lines;

fn notifications(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        out.extend(String::from_utf8_lossy(&buf[..n]).lines().map(String::from));
    }
    out
}

/// Reads notifications as systemd does, as they come (a full datagram queue would block the
/// sender), until `stop` is set.
fn collect_notifications(
    sock: UnixDatagram,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => out.extend(String::from_utf8_lossy(&buf[..n]).lines().map(String::from)),
                Err(_) if stop.load(std::sync::atomic::Ordering::Relaxed) => return out,
                Err(_) => {}
            }
        }
    })
}

#[test]
fn ready_watchdog_stopping_in_order_and_a_clean_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let notes = collect_notifications(sock, done.clone());
    let config = write_config(tmp.path(), "[source]\nevents = \"bundled\"\nloop = true\n");
    // systemd sets WATCHDOG_PID to the service's pid: `exec` keeps the shell's.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"WATCHDOG_PID=$$ exec "$0" run --config "$1""#)
        .arg(env!("CARGO_BIN_EXE_safed"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = stdout_lines(&mut child);
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(child.id());
    let t = Instant::now();
    let status = child.wait().unwrap();
    let took = t.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(2), "took {took:?} to stop");
    let lines = reader.join().unwrap();
    assert!(lines.len() >= 10, "only {} recognitions in 1.5 s", lines.len());
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}"));
        assert_eq!(v["top"][0]["label"], "triangle");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = notes.join().unwrap();
    let pos = |key: &str| n.iter().position(|l| l == key).unwrap_or_else(|| panic!("no {key} in {n:?}"));
    assert!(pos("READY=1") < pos("WATCHDOG=1") && pos("WATCHDOG=1") < pos("STOPPING=1"), "{n:?}");
    assert!(n.iter().filter(|l| *l == "WATCHDOG=1").count() >= 5, "watchdog pings: {n:?}");
}

#[test]
fn a_bad_model_fails_before_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let fake = tmp.path().join("m.onnx");
    for f in ["m.onnx", "m.encoder.onnx", "m.fusion.onnx"] {
        std::fs::write(tmp.path().join(f), b"not a model").unwrap();
    }
    let config = write_config(tmp.path(), &format!("[model]\npath = {:?}\n", fake.display().to_string()));
    let out = safed().args(["run", "--config"]).arg(&config).env("NOTIFY_SOCKET", &sock_path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("m.encoder.onnx"), "{err}");
    assert!(!notifications(&sock).iter().any(|l| l == "READY=1"));

    let config = write_config(tmp.path(), "[source]\nevents = \"/nonexistent.aedat4\"\n");
    let out = safed().args(["run", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent.aedat4"));
}

/// A connection within `limit`, or a failure (never a hung test).
fn accept_within(listener: &TcpListener, limit: Duration) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return conn;
            }
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("no connection within {limit:?}: {e}"),
        }
    }
}

/// The demo recording as DV's network output sends it (no magic line).
fn stream_bytes() -> Vec<u8> {
    let file = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx/demo-sample.aedat4")).unwrap();
    file[14..].to_vec()
}

#[test]
fn a_network_source_that_comes_back_is_reconnected_within_a_second() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &format!("[source]\nevents = \"tcp://{addr}\"\nreconnect_max_ms = 400\n"));
    let mut child =
        safed().args(["run", "--config"]).arg(&config).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let reader = stdout_lines(&mut child);
    let mut conn = accept_within(&listener, Duration::from_secs(5));
    conn.write_all(&stream_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The server goes away (connection and listener), and comes back 500 ms later.
    drop(conn);
    drop(listener);
    std::thread::sleep(Duration::from_millis(500));
    let listener = TcpListener::bind(addr).unwrap();
    let back = Instant::now();
    let mut conn = accept_within(&listener, Duration::from_secs(5));
    let waited = back.elapsed();
    conn.write_all(&stream_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    sigterm(child.id());
    assert!(child.wait().unwrap().success());
    let lines = reader.join().unwrap();
    assert!(waited < Duration::from_secs(1), "reconnected {waited:?} after the server came back");
    // 8 frames, F = 5: 4 recognitions per connection; the second connection's clock restarts.
    assert_eq!(lines.len(), 8, "{lines:?}");
    let seq: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(seq[4]["t_end"], seq[0]["t_end"], "the second session starts afresh");
    assert!(seq.iter().all(|v| v["top"][0]["label"] == "triangle"));
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Events and frames at 50x the recorded rate (far more than inference takes) through a
/// 4-item queue: drops are counted and exported, memory stays flat, what is processed stays
/// fresh, and the metrics endpoint reports it all.
#[test]
fn overload_drops_are_counted_and_memory_stays_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        tmp.path(),
        "[source]\nevents = \"bundled\"\nloop = true\nspeed = 50.0\n[queue]\ncapacity = 4\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut child = safed()
        .args(["run", "--config"])
        .arg(&config)
        .env("SAFED_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = stdout_lines(&mut child);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = logged_address(&mut stderr, "metrics on http://").trim_end_matches("/metrics").to_string();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    std::thread::sleep(Duration::from_millis(1000));
    let rss_early = vm_rss_kb(child.id());
    std::thread::sleep(Duration::from_millis(3000));
    let rss_late = vm_rss_kb(child.id());
    let metrics = http_get(&addr, "/metrics");
    assert!(http_get(&addr, "/nope").starts_with("HTTP/1.1 404"));
    sigterm(child.id());
    assert!(child.wait().unwrap().success());
    let lines = reader.join().unwrap();
    let value = |name: &str| metric(&metrics, name);
    assert!(value("safed_ring_dropped_total{stream=\"cam0\"} ") > 0.0, "{metrics}");
    assert!(value("safed_recognitions_total{stream=\"cam0\"} ") > 10.0);
    assert!(value("safed_events_total{stream=\"cam0\"} ") > 0.0);
    assert!(metrics.contains("safed_stage_seconds_count{stage=\"encode\"}"), "{metrics}");
    assert!(rss_late < rss_early + 20 * 1024, "memory grew from {rss_early} kB to {rss_late} kB under overload");
    // Processed work stays fresh: the queue holds at most 4 items.
    let queue: Vec<f64> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["latency_ms"]["queue"].as_f64().unwrap())
        .collect();
    let late = &queue[queue.len() / 2..];
    assert!(late.iter().cloned().fold(0.0, f64::max) < 500.0, "queue latency grew: {late:?}");
}

/// The address a child logs on stderr after `marker`.
fn logged_address(stderr: &mut BufReader<std::process::ChildStderr>, marker: &str) -> String {
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.split(marker).nth(1) {
            return rest.trim().to_string();
        }
        line.clear();
    }
    panic!("{marker} never logged")
}

#[test]
fn json_lines_reach_tcp_and_unix_socket_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("lines.sock");
    for output in ["tcp://127.0.0.1:0".to_string(), format!("unix://{}", sock.display())] {
        let config = write_config(
            tmp.path(),
            &format!("[source]\nevents = \"bundled\"\nloop = true\n[output]\njsonl = {output:?}\n"),
        );
        let mut child = safed()
            .args(["run", "--config"])
            .arg(&config)
            .env("SAFED_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let lines: Vec<String> = if output.starts_with("tcp") {
            let addr = logged_address(&mut stderr, "JSON lines on tcp://");
            let conn = std::net::TcpStream::connect(addr).unwrap();
            BufReader::new(conn).lines().take(3).map(|l| l.unwrap()).collect()
        } else {
            logged_address(&mut stderr, "ready:");
            let conn = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            BufReader::new(conn).lines().take(3).map(|l| l.unwrap()).collect()
        };
        sigterm(child.id());
        assert!(child.wait().unwrap().success());
        assert_eq!(lines.len(), 3, "{output}");
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["top"][0]["label"], "triangle", "{output}");
        }
    }
}

/// SIGTERM while the model is still loading: the model file is a FIFO nobody writes, so the
/// load is genuinely in progress when the signal comes. Exit 0 within 2 s, STOPPING, no READY.
#[test]
fn sigterm_during_load_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    std::fs::write(tmp.path().join("m.onnx"), b"").unwrap();
    let fifo = tmp.path().join("m.encoder.onnx");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let config =
        write_config(tmp.path(), &format!("[model]\npath = {:?}\n", tmp.path().join("m.onnx").display().to_string()));
    let mut child = safed().args(["run", "--config"]).arg(&config).env("NOTIFY_SOCKET", &sock_path).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "safed should still be loading");
    sigterm(child.id());
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success() && t.elapsed() < Duration::from_secs(2), "{status:?} after {:?}", t.elapsed());
    let n = notifications(&sock);
    assert!(n.iter().any(|l| l == "STOPPING=1") && !n.iter().any(|l| l == "READY=1"), "{n:?}");
}
