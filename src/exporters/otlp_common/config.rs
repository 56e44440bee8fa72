//! Settings shared by the `otlp` and `otlphttp` exporters: TLS, compression,
//! the sending queue and retry on failure. Names and defaults are the
//! Collector's (`exporterhelper`, `configtls`, `configcompression`).

use crate::config::Duration;
use serde::Deserialize;

pub use super::compression::{check_compression, Compression, CompressionParams, Encoder, Transport};

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
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
    pub key_file: Option<String>,
    /// Server name to verify instead of the endpoint's host.
    pub server_name_override: Option<String>,
}

pub use crate::queue::FullQueuePolicy;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SendingQueueConfig {
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
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
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        let (set, missing) =
            if tls.cert_file.is_some() { ("cert_file", "key_file") } else { ("key_file", "cert_file") };
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
    if q.queue_size == 0 {
        c.error(&["sending_queue", "queue_size"], "queue_size must be at least 1", Some("or set enabled: false"));
    }
    if q.num_consumers == 0 {
        c.error(&["sending_queue", "num_consumers"], "num_consumers must be at least 1", None);
    }
    if q.storage.is_some() && q.max_size_mib == 0 {
        c.error(
            &["sending_queue", "max_size_mib"],
            "max_size_mib must be at least 1",
            Some("it bounds the persistent queue on disk, e.g. 512"),
        );
    }
}
