//! Configuration of the `otlp` exporter (alias `otlp_grpc`): OTLP over gRPC.

use crate::config::component::{Checker, CollectorOnly};
use crate::config::Duration;
use crate::exporters::otlp_common::{
    check_compression, check_headers, check_queue, check_retry, check_tls, CompressionParams, Transport,
};
use crate::exporters::otlp_common::{Compression, RetryConfig, SendingQueueConfig, TlsClientConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// `host:port`, or a URL (`http://host:port` for plain text, `https://` for TLS).
    pub endpoint: String,
    /// TLS of the connection to the backend.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Extra gRPC metadata sent with every request.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub headers: BTreeMap<String, String>,
    /// Compression of request bodies.
    #[serde(default)]
    pub compression: Compression,
    /// `level` of the compression; unset is the Collector's default.
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// Deadline of one export call. Default 5s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// The queue between the pipeline and the senders.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retries of a failed export with exponential back-off.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    /// The Collector's gRPC load-balancing policy: `round_robin` (its
    /// default) or `pick_first`. Accepted: sluice keeps one HTTP/2
    /// connection to the endpoint (as pick_first does); to spread load over
    /// backends use the `loadbalancing` exporter.
    #[serde(default)]
    pub balancer_name: Option<String>,
    /// Client keepalive pings (grpc-go's `keepalive.ClientParameters`), honoured.
    #[serde(default)]
    pub keepalive: Option<GrpcClientKeepalive>,
    /// Accepted for compatibility: the transport (tonic/hyper) sizes its own
    /// read and write buffers. Must not be negative.
    #[serde(default)]
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility, as `read_buffer_size`.
    #[serde(default)]
    pub write_buffer_size: Option<u64>,
    /// Accepted: sluice's exporter always waits for the connection (it
    /// connects lazily and retries), which is what `true` asks for.
    #[serde(default)]
    pub wait_for_ready: bool,
    /// Not implemented: the `:authority` override and client authenticators.
    #[serde(default)]
    pub authority: Option<CollectorOnly>,
    #[serde(default)]
    pub auth: Option<CollectorOnly>,
}

/// `keepalive:` of a gRPC client.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcClientKeepalive {
    /// Ping the server after this long without activity. Unset or 0: no pings.
    pub time: Option<Duration>,
    /// How long to wait for a ping's answer before closing. Default 20s.
    pub timeout: Option<Duration>,
    /// Ping even with no request in flight. Default false.
    pub permit_without_stream: bool,
}

/// The balancer names sluice accepts (grpc-go's built-in policies).
pub const BALANCERS: &[&str] = &["round_robin", "pick_first"];

impl Default for OtlpExporterConfig {
    /// Every default, with an empty `endpoint` (which does not validate).
    fn default() -> Self {
        OtlpExporterConfig {
            endpoint: String::new(),
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            compression: Compression::default(),
            compression_params: CompressionParams::default(),
            timeout: default_timeout(),
            sending_queue: SendingQueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
            balancer_name: None,
            keepalive: None,
            read_buffer_size: None,
            write_buffer_size: None,
            wait_for_ready: false,
            authority: None,
            auth: None,
        }
    }
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
    if let Some(name) = cfg.balancer_name.as_deref().filter(|n| !n.is_empty()) {
        if !BALANCERS.contains(&name) {
            c.error(
                &["balancer_name"],
                format!("unknown balancer_name \"{name}\""),
                Some(
                    "round_robin or pick_first (to spread load over several backends, use the loadbalancing exporter)",
                ),
            );
        }
    }
    check_compression(c, cfg.compression, &cfg.compression_params, Transport::Grpc);
    check_tls(c, &cfg.tls);
    check_headers(c, &cfg.headers, Transport::Grpc);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &cfg.sending_queue);
}
