//! Configuration of the `otlp` receiver (alias `otlp_grpc`), field for field
//! the Collector's where the feature exists there.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::extensions::auth::config::AuthSettings;
use crate::receivers::tls::TlsServerConfig;
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
    /// Concurrent HTTP/2 streams per connection; 0 means the transport default (200).
    pub max_concurrent_streams: u32,
    /// Serve TLS instead of plain text (h2 over TLS).
    pub tls: Option<TlsServerConfig>,
    /// Require credentials checked by an authenticator extension.
    pub auth: Option<AuthSettings>,
    pub keepalive: Option<GrpcKeepalive>,
}

/// `keepalive:` of a gRPC server, as grpc-go's (and so the Collector's).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    pub server_parameters: Option<KeepaliveServerParameters>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// Close a connection with no request in flight for this long. Default: never.
    pub max_connection_idle: Option<Duration>,
    /// Ping an idle client this often to check it is alive. Default: never.
    pub time: Option<Duration>,
    /// How long to wait for the answer to a ping before closing. Default 20s.
    pub timeout: Option<Duration>,
    /// Refused: connections are not aged out.
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            endpoint: DEFAULT_GRPC_ENDPOINT.into(),
            max_recv_msg_size_mib: 4,
            max_concurrent_streams: 0,
            tls: None,
            auth: None,
            keepalive: None,
        }
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
    /// Serve HTTPS instead of plain HTTP (HTTP/1.1 and h2 over TLS).
    pub tls: Option<TlsServerConfig>,
    /// Require credentials checked by an authenticator extension.
    pub auth: Option<AuthSettings>,
    /// Concurrent streams per HTTP/2 connection; 0 means the transport default (200).
    pub max_concurrent_streams: u32,
    /// Time a client has to send a request's headers (HTTP/1.1); 0 means no limit. Default 1m.
    pub read_header_timeout: Duration,
    /// Close a connection with no request in flight for this long; 0 means never. Default 1m.
    pub idle_timeout: Duration,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: DEFAULT_HTTP_ENDPOINT.into(),
            max_request_body_size: 20 * 1024 * 1024,
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
            tls: None,
            auth: None,
            max_concurrent_streams: 0,
            // The Collector's confighttp defaults.
            read_header_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

pub fn otlp_receiver(c: &mut Checker, cfg: &OtlpReceiverConfig) {
    let p = &cfg.protocols;
    if p.grpc.is_none() && p.http.is_none() {
        c.error(
            &["protocols"],
            "at least one protocol must be enabled",
            Some("add `grpc:` and/or `http:` under protocols"),
        );
    }
    if let Some(g) = &p.grpc {
        c.endpoint(&["protocols", "grpc", "endpoint"], &g.endpoint);
        if let Some(tls) = &g.tls {
            server_tls(c, "grpc", tls, crate::receivers::otlp::GRPC_ALPN);
        }
        let params = g.keepalive.as_ref().and_then(|k| k.server_parameters.as_ref());
        for (field, set) in params
            .map(|k| {
                [
                    ("max_connection_age", k.max_connection_age.is_some()),
                    ("max_connection_age_grace", k.max_connection_age_grace.is_some()),
                ]
            })
            .unwrap_or_default()
        {
            if set {
                c.error(
                    &["protocols", "grpc", "keepalive", "server_parameters", field],
                    format!("{field} is not supported"),
                    Some("remove it; max_connection_idle closes idle connections"),
                );
            }
        }
        if g.max_recv_msg_size_mib == 0 {
            c.error(&["protocols", "grpc", "max_recv_msg_size_mib"], "max_recv_msg_size_mib must be above 0", None);
        }
    }
    if let Some(h) = &p.http {
        c.endpoint(&["protocols", "http", "endpoint"], &h.endpoint);
        if let Some(tls) = &h.tls {
            server_tls(c, "http", tls, crate::receivers::otlp::HTTP_ALPN);
        }
        if h.max_request_body_size == 0 {
            c.error(&["protocols", "http", "max_request_body_size"], "max_request_body_size must be above 0", None);
        }
        for (name, path) in [
            ("traces_url_path", &h.traces_url_path),
            ("metrics_url_path", &h.metrics_url_path),
            ("logs_url_path", &h.logs_url_path),
        ] {
            if !path.starts_with('/') {
                c.error(&["protocols", "http", name], format!("{name} \"{path}\" must start with '/'"), None);
            }
        }
    }
}
/// Loads the certificates now, so a bad file fails `validate` and start, at its field.
fn server_tls(c: &mut Checker, transport: &str, tls: &TlsServerConfig, alpn: &[&[u8]]) {
    if let Err(e) = crate::receivers::tls::server_tls(tls, alpn) {
        c.error(&["protocols", transport, "tls", e.field], e.message, e.hint.as_deref());
    }
}
