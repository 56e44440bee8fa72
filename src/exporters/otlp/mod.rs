//! The `otlp` exporter: OTLP over gRPC (tonic).
//!
//! Guarantees: construction needs no network (the channel connects lazily, on
//! the first export, and reconnects by itself); every call is bounded by
//! `timeout`; gRPC statuses are classified as the OTLP specification says
//! (retryable: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
//! UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only when the server sent a
//! `RetryInfo`), with the server's `RetryInfo` delay passed to the runner.
//! Connection failures are retryable.

pub mod config;

use crate::config::describe::SettingsType;
use crate::data::{Batch, EncodedBatch, Signal};
use crate::exporters::otlp_common::{tls, Encoder, Transport};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::rpc;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::Registry;
use config::OtlpExporterConfig;
use http::Uri;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tonic::codegen::Service;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "otlp",
        aliases: &["otlp_grpc"],
        signals: ALL_SIGNALS,
        description: "OTLP over gRPC (Jaeger, Tempo, another collector)",
        example: "endpoint: localhost:4317\ntls:\n  insecure: true\n",
    },
    settings: SettingsType::of::<OtlpExporterConfig>(),
    compile: |input| {
        let cfg: OtlpExporterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for OtlpExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        format!("OTLP/gRPC to {}", self.endpoint)
    }

    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        (self.sending_queue.clone(), self.retry_on_failure.clone())
    }

    fn forwards_encoded(&self) -> bool {
        true
    }

    fn start(&self, id: &str, signal: Signal, _registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        Ok(runner::start(OtlpExporter::new(self, signal, id)?, parts))
    }
}

/// Where and how to connect, from `endpoint` and `tls.insecure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host without IPv6 brackets, for DNS/TCP and the TLS server name.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Target {
    /// Accepts `host:port` (TLS unless `insecure`, as the Collector) or an
    /// `http://` (plain text) / `https://` (TLS) URL; a URL path is ignored
    /// because gRPC method paths are fixed.
    pub fn parse(endpoint: &str, insecure: bool) -> Result<Target, String> {
        let endpoint = endpoint.trim();
        let (with_scheme, tls) = if endpoint.starts_with("http://") {
            (endpoint.to_string(), false)
        } else if endpoint.starts_with("https://") {
            (endpoint.to_string(), true)
        } else if endpoint.contains("://") {
            return Err(format!("endpoint {endpoint:?}: only http:// and https:// URLs or host:port are supported"));
        } else {
            (format!("http://{endpoint}"), !insecure)
        };
        let uri: Uri = with_scheme.parse().map_err(|e| format!("endpoint {endpoint:?} is not a valid address: {e}"))?;
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { host, port, tls })
    }

    fn uri(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

pub struct OtlpExporter {
    endpoint: Endpoint,
    tls: Option<tls::ClientTls>,
    /// Made on the first export: tonic spawns the channel's worker, which
    /// needs a runtime that the constructor may not run in.
    channel: OnceLock<Channel>,
    /// `headers`, sent as gRPC metadata with every call.
    metadata: http::HeaderMap,
    /// None: messages go out uncompressed.
    compression: Option<Encoder>,
    timeout: Duration,
    /// For error messages: `id` and the configured endpoint.
    describe: String,
}

impl OtlpExporter {
    pub fn new(cfg: &OtlpExporterConfig, _signal: Signal, id: &str) -> Result<Self, String> {
        let target = Target::parse(&cfg.endpoint, cfg.tls.insecure).map_err(|e| format!("{id}: {e}"))?;
        let timeout = cfg.timeout.get();
        // tonic only ever sees an http:// URI: TLS, when wanted, is done by our
        // own connector so that ca_file, client certs, server_name_override and
        // insecure_skip_verify all go through one rustls configuration.
        let mut endpoint = Endpoint::from_shared(target.uri())
            .map_err(|e| format!("{id}: endpoint {:?}: {e}", cfg.endpoint))?
            .tcp_nodelay(true);
        // A zero timeout means none, as in the Collector's exporterhelper.
        if !timeout.is_zero() {
            endpoint = endpoint.connect_timeout(timeout);
        }
        if let Some(k) = &cfg.keepalive {
            if let Some(time) = k.time.map(|t| t.get()).filter(|t| !t.is_zero()) {
                endpoint = endpoint
                    .http2_keep_alive_interval(time)
                    .keep_alive_while_idle(k.permit_without_stream)
                    .keep_alive_timeout(k.timeout.map_or(std::time::Duration::from_secs(20), |t| t.get()));
            }
        }
        let tls = match target.tls {
            true => Some(tls::client_tls(&cfg.tls, &[b"h2"]).map_err(|e| format!("{id}: {e}"))?),
            false => None,
        };
        let mut metadata = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key: AsciiMetadataKey = k
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| format!("{id}: headers: {k:?} is not a valid header name"))?;
            if k.ends_with("-bin") {
                return Err(format!("{id}: headers: binary metadata ({k:?}) is not supported"));
            }
            let value: AsciiMetadataValue =
                v.parse().map_err(|_| format!("{id}: headers: the value of {k:?} is not a valid header value"))?;
            metadata.insert(key, value);
        }
        let compression = Encoder::new(cfg.compression, &cfg.compression_params, Transport::Grpc);
        Ok(OtlpExporter {
            endpoint,
            tls,
            channel: OnceLock::new(),
            metadata: metadata.into_headers(),
            compression,
            timeout,
            describe: format!("{id} ({})", cfg.endpoint),
        })
    }

    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| match &self.tls {
                Some(tls) => self.endpoint.connect_with_connector_lazy(TlsConnector {
                    connector: tokio_rustls::TlsConnector::from(tls.config.clone()),
                    server_name: tls.server_name.clone(),
                }),
                None => self.endpoint.connect_lazy(),
            })
            .clone()
    }

    async fn call(&self, batch: EncodedBatch) -> Result<Option<(i64, String)>, Status> {
        const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
        const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
        match batch.signal() {
            Signal::Traces => {
                let resp: ExportTraceServiceResponse = self.unary(batch, TRACES).await?;
                Ok(resp.partial_success.map(|p| (p.rejected_spans, p.error_message)))
            }
            Signal::Metrics => {
                let resp: ExportMetricsServiceResponse = self.unary(batch, METRICS).await?;
                Ok(resp.partial_success.map(|p| (p.rejected_data_points, p.error_message)))
            }
            Signal::Logs => {
                let resp: ExportLogsServiceResponse = self.unary(batch, LOGS).await?;
                Ok(resp.partial_success.map(|p| (p.rejected_log_records, p.error_message)))
            }
        }
    }

    /// One unary call with a request body that is already encoded. The
    /// message is framed (and compressed) here, in the sending queue's
    /// consumer task, so the consumers of one exporter compress in parallel
    /// and with the configured codec and level, which tonic's own encoder
    /// cannot do (fixed levels, no snappy); the response is read with tonic.
    async fn unary<U: Message + Default + Send + 'static>(
        &self,
        body: EncodedBatch,
        path: &'static str,
    ) -> Result<U, Status> {
        let frame = self.frame(&body).map_err(|e| Status::internal(format!("compression: {e}")))?;
        let mut req = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(frame)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = Uri::from_static(path);
        let headers = req.headers_mut();
        headers.clone_from(&self.metadata);
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        if let Some(enc) = self.compression {
            headers.insert("grpc-encoding", http::HeaderValue::from_static(enc.compression().name()));
        }
        // Tells the server our deadline, so it can give up when we have.
        if !self.timeout.is_zero() {
            let millis = self.timeout.as_millis().min(99_999_999);
            headers.insert("grpc-timeout", http::HeaderValue::from_str(&format!("{millis}m")).expect("digits"));
        }
        let mut channel = self.channel();
        std::future::poll_fn(|cx| channel.poll_ready(cx))
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let response = channel.call(req).await.map_err(|e| Status::from_error(Box::new(e)))?;
        // A trailers-only answer carries its status in the headers.
        if let Some(status) = Status::from_header_map(response.headers()) {
            if status.code() != Code::Ok {
                return Err(status);
            }
        }
        let (parts, body) = response.into_parts();
        let collected = http_body_util::Limited::new(body, MAX_ANSWER + 5).collect().await.map_err(|e| match e
            .downcast::<Status>()
        {
            Ok(status) => *status,
            Err(e) => Status::from_error(e),
        })?;
        let trailers = collected.trailers().cloned();
        let framed = collected.to_bytes();
        match trailers.as_ref().and_then(Status::from_header_map) {
            Some(status) if status.code() != Code::Ok => return Err(status),
            Some(_) => {}
            None => return Err(status_without_trailers(parts.status)),
        }
        // grpc-go answers in the request's compression whatever we accept,
        // so the answer is read in any codec a Collector may use.
        let encoding = parts.headers.get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity");
        let message = unframe(&framed, encoding).map_err(Status::internal)?;
        U::decode(&message[..]).map_err(|e| Status::internal(format!("cannot decode the answer: {e}")))
    }

    /// The gRPC length-prefixed message of `body`, compressed when configured.
    fn frame(&self, body: &EncodedBatch) -> std::io::Result<bytes::Bytes> {
        let mut out = Vec::with_capacity(5 + body.encoded_len());
        out.extend_from_slice(&[0; 5]);
        let out = match self.compression {
            None => {
                for chunk in body.chunks() {
                    out.extend_from_slice(chunk);
                }
                out
            }
            Some(enc) => {
                out[0] = 1;
                enc.compress(body.chunks(), out, Transport::Grpc)?
            }
        };
        let mut out = out;
        let len = u32::try_from(out.len() - 5).map_err(|_| std::io::Error::other("message over 4 GiB"))?;
        out[1..5].copy_from_slice(&len.to_be_bytes());
        Ok(out.into())
    }
}

impl Exporter for OtlpExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        self.send(EncodedBatch::encode(batch)).await
    }

    async fn export_encoded(&self, batch: &EncodedBatch) -> Result<ExportOutcome, ExportError> {
        self.send(batch.clone()).await
    }
}

impl OtlpExporter {
    async fn send(&self, batch: EncodedBatch) -> Result<ExportOutcome, ExportError> {
        let result = match self.timeout.is_zero() {
            true => Ok(self.call(batch).await),
            false => tokio::time::timeout(self.timeout, self.call(batch)).await,
        };
        match result {
            Err(_) => Err(ExportError::Retryable {
                message: format!("{}: no answer within {:?}", self.describe, self.timeout),
                retry_after: None,
            }),
            Ok(Err(status)) => Err(classify_status(&status, &self.describe)),
            Ok(Ok(partial)) => Ok(partial_outcome(partial)),
        }
    }
}

/// The largest answer read: an Export response is a few bytes.
const MAX_ANSWER: usize = 4 << 20;

/// The one message of an answer's body, decompressed.
fn unframe(framed: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    let Some((&[flag, a, b, c, d], rest)) = framed.split_first_chunk::<5>() else {
        return Err("the answer has no message".into());
    };
    let message = rest.get(..u32::from_be_bytes([a, b, c, d]) as usize).ok_or("the answer's message is truncated")?;
    match flag {
        0 => Ok(message.to_vec()),
        _ => crate::exporters::otlp_common::compression::decompress(encoding, message, MAX_ANSWER)
            .map_err(|e| format!("cannot decompress the answer ({encoding}): {e}")),
    }
}

/// The status of an answer without grpc-status, from its HTTP status (gRPC's
/// http-grpc-status-mapping, as tonic).
fn status_without_trailers(http: http::StatusCode) -> Status {
    let code = match http.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("the answer (HTTP {http}) has no grpc-status"))
}

/// A partial success becomes a rejection count; an empty one (no rejection,
/// no message) is plain success as the spec says.
pub(crate) fn partial_outcome(partial: Option<(i64, String)>) -> ExportOutcome {
    match partial {
        Some((rejected, message)) => ExportOutcome {
            rejected: rejected.max(0) as u64,
            message: if message.is_empty() { None } else { Some(message) },
        },
        None => ExportOutcome::default(),
    }
}

/// The OTLP/gRPC retry rules.
pub fn classify_status(status: &Status, describe: &str) -> ExportError {
    let retry_after = rpc::retry_delay(status.details());
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_after.is_some(),
        // A failed connection can surface as UNKNOWN with a transport error
        // as its source; it is worth retrying whatever the code says.
        _ => is_transport_error(status),
    };
    let message = format!("{describe}: gRPC {:?}: {}", status.code(), status.message());
    if retryable {
        ExportError::Retryable { message, retry_after }
    } else {
        ExportError::Permanent { message }
    }
}

fn is_transport_error(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() || err.is::<hyper::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Dials TCP and runs the TLS handshake with our rustls configuration.
#[derive(Clone)]
struct TlsConnector {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<rustls::pki_types::ServerName<'static>>,
}

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, std::io::Error>> + Send>>;

impl tonic::codegen::Service<Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        let fixed_name = self.server_name.clone();
        Box::pin(async move {
            let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
            let host = uri.host().ok_or_else(|| invalid(format!("no host in {uri}")))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = uri.port_u16().unwrap_or(443);
            let server_name = match fixed_name {
                Some(name) => name,
                None => rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| invalid(format!("{host:?} is not a valid TLS server name: {e}")))?,
            };
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = connector.connect(server_name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
