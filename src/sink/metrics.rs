//! The Prometheus endpoint (`GET /metrics`, text format): events and frames in, drops, stage
//! latency histograms, inference time, reconnects. Served by one small thread on the configured
//! address (127.0.0.1 by default: metrics are not for the whole network unless configured).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(1e-4, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    // 1, 2, 4 .. 256 pairs.
    Histogram::new(exponential_buckets(1.0, 2.0, 9))
}

/// Counters per stream (label `stream`).
#[derive(Clone)]
pub struct Metrics {
    pub events: Family<Labels, Counter>,
    pub frames: Family<Labels, Counter>,
    pub recognitions: Family<Labels, Counter>,
    pub ring_dropped: Family<Labels, Counter>,
    pub window_dropped: Family<Labels, Counter>,
    pub reconnects: Family<Labels, Counter>,
    /// Per stage: queue, preprocess, encode, fuse, end_to_end.
    pub stage_seconds: HistogramFamily,
    /// Encoder + fusion time per recognition.
    pub inference_seconds: Histogram,
    /// Pairs per encoder call (streams batched together).
    pub batch_pairs: Histogram,
    registry: Arc<Mutex<Registry>>,
}

/// One stream's counters, resolved once (each is a shared atomic).
#[derive(Clone)]
pub struct StreamCounters {
    pub events: Counter,
    pub frames: Counter,
    pub recognitions: Counter,
    pub ring_dropped: Counter,
    pub window_dropped: Counter,
    pub reconnects: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("safed");
        let m = Metrics {
            events: Family::default(),
            frames: Family::default(),
            recognitions: Family::default(),
            ring_dropped: Family::default(),
            window_dropped: Family::default(),
            reconnects: Family::default(),
            stage_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            inference_seconds: latency_histogram(),
            batch_pairs: batch_histogram(),
            registry: Arc::new(Mutex::new(Registry::default())),
        };
        r.register("events", "Events taken off the capture queue", m.events.clone());
        r.register("frames", "RGB frames taken off the capture queue", m.frames.clone());
        r.register("recognitions", "Recognitions written", m.recognitions.clone());
        r.register("ring_dropped", "Items dropped by the full capture queue", m.ring_dropped.clone());
        r.register("window_dropped", "Events dropped while frames waited for their windows", m.window_dropped.clone());
        r.register("reconnects", "Network source reconnections", m.reconnects.clone());
        r.register("stage_seconds", "Latency per pipeline stage", m.stage_seconds.clone());
        r.register("inference_seconds", "Encoder + fusion time per recognition", m.inference_seconds.clone());
        r.register(
            "batch_pairs",
            "Frame/window pairs per encoder call (streams batched together)",
            m.batch_pairs.clone(),
        );
        Metrics { registry: Arc::new(Mutex::new(r)), ..m }
    }

    pub fn stage(&self, stage: &str) -> Histogram {
        self.stage_seconds.get_or_create(&vec![("stage".to_string(), stage.to_string())]).clone()
    }

    /// The counters of stream `name` (they appear in the output from now on, at 0).
    pub fn stream(&self, name: &str) -> StreamCounters {
        let labels = vec![("stream".to_string(), name.to_string())];
        let get = |f: &Family<Labels, Counter>| f.get_or_create(&labels).clone();
        StreamCounters {
            events: get(&self.events),
            frames: get(&self.frames),
            recognitions: get(&self.recognitions),
            ring_dropped: get(&self.ring_dropped),
            window_dropped: get(&self.window_dropped),
            reconnects: get(&self.reconnects),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &r);
        }
        out
    }

    /// Serves `GET /metrics` on `addr` from a background thread; the bind happens now, so a
    /// taken port is an error at start-up.
    pub fn serve(&self, addr: &str) -> std::io::Result<std::net::SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let me = self.clone();
        std::thread::Builder::new().name("metrics".into()).spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Err(e) = me.answer(conn) {
                    tracing::debug!("metrics request: {e}");
                }
            }
        })?;
        Ok(local)
    }

    fn answer(&self, mut conn: TcpStream) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(1)))?;
        // The whole request head (a request may come in several segments; answering early and
        // closing on unread bytes would reset the connection under the client's feet).
        let mut head = Vec::with_capacity(512);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&head);
        let (status, body, kind) = if request.starts_with("GET /metrics") {
            ("200 OK", self.render(), "text/plain; version=0.0.4; charset=utf-8")
        } else {
            ("404 Not Found", "try /metrics\n".to_string(), "text/plain")
        };
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}
