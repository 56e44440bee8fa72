//! Configuration of the `otlp` exporter (alias `otlp_grpc`): OTLP over gRPC.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::exporters::otlp_common::{
    check_compression, check_queue, check_retry, check_tls, CompressionParams, Transport,
};
use crate::exporters::otlp_common::{Compression, RetryConfig, SendingQueueConfig, TlsClientConfig};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// `host:port`, or a URL (`http://host:port` for plain text, `https://` for TLS).
    pub endpoint: String,
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Extra gRPC metadata sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub compression: Compression,
    /// `level` of the compression; unset is the Collector's default.
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// Deadline of one export call. Default 5s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

pub fn validate(c: &mut Checker, cfg: &OtlpExporterConfig) {
    if cfg.endpoint.trim().is_empty() {
        c.error(&["endpoint"], "endpoint must not be empty", Some("e.g. tempo:4317 or https://tempo:4317"));
    } else if cfg.endpoint.contains("://") {
        c.url(&["endpoint"], &cfg.endpoint);
    } else {
        c.endpoint(&["endpoint"], &cfg.endpoint);
    }
    check_compression(c, cfg.compression, &cfg.compression_params, Transport::Grpc);
    check_tls(c, &cfg.tls);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &cfg.sending_queue);
}
