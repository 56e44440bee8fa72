//! Configuration of the `loadbalancing` exporter, field for field the
//! Collector's: `routing_key`, `protocol.otlp` (the `otlp` exporter's settings;
//! its `endpoint` is filled per backend), exactly one of
//! `resolver.static` / `resolver.dns`, and the exporter-level `timeout`,
//! `sending_queue` and `retry_on_failure` of current Collectors.

use crate::config::component::Checker;
use crate::config::expand::join;
use crate::config::node::{Entry, Node, Style, Value};
use crate::config::Duration;
use crate::data::Signal;
use crate::exporters::otlp::config::OtlpExporterConfig;
use crate::exporters::otlp_common::{
    check_compression, check_queue, check_retry, check_tls, RetryConfig, SendingQueueConfig, Transport,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The port a backend gets when its hostname names none, as in the Collector.
pub const DEFAULT_PORT: u16 = 4317;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancingConfig {
    /// `traceID`, `service` or `metric`; unset means `traceID` for traces and
    /// logs, `service` for metrics. Kept as text so that validation can name
    /// the accepted values in its hint.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// How each backend is reached.
    pub protocol: ProtocolConfig,
    /// Where the list of backends comes from: `static` or `dns`.
    pub resolver: ResolverConfig,
    /// Not implemented (yet): routing by chosen attributes.
    #[serde(default)]
    pub routing_attributes: Option<crate::config::component::CollectorOnly>,
    /// Deadline of each backend's export call; when set, it replaces
    /// `protocol.otlp.timeout`.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// The exporter's queue (current Collectors' place for it). sluice keeps
    /// one queue for the whole exporter either way, so this is the same
    /// queue as `protocol.otlp.sending_queue`: set it in one place only.
    #[serde(default)]
    pub sending_queue: Option<SendingQueueConfig>,
    /// The exporter's retries, as `sending_queue`: one place only.
    #[serde(default)]
    pub retry_on_failure: Option<RetryConfig>,
}

impl LoadBalancingConfig {
    /// The settings every backend's client and the exporter's queue use:
    /// `protocol.otlp`, with the exporter-level `timeout`, `sending_queue`
    /// and `retry_on_failure` in place of its own where they are set.
    pub fn backend_settings(&self) -> OtlpExporterConfig {
        let mut otlp = self.protocol.otlp.clone();
        if let Some(t) = self.timeout {
            otlp.timeout = t;
        }
        if let Some(q) = &self.sending_queue {
            otlp.sending_queue = q.clone();
        }
        if let Some(r) = &self.retry_on_failure {
            otlp.retry_on_failure = r.clone();
        }
        otlp
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Settings of every backend's OTLP/gRPC client. `sending_queue` and
    /// `retry_on_failure` apply to the exporter as a whole: a batch waits in
    /// one queue and is retried as one, whichever backends its parts go to.
    pub otlp: OtlpExporterConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    /// A fixed list of backends.
    #[serde(default, rename = "static")]
    pub static_: Option<StaticResolverConfig>,
    /// Backends from a DNS name's A/AAAA records, re-resolved every `interval`.
    #[serde(default)]
    pub dns: Option<DnsResolverConfig>,
    /// The Collector's other resolvers, accepted by the parser only so that
    /// validation can say they are not supported here.
    #[serde(default, skip_serializing)]
    #[schemars(with = "Option<crate::config::component::CollectorOnly>")]
    pub k8s: Option<serde::de::IgnoredAny>,
    /// The Collector's AWS Cloud Map resolver: not supported.
    #[serde(default, skip_serializing)]
    #[schemars(with = "Option<crate::config::component::CollectorOnly>")]
    pub aws_cloud_map: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticResolverConfig {
    /// `host[:port]`, port 4317 when absent.
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnsResolverConfig {
    /// Name to resolve.
    pub hostname: String,
    /// Port of every resolved address.
    #[serde(default = "default_port")]
    pub port: u16,
    /// How often the name is looked up again. Default 5s.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Deadline of one lookup. Default 1s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

/// What decides the backend of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingKey {
    /// The trace ID: all spans (and logs) of a trace go to one backend; a
    /// log record without a trace ID goes to a random one.
    TraceId,
    /// The resource's `service.name`.
    Service,
    /// The metric's name.
    Metric,
}

/// The routing keys, as written in YAML, with the signals each applies to.
pub const ROUTING_KEYS: &[(&str, RoutingKey, &[Signal])] = &[
    ("traceID", RoutingKey::TraceId, &[Signal::Traces, Signal::Logs]),
    ("service", RoutingKey::Service, &[Signal::Traces, Signal::Logs, Signal::Metrics]),
    ("metric", RoutingKey::Metric, &[Signal::Metrics]),
];

impl LoadBalancingConfig {
    /// The routing key for `signal`, or why it does not apply.
    pub fn routing_key_for(&self, signal: Signal) -> Result<RoutingKey, String> {
        let Some(name) = &self.routing_key else {
            return Ok(match signal {
                Signal::Traces | Signal::Logs => RoutingKey::TraceId,
                Signal::Metrics => RoutingKey::Service,
            });
        };
        let Some((_, key, signals)) = ROUTING_KEYS.iter().find(|(n, _, _)| n == name) else {
            return Err(format!("unknown routing_key \"{name}\""));
        };
        if !signals.contains(&signal) {
            return Err(format!("routing_key \"{name}\" does not apply to {signal}"));
        }
        Ok(*key)
    }
}

/// The backends a `host[:port]` list names, as `host:port` endpoints.
pub fn static_endpoint(hostname: &str) -> Result<String, String> {
    let h = hostname.trim();
    if h.is_empty() {
        return Err("a hostname is empty".into());
    }
    if h.contains("://") || h.contains('/') {
        return Err(format!("\"{h}\" is not host[:port]"));
    }
    // A bracketed IPv6 address may carry a port after the bracket; a bare
    // one (several colons) carries none.
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(|| format!("\"{h}\": unclosed ["))?;
        (format!("[{addr}]"), after.strip_prefix(':'))
    } else if h.matches(':').count() > 1 {
        (format!("[{h}]"), None)
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (h.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("\"{h}\" has no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("\"{h}\": port \"{p}\" is not a number from 0 to 65535"))?,
        None => DEFAULT_PORT,
    };
    Ok(format!("{host}:{port}"))
}

/// The component's YAML body with an empty `protocol.otlp.endpoint` added
/// where none is written, so that the `otlp` exporter's own config type
/// (where `endpoint` is required) reads `protocol.otlp`; the endpoint is
/// replaced per backend anyway.
pub fn with_endpoint_placeholder(node: &Node) -> Node {
    let mut node = node.clone();
    if node.is_null() {
        node.value = Value::Map(Vec::new());
    }
    let line = node.line;
    let Value::Map(entries) = &mut node.value else { return node };
    let protocol = entry_mut(entries, "protocol", line);
    if protocol.is_null() {
        protocol.value = Value::Map(Vec::new());
    }
    let pline = protocol.line;
    let Value::Map(pentries) = &mut protocol.value else { return node };
    let otlp = entry_mut(pentries, "otlp", pline);
    if otlp.is_null() {
        otlp.value = Value::Map(Vec::new());
    }
    let oline = otlp.line;
    if let Value::Map(oentries) = &mut otlp.value {
        if !oentries.iter().any(|e| e.key == "endpoint") {
            oentries.push(Entry {
                key: "endpoint".into(),
                key_line: oline,
                value: Node { line: oline, value: Value::Scalar(String::new(), Style::Quoted) },
            });
        }
    }
    node
}

fn entry_mut<'a>(entries: &'a mut Vec<Entry>, key: &str, line: usize) -> &'a mut Node {
    let i = match entries.iter().position(|e| e.key == key) {
        Some(i) => i,
        None => {
            entries.push(Entry { key: key.into(), key_line: line, value: Node::null(line) });
            entries.len() - 1
        }
    };
    &mut entries[i].value
}

/// The routing keys that apply to `signal`, as a hint.
pub fn routing_key_hint(signal: Signal) -> String {
    let names: Vec<&str> =
        ROUTING_KEYS.iter().filter(|(_, _, signals)| signals.contains(&signal)).map(|(n, _, _)| *n).collect();
    format!("for {signal} use one of: {}; or give this signal its own loadbalancing exporter", names.join(", "))
}

/// Which signals a `routing_key` applies to is checked where the pipelines are known.
pub fn validate(c: &mut Checker, cfg: &LoadBalancingConfig) {
    if let Some(key) = &cfg.routing_key {
        if !ROUTING_KEYS.iter().any(|(name, _, _)| name == key) {
            let names: Vec<&str> = ROUTING_KEYS.iter().map(|(n, _, _)| *n).collect();
            let keys = format!("routing keys are {}", names.join(", "));
            let hint = match crate::config::suggest::did_you_mean(key, names.iter().copied()) {
                Some(s) => format!("{s} {keys}"),
                None => keys,
            };
            c.error(&["routing_key"], format!("unknown routing_key \"{key}\""), Some(&hint));
        }
    }
    let r = &cfg.resolver;
    for (name, set) in [("k8s", r.k8s.is_some()), ("aws_cloud_map", r.aws_cloud_map.is_some())] {
        if set {
            c.error(
                &["resolver", name],
                format!("the {name} resolver is not supported"),
                Some("use resolver.dns with a headless service name, or resolver.static"),
            );
        }
    }
    match (&r.static_, &r.dns) {
        (None, None) if r.k8s.is_none() && r.aws_cloud_map.is_none() => c.error(
            &["resolver"],
            "no resolver is configured",
            Some("set exactly one of resolver.static.hostnames or resolver.dns.hostname"),
        ),
        (Some(_), Some(_)) => {
            c.error(&["resolver"], "both resolver.static and resolver.dns are set", Some("set exactly one resolver"))
        }
        _ => {}
    }
    if let Some(s) = &r.static_ {
        if s.hostnames.is_empty() {
            c.error(
                &["resolver", "static", "hostnames"],
                "hostnames is empty",
                Some("list the backends as host[:port], e.g. [gateway-1:4317, gateway-2:4317]"),
            );
        }
        for h in &s.hostnames {
            if let Err(msg) = static_endpoint(h) {
                c.error(
                    &["resolver", "static", "hostnames"],
                    msg,
                    Some("write host[:port]; the port defaults to 4317"),
                );
            }
        }
    }
    if let Some(d) = &r.dns {
        if d.hostname.trim().is_empty() {
            c.error(
                &["resolver", "dns", "hostname"],
                "hostname must not be empty",
                Some("a name that resolves to every backend, e.g. a Kubernetes headless service"),
            );
        }
        if d.interval.is_zero() {
            c.error(&["resolver", "dns", "interval"], "interval must be above zero", Some("e.g. 5s"));
        }
        if d.timeout.is_zero() {
            c.error(&["resolver", "dns", "timeout"], "timeout must be above zero", Some("e.g. 1s"));
        }
    }
    // protocol.otlp is the otlp exporter's config: check it the same way, at its own path.
    let otlp_path = join(c.path, "protocol::otlp");
    let otlp_entry = c.node.get("protocol").and_then(|p| p.value.get("otlp"));
    let otlp_node = otlp_entry.map(|o| &o.value).unwrap_or(c.node);
    // One queue and one retry policy per exporter: written in two places, one would be ignored.
    for (field, top_level_set) in
        [("sending_queue", cfg.sending_queue.is_some()), ("retry_on_failure", cfg.retry_on_failure.is_some())]
    {
        if top_level_set && otlp_entry.is_some_and(|o| o.value.get(field).is_some()) {
            c.error(
                &[field],
                format!("{field} is set both here and under protocol.otlp"),
                Some("sluice keeps one queue and one retry policy for the whole exporter: set them in one place"),
            );
        }
    }
    if let Some(q) = &cfg.sending_queue {
        check_queue(c, q);
    }
    if let Some(r) = &cfg.retry_on_failure {
        check_retry(c, r);
    }
    let mut sub = Checker { path: &otlp_path, node: otlp_node, errors: c.errors };
    let otlp = &cfg.protocol.otlp;
    check_compression(&mut sub, otlp.compression, &otlp.compression_params, Transport::Grpc);
    check_tls(&mut sub, &otlp.tls);
    check_retry(&mut sub, &otlp.retry_on_failure);
    check_queue(&mut sub, &otlp.sending_queue);
}

/// The settings as `print-config` shows them: typed as `compile` types
/// them, without the endpoint put in for typing.
pub fn effective_settings(
    node: &Node,
    path: &str,
    errors: &mut Vec<crate::config::ConfigError>,
) -> Option<serde_json::Value> {
    let mut value =
        crate::config::describe::effective_of::<LoadBalancingConfig>(&with_endpoint_placeholder(node), path, errors)?;
    // Queue and retries set at the exporter's level are shown there only:
    // the defaults under protocol.otlp would read as a second setting.
    let top_level: Vec<&str> = ["sending_queue", "retry_on_failure"]
        .into_iter()
        .filter(|f| value.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    if let Some(otlp) = value.pointer_mut("/protocol/otlp").and_then(serde_json::Value::as_object_mut) {
        if otlp.get("endpoint").and_then(serde_json::Value::as_str) == Some("") {
            otlp.remove("endpoint");
        }
        for field in top_level {
            otlp.remove(field);
        }
    }
    Some(value)
}
