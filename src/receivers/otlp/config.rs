//! Configuration of the `otlp` receiver (alias `otlp_grpc`), field for field
//! the Collector's where the feature exists there.

use serde::Deserialize;

pub const DEFAULT_GRPC_ENDPOINT: &str = "127.0.0.1:4317";
pub const DEFAULT_HTTP_ENDPOINT: &str = "127.0.0.1:4318";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// At least one of `grpc` and `http` must be present (checked at validation).
    pub protocols: Protocols,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// `grpc:` with no body (YAML null) enables gRPC with defaults.
    #[serde(default, deserialize_with = "crate::config::null_as_default")]
    pub grpc: Option<GrpcServerConfig>,
    #[serde(default, deserialize_with = "crate::config::null_as_default")]
    pub http: Option<HttpServerConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// host:port to listen on. Default 127.0.0.1:4317.
    pub endpoint: String,
    /// Largest request message accepted, in MiB. Default 4.
    pub max_recv_msg_size_mib: u64,
    /// Concurrent HTTP/2 streams per connection; 0 means the transport default.
    pub max_concurrent_streams: u32,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig { endpoint: DEFAULT_GRPC_ENDPOINT.into(), max_recv_msg_size_mib: 4, max_concurrent_streams: 0 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// host:port to listen on. Default 127.0.0.1:4318.
    pub endpoint: String,
    /// Largest request body accepted after decompression, in bytes. Default 20 MiB.
    pub max_request_body_size: u64,
    pub traces_url_path: String,
    pub metrics_url_path: String,
    pub logs_url_path: String,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: DEFAULT_HTTP_ENDPOINT.into(),
            max_request_body_size: 20 * 1024 * 1024,
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
        }
    }
}
