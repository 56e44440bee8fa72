//! The `prometheusremotewrite` exporter: OTLP metrics to Prometheus remote
//! write 1.0 (snappy-compressed `prometheus.WriteRequest`).
//!
//! Guarantees: construction needs no network; series are translated as the
//! Collector does ([`crate::exporters::prometheus_common`]), with labels
//! sorted and samples in time order; a request whose encoding exceeds
//! `max_batch_size_bytes` is split into several (a single series larger than
//! that goes alone); 2xx is success, 429 and 5xx are retryable (honouring
//! `Retry-After`), any other status is permanent and carries Prometheus's
//! message; data points that cannot be translated are counted by reason and
//! reported as rejected, never sent half-converted.

pub mod config;
pub mod proto;

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::data::Signal;
use crate::exporters::http_sender::{body_text, prefix, retry_after_header, retryable_status, HttpSender};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::prometheus_common::{
    DeltaOptions, Dropped, Family, FamilyType, SeriesSet, TranslateOptions, Translator,
};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::PrometheusExporterMetrics;
use crate::telemetry::Registry;
use config::PrometheusRemoteWriteConfig;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::StatusCode;
use prost::Message;
use proto::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "prometheusremotewrite",
        aliases: &["prometheus_remote_write"],
        signals: &[Signal::Metrics],
        description: "Prometheus remote write 1.0 (Prometheus, Mimir, Cortex, VictoriaMetrics, Thanos)",
        example: "endpoint: http://localhost:9090/api/v1/write\n",
    },
    settings: SettingsType::of::<PrometheusRemoteWriteConfig>(),
    compile: |input| {
        let cfg: PrometheusRemoteWriteConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for PrometheusRemoteWriteConfig {
    fn destination(&self, _signal: Signal) -> String {
        format!("Prometheus remote write to {}", self.endpoint)
    }

    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        let mut q = self.queue();
        // Running totals need their deltas in arrival order.
        if self.delta_to_cumulative.enabled {
            q.num_consumers = 1;
        }
        (q, self.retry_on_failure.clone())
    }

    fn start(&self, id: &str, _signal: Signal, registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        let m = crate::telemetry::PrometheusExporterMetrics::new(registry, id);
        Ok(runner::start(PrometheusRemoteWriteExporter::new(self, id, m)?, parts))
    }
}

pub const REMOTE_WRITE_VERSION: &str = "0.1.0";

pub struct PrometheusRemoteWriteExporter {
    sender: HttpSender,
    translator: Translator,
    max_request_bytes: usize,
    send_metadata: bool,
    metrics: PrometheusExporterMetrics,
}

/// The translation options a config asks for.
pub fn translate_options(cfg: &PrometheusRemoteWriteConfig) -> TranslateOptions {
    TranslateOptions {
        add_metric_suffixes: cfg.add_metric_suffixes,
        namespace: cfg.namespace.clone(),
        resource_to_telemetry: cfg.resource_to_telemetry_conversion.on(),
        target_info: cfg.target_info.on(),
        external_labels: cfg.external_labels.clone(),
        delta: cfg.delta_to_cumulative.enabled.then(|| DeltaOptions {
            max_series: cfg.delta_to_cumulative.max_series,
            ttl: cfg.delta_to_cumulative.max_stale.get(),
        }),
        limits: cfg.limits,
    }
}

impl PrometheusRemoteWriteExporter {
    pub fn new(
        cfg: &PrometheusRemoteWriteConfig,
        id: &str,
        metrics: PrometheusExporterMetrics,
    ) -> Result<Self, String> {
        let mut sender = HttpSender::new(&cfg.endpoint, &cfg.tls, &cfg.headers, cfg.timeout.get(), id)?;
        sender.default_header(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        sender.default_header(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        sender.default_header(
            HeaderName::from_static("x-prometheus-remote-write-version"),
            HeaderValue::from_static(REMOTE_WRITE_VERSION),
        );
        Ok(PrometheusRemoteWriteExporter {
            sender,
            translator: Translator::new(translate_options(cfg)),
            max_request_bytes: cfg.max_batch_size_bytes.max(1),
            send_metadata: cfg.send_metadata,
            metrics,
        })
    }

    fn count_dropped(&self, d: &Dropped) {
        crate::exporters::prometheus_common::count_dropped(&self.metrics, d);
    }
}

/// Series as remote write messages, packed into requests of at most
/// `max_bytes` encoded (a larger single series is a request of its own).
/// With `metadata`, the first request also carries one `MetricMetadata` per
/// metric family (type, help, unit), as the Collector's `send_metadata` does.
pub fn build_requests(set: SeriesSet, max_bytes: usize, metadata: bool) -> Vec<WriteRequest> {
    let mut requests = Vec::new();
    let mut current = WriteRequest::default();
    let mut size = 0usize;
    let mut families: Vec<MetricMetadata> = Vec::new();
    let mut last_family: Option<Arc<Family>> = None;
    for (family, labels, samples) in set.into_family_series() {
        if metadata && !last_family.as_ref().is_some_and(|f| Arc::ptr_eq(f, &family)) {
            if !families.iter().any(|m| m.metric_family_name == family.name) {
                families.push(MetricMetadata {
                    r#type: metadata_type(family.kind),
                    metric_family_name: family.name.clone(),
                    help: family.help.clone(),
                    unit: family.unit.clone(),
                });
            }
            last_family = Some(family);
        }
        let ts = TimeSeries {
            labels: labels.into_iter().map(|(name, value)| Label { name, value }).collect(),
            samples: samples.into_iter().map(|(timestamp, value)| Sample { value, timestamp }).collect(),
        };
        let len = ts.encoded_len();
        // Field 1's tag byte plus the length prefix.
        let framed = 1 + prost::encoding::encoded_len_varint(len as u64) + len;
        if size + framed > max_bytes && !current.timeseries.is_empty() {
            requests.push(std::mem::take(&mut current));
            size = 0;
        }
        size += framed;
        current.timeseries.push(ts);
    }
    if !current.timeseries.is_empty() {
        requests.push(current);
    }
    if let Some(first) = requests.first_mut() {
        first.metadata = families;
    }
    requests
}

/// `prometheus.MetricMetadata.MetricType` of a family.
fn metadata_type(kind: FamilyType) -> i32 {
    match kind {
        FamilyType::Counter => 1,
        FamilyType::Gauge => 2,
        FamilyType::Histogram => 3,
        FamilyType::Summary => 5,
    }
}

/// The body of one request: the protobuf, snappy block-compressed.
pub fn encode(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

/// Remote write's answer rules: 2xx ok; 429 and 5xx retryable; anything
/// else (400 out of order / out of bounds / duplicate) permanent.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<(), ExportError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("HTTP {status}: {}", body_text(body));
    if retryable_status(status) || status.is_server_error() {
        return Err(ExportError::Retryable { message, retry_after: retry_after_header(headers, now) });
    }
    Err(ExportError::Permanent { message })
}

impl Exporter for PrometheusRemoteWriteExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let Batch::Metrics(req) = batch else {
            return Err(ExportError::Permanent {
                message: format!("{}: only metrics can be sent with remote write", self.sender.describe()),
            });
        };
        let (set, dropped) = self.translator.translate(req, Instant::now());
        self.count_dropped(&dropped);
        self.metrics.delta_series.set(self.translator.delta_series() as i64);
        let items = batch.item_count() as u64;
        let dropped_message = (dropped.total() > 0)
            .then(|| format!("{} data points not translatable ({})", dropped.total(), dropped.describe()));
        let requests = build_requests(set, self.max_request_bytes, self.send_metadata);
        let total_series: usize = requests.iter().map(|r| r.timeseries.len()).sum();
        let mut failed_series = 0usize;
        let mut permanent: Option<ExportError> = None;
        for req in &requests {
            let body = encode(req)
                .map_err(|e| ExportError::Permanent { message: format!("{}: snappy: {e}", self.sender.describe()) })?;
            let answer = self.sender.post(body).await?;
            match classify(answer.status, &answer.headers, &answer.body, SystemTime::now()) {
                Ok(()) => {}
                // A retry re-sends every part; Prometheus takes a repeated identical sample silently.
                Err(e @ ExportError::Retryable { .. }) => return Err(prefix(e, self.sender.describe())),
                Err(e) => {
                    self.metrics.rejected_requests.inc();
                    failed_series += req.timeseries.len();
                    permanent.get_or_insert(prefix(e, self.sender.describe()));
                }
            }
        }
        if let Some(e) = permanent {
            if failed_series == total_series {
                return Err(e);
            }
            // Some parts landed: the rest is rejected in proportion to the series refused.
            let share = (items - dropped.total().min(items)) as f64 * failed_series as f64 / total_series as f64;
            return Ok(ExportOutcome { rejected: dropped.total() + share.ceil() as u64, message: Some(e.to_string()) });
        }
        if dropped.total() > 0 && total_series == 0 && dropped.total() >= items {
            return Err(ExportError::Permanent {
                message: format!("{}: {}", self.sender.describe(), dropped_message.unwrap_or_default()),
            });
        }
        Ok(ExportOutcome { rejected: dropped.total(), message: dropped_message })
    }
}

#[cfg(test)]
mod tests;
