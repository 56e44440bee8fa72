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
//! - a connection whose client has sent nothing within `handshake_timeout`
//!   of being accepted (a TLS handshake must also be done by then) is
//!   closed, counted as `reason="handshake_timeout"`, so silent connections
//!   cannot hold descriptors; one that spoke and then stays quiet is the
//!   idle timeout's (and at the connection limit, the first to go);
//! - at most `max_connections` are open at once: at the bound, the
//!   connection idle longest is closed for the new one (or the new one is
//!   closed when every connection has a request in flight), counted as
//!   `reason="connection_limit"`;
//! - an accept that fails (out of file descriptors) is counted, closes the
//!   connection idle longest, and backs off (5 ms doubling to 1 s, as Go's
//!   `net/http`), so the loop neither spins nor stops serving;
//! - on gRPC, a client that pings more often than the keepalive
//!   `enforcement_policy` allows is sent GOAWAY "too_many_pings" and closed,
//!   counted as `reason="too_many_pings"` ([`h2_pings`](super::h2_pings));
//! - once `shutdown` turns true the listener closes, open connections finish
//!   their in-flight requests (within [`SHUTDOWN_GRACE`]) and the task ends.

pub use super::tls::HANDSHAKE_TIMEOUT;
use crate::extensions::auth::Authenticator;
use crate::telemetry::ListenerMetrics;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Time a new connection has to start its first request.
    pub first_request_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// gRPC's keepalive `enforcement_policy`, enforced on the connection's
    /// HTTP/2 frames ([`h2_pings`](super::h2_pings)).
    pub pings: Option<super::h2_pings::PingPolicy>,
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
            first_request_timeout: self.first_request_timeout,
            max_connections: self.max_connections,
            pings: self.pings,
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
    let open = Arc::new(OpenConnections::default());
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    if open.len() >= policy.max_connections {
                        policy.metrics.closed("connection_limit").inc();
                        if open.evict_idlest(1) == 0 {
                            // Every connection is busy: the new one is the one to go.
                            drop(stream);
                            continue;
                        }
                    }
                    let _ = stream.set_nodelay(true);
                    let registered = open.register(&policy.metrics);
                    let conn = Conn {
                        builder: builder.clone(),
                        policy: policy.clone(),
                        shutdown: shutdown.clone(),
                        activity: Arc::clone(&registered.activity),
                        evict: Arc::clone(&registered.evict),
                        peer,
                    };
                    let handler = handler.clone();
                    conns.spawn(async move {
                        let _registered = registered;
                        match conn.policy.tls.clone() {
                            None => {
                                let io = Sniffed::new(stream, &conn.activity, transport, &conn.policy);
                                conn.serve(hyper_util::rt::TokioIo::new(io), handler).await
                            }
                            Some(acceptor) => {
                                let mut shutdown = conn.shutdown.clone();
                                let handshake = tokio::time::timeout(conn.policy.handshake_timeout, acceptor.accept(stream));
                                let outcome = tokio::select! {
                                    r = handshake => r,
                                    _ = shutdown_requested(&mut shutdown) => return,
                                    _ = conn.evict.notified() => return,
                                };
                                match outcome {
                                    Ok(Ok(tls)) => {
                                        let io = Sniffed::new(tls, &conn.activity, transport, &conn.policy);
                                        conn.serve(hyper_util::rt::TokioIo::new(io), handler).await
                                    }
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
                    // Typically out of file descriptors: free one, back off instead of spinning.
                    policy.metrics.accept_errors.inc();
                    let evicted = open.evict_idlest(EVICT_ON_ACCEPT_ERROR);
                    policy.metrics.closed("connection_limit").add(evicted as u64);
                    // Descriptors were freed: try again soon; none: back off as Go does.
                    backoff = if evicted > 0 {
                        ACCEPT_BACKOFF_MIN
                    } else {
                        (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX)
                    };
                    tracing::warn!(transport, error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Connections closed when an accept fails, so the queue of waiting
/// clients (a normal one among silent ones) drains quickly.
const EVICT_ON_ACCEPT_ERROR: usize = 16;

/// Go's `net/http` backs off failed accepts from 5 ms, doubling, to 1 s.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The connections a listener holds, so that it can close the one idle
/// longest when it needs room.
#[derive(Default)]
struct OpenConnections {
    next: std::sync::atomic::AtomicU64,
    conns: Mutex<std::collections::HashMap<u64, OpenConnection>>,
}

/// What the listener keeps of an open connection: its activity, and how to tell it to close.
type OpenConnection = (Arc<Activity>, Arc<tokio::sync::Notify>);

/// A connection's entry in [`OpenConnections`], removed when dropped.
struct Registered {
    id: u64,
    open: Arc<OpenConnections>,
    activity: Arc<Activity>,
    evict: Arc<tokio::sync::Notify>,
    gauge: crate::telemetry::Gauge,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        self.gauge.add(-1);
    }
}

impl OpenConnections {
    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn register(self: &Arc<Self>, metrics: &ListenerMetrics) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let evict = Arc::new(tokio::sync::Notify::new());
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (Arc::clone(&activity), Arc::clone(&evict)));
        metrics.open_connections.add(1);
        Registered { id, open: Arc::clone(self), activity, evict, gauge: metrics.open_connections.clone() }
    }

    /// Tells up to `n` connections with no request in flight to close:
    /// those that never started one first, then those idle longest.
    /// Returns how many were told.
    fn evict_idlest(&self, n: usize) -> usize {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut idle: Vec<(bool, Instant, u64)> = conns
            .iter()
            .filter(|(_, (a, _))| a.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, (a, _))| (a.started.load(Ordering::Acquire), a.last_end(), *id))
            .collect();
        idle.sort_unstable();
        let mut told = 0;
        for (_, _, id) in idle.into_iter().take(n) {
            if let Some((_, evict)) = conns.remove(&id) {
                evict.notify_one();
                told += 1;
            }
        }
        told
    }
}

/// One accepted connection, before its protocol is served.
struct Conn<B> {
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    policy: ConnectionPolicy<B>,
    shutdown: watch::Receiver<bool>,
    activity: Arc<Activity>,
    /// Notified when the listener needs this connection's descriptor.
    evict: Arc<tokio::sync::Notify>,
    peer: std::net::SocketAddr,
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
        let activity = Arc::clone(&self.activity);
        let peer = self.peer;
        let first_request_by = Instant::now() + self.policy.first_request_timeout;
        let svc = {
            let activity = Arc::clone(&activity);
            let auth = self.policy.auth.clone();
            let metrics = self.policy.metrics.clone();
            let open_preflight = self.policy.open_preflight;
            let requests = AtomicU64::new(0);
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                let in_flight = activity.begin();
                // HTTP/1 calls the service in the order the heads were read.
                if activity.ambiguous.is(requests.fetch_add(1, Ordering::Relaxed) + 1) {
                    req.extensions_mut().insert(super::h1_framing::AmbiguousFraming);
                }
                let step = match &auth {
                    Some(_) if open_preflight && is_preflight(&req) => Step::Handle(handler(req)),
                    Some((authenticator, reject)) => {
                        let (authenticator, reject, metrics) = (Arc::clone(authenticator), *reject, metrics.clone());
                        let handler = handler.clone();
                        Step::Verify(Box::pin(async move {
                            match authenticator.verify(req.headers(), Some(peer.ip())).await {
                                Ok(()) => handler(req).await,
                                Err(failure) => {
                                    metrics.auth_failures(failure.reason()).inc();
                                    reject(failure, &authenticator, &req)
                                }
                            }
                        }))
                    }
                    None => Step::Handle(handler(req)),
                };
                async move {
                    let response = match step {
                        Step::Handle(fut) => fut.await,
                        Step::Verify(fut) => fut.await,
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
            let idle = self.policy.idle_timeout.map(|limit| (limit, &*activity));
            let idle_check = async {
                match idle {
                    Some((limit, a)) => tokio::time::sleep_until(a.idle_deadline(limit)).await,
                    None => std::future::pending().await,
                }
            };
            let started = activity.started.load(Ordering::Acquire);
            let first_request_check = async {
                if started {
                    std::future::pending().await
                } else {
                    tokio::time::sleep_until(first_request_by).await
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
                _ = self.evict.notified() => {
                    // A connection that never sent a request has nothing to be told.
                    if !activity.started.load(Ordering::Acquire) {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, conn).await;
                    return;
                }
                _ = first_request_check => {
                    if !activity.started.load(Ordering::Acquire) {
                        self.policy.metrics.closed("handshake_timeout").inc();
                        return;
                    }
                }
                _ = age_check => {
                    aged_out = true;
                    self.policy.metrics.closed("max_connection_age").inc();
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
    /// Credentials checked (maybe off the async workers), then handled or refused.
    Verify(std::pin::Pin<Box<dyn Future<Output = http::Response<B>> + Send>>),
}

/// A connection's stream, noting in its [`Activity`] when the client first
/// sends something: a connection silent past the handshake timeout is closed.
/// On an HTTP listener it also follows the HTTP/1 request framing, to find
/// a request with both `Content-Length` and `Transfer-Encoding`
/// ([`h1_framing`](super::h1_framing)); on a gRPC listener, the HTTP/2
/// frames both ways, to enforce the keepalive ping policy
/// ([`h2_pings`](super::h2_pings)): once the client has pinged too often
/// the GOAWAY is written between two of the server's frames, and reads and
/// writes fail after it.
struct Sniffed<S> {
    inner: S,
    activity: Arc<Activity>,
    framing: Option<super::h1_framing::Framing>,
    pings: Option<Box<PingGuard>>,
}

/// A connection's ping policy and the counter of connections it closed.
struct PingGuard {
    enforcer: super::h2_pings::PingEnforcer,
    closed: crate::telemetry::Counter,
}

impl<S> Sniffed<S> {
    fn new<B>(inner: S, activity: &Arc<Activity>, transport: &str, policy: &ConnectionPolicy<B>) -> Self {
        let framing = (transport == "http").then(super::h1_framing::Framing::default);
        let pings = policy.pings.map(|p| {
            Box::new(PingGuard {
                enforcer: super::h2_pings::PingEnforcer::new(p),
                closed: policy.metrics.closed("too_many_pings").clone(),
            })
        });
        Sniffed { inner, activity: Arc::clone(activity), framing, pings }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for Sniffed<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(guard) = this.pings.as_deref_mut() {
            // The GOAWAY goes as soon as the server is between frames; until
            // then the connection is read as before.
            if guard.enforcer.goaway_now() {
                std::task::ready!(guard.enforcer.poll_goaway(&mut this.inner, cx))?;
                return std::task::Poll::Ready(Err(super::h2_pings::too_many_pings()));
            }
        }
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() && !this.activity.started.load(Ordering::Relaxed) {
            this.activity.started.store(true, Ordering::Release);
        }
        if let Some(framing) = &mut this.framing {
            framing.feed(read, &this.activity.ambiguous);
        }
        if let Some(guard) = this.pings.as_deref_mut() {
            if guard.enforcer.received(read, std::time::Instant::now()) {
                guard.closed.inc();
                tracing::debug!("closing a gRPC connection: the client sent too many pings");
            }
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let Some(guard) = this.pings.as_deref_mut() else {
            return std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if guard.enforcer.goaway_now() && !buf.is_empty() {
            std::task::ready!(guard.enforcer.poll_goaway(&mut this.inner, cx))?;
            return std::task::Poll::Ready(Err(super::h2_pings::too_many_pings()));
        }
        let writable = guard.enforcer.writable(buf.len());
        let written = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_write(cx, &buf[..writable]))?;
        guard.enforcer.sent(&buf[..written]);
        std::task::Poll::Ready(Ok(written))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match this.pings.as_deref_mut() {
            None => std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            // A GOAWAY is due: one slice at a time, so that it goes between frames.
            Some(guard) if guard.enforcer.closing() => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                std::pin::Pin::new(this).poll_write(cx, first)
            }
            Some(guard) => {
                let mut left = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
                let written = left;
                for b in bufs {
                    let n = left.min(b.len());
                    guard.enforcer.sent(&b[..n]);
                    left -= n;
                    if left == 0 {
                        break;
                    }
                }
                std::task::Poll::Ready(Ok(written))
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    /// Whether the client has sent anything (or started a request).
    started: std::sync::atomic::AtomicBool,
    last_end: Mutex<Instant>,
    /// Which request carried both `Content-Length` and `Transfer-Encoding`.
    ambiguous: super::h1_framing::Ambiguous,
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
        Activity {
            in_flight: AtomicUsize::new(0),
            started: std::sync::atomic::AtomicBool::new(false),
            last_end: Mutex::new(Instant::now()),
            ambiguous: Default::default(),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.store(true, Ordering::Release);
        InFlight(Arc::clone(self))
    }

    fn last_end(&self) -> Instant {
        self.last_end.lock().map(|t| *t).unwrap_or_else(|_| Instant::now())
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
