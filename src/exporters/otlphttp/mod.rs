//! The `otlphttp` exporter: OTLP over HTTP (protobuf or JSON), hyper client.
//!
//! Guarantees: construction needs no network; each request (including reading
//! the response) is bounded by `timeout`; responses are classified as the
//! OTLP/HTTP specification says: 2xx is success (a partial success in the body
//! becomes a rejection count), 429/502/503/504 are retryable and honour
//! `Retry-After`, every other status is permanent and carries the server's
//! message. Network errors and timeouts are retryable.

pub mod config;

use crate::data::{Batch, Signal};
use crate::exporters::otlp_common::{civil, tls, Compression};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::rpc;
use bytes::Bytes;
use config::{HttpEncoding, OtlpHttpExporterConfig};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Responses larger than this are not read further: a partial success or an
/// error message never needs more.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How much of a server's error message goes into our error.
const MAX_MESSAGE_BYTES: usize = 512;

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
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
    compression: Compression,
    encoding: HttpEncoding,
    timeout: Duration,
    describe: String,
}

impl OtlpHttpExporter {
    pub fn new(cfg: &OtlpHttpExporterConfig, signal: Signal, id: &str) -> Result<Self, String> {
        let url = signal_url(cfg, signal).map_err(|e| format!("{id}: {e}"))?;
        let uri: Uri = url.parse().map_err(|e| format!("{id}: endpoint {url:?} is not a valid URL: {e}"))?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = if uri.scheme_str() == Some("https") {
            let tls = tls::client_tls(&cfg.tls, &[]).map_err(|e| format!("{id}: {e}"))?;
            let b = builder.with_tls_config((*tls.config).clone()).https_or_http();
            let b = match tls.server_name {
                Some(name) => b.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name)),
                None => b,
            };
            b.enable_all_versions().build()
        } else {
            // Plain http: the TLS side is never used, so it trusts nothing
            // rather than failing on a machine without system roots.
            builder.with_tls_config(tls::no_roots_config()).https_or_http().enable_all_versions().build()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);

        let mut headers = HeaderMap::new();
        let content_type = match cfg.encoding {
            HttpEncoding::Proto => "application/x-protobuf",
            HttpEncoding::Json => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let agent = format!("sluice/{}", env!("CARGO_PKG_VERSION"));
        headers.insert(USER_AGENT, HeaderValue::from_str(&agent).map_err(|e| e.to_string())?);
        match cfg.compression {
            Compression::Gzip => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            Compression::Zstd => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
            }
            Compression::None | Compression::Empty => {}
        }
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("{id}: headers: {k:?} is not a valid header name"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("{id}: headers: the value of {k:?} is not valid"))?;
            headers.insert(name, value);
        }
        Ok(OtlpHttpExporter {
            client,
            url: uri,
            headers,
            compression: cfg.compression,
            encoding: cfg.encoding,
            timeout: cfg.timeout.get(),
            describe: format!("{id} ({url})"),
        })
    }

    fn body(&self, batch: &Batch) -> Result<Vec<u8>, ExportError> {
        let encoded = match self.encoding {
            HttpEncoding::Proto => encode_proto(batch),
            HttpEncoding::Json => encode_json(batch)
                .map_err(|e| ExportError::Permanent { message: format!("{}: JSON encoding: {e}", self.describe) })?,
        };
        compress(encoded, self.compression)
            .map_err(|e| ExportError::Permanent { message: format!("{}: compression: {e}", self.describe) })
    }

    async fn send(&self, body: Vec<u8>, signal: Signal) -> Result<ExportOutcome, ExportError> {
        let mut req = Request::builder().method(Method::POST).uri(self.url.clone());
        if let Some(h) = req.headers_mut() {
            h.extend(self.headers.clone());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ExportError::Permanent { message: format!("{}: {e}", self.describe) })?;
        let resp = self.client.request(req).await.map_err(|e| ExportError::Retryable {
            message: format!("{}: {}", self.describe, error_chain(&e)),
            retry_after: None,
        })?;
        let (parts, body) = resp.into_parts();
        // A body we cannot read still leaves the status to decide on.
        let body = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        };
        classify_response(parts.status, &parts.headers, &body, signal, SystemTime::now())
            .map_err(|e| prefix(e, &self.describe))
    }
}

impl Exporter for OtlpHttpExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let body = self.body(batch)?;
        // A zero timeout means none, as in the Collector's exporterhelper.
        let result = match self.timeout.is_zero() {
            true => Ok(self.send(body, batch.signal()).await),
            false => tokio::time::timeout(self.timeout, self.send(body, batch.signal())).await,
        };
        match result {
            Ok(result) => result,
            Err(_) => Err(ExportError::Retryable {
                message: format!("{}: no answer within {:?}", self.describe, self.timeout),
                retry_after: None,
            }),
        }
    }
}

fn prefix(e: ExportError, describe: &str) -> ExportError {
    match e {
        ExportError::Retryable { message, retry_after } => {
            ExportError::Retryable { message: format!("{describe}: {message}"), retry_after }
        }
        ExportError::Permanent { message } => ExportError::Permanent { message: format!("{describe}: {message}") },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
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

fn compress(body: Vec<u8>, compression: Compression) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
            enc.write_all(&body)?;
            enc.finish()
        }
        Compression::Zstd => zstd::bulk::compress(&body, 3),
        Compression::None | Compression::Empty => Ok(body),
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
    match status.as_u16() {
        429 | 502 | 503 | 504 => {
            let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, now));
            Err(ExportError::Retryable { message, retry_after })
        }
        _ => Err(ExportError::Permanent { message }),
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (a date in the past means now).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = civil::parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs((at - now).max(0) as u64))
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
    let text = decoded.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    truncate(text, MAX_MESSAGE_BYTES)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests;
