//! Settings shared by the `otlp` and `otlphttp` exporters: TLS, compression,
//! the sending queue and retry on failure. Names and defaults are the
//! Collector's (`exporterhelper`, `configtls`, `configcompression`).

use crate::config::component::CollectorOnly;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::compression::{check_compression, Compression, CompressionParams, Encoder, Transport};

/// TLS of the connection to the backend.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// Plain text (no TLS) when true. For gRPC the default is TLS unless the
    /// endpoint says `http://`; for HTTP the endpoint's scheme decides.
    pub insecure: bool,
    /// Skip verification of the server certificate.
    pub insecure_skip_verify: bool,
    /// PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<String>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<String>,
    /// Private key (PEM) of `cert_file`.
    pub key_file: Option<String>,
    /// Server name to verify instead of the endpoint's host.
    pub server_name_override: Option<String>,
    /// Lowest TLS version offered: "1.2" (default) or "1.3" (rustls has no 1.0 or 1.1).
    pub min_version: Option<String>,
    /// Highest TLS version offered: "1.2" or "1.3" (default).
    pub max_version: Option<String>,
    /// `ca_file`, `cert_file` and `key_file` inline (PEM text); each
    /// excludes its file.
    pub ca_pem: Option<String>,
    /// `cert_file` inline (PEM text).
    pub cert_pem: Option<String>,
    /// `key_file` inline (PEM text).
    #[schemars(extend("x-sensitive" = true))]
    pub key_pem: Option<String>,
    /// The Collector's system pool beside `ca_file`, cipher, curve and reload
    /// settings: not implemented.
    pub include_system_ca_certs_pool: Option<CollectorOnly>,
    pub cipher_suites: Option<CollectorOnly>,
    pub curve_preferences: Option<CollectorOnly>,
    pub reload_interval: Option<CollectorOnly>,
    pub tpm_config: Option<CollectorOnly>,
}

/// A TLS version name as the Collector writes it ("1.2", "1.3"); `Err` says why not.
pub fn tls_version(v: &str) -> Result<&'static rustls::SupportedProtocolVersion, String> {
    match v {
        "1.2" => Ok(&rustls::version::TLS12),
        "1.3" => Ok(&rustls::version::TLS13),
        "1.0" | "1.1" => Err(format!("TLS {v} is not supported: sluice speaks TLS 1.2 and 1.3")),
        other => Err(format!("unknown TLS version \"{other}\": write \"1.2\" or \"1.3\"")),
    }
}

impl TlsClientConfig {
    /// The versions to offer, from `min_version` and `max_version`.
    pub fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
        let nonempty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let min = tls_version(&nonempty(&self.min_version).unwrap_or_else(|| "1.2".into()))
            .map_err(|e| format!("min_version: {e}"))?;
        let max = tls_version(&nonempty(&self.max_version).unwrap_or_else(|| "1.3".into()))
            .map_err(|e| format!("max_version: {e}"))?;
        let rank =
            |v: &rustls::SupportedProtocolVersion| if v.version == rustls::ProtocolVersion::TLSv1_3 { 1 } else { 0 };
        if rank(max) < rank(min) {
            return Err("max_version: max_version is below min_version".into());
        }
        Ok([&rustls::version::TLS13, &rustls::version::TLS12]
            .into_iter()
            .filter(|v| (rank(min)..=rank(max)).contains(&rank(v)))
            .collect())
    }
}

/// What the sending queue counts against `queue_size` (the Collector's `sizer`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueSizer {
    /// Requests (batches as they leave the pipeline): sluice's queue.
    #[default]
    Requests,
    /// Items (spans, data points, log records): not implemented.
    Items,
    /// Bytes of the serialized requests: not implemented.
    Bytes,
}

pub use crate::queue::FullQueuePolicy;

/// The queue between the pipeline and the senders: capacity, what to do when full, persistence.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SendingQueueConfig {
    /// Queue batches and send them from `num_consumers` senders; false sends from the pipeline's
    /// workers.
    pub enabled: bool,
    /// Concurrent senders draining the queue. Default 10.
    pub num_consumers: usize,
    /// Capacity in batches. Default 1000.
    pub queue_size: usize,
    /// What to do when the queue is full. Default `block`.
    pub when_full: FullQueuePolicy,
    /// The Collector's spelling of `when_full: block`.
    pub block_on_overflow: Option<bool>,
    /// Older Collector spelling of `block_on_overflow`.
    pub blocking: Option<bool>,
    /// ID of a `file_storage` extension: the queue lives on disk there and
    /// survives restarts and crashes. Unset: in memory.
    pub storage: Option<String>,
    /// sluice: bound of a persistent queue's undelivered records, in MiB
    /// (the batch bound `queue_size` applies too). Default 512.
    pub max_size_mib: u64,
    /// What `queue_size` counts. Only `requests` (the default) is implemented.
    pub sizer: QueueSizer,
    /// The Collector's "caller waits until the request is sent": only
    /// `false` (the default; the pipeline hands on and goes on) is implemented.
    pub wait_for_result: bool,
    /// The Collector's batching inside the queue: not implemented (use the
    /// `batch` processor).
    pub batch: Option<CollectorOnly>,
}

impl Default for SendingQueueConfig {
    fn default() -> Self {
        SendingQueueConfig {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            when_full: FullQueuePolicy::Block,
            block_on_overflow: None,
            blocking: None,
            storage: None,
            max_size_mib: 512,
            sizer: QueueSizer::Requests,
            wait_for_result: false,
            batch: None,
        }
    }
}

impl SendingQueueConfig {
    /// The policy after applying the Collector's boolean spellings.
    pub fn policy(&self) -> FullQueuePolicy {
        match self.block_on_overflow.or(self.blocking) {
            Some(true) => FullQueuePolicy::Block,
            Some(false) => FullQueuePolicy::DropNewest,
            None => self.when_full,
        }
    }
}

/// Retries of a failed export with exponential back-off.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry failed exports; false drops a batch at its first failure (counted).
    pub enabled: bool,
    /// First wait after a failure. Default 5s.
    pub initial_interval: Duration,
    /// Upper bound of one wait. Default 30s.
    pub max_interval: Duration,
    /// Give up after this long since the first attempt; 0 retries forever. Default 300s.
    pub max_elapsed_time: Duration,
    /// Growth factor of the wait. Default 1.5.
    pub multiplier: f64,
    /// Jitter: each wait is drawn from [w(1-f), w(1+f)]. Default 0.5.
    pub randomization_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

// --- checks of the shared exporter settings, at their fields ---

/// Client certificates need both halves.
pub fn check_tls(c: &mut crate::config::component::Checker, tls: &TlsClientConfig) {
    if let Err(e) = tls.versions() {
        let (field, message) = e.split_once(": ").unwrap_or(("min_version", &e));
        c.error(&["tls", field], message.to_string(), Some("\"1.2\" or \"1.3\""));
    }
    for (file, pem, f, p) in [
        (&tls.ca_file, &tls.ca_pem, "ca_file", "ca_pem"),
        (&tls.cert_file, &tls.cert_pem, "cert_file", "cert_pem"),
        (&tls.key_file, &tls.key_pem, "key_file", "key_pem"),
    ] {
        if file.is_some() && pem.is_some() {
            c.error(&["tls", p], format!("{f} and {p} are both set"), Some("keep one of them"));
        }
    }
    let cert = tls.cert_file.is_some() || tls.cert_pem.is_some();
    let key = tls.key_file.is_some() || tls.key_pem.is_some();
    if cert != key {
        let (set, missing) = if cert { ("cert_file", "key_file") } else { ("key_file", "cert_file") };
        c.error(
            &["tls", set],
            format!("{set} is set but {missing} is not"),
            Some("client certificates need both cert_file and key_file"),
        );
    }
}

pub fn check_retry(c: &mut crate::config::component::Checker, r: &RetryConfig) {
    if !r.enabled {
        return;
    }
    // NaN fails the range check, so it is rejected too.
    if !(1.0..=f64::INFINITY).contains(&r.multiplier) || r.multiplier.is_infinite() {
        c.error(&["retry_on_failure", "multiplier"], format!("multiplier {} must be at least 1", r.multiplier), None);
    }
    if !(0.0..=1.0).contains(&r.randomization_factor) {
        c.error(
            &["retry_on_failure", "randomization_factor"],
            format!("randomization_factor {} must be between 0 and 1", r.randomization_factor),
            None,
        );
    }
    if r.initial_interval.is_zero() {
        c.error(
            &["retry_on_failure", "initial_interval"],
            "initial_interval must be above zero",
            Some("e.g. 5s, or set enabled: false"),
        );
    }
}

pub fn check_queue(c: &mut crate::config::component::Checker, q: &SendingQueueConfig) {
    if !q.enabled {
        return;
    }
    if q.sizer != QueueSizer::Requests {
        let name = if q.sizer == QueueSizer::Items { "items" } else { "bytes" };
        c.error(
            &["sending_queue", "sizer"],
            format!("the Collector has `sizer: {name}`; sluice does not support it (yet): its queue counts requests"),
            Some("remove sizer (or write sizer: requests); bound the queue with queue_size in requests"),
        );
    }
    if q.wait_for_result {
        c.error(
            &["sending_queue", "wait_for_result"],
            "the Collector has `wait_for_result: true`; sluice does not support it (yet)",
            Some("remove it: the pipeline hands a batch to the queue and goes on, as with wait_for_result: false"),
        );
    }
    if q.queue_size == 0 {
        c.error(&["sending_queue", "queue_size"], "queue_size must be at least 1", Some("or set enabled: false"));
    } else if q.queue_size > MAX_QUEUE_SIZE {
        c.error(
            &["sending_queue", "queue_size"],
            format!("queue_size {} is above the bound of {MAX_QUEUE_SIZE}", q.queue_size),
            Some("an in-memory queue allocates a slot per batch at start; the default is 1000"),
        );
    }
    if q.num_consumers == 0 {
        c.error(&["sending_queue", "num_consumers"], "num_consumers must be at least 1", None);
    } else if q.num_consumers > MAX_NUM_CONSUMERS {
        c.error(
            &["sending_queue", "num_consumers"],
            format!("num_consumers {} is above the bound of {MAX_NUM_CONSUMERS}", q.num_consumers),
            Some("each consumer holds a batch in flight; the default is 10"),
        );
    }
    if q.storage.is_some() && q.max_size_mib == 0 {
        c.error(
            &["sending_queue", "max_size_mib"],
            "max_size_mib must be at least 1",
            Some("it bounds the persistent queue on disk, e.g. 512"),
        );
    } else if q.storage.is_some() && q.max_size_mib > MAX_QUEUE_MIB {
        c.error(
            &["sending_queue", "max_size_mib"],
            format!("max_size_mib {} is above the bound of {MAX_QUEUE_MIB} (16 TiB)", q.max_size_mib),
            Some("it bounds the persistent queue on disk; the default is 512"),
        );
    }
}

/// Most batches a sending queue may hold (`queue_size`).
pub const MAX_QUEUE_SIZE: usize = 1_000_000;
/// Most consumers of a sending queue (`num_consumers`).
pub const MAX_NUM_CONSUMERS: usize = 4096;
/// Most MiB of a persistent queue (`max_size_mib`), so the byte bound never overflows.
pub const MAX_QUEUE_MIB: u64 = 1 << 24;

#[cfg(test)]
mod bounds_tests {
    fn with(queue: &str) -> String {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  otlp:\n    endpoint: collector:4317\n    \
             sending_queue:\n{queue}service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
        )
    }

    #[test]
    fn sending_queue_sizes_are_bounded_with_path_and_hint() {
        assert!(
            crate::service::load(&with("      queue_size: 1000000\n      num_consumers: 4096\n"), &|_| None).is_ok()
        );
        for (queue, path, needle) in [
            ("      queue_size: 1000000000\n", "exporters::otlp::sending_queue::queue_size", "bound of 1000000"),
            ("      num_consumers: 100000\n", "exporters::otlp::sending_queue::num_consumers", "bound of 4096"),
        ] {
            let errs = crate::service::load(&with(queue), &|_| None).unwrap_err();
            let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
            assert!(e.to_string().contains(needle) && e.hint.is_some(), "{e}");
            assert_eq!(e.line, Some(9), "{e}");
        }
    }
}
