//! The agent's whole configuration: the components of a Collector config,
//! compiled by their factories (see `crate::components`), and the `service`
//! section that wires them into pipelines.
//!
//! Guarantees: a config that loads is complete and consistent (every
//! referenced component is defined, every component supports the signal of
//! each pipeline it is in, every component's own settings are valid and
//! compiled), so the agent can build it without further checks. A config
//! that does not load is reported with *all* its problems, each with its YAML
//! path (`exporters::otlp/tempo::retry_on_failure::max_interval`), its line
//! and a hint.

pub mod load;

use crate::config::{ComponentId, ConfigError, ConfigErrors, PipelineId};
use crate::exporters::ExporterSpec;
use crate::extensions::ExtensionSpec;
use crate::processors::ProcessorSpec;
use crate::receivers::ReceiverSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The config compiled into the binary, used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.yaml");

/// A whole, validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub receivers: BTreeMap<ComponentId, Arc<dyn ReceiverSpec>>,
    pub processors: BTreeMap<ComponentId, Arc<dyn ProcessorSpec>>,
    pub exporters: BTreeMap<ComponentId, Arc<dyn ExporterSpec>>,
    pub extensions: BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
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
    /// Batches the pipeline's input channel holds before receivers refuse. Default 256.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// Threads running the processor chain. Default: the CPUs the agent may
    /// use (its CPU affinity and cgroup CPU quota, as the OS reports them).
    #[serde(default = "default_workers")]
    pub workers: usize,
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

/// Reads, expands and validates a config. `env` looks up environment variables
/// (`std::env::var` in the agent; a map in tests).
pub fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, ConfigErrors> {
    load::load_agent_config(text, env)
}

/// Reads a config file from disk, expanding the process environment.
pub fn load_file(path: &std::path::Path) -> Result<AgentConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors::single(ConfigError::io(path, e)))?;
    load(&text, &|k| std::env::var(k).ok())
}
