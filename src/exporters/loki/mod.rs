//! The `loki` exporter: log records to Loki's push API
//! (`POST /loki/api/v1/push`), as snappy-compressed `logproto.PushRequest`
//! (default) or Loki's JSON push format.
//!
//! Guarantees: construction needs no network; every record of a batch is in
//! exactly one stream of one push, streams are keyed by their label set and
//! their entries sorted by timestamp (stable), so Loki's per-stream ordering
//! holds within a push; label names follow Loki's rules
//! (`[a-zA-Z_][a-zA-Z0-9_]*`) and `service_name` is always set, as Loki sets
//! it for OTLP. Answers: 2xx is success; 429 and 5xx are retryable and honour
//! `Retry-After`; every other status is permanent and carries Loki's text;
//! 4xx answers are counted by reason (`sluice_exporter_loki_rejected_total`).

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::data::Signal;
use crate::exporters::http_sender::{body_text, prefix, retry_after_header, retryable_status, HttpSender};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::LokiExporterMetrics;
use crate::telemetry::Registry;
use config::{LokiCompression, LokiEncoding, LokiExporterConfig, LokiLineFormat};
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "loki",
        aliases: &[],
        signals: &[Signal::Logs],
        description: "Loki push API: streams by label set, snappy protobuf or JSON",
        example: "endpoint: http://localhost:3100/loki/api/v1/push\n",
    },
    settings: SettingsType::of::<LokiExporterConfig>(),
    compile: |input| {
        let cfg: LokiExporterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for LokiExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        format!("Loki push to {}", self.endpoint.as_deref().unwrap_or_default())
    }

    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        (self.sending_queue.clone(), self.retry_on_failure.clone())
    }

    fn start(&self, id: &str, _signal: Signal, registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        let m = crate::telemetry::LokiExporterMetrics::new(registry, id);
        Ok(runner::start(LokiExporter::new(self, id, m)?, parts))
    }
}

/// The path of Loki's push API.
pub const PUSH_PATH: &str = "/loki/api/v1/push";

// ---------------------------------------------------------------------------
// logproto (proto/loki_push.proto), written by hand so no protoc is needed.

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_nanos(ns: u64) -> Timestamp {
        Timestamp { seconds: (ns / 1_000_000_000) as i64, nanos: (ns % 1_000_000_000) as i32 }
    }
}

// ---------------------------------------------------------------------------
// From OTLP records to streams

/// `https://loki:3100` → `https://loki:3100/loki/api/v1/push`; a URL that
/// already ends in the push path is kept.
pub fn push_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with(PUSH_PATH) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{PUSH_PATH}")
    }
}

/// A label or structured-metadata name made valid for Loki: characters
/// outside `[a-zA-Z0-9_]` become `_`, a leading digit gets a `_` before it.
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `{a="x", b="y\"z"}`: labels sorted by name, values escaped as Loki's
/// (Prometheus') label parser expects.
pub fn render_labels(labels: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut s = String::from("{");
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// Loki's `level` for a record: its severity text lowercased, else the
/// range its severity number falls in; None when it has neither.
pub fn level(record: &LogRecord) -> Option<String> {
    let text = record.severity_text.trim();
    if !text.is_empty() {
        return Some(text.to_ascii_lowercase());
    }
    let name = match record.severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    };
    Some(name.to_string())
}

/// An attribute value as a label or metadata value: strings as-is, other
/// scalars as text, arrays and maps as JSON.
pub fn value_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(_) => any_json(v).to_string(),
    }
}

/// An AnyValue as JSON (bytes as lowercase hex).
pub fn any_json(v: Option<&AnyValue>) -> serde_json::Value {
    use serde_json::Value as J;
    match v.and_then(|v| v.value.as_ref()) {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(any_value::Value::BytesValue(b)) => J::String(hex(b)),
        Some(any_value::Value::ArrayValue(a)) => J::Array(a.values.iter().map(|x| any_json(Some(x))).collect()),
        Some(any_value::Value::KvlistValue(kv)) => attributes_json(&kv.values),
        // Profiles-only string table reference: nothing to resolve it against here.
        Some(any_value::Value::StringValueStrindex(i)) => J::String(format!("strindex({i})")),
    }
}

fn attributes_json(attrs: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Object(attrs.iter().map(|kv| (kv.key.clone(), any_json(kv.value.as_ref()))).collect())
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// One record as Loki sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub timestamp_ns: u64,
    pub line: String,
    pub structured_metadata: Vec<(String, String)>,
}

/// One stream: its rendered label set, its labels and its entries sorted by
/// timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub labels: String,
    pub label_pairs: Vec<(String, String)>,
    pub entries: Vec<Entry>,
}

/// The labels and metadata a resource gives each of its records.
struct ResourceFields {
    service: String,
    /// The configured resource labels present, in configured order.
    labels: Vec<(String, String)>,
    /// Every other resource attribute.
    metadata: Vec<(String, String)>,
}

/// Turns OTLP records into Loki streams, as configured.
#[derive(Debug, Clone)]
pub struct StreamBuilder {
    resource_labels: Vec<String>,
    attribute_labels: Vec<String>,
    max_labels: usize,
    format: LokiLineFormat,
}

impl StreamBuilder {
    pub fn new(cfg: &LokiExporterConfig) -> Self {
        StreamBuilder {
            resource_labels: cfg.resource_labels(),
            attribute_labels: cfg.labels.attributes.clone(),
            max_labels: cfg.max_labels.max(1),
            format: cfg.format,
        }
    }

    /// Groups every record of `req` by label set, in order of first
    /// appearance; `now_ns` stamps records with neither timestamp.
    pub fn streams(&self, req: &ExportLogsServiceRequest, now_ns: u64) -> Vec<Stream> {
        let mut streams: Vec<Stream> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for rl in &req.resource_logs {
            let resource: &[KeyValue] = rl.resource.as_ref().map_or(&[], |r| &r.attributes);
            let fields = self.resource_fields(resource);
            for sl in &rl.scope_logs {
                let scope_name = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
                for record in &sl.log_records {
                    let (labels, entry) = self.record(resource, &fields, scope_name, record, now_ns);
                    let key = render_labels(&labels);
                    let i = *index.entry(key.clone()).or_insert_with(|| {
                        streams.push(Stream { labels: key, label_pairs: labels, entries: Vec::new() });
                        streams.len() - 1
                    });
                    streams[i].entries.push(entry);
                }
            }
        }
        for s in &mut streams {
            s.entries.sort_by_key(|e| e.timestamp_ns);
        }
        streams
    }

    /// What a resource gives every one of its records, worked out once.
    fn resource_fields(&self, resource: &[KeyValue]) -> ResourceFields {
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| value_text(kv.value.as_ref()))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown_service".into());
        let mut used = vec![false; resource.len()];
        let mut labels = Vec::new();
        for (i, kv) in resource.iter().enumerate() {
            if kv.key == "service.name" {
                used[i] = true;
            }
        }
        for key in &self.resource_labels {
            if let Some(i) = resource.iter().position(|kv| &kv.key == key && kv.key != "service.name") {
                used[i] = true;
                labels.push((sanitize_name(key), value_text(resource[i].value.as_ref())));
            }
        }
        let metadata = resource
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(kv, _)| (sanitize_name(&kv.key), value_text(kv.value.as_ref())))
            .collect();
        ResourceFields { service, labels, metadata }
    }

    fn record(
        &self,
        resource: &[KeyValue],
        fields: &ResourceFields,
        scope_name: &str,
        record: &LogRecord,
        now_ns: u64,
    ) -> (Vec<(String, String)>, Entry) {
        // Candidates in priority order: service_name and level first, then
        // the configured resource and attribute labels in their order.
        let mut candidates: Vec<(String, String)> = Vec::with_capacity(fields.labels.len() + 2);
        candidates.push(("service_name".into(), fields.service.clone()));
        if let Some(level) = level(record) {
            candidates.push(("level".into(), level));
        }
        candidates.extend(fields.labels.iter().cloned());
        let mut used_attr = vec![false; record.attributes.len()];
        for key in &self.attribute_labels {
            if let Some(i) = record.attributes.iter().position(|kv| &kv.key == key) {
                used_attr[i] = true;
                candidates.push((sanitize_name(key), value_text(record.attributes[i].value.as_ref())));
            }
        }
        // Empty values are no label in Loki. Past max_labels, or under a name
        // already taken, a candidate is kept as structured metadata.
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut metadata: Vec<(String, String)> = Vec::new();
        for (k, v) in candidates {
            if v.is_empty() {
                continue;
            }
            if labels.len() < self.max_labels && !labels.iter().any(|(lk, _)| *lk == k) {
                labels.push((k, v));
            } else {
                metadata.push((k, v));
            }
        }
        metadata.extend(fields.metadata.iter().cloned());
        for (kv, used) in record.attributes.iter().zip(&used_attr) {
            if !used {
                metadata.push((sanitize_name(&kv.key), value_text(kv.value.as_ref())));
            }
        }
        if !record.trace_id.is_empty() {
            metadata.push(("trace_id".into(), hex(&record.trace_id)));
        }
        if !record.span_id.is_empty() {
            metadata.push(("span_id".into(), hex(&record.span_id)));
        }
        if !scope_name.is_empty() {
            metadata.push(("scope_name".into(), scope_name.to_string()));
        }

        let timestamp_ns = match (record.time_unix_nano, record.observed_time_unix_nano) {
            (0, 0) => now_ns,
            (0, observed) => observed,
            (t, _) => t,
        };
        let line = match self.format {
            LokiLineFormat::Text => match record.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                None => String::new(),
                Some(_) => any_json(record.body.as_ref()).to_string(),
            },
            LokiLineFormat::Json => json_line(resource, record),
        };
        (labels, Entry { timestamp_ns, line, structured_metadata: metadata })
    }
}

/// The line of `format: json`: the fields the Collector's loki exporter writes.
fn json_line(resource: &[KeyValue], record: &LogRecord) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("body".into(), any_json(record.body.as_ref()));
    if !record.trace_id.is_empty() {
        obj.insert("traceid".into(), hex(&record.trace_id).into());
    }
    if !record.span_id.is_empty() {
        obj.insert("spanid".into(), hex(&record.span_id).into());
    }
    if !record.severity_text.is_empty() {
        obj.insert("severity".into(), record.severity_text.clone().into());
    }
    if !record.attributes.is_empty() {
        obj.insert("attributes".into(), attributes_json(&record.attributes));
    }
    if !resource.is_empty() {
        obj.insert("resources".into(), attributes_json(resource));
    }
    serde_json::Value::Object(obj).to_string()
}

pub fn encode_proto(streams: &[Stream]) -> Vec<u8> {
    let req = PushRequest {
        streams: streams
            .iter()
            .map(|s| StreamAdapter {
                labels: s.labels.clone(),
                hash: 0,
                entries: s
                    .entries
                    .iter()
                    .map(|e| EntryAdapter {
                        timestamp: Some(Timestamp::from_nanos(e.timestamp_ns)),
                        line: e.line.clone(),
                        structured_metadata: e
                            .structured_metadata
                            .iter()
                            .map(|(name, value)| LabelPairAdapter { name: name.clone(), value: value.clone() })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    req.encode_to_vec()
}

/// Loki's JSON push body: `{"streams":[{"stream":{..},"values":[["ns","line",{..}]]}]}`.
pub fn encode_json(streams: &[Stream]) -> Vec<u8> {
    use serde_json::{json, Map, Value};
    let streams: Vec<Value> = streams
        .iter()
        .map(|s| {
            let labels: Map<String, Value> =
                s.label_pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let values: Vec<Value> = s
                .entries
                .iter()
                .map(|e| {
                    let mut v = vec![Value::String(e.timestamp_ns.to_string()), Value::String(e.line.clone())];
                    if !e.structured_metadata.is_empty() {
                        let sm: Map<String, Value> =
                            e.structured_metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                        v.push(Value::Object(sm));
                    }
                    Value::Array(v)
                })
                .collect();
            json!({"stream": labels, "values": values})
        })
        .collect();
    json!({ "streams": streams }).to_string().into_bytes()
}

// ---------------------------------------------------------------------------
// Answers

/// Why Loki refused a push, from its message (and 429).
pub fn reject_reason(status: StatusCode, body: &str) -> &'static str {
    let b = body.to_ascii_lowercase();
    if b.contains("out of order") || b.contains("out-of-order") {
        "out_of_order"
    } else if b.contains("too old") || b.contains("too far behind") || b.contains("greater_than_max_sample_age") {
        "too_old"
    } else if b.contains("line too long") || b.contains("max entry size") || b.contains("line_too_long") {
        "line_too_long"
    } else if status == StatusCode::TOO_MANY_REQUESTS || b.contains("rate limit") {
        "rate_limited"
    } else {
        "other"
    }
}

/// 2xx is success; 429 and 5xx retryable (with `Retry-After`); the rest permanent.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<ExportOutcome, ExportError> {
    if status.is_success() {
        return Ok(ExportOutcome::default());
    }
    let message = format!("HTTP {status}: {}", body_text(body));
    if retryable_status(status) || status.is_server_error() {
        return Err(ExportError::Retryable { message, retry_after: retry_after_header(headers, now) });
    }
    Err(ExportError::Permanent { message })
}

// ---------------------------------------------------------------------------
// The exporter

pub struct LokiExporter {
    sender: HttpSender,
    builder: StreamBuilder,
    encoding: LokiEncoding,
    gzip: bool,
    metrics: LokiExporterMetrics,
}

impl LokiExporter {
    pub fn new(cfg: &LokiExporterConfig, id: &str, metrics: LokiExporterMetrics) -> Result<Self, String> {
        let endpoint = cfg.endpoint.as_deref().filter(|e| !e.is_empty()).ok_or(format!("{id}: endpoint is not set"))?;
        let mut sender = HttpSender::new(&push_url(endpoint), &cfg.tls, &cfg.headers, cfg.timeout.get(), id)?;
        let gzip = cfg.encoding == LokiEncoding::Json && cfg.compression == LokiCompression::Gzip;
        let content_type = match cfg.encoding {
            LokiEncoding::Protobuf => "application/x-protobuf",
            LokiEncoding::Json => "application/json",
        };
        sender.default_header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if gzip {
            sender.default_header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(tenant) = cfg.tenant_id.as_deref().filter(|t| !t.is_empty()) {
            let v =
                HeaderValue::from_str(tenant).map_err(|_| format!("{id}: tenant_id is not a valid header value"))?;
            sender.default_header(http::header::HeaderName::from_static("x-scope-orgid"), v);
        }
        if let Some(auth) = authorization(cfg) {
            let v = HeaderValue::from_str(&auth).map_err(|_| format!("{id}: auth: not a valid header value"))?;
            sender.default_header(AUTHORIZATION, v);
        }
        Ok(LokiExporter { sender, builder: StreamBuilder::new(cfg), encoding: cfg.encoding, gzip, metrics })
    }

    pub fn body(&self, req: &ExportLogsServiceRequest) -> Result<Vec<u8>, ExportError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let streams = self.builder.streams(req, now);
        let describe = self.sender.describe();
        match self.encoding {
            LokiEncoding::Protobuf => snap::raw::Encoder::new()
                .compress_vec(&encode_proto(&streams))
                .map_err(|e| ExportError::Permanent { message: format!("{describe}: snappy: {e}") }),
            LokiEncoding::Json if self.gzip => {
                let json = encode_json(&streams);
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 4), flate2::Compression::fast());
                enc.write_all(&json)
                    .and_then(|_| enc.finish())
                    .map_err(|e| ExportError::Permanent { message: format!("{describe}: gzip: {e}") })
            }
            LokiEncoding::Json => Ok(encode_json(&streams)),
        }
    }
}

/// The Authorization header of `auth:`, if any.
fn authorization(cfg: &LokiExporterConfig) -> Option<String> {
    if let Some(basic) = &cfg.auth.basic {
        return Some(format!("Basic {}", base64(format!("{}:{}", basic.username, basic.password).as_bytes())));
    }
    cfg.auth.bearer_token.as_ref().filter(|t| !t.is_empty()).map(|t| format!("Bearer {t}"))
}

/// Standard base64 with padding, as HTTP basic auth wants it.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

impl Exporter for LokiExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let Batch::Logs(req) = batch else {
            return Err(ExportError::Permanent {
                message: format!("{}: loki exports logs only, got {}", self.sender.describe(), batch.signal()),
            });
        };
        let body = self.body(req)?;
        let answer = self.sender.post(body).await?;
        if answer.status.is_client_error() {
            let text = String::from_utf8_lossy(&answer.body);
            self.metrics.rejected(reject_reason(answer.status, &text)).inc();
        }
        classify_response(answer.status, &answer.headers, &answer.body, SystemTime::now())
            .map_err(|e| prefix(e, self.sender.describe()))
    }
}

#[cfg(test)]
mod tests;
