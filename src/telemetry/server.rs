//! The agent's own HTTP endpoints: Prometheus `/metrics` at
//! `service.telemetry.metrics.address`, and the `health_check` extension
//! (`/` as the Collector's, plus `/health/live`, `/health/ready`,
//! `/health/startup`).
//!
//! Both serve plain HTTP/1.1 on loopback by default and stop accepting when
//! the shutdown signal turns true.
//!
//! Guarantee ([`serve_pages`], which the `prometheus` exporter's page uses
//! too): at most [`PAGE_MAX_CONNECTIONS`] connections at once (more are
//! closed at accept), a client has [`PAGE_HEADER_TIMEOUT`] to send its
//! headers and a connection lives at most [`PAGE_CONNECTION_LIFETIME`], so
//! silent or slow clients cannot exhaust descriptors or tasks; a failed
//! accept backs off (5 ms doubling to 1 s) instead of spinning.

use super::health::HealthState;
use super::health_config::HealthCheckConfig;
use super::Registry;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

/// Connections one page server holds at once.
pub const PAGE_MAX_CONNECTIONS: usize = 256;
/// Time a client of a page server has to send its request headers.
pub const PAGE_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest a page server's connection lives (a scrape of a large page to a slow reader included).
pub const PAGE_CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves `handler` on `listener` over HTTP/1.1 within the bounds above,
/// until `shutdown` turns true (never, when `None`).
pub async fn serve_pages<F, Fut>(listener: TcpListener, handler: F, shutdown: Option<watch::Receiver<bool>>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(PAGE_MAX_CONNECTIONS));
    let mut backoff = std::time::Duration::ZERO;
    let mut shutdown = shutdown;
    loop {
        let stop = async {
            match shutdown.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|v| *v).await;
                }
                None => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = std::time::Duration::ZERO;
                stream
            }
            Err(_) => {
                backoff = (backoff * 2).clamp(std::time::Duration::from_millis(5), std::time::Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = handler(req);
                async move { Ok::<_, Infallible>(resp.await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(PAGE_HEADER_TIMEOUT)
                .serve_connection(io, service);
            let _ = tokio::time::timeout(PAGE_CONNECTION_LIFETIME, conn).await;
        });
    }
}

/// Binds `addr` and serves `handler` until `shutdown` turns true.
async fn serve(
    addr: &str,
    handler: Handler,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let page = move |req: Request<Incoming>| std::future::ready(handler(&req));
    let task = tokio::spawn(serve_pages(listener, page, Some(shutdown)));
    Ok((local, task))
}

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Serves the Prometheus exposition of `registry` at `/metrics`.
pub async fn serve_metrics(
    addr: &str,
    registry: Registry,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handler: Handler = Arc::new(move |req| match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", registry.render())
        }
        (_, "/metrics") => text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET is allowed on /metrics\n"),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found; metrics are at /metrics\n"),
    });
    serve(addr, handler, shutdown).await
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Serves the health endpoints of the `health_check` extension.
pub async fn serve_health(
    cfg: &HealthCheckConfig,
    health: HealthState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let status_path = cfg.path.clone();
    let started_at = SystemTime::now();
    let start_instant = std::time::Instant::now();
    let policy = cfg.component_health;
    let handler: Handler = Arc::new(move |req| {
        let path = req.uri().path();
        let json = "application/json";
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET is allowed\n");
        }
        match path {
            "/health/live" => text(StatusCode::OK, json, "{\"status\":\"live\"}\n"),
            "/health/startup" => {
                if health.started() {
                    text(StatusCode::OK, json, "{\"status\":\"started\"}\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, json, "{\"status\":\"starting\"}\n")
                }
            }
            "/health/ready" => {
                let r = health.readiness(&policy, std::time::Instant::now());
                let body = serde_json::json!({
                    "status": if r.ready { "ready" } else { "not ready" },
                    "not_ready": r.not_ready,
                });
                let code = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                text(code, json, format!("{body}\n"))
            }
            p if p == status_path => {
                let r = health.readiness(&policy, std::time::Instant::now());
                let body = serde_json::json!({
                    "status": if r.ready { "Server available" } else { "Server not available" },
                    "upSince": rfc3339(started_at),
                    "uptime": crate::config::duration::format_duration(start_instant.elapsed()),
                });
                let code = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                text(code, json, format!("{body}\n"))
            }
            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found; try /health/ready\n"),
        }
    });
    serve(&cfg.endpoint, handler, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_client_is_cut_off_and_the_page_keeps_serving() {
        let (_stop, shutdown) = watch::channel(false);
        let (addr, _task) = serve_metrics("127.0.0.1:0", Registry::new(), shutdown).await.unwrap();
        // More silent connections than the server holds: the extra ones are closed at once.
        let mut silent = Vec::new();
        for _ in 0..PAGE_MAX_CONNECTIONS + 10 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut last = silent.pop().unwrap();
        let mut buf = [0u8; 16];
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), last.read(&mut buf)).await.unwrap();
        assert_eq!(n.unwrap_or(0), 0, "over the connection bound: closed");
        drop(silent);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::AsyncWriteExt;
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut page = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut page)).await.unwrap().unwrap();
        assert!(page.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&page));
    }

    #[test]
    fn formats_rfc3339_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
