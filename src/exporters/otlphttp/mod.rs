//! The `otlphttp` exporter: OTLP over HTTP (protobuf or JSON), hyper client.
//!
//! Guarantees: construction needs no network; each request (including reading
//! the response) is bounded by `timeout`; responses are classified as the
//! OTLP/HTTP specification says: 2xx is success (a partial success in the body
//! becomes a rejection count), 429/502/503/504 are retryable and honour
//! `Retry-After`, every other status is permanent and carries the server's
//! message. Network errors and timeouts are retryable.

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::data::{Batch, EncodedBatch, Signal};
use crate::exporters::http_sender::{
    body_text, prefix, retry_after_header, retryable_status, truncate, HttpSender, MAX_MESSAGE_BYTES,
};
use crate::exporters::otlp_common::{Encoder, Transport};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::rpc;
use crate::telemetry::Registry;
use config::{HttpEncoding, OtlpHttpExporterConfig};
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::time::SystemTime;

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "otlphttp",
        aliases: &["otlp_http"],
        signals: ALL_SIGNALS,
        description: "OTLP over HTTP, protobuf or JSON",
        example: "endpoint: http://localhost:4318\n",
    },
    settings: SettingsType::of::<OtlpHttpExporterConfig>(),
    compile: |input| {
        let cfg: OtlpHttpExporterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for OtlpHttpExporterConfig {
    fn destination(&self, signal: Signal) -> String {
        match signal_url(self, signal) {
            Ok(url) => format!("OTLP/HTTP to {url}"),
            Err(e) => e,
        }
    }

    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        (self.sending_queue.clone(), self.retry_on_failure.clone())
    }

    fn forwards_encoded(&self) -> bool {
        self.encoding == HttpEncoding::Proto
    }

    /// Each signal needs `endpoint` or its own `<signal>_endpoint`.
    fn check_signal(&self, signal: Signal) -> Result<(), crate::exporters::SignalProblem> {
        let signal_endpoint = match signal {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        };
        if self.endpoint.is_none() && signal_endpoint.is_none() {
            return Err(crate::exporters::SignalProblem {
                field: None,
                message: format!("no endpoint for {signal}"),
                hint: format!("set endpoint, or {signal}_endpoint"),
            });
        }
        Ok(())
    }

    fn start(&self, id: &str, signal: Signal, _registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        Ok(runner::start(OtlpHttpExporter::new(self, signal, id)?, parts))
    }
}

pub use crate::exporters::http_sender::retry_after;

/// The URL a signal is sent to: its own `*_endpoint` if set, else `endpoint`
/// with `/v1/<signal>` appended.
pub fn signal_url(cfg: &OtlpHttpExporterConfig, signal: Signal) -> Result<String, String> {
    let specific = match signal {
        Signal::Traces => &cfg.traces_endpoint,
        Signal::Metrics => &cfg.metrics_endpoint,
        Signal::Logs => &cfg.logs_endpoint,
    };
    let url = match (specific, &cfg.endpoint) {
        (Some(url), _) if !url.is_empty() => url.clone(),
        (_, Some(base)) if !base.is_empty() => format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str()),
        _ => return Err(format!("neither endpoint nor {}_endpoint is set", signal.as_str())),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("endpoint {url:?} must start with http:// or https://"));
    }
    Ok(url)
}

pub struct OtlpHttpExporter {
    sender: HttpSender,
    /// None: bodies go out uncompressed.
    compression: Option<Encoder>,
    encoding: HttpEncoding,
}

impl OtlpHttpExporter {
    pub fn new(cfg: &OtlpHttpExporterConfig, signal: Signal, id: &str) -> Result<Self, String> {
        let url = signal_url(cfg, signal).map_err(|e| format!("{id}: {e}"))?;
        let mut sender = HttpSender::with_pool(&url, &cfg.tls, &cfg.headers, cfg.timeout.get(), id, cfg.pool())?;
        let content_type = match cfg.encoding {
            HttpEncoding::Proto => "application/x-protobuf",
            HttpEncoding::Json => "application/json",
        };
        sender.default_header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let compression = Encoder::new(cfg.compression, &cfg.compression_params, Transport::Http);
        if let Some(enc) = compression {
            sender.default_header(CONTENT_ENCODING, HeaderValue::from_static(enc.compression().name()));
        }
        Ok(OtlpHttpExporter { sender, compression, encoding: cfg.encoding })
    }

    pub fn body(&self, batch: &Batch) -> Result<Vec<u8>, ExportError> {
        let describe = self.sender.describe();
        let encoded = match self.encoding {
            HttpEncoding::Proto => encode_proto(batch),
            HttpEncoding::Json => encode_json(batch)
                .map_err(|e| ExportError::Permanent { message: format!("{describe}: JSON encoding: {e}") })?,
        };
        match self.compression {
            None => Ok(encoded),
            Some(enc) => enc
                .compress(&[encoded.as_slice()], Vec::with_capacity(encoded.len() / 4), Transport::Http)
                .map_err(|e| ExportError::Permanent { message: format!("{describe}: compression: {e}") }),
        }
    }
}

impl Exporter for OtlpHttpExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let body = self.body(batch)?;
        let answer = self.sender.post(body).await?;
        classify_response(answer.status, &answer.headers, &answer.body, batch.signal(), SystemTime::now())
            .map_err(|e| prefix(e, self.sender.describe()))
    }

    /// Protobuf bodies go out as received; JSON needs the decoded batch.
    async fn export_encoded(&self, batch: &EncodedBatch) -> Result<ExportOutcome, ExportError> {
        if self.encoding == HttpEncoding::Json {
            let decoded = batch.decode().map_err(|e| ExportError::Permanent {
                message: format!("{}: cannot decode a queued batch: {e}", self.sender.describe()),
            })?;
            return self.export(&decoded).await;
        }
        // Compressed here, in the sending queue's consumer task: the
        // consumers of one exporter compress their batches in parallel.
        let body = match self.compression {
            None => batch.to_bytes(),
            Some(enc) => enc
                .compress(batch.chunks(), Vec::with_capacity(batch.encoded_len() / 4), Transport::Http)
                .map_err(|e| ExportError::Permanent {
                    message: format!("{}: compression: {e}", self.sender.describe()),
                })?
                .into(),
        };
        let answer = self.sender.post(body).await?;
        classify_response(answer.status, &answer.headers, &answer.body, batch.signal(), SystemTime::now())
            .map_err(|e| prefix(e, self.sender.describe()))
    }
}

pub(crate) fn encode_proto(batch: &Batch) -> Vec<u8> {
    match batch {
        Batch::Traces(r) => r.encode_to_vec(),
        Batch::Metrics(r) => r.encode_to_vec(),
        Batch::Logs(r) => r.encode_to_vec(),
    }
}

/// OTLP JSON (hex trace and span IDs, camelCase names) via opentelemetry-proto's serde.
pub(crate) fn encode_json(batch: &Batch) -> serde_json::Result<Vec<u8>> {
    match batch {
        Batch::Traces(r) => serde_json::to_vec(r),
        Batch::Metrics(r) => serde_json::to_vec(r),
        Batch::Logs(r) => serde_json::to_vec(r),
    }
}

/// Applies the OTLP/HTTP response rules; `now` resolves HTTP-date `Retry-After`s.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    signal: Signal,
    now: SystemTime,
) -> Result<ExportOutcome, ExportError> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if status.is_success() {
        return Ok(partial_success(body, json, signal));
    }
    let message = format!("HTTP {status}: {}", server_message(body, json));
    if retryable_status(status) {
        return Err(ExportError::Retryable { message, retry_after: retry_after_header(headers, now) });
    }
    Err(ExportError::Permanent { message })
}

/// The rejection count of a 2xx body; an empty or undecodable body is a full
/// success, since the data was accepted either way.
fn partial_success(body: &[u8], json: bool, signal: Signal) -> ExportOutcome {
    if body.is_empty() {
        return ExportOutcome::default();
    }
    let partial = if json {
        json_partial_success(body, signal)
    } else {
        match signal {
            Signal::Traces => ExportTraceServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_spans, p.error_message)),
            Signal::Metrics => ExportMetricsServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_data_points, p.error_message)),
            Signal::Logs => ExportLogsServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_log_records, p.error_message)),
        }
    };
    crate::exporters::otlp::partial_outcome(partial)
}

/// Read by hand because proto3 JSON writes int64 as a string (`"rejectedSpans":"2"`,
/// as Go's protojson does) while a number is also legal.
fn json_partial_success(body: &[u8], signal: Signal) -> Option<(i64, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let partial = value.get("partialSuccess").or_else(|| value.get("partial_success"))?;
    let field = match signal {
        Signal::Traces => "rejectedSpans",
        Signal::Metrics => "rejectedDataPoints",
        Signal::Logs => "rejectedLogRecords",
    };
    let rejected = match partial.get(field) {
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let message = partial.get("errorMessage").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    Some((rejected, message))
}

/// The server's explanation: a google.rpc.Status message if the body is one,
/// else the body as text; truncated.
fn server_message(body: &[u8], json: bool) -> String {
    let decoded = if json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
    } else {
        rpc::RpcStatus::decode(body).ok().map(|s| s.message).filter(|m| !m.is_empty())
    };
    match decoded {
        Some(text) => truncate(text, MAX_MESSAGE_BYTES),
        None => body_text(body),
    }
}

#[cfg(test)]
mod tests;
