//! The live view, against `safed run` on the bundled recording: in a real browser (Debian's
//! chromium, driven over WebDriver by chromedriver), the page opens with its token, shows a
//! label of the model and an image that changes; over plain HTTP the MJPEG stream gives JPEG
//! parts, the event stream gives stdout's lines, a missing or wrong token gets 401, a listen
//! address beyond loopback without a token is refused at start-up; 20 stalled viewers leave the
//! recognition rate as it was, and nothing is encoded while nobody watches.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{http_get, metric, safed, write_config, Daemon};

const TOKEN: &str = "view-test-token-0123456789";

/// `safed run` on the bundled recording, looping, with the view (and metrics) on loopback.
fn start(dir: &Path, view_extra: &str, token: bool) -> (Daemon, String) {
    let token_line = if token { "token_env = \"SAFED_TEST_VIEW_TOKEN\"\n" } else { "" };
    let body = format!(
        "[source]\nevents = \"bundled\"\nloop = true\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [view]\nlisten = \"127.0.0.1:0\"\n{token_line}{view_extra}"
    );
    let config = write_config(dir, &body);
    let d = Daemon::spawn(safed().args(["run", "--config"]).arg(&config).env("SAFED_TEST_VIEW_TOKEN", TOKEN));
    let line = d.wait_log("view on http://", Duration::from_secs(60));
    let addr = line.split("http://").nth(1).unwrap().split('/').next().unwrap().to_string();
    (d, addr)
}

/// GET with the bearer token; the status code and the whole response.
fn get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = c.read_to_string(&mut body);
    let status = body.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body)
}

/// Opens a streaming GET and returns the connection after the head was sent.
fn open_stream(addr: &str, path: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").unwrap();
    c
}

#[test]
fn the_token_is_needed_and_beyond_loopback_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, addr) = start(dir.path(), "", true);
    assert_eq!(get(&addr, "/", None).0, 401);
    assert_eq!(get(&addr, "/streams", Some("wrong-token-0123456789")).0, 401);
    assert_eq!(get(&addr, "/recognitions", None).0, 401);
    let (status, page) = get(&addr, "/", Some(TOKEN));
    assert!(status == 200 && page.contains("safed live view"), "{page}");
    assert_eq!(get(&addr, &format!("/streams?token={TOKEN}"), None).0, 200);
    assert_eq!(get(&addr, "/streams/nope/latest.jpg", Some(TOKEN)).0, 404);

    let open = tempfile::tempdir().unwrap();
    let config = write_config(open.path(), "[source]\nevents = \"bundled\"\n[view]\nlisten = \"0.0.0.0:0\"\n");
    let out = safed().args(["run", "--config"]).arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("view.listen") && err.contains("token_env"), "{err}");
}

#[test]
fn mjpeg_gives_jpeg_parts_and_the_event_stream_gives_stdout_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (d, addr) = start(dir.path(), "", true);
    // MJPEG: at least 3 whole JPEG parts.
    let mut c = open_stream(&addr, "/streams/cam0/mjpeg");
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 65536]);
    let until = Instant::now() + Duration::from_secs(30);
    let jpegs = loop {
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "the stream ended");
        buf.extend_from_slice(&chunk[..n]);
        let parts = jpeg_parts(&buf);
        if parts.len() >= 3 || Instant::now() > until {
            break parts;
        }
    };
    assert!(jpegs.len() >= 3, "{} JPEG parts", jpegs.len());
    let head = String::from_utf8_lossy(&buf[..200.min(buf.len())]);
    assert!(head.contains("multipart/x-mixed-replace; boundary="), "{head}");
    for j in &jpegs {
        let img = image::load_from_memory(j).expect("a part that is a JPEG");
        assert!(img.width() >= 240 && img.height() >= 240);
    }

    // Server-Sent Events: the same lines as stdout, by sequence number.
    let mut c = open_stream(&addr, "/recognitions?stream=cam0");
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut text = String::new();
    while text.matches("\ndata: ").count() < 5 {
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "the event stream ended");
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert!(text.contains("Content-Type: text/event-stream") || text.contains("content-type: text/event-stream"));
    let sent: Vec<serde_json::Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|l| serde_json::from_str(l).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let stdout = d.lines();
    for line in &sent {
        let same = stdout.iter().find(|(_, l)| l["seq"] == line["seq"]).map(|(_, l)| l);
        assert_eq!(same, Some(line), "an event that is not stdout's line");
    }
}

/// The JPEGs in a multipart body so far (FF D8 .. FF D9 after each part's head).
fn jpeg_parts(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(start) = find(&buf[at..], b"Content-Length: ") {
        let s = at + start + 16;
        let Some(eol) = find(&buf[s..], b"\r\n") else { break };
        let len: usize = std::str::from_utf8(&buf[s..s + eol]).unwrap().trim().parse().unwrap();
        let body = s + eol + 4;
        if buf.len() < body + len {
            break;
        }
        let j = &buf[body..body + len];
        assert!(j.starts_with(&[0xFF, 0xD8]) && j.ends_with(&[0xFF, 0xD9]), "a part that is not a whole JPEG");
        parts.push(j.to_vec());
        at = body + len;
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn recognitions_in(d: &Daemon, span: Duration) -> usize {
    let before = d.lines().len();
    std::thread::sleep(span);
    d.lines().len() - before
}

#[test]
fn twenty_stalled_viewers_leave_recognition_as_it_was_and_nobody_watching_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (d, addr) = start(dir.path(), "max_clients = 64\n", true);
    let metrics_addr = d.metrics_addr();
    d.wait_lines(5, Duration::from_secs(60));
    let alone = recognitions_in(&d, Duration::from_secs(4));
    let encoded = |m: &str| metric(m, "safed_view_encode_seconds_count ");
    assert_eq!(encoded(&http_get(&metrics_addr, "/metrics")), 0.0, "an image was encoded with nobody watching");

    // 20 viewers that ask for the stream and never read a byte.
    let stalled: Vec<TcpStream> = (0..20)
        .map(|_| {
            let c = open_stream(&addr, "/streams/cam0/mjpeg");
            // SAFETY: setsockopt on a socket we own; a tiny receive buffer fills at once.
            let one: libc::c_int = 1;
            unsafe {
                use std::os::fd::AsRawFd;
                libc::setsockopt(
                    c.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&one as *const libc::c_int).cast(),
                    4,
                );
            }
            c
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let watched = recognitions_in(&d, Duration::from_secs(4));
    let ratio = watched as f64 / alone as f64;
    eprintln!("recognitions in 4 s: {alone} alone, {watched} with 20 stalled viewers ({ratio:.2})");
    assert!(ratio > 0.85, "{alone} recognitions alone, {watched} with 20 stalled viewers");
    assert!(encoded(&http_get(&metrics_addr, "/metrics")) > 0.0, "nothing encoded for 20 viewers");
    // The view still answers others.
    assert_eq!(get(&addr, "/streams", Some(TOKEN)).0, 200);
    drop(stalled);
}

#[test]
fn hostile_clients_get_their_connections_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, addr) = start(dir.path(), "", true);
    // An idle connection: closed once the head deadline passes.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 64];
    let n = idle.read(&mut b).unwrap_or(0);
    assert!(t0.elapsed() < Duration::from_secs(8) && (n == 0 || b.starts_with(b"HTTP/1.1 408")), "idle kept open");
    // A huge head: refused.
    let mut huge = TcpStream::connect(&addr).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let filler = "a".repeat(64 * 1024);
    let _ = write!(huge, "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    let mut answer = String::new();
    let _ = huge.read_to_string(&mut answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(80)]);
    assert_eq!(get(&addr, "/streams", Some(TOKEN)).0, 200, "the view still answers");
}

#[test]
fn replay_serves_the_view_during_a_replay() {
    let mut child = safed()
        .args(["replay", "--loop", "--view", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let addr = line.trim().strip_prefix("view: open http://").and_then(|a| a.strip_suffix('/'));
    let addr = addr.unwrap_or_else(|| panic!("{line:?}")).to_string();
    let until = Instant::now() + Duration::from_secs(30);
    let recognised = loop {
        let (status, body) = get(&addr, "/streams", None);
        assert_eq!(status, 200, "{body}");
        if body.contains("\"top\"") {
            break body;
        }
        assert!(Instant::now() < until, "no recognition in /streams: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(recognised.contains("demo-sample"), "{recognised}");
    common::daemon::sigterm(child.id());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(status.success() && rest.contains("recognitions"), "the replay's report after the stop: {rest}");
}

// --- the browser ---

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free loopback port; None (SKIPPED) without it, except under CI.
fn chromedriver() -> Option<(Driver, u16)> {
    let path = Path::new("/usr/bin/chromedriver");
    if !path.exists() {
        assert!(std::env::var_os("CI").is_none(), "chromedriver missing: run tools/setup.sh");
        eprintln!("SKIPPED: no chromedriver (run tools/setup.sh)");
        return None;
    }
    let port = free_port();
    let child =
        Command::new(path).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Driver(child), port))
}

/// Where the test leaves its screenshot (docs/view.png is a copy of one).
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("view-page.png")
}

#[test]
fn the_page_in_a_real_browser_shows_a_label_and_a_moving_image() {
    let Some((_driver, port)) = chromedriver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (d, addr) = start(dir.path(), "", true);
    d.wait_lines(3, Duration::from_secs(60));
    let labels: Vec<String> =
        d.lines()[0].1["top"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap().to_string()).collect();
    let profile = dir.path().join("chromium-profile");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=800,760", format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with chromium");
        client.goto(&format!("http://{addr}/?token={TOKEN}")).await.unwrap();
        // A label of the model, from the event stream.
        let until = Instant::now() + Duration::from_secs(30);
        let shown = loop {
            let text = client
                .execute("return document.querySelector('[data-rank=\"0\"]')?.textContent ?? ''", vec![])
                .await
                .unwrap();
            let text = text.as_str().unwrap_or_default().to_string();
            if labels.contains(&text) {
                break text;
            }
            assert!(Instant::now() < until, "no label of the model on the page (last: {text:?})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // The image has arrived, and moves.
        let img = client.find(fantoccini::Locator::Css("section.card img")).await.unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while client
            .execute("return document.querySelector('section.card img').naturalWidth", vec![])
            .await
            .unwrap()
            .as_u64()
            == Some(0)
        {
            assert!(Instant::now() < until, "the image never loaded");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let first = img.screenshot().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = img.screenshot().await.unwrap();
        assert_ne!(first, second, "the image did not change in 1.5 s");
        let page = client.screenshot().await.unwrap();
        std::fs::write(screenshot_path(), page).unwrap();
        eprintln!("label {shown:?} shown; the page is in {}", screenshot_path().display());
        client.close().await.unwrap();
    });
}
