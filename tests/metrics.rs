//! The metrics endpoint under slow, idle and hostile clients (a slowloris head one byte every
//! 0.8 s, 200 idle connections, an 8 MB request head): scrapes are answered throughout and
//! recognition goes on. And a real Prometheus (Debian's, started here on a loopback port with
//! its own config and storage) scrapes it: the target is up, the types are right, and `rate()`
//! over `safed_events_total` returns the stream's series.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::free_port;
use common::daemon::{http_get, write_config, Daemon};

fn start_with_metrics(dir: &std::path::Path) -> (Daemon, String) {
    let config =
        write_config(dir, "[source]\nevents = \"bundled\"\nloop = true\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let d = Daemon::start(&config);
    let addr = d.metrics_addr();
    (d, addr)
}

/// A scrape answered in full within 3 s.
fn scrape(addr: &str) -> String {
    let t = Instant::now();
    let r = http_get(addr, "/metrics");
    assert!(t.elapsed() < Duration::from_secs(3), "a scrape took {:?}", t.elapsed());
    assert!(r.starts_with("HTTP/1.1 200") && r.trim_end().ends_with("# EOF"), "{r}");
    r
}

#[test]
fn slow_idle_and_hostile_clients_block_no_scrape_and_no_recognition() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, addr) = start_with_metrics(tmp.path());
    d.wait_lines(5, Duration::from_secs(30));
    let head = scrape(&addr);
    assert!(head.to_lowercase().contains("content-type: application/openmetrics-text; version=1.0.0"), "{head}");
    assert!(http_get(&addr, "/nope").starts_with("HTTP/1.1 404"));

    // Slowloris: a request head one byte every 0.8 s.
    let a = addr.clone();
    let slow = std::thread::spawn(move || {
        let mut c = TcpStream::connect(&a).unwrap();
        let mut closed_after = None;
        let t = Instant::now();
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
            if c.write_all(&[*b]).is_err() {
                closed_after = Some(t.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(800));
        }
        closed_after
    });
    // 200 idle connections.
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // An 8 MB request head: refused (431) long before it ends.
    let a = addr.clone();
    let big = std::thread::spawn(move || {
        let mut c = TcpStream::connect(&a).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nX-Big: ");
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < 8 << 20 && c.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        let mut reply = String::new();
        let _ = c.read_to_string(&mut reply);
        (sent, reply)
    });
    let before = d.lines().len();
    for _ in 0..5 {
        scrape(&addr);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (sent, reply) = big.join().unwrap();
    assert!(sent < 8 << 20 || reply.starts_with("HTTP/1.1 431"), "an 8 MB head was taken: {reply:?}");
    scrape(&addr);
    let closed = slow.join().unwrap().expect("the slowloris connection is closed");
    assert!(closed < Duration::from_secs(10), "a slow head is cut off by its deadline: {closed:?}");
    drop(idle);
    assert!(d.lines().len() > before + 20, "recognition went on meanwhile");
}

fn have_prometheus() -> bool {
    let found =
        Command::new("prometheus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "prometheus is missing under CI (tools/setup.sh installs it)");
        eprintln!("SKIPPED: prometheus not installed (tools/setup.sh installs it)");
    }
    found
}

fn api(addr: &str, path: &str) -> serde_json::Value {
    let Ok(r) = common::daemon::try_http_get(addr, path) else { return serde_json::Value::Null };
    let Some((head, body)) = r.split_once("\r\n\r\n") else { return serde_json::Value::Null };
    // Prometheus sends a body past a few KiB in chunks (the metadata of every safed metric is).
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// An HTTP/1.1 chunked body, joined.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `f` every 200 ms for up to 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_real_prometheus_scrapes_it() {
    if !have_prometheus() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (d, addr) = start_with_metrics(tmp.path());
    // The example scrape config, checked by promtool, with this test's target.
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus.yml")).unwrap();
    let conf = tmp.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        example
            .replace("127.0.0.1:9187", &addr)
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("scrape_timeout: 5s", "scrape_timeout: 1s"),
    )
    .unwrap();
    let check = Command::new("promtool").arg("check").arg("config").arg(&conf).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let web = format!("127.0.0.1:{}", free_port());
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
    let up = eventually("the target is up", || {
        let t = api(&web, "/api/v1/targets");
        let target = t["data"]["activeTargets"].as_array()?.first()?.clone();
        (target["health"] == "up").then_some(target)
    });
    assert_eq!(up["lastError"], "", "{up}");
    let types = eventually("metadata", || {
        let m = api(&web, "/api/v1/metadata");
        let ty = |name: &str| m["data"][name][0]["type"].as_str().map(String::from);
        Some((ty("safed_events")?, ty("safed_stage_seconds")?, ty("safed_model_info")?))
    });
    assert_eq!(types, ("counter".into(), "histogram".into(), "gauge".into()), "{}", log());
    let rate = eventually("rate(safed_events_total[5s]) has the stream's series", || {
        let q = api(&web, "/api/v1/query?query=rate%28safed_events_total%5B5s%5D%29");
        let series = q["data"]["result"].as_array()?.first()?.clone();
        let value: f64 = series["value"][1].as_str()?.parse().ok()?;
        (value > 0.0).then_some(series)
    });
    assert_eq!(rate["metric"]["stream"], "cam0", "{rate}");
    let _ = prom.kill();
    let _ = prom.wait();
    drop(d);
}
