//! The OpenTelemetry Collector's YAML configuration, read into typed structs.
//!
//! Guarantees: a config that loads is complete and consistent (every
//! referenced component is defined, every component supports the signal of
//! each pipeline it is in, every component's own settings are valid), so the
//! agent can build it without further checks. A config that does not load is
//! reported with *all* its problems, each with its YAML path
//! (`exporters::otlp/tempo::retry_on_failure::max_interval`), its line and a
//! hint.

pub mod component;
pub mod de;
pub mod duration;
pub mod error;
pub mod expand;
pub mod node;
pub mod registry;
pub mod suggest;
pub mod yaml;

pub use component::ComponentKind;
pub use duration::Duration;
pub use error::{ConfigError, ConfigErrors};
pub use registry::{ExtensionConfig, ReceiverConfig};

use crate::data::Signal;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

/// The config compiled into the binary, used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.yaml");

/// `type[/name]`, e.g. `otlp` or `otlp/tempo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        if kind.is_empty() {
            return Err(format!("invalid component id \"{s}\": the type before '/' is empty"));
        }
        if let Some(n) = name {
            if n.is_empty() {
                return Err(format!("invalid component id \"{s}\": the name after '/' is empty"));
            }
        }
        let ok = |p: &str| p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok(kind) {
            return Err(format!(
                "invalid component id \"{s}\": the type may hold only letters, digits, '_', '-' and '.'"
            ));
        }
        Ok(ComponentId { kind: kind.to_string(), name: name.map(str::to_string) })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// `traces|metrics|logs[/name]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => write!(f, "{}", self.signal),
        }
    }
}

/// A whole, validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub receivers: BTreeMap<ComponentId, ReceiverConfig>,
    pub processors: BTreeMap<ComponentId, std::sync::Arc<dyn crate::processors::ProcessorSpec>>,
    pub exporters: BTreeMap<ComponentId, std::sync::Arc<dyn crate::exporters::ExporterSpec>>,
    pub extensions: BTreeMap<ComponentId, ExtensionConfig>,
    pub service: ServiceConfig,
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Extensions to start, in order (IDs defined under `extensions`).
    pub extensions: Vec<ComponentId>,
    pub pipelines: BTreeMap<PipelineId, PipelineConfig>,
    pub telemetry: TelemetryConfig,
    /// How long shutdown waits for processors and queues to drain. Default 10s.
    pub shutdown_timeout: std::time::Duration,
}

/// `service.pipelines.<id>`. Besides the Collector's three lists, sluice reads
/// the capacity of the pipeline's input channel and its worker count.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub receivers: Vec<String>,
    #[serde(default)]
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
    /// Batches the pipeline's input channel holds before receivers refuse.
    /// Default 256, at most [`MAX_CHANNEL_CAPACITY`].
    #[serde(default = "default_channel_capacity", deserialize_with = "channel_capacity")]
    pub channel_capacity: usize,
    /// Threads running the processor chain. Default: the CPUs the agent may
    /// use (its CPU affinity and cgroup CPU quota, as the OS reports them).
    /// At most [`MAX_WORKERS`].
    #[serde(default = "default_workers", deserialize_with = "workers")]
    pub workers: usize,
}

/// Most batches a pipeline's input channel may hold: each slot can hold a
/// batch in memory, and the slots are allocated at start.
pub const MAX_CHANNEL_CAPACITY: usize = 1_000_000;
/// Most worker threads of one pipeline.
pub const MAX_WORKERS: usize = 1024;

/// A `usize` of at most `max`; the error is raised while the field's node is
/// read, so it carries the field's path and line.
fn at_most<'de, D: serde::Deserializer<'de>>(d: D, max: usize, hint: &'static str) -> Result<usize, D::Error> {
    struct AtMost {
        max: usize,
        hint: &'static str,
    }
    impl serde::de::Visitor<'_> for AtMost {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a whole number from 0 to {}", self.max)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<usize, E> {
            match usize::try_from(v) {
                Ok(v) if v <= self.max => Ok(v),
                _ => Err(E::custom(format!("{v} is above the bound of {}; {}", self.max, self.hint))),
            }
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<usize, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
            }
        }
    }
    d.deserialize_u64(AtMost { max, hint })
}

fn channel_capacity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    at_most(d, MAX_CHANNEL_CAPACITY, "each slot can hold a batch in memory: the default is 256")
}

fn workers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    at_most(d, MAX_WORKERS, "leave it out for one worker per CPU the agent may use")
}

fn default_channel_capacity() -> usize {
    256
}
/// One worker per CPU the agent may run on: more only switch between
/// threads on the same core (and split every request to shard by key);
/// fewer leave cores idle.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `service.telemetry`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub metrics: MetricsTelemetryConfig,
    pub logs: LogsTelemetryConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetryConfig {
    /// host:port of the Prometheus `/metrics` endpoint. Default 127.0.0.1:8888;
    /// an empty string turns it off.
    pub address: String,
    /// `none` turns the endpoint off; other levels are accepted for compatibility.
    pub level: MetricsLevel,
}

impl Default for MetricsTelemetryConfig {
    fn default() -> Self {
        MetricsTelemetryConfig { address: "127.0.0.1:8888".into(), level: MetricsLevel::Normal }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetryConfig {
    pub level: LogLevel,
    /// `console` (text, default) or `json`.
    pub encoding: LogEncoding,
}

impl Default for LogsTelemetryConfig {
    fn default() -> Self {
        LogsTelemetryConfig { level: LogLevel::Info, encoding: LogEncoding::Console }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    #[default]
    Console,
    Json,
}

/// Lets `grpc:` with an empty body mean "enabled with defaults", as the Collector does.
pub fn null_as_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let v: Option<T> = Option::deserialize(d)?;
    Ok(Some(v.unwrap_or_default()))
}

/// Reads, expands and validates a config. `env` looks up environment variables
/// (`std::env::var` in the agent; a map in tests).
pub fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, ConfigErrors> {
    yaml::load_agent_config(text, env)
}

/// Reads a config file from disk, expanding the process environment.
pub fn load_file(path: &std::path::Path) -> Result<AgentConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors::single(ConfigError::io(path, e)))?;
    load(&text, &|k| std::env::var(k).ok())
}

#[cfg(test)]
mod pipeline_bounds_tests {
    use super::*;

    fn with(fields: &str) -> String {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\nservice:\n  pipelines:\n    \
             traces:\n      receivers: [otlp]\n      exporters: [debug]\n{fields}"
        )
    }

    #[test]
    fn channel_capacity_and_workers_are_bounded_with_path_and_line() {
        let ok = load(&with("      channel_capacity: 1000000\n      workers: 1024\n"), &|_| None).unwrap();
        let p = ok.service.pipelines.values().next().unwrap();
        assert_eq!((p.channel_capacity, p.workers), (1_000_000, 1024));
        for (fields, path, needle) in [
            (
                "      channel_capacity: 1000000000\n",
                "service::pipelines::traces::channel_capacity",
                "bound of 1000000",
            ),
            ("      workers: 100000\n", "service::pipelines::traces::workers", "bound of 1024"),
        ] {
            let errs = load(&with(fields), &|_| None).unwrap_err();
            let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
            assert!(e.to_string().contains(needle), "{e}");
            assert_eq!(e.line, Some(12), "{e}");
        }
    }
}
