//! Configuration of the `otlphttp` exporter (alias `otlp_http`): OTLP over HTTP.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::exporters::otlp_common::{
    check_compression, check_queue, check_retry, check_tls, CompressionParams, Transport,
};
use crate::exporters::otlp_common::{Compression, RetryConfig, SendingQueueConfig, TlsClientConfig};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpEncoding {
    #[default]
    Proto,
    Json,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Full URLs per signal; each overrides `endpoint` for its signal.
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    #[serde(default)]
    pub tls: TlsClientConfig,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub compression: Compression,
    /// `level` of the compression; unset is the Collector's default.
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// `proto` (default) or `json`.
    #[serde(default)]
    pub encoding: HttpEncoding,
    /// Deadline of one request. Default 30s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Per-signal endpoints are checked where the pipelines are known.
pub fn validate(c: &mut Checker, cfg: &OtlpHttpExporterConfig) {
    for (name, url) in [
        ("endpoint", &cfg.endpoint),
        ("traces_endpoint", &cfg.traces_endpoint),
        ("metrics_endpoint", &cfg.metrics_endpoint),
        ("logs_endpoint", &cfg.logs_endpoint),
    ] {
        if let Some(url) = url {
            c.url(&[name], url);
        }
    }
    check_compression(c, cfg.compression, &cfg.compression_params, Transport::Http);
    check_tls(c, &cfg.tls);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &cfg.sending_queue);
}
