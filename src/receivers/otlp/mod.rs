//! The `otlp` receiver: OTLP over gRPC and over HTTP (protobuf and JSON).
//!
//! Guarantees, on both transports:
//! - a request is decoded and validated whole ([`decode`], [`validate`]) before
//!   any of it reaches a pipeline; a malformed request is answered
//!   INVALID_ARGUMENT / 400 with a message naming the problem and counted in
//!   `sluice_receiver_malformed_requests_total`;
//! - a request the pipelines take is answered success and its items counted
//!   as accepted; one they refuse is answered UNAVAILABLE / 503 + Retry-After
//!   and its items counted as refused;
//! - a signal no pipeline takes is answered as the Collector does, which does
//!   not register those handlers: gRPC UNIMPLEMENTED, HTTP 404;
//! - once `shutdown` turns true the listeners close, open requests finish
//!   (within [`SHUTDOWN_GRACE`]) and the server tasks end.

pub mod config;
pub mod decode;
mod grpc;
mod http;
mod json;
mod status;
pub mod validate;

pub use decode::{decode_body, decode_grpc, decode_http, Compression, DecodeError, Format};

use super::{ReceiverContext, ReceiverError, ReceiverOutput, Refusal, RunningReceiver};
use crate::data::{Payload, Signal};
use crate::telemetry::ReceiverMetrics;
use std::convert::Infallible;
use std::future::Future;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long open requests may take to finish once shutdown is requested.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Seconds a client is told to wait (`Retry-After`) after a refusal.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Binds every configured listener, then serves until `ctx.shutdown` turns true.
pub async fn start(cfg: &config::OtlpReceiverConfig, ctx: ReceiverContext) -> Result<RunningReceiver, ReceiverError> {
    let protocols = &cfg.protocols;
    if protocols.grpc.is_none() && protocols.http.is_none() {
        return Err(ReceiverError::Invalid {
            receiver: ctx.id.clone(),
            message: "at least one of protocols.grpc and protocols.http must be set".into(),
        });
    }
    // Bind everything before serving anything, so a bind error leaves nothing running.
    let grpc = match &protocols.grpc {
        Some(g) => Some((g, bind(&ctx.id, &g.endpoint).await?)),
        None => None,
    };
    let http = match &protocols.http {
        Some(h) => Some((h, bind(&ctx.id, &h.endpoint).await?)),
        None => None,
    };
    let mut running = RunningReceiver { endpoints: Vec::new(), tasks: Vec::new() };
    if let Some((g, listener)) = grpc {
        running.endpoints.push(("grpc", local_addr(&ctx.id, &g.endpoint, &listener)?));
        running.tasks.push(tokio::spawn(grpc::serve(
            g.clone(),
            listener,
            Ingest::new(&ctx, "grpc"),
            ctx.shutdown.clone(),
        )));
    }
    if let Some((h, listener)) = http {
        running.endpoints.push(("http", local_addr(&ctx.id, &h.endpoint, &listener)?));
        running.tasks.push(tokio::spawn(http::serve(
            h.clone(),
            listener,
            Ingest::new(&ctx, "http"),
            ctx.shutdown.clone(),
        )));
    }
    Ok(running)
}

async fn bind(receiver: &str, endpoint: &str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(endpoint).await.map_err(|source| ReceiverError::Bind {
        receiver: receiver.into(),
        endpoint: endpoint.into(),
        source,
    })
}

fn local_addr(receiver: &str, endpoint: &str, l: &TcpListener) -> Result<std::net::SocketAddr, ReceiverError> {
    l.local_addr().map_err(|source| ReceiverError::Bind {
        receiver: receiver.into(),
        endpoint: endpoint.into(),
        source,
    })
}

/// What both transports share once a request is decoded: the pipelines and
/// the counters of one transport.
pub(crate) struct Ingest {
    receiver: String,
    output: ReceiverOutput,
    metrics: [ReceiverMetrics; 3],
    durable_ack_failures: crate::telemetry::Counter,
}

/// A batch offered to the pipelines: answered, or waiting for persistent queues.
pub(crate) enum Delivered {
    Done(Result<(), Refusal>),
    Pending { acks: super::Acks, signal: Signal, items: usize },
}

impl Ingest {
    fn new(ctx: &ReceiverContext, transport: &'static str) -> Ingest {
        let m = |s| ReceiverMetrics::new(&ctx.registry, &ctx.id, transport, s);
        Ingest {
            receiver: ctx.id.clone(),
            output: ctx.output.clone(),
            metrics: [m(Signal::Traces), m(Signal::Metrics), m(Signal::Logs)],
            durable_ack_failures: crate::telemetry::durable_ack_failures(&ctx.registry, &ctx.id, transport),
        }
    }

    fn metrics(&self, signal: Signal) -> &ReceiverMetrics {
        match signal {
            Signal::Traces => &self.metrics[0],
            Signal::Metrics => &self.metrics[1],
            Signal::Logs => &self.metrics[2],
        }
    }

    fn accepts(&self, signal: Signal) -> bool {
        self.output.accepts(signal)
    }

    /// Whether requests of this signal may stay encoded (every pipeline forwards bytes).
    fn takes_encoded(&self, signal: Signal) -> bool {
        self.output.takes_encoded(signal)
    }

    fn no_pipeline_message(&self, signal: Signal) -> String {
        format!("receiver {} has no {} pipeline", self.receiver, signal)
    }

    fn malformed(&self, signal: Signal) {
        self.metrics(signal).malformed_requests.inc();
    }

    /// Asks the pipelines whether they would take data now, before the request
    /// is decoded, so an overloaded agent does not spend CPU decoding what it
    /// will refuse. `count` says how many items the request holds; it is only
    /// called when refusing.
    fn admit(&self, signal: Signal, count: impl FnOnce() -> usize) -> Result<(), Refusal> {
        self.output.ready(signal, count).map_err(|(refusal, items)| {
            self.metrics(signal).refused.add(items as u64);
            refusal
        })
    }

    /// Offers the batch to the pipelines and counts the outcome, unless it
    /// must wait for persistent queues: then [`Ingest::settle`] does.
    fn deliver(&self, batch: Payload) -> Delivered {
        let n = batch.item_count();
        // Like the Collector, an export with no items succeeds without touching a pipeline.
        if n == 0 {
            return Delivered::Done(Ok(()));
        }
        let signal = batch.signal();
        let m = self.metrics(signal);
        match self.output.offer(batch) {
            Ok(acks) if acks.is_empty() => {
                m.accepted.add(n as u64);
                Delivered::Done(Ok(()))
            }
            Ok(acks) => Delivered::Pending { acks, signal, items: n },
            Err(refusal) => {
                m.refused.add(n as u64);
                Delivered::Done(Err(refusal))
            }
        }
    }

    /// Waits until the batch is on disk in every persistent queue (or not in
    /// time) and counts the outcome.
    async fn settle(&self, delivered: Delivered) -> Result<(), Refusal> {
        let (acks, signal, items) = match delivered {
            Delivered::Done(result) => return result,
            Delivered::Pending { acks, signal, items } => (acks, signal, items),
        };
        let m = self.metrics(signal);
        match acks.wait(super::DURABLE_ACK_TIMEOUT).await {
            Ok(()) => {
                m.accepted.add(items as u64);
                Ok(())
            }
            Err(refusal) => {
                m.refused.add(items as u64);
                self.durable_ack_failures.inc();
                Err(refusal)
            }
        }
    }
}

/// Resolves once shutdown is requested, or once its sender is gone (nobody
/// can ask any more, so the agent is going away).
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Accepts connections until shutdown, then asks every open connection to
/// finish its in-flight requests and close, and waits for them.
async fn serve_connections<S, F, B>(
    listener: TcpListener,
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    handler: S,
    mut shutdown: watch::Receiver<bool>,
    transport: &'static str,
) where
    S: Fn(::http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ::http::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let builder = builder.clone();
                    let handler = handler.clone();
                    let mut shutdown = shutdown.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let fut = handler(req);
                            async move { Ok::<_, Infallible>(fut.await) }
                        });
                        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = shutdown_requested(&mut shutdown) => {
                                conn.as_mut().graceful_shutdown();
                                // A client that never finishes its request must not hold the agent up.
                                let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                            }
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(transport, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::config::{GrpcServerConfig, HttpServerConfig, OtlpReceiverConfig, Protocols};
    use super::*;

    fn ctx() -> ReceiverContext {
        let (_stop, shutdown) = watch::channel(false);
        ReceiverContext {
            id: "otlp/x".into(),
            output: ReceiverOutput::default(),
            registry: crate::telemetry::Registry::new(),
            shutdown,
        }
    }

    #[tokio::test]
    async fn bind_error_names_the_endpoint_and_starts_nothing() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = taken.local_addr().unwrap().to_string();
        let cfg = OtlpReceiverConfig {
            protocols: Protocols {
                grpc: Some(GrpcServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
                http: Some(HttpServerConfig { endpoint: endpoint.clone(), ..Default::default() }),
            },
        };
        let Err(err) = start(&cfg, ctx()).await else { panic!("bound a taken port") };
        assert!(matches!(&err, ReceiverError::Bind { endpoint: e, .. } if *e == endpoint), "{err:?}");
        assert!(err.to_string().starts_with(&format!("otlp/x: cannot listen on {endpoint}: ")), "{err}");
    }

    #[tokio::test]
    async fn no_protocol_is_invalid() {
        let cfg = OtlpReceiverConfig { protocols: Protocols::default() };
        let Err(err) = start(&cfg, ctx()).await else { panic!("started without protocols") };
        assert_eq!(err.to_string(), "otlp/x: at least one of protocols.grpc and protocols.http must be set");
    }
}
