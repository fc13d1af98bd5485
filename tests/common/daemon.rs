//! `safed run` as a child process: its config in a temp dir, its stdout lines stamped with
//! when they arrived, its log collected (so tests can wait for a line), signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn safed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safed"))
}

pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("safed.toml");
    std::fs::write(&path, body).unwrap();
    path
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child we started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

pub fn sigterm(pid: u32) {
    signal(pid, libc::SIGTERM);
}

/// GET over a fresh connection, sent in small pieces as a slow client would (the server must
/// wait for the whole head); the whole response, head and body.
pub fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

pub fn try_http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    for part in ["GET ", path, " HTTP/1.1\r\n", "Host: x\r\n", "Connection: close\r\n", "\r\n"] {
        conn.write_all(part.as_bytes())?;
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut body = String::new();
    conn.read_to_string(&mut body)?;
    Ok(body)
}

/// Stdout lines, each with when it arrived.
type Stamped = Arc<Mutex<Vec<(Instant, String)>>>;

/// The value of the sample `name` (labels and the trailing space included) in a metrics body.
pub fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

pub struct Daemon {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    lines: Stamped,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        Self::spawn(safed().args(["run", "--config"]).arg(config))
    }

    pub fn spawn(cmd: &mut Command) -> Daemon {
        let mut child = cmd.env("SAFED_LOG", "info").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (log, lines): (Arc<Mutex<Vec<String>>>, Stamped) = Default::default();
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let o = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                o.lock().unwrap().push((Instant::now(), line));
            }
        });
        Daemon { child, log, lines }
    }

    /// The first log line containing `marker` (waits up to `limit`; panics with the log after).
    pub fn wait_log(&self, marker: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(marker)) {
                return l.clone();
            }
            assert!(Instant::now() < until, "{marker:?} never logged:\n{}", self.log().join("\n"));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// HOST:PORT of the metrics endpoint, once logged.
    pub fn metrics_addr(&self) -> String {
        let line = self.wait_log("metrics on http://", Duration::from_secs(30));
        let at = line.split("http://").nth(1).unwrap_or_else(|| panic!("no address in {line:?}"));
        at.trim_end_matches("/metrics").to_string()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Log lines containing `marker`, how many.
    pub fn logged(&self, marker: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(marker)).count()
    }

    /// The JSON lines so far, with when each arrived.
    pub fn lines(&self) -> Vec<(Instant, serde_json::Value)> {
        self.lines.lock().unwrap().iter().map(|(t, l)| (*t, serde_json::from_str(l).unwrap())).collect()
    }

    pub fn wait_lines(&self, n: usize, limit: Duration) {
        let until = Instant::now() + limit;
        while self.lines.lock().unwrap().len() < n {
            assert!(Instant::now() < until, "fewer than {n} lines within {limit:?}:\n{}", self.log().join("\n"));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        signal(self.child.id(), sig);
    }

    /// Waits for the exit (up to `limit`, then kills it and panics).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers drain what is left.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                panic!("safed did not exit within {limit:?}:\n{}", self.log().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
