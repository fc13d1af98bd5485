//! The Prometheus endpoint (`GET /metrics`), served by hyper on its own thread and tokio
//! runtime, so that no client, however slow or hostile, touches recognition or another scrape:
//!
//! - every connection is its own task: a slow client waits alone;
//! - a request head must arrive within [`HEAD_DEADLINE`] (slowloris) and fit in [`MAX_HEAD`]
//!   bytes (hyper answers 431 past it and closes);
//! - a connection lives [`CONNECTION_DEADLINE`] at most, and at most [`MAX_CONNECTIONS`] are
//!   open: beyond that a new one is closed at once (idle connections cannot exhaust the
//!   process's file descriptors).
//!
//! The body is OpenMetrics text (prometheus-client's encoder) and is served as such.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::Metrics;

/// A request head (line and headers) must be complete this soon after the connection opens or
/// the previous response.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// A request head larger than this is refused (431).
pub const MAX_HEAD: usize = 16 * 1024;
/// Connections open at once at most.
pub const MAX_CONNECTIONS: usize = 256;
/// A connection (keep-alive included) is closed after this long.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// OpenMetrics 1.0, what the body is.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` now (a taken port is an error at start-up) and serves from a background thread.
pub fn serve(metrics: Metrics, addr: &str) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => accept(listener, Arc::new(metrics)).await,
                Err(e) => tracing::error!("metrics endpoint: {e}"),
            }
        })
    })?;
    Ok(local)
}

async fn accept(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait for connections to close.
                tracing::debug!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!("metrics: {MAX_CONNECTIONS} connections open; one more refused");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_DEADLINE)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_DEADLINE, conn).await {
                tracing::debug!("metrics connection: {e}");
            }
            drop(permit);
        });
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.render()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET /metrics\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "try /metrics\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(kind) = hyper::header::HeaderValue::from_str(kind) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, kind);
    }
    response
}
