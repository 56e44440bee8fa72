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

/// What the sending queue counts against `queue_size` (the Collector's
/// `sizer`): requests (default), items or bytes.
pub use crate::queue::Sizer as QueueSizer;

pub use crate::queue::batcher::BatchSettings;
pub use crate::queue::FullQueuePolicy;

/// The queue between the pipeline and the senders: capacity, what to do when full, persistence.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SendingQueueConfig {
    /// Queue batches and send them from `num_consumers` senders; false sends from the pipeline's
    /// workers.
    pub enabled: bool,
    /// Concurrent senders draining the queue (with `batch`: concurrent
    /// sends of merged batches). Default 10.
    pub num_consumers: usize,
    /// Capacity, measured by `sizer`. Default 1000. With `sizer: bytes` a
    /// size such as `64MiB` is read too.
    #[serde(deserialize_with = "queue_size")]
    #[schemars(with = "crate::config::ByteSize")]
    pub queue_size: u64,
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
    /// (the bound `queue_size` applies too). Default 512.
    pub max_size_mib: u64,
    /// What `queue_size` counts: `requests` (default), `items` or `bytes`.
    /// Written or not matters: a written sizer is the batch's default.
    pub sizer: Option<QueueSizer>,
    /// The client is answered once its data is sent (or failed), not once
    /// it is queued. Default false. Not with `storage`.
    pub wait_for_result: bool,
    /// Batching of what the queue hands out. Absent: none; present, even
    /// empty (`batch:` or `batch: {}`): the Collector's defaults.
    #[serde(deserialize_with = "present", serialize_with = "written_batch")]
    #[schemars(with = "Option<QueueBatchConfig>")]
    pub batch: Option<Option<QueueBatchConfig>>,
}

/// `queue_size`: a number, or a size with a unit (`64MiB`), which
/// [`check_queue`] allows only with `sizer: bytes`.
fn queue_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    crate::config::ByteSize::deserialize(d).map(|b| b.0)
}

/// Whether `queue_size` is written as a size with a unit (`64MiB`).
fn queue_size_has_unit(node: &crate::config::node::Node) -> Option<String> {
    use crate::config::node::Value;
    let q = node.get("sending_queue")?.value.get("queue_size")?;
    match &q.value.value {
        Value::Scalar(text, _) if !text.trim().bytes().all(|b| b.is_ascii_digit()) => Some(text.clone()),
        _ => None,
    }
}

/// A `batch:` written empty prints as its defaults, so it reads back as written.
fn written_batch<S: serde::Serializer>(batch: &Option<Option<QueueBatchConfig>>, s: S) -> Result<S::Ok, S::Error> {
    match batch {
        None => s.serialize_none(),
        Some(None) => QueueBatchConfig::default().serialize(s),
        Some(Some(b)) => b.serialize(s),
    }
}

/// `Some` for a field that is written, even as null (`batch:`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `sending_queue.batch`: the Collector's `exporterhelper` batch settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueBatchConfig {
    /// `false` turns batching off (the Collector's optional sections).
    pub enabled: bool,
    /// A batch is sent once it has waited this long, whatever its size. Default 200ms.
    pub flush_timeout: Duration,
    /// A batch is sent once it reaches this size (by `sizer`). Default 8192.
    pub min_size: u64,
    /// Batches are cut at this size; 0: no maximum. Default 0.
    pub max_size: u64,
    /// `items` or `bytes`. Default: the queue's `sizer` when that is written
    /// and this section is not empty, else `items`.
    pub sizer: Option<QueueSizer>,
    /// Batching per client metadata: sluice keeps no client metadata.
    pub partition: Option<CollectorOnly>,
}

impl Default for QueueBatchConfig {
    fn default() -> Self {
        let d = BatchSettings::DEFAULT;
        QueueBatchConfig {
            enabled: true,
            flush_timeout: Duration(d.flush_timeout),
            min_size: d.min_size,
            max_size: d.max_size,
            sizer: None,
            partition: None,
        }
    }
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
            sizer: None,
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

    /// What `queue_size` counts.
    pub fn queue_sizer(&self) -> QueueSizer {
        self.sizer.unwrap_or_default()
    }

    /// The batch section's sizer as the Collector resolves it: its own when
    /// written; else the queue's when that is written and the section is
    /// not empty (`batch: {min_size: 100}`); else `items`.
    fn batch_sizer(&self, b: &QueueBatchConfig) -> QueueSizer {
        let nonempty = *b != QueueBatchConfig::default();
        b.sizer.or(self.sizer.filter(|_| nonempty)).unwrap_or(QueueSizer::Items)
    }

    /// The batching of what the queue hands out, if any.
    pub fn batch_settings(&self) -> Option<BatchSettings> {
        if !self.enabled {
            return None;
        }
        let b = match &self.batch {
            None => return None,
            Some(None) => QueueBatchConfig::default(),
            Some(Some(b)) if !b.enabled => return None,
            Some(Some(b)) => b.clone(),
        };
        Some(BatchSettings {
            flush_timeout: b.flush_timeout.get(),
            min_size: b.min_size,
            max_size: b.max_size,
            sizer: self.batch_sizer(&b),
        })
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

/// `headers` must be sendable: a name no peer would take fails at start
/// (the Collector starts and then fails every export with it). Over gRPC
/// names are sent lowercased and `-bin` (binary) metadata is not supported.
pub fn check_headers(
    c: &mut crate::config::component::Checker,
    headers: &std::collections::BTreeMap<String, String>,
    transport: Transport,
) {
    const HINT: &str = "header names are letters, digits, '-', '_' and '.', e.g. x-scope-orgid";
    for (name, value) in headers {
        let name_ok = match transport {
            Transport::Grpc => name.to_ascii_lowercase().parse::<tonic::metadata::AsciiMetadataKey>().is_ok(),
            Transport::Http => http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
        };
        if !name_ok {
            c.error(&["headers"], format!("{name:?} is not a valid header name"), Some(HINT));
        } else if transport == Transport::Grpc && name.to_ascii_lowercase().ends_with("-bin") {
            c.error(&["headers", name], format!("binary metadata ({name:?}) is not supported"), None);
        } else if http::HeaderValue::from_str(value).is_err() {
            c.error(
                &["headers", name],
                format!("the value of {name:?} is not a valid header value"),
                Some("visible ASCII and spaces, no line breaks"),
            );
        }
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
    if q.wait_for_result && q.storage.is_some() {
        c.error(
            &["sending_queue", "wait_for_result"],
            "`wait_for_result` is not supported with a persistent queue configured with `storage`",
            Some("as in the Collector: remove wait_for_result, or storage (a persistent queue already answers once the data is on disk)"),
        );
    }
    let sizer = q.queue_sizer();
    let bound = max_queue_size(sizer);
    if let Some(text) = queue_size_has_unit(c.node).filter(|_| sizer != QueueSizer::Bytes) {
        c.error(
            &["sending_queue", "queue_size"],
            format!("queue_size {text:?} is a size in bytes, but the queue counts {}", sizer.as_str()),
            Some("add `sizer: bytes` to bound the queue in bytes, or write a count, e.g. queue_size: 1000"),
        );
    } else if q.queue_size == 0 {
        c.error(&["sending_queue", "queue_size"], "queue_size must be at least 1", Some("or set enabled: false"));
    } else if q.queue_size > bound {
        c.error(
            &["sending_queue", "queue_size"],
            format!("queue_size {} is above the bound of {bound} {}", q.queue_size, sizer.as_str()),
            Some("the queue holds this much in memory (or on disk); the default is 1000 requests"),
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
    check_batch(c, q);
}

/// `sending_queue.batch`, with the Collector's rules (`queuebatch.Config.Validate`).
fn check_batch(c: &mut crate::config::component::Checker, q: &SendingQueueConfig) {
    let b = match &q.batch {
        Some(Some(b)) if b.enabled => b,
        _ => return,
    };
    let at = |f: &'static str| ["sending_queue", "batch", f];
    if q.batch_sizer(b) == QueueSizer::Requests {
        let (path, why) = if b.sizer.is_some() {
            (at("sizer"), "batch sizer `requests` is not allowed: batches are measured in items or bytes")
        } else {
            (
                at("sizer"),
                "batch sizer `requests` is not allowed: the batch takes the queue's `sizer: requests`, and batches are measured in items or bytes",
            )
        };
        c.error(&path, why, Some("write batch.sizer: items (or bytes), as the Collector requires"));
    }
    if b.flush_timeout.is_zero() {
        c.error(&at("flush_timeout"), "flush_timeout must be above zero", Some("e.g. 200ms, the default"));
    }
    if b.max_size > 0 && b.max_size < b.min_size {
        c.error(
            &at("max_size"),
            format!("max_size ({}) must be greater or equal to min_size ({})", b.max_size, b.min_size),
            Some("raise max_size, lower min_size, or set max_size: 0 for no maximum"),
        );
    }
    let sizer = q.batch_sizer(b);
    if sizer != QueueSizer::Requests && b.min_size > max_queue_size(sizer) {
        c.error(
            &at("min_size"),
            format!("min_size {} is above the bound of {} {}", b.min_size, max_queue_size(sizer), sizer.as_str()),
            Some("a pending batch is held in memory; the default is 8192 items"),
        );
    }
    if sizer != QueueSizer::Requests && b.max_size > max_queue_size(sizer) {
        c.error(
            &at("max_size"),
            format!("max_size {} is above the bound of {} {}", b.max_size, max_queue_size(sizer), sizer.as_str()),
            Some("0 means no maximum"),
        );
    }
    // The queue could never hold a batch's worth: the Collector refuses it too.
    if sizer == q.queue_sizer() && q.queue_size > 0 && b.min_size > q.queue_size {
        c.error(
            &at("min_size"),
            format!("min_size ({}) must be less than or equal to queue_size ({})", b.min_size, q.queue_size),
            Some("both count the same sizer: raise sending_queue.queue_size or lower batch.min_size"),
        );
    }
}

/// The bound of `queue_size` (and of batch sizes) for a sizer.
pub fn max_queue_size(sizer: QueueSizer) -> u64 {
    match sizer {
        QueueSizer::Requests => MAX_QUEUE_SIZE,
        QueueSizer::Items => MAX_QUEUE_ITEMS,
        QueueSizer::Bytes => MAX_QUEUE_BYTES,
    }
}

/// Most batches a sending queue may hold (`queue_size` with `sizer: requests`).
pub const MAX_QUEUE_SIZE: u64 = 1_000_000;
/// Most items (`sizer: items`).
pub const MAX_QUEUE_ITEMS: u64 = 1_000_000_000;
/// Most bytes (`sizer: bytes`): 64 GiB.
pub const MAX_QUEUE_BYTES: u64 = 64 << 30;
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

    /// `queue_size` takes a size with `sizer: bytes`; elsewhere a unit is a
    /// mistake, named at the field with the fix.
    #[test]
    fn a_bytes_queue_size_takes_a_size_with_a_unit() {
        let q = queue_of("      sizer: bytes\n      queue_size: 64MiB\n");
        assert_eq!((q.queue_sizer(), q.queue_size), (super::QueueSizer::Bytes, 64 << 20));
        assert_eq!(queue_of("      sizer: bytes\n      queue_size: 512KiB\n").queue_size, 512 << 10);
        assert_eq!(queue_of("      sizer: bytes\n      queue_size: 1000000\n").queue_size, 1_000_000);
        for (queue, needle, hint) in [
            ("      queue_size: 64MiB\n", "is a size in bytes, but the queue counts requests", "sizer: bytes"),
            ("      sizer: items\n      queue_size: 1MiB\n", "the queue counts items", "sizer: bytes"),
            ("      sizer: bytes\n      queue_size: 65GiB\n", "above the bound of 68719476736 bytes", "1000"),
            ("      sizer: bytes\n      queue_size: 12 furlongs\n", "unknown unit", ""),
        ] {
            let errs = crate::service::load(&with(queue), &|_| None).unwrap_err();
            let path = "exporters::otlp::sending_queue::queue_size";
            let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().contains(hint), "{e}");
            assert_eq!(e.line, Some(9 + queue.matches('\n').count() - 1), "{e}");
        }
    }

    fn queue_of(queue: &str) -> super::SendingQueueConfig {
        let cfg = crate::service::load(&with(queue), &|_| None).unwrap_or_else(|e| panic!("{queue}: {e}"));
        let otlp = crate::config::ComponentId::parse("otlp").unwrap();
        cfg.exporters[&otlp].sending().0
    }

    /// The Collector's queuebatch testdata (config_test.go `TestUnmarshal`),
    /// with the defaults it expects: batch flush_timeout 200ms, min_size
    /// 8192, max_size 0, sizer items unless inherited.
    #[test]
    fn batch_settings_resolve_as_the_collector_unmarshals_them() {
        use super::{BatchSettings, QueueSizer};
        use std::time::Duration;
        let default = BatchSettings {
            flush_timeout: Duration::from_millis(200),
            min_size: 8192,
            max_size: 0,
            sizer: QueueSizer::Items,
        };
        assert_eq!(BatchSettings::DEFAULT, default);
        // batch_unset.yaml: no batching.
        assert_eq!(queue_of("      enabled: true\n").batch_settings(), None);
        // batch_set_empty_no_explicit_sizer.yaml
        assert_eq!(queue_of("      enabled: true\n      batch:\n").batch_settings(), Some(default));
        // batch_set_empty_explicit_sizer.yaml: an empty batch does not take the queue's sizer.
        let q = queue_of("      sizer: bytes\n      batch:\n");
        assert_eq!((q.queue_sizer(), q.batch_settings()), (QueueSizer::Bytes, Some(default)));
        // batch_set_nonempty_explicit_sizer.yaml: it does once not empty.
        let q = queue_of("      sizer: bytes\n      queue_size: 2000\n      batch:\n        min_size: 100\n");
        let expected = BatchSettings { min_size: 100, sizer: QueueSizer::Bytes, ..default };
        assert_eq!((q.queue_size, q.batch_settings()), (2000, Some(expected)));
        // batch_set_nonempty_no_explicit_sizer.yaml
        let q = queue_of("      queue_size: 2000\n      batch:\n        min_size: 100\n");
        assert_eq!(q.batch_settings(), Some(BatchSettings { min_size: 100, ..default }));
        // batch_disabled_explicit_sizer.yaml
        let q = queue_of("      sizer: requests\n      batch:\n        enabled: false\n");
        assert_eq!(q.batch_settings(), None);
        // Every field written.
        let q = queue_of(
            "      sizer: items\n      queue_size: 50000\n      batch:\n        flush_timeout: 1s\n        \
             min_size: 1000\n        max_size: 2000\n        sizer: bytes\n",
        );
        let expected = BatchSettings {
            flush_timeout: Duration::from_secs(1),
            min_size: 1000,
            max_size: 2000,
            sizer: QueueSizer::Bytes,
        };
        assert_eq!((q.queue_sizer(), q.batch_settings()), (QueueSizer::Items, Some(expected)));
        // A disabled queue batches nothing.
        assert_eq!(queue_of("      enabled: false\n      batch: {}\n").batch_settings(), None);
    }

    #[test]
    fn batch_mistakes_are_reported_at_their_fields_with_hints() {
        for (queue, path, needle, line) in [
            (
                "      batch:\n        min_size: 2048\n        max_size: 1024\n",
                "exporters::otlp::sending_queue::batch::max_size",
                "max_size (1024) must be greater or equal to min_size (2048)",
                11,
            ),
            (
                "      batch:\n        sizer: requests\n",
                "exporters::otlp::sending_queue::batch::sizer",
                "batch sizer `requests` is not allowed",
                10,
            ),
            (
                "      sizer: requests\n      batch:\n        min_size: 10\n",
                "exporters::otlp::sending_queue::batch::sizer",
                "takes the queue's `sizer: requests`",
                10,
            ),
            (
                "      batch:\n        flush_timeout: 0s\n",
                "exporters::otlp::sending_queue::batch::flush_timeout",
                "flush_timeout must be above zero",
                10,
            ),
            (
                "      sizer: items\n      queue_size: 100\n      batch:\n        min_size: 200\n",
                "exporters::otlp::sending_queue::batch::min_size",
                "min_size (200) must be less than or equal to queue_size (100)",
                12,
            ),
            ("      sizer: pages\n", "exporters::otlp::sending_queue::sizer", "pages", 9),
            (
                "      sizer: items\n      queue_size: 2000000000\n",
                "exporters::otlp::sending_queue::queue_size",
                "bound of 1000000000 items",
                10,
            ),
        ] {
            let errs = crate::service::load(&with(queue), &|_| None).unwrap_err();
            let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
            assert!(e.to_string().contains(needle), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            if path.ends_with("::sizer") && needle != "pages" {
                assert!(e.hint.as_deref().is_some_and(|h| h.contains("items")), "{e:?}");
            }
        }
        // wait_for_result needs an in-memory queue, as in the Collector.
        let text = with("      storage: file_storage\n      wait_for_result: true\n").replace(
            "service:\n",
            "extensions:\n  file_storage:\n    directory: /tmp/sluice-wfr\nservice:\n  extensions: [file_storage]\n",
        );
        let errs = crate::service::load(&text, &|_| None).unwrap_err();
        let e = errs.0.iter().find(|e| e.path == "exporters::otlp::sending_queue::wait_for_result").expect("error");
        assert!(e.message.contains("not supported with a persistent queue") && e.hint.is_some(), "{e}");
        assert!(queue_of("      wait_for_result: true\n").wait_for_result);
        // Three mistakes in one batch section: all three at once.
        let errs = crate::service::load(
            &with("      batch:\n        sizer: requests\n        flush_timeout: 0s\n        min_size: 9\n        max_size: 3\n"),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(errs.0.len(), 3, "{errs}");
        // partition (per client metadata) is the Collector's, not sluice's.
        let errs = crate::service::load(
            &with("      batch:\n        partition:\n          metadata_keys: [tenant]\n"),
            &|_| None,
        )
        .unwrap_err();
        assert!(errs.0[0].to_string().contains("sluice does not support it"), "{errs}");
    }
}
