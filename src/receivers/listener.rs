//! The connection layer every receiver listener runs on: accept, TLS
//! handshake, authentication, connection timeouts, graceful shutdown.
//!
//! Guarantees:
//! - a failed or slow TLS handshake closes that connection only, is counted
//!   (`sluice_receiver_tls_handshake_failures_total`) and never stops the
//!   accept loop; a handshake has `handshake_timeout` (at most
//!   [`HANDSHAKE_TIMEOUT`]) to finish;
//! - with an authenticator, a request whose headers carry no valid
//!   credentials is answered by the transport's rejection (gRPC
//!   UNAUTHENTICATED, HTTP 401) and counted, and its body is never read;
//! - with an idle timeout, a connection with no request in flight for that
//!   long is closed (counted), so an idle or stalled client cannot hold a
//!   connection and its task forever;
//! - once `shutdown` turns true the listener closes, open connections finish
//!   their in-flight requests (within [`SHUTDOWN_GRACE`]) and the task ends.

pub use super::tls::HANDSHAKE_TIMEOUT;
use crate::extensions::auth::Authenticator;
use crate::telemetry::ListenerMetrics;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long open requests may take to finish once shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long a connection closed for idleness may take to say goodbye
/// (HTTP/2 GOAWAY) before its socket is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Answers a request whose credentials were refused, in the transport's terms.
pub type Reject<B> = fn(
    crate::extensions::auth::AuthFailure,
    &Authenticator,
    &http::Request<hyper::body::Incoming>,
) -> http::Response<B>;

/// What a listener enforces on each connection besides the transport's own settings.
pub struct ConnectionPolicy<B> {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub auth: Option<(Arc<Authenticator>, Reject<B>)>,
    /// Close a connection once no request has been in flight for this long.
    pub idle_timeout: Option<Duration>,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    pub metrics: ListenerMetrics,
    /// CORS preflights (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) reach the handler without
    /// credentials: browsers never send them on a preflight. The handler
    /// must answer them without taking data.
    pub open_preflight: bool,
    /// gRPC's `max_connection_age` and `max_connection_age_grace`: a
    /// connection this old is asked to close (GOAWAY: requests in flight
    /// finish, new ones go to a new connection), and closed once the grace
    /// (if any) has passed.
    pub max_age: Option<(Duration, Option<Duration>)>,
}

/// Whether a request is a CORS preflight.
pub fn is_preflight<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl<B> Clone for ConnectionPolicy<B> {
    fn clone(&self) -> Self {
        ConnectionPolicy {
            tls: self.tls.clone(),
            auth: self.auth.clone(),
            idle_timeout: self.idle_timeout,
            handshake_timeout: self.handshake_timeout,
            metrics: self.metrics.clone(),
            open_preflight: self.open_preflight,
            max_age: self.max_age,
        }
    }
}

/// Resolves once shutdown is requested, or once its sender is gone.
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Accepts connections until shutdown, then asks every open connection to
/// finish its in-flight requests and close, and waits for them.
pub async fn serve_connections<S, F, B>(
    listener: TcpListener,
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    handler: S,
    mut shutdown: watch::Receiver<bool>,
    transport: &'static str,
    policy: ConnectionPolicy<B>,
) where
    S: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Conn { builder: builder.clone(), policy: policy.clone(), shutdown: shutdown.clone() };
                    let handler = handler.clone();
                    conns.spawn(async move {
                        match conn.policy.tls.clone() {
                            None => conn.serve(hyper_util::rt::TokioIo::new(stream), handler).await,
                            Some(acceptor) => {
                                let mut shutdown = conn.shutdown.clone();
                                let handshake = tokio::time::timeout(conn.policy.handshake_timeout, acceptor.accept(stream));
                                let outcome = tokio::select! {
                                    r = handshake => r,
                                    _ = shutdown_requested(&mut shutdown) => return,
                                };
                                match outcome {
                                    Ok(Ok(tls)) => conn.serve(hyper_util::rt::TokioIo::new(tls), handler).await,
                                    Ok(Err(e)) => {
                                        conn.policy.metrics.tls_handshake_failures.inc();
                                        tracing::debug!(transport, %peer, error = %e, "TLS handshake failed");
                                    }
                                    Err(_) => {
                                        conn.policy.metrics.tls_handshake_failures.inc();
                                        tracing::debug!(transport, %peer, "TLS handshake timed out");
                                    }
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(transport, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// One accepted connection, before its protocol is served.
struct Conn<B> {
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    policy: ConnectionPolicy<B>,
    shutdown: watch::Receiver<bool>,
}

impl<B> Conn<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    async fn serve<IO, S, F>(mut self, io: IO, handler: S)
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = http::Response<B>> + Send + 'static,
    {
        // Only tracked when an idle timeout needs it: it costs a lock per request.
        let activity = self.policy.idle_timeout.map(|_| Arc::new(Activity::new()));
        let svc = {
            let activity = activity.clone();
            let auth = self.policy.auth.clone();
            let metrics = self.policy.metrics.clone();
            let open_preflight = self.policy.open_preflight;
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let in_flight = activity.as_ref().map(Activity::begin);
                let step = match &auth {
                    Some(_) if open_preflight && is_preflight(&req) => Step::Handle(handler(req)),
                    Some((authenticator, reject)) => match authenticator.check(req.headers()) {
                        Ok(()) => Step::Handle(handler(req)),
                        Err(failure) => {
                            metrics.auth_failures(failure.reason()).inc();
                            Step::Reject(reject(failure, authenticator, &req))
                        }
                    },
                    None => Step::Handle(handler(req)),
                };
                async move {
                    let response = match step {
                        Step::Handle(fut) => fut.await,
                        Step::Reject(response) => response,
                    };
                    drop(in_flight);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let conn = self.builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let aged = tokio::time::Instant::now() + self.policy.max_age.map_or(Duration::ZERO, |(age, _)| age);
        let mut aged_out = false;
        loop {
            let age_check = async {
                match self.policy.max_age {
                    Some(_) if !aged_out => tokio::time::sleep_until(aged).await,
                    _ => std::future::pending().await,
                }
            };
            let idle = self.policy.idle_timeout.zip(activity.as_ref());
            let idle_check = async {
                match idle {
                    Some((limit, a)) => tokio::time::sleep_until(a.idle_deadline(limit)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        let timed_out = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                        if timed_out {
                            self.policy.metrics.timed_out("read_header_timeout").inc();
                        }
                    }
                    return;
                }
                _ = shutdown_requested(&mut self.shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    // A client that never finishes its request must not hold the agent up.
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                    return;
                }
                _ = age_check => {
                    aged_out = true;
                    conn.as_mut().graceful_shutdown();
                    if let Some((_, Some(grace))) = self.policy.max_age {
                        let _ = tokio::time::timeout(grace, conn).await;
                        return;
                    }
                }
                _ = idle_check => {
                    if let Some((limit, a)) = idle {
                        if a.idle_deadline(limit) <= Instant::now() {
                            self.policy.metrics.timed_out("idle_timeout").inc();
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, conn).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

enum Step<F, B> {
    Handle(F),
    Reject(http::Response<B>),
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last_end: Mutex<Instant>,
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last_end.lock() {
            *t = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Self {
        Activity { in_flight: AtomicUsize::new(0), last_end: Mutex::new(Instant::now()) }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// When the connection will have been idle for `limit`: a connection
    /// with a request in flight is not idle, so it is looked at again later.
    fn idle_deadline(&self, limit: Duration) -> Instant {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return now + limit;
        }
        let last = self.last_end.lock().map(|t| *t).unwrap_or(now);
        last + limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_deadline_waits_for_requests_in_flight() {
        let a = Arc::new(Activity::new());
        let limit = Duration::from_secs(5);
        let created = *a.last_end.lock().unwrap();
        assert_eq!(a.idle_deadline(limit), created + limit);
        let req = a.begin();
        std::thread::sleep(Duration::from_millis(20));
        let before = Instant::now();
        // In flight: never idle, looked at again a whole limit later.
        assert!(a.idle_deadline(limit) >= before + limit);
        drop(req);
        let ended = *a.last_end.lock().unwrap();
        assert!(ended >= before);
        assert_eq!(a.idle_deadline(limit), ended + limit);
    }
}
