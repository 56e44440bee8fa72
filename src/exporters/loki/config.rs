//! Configuration of the `loki` exporter: Loki's push API
//! (`/loki/api/v1/push`), snappy protobuf or JSON.

use crate::config::component::Checker;
use crate::config::Duration;
use crate::exporters::otlp_common::{check_queue, check_retry, check_tls};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig, TlsClientConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The resource attributes Loki 3 promotes to stream labels when it ingests
/// OTLP (`default_resource_attributes_as_index_labels`), so a stream looks the
/// same whichever way the logs reach Loki.
pub const DEFAULT_RESOURCE_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// Loki's default `max_label_names_per_series`.
pub const DEFAULT_MAX_LABELS: usize = 15;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LokiEncoding {
    /// `logproto.PushRequest`, snappy block compressed (what promtail and
    /// the Collector send).
    #[default]
    #[serde(alias = "proto")]
    Protobuf,
    Json,
}

/// Compression of a JSON body; a protobuf body is always snappy.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LokiCompression {
    #[default]
    None,
    Gzip,
    #[serde(rename = "")]
    Empty,
}

/// What an entry's line is.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LokiLineFormat {
    /// The body as text: a string as-is, any other value as JSON.
    #[default]
    #[serde(alias = "raw")]
    Text,
    /// A JSON object of body, attributes, resources, trace and span IDs and
    /// severity, as the Collector's loki exporter writes with `format: json`.
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    /// Resource attributes that become stream labels; replaces
    /// [`DEFAULT_RESOURCE_LABELS`] when given.
    #[serde(default)]
    pub resource: Option<Vec<String>>,
    /// Log record attributes that become stream labels. Default none.
    #[serde(default)]
    pub attributes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub password: String,
}

/// Credentials taken inline (the Collector uses authenticator extensions;
/// `${env:...}` keeps secrets out of the file).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LokiAuth {
    /// HTTP Basic credentials.
    #[serde(default)]
    pub basic: Option<BasicAuth>,
    /// A token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub bearer_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LokiExporterConfig {
    /// Loki's base URL (`http://loki:3100`) or the full push URL
    /// (`http://loki:3100/loki/api/v1/push`, the Collector's form).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Sent as `X-Scope-OrgID`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub auth: LokiAuth,
    /// TLS of the connection to Loki.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Extra HTTP headers sent with every request.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub headers: BTreeMap<String, String>,
    /// `protobuf` (default) or `json`.
    #[serde(default)]
    pub encoding: LokiEncoding,
    /// `gzip` or none (default); JSON only.
    #[serde(default)]
    pub compression: LokiCompression,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LokiLineFormat,
    /// Which resource and record attributes become Loki labels.
    #[serde(default)]
    pub labels: LabelsConfig,
    /// At most this many stream labels; the rest go to structured metadata.
    #[serde(default = "default_max_labels")]
    pub max_labels: usize,
    /// Deadline of one request. Default 30s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// The queue between the pipeline and the senders.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retries of a failed push with exponential back-off.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    /// Not implemented: the Collector's switches of its default labels
    /// (sluice's labels are chosen with `labels`).
    #[serde(default)]
    pub default_labels_enabled: Option<crate::config::component::CollectorOnly>,
}

impl LokiExporterConfig {
    /// The resource attributes that become labels.
    pub fn resource_labels(&self) -> Vec<String> {
        match &self.labels.resource {
            Some(list) => list.clone(),
            None => DEFAULT_RESOURCE_LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn default_max_labels() -> usize {
    DEFAULT_MAX_LABELS
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

pub fn validate(c: &mut Checker, cfg: &LokiExporterConfig) {
    match cfg.endpoint.as_deref() {
        None | Some("") => c.error(
            &["endpoint"],
            "endpoint is required",
            Some("Loki's base URL, e.g. http://loki:3100 (or the full http://loki:3100/loki/api/v1/push)"),
        ),
        Some(url) => c.url(&["endpoint"], url),
    }
    if cfg.max_labels == 0 {
        c.error(
            &["max_labels"],
            "max_labels must be at least 1",
            Some("service_name is always a label; Loki's default limit is 15"),
        );
    }
    let mut seen: Vec<(String, &str)> = Vec::new();
    let resource = cfg.labels.resource.clone().unwrap_or_default();
    for (section, names) in [("resource", &resource), ("attributes", &cfg.labels.attributes)] {
        for (i, name) in names.iter().enumerate() {
            let idx = i.to_string();
            let field = ["labels", section, idx.as_str()];
            let label = crate::exporters::loki::sanitize_name(name);
            if name.trim().is_empty() {
                c.error(&field, "a label's attribute name must not be empty", None);
            } else if label.starts_with("__") {
                c.error(
                    &field,
                    format!("\"{name}\" would be the label {label}: names starting with __ are reserved by Loki"),
                    None,
                );
            } else if let Some((_, other)) = seen.iter().find(|(l, _)| *l == label) {
                c.error(
                    &field,
                    format!("\"{name}\" and \"{other}\" both become the label {label}"),
                    Some("Loki label names allow only [a-zA-Z0-9_]; other characters become _"),
                );
            } else {
                seen.push((label, name));
            }
        }
    }
    if cfg.auth.basic.is_some() && cfg.auth.bearer_token.is_some() {
        c.error(&["auth"], "auth has both basic and bearer_token", Some("keep one of them"));
    }
    if let Some(basic) = &cfg.auth.basic {
        if basic.username.is_empty() {
            c.error(&["auth", "basic", "username"], "username must not be empty", None);
        }
    }
    if cfg.encoding == LokiEncoding::Protobuf && cfg.compression == LokiCompression::Gzip {
        c.error(
            &["compression"],
            "compression applies to encoding: json only; protobuf is always snappy",
            Some("remove compression, or set encoding: json"),
        );
    }
    check_tls(c, &cfg.tls);
    check_retry(c, &cfg.retry_on_failure);
    check_queue(c, &cfg.sending_queue);
}
