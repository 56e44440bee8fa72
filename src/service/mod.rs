//! The agent's whole configuration: the components of a Collector config,
//! compiled by their factories (see `crate::components`), and the `service`
//! section that wires them into pipelines.
//!
//! Guarantees: a config that loads is complete and consistent (every
//! referenced component is defined, every component supports the signal of
//! each pipeline it is in, every component's own settings are valid and
//! compiled, every connector joins pipelines of signals it connects and no
//! connectors make a cycle), so the agent can build it without further checks. A config
//! that does not load is reported with *all* its problems, each with its YAML
//! path (`exporters::otlp/tempo::retry_on_failure::max_interval`), its line
//! and a hint.

pub mod catalog;
pub mod load;

use crate::config::{ComponentId, ConfigError, ConfigErrors, PipelineId};
use crate::connectors::ConnectorSpec;
use crate::exporters::ExporterSpec;
use crate::extensions::ExtensionSpec;
use crate::processors::ProcessorSpec;
use crate::receivers::ReceiverSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The config compiled into the binary, used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.yaml");

/// A whole, validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub receivers: BTreeMap<ComponentId, Arc<dyn ReceiverSpec>>,
    pub processors: BTreeMap<ComponentId, Arc<dyn ProcessorSpec>>,
    pub exporters: BTreeMap<ComponentId, Arc<dyn ExporterSpec>>,
    pub extensions: BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
    /// Connectors: each is listed among the exporters of some pipelines and
    /// the receivers of others (checked: both sides, signal pairs, no cycle).
    pub connectors: BTreeMap<ComponentId, Arc<dyn ConnectorSpec>>,
    pub service: ServiceConfig,
}

#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub receivers: Vec<String>,
    #[serde(default)]
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
    /// What the pipeline's input channel holds before receivers refuse: a
    /// count of batches (`256`, at most 1000000) or a size in bytes (`64MiB`,
    /// at most 64GiB). Default: 64MiB, or half the spike limit of the
    /// pipeline's `memory_limiter` when that is less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_capacity: Option<ChannelCapacity>,
    /// Threads running the processor chain. Default: the CPUs the agent may
    /// use (its CPU affinity and cgroup CPU quota, as the OS reports them).
    /// At most [`MAX_WORKERS`].
    #[serde(default = "default_workers", deserialize_with = "workers")]
    pub workers: usize,
}

/// Most batches a pipeline's input channel may hold: each slot can hold a
/// batch in memory, and the slots are allocated at start.
pub const MAX_CHANNEL_CAPACITY: usize = 1_000_000;
/// Most bytes a pipeline's input channel may be given.
pub const MAX_CHANNEL_BYTES: u64 = 64 << 30;
/// The channel's byte bound when neither the config nor a memory limiter says less.
pub const DEFAULT_CHANNEL_BYTES: u64 = 64 << 20;

/// `service.pipelines.<id>.channel_capacity`: a count of batches, as
/// before sizes were accepted, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelCapacity {
    /// At most this many batches wait, whatever their size.
    Batches(usize),
    /// Batches wait while the bytes they hold (decoded size, or encoded
    /// length for batches kept encoded) stay within this bound.
    Bytes(u64),
}

impl ChannelCapacity {
    /// The capacity a pipeline gets when the config leaves it out:
    /// [`DEFAULT_CHANNEL_BYTES`], or half the spike limit (hard minus soft)
    /// of the smallest `memory_limiter` of `limits` when that is less, so
    /// what waits for the workers fits in the room the limiter keeps for
    /// what arrives between two readings.
    pub fn default_for(limits: impl IntoIterator<Item = crate::processors::memory_limiter::MemoryLimits>) -> Self {
        let spike = limits.into_iter().map(|l| l.hard.saturating_sub(l.soft)).min();
        ChannelCapacity::Bytes(spike.map_or(DEFAULT_CHANNEL_BYTES, |s| (s / 2).clamp(1, DEFAULT_CHANNEL_BYTES)))
    }

    /// The capacity pipeline `p` of `config` runs with: its
    /// `channel_capacity` (a count of at least 1), or [`Self::default_for`]
    /// the memory limiters among its processors.
    pub fn of(config: &AgentConfig, p: &PipelineConfig) -> Self {
        match p.channel_capacity {
            Some(ChannelCapacity::Batches(n)) => ChannelCapacity::Batches(n.max(1)),
            Some(bytes) => bytes,
            None => ChannelCapacity::default_for(
                p.processors
                    .iter()
                    .filter_map(|s| ComponentId::parse(s).ok())
                    .filter_map(|id| Some(config.processors.get(&id)?.admission()?.limits)),
            ),
        }
    }
}

impl std::fmt::Display for ChannelCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelCapacity::Batches(n) => write!(f, "{n} batches"),
            ChannelCapacity::Bytes(b) => f.write_str(&crate::config::size::format_byte_size(*b)),
        }
    }
}

impl Serialize for ChannelCapacity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChannelCapacity::Batches(n) => s.serialize_u64(*n as u64),
            ChannelCapacity::Bytes(b) => s.serialize_str(&crate::config::size::format_byte_size(*b)),
        }
    }
}

impl JsonSchema for ChannelCapacity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ChannelCapacity".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["integer", "string"], "format": "count-or-byte-size"})
    }
}

impl<'de> Deserialize<'de> for ChannelCapacity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ChannelCapacity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a count of batches (e.g. 256) or a size in bytes (e.g. 64MiB)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ChannelCapacity, E> {
                match usize::try_from(v) {
                    Ok(n) if n <= MAX_CHANNEL_CAPACITY => Ok(ChannelCapacity::Batches(n)),
                    _ => Err(E::custom(format!(
                        "{v} is above the bound of {MAX_CHANNEL_CAPACITY} batches; each slot can hold a batch in \
                         memory: write a size instead, e.g. 64MiB (the default)"
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ChannelCapacity, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => {
                        Err(E::custom(format!("{v} is negative; write a count (e.g. 256) or a size (e.g. 64MiB)")))
                    }
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChannelCapacity, E> {
                let hint = "write a count of batches (e.g. 256) or a size such as 64MiB or 512KiB";
                if !v.is_empty() && v.trim().bytes().all(|b| b.is_ascii_digit()) {
                    return v
                        .trim()
                        .parse::<u64>()
                        .map_err(|e| E::custom(format!("{v:?}: {e}; {hint}")))
                        .and_then(|n| self.visit_u64(n));
                }
                let bytes = crate::config::size::parse_byte_size(v).map_err(|e| E::custom(format!("{e}; {hint}")))?;
                if bytes == 0 {
                    return Err(E::custom(format!("{v:?} is zero bytes; {hint}")));
                }
                if bytes > MAX_CHANNEL_BYTES {
                    return Err(E::custom(format!(
                        "{v} is above the bound of 64GiB; the channel holds this much in memory (the default is 64MiB)"
                    )));
                }
                Ok(ChannelCapacity::Bytes(bytes))
            }
        }
        d.deserialize_any(V)
    }
}
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
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
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

fn workers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    at_most(d, MAX_WORKERS, "leave it out for one worker per CPU the agent may use")
}

/// One worker per CPU the agent may run on: more only switch between
/// threads on the same core (and split every request to shard by key);
/// fewer leave cores idle.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `service.telemetry`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub metrics: MetricsTelemetryConfig,
    pub logs: LogsTelemetryConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetryConfig {
    /// host:port of the Prometheus `/metrics` endpoint. Default 127.0.0.1:8888;
    /// an empty string turns it off. The Collector's older spelling; see `readers`.
    pub address: String,
    /// `none` turns the endpoint off; other levels are accepted for compatibility.
    pub level: MetricsLevel,
    /// The Collector's current form: `- pull: {exporter: {prometheus: {host, port}}}`.
    /// sluice serves one Prometheus endpoint; a pull reader sets where.
    pub readers: Vec<MetricReader>,
}

impl Default for MetricsTelemetryConfig {
    fn default() -> Self {
        MetricsTelemetryConfig { address: "127.0.0.1:8888".into(), level: MetricsLevel::Normal, readers: Vec::new() }
    }
}

impl MetricsTelemetryConfig {
    /// Where `/metrics` is served: the pull reader's host and port when one is
    /// configured, else `address`.
    pub fn endpoint(&self) -> String {
        match self.readers.iter().find_map(|r| r.pull.as_ref()) {
            Some(pull) => {
                let p = &pull.exporter.prometheus;
                let host = p.host.as_deref().unwrap_or("127.0.0.1");
                if host.contains(':') {
                    format!("[{host}]:{}", p.port)
                } else {
                    format!("{host}:{}", p.port)
                }
            }
            None => self.address.clone(),
        }
    }
}

/// One entry of `service.telemetry.metrics.readers`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricReader {
    #[serde(default)]
    pub pull: Option<PullReader>,
    /// Pushing the agent's own metrics (OTLP or console) on a period.
    #[serde(default)]
    pub periodic: Option<crate::config::component::CollectorOnly>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullReader {
    pub exporter: PullExporter,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullExporter {
    pub prometheus: PrometheusPull,
}

/// The Collector's `prometheus` pull exporter of its own metrics.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusPull {
    /// Default `127.0.0.1` (the Collector's `localhost`).
    #[serde(default)]
    pub host: Option<String>,
    pub port: u16,
    /// Accepted as the Collector's; sluice's names are fixed.
    #[serde(default)]
    pub without_units: Option<bool>,
    #[serde(default)]
    pub without_type_suffix: Option<bool>,
    #[serde(default)]
    pub without_scope_info: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetryConfig {
    pub level: LogLevel,
    /// `console` (text, default) or `json`.
    pub encoding: LogEncoding,
    /// sluice: while an exporter keeps failing, how often it says so again
    /// (with the count and the last error). Default 30s.
    pub failure_summary_interval: crate::config::Duration,
}

impl Default for LogsTelemetryConfig {
    fn default() -> Self {
        LogsTelemetryConfig {
            level: LogLevel::Info,
            encoding: LogEncoding::Console,
            failure_summary_interval: crate::config::Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
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
    load_sources(&ConfigSources { configs: vec![path.display().to_string()], sets: Vec::new() })
}

/// Where a config comes from, as the Collector's command line gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSources {
    /// `--config` values in order: a path, `file:PATH`, or `yaml:INLINE`
    /// (e.g. `yaml:exporters::debug::verbosity: detailed`). Later ones are
    /// merged over earlier ones: mappings are merged key by key, lists and
    /// scalars replaced.
    pub configs: Vec<String>,
    /// `--set` values, `key::path=value` (the value is YAML), applied last.
    pub sets: Vec<String>,
}

impl ConfigSources {
    /// The files these sources read (what `--watch-config` watches).
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        self.configs
            .iter()
            .filter(|c| !c.starts_with("yaml:"))
            .map(|c| c.strip_prefix("file:").unwrap_or(c).into())
            .collect()
    }

    /// Errors of the merged tree with their lines turned back into a line
    /// of the `--config` source they are in, which the error then names.
    pub fn locate(&self, mut errors: ConfigErrors) -> ConfigErrors {
        if self.configs.len() < 2 {
            return errors;
        }
        for e in &mut errors.0 {
            let Some(line) = e.line else { continue };
            let index = line >> SOURCE_SHIFT;
            if index == 0 {
                continue;
            }
            let source = self.configs.get(index - 1).map(|c| c.strip_prefix("file:").unwrap_or(c));
            // An inline `yaml:` source's lines are those of the text it was
            // turned into: the source alone says where.
            e.line = match source {
                Some(s) if s.starts_with("yaml:") => None,
                _ => Some(line & ((1usize << SOURCE_SHIFT) - 1)),
            };
            e.source = source.map(str::to_string);
        }
        errors
    }

    /// How log lines and errors name these sources.
    pub fn describe(&self) -> String {
        if self.configs.is_empty() {
            return "embedded default config".to_string();
        }
        self.configs.join(" + ")
    }
}

/// Most bytes one config source may hold: configs are kilobytes.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads, merges, expands and validates the sources with the process
/// environment; with no `--config` the embedded default config is the base.
pub fn load_sources(sources: &ConfigSources) -> Result<AgentConfig, ConfigErrors> {
    let root = read_sources(sources)?;
    load::load_node(root, &|k| std::env::var(k).ok(), crate::telemetry::process::total_memory_bytes())
        .map_err(|e| sources.locate(e))
}

/// With several `--config` sources, each one's lines are numbered from
/// `(index + 1) << SOURCE_SHIFT` in the merged tree, so an error's line
/// tells which source it is in ([`ConfigSources::locate`]).
const SOURCE_SHIFT: u32 = 32;

fn shift_lines(node: &mut crate::config::node::Node, offset: usize) {
    use crate::config::node::Value;
    node.line += offset;
    match &mut node.value {
        Value::Map(entries) => {
            for e in entries {
                e.key_line += offset;
                shift_lines(&mut e.value, offset);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| shift_lines(n, offset)),
        Value::Scalar(..) => {}
    }
}

/// The sources read and merged into one tree, before expansion.
pub fn read_sources(sources: &ConfigSources) -> Result<crate::config::node::Node, ConfigErrors> {
    use crate::config::node::{self, Node, Value};
    let empty = || Node { line: 1, value: Value::Map(Vec::new()) };
    let parse = |text: &str, name: &str| -> Result<Node, ConfigErrors> {
        match node::parse(text) {
            Ok(n) => Ok(n.unwrap_or_else(empty)),
            Err(mut e) if sources.configs.len() > 1 => {
                e.source = Some(name.strip_prefix("file:").unwrap_or(name).to_string());
                Err(ConfigErrors::single(e))
            }
            Err(e) => Err(ConfigErrors::single(e)),
        }
    };
    let mut root = if sources.configs.is_empty() { parse(DEFAULT_CONFIG, "embedded default config")? } else { empty() };
    for (index, source) in sources.configs.iter().enumerate() {
        let mut over = match source.strip_prefix("yaml:") {
            Some(inline) => parse(&inline_yaml(inline), source)?,
            None => {
                let path = std::path::Path::new(source.strip_prefix("file:").unwrap_or(source));
                let io = |e: std::io::Error| ConfigErrors::single(ConfigError::io(path, e));
                let len = std::fs::metadata(path).map_err(io)?.len();
                if len > MAX_CONFIG_BYTES {
                    let msg =
                        format!("{} is {len} bytes; a config file may have at most {MAX_CONFIG_BYTES}", path.display());
                    return Err(ConfigErrors::single(ConfigError::new("", None, msg)));
                }
                parse(&std::fs::read_to_string(path).map_err(io)?, source)?
            }
        };
        if sources.configs.len() > 1 {
            shift_lines(&mut over, (index + 1) << SOURCE_SHIFT);
        }
        merge(&mut root, over);
    }
    for set in &sources.sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(ConfigErrors::single(
                ConfigError::new("", None, format!("--set {set:?} has no '='"))
                    .with_hint("write --set processors::batch::timeout=2s"),
            ));
        };
        let keys: Vec<&str> = if key.contains("::") { key.split("::").collect() } else { key.split('.').collect() };
        if keys.iter().any(|k| k.trim().is_empty()) {
            return Err(ConfigErrors::single(
                ConfigError::new("", None, format!("--set {set:?} has an empty key"))
                    .with_hint("write --set processors::batch::timeout=2s"),
            ));
        }
        let mut value = parse(value, "--set")?;
        if value.is_null() && !matches!(value.value, Value::Scalar(..)) {
            value = empty();
        }
        let over = keys.iter().rev().fold(value, |inner, k| Node {
            line: 0,
            value: Value::Map(vec![node::Entry { key: k.trim().to_string(), key_line: 0, value: inner }]),
        });
        merge(&mut root, over);
    }
    Ok(root)
}

/// `yaml:a::b: v` is the Collector's inline form of `a: {b: v}`.
fn inline_yaml(inline: &str) -> String {
    match inline.split_once(": ") {
        Some((path, value)) if path.contains("::") => {
            let keys: Vec<&str> = path.split("::").collect();
            let mut text = String::new();
            for (depth, k) in keys.iter().enumerate() {
                text.push_str(&"  ".repeat(depth));
                text.push_str(k);
                text.push(':');
                if depth + 1 < keys.len() {
                    text.push('\n');
                }
            }
            format!("{text} {value}\n")
        }
        _ => inline.to_string(),
    }
}

/// Merges `over` into `base` as the Collector merges configs: mappings key
/// by key (recursively), anything else replaced.
pub fn merge(base: &mut crate::config::node::Node, over: crate::config::node::Node) {
    use crate::config::node::Value;
    match (&mut base.value, over.value) {
        (Value::Map(base_entries), Value::Map(over_entries)) => {
            for e in over_entries {
                match base_entries.iter_mut().find(|b| b.key == e.key) {
                    Some(b) => merge(&mut b.value, e.value),
                    None => base_entries.push(e),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.line = over.line;
        }
    }
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
        assert_eq!((p.channel_capacity, p.workers), (Some(ChannelCapacity::Batches(1_000_000)), 1024));
        for (fields, path, needle) in [
            (
                "      channel_capacity: 1000000000\n",
                "service::pipelines::traces::channel_capacity",
                "bound of 1000000 batches",
            ),
            ("      channel_capacity: 65GiB\n", "service::pipelines::traces::channel_capacity", "bound of 64GiB"),
            ("      channel_capacity: 0MiB\n", "service::pipelines::traces::channel_capacity", "zero bytes"),
            ("      channel_capacity: 64 parsecs\n", "service::pipelines::traces::channel_capacity", "unknown unit"),
            ("      channel_capacity: -3\n", "service::pipelines::traces::channel_capacity", "negative"),
            ("      workers: 100000\n", "service::pipelines::traces::workers", "bound of 1024"),
        ] {
            let errs = load(&with(fields), &|_| None).unwrap_err();
            let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
            assert!(e.to_string().contains(needle), "{e}");
            assert_eq!(e.line, Some(12), "{e}");
        }
        let errs = load(&with("      channel_capacity: lots\n"), &|_| None).unwrap_err();
        assert!(errs.to_string().contains("e.g. 256") && errs.to_string().contains("64MiB"), "a hint: {errs}");
    }

    #[test]
    fn channel_capacity_reads_counts_and_sizes() {
        for (text, expected) in [
            ("256", ChannelCapacity::Batches(256)),
            ("\"256\"", ChannelCapacity::Batches(256)),
            ("64MiB", ChannelCapacity::Bytes(64 << 20)),
            ("512KiB", ChannelCapacity::Bytes(512 << 10)),
            ("1.5GiB", ChannelCapacity::Bytes(3 << 29)),
            ("100000b", ChannelCapacity::Bytes(100_000)),
        ] {
            let cfg = load(&with(&format!("      channel_capacity: {text}\n")), &|_| None).unwrap();
            assert_eq!(cfg.service.pipelines.values().next().unwrap().channel_capacity, Some(expected), "{text}");
        }
        // Written back as read: a count as a number, a size in its largest exact unit.
        assert_eq!(serde_json::to_string(&ChannelCapacity::Bytes(64 << 20)).unwrap(), "\"64MiB\"");
        assert_eq!(serde_json::to_string(&ChannelCapacity::Batches(256)).unwrap(), "256");
    }

    /// Left out, the channel holds 64 MiB, or half the spike limit of the
    /// pipeline's memory_limiter (hard limit minus soft limit) when less.
    #[test]
    fn the_default_channel_bound_fits_the_memory_limiters_spike_room() {
        use crate::processors::memory_limiter::MemoryLimits;
        const MIB: u64 = 1 << 20;
        assert_eq!(ChannelCapacity::default_for([]), ChannelCapacity::Bytes(64 * MIB));
        // limit_mib 1024, spike_limit_mib 256: half of 256 is over 64.
        let big = MemoryLimits { hard: 1024 * MIB, soft: 768 * MIB };
        assert_eq!(ChannelCapacity::default_for([big]), ChannelCapacity::Bytes(64 * MIB));
        // limit_mib 64, spike 20 % (12.8 MiB): 6.4 MiB.
        let small = MemoryLimits { hard: 64 * MIB, soft: 64 * MIB - 64 * MIB / 5 };
        assert_eq!(ChannelCapacity::default_for([big, small]), ChannelCapacity::Bytes(64 * MIB / 5 / 2));
    }
}
