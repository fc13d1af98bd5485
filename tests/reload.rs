//! `systemctl reload safed` (SIGHUP) while recognising: a second model is swapped in with no
//! recognition missed and no event dropped; a broken config or a broken model is refused and
//! the running model goes on; a change that needs a restart is named.

mod common;

use std::time::Duration;

use common::daemon::{http_get, metric, write_config, Daemon};

const BASE: &str = "[source]\nevents = \"bundled\"\nloop = true\n[metrics]\nlisten = \"127.0.0.1:0\"\n";

#[test]
fn a_second_model_is_swapped_in_without_a_gap_and_bad_ones_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let onnx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx");
    for part in ["", ".encoder", ".fusion"] {
        std::fs::copy(onnx.join(format!("demo{part}.onnx")), dir.join(format!("second{part}.onnx"))).unwrap();
        std::fs::write(dir.join(format!("broken{part}.onnx")), b"not an onnx graph").unwrap();
    }
    let second = dir.join("second.onnx").display().to_string();
    let config = write_config(dir, BASE);
    let mut d = Daemon::start(&config);
    let addr = d.metrics_addr();
    d.wait_lines(20, Duration::from_secs(30));

    // The second model, and a speed change, which needs a restart.
    std::fs::write(
        &config,
        format!("{}\n[model]\npath = {second:?}\n", BASE.replace("loop = true", "loop = true\nspeed = 2.0")),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log("swapped in", Duration::from_secs(10));
    assert!(
        d.log().iter().any(|l| l.contains("[source] and [[streams]] changed") && l.contains("restart")),
        "{:?}",
        d.log()
    );
    let n = d.lines().len();
    d.wait_lines(n + 15, Duration::from_secs(10));

    // A config that does not parse, then a model that does not load: both refused.
    std::fs::write(&config, "[model\n").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log("reload refused", Duration::from_secs(10));
    let broken = dir.join("broken.onnx").display().to_string();
    std::fs::write(&config, format!("{BASE}\n[model]\npath = {broken:?}\n")).unwrap();
    d.signal(libc::SIGHUP);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while d.logged("reload refused") < 2 {
        assert!(std::time::Instant::now() < until, "{:?}", d.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let n = d.lines().len();
    d.wait_lines(n + 15, Duration::from_secs(10));
    let metrics = http_get(&addr, "/metrics");
    d.signal(libc::SIGTERM);
    assert!(d.wait(Duration::from_secs(3)).success());

    let lines = d.lines();
    let models: Vec<&str> = lines.iter().map(|(_, v)| v["model"].as_str().unwrap()).collect();
    let first_new = models.iter().position(|m| *m == second).expect("lines from the second model");
    assert!(first_new > 0 && models[..first_new].iter().all(|m| *m == "(bundled) demo.onnx"));
    assert!(models[first_new..].iter().all(|m| *m == second), "the second model stays after the refusals");
    let seqs: Vec<u64> = lines.iter().map(|(_, v)| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no recognition missed");
    let gap = lines.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap < Duration::from_millis(500), "recognition paused for {gap:?}");
    assert_eq!(metric(&metrics, "safed_ring_dropped_total{stream=\"cam0\"} "), 0.0, "no event dropped");
    assert_eq!(metric(&metrics, "safed_window_dropped_total{stream=\"cam0\"} "), 0.0);
    assert_eq!(metric(&metrics, "safed_reloads_total{result=\"applied\"} "), 1.0);
    assert_eq!(metric(&metrics, "safed_reloads_total{result=\"refused\"} "), 2.0);
    assert_eq!(metric(&metrics, &format!("safed_model_info{{model={second:?}}} ")), 1.0, "{metrics}");
}
