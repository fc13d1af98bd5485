//! Recognitions as JSON lines, one per recognition, flushed as written (a reader sees each
//! result at once, and a clean shutdown loses none).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub label: String,
    pub p: f32,
}

/// Milliseconds per stage for one recognition.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Arrival of the last input this recognition needed -> taken by the inference stage (the
    /// capture queue, pairing, rendering and preprocessing, and the hand-over).
    pub queue: f64,
    /// The newest pair's event image and RGB frame into tensors (part of `queue`).
    pub preprocess: f64,
    pub encode: f64,
    pub fuse: f64,
    /// Arrival of the last input -> this line written.
    pub total: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recognition {
    pub stream: String,
    /// The model that made it (a reload may swap it).
    pub model: String,
    /// Dataset replay: the sample this recognition belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    pub seq: u64,
    /// The recognised span: start of the first window .. end of the last, µs.
    pub t_start: i64,
    pub t_end: i64,
    pub frames: usize,
    pub events: usize,
    /// "frames" (the paper's pairing) or "events" (event-only mode: the RGB branch sees the
    /// event image).
    pub rgb: &'static str,
    /// Pairs encoded in the same encoder call as this recognition's newest (several streams
    /// batched together: `model.batch`).
    pub batch: usize,
    pub top: Vec<Scored>,
    pub latency_ms: Latency,
}

pub struct JsonlSink {
    out: Box<dyn Write + Send>,
}

/// Clients of a socket sink; each gets every line. A client that cannot take a line at once
/// (its buffer is full, or it left) is dropped: a slow reader must not stall recognition.
type Clients = std::sync::Arc<std::sync::Mutex<Vec<Box<dyn Write + Send>>>>;

struct Broadcast(Clients);

impl Write for Broadcast {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Ok(mut clients) = self.0.lock() {
            clients.retain_mut(|c| match c.write_all(buf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!("JSON lines client dropped: {e}");
                    false
                }
            });
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn accept_loop<S: Write + Send + 'static>(
    clients: Clients,
    mut accept: impl FnMut() -> io::Result<S> + Send + 'static,
) {
    std::thread::spawn(move || loop {
        match accept() {
            Ok(stream) => {
                if let Ok(mut c) = clients.lock() {
                    c.push(Box::new(stream));
                }
            }
            Err(e) => {
                tracing::warn!("JSON lines socket: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    });
}

impl JsonlSink {
    pub fn stdout() -> Self {
        JsonlSink { out: Box::new(io::stdout()) }
    }

    pub fn file(path: &std::path::Path) -> io::Result<Self> {
        Ok(JsonlSink { out: Box::new(std::fs::File::create(path)?) })
    }

    /// A TCP server ("127.0.0.1:PORT": this machine only, unless configured otherwise) that
    /// sends every line to every connected client.
    pub fn tcp(addr: &str) -> io::Result<(Self, std::net::SocketAddr)> {
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let clients: Clients = Default::default();
        accept_loop(clients.clone(), move || {
            let (s, _) = listener.accept()?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        Ok((JsonlSink { out: Box::new(Broadcast(clients)) }, local))
    }

    /// A Unix socket server at `path` (an old socket file there is replaced).
    pub fn unix(path: &std::path::Path) -> io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        let clients: Clients = Default::default();
        accept_loop(clients.clone(), move || {
            let (s, _) = listener.accept()?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        Ok(JsonlSink { out: Box::new(Broadcast(clients)) })
    }

    /// From the config's `output.jsonl`: "stdout", "tcp://HOST:PORT", "unix:///PATH", or a file.
    pub fn open(spec: &str) -> io::Result<Self> {
        if spec == "stdout" {
            Ok(Self::stdout())
        } else if let Some(addr) = spec.strip_prefix("tcp://") {
            let (sink, at) = Self::tcp(addr)?;
            tracing::info!("JSON lines on tcp://{at}");
            Ok(sink)
        } else if let Some(path) = spec.strip_prefix("unix://") {
            Self::unix(path.as_ref())
        } else {
            Self::file(spec.as_ref())
        }
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonlSink { out }
    }

    pub fn write(&mut self, r: &Recognition) -> io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
        line.push(b'\n');
        self.write_line(&line)
    }

    /// One serialised line, its newline included.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)?;
        self.out.flush()
    }
}
