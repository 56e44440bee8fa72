//! Configuration of the `prometheus` exporter (a scrape endpoint), with the
//! Collector's field names and defaults.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::exporters::prometheus_common::{check_limits, prometheus_label_names, PointLimits};
use crate::exporters::prometheusremotewrite::config::Enabled;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusExporterConfig {
    /// host:port the `/metrics` page is served on, e.g. `0.0.0.0:8889`.
    pub endpoint: String,
    /// Prefix of every metric name.
    #[serde(default)]
    pub namespace: String,
    /// Labels on every series (a series's own label of the same name wins).
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// A series not updated for this long leaves the page. Default 5m.
    #[serde(default = "default_expiration")]
    pub metric_expiration: Duration,
    #[serde(default)]
    pub resource_to_telemetry_conversion: Enabled<false>,
    /// Unit and `_total`/`_ratio` suffixes on metric names. Default true.
    #[serde(default = "yes")]
    pub add_metric_suffixes: bool,
    /// Write each sample's timestamp (else Prometheus stamps the scrape time). Default false.
    #[serde(default)]
    pub send_timestamps: bool,
    /// Accepted for Collector configs; only `false` (the text format 0.0.4) is supported.
    #[serde(default)]
    pub enable_open_metrics: bool,
    /// Not implemented: TLS on the scrape endpoint, other name translation
    /// strategies (sluice's names are the Collector's default, with suffixes
    /// per `add_metric_suffixes`).
    #[serde(default)]
    pub tls: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub translation_strategy: Option<crate::config::component::CollectorOnly>,
    /// Bytes of the page's series lines, at most: a new series that would
    /// pass it is refused and counted. Default 16 MiB.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: usize,
    /// Bounds on one data point: over them it is dropped and counted.
    #[serde(default)]
    pub limits: PointLimits,
}

pub const DEFAULT_MAX_PAGE_BYTES: usize = 16 << 20;

fn default_max_page_bytes() -> usize {
    DEFAULT_MAX_PAGE_BYTES
}

fn yes() -> bool {
    true
}

fn default_expiration() -> Duration {
    Duration::from_secs(300)
}

pub fn validate(c: &mut Checker, cfg: &PrometheusExporterConfig) {
    c.endpoint(&["endpoint"], &cfg.endpoint);
    prometheus_label_names(c, "const_labels", cfg.const_labels.keys());
    if cfg.metric_expiration.is_zero() {
        c.error(&["metric_expiration"], "metric_expiration must be above 0", Some("the default is 5m"));
    }
    if cfg.max_page_bytes < 4096 || cfg.max_page_bytes > 1 << 34 {
        c.error(
            &["max_page_bytes"],
            format!("max_page_bytes must be from 4096 to {}, not {}", 1u64 << 34, cfg.max_page_bytes),
            Some("the default is 16777216 (16 MiB); new series past it are refused and counted"),
        );
    }
    check_limits(c, &cfg.limits);
    if cfg.enable_open_metrics {
        c.error(
            &["enable_open_metrics"],
            "the OpenMetrics format is not supported; the page is the Prometheus text format 0.0.4",
            Some("remove enable_open_metrics or set it to false"),
        );
    }
}
