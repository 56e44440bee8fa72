//! Configuration of the `prometheusremotewrite` exporter, with the
//! Collector's field names and defaults, plus sluice's `delta_to_cumulative`.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::exporters::otlp_common::config::{MAX_NUM_CONSUMERS, MAX_QUEUE_SIZE};
use crate::exporters::otlp_common::{check_queue, check_retry, check_tls};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig, TlsClientConfig};
use crate::exporters::prometheus_common::{check_limits, prometheus_label_names, PointLimits};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRemoteWriteConfig {
    /// Full URL of the remote write receiver, e.g. `http://prometheus:9090/api/v1/write`.
    pub endpoint: String,
    /// TLS of the connection to the remote-write endpoint.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Extra HTTP headers sent with every request.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub headers: BTreeMap<String, String>,
    /// Deadline of one request. Default 5s (the Collector's).
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Prefix of every metric name.
    #[serde(default)]
    pub namespace: String,
    /// Labels added to every series (a series's own label of the same name wins).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub resource_to_telemetry_conversion: Enabled<false>,
    /// Unit and `_total`/`_ratio` suffixes on metric names. Default true.
    #[serde(default = "yes")]
    pub add_metric_suffixes: bool,
    /// Requests larger than this (uncompressed) are split. Default 3000000.
    #[serde(default = "default_max_batch")]
    pub max_batch_size_bytes: usize,
    /// One `target_info` series per resource. Default enabled.
    #[serde(default)]
    pub target_info: Enabled<true>,
    /// Send one `MetricMetadata` (type, help, unit) per metric family with
    /// the first request of each batch. Default false, as in the Collector.
    #[serde(default)]
    pub send_metadata: bool,
    #[serde(default)]
    pub delta_to_cumulative: DeltaToCumulativeConfig,
    /// The queue between the pipeline and the senders.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// The Collector's queue spelling; when present it sets `sending_queue`'s fields.
    #[serde(default)]
    pub remote_write_queue: Option<RemoteWriteQueueConfig>,
    /// Retries of a failed write with exponential back-off.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    /// `otel_scope_info` and `_created` series: only `enabled: false` (the
    /// Collector's default) is implemented.
    #[serde(default)]
    pub scope_info: Enabled<false>,
    #[serde(default)]
    pub export_created_metric: Enabled<false>,
    /// Accepted for compatibility (hyper sizes its buffers); not negative.
    #[serde(default)]
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility, as `read_buffer_size`.
    #[serde(default)]
    pub write_buffer_size: Option<u64>,
    /// Not implemented: the write-ahead log (use `sending_queue.storage`),
    /// parallel requests per batch, remote write 2.0, a proxy, client
    /// authenticators.
    #[serde(default)]
    pub wal: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub max_batch_request_parallelism: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub protobuf_message: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub proxy_url: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub auth: Option<crate::config::component::CollectorOnly>,
    /// Bounds on one data point and one batch: over them a point is dropped and counted.
    #[serde(default)]
    pub limits: PointLimits,
}

/// `{enabled: bool}` with a default of `D`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Enabled<const D: bool> {
    /// Turn it on or off.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl<const D: bool> Default for Enabled<D> {
    fn default() -> Self {
        Enabled { enabled: None }
    }
}

impl<const D: bool> Enabled<D> {
    pub fn on(&self) -> bool {
        self.enabled.unwrap_or(D)
    }
}

/// Delta sums and histograms: rejected (and counted) unless enabled, then
/// converted to cumulative with a running total per series.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeltaToCumulativeConfig {
    /// Turn delta sums and histograms into cumulative ones (else they are dropped, counted).
    pub enabled: bool,
    /// Series whose running totals are kept; points of further new series are dropped and counted. Default 100000.
    pub max_series: usize,
    /// A series with no point for this long is forgotten (its total restarts). Default 10m.
    pub max_stale: Duration,
}

impl Default for DeltaToCumulativeConfig {
    fn default() -> Self {
        DeltaToCumulativeConfig { enabled: false, max_series: 100_000, max_stale: Duration::from_secs(600) }
    }
}

/// The Collector's `remote_write_queue`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteQueueConfig {
    /// The Collector's older queue switch, read as `sending_queue.enabled`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Read as `sending_queue.queue_size`.
    #[serde(default)]
    pub queue_size: Option<u64>,
    /// Read as `sending_queue.num_consumers`.
    #[serde(default)]
    pub num_consumers: Option<usize>,
}

impl PrometheusRemoteWriteConfig {
    /// `sending_queue` with `remote_write_queue` applied over it.
    pub fn queue(&self) -> SendingQueueConfig {
        let mut q = self.sending_queue.clone();
        if let Some(r) = &self.remote_write_queue {
            q.enabled = r.enabled;
            if let Some(n) = r.queue_size {
                q.queue_size = n;
            }
            if let Some(n) = r.num_consumers {
                q.num_consumers = n;
            }
        }
        q
    }
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_batch() -> usize {
    3_000_000
}

pub fn validate(c: &mut Checker, cfg: &PrometheusRemoteWriteConfig) {
    if cfg.endpoint.trim().is_empty() {
        c.error(&["endpoint"], "endpoint must not be empty", Some("e.g. http://prometheus:9090/api/v1/write"));
    } else {
        c.url(&["endpoint"], &cfg.endpoint);
    }
    if cfg.max_batch_size_bytes == 0 {
        c.error(&["max_batch_size_bytes"], "max_batch_size_bytes must be above 0", Some("the default is 3000000"));
    }
    prometheus_label_names(c, "external_labels", cfg.external_labels.keys());
    for (field, on) in [("scope_info", cfg.scope_info.on()), ("export_created_metric", cfg.export_created_metric.on())]
    {
        if on {
            c.error(
                &[field, "enabled"],
                format!("the Collector has `{field}: {{enabled: true}}`; sluice does not support it (yet)"),
                Some("remove it or set enabled: false"),
            );
        }
    }
    let d = &cfg.delta_to_cumulative;
    if d.enabled && d.max_series == 0 {
        c.error(
            &["delta_to_cumulative", "max_series"],
            "max_series must be above 0 when delta_to_cumulative is enabled",
            Some("e.g. 100000"),
        );
    }
    if d.enabled && d.max_stale.is_zero() {
        c.error(
            &["delta_to_cumulative", "max_stale"],
            "max_stale must be above 0 when delta_to_cumulative is enabled",
            Some("e.g. 10m: a series idle that long is forgotten"),
        );
    }
    // The merged queue is checked below; what remote_write_queue set is reported at its own path.
    let mut merged = cfg.queue();
    if let Some(q) = &cfg.remote_write_queue {
        if q.queue_size == Some(0) {
            c.error(&["remote_write_queue", "queue_size"], "queue_size must be above 0", Some("e.g. 10000"));
            merged.queue_size = 1;
        } else if let Some(n) = q.queue_size.filter(|n| *n > MAX_QUEUE_SIZE) {
            c.error(
                &["remote_write_queue", "queue_size"],
                format!("queue_size {n} is above the bound of {MAX_QUEUE_SIZE}"),
                Some("the queue holds up to this many requests in memory; e.g. 10000"),
            );
            merged.queue_size = 1;
        }
        if q.num_consumers == Some(0) {
            c.error(&["remote_write_queue", "num_consumers"], "num_consumers must be above 0", Some("e.g. 5"));
            merged.num_consumers = 1;
        } else if let Some(n) = q.num_consumers.filter(|n| *n > MAX_NUM_CONSUMERS) {
            c.error(
                &["remote_write_queue", "num_consumers"],
                format!("num_consumers {n} is above the bound of {MAX_NUM_CONSUMERS}"),
                Some("each consumer holds a request in flight; e.g. 5"),
            );
            merged.num_consumers = 1;
        }
    }
    check_limits(c, &cfg.limits);
    check_tls(c, &cfg.tls);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &merged);
}
