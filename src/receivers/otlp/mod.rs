//! The `otlp` receiver: OTLP over gRPC and over HTTP (protobuf and JSON).
//!
//! Guarantees, on both transports:
//! - before a request is decoded, a walk of its bytes gives its items and its
//!   decoded size ([`decode::prepare`]); one over `limits.max_decoded_size_mib`
//!   is answered RESOURCE_EXHAUSTED / 413, one its pipelines' memory limiters
//!   have no headroom for UNAVAILABLE / 503, neither decoded, items counted;
//!   bodies in flight, their time and the decodes at once are bounded
//!   ([`admission`]), and decoding runs off the async workers;
//! - a request is decoded and validated whole ([`decode`], [`validate`]) before
//!   any of it reaches a pipeline; a malformed request is answered
//!   INVALID_ARGUMENT / 400 with a message naming the problem and counted in
//!   `sluice_receiver_malformed_requests_total`;
//! - a request the pipelines take is answered success and its items counted
//!   as accepted; one they refuse is answered UNAVAILABLE / 503 + Retry-After
//!   and its items counted as refused;
//! - a signal no pipeline takes is answered as the Collector does, which does
//!   not register those handlers: gRPC UNIMPLEMENTED, HTTP 404;
//! - with `tls:` a listener serves only TLS (mTLS with `client_ca_file`), and
//!   with `auth:` a request is checked before its body is read; both, and the
//!   connection timeouts, are the job of [`super::listener`];
//! - once `shutdown` turns true the listeners close, open requests finish
//!   (within [`SHUTDOWN_GRACE`]) and the server tasks end.

mod admission;
pub mod config;
pub mod decode;
mod grpc;
mod http;
mod json;
mod status;
pub mod validate;

pub use decode::{decode_body, decode_grpc, decode_http, Compression, DecodeError, Format};

use super::{ReceiverContext, ReceiverError, ReceiverFactory, ReceiverOutput, ReceiverSpec, Refusal, RunningReceiver};
use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::extensions::{ExtensionReference, ExtensionUse};

pub static FACTORY: ReceiverFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Receiver,
        name: "otlp",
        aliases: &["otlp_grpc"],
        signals: ALL_SIGNALS,
        description: "OTLP over gRPC and HTTP (protobuf and JSON)",
        example: "protocols:\n  grpc:\n    endpoint: 127.0.0.1:4317\n  http:\n    endpoint: 127.0.0.1:4318\n",
    },
    settings: SettingsType::of::<config::OtlpReceiverConfig>(),
    compile: |input| {
        let cfg = input.typed::<config::OtlpReceiverConfig>()?.normalized();
        input.check(|c| config::otlp_receiver(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ReceiverSpec for config::OtlpReceiverConfig {
    fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        const GRPC: &[&str] = &["protocols", "grpc", "auth", "authenticator"];
        const HTTP: &[&str] = &["protocols", "http", "auth", "authenticator"];
        let grpc = self.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref()).map(|a| (GRPC, a));
        let http = self.protocols.http.as_ref().and_then(|h| h.auth.as_ref()).map(|a| (HTTP, a));
        grpc.into_iter()
            .chain(http)
            .map(|(fields, a)| (fields, a.authenticator.as_str(), ExtensionUse::Authenticator))
            .collect()
    }

    fn files(&self) -> Vec<String> {
        let grpc = self.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref());
        let http = self.protocols.http.as_ref().and_then(|h| h.tls.as_ref());
        grpc.into_iter()
            .chain(http)
            .flat_map(|tls| [&tls.cert_file, &tls.key_file, &tls.client_ca_file].into_iter().flatten().cloned())
            .collect()
    }

    fn start(&self, ctx: ReceiverContext) -> super::StartFuture<'_> {
        Box::pin(start(self, ctx))
    }
}
use crate::data::{Payload, Signal};
use crate::telemetry::ReceiverMetrics;
use tokio::net::TcpListener;

pub use super::listener::SHUTDOWN_GRACE;

/// ALPN protocols each listener offers over TLS.
pub const GRPC_ALPN: &[&[u8]] = grpc::ALPN;
pub const HTTP_ALPN: &[&[u8]] = http::ALPN;

/// Seconds a client is told to wait (`Retry-After`) after a refusal.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Largest HTTP/2 frame the receivers let a client send (the protocol's
/// default is 16 KiB). A 1000-span request is a few hundred KiB: in 16 KiB
/// DATA frames it is dozens of frames, each written, woken and handled on
/// its own by both ends. Clients that follow the setting (tonic and hyper,
/// so a sluice agent sending to a sluice gateway) send far fewer: in
/// benches/e2e.sh, sluice's `otlp` exporter spent 0.21 CPU s per million
/// spans sending to a peer that allows 1 MiB frames against 0.69 s to one
/// that keeps 16 KiB (scenarios 1 and 1f16 against 1nop in BENCHMARKS.md),
/// and sluice's own receiving 5 % less. grpc-go clients keep 16 KiB frames whatever is allowed.
pub(super) const MAX_HTTP2_FRAME: u32 = 1 << 20;

/// Binds every configured listener, then serves until `ctx.shutdown` turns true.
pub async fn start(cfg: &config::OtlpReceiverConfig, ctx: ReceiverContext) -> Result<RunningReceiver, ReceiverError> {
    let protocols = &cfg.protocols;
    if protocols.grpc.is_none() && protocols.http.is_none() {
        return Err(ReceiverError::Invalid {
            receiver: ctx.id.clone(),
            message: "at least one of protocols.grpc and protocols.http must be set".into(),
        });
    }
    // Load TLS material and authenticators, then bind everything, before
    // serving anything: a bad certificate or a bind error leaves nothing running.
    let grpc_security = match &protocols.grpc {
        Some(g) => Some(Security::load(&ctx, "grpc", g.tls.as_ref(), g.auth.as_ref(), grpc::ALPN)?),
        None => None,
    };
    let http_security = match &protocols.http {
        Some(h) => Some(Security::load(&ctx, "http", h.tls.as_ref(), h.auth.as_ref(), http::ALPN)?),
        None => None,
    };
    let grpc = match (&protocols.grpc, grpc_security) {
        (Some(g), Some(sec)) => Some((g, sec, bind(&ctx.id, &g.endpoint).await?)),
        _ => None,
    };
    let http = match (&protocols.http, http_security) {
        (Some(h), Some(sec)) => Some((h, sec, bind(&ctx.id, &h.endpoint).await?)),
        _ => None,
    };
    let mut running = RunningReceiver { endpoints: Vec::new(), tasks: Vec::new() };
    if let Some((g, security, listener)) = grpc {
        running.endpoints.push(("grpc", local_addr(&ctx.id, &g.endpoint, &listener)?));
        running.tasks.push(tokio::spawn(grpc::serve(
            g.clone(),
            listener,
            Ingest::new(&ctx, "grpc"),
            ctx.shutdown.clone(),
            security,
        )));
    }
    if let Some((h, security, listener)) = http {
        running.endpoints.push(("http", local_addr(&ctx.id, &h.endpoint, &listener)?));
        running.tasks.push(tokio::spawn(http::serve(
            h.clone(),
            listener,
            Ingest::new(&ctx, "http"),
            ctx.shutdown.clone(),
            security,
        )));
    }
    Ok(running)
}

/// The TLS acceptor, authenticator and connection counters of one transport,
/// loaded before anything listens.
pub(crate) struct Security {
    tls: Option<tokio_rustls::TlsAcceptor>,
    authenticator: Option<std::sync::Arc<crate::extensions::auth::Authenticator>>,
    metrics: crate::telemetry::ListenerMetrics,
}

impl Security {
    fn load(
        ctx: &ReceiverContext,
        transport: &'static str,
        tls: Option<&super::tls::TlsServerConfig>,
        auth: Option<&crate::extensions::auth::config::AuthSettings>,
        alpn: &[&[u8]],
    ) -> Result<Security, ReceiverError> {
        let invalid = |field: String, message: String, hint: Option<String>| ReceiverError::Invalid {
            receiver: ctx.id.clone(),
            message: format!(
                "receivers::{}::protocols::{transport}::{field}: {message}{}",
                ctx.id,
                hint.map(|h| format!("; hint: {h}")).unwrap_or_default()
            ),
        };
        let tls = match tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                super::tls::server_tls(t, alpn).map_err(|e| invalid(format!("tls::{}", e.field), e.message, e.hint))?,
            )),
            None => None,
        };
        let authenticator = match auth {
            Some(a) => Some(std::sync::Arc::new(
                crate::extensions::auth::authenticator_for(&ctx.extensions, &a.authenticator)
                    .map_err(|e| invalid("auth::authenticator".into(), e, None))?,
            )),
            None => None,
        };
        let metrics = crate::telemetry::ListenerMetrics::new(&ctx.registry, &ctx.id, transport);
        Ok(Security { tls, authenticator, metrics })
    }

    /// The connection policy of a transport that answers refused credentials
    /// with `reject`; a slow handshake is cut off like slow headers.
    fn policy<B>(
        self,
        reject: super::listener::Reject<B>,
        idle_timeout: Option<std::time::Duration>,
        header_timeout: Option<std::time::Duration>,
        limits: &config::ReceiverLimits,
    ) -> super::listener::ConnectionPolicy<B> {
        let first_request_timeout = limits.handshake_timeout.get();
        let handshake_timeout = header_timeout
            .map_or(super::tls::HANDSHAKE_TIMEOUT, |h| h.min(super::tls::HANDSHAKE_TIMEOUT))
            .min(first_request_timeout);
        super::listener::ConnectionPolicy {
            tls: self.tls,
            auth: self.authenticator.map(|a| (a, reject)),
            idle_timeout,
            handshake_timeout,
            metrics: self.metrics,
            open_preflight: false,
            max_age: None,
            first_request_timeout,
            max_connections: limits.max_connections.max(1),
            pings: None,
        }
    }
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
    refusals: crate::telemetry::RequestRefusals,
}

/// The `reason` a pipeline's refusal is counted under.
fn refusal_reason(r: Refusal) -> &'static str {
    match r {
        Refusal::PipelineFull => "pipeline_full",
        Refusal::MemoryLimit => "memory_limit",
        Refusal::MemoryHeadroom => "memory_headroom",
        Refusal::ShuttingDown => "shutting_down",
        Refusal::NotPersisted => "not_persisted",
    }
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
            refusals: crate::telemetry::RequestRefusals::new(&ctx.registry, &ctx.id, transport),
        }
    }

    /// The admission state of this transport's listener.
    fn admission(
        &self,
        limits: &config::ReceiverLimits,
        largest: u64,
        body_timeout: Option<std::time::Duration>,
    ) -> admission::Admission {
        admission::Admission::new(limits, largest, body_timeout, self.refusals.clone())
    }

    fn refused_request(&self, reason: &str) {
        self.refusals.reason(reason).inc();
    }

    /// Asks every pipeline to take a request of this size (its memory
    /// limiters claim the decoded bytes of their headroom); a refusal counts
    /// the request's items as refused.
    fn admit_estimate(&self, signal: Signal, estimate: crate::data::estimate::Estimate) -> Result<(), Refusal> {
        self.output.admit(signal, estimate).inspect_err(|refusal| {
            self.metrics(signal).refused.add(estimate.items as u64);
            self.refused_request(refusal_reason(*refusal));
        })
    }

    /// Counts a request [`decode::prepare`] did not turn into a payload.
    fn rejected(&self, signal: Signal, rejection: &decode::Rejection) {
        match rejection {
            decode::Rejection::Malformed(e) => {
                self.malformed(signal);
                if matches!(e, DecodeError::TooLarge { .. }) {
                    self.refused_request("body_too_large");
                }
            }
            decode::Rejection::DecodedTooLarge { items, .. } => {
                self.metrics(signal).refused.add(*items as u64);
                self.refused_request("decoded_too_large");
            }
            // Counted by `admit_estimate`.
            decode::Rejection::Refused(_) => {}
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

    /// Offers the batch to the pipelines and counts the outcome, unless it
    /// must wait for persistent queues: then [`Ingest::settle`] does.
    fn deliver(&self, batch: Payload, decoded_bytes: u64) -> Delivered {
        let n = batch.item_count();
        // Like the Collector, an export with no items succeeds without touching a pipeline.
        if n == 0 {
            return Delivered::Done(Ok(()));
        }
        let signal = batch.signal();
        let m = self.metrics(signal);
        match self.output.offer_sized(batch, decoded_bytes) {
            Ok(acks) if acks.is_empty() => {
                m.accepted.add(n as u64);
                Delivered::Done(Ok(()))
            }
            Ok(acks) => Delivered::Pending { acks, signal, items: n },
            Err(refusal) => {
                m.refused.add(n as u64);
                self.refused_request(refusal_reason(refusal));
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
                self.refused_request(refusal_reason(refusal));
                Err(refusal)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod admission_tests;

#[cfg(test)]
mod tests {
    use super::config::{GrpcServerConfig, HttpServerConfig, OtlpReceiverConfig, Protocols};
    use super::*;

    fn ctx() -> ReceiverContext {
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        ReceiverContext {
            id: "otlp/x".into(),
            output: ReceiverOutput::default(),
            registry: crate::telemetry::Registry::new(),
            shutdown,
            extensions: Default::default(),
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
