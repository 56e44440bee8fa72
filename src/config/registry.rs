//! The components built into sluice: their type names (with the Collector's
//! aliases), the signals each supports, and their typed configs.

use crate::data::Signal;
use crate::exporters::loadbalancing::config::LoadBalancingConfig;
use crate::exporters::{
    debug::config::DebugExporterConfig, file::config::FileExporterConfig, loki::config::LokiExporterConfig,
    nop::config::NopExporterConfig, otlp::config::OtlpExporterConfig, otlphttp::config::OtlpHttpExporterConfig,
    prometheus::config::PrometheusExporterConfig, prometheusremotewrite::config::PrometheusRemoteWriteConfig,
};
use crate::processors::{
    attributes::config::AttributesConfig, batch::config::BatchConfig,
    cardinality_limiter::config::CardinalityLimiterConfig, filter::config::FilterConfig,
    head_sampler::config::HeadSamplerConfig, log_rate_limiter::config::LogRateLimiterConfig,
    memory_limiter::config::MemoryLimiterConfig, probabilistic_sampler::config::ProbabilisticSamplerConfig,
    resource::config::ResourceConfig, tail_sampling::config::TailSamplingConfig,
};
use crate::queue::storage_config::FileStorageConfig;
use crate::receivers::auth::config::{BasicAuthConfig, BearerTokenAuthConfig};
use crate::receivers::filelog::config::FilelogReceiverConfig;
use crate::receivers::otlp::config::OtlpReceiverConfig;
use crate::telemetry::health_config::HealthCheckConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    Receiver,
    Processor,
    Exporter,
    Extension,
    Connector,
}

impl ComponentKind {
    /// The top-level section name (`receivers`, ...).
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receivers",
            ComponentKind::Processor => "processors",
            ComponentKind::Exporter => "exporters",
            ComponentKind::Extension => "extensions",
            ComponentKind::Connector => "connectors",
        }
    }
}

/// A built-in component type.
#[derive(Debug, Clone, Copy)]
pub struct ComponentType {
    pub kind: ComponentKind,
    /// Canonical name.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub signals: &'static [Signal],
    pub description: &'static str,
}

const ALL_SIGNALS: &[Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];

/// Every built-in component. `sluice components` prints this table.
pub const COMPONENTS: &[ComponentType] = &[
    ComponentType {
        kind: ComponentKind::Receiver,
        name: "otlp",
        aliases: &["otlp_grpc"],
        signals: ALL_SIGNALS,
        description: "OTLP over gRPC and HTTP (protobuf and JSON)",
    },
    ComponentType {
        kind: ComponentKind::Receiver,
        name: "filelog",
        aliases: &[],
        signals: &[Signal::Logs],
        description: "follows log files (Kubernetes container logs: CRI, Docker), with checkpoints in file_storage",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "batch",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "groups items into batches by size and time",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "memory_limiter",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "refuses data with retryable errors while memory is above its limit",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "head_sampler",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "keeps traces on their first span toward a traces/s goal per key, errors always",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "probabilistic_sampler",
        aliases: &[],
        signals: &[Signal::Traces, Signal::Logs],
        description: "keeps a percentage of traces or logs (hash_seed, proportional or equalizing)",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "tail_sampling",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "keeps whole traces chosen by policies once they are complete, within a memory bound",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "cardinality_limiter",
        aliases: &[],
        signals: &[Signal::Metrics],
        description: "bounds distinct series per metric, folding the excess into an overflow series",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "log_rate_limiter",
        aliases: &[],
        signals: &[Signal::Logs],
        description: "keeps at most a rate of log records per key (service, severity, body template), with summaries",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "filter",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "drops spans, span events, metric data points and log records by include/exclude match blocks",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "attributes",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "inserts, updates, deletes, hashes, extracts or converts span, log and data point attributes",
    },
    ComponentType {
        kind: ComponentKind::Processor,
        name: "resource",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "applies the attributes processor's actions to resource attributes",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "otlp",
        aliases: &["otlp_grpc"],
        signals: ALL_SIGNALS,
        description: "OTLP over gRPC (Jaeger, Tempo, another collector)",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "otlphttp",
        aliases: &["otlp_http"],
        signals: ALL_SIGNALS,
        description: "OTLP over HTTP, protobuf or JSON",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "loadbalancing",
        aliases: &["load_balancing"],
        signals: ALL_SIGNALS,
        description: "OTLP/gRPC to a set of backends by consistent hash of trace ID, service or metric name",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "loki",
        aliases: &[],
        signals: &[Signal::Logs],
        description: "Loki push API: streams by label set, snappy protobuf or JSON",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "prometheus",
        aliases: &[],
        signals: &[Signal::Metrics],
        description: "serves the latest value of each series on a /metrics page for Prometheus to scrape",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "prometheusremotewrite",
        aliases: &[],
        signals: &[Signal::Metrics],
        description: "Prometheus remote write 1.0 (Prometheus, Mimir, Cortex, VictoriaMetrics, Thanos)",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "debug",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "writes a summary or the contents of each batch to the agent's log",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "file",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "writes OTLP JSON lines to a file, rotated by size",
    },
    ComponentType {
        kind: ComponentKind::Exporter,
        name: "nop",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "accepts and discards every batch, counted as sent (to measure the agent's own cost)",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "health_check",
        aliases: &[],
        signals: &[],
        description: "liveness, readiness and startup endpoints",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "file_storage",
        aliases: &[],
        signals: &[],
        description: "a directory for persistent sending queues (sending_queue.storage)",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "bearertokenauth",
        aliases: &[],
        signals: &[],
        description: "receivers require a bearer token (auth: {authenticator: bearertokenauth})",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "basicauth",
        aliases: &[],
        signals: &[],
        description: "receivers require HTTP Basic credentials from an htpasswd table",
    },
];

/// Looks up a type by name or alias within a section.
pub fn find(kind: ComponentKind, type_name: &str) -> Option<&'static ComponentType> {
    COMPONENTS.iter().find(|c| c.kind == kind && (c.name == type_name || c.aliases.contains(&type_name)))
}

/// The names (and aliases) of every type of a section, for "did you mean" hints.
pub fn names(kind: ComponentKind) -> Vec<&'static str> {
    COMPONENTS
        .iter()
        .filter(|c| c.kind == kind)
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverConfig {
    Otlp(Box<OtlpReceiverConfig>),
    Filelog(Box<FilelogReceiverConfig>),
}

/// What a component uses an extension it names for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionUse {
    Authenticator,
    Storage,
}

/// A receiver's reference to an extension: the fields under the receiver
/// that name it, its ID, and what for.
pub type ExtensionReference<'a> = (&'static [&'static str], &'a str, ExtensionUse);

impl ReceiverConfig {
    /// The extensions this receiver names (authenticators, checkpoint storage).
    pub fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        match self {
            ReceiverConfig::Otlp(c) => {
                const GRPC: &[&str] = &["protocols", "grpc", "auth", "authenticator"];
                const HTTP: &[&str] = &["protocols", "http", "auth", "authenticator"];
                let grpc = c.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref()).map(|a| (GRPC, a));
                let http = c.protocols.http.as_ref().and_then(|h| h.auth.as_ref()).map(|a| (HTTP, a));
                grpc.into_iter()
                    .chain(http)
                    .map(|(fields, a)| (fields, a.authenticator.as_str(), ExtensionUse::Authenticator))
                    .collect()
            }
            ReceiverConfig::Filelog(c) => {
                c.storage.as_deref().map(|s| (&["storage"][..], s, ExtensionUse::Storage)).into_iter().collect()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorConfig {
    Batch(BatchConfig),
    MemoryLimiter(MemoryLimiterConfig),
    HeadSampler(HeadSamplerConfig),
    ProbabilisticSampler(ProbabilisticSamplerConfig),
    TailSampling(TailSamplingConfig),
    CardinalityLimiter(CardinalityLimiterConfig),
    LogRateLimiter(LogRateLimiterConfig),
    Filter(FilterConfig),
    Attributes(AttributesConfig),
    Resource(ResourceConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExporterConfig {
    Otlp(OtlpExporterConfig),
    OtlpHttp(OtlpHttpExporterConfig),
    Loki(LokiExporterConfig),
    LoadBalancing(LoadBalancingConfig),
    PrometheusRemoteWrite(PrometheusRemoteWriteConfig),
    Prometheus(PrometheusExporterConfig),
    Debug(DebugExporterConfig),
    File(FileExporterConfig),
    Nop(NopExporterConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionConfig {
    HealthCheck(HealthCheckConfig),
    FileStorage(FileStorageConfig),
    BearerTokenAuth(BearerTokenAuthConfig),
    BasicAuth(BasicAuthConfig),
}
