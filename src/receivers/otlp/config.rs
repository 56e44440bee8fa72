//! Configuration of the `otlp` receiver (alias `otlp_grpc`), field for field
//! the Collector's where the feature exists there.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::extensions::auth::config::AuthSettings;
use crate::receivers::tls::TlsServerConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_GRPC_ENDPOINT: &str = "127.0.0.1:4317";
pub const DEFAULT_HTTP_ENDPOINT: &str = "127.0.0.1:4318";

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// At least one of `grpc` and `http` must be present (checked at validation).
    pub protocols: Protocols,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// `grpc:` with no body (YAML null) enables gRPC with defaults.
    #[serde(default, deserialize_with = "crate::config::null_as_default")]
    pub grpc: Option<GrpcServerConfig>,
    /// `http:` with no body (YAML null) enables OTLP/HTTP with defaults.
    #[serde(default, deserialize_with = "crate::config::null_as_default")]
    pub http: Option<HttpServerConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
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
    /// Keepalive pings and connection ages of the gRPC server.
    pub keepalive: Option<GrpcKeepalive>,
    /// Accepted for compatibility (hyper's HTTP/2 server sizes its own
    /// buffers); must not be negative.
    pub read_buffer_size: Option<u64>,
    /// Accepted for compatibility, as `read_buffer_size`.
    pub write_buffer_size: Option<u64>,
    /// Only `false`: sluice does not hand client metadata to the pipeline.
    pub include_metadata: bool,
    /// `tcp` (the only transport sluice listens on).
    pub transport: Option<String>,
    /// sluice's bounds on what clients may make the listener hold.
    pub limits: ReceiverLimits,
}

/// `keepalive:` of a gRPC server, as grpc-go's (and so the Collector's).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    /// What the server does: pings, idle and age limits of connections.
    pub server_parameters: Option<KeepaliveServerParameters>,
    /// How often a client may ping.
    pub enforcement_policy: Option<KeepaliveEnforcementPolicy>,
}

/// grpc-go's `keepalive.EnforcementPolicy`: how often a client may ping,
/// enforced as grpc-go does ([`h2_pings`](crate::receivers::h2_pings)):
/// the third ping too soon closes the connection with GOAWAY
/// `ENHANCE_YOUR_CALM` "too_many_pings".
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveEnforcementPolicy {
    /// Shortest interval between a client's pings (unset or 0: 5m, grpc-go's default).
    pub min_time: Option<Duration>,
    /// Allow pings every `min_time` with no request in flight (otherwise every 2h).
    pub permit_without_stream: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// Close a connection with no request in flight for this long. Default: never.
    pub max_connection_idle: Option<Duration>,
    /// Ping an idle client this often to check it is alive. Default: never.
    pub time: Option<Duration>,
    /// How long to wait for the answer to a ping before closing. Default 20s.
    pub timeout: Option<Duration>,
    /// Ask a connection this old to close (GOAWAY); 0 or unset: never.
    pub max_connection_age: Option<Duration>,
    /// Then close it after this much more; unset: when its requests end.
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
            read_buffer_size: None,
            write_buffer_size: None,
            include_metadata: false,
            transport: None,
            limits: ReceiverLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// host:port to listen on. Default 127.0.0.1:4318.
    pub endpoint: String,
    /// Largest request body accepted after decompression, in bytes. Default 20 MiB.
    pub max_request_body_size: u64,
    /// Path of trace exports; a missing leading `/` is added.
    pub traces_url_path: String,
    /// Path of metric exports; a missing leading `/` is added.
    pub metrics_url_path: String,
    /// Path of log exports; a missing leading `/` is added.
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
    /// Cross-origin requests from browsers, honoured (preflights answered).
    pub cors: Option<CorsConfig>,
    /// Headers added to every response.
    pub response_headers: BTreeMap<String, String>,
    /// Content-Encodings accepted; others are answered 415. Default: all
    /// sluice decodes.
    pub compression_algorithms: Option<Vec<String>>,
    /// `false` closes each HTTP/1.1 connection after one request. Default true.
    pub keepalives_enabled: bool,
    /// Accepted for compatibility: sluice bounds a request's headers
    /// (`read_header_timeout`) and its body (`max_request_body_size`), not the
    /// time to read it; a response is small and written at once.
    pub read_timeout: Option<Duration>,
    /// Accepted for compatibility, as `read_timeout`.
    pub write_timeout: Option<Duration>,
    /// Only `false`: sluice does not hand client metadata to the pipeline.
    pub include_metadata: bool,
    /// sluice's bounds on what clients may make the listener hold.
    pub limits: ReceiverLimits,
}

/// `limits:` of a gRPC or HTTP listener (sluice's own; the Collector has no
/// such block). Every bound a client could otherwise push the agent past;
/// the defaults are far above what a normal client sends. See README
/// "Hostile input".
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverLimits {
    /// Largest request accepted once decoded, estimated from a walk of its
    /// bytes before decoding (MiB). Over it: RESOURCE_EXHAUSTED / 413. Default 128.
    pub max_decoded_size_mib: u64,
    /// Bytes of request bodies being received and decoded at once, across
    /// all connections of the listener (MiB). Over it: UNAVAILABLE / 503 +
    /// Retry-After. 0 (the default): 128 MiB, or twice the largest request
    /// the listener takes when that is more.
    pub max_bytes_in_flight_mib: u64,
    /// Time a client has to send a whole request body (a gRPC message) once
    /// its headers arrived; 0: no limit. Default 30s.
    pub body_timeout: Duration,
    /// Time a new connection has to start its first request (TLS handshake
    /// and HTTP/2 preface included). Default 10s.
    pub handshake_timeout: Duration,
    /// Connections open at once; at the bound the one idle longest is
    /// closed for the new one, or the new one is if none is idle. Default 4096.
    pub max_connections: usize,
    /// Requests decoded at once off the async workers; 0: one per CPU.
    pub max_concurrent_decodes: usize,
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        ReceiverLimits {
            max_decoded_size_mib: 128,
            max_bytes_in_flight_mib: 0,
            body_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_concurrent_decodes: 0,
        }
    }
}

impl ReceiverLimits {
    /// `max_bytes_in_flight_mib` in bytes, its default resolved for a
    /// listener whose largest request is `largest_request` bytes.
    pub fn bytes_in_flight(&self, largest_request: u64) -> u64 {
        match self.max_bytes_in_flight_mib {
            0 => (128 << 20).max(largest_request.saturating_mul(2)),
            mib => mib.saturating_mul(1 << 20),
        }
    }

    pub fn max_decoded_bytes(&self) -> u64 {
        self.max_decoded_size_mib.saturating_mul(1 << 20)
    }

    /// Decodes at once: `max_concurrent_decodes`, or one per CPU.
    pub fn concurrent_decodes(&self) -> usize {
        match self.max_concurrent_decodes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// Upper bounds of `limits:` (validation refuses more).
const MAX_LIMIT_MIB: u64 = 1 << 20;
const MAX_CONNECTIONS: usize = 1 << 20;
const MAX_CONCURRENT_DECODES: usize = 1024;

fn limits(c: &mut Checker, transport: &str, l: &ReceiverLimits, largest_request: u64) {
    let path = |f: &'static str| ["protocols", transport, "limits", f];
    let v = l.max_decoded_size_mib;
    if v == 0 || v > MAX_LIMIT_MIB {
        let message = format!("max_decoded_size_mib must be between 1 and {MAX_LIMIT_MIB}, got {v}");
        c.error(&path("max_decoded_size_mib"), message, None);
    }
    if l.max_bytes_in_flight_mib > MAX_LIMIT_MIB {
        let message =
            format!("max_bytes_in_flight_mib must be at most {MAX_LIMIT_MIB}, got {}", l.max_bytes_in_flight_mib);
        c.error(&path("max_bytes_in_flight_mib"), message, Some("0 means the default"));
    } else if l.max_bytes_in_flight_mib > 0 && l.max_bytes_in_flight_mib.saturating_mul(1 << 20) < largest_request {
        c.error(
            &path("max_bytes_in_flight_mib"),
            format!(
                "max_bytes_in_flight_mib ({} MiB) is below the largest request the listener takes ({} bytes)",
                l.max_bytes_in_flight_mib, largest_request
            ),
            Some("raise it, or lower the request size limit"),
        );
    }
    if l.handshake_timeout.is_zero() {
        c.error(&path("handshake_timeout"), "handshake_timeout must be above 0", Some("e.g. 10s"));
    }
    if l.max_connections == 0 || l.max_connections > MAX_CONNECTIONS {
        c.error(
            &path("max_connections"),
            format!("max_connections must be between 1 and {MAX_CONNECTIONS}, got {}", l.max_connections),
            None,
        );
    }
    if l.max_concurrent_decodes > MAX_CONCURRENT_DECODES {
        c.error(
            &path("max_concurrent_decodes"),
            format!(
                "max_concurrent_decodes must be at most {MAX_CONCURRENT_DECODES}, got {}",
                l.max_concurrent_decodes
            ),
            Some("0 means one per CPU"),
        );
    }
}

/// `cors:` of an HTTP server (the Collector's `confighttp.CORSConfig`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to send requests: exact, `*`, or with one `*` wildcard
    /// (`https://*.example.com`). Empty: CORS stays off.
    pub allowed_origins: Vec<String>,
    /// Request headers allowed beyond the simple ones (`*`: any).
    pub allowed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight's answer; 0: not sent.
    pub max_age: u64,
}

/// Content-Encodings the Collector names in `compression_algorithms`.
pub const COMPRESSION_ALGORITHMS: &[&str] =
    &["", "gzip", "zstd", "zlib", "snappy", "deflate", "lz4", "x-snappy-framed"];

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
            cors: None,
            response_headers: BTreeMap::new(),
            compression_algorithms: None,
            keepalives_enabled: true,
            read_timeout: None,
            write_timeout: None,
            include_metadata: false,
            limits: ReceiverLimits::default(),
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
        if g.include_metadata {
            include_metadata(c, "grpc");
        }
        if let Some(t) = g.transport.as_deref().filter(|t| *t != "tcp" && !t.is_empty()) {
            c.error(
                &["protocols", "grpc", "transport"],
                format!("transport \"{t}\" is not supported: sluice listens on tcp"),
                Some("remove transport or write transport: tcp"),
            );
        }
        if g.max_recv_msg_size_mib == 0 || g.max_recv_msg_size_mib > 4096 {
            c.error(
                &["protocols", "grpc", "max_recv_msg_size_mib"],
                format!("max_recv_msg_size_mib must be between 1 and 4096, got {}", g.max_recv_msg_size_mib),
                None,
            );
        }
        limits(c, "grpc", &g.limits, g.max_recv_msg_size_mib.saturating_mul(1 << 20));
    }
    if let Some(h) = &p.http {
        c.endpoint(&["protocols", "http", "endpoint"], &h.endpoint);
        if let Some(tls) = &h.tls {
            server_tls(c, "http", tls, crate::receivers::otlp::HTTP_ALPN);
        }
        if h.max_request_body_size == 0 {
            c.error(&["protocols", "http", "max_request_body_size"], "max_request_body_size must be above 0", None);
        }
        limits(c, "http", &h.limits, h.max_request_body_size);
        if h.include_metadata {
            include_metadata(c, "http");
        }
        for (name, value) in &h.response_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                c.error(
                    &["protocols", "http", "response_headers"],
                    format!("{name:?} is not a valid header name"),
                    None,
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                c.error(
                    &["protocols", "http", "response_headers", name],
                    format!("the value of {name:?} is not a valid header value"),
                    None,
                );
            }
        }
        for (i, alg) in h.compression_algorithms.iter().flatten().enumerate() {
            if !COMPRESSION_ALGORITHMS.contains(&alg.as_str()) {
                c.error_at(
                    &["protocols".into(), "http".into(), "compression_algorithms".into(), i.to_string()],
                    format!("unknown compression algorithm \"{alg}\""),
                    Some(format!("one of {}", COMPRESSION_ALGORITHMS[1..].join(", "))),
                );
            }
        }
        if let Some(cors) = &h.cors {
            for (i, origin) in cors.allowed_origins.iter().enumerate() {
                if origin.matches('*').count() > 1 {
                    c.error_at(
                        &["protocols".into(), "http".into(), "cors".into(), "allowed_origins".into(), i.to_string()],
                        format!("origin \"{origin}\" has more than one '*'"),
                        Some("one wildcard per origin, e.g. https://*.example.com".into()),
                    );
                }
            }
        }
    }
}

/// The URL path as the Collector uses it: with a leading `/` added when missing.
pub fn url_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

impl OtlpReceiverConfig {
    /// The settings as served: URL paths with their leading `/`.
    pub fn normalized(mut self) -> Self {
        if let Some(h) = &mut self.protocols.http {
            for p in [&mut h.traces_url_path, &mut h.metrics_url_path, &mut h.logs_url_path] {
                *p = url_path(p);
            }
        }
        self
    }
}

fn include_metadata(c: &mut Checker, transport: &str) {
    c.error(
        &["protocols", transport, "include_metadata"],
        "the Collector has `include_metadata: true`; sluice does not support it (yet)",
        Some("remove it: sluice does not hand client metadata (headers) to the pipeline"),
    );
}
/// Loads the certificates now, so a bad file fails `validate` and start, at its field.
fn server_tls(c: &mut Checker, transport: &str, tls: &TlsServerConfig, alpn: &[&[u8]]) {
    if let Err(e) = crate::receivers::tls::server_tls(tls, alpn) {
        c.error(&["protocols", transport, "tls", e.field], e.message, e.hint.as_deref());
    }
}
