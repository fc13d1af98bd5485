//! The view's HTTP server (hyper, on its own thread and tokio runtime, as the metrics endpoint):
//!
//! - `GET /`: the page (src/view/page.html, served as is: nothing fetched from elsewhere);
//! - `GET /streams`: names, sensors, the model, each stream's last recognition and counters;
//! - `GET /streams/{name}/latest.jpg`, `GET /streams/{name}/mjpeg` (multipart/x-mixed-replace),
//!   the labels drawn under the images (`?labels=0`: without them);
//! - `GET /recognitions[?stream=NAME]`: Server-Sent Events, the JSON lines as stdout gets them.
//!
//! With a token, every request needs `Authorization: Bearer TOKEN` or `?token=TOKEN` (what a
//! browser can send for an image or an event stream). Hostile clients: a head must arrive within
//! [`HEAD_DEADLINE`] and fit in [`MAX_HEAD`]; `max_clients` connections at most; a streaming
//! viewer that takes nothing for [`STALL_DEADLINE`] is closed. A slow viewer gets the newest
//! image when it is ready for one, never a queue of old ones.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{broadcast, Semaphore};

use super::{Variant, ViewHub, ViewSettings, Watching};

pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
pub const MAX_HEAD: usize = 16 * 1024;
/// A streaming viewer that takes nothing for this long is closed.
pub const STALL_DEADLINE: Duration = Duration::from_secs(30);
/// An idle stream sends something this often (the latest image again; an SSE comment), so a
/// live viewer is never taken for a stalled one.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// How long `latest.jpg` waits for a first image.
const FIRST_IMAGE: Duration = Duration::from_secs(3);
const BOUNDARY: &str = "safedframe";
const PAGE: &str = include_str!("page.html");

type Body = UnsyncBoxBody<Bytes, Infallible>;

struct Server {
    hub: ViewHub,
    token: Option<String>,
}

/// Binds now (a taken port fails at start-up), serves from a thread of its own.
pub fn serve(hub: ViewHub, settings: &ViewSettings) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(&settings.listen)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let server = Arc::new(Server { hub, token: settings.token.clone() });
    let max_clients = settings.max_clients;
    std::thread::Builder::new().name("view".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => accept(listener, server, max_clients).await,
                Err(e) => tracing::error!("view: {e}"),
            }
        })
    })?;
    Ok(local)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn accept(listener: tokio::net::TcpListener, server: Arc<Server>, max_clients: usize) {
    let permits = Arc::new(Semaphore::new(max_clients));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("view accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!("view: {max_clients} connections open; one more refused");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            // Moved on by every request and every streamed part.
            let progress = Arc::new(AtomicU64::new(now_ms()));
            let p = progress.clone();
            let service = hyper::service::service_fn(move |req| {
                let (server, p) = (server.clone(), p.clone());
                p.store(now_ms(), Ordering::Relaxed);
                async move { Ok::<_, Infallible>(server.respond(req, p).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_DEADLINE)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!("view connection: {e}") },
                () = stalled(progress) => tracing::debug!("view: a viewer took nothing for {STALL_DEADLINE:?}; closed"),
            }
            drop(permit);
        });
    }
}

/// Returns once `progress` has not moved for [`STALL_DEADLINE`].
async fn stalled(progress: Arc<AtomicU64>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if now_ms().saturating_sub(progress.load(Ordering::Relaxed)) > STALL_DEADLINE.as_millis() as u64 {
            return;
        }
    }
}

fn full(status: StatusCode, kind: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(kind) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The value of `key` in a query string, percent-decoded.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `?labels=0`: the image without the label band (the page draws its own).
fn variant(query: Option<&str>) -> Variant {
    match query_param(query, "labels").as_deref() {
        Some("0") => Variant::Plain,
        _ => Variant::Labelled,
    }
}

/// Compares without an early exit, so the time taken says nothing of where a guess went wrong.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Server {
    fn authorised(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else { return true };
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let given = bearer.or_else(|| query_param(req.uri().query(), "token"));
        given.is_some_and(|g| same_secret(&g, token))
    }

    async fn respond(&self, req: Request<Incoming>, progress: Arc<AtomicU64>) -> Response<Body> {
        if !self.authorised(&req) {
            let mut r = full(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
            );
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"safed view\""));
            return r;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return full(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        }
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [""] => full(StatusCode::OK, "text/html; charset=utf-8", PAGE),
            ["streams"] => full(StatusCode::OK, "application/json", self.hub.streams_json().to_string()),
            ["recognitions"] => self.events(query_param(query.as_deref(), "stream"), progress),
            ["streams", name, what] => match self.hub.stream_index(&percent_decode(name)) {
                None => full(StatusCode::NOT_FOUND, "text/plain", format!("no stream {name}\n")),
                Some(i) if *what == "latest.jpg" => self.latest(i, variant(query.as_deref())).await,
                Some(i) if *what == "mjpeg" => self.mjpeg(i, variant(query.as_deref()), progress),
                Some(_) => full(StatusCode::NOT_FOUND, "text/plain", "latest.jpg or mjpeg\n"),
            },
            _ => full(StatusCode::NOT_FOUND, "text/plain", "try /, /streams, /recognitions\n"),
        }
    }

    async fn latest(&self, stream: usize, v: Variant) -> Response<Body> {
        self.hub.note_interest(v);
        let mut rx = self.hub.jpeg_rx(stream, v);
        let wait = async {
            loop {
                if let Some(j) = rx.borrow_and_update().clone() {
                    return Some(j);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        match tokio::time::timeout(FIRST_IMAGE, wait).await {
            Ok(Some(j)) => full(StatusCode::OK, "image/jpeg", j.bytes.clone()),
            _ => full(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "no image yet: nothing recognised so far\n"),
        }
    }

    fn mjpeg(&self, stream: usize, v: Variant, progress: Arc<AtomicU64>) -> Response<Body> {
        let mut rx = self.hub.jpeg_rx(stream, v);
        rx.mark_changed();
        let state = (rx, self.hub.watch(v), progress);
        let parts = stream::unfold(state, |(mut rx, watching, progress): (_, Watching, Arc<AtomicU64>)| async move {
            // The newest image when this viewer is ready for one; the same one again after a
            // quiet spell, so that it is not taken for stalled.
            if let Ok(Err(_)) = tokio::time::timeout(KEEPALIVE, rx.changed()).await {
                return None; // the pipeline is gone
            }
            let jpeg = rx.borrow_and_update().clone();
            progress.store(now_ms(), Ordering::Relaxed);
            let part = match jpeg {
                Some(j) => {
                    let head = format!(
                        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        j.bytes.len()
                    );
                    [head.as_bytes(), &j.bytes, b"\r\n"].concat()
                }
                None => Vec::new(),
            };
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(part))), (rx, watching, progress)))
        });
        let mut r = Response::new(StreamBody::new(parts).boxed_unsync());
        let kind = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_str(&kind).unwrap_or(HeaderValue::from_static("multipart/x-mixed-replace")),
        );
        r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    fn events(&self, only: Option<String>, progress: Arc<AtomicU64>) -> Response<Body> {
        let state = (self.hub.lines_rx(), progress, only);
        let lines = stream::unfold(state, |(mut rx, progress, only): (_, Arc<AtomicU64>, Option<String>)| async move {
            let chunk = loop {
                match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                    Err(_) => break ": keep-alive\n\n".to_string(),
                    Ok(Ok(line)) if only.as_deref().is_none_or(|s| *s == *line.stream) => {
                        break format!("event: recognition\ndata: {}\n\n", line.json)
                    }
                    Ok(Ok(_)) => continue,
                    // Fell behind: skip to the newest, as a slow viewer should.
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => break format!(": skipped {n}\n\n"),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                }
            };
            progress.store(now_ms(), Ordering::Relaxed);
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(chunk))), (rx, progress, only)))
        });
        let mut r = Response::new(StreamBody::new(lines).boxed_unsync());
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_secret_helpers() {
        assert_eq!(query_param(Some("a=1&token=x%2By+z"), "token").as_deref(), Some("x+y z"));
        assert_eq!(query_param(Some("stream=cam0"), "token"), None);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "abcd"));
    }
}
