//! safed publishing to a real broker (Debian's mosquitto, started here on a free loopback port
//! with its own config): every recognition arrives, in order, as the JSON lines say; the
//! retained status is `online` while running and `offline` after a clean stop or a kill -9
//! (Last Will); a broker killed mid-run is reconnected within 1 s of coming back, with the
//! queue delivered and what overflowed counted, and recognition never pauses; TLS with a CA,
//! a client certificate and a password; refused credentials and certificates fail before
//! READY.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::broker::{have_mosquitto, retained, retained_becomes, subscribe, Broker};
use common::daemon::{http_get, metric, write_config, Daemon};

fn config(port: u16, extra: &str) -> String {
    format!(
        "[source]\nevents = \"bundled\"\nloop = true\n[output.mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"safed-test\"\ntopic = \"fleet/{{stream}}/recognitions\"\nstatus_topic = \"fleet/status\"\nhealth_topic = \"fleet/health\"\nhealth_interval_s = 1\n{extra}"
    )
}

fn payloads(got: &[common::broker::Got], topic: &str) -> Vec<serde_json::Value> {
    got.iter().filter(|g| g.topic == topic).map(|g| serde_json::from_str(&g.payload).unwrap()).collect()
}

#[test]
fn every_recognition_arrives_in_order_with_status_and_health() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), "");
    let got = subscribe(broker.port, "test-sub", "fleet/#");
    let mut d = Daemon::start(&write_config(tmp.path(), &config(broker.port, "")));
    d.wait_log("ready:", Duration::from_secs(30));
    d.wait_lines(40, Duration::from_secs(30));
    let status = retained_becomes(broker.port, "fleet/status", "online", Duration::from_secs(5));
    assert_eq!(status.as_deref(), Some("online"));
    std::thread::sleep(Duration::from_millis(1200));
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());
    assert_eq!(retained(broker.port, "fleet/status").as_deref(), Some("offline"), "a clean stop says offline");
    let lines: Vec<serde_json::Value> = d.lines().into_iter().map(|l| l.1).collect();
    let until = Instant::now() + Duration::from_secs(3);
    while payloads(&got.lock().unwrap(), "fleet/cam0/recognitions").len() < lines.len() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let received = payloads(&got.lock().unwrap(), "fleet/cam0/recognitions");
    assert_eq!(received.len(), lines.len(), "every line published, each once (nothing was reconnected)");
    assert_eq!(received, lines, "the same content, in the same order");
    let health = payloads(&got.lock().unwrap(), "fleet/health");
    let h = health.last().expect("a health message every second");
    assert_eq!(h["model"], "(bundled) demo.onnx");
    assert!(h["uptime_s"].as_f64().unwrap() > 0.5 && h["events_per_s"].as_f64().unwrap() > 0.0, "{h}");
    assert!(h["recognitions_per_s"].as_f64().unwrap() > 0.0, "{h}");
    assert_eq!((h["dropped"]["queue"].as_u64(), h["mqtt"]["dropped"].as_u64()), (Some(0), Some(0)), "{h}");
}

#[test]
fn a_killed_process_is_offline_by_last_will() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), "");
    let mut d = Daemon::start(&write_config(tmp.path(), &config(broker.port, "")));
    d.wait_log("ready:", Duration::from_secs(30));
    let status = retained_becomes(broker.port, "fleet/status", "online", Duration::from_secs(5));
    assert_eq!(status.as_deref(), Some("online"));
    d.signal(libc::SIGKILL);
    d.wait(Duration::from_secs(2));
    let status = retained_becomes(broker.port, "fleet/status", "offline", Duration::from_secs(3));
    assert_eq!(status.as_deref(), Some("offline"), "no Last Will: {}", broker.log());
}

/// The broker goes for 2 s (SIGTERM: it saves the subscriber's session, which must outlive
/// the restart for the subscriber to be sent what came while it was away) under a 20-message queue: recognition goes on (no gap in the
/// lines), the queue's last 20 are delivered after the reconnection, which comes within 1 s of
/// the broker being back, and every line is either received or counted as dropped.
#[test]
fn a_broker_that_comes_back_gets_the_queue_and_drops_are_counted() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), "");
    let got = subscribe(broker.port, "test-sub", "fleet/+/recognitions");
    let extra = "queue = 20\nreconnect_max_ms = 200\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let mut d = Daemon::start(&write_config(tmp.path(), &config(broker.port, extra)));
    let addr = d.metrics_addr();
    d.wait_lines(30, Duration::from_secs(30));
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let back = Instant::now();
    d.wait_log(" again", Duration::from_secs(3));
    let waited = back.elapsed();
    assert!(waited < Duration::from_secs(1), "reconnected {waited:?} after the broker came back");
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = http_get(&addr, "/metrics");
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());
    let lines = d.lines();
    let gap = lines.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap < Duration::from_millis(500), "recognition paused for {gap:?}");
    let dropped = metric(&metrics, "safed_mqtt_dropped_total ") as u64;
    assert!(dropped > 0, "2 s of recognitions do not fit in 20 messages");
    std::thread::sleep(Duration::from_millis(500));
    let seqs: Vec<u64> =
        payloads(&got.lock().unwrap(), "fleet/cam0/recognitions").iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    // In order, but for messages sent again after the reconnection (at least once).
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = seqs.iter().copied().filter(|s| seen.insert(*s)).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "out of order: {seqs:?}");
    let missing: Vec<u64> = (1..=lines.len() as u64).filter(|s| !seen.contains(s)).collect();
    // A message in flight when the broker went is sent again, and may be dropped by the full
    // queue even though the broker had it: dropped may exceed missing by that window.
    assert!(
        missing.len() as u64 <= dropped && dropped <= missing.len() as u64 + 64,
        "{} lines, {} received, {dropped} dropped, missing {missing:?}",
        lines.len(),
        seen.len()
    );
    let last_missing = *missing.last().unwrap();
    assert!(
        (last_missing + 1..=lines.len() as u64).all(|s| seen.contains(&s)) && lines.len() as u64 - last_missing >= 20,
        "the queue (20) and everything after the reconnection arrive: missing {missing:?} of {}",
        lines.len()
    );
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate signed by it; and a
/// second CA that signed nothing of this.
fn make_certificates(dir: &std::path::Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
        );
    }
    // Extensions make them X.509 v3, which webpki requires.
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let (crt, csr, ext) = (format!("{name}.crt"), format!("{name}.csr"), format!("{name}.ext"));
        let args = ["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"];
        openssl(dir, &[&args[..], &["-extfile", &ext, "-out", &crt]].concat());
    }
}

#[test]
fn tls_with_certificates_and_a_password_and_refusals_before_ready() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_certificates(dir);
    let pw = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(dir.join("passwd"))
        .args(["robot", "s3cret-pw"])
        .status();
    assert!(pw.unwrap().success());
    let p = |f: &str| dir.join(f).display().to_string();
    let broker = Broker::start(
        dir,
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\npassword_file {}\nallow_anonymous false",
            p("ca.crt"),
            p("server.crt"),
            p("server.key"),
            p("passwd")
        ),
    );
    std::fs::write(dir.join("pw.txt"), "s3cret-pw\n").unwrap();
    let tls = |ca: &str, password: &str| {
        format!(
            "[source]\nevents = \"bundled\"\nloop = true\n[output.mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\nusername = \"robot\"\n{password}\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            broker.port,
            p(ca),
            p("client.crt"),
            p("client.key")
        )
    };
    // Right CA, client certificate and password (from a file): connected, running.
    let mut d = Daemon::start(&write_config(dir, &tls("ca.crt", &format!("password_file = {:?}", p("pw.txt")))));
    d.wait_log("connected to mqtts://127.0.0.1", Duration::from_secs(30));
    d.wait_log("ready:", Duration::from_secs(30));
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());
    assert!(d.log().iter().all(|l| !l.contains("s3cret-pw")), "the password is never logged");
    // A wrong password (from the environment): refused before READY, saying why.
    let config = write_config(dir, &tls("ca.crt", "password_env = \"SAFED_TEST_PW\""));
    let mut d =
        Daemon::spawn(common::daemon::safed().args(["run", "--config"]).arg(&config).env("SAFED_TEST_PW", "wrong-pw"));
    assert!(!d.wait(Duration::from_secs(15)).success());
    assert_eq!(d.logged("ready:"), 0, "{:?}", d.log());
    assert!(d.log().iter().any(|l| l.contains("refused the credentials")), "{:?}", d.log());
    // A CA that did not sign the broker's certificate: refused before READY, saying TLS.
    let mut d = Daemon::start(&write_config(dir, &tls("other-ca.crt", &format!("password_file = {:?}", p("pw.txt")))));
    assert!(!d.wait(Duration::from_secs(15)).success());
    assert_eq!(d.logged("ready:"), 0, "{:?}", d.log());
    assert!(d.log().iter().any(|l| l.contains("TLS handshake failed")), "{:?}", d.log());
    // check-config shows no secret.
    let out =
        common::daemon::safed().arg("check-config").arg(&config).env("SAFED_TEST_PW", "wrong-pw").output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong-pw"));
}

/// A broker that is not there at start: safed starts anyway and connects once it comes.
#[test]
fn a_broker_missing_at_start_is_waited_for() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = common::broker::free_port();
    let mut d = Daemon::start(&write_config(tmp.path(), &config(port, "reconnect_max_ms = 200\n")));
    d.wait_log("starting without the broker", Duration::from_secs(30));
    d.wait_log("ready:", Duration::from_secs(30));
    d.wait_lines(5, Duration::from_secs(10));
    let _broker = Broker::start_on(tmp.path(), port, "");
    d.wait_log("connected to mqtt://", Duration::from_secs(3));
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());
}

/// SIGHUP with another topic: the same client connects again with it, keeping its queue; the
/// lines go on, unbroken, from one topic to the other.
#[test]
fn a_reload_moves_the_lines_to_a_new_topic_without_losing_one() {
    if !have_mosquitto() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), "");
    let got = subscribe(broker.port, "test-sub", "#");
    let text = config(broker.port, "");
    let path = write_config(tmp.path(), &text);
    let mut d = Daemon::start(&path);
    d.wait_lines(20, Duration::from_secs(30));
    std::fs::write(&path, text.replace("fleet/{stream}/recognitions", "moved/{stream}")).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log("reload: sinks handed to the pipeline", Duration::from_secs(10));
    let until = Instant::now() + Duration::from_secs(10);
    while payloads(&got.lock().unwrap(), "moved/cam0").len() < 20 {
        assert!(Instant::now() < until, "nothing on the new topic: {:?}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());
    std::thread::sleep(Duration::from_millis(300));
    let got = got.lock().unwrap();
    let seqs = |topic| -> Vec<u64> { payloads(&got, topic).iter().map(|v| v["seq"].as_u64().unwrap()).collect() };
    let (old, new) = (seqs("fleet/cam0/recognitions"), seqs("moved/cam0"));
    let mut all: Vec<u64> = old.iter().chain(&new).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (1..=d.lines().len() as u64).collect::<Vec<_>>(), "every line on one topic or the other");
    assert!(old.iter().max() < new.iter().min().map(|m| m + 64).as_ref(), "the new topic takes over from the old");
}
