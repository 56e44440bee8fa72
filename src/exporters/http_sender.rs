//! One HTTP POST client for every exporter that speaks HTTP (`otlphttp`,
//! `loki`, `prometheusremotewrite`): hyper with rustls, the configured
//! headers, one deadline per request, and the error rules every HTTP backend
//! shares.
//!
//! Guarantees: construction needs no network; a request (including reading
//! at most [`MAX_RESPONSE_BYTES`] of the answer) never outlives `timeout`
//! (zero means no deadline, as in the Collector); network errors and
//! timeouts are retryable; each exporter decides what a status means, with
//! [`retryable_status`] as the common rule.

use crate::exporters::otlp_common::{civil, tls, TlsClientConfig};
use crate::exporters::ExportError;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Answers larger than this are not read further: an error message or a
/// partial success never needs more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How much of a server's message goes into an error.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// A backend's answer to one POST.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The connection pool of an [`HttpSender`] (the Collector's `idle_conn_timeout`,
/// `max_idle_conns_per_host`, `disable_keep_alives`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolSettings {
    /// Close a pooled connection idle this long. Default 90s.
    pub idle_timeout: Option<Duration>,
    /// Idle connections kept per host; 0 keeps none (no keep-alive). Default: no bound.
    pub max_idle_per_host: Option<usize>,
}

pub struct HttpSender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
    timeout: Duration,
    describe: String,
}

impl HttpSender {
    /// `url` must be absolute http(s); `headers` are the user's (they win
    /// over anything the exporter sets with [`HttpSender::set_header`] before).
    pub fn new(
        url: &str,
        tls_cfg: &TlsClientConfig,
        user_headers: &BTreeMap<String, String>,
        timeout: Duration,
        id: &str,
    ) -> Result<Self, String> {
        Self::with_pool(url, tls_cfg, user_headers, timeout, id, PoolSettings::default())
    }

    /// [`HttpSender::new`] with the connection pool's settings.
    pub fn with_pool(
        url: &str,
        tls_cfg: &TlsClientConfig,
        user_headers: &BTreeMap<String, String>,
        timeout: Duration,
        id: &str,
        pool: PoolSettings,
    ) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{id}: endpoint {url:?} must start with http:// or https://"));
        }
        let uri: Uri = url.parse().map_err(|e| format!("{id}: endpoint {url:?} is not a valid URL: {e}"))?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = if uri.scheme_str() == Some("https") {
            let tls = tls::client_tls(tls_cfg, &[]).map_err(|e| format!("{id}: {e}"))?;
            let b = builder.with_tls_config((*tls.config).clone()).https_or_http();
            let b = match tls.server_name {
                Some(name) => b.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name)),
                None => b,
            };
            b.enable_all_versions().build()
        } else {
            // Plain http: the TLS side is never used, so it trusts nothing
            // rather than failing on a machine without system roots.
            builder.with_tls_config(tls::no_roots_config()).https_or_http().enable_all_versions().build()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(pool.idle_timeout.unwrap_or(Duration::from_secs(90)))
            .pool_max_idle_per_host(pool.max_idle_per_host.unwrap_or(usize::MAX))
            .build(connector);

        let mut headers = HeaderMap::new();
        let agent = format!("sluice/{}", env!("CARGO_PKG_VERSION"));
        headers.insert(USER_AGENT, HeaderValue::from_str(&agent).map_err(|e| e.to_string())?);
        let mut sender = HttpSender { client, url: uri, headers, timeout, describe: format!("{id} ({url})") };
        for (k, v) in user_headers {
            sender.set_header(k, v).map_err(|e| format!("{id}: headers: {e}"))?;
        }
        Ok(sender)
    }

    /// Sets a header sent with every request, replacing one of the same name.
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a valid header name"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("the value of {name:?} is not a valid header value"))?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Sets a header only if the user did not set it.
    pub fn default_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.entry(name).or_insert(value);
    }

    /// `id (url)`, the prefix of every error message.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// POSTs `body`; any answer, whatever its status, is `Ok`.
    pub async fn post(&self, body: impl Into<Bytes>) -> Result<HttpAnswer, ExportError> {
        let attempt = self.attempt(body.into());
        let result = match self.timeout.is_zero() {
            true => Ok(attempt.await),
            false => tokio::time::timeout(self.timeout, attempt).await,
        };
        match result {
            Ok(answer) => answer,
            Err(_) => Err(ExportError::Retryable {
                message: format!("{}: no answer within {:?}", self.describe, self.timeout),
                retry_after: None,
            }),
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<HttpAnswer, ExportError> {
        let mut req = Request::builder().method(Method::POST).uri(self.url.clone());
        if let Some(h) = req.headers_mut() {
            h.extend(self.headers.clone());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ExportError::Permanent { message: format!("{}: {e}", self.describe) })?;
        let resp = self.client.request(req).await.map_err(|e| ExportError::Retryable {
            message: format!("{}: {}", self.describe, error_chain(&e)),
            retry_after: None,
        })?;
        let (parts, body) = resp.into_parts();
        // A body we cannot read still leaves the status to decide on.
        let body = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Ok(HttpAnswer { status: parts.status, headers: parts.headers, body })
    }
}

/// The statuses every HTTP backend we speak to means as "try again later":
/// 429 and 502/503/504 (the OTLP/HTTP spec's list; Loki and Prometheus
/// remote write use the same ones).
pub fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` from the answer's headers, as delta-seconds or an HTTP-date.
pub fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, now))
}

/// `Retry-After` as delta-seconds or an HTTP-date (a date in the past means now).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = civil::parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs((at - now).max(0) as u64))
}

/// Prefixes an error's message with `describe`.
pub fn prefix(e: ExportError, describe: &str) -> ExportError {
    match e {
        ExportError::Retryable { message, retry_after } => {
            ExportError::Retryable { message: format!("{describe}: {message}"), retry_after }
        }
        ExportError::Permanent { message } => ExportError::Permanent { message: format!("{describe}: {message}") },
    }
}

/// An error and all its sources, `: `-joined.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// A body as text for an error message, trimmed and truncated.
pub fn body_text(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).trim().to_string(), MAX_MESSAGE_BYTES)
}

pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
