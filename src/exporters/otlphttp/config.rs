//! Configuration of the `otlphttp` exporter (alias `otlp_http`): OTLP over HTTP.

use crate::config::component::{Checker, CollectorOnly};
use crate::config::Duration;
use crate::exporters::otlp_common::{
    check_compression, check_headers, check_queue, check_retry, check_tls, CompressionParams, Transport,
};
use crate::exporters::otlp_common::{Compression, RetryConfig, SendingQueueConfig, TlsClientConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HttpEncoding {
    #[default]
    Proto,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Full URLs per signal; each overrides `endpoint` for its signal.
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics, instead of `endpoint` + `/v1/metrics`.
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
    /// Full URL for logs, instead of `endpoint` + `/v1/logs`.
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    /// TLS of the connection to the backend.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Extra HTTP headers sent with every request.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub headers: BTreeMap<String, String>,
    /// Compression of request bodies.
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
    /// The queue between the pipeline and the senders.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retries of a failed export with exponential back-off.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    /// The Collector's HTTP client (`confighttp.ClientConfig`) settings.
    /// Honoured: `idle_conn_timeout` (0: never), `max_idle_conns_per_host`,
    /// `disable_keep_alives` (no idle connection is kept).
    #[serde(default)]
    pub idle_conn_timeout: Option<Duration>,
    /// Idle connections kept per backend host.
    #[serde(default)]
    pub max_idle_conns_per_host: Option<usize>,
    /// Open a new connection for every request.
    #[serde(default)]
    pub disable_keep_alives: bool,
    /// Accepted for compatibility (hyper sizes its buffers and manages its
    /// connections itself): each must not be negative.
    #[serde(default)]
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility, as `read_buffer_size`.
    #[serde(default)]
    pub write_buffer_size: Option<u64>,
    /// Accepted for compatibility: hyper manages its connections.
    #[serde(default)]
    pub max_idle_conns: Option<u64>,
    /// Accepted for compatibility: hyper manages its connections.
    #[serde(default)]
    pub max_conns_per_host: Option<u64>,
    /// Accepted for compatibility: hyper manages its connections.
    #[serde(default)]
    pub http2_read_idle_timeout: Option<Duration>,
    /// Accepted for compatibility: hyper manages its connections.
    #[serde(default)]
    pub http2_ping_timeout: Option<Duration>,
    /// Accepted: over https sluice offers h2 and HTTP/1.1 either way.
    #[serde(default)]
    pub force_attempt_http2: Option<bool>,
    /// Not implemented: a proxy, client authenticators, cookies, the
    /// compression level, a profiles endpoint.
    #[serde(default)]
    pub proxy_url: Option<CollectorOnly>,
    #[serde(default)]
    pub auth: Option<CollectorOnly>,
    #[serde(default)]
    pub cookies: Option<CollectorOnly>,
    #[serde(default)]
    pub profiles_endpoint: Option<CollectorOnly>,
}

impl OtlpHttpExporterConfig {
    /// The connection pool, from the Collector's client settings.
    pub fn pool(&self) -> crate::exporters::http_sender::PoolSettings {
        let idle_timeout = self.idle_conn_timeout.map(|d| d.get()).map(|d| {
            // Go's 0 means no limit.
            if d.is_zero() {
                std::time::Duration::from_secs(u64::from(u32::MAX))
            } else {
                d
            }
        });
        let max_idle_per_host = if self.disable_keep_alives { Some(0) } else { self.max_idle_conns_per_host };
        crate::exporters::http_sender::PoolSettings { idle_timeout, max_idle_per_host }
    }
}

impl Default for OtlpHttpExporterConfig {
    fn default() -> Self {
        OtlpHttpExporterConfig {
            compression_params: CompressionParams::default(),
            endpoint: None,
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            compression: Compression::default(),
            encoding: HttpEncoding::default(),
            timeout: default_timeout(),
            sending_queue: SendingQueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
            idle_conn_timeout: None,
            max_idle_conns_per_host: None,
            disable_keep_alives: false,
            read_buffer_size: None,
            write_buffer_size: None,
            max_idle_conns: None,
            max_conns_per_host: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            force_attempt_http2: None,
            proxy_url: None,
            auth: None,
            cookies: None,
            profiles_endpoint: None,
        }
    }
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
    check_headers(c, &cfg.headers, Transport::Http);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &cfg.sending_queue);
}
