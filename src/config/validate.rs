//! Semantic checks of each component's typed settings, run after serde.
//!
//! Each check reports a `ConfigError` placed at the offending field's path and
//! line (found in the component's node), so a config that passes can be built
//! without further checks.

use super::error::ConfigError;
use super::expand::join;
use super::node::Node;
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig, TlsClientConfig};
use crate::exporters::{
    file::config::FileExporterConfig,
    loadbalancing::config::{static_endpoint, LoadBalancingConfig, ROUTING_KEYS},
    loki::config::{LokiCompression, LokiEncoding, LokiExporterConfig},
    otlp::config::OtlpExporterConfig,
    otlphttp::config::OtlpHttpExporterConfig,
    prometheus::config::PrometheusExporterConfig,
    prometheusremotewrite::config::PrometheusRemoteWriteConfig,
};
use crate::processors::attributes::{actions::ActionConfig, config::AttributesConfig};
use crate::processors::cardinality_limiter::config::{CardinalityLimiterConfig, ACTIONS};
use crate::processors::filter::config::FilterConfig;
use crate::processors::probabilistic_sampler::config::{ProbabilisticSamplerConfig, ATTRIBUTE_SOURCES, MODES};
use crate::processors::resource::config::ResourceConfig;
use crate::processors::{
    batch::config::BatchConfig,
    head_sampler::config::HeadSamplerConfig,
    log_rate_limiter::config::{severity_floor, KeyField, LogRateLimiterConfig, KEY_FIELD_FORMS, SEVERITIES},
    memory_limiter::config::MemoryLimiterConfig,
    tail_sampling::config::TailSamplingConfig,
};
use crate::queue::storage_config::FileStorageConfig;
use crate::receivers::auth::config::{BasicAuthConfig, BearerTokenAuthConfig};
use crate::receivers::auth::Authenticator;
use crate::receivers::filelog::config::{FilelogReceiverConfig, CONTAINER_FORMATS, OPERATOR_TYPES};
use crate::receivers::otlp::config::OtlpReceiverConfig;
use crate::receivers::tls::TlsServerConfig;
use crate::telemetry::health_config::HealthCheckConfig;

/// Collects errors for one component: `path` is the component's path and
/// `node` its body, used to find the line of each field.
pub struct Checker<'a> {
    pub path: &'a str,
    pub node: &'a Node,
    pub errors: &'a mut Vec<ConfigError>,
}

impl Checker<'_> {
    pub fn error(&mut self, field: &[&str], message: impl Into<String>, hint: Option<&str>) {
        let path = field.iter().fold(self.path.to_string(), |p, f| join(&p, f));
        let mut e = ConfigError::new(path, Some(self.node.line_of(field)), message);
        e.hint = hint.map(str::to_string);
        self.errors.push(e);
    }

    fn endpoint(&mut self, field: &[&str], value: &str) {
        if let Err(msg) = check_host_port(value) {
            self.error(field, msg, Some("write host:port, e.g. 127.0.0.1:4317 or :4317"));
        }
    }

    fn url(&mut self, field: &[&str], value: &str) {
        if !(value.starts_with("http://") || value.starts_with("https://")) {
            self.error(
                field,
                format!("invalid URL \"{value}\": it must start with http:// or https://"),
                Some("e.g. https://otlp.example.com:4318"),
            );
        } else if value.split_once("://").is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with('/')) {
            self.error(field, format!("invalid URL \"{value}\": the host is missing"), None);
        }
    }

    fn tls(&mut self, tls: &TlsClientConfig) {
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            let (set, missing) =
                if tls.cert_file.is_some() { ("cert_file", "key_file") } else { ("key_file", "cert_file") };
            self.error(
                &["tls", set],
                format!("{set} is set but {missing} is not"),
                Some("client certificates need both cert_file and key_file"),
            );
        }
    }

    fn retry(&mut self, r: &RetryConfig) {
        if !r.enabled {
            return;
        }
        // NaN fails the range check, so it is rejected too.
        if !(1.0..=f64::INFINITY).contains(&r.multiplier) || r.multiplier.is_infinite() {
            self.error(
                &["retry_on_failure", "multiplier"],
                format!("multiplier {} must be at least 1", r.multiplier),
                None,
            );
        }
        if !(0.0..=1.0).contains(&r.randomization_factor) {
            self.error(
                &["retry_on_failure", "randomization_factor"],
                format!("randomization_factor {} must be between 0 and 1", r.randomization_factor),
                None,
            );
        }
        if r.initial_interval.is_zero() {
            self.error(
                &["retry_on_failure", "initial_interval"],
                "initial_interval must be above zero",
                Some("e.g. 5s, or set enabled: false"),
            );
        }
    }

    fn queue(&mut self, q: &SendingQueueConfig) {
        if !q.enabled {
            return;
        }
        if q.queue_size == 0 {
            self.error(
                &["sending_queue", "queue_size"],
                "queue_size must be at least 1",
                Some("or set enabled: false"),
            );
        }
        if q.num_consumers == 0 {
            self.error(&["sending_queue", "num_consumers"], "num_consumers must be at least 1", None);
        }
        if q.storage.is_some() && q.max_size_mib == 0 {
            self.error(
                &["sending_queue", "max_size_mib"],
                "max_size_mib must be at least 1",
                Some("it bounds the persistent queue on disk, e.g. 512"),
            );
        }
    }
}

/// `host:port` with a numeric port; an empty host means all interfaces.
pub fn check_host_port(value: &str) -> Result<(), String> {
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(format!("invalid endpoint \"{value}\": expected host:port"));
    };
    if host.contains('/') || host.contains(' ') {
        return Err(format!("invalid endpoint \"{value}\": expected host:port, not a URL"));
    }
    match port.parse::<u16>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("invalid endpoint \"{value}\": port \"{port}\" is not a number from 0 to 65535")),
    }
}

/// The `type` of each `filelog` operator, read from the YAML before the
/// operators are typed (an unknown operator's own fields are not ours to name).
pub fn filelog_operator_types(c: &mut Checker) {
    let Some(ops) = c.node.get("operators") else { return };
    let super::node::Value::Seq(items) = &ops.value.value else { return };
    let supported =
        format!("sluice runs these operators: {}, e.g. operators: [{{type: container}}]", OPERATOR_TYPES.join(", "));
    for (i, item) in items.iter().enumerate() {
        let index = i.to_string();
        match item.get("type").map(|e| &e.value.value) {
            Some(super::node::Value::Scalar(t, _)) if OPERATOR_TYPES.contains(&t.as_str()) => {}
            Some(super::node::Value::Scalar(t, _)) => {
                let hint = match super::suggest::did_you_mean(t, OPERATOR_TYPES.iter().copied()) {
                    Some(h) => format!("{h} ({supported})"),
                    None => supported.clone(),
                };
                c.error(&["operators", &index, "type"], format!("unknown operator type \"{t}\""), Some(&hint));
            }
            _ => c.error(&["operators", &index], "the operator has no type", Some(&supported)),
        }
    }
}

pub fn filelog_receiver(c: &mut Checker, cfg: &FilelogReceiverConfig) {
    use crate::receivers::filelog::glob::Glob;
    if cfg.include.is_empty() {
        c.error(
            &["include"],
            "include must list at least one file pattern",
            Some("e.g. include: [/var/log/pods/*/*/*.log]"),
        );
    }
    for (field, patterns) in [("include", &cfg.include), ("exclude", &cfg.exclude)] {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(e) = Glob::new(p) {
                c.error(
                    &[field, &i.to_string()],
                    format!("invalid pattern \"{p}\": {e}"),
                    Some("globs take *, ?, [abc], [!abc] and ** (any directories)"),
                );
            }
        }
    }
    if cfg.start_at != "beginning" && cfg.start_at != "end" {
        c.error(
            &["start_at"],
            format!("start_at \"{}\" is not beginning or end", cfg.start_at),
            Some("start_at: end (the default) or start_at: beginning"),
        );
    }
    if !matches!(cfg.encoding.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
        c.error(
            &["encoding"],
            format!("encoding \"{}\" is not supported", cfg.encoding),
            Some("sluice reads UTF-8 only: remove encoding or set encoding: utf-8"),
        );
    }
    if cfg.poll_interval.is_zero() {
        c.error(&["poll_interval"], "poll_interval must be above zero", Some("e.g. 200ms (the default)"));
    }
    if cfg.max_log_size.0 == 0 {
        c.error(&["max_log_size"], "max_log_size must be above zero", Some("e.g. 1MiB (the default)"));
    }
    if cfg.fingerprint_size.0 < 16 {
        c.error(
            &["fingerprint_size"],
            format!("fingerprint_size {} is below 16 bytes", cfg.fingerprint_size.0),
            Some("e.g. 1kb (the default); short fingerprints make different files look the same"),
        );
    }
    if cfg.max_concurrent_files == 0 {
        c.error(&["max_concurrent_files"], "max_concurrent_files must be at least 1", Some("e.g. 1024 (the default)"));
    }
    if let Some(m) = &cfg.multiline {
        match (&m.line_start_pattern, &m.line_end_pattern) {
            (Some(_), Some(_)) => {
                c.error(&["multiline"], "only one of line_start_pattern and line_end_pattern can be set", None)
            }
            (None, None) => c.error(
                &["multiline"],
                "multiline needs line_start_pattern or line_end_pattern",
                Some("e.g. line_start_pattern: ^\\d{4}-\\d{2}-\\d{2}"),
            ),
            _ => {}
        }
        for (field, p) in [("line_start_pattern", &m.line_start_pattern), ("line_end_pattern", &m.line_end_pattern)] {
            if let Some(Err(e)) = p.as_deref().map(regex::Regex::new) {
                c.error(&["multiline", field], format!("invalid regex: {e}"), None);
            }
        }
    }
    for (i, op) in cfg.operators.iter().enumerate() {
        if let Some(f) = &op.format {
            if !CONTAINER_FORMATS.contains(&f.as_str()) {
                let hint =
                    format!("one of {}, or leave format out to detect it per line", CONTAINER_FORMATS.join(", "));
                c.error(
                    &["operators", &i.to_string(), "format"],
                    format!("unknown container format \"{f}\""),
                    Some(&hint),
                );
            }
        }
    }
}

pub fn otlp_receiver(c: &mut Checker, cfg: &OtlpReceiverConfig) {
    let p = &cfg.protocols;
    if p.grpc.is_none() && p.http.is_none() {
        c.error(
            &["protocols"],
            "at least one protocol must be enabled",
            Some("add `grpc:` and/or `http:` under protocols"),
        );
    }
    if let Some(g) = &p.grpc {
        c.endpoint(&["protocols", "grpc", "endpoint"], &g.endpoint);
        if let Some(tls) = &g.tls {
            server_tls(c, "grpc", tls, crate::receivers::otlp::GRPC_ALPN);
        }
        let params = g.keepalive.as_ref().and_then(|k| k.server_parameters.as_ref());
        for (field, set) in params
            .map(|k| {
                [
                    ("max_connection_age", k.max_connection_age.is_some()),
                    ("max_connection_age_grace", k.max_connection_age_grace.is_some()),
                ]
            })
            .unwrap_or_default()
        {
            if set {
                c.error(
                    &["protocols", "grpc", "keepalive", "server_parameters", field],
                    format!("{field} is not supported"),
                    Some("remove it; max_connection_idle closes idle connections"),
                );
            }
        }
        if g.max_recv_msg_size_mib == 0 {
            c.error(&["protocols", "grpc", "max_recv_msg_size_mib"], "max_recv_msg_size_mib must be above 0", None);
        }
    }
    if let Some(h) = &p.http {
        c.endpoint(&["protocols", "http", "endpoint"], &h.endpoint);
        if let Some(tls) = &h.tls {
            server_tls(c, "http", tls, crate::receivers::otlp::HTTP_ALPN);
        }
        if h.max_request_body_size == 0 {
            c.error(&["protocols", "http", "max_request_body_size"], "max_request_body_size must be above 0", None);
        }
        for (name, path) in [
            ("traces_url_path", &h.traces_url_path),
            ("metrics_url_path", &h.metrics_url_path),
            ("logs_url_path", &h.logs_url_path),
        ] {
            if !path.starts_with('/') {
                c.error(&["protocols", "http", name], format!("{name} \"{path}\" must start with '/'"), None);
            }
        }
    }
}

/// Loads the certificates now, so a bad file fails `validate` and start, at its field.
fn server_tls(c: &mut Checker, transport: &str, tls: &TlsServerConfig, alpn: &[&[u8]]) {
    if let Err(e) = crate::receivers::tls::server_tls(tls, alpn) {
        c.error(&["protocols", transport, "tls", e.field], e.message, e.hint.as_deref());
    }
}

pub fn bearertokenauth(c: &mut Checker, cfg: &BearerTokenAuthConfig) {
    if let Err(e) = Authenticator::bearer(cfg) {
        let path: Vec<&str> = e.field.split("::").collect();
        c.error(&path, e.message, e.hint.as_deref());
    }
}

pub fn basicauth(c: &mut Checker, cfg: &BasicAuthConfig) {
    if let Err(e) = Authenticator::basic(cfg) {
        let path: Vec<&str> = e.field.split("::").collect();
        c.error(&path, e.message, e.hint.as_deref());
    }
}

pub fn batch(c: &mut Checker, cfg: &BatchConfig) {
    if cfg.send_batch_max_size != 0 && cfg.send_batch_max_size < cfg.send_batch_size {
        c.error(
            &["send_batch_max_size"],
            format!(
                "send_batch_max_size ({}) must be 0 or at least send_batch_size ({})",
                cfg.send_batch_max_size, cfg.send_batch_size
            ),
            None,
        );
    }
}

pub fn memory_limiter(c: &mut Checker, cfg: &MemoryLimiterConfig, total_memory: Option<u64>) {
    if cfg.check_interval.is_zero() {
        c.error(&["check_interval"], "check_interval must be above zero", Some("e.g. 1s"));
    }
    if let Err(msg) = crate::processors::memory_limiter::MemoryLimits::resolve(cfg, total_memory) {
        let field = if cfg.limit_mib > 0 {
            "limit_mib"
        } else if cfg.limit_percentage > 0 {
            "limit_percentage"
        } else {
            ""
        };
        let field: &[&str] = if field.is_empty() { &[] } else { &[field] };
        c.error(field, msg, Some("set limit_mib (e.g. 512) or limit_percentage (e.g. 80)"));
    }
}

pub fn head_sampler(c: &mut Checker, cfg: &HeadSamplerConfig) {
    // NaN and infinity fail these checks too.
    if !(cfg.traces_per_second > 0.0 && cfg.traces_per_second.is_finite()) {
        c.error(
            &["traces_per_second"],
            format!("traces_per_second {} must be a number above 0", cfg.traces_per_second),
            Some("e.g. 100"),
        );
    }
    if cfg.adjustment_interval.is_zero() {
        c.error(&["adjustment_interval"], "adjustment_interval must be above zero", Some("e.g. 10s"));
    }
    if !(cfg.ema_weight > 0.0 && cfg.ema_weight <= 1.0) {
        c.error(
            &["ema_weight"],
            format!("ema_weight {} must be above 0 and at most 1", cfg.ema_weight),
            Some("e.g. 0.5"),
        );
    }
    if cfg.max_keys == 0 {
        c.error(&["max_keys"], "max_keys must be at least 1", Some("e.g. 10000"));
    }
    if cfg.decision_cache_size == 0 {
        c.error(&["decision_cache_size"], "decision_cache_size must be at least 1", Some("e.g. 100000"));
    }
    if !(1..=crate::processors::sampling::THRESHOLD_HEX_DIGITS).contains(&cfg.sampling_precision) {
        c.error(
            &["sampling_precision"],
            format!("sampling_precision {} must be from 1 to 14", cfg.sampling_precision),
            None,
        );
    }
    for (list, names) in
        [("resource_attributes", &cfg.key.resource_attributes), ("span_attributes", &cfg.key.span_attributes)]
    {
        for (i, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                let i = i.to_string();
                c.error(
                    &["key", list, i.as_str()],
                    "key attribute names must not be empty",
                    Some("e.g. service.name or http.route"),
                );
            }
        }
    }
    for (i, rule) in cfg.always_keep.iter().enumerate() {
        let i = i.to_string();
        if rule.key.trim().is_empty() {
            c.error(
                &["always_keep", i.as_str(), "key"],
                "key must not be empty",
                Some("the attribute to match, e.g. http.route"),
            );
        }
        match (&rule.regex, rule.values.is_empty()) {
            (Some(_), false) => c.error(
                &["always_keep", i.as_str(), "regex"],
                "set either values or regex, not both",
                Some("use two rules to match both"),
            ),
            (None, true) => c.error(
                &["always_keep", i.as_str()],
                "a rule needs values or regex",
                Some("e.g. values: [\"/checkout\"] or regex: \"^/admin/\""),
            ),
            (Some(re), true) => {
                if let Err(e) = regex::Regex::new(re) {
                    // The regex crate's message spans lines; the last says what is wrong.
                    let first = e.to_string().lines().last().unwrap_or_default().to_string();
                    c.error(&["always_keep", i.as_str(), "regex"], format!("invalid regex {re:?}: {first}"), None);
                }
            }
            (None, false) => {}
        }
    }
}

pub fn probabilistic_sampler(c: &mut Checker, cfg: &ProbabilisticSamplerConfig) {
    let pct = cfg.sampling_percentage;
    // Above 100 means keep everything, as in the Collector.
    if pct.is_nan() || pct < 0.0 {
        c.error(
            &["sampling_percentage"],
            format!("sampling_percentage {pct} must not be negative"),
            Some("a percentage of items to keep, e.g. 15.3; 0 keeps nothing, 100 (or more) keeps everything"),
        );
    } else if pct > 0.0 && pct / 100.0 < 1.0 / (1u64 << 56) as f64 {
        c.error(
            &["sampling_percentage"],
            format!("sampling_percentage {pct} is too small to express"),
            Some("the smallest probability is 2^-56; use 0 to keep nothing"),
        );
    }
    if let Some(mode) = &cfg.mode {
        if !mode.is_empty() && !MODES.contains(&mode.as_str()) {
            let modes = format!("modes are {}", MODES.join(", "));
            let hint = match super::suggest::did_you_mean(mode, MODES.iter().copied()) {
                Some(s) => format!("{s} {modes}"),
                None => modes,
            };
            c.error(&["mode"], format!("unknown mode \"{mode}\""), Some(&hint));
        }
    }
    if !(1..=14).contains(&cfg.sampling_precision) {
        c.error(
            &["sampling_precision"],
            format!("sampling_precision {} must be from 1 to 14", cfg.sampling_precision),
            Some("hex digits of the threshold written in tracestate; the default is 4"),
        );
    }
    if !ATTRIBUTE_SOURCES.contains(&cfg.attribute_source.as_str()) {
        c.error(
            &["attribute_source"],
            format!("unknown attribute_source \"{}\"", cfg.attribute_source),
            Some("traceID (the default) or record"),
        );
    } else if cfg.attribute_source == "record" && cfg.from_attribute.is_empty() {
        c.error(
            &["from_attribute"],
            "from_attribute is required when attribute_source is record",
            Some("name the log record attribute to sample by, e.g. from_attribute: log.id"),
        );
    }
}

pub fn cardinality_limiter(c: &mut Checker, cfg: &CardinalityLimiterConfig) {
    if cfg.default_limit < 1 {
        c.error(
            &["default_limit"],
            format!("default_limit {} must be at least 1", cfg.default_limit),
            Some("distinct series allowed per metric, e.g. 2000"),
        );
    }
    if cfg.max_series < 1 {
        c.error(
            &["max_series"],
            format!("max_series {} must be at least 1", cfg.max_series),
            Some("series tracked in all, e.g. 1000000"),
        );
    }
    if cfg.series_ttl.is_zero() {
        c.error(&["series_ttl"], "series_ttl must be above zero", Some("e.g. 10m"));
    }
    match crate::processors::cardinality_limiter::config::LimitAction::parse(&cfg.action) {
        None => {
            let actions = format!("actions are {}", ACTIONS.join(", "));
            let hint = match super::suggest::did_you_mean(&cfg.action, ACTIONS.iter().copied()) {
                Some(s) => format!("{s} {actions}"),
                None => actions,
            };
            c.error(&["action"], format!("unknown action \"{}\"", cfg.action), Some(&hint));
        }
        Some(crate::processors::cardinality_limiter::config::LimitAction::DropAttributes)
            if cfg.drop_attributes.iter().all(|k| k.trim().is_empty()) =>
        {
            c.error(
                &["drop_attributes"],
                "drop_attributes must name at least one attribute key when action is drop_attributes",
                Some("e.g. drop_attributes: [user_id]"),
            );
        }
        Some(_) => {}
    }
    for (i, m) in cfg.metrics.iter().enumerate() {
        let i = i.to_string();
        if m.name.trim().is_empty() {
            c.errors.push(located(c, &["metrics", i.as_str(), "name"], "metric name must not be empty", None));
        }
        if m.limit < 1 {
            let msg = format!("limit {} of metric \"{}\" must be at least 1", m.limit, m.name);
            c.errors.push(located(c, &["metrics", i.as_str(), "limit"], msg, Some("e.g. 500")));
        }
    }
}

/// An error at a path that indexes into sequences (`metrics`, `0`, `limit`).
fn located(c: &Checker, field: &[&str], message: impl Into<String>, hint: Option<&str>) -> ConfigError {
    let path = field.iter().fold(c.path.to_string(), |p, f| join(&p, f));
    let owned: Vec<String> = field.iter().map(|s| s.to_string()).collect();
    let mut e = ConfigError::new(path, Some(line_at(c.node, &owned)), message);
    e.hint = hint.map(str::to_string);
    e
}

pub fn log_rate_limiter(c: &mut Checker, cfg: &LogRateLimiterConfig) {
    // NaN and infinity fail this check too.
    if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
        c.error(
            &["rate"],
            format!("rate {} must be a number above 0", cfg.rate),
            Some("records per second per key, e.g. 100"),
        );
    }
    if cfg.burst == 0 {
        c.error(&["burst"], "burst must be at least 1", Some("records a key may send at once, e.g. 100"));
    }
    if cfg.max_keys == 0 {
        c.error(&["max_keys"], "max_keys must be at least 1", Some("e.g. 10000"));
    }
    if cfg.summary_interval.is_zero() {
        c.error(&["summary_interval"], "summary_interval must be above zero", Some("e.g. 10s"));
    }
    for (i, field) in cfg.key_fields.iter().enumerate() {
        if KeyField::parse(field).is_none() {
            let i = i.to_string();
            let hint = format!("a key field is {KEY_FIELD_FORMS}");
            c.error(&["key_fields", i.as_str()], format!("unknown key field \"{field}\""), Some(&hint));
        }
    }
    if severity_floor(&cfg.exempt_severity).is_err() {
        let names: Vec<&str> = SEVERITIES.iter().map(|(n, _)| *n).chain(["NONE"]).collect();
        let hint = format!("severities are {}", names.join(", "));
        c.error(&["exempt_severity"], format!("unknown severity \"{}\"", cfg.exempt_severity), Some(&hint));
    }
}

/// Line of a path that may index into sequences (`policies`, `2`, `type`):
/// the deepest part of it that exists.
fn line_at(node: &Node, path: &[String]) -> usize {
    use super::node::Value;
    let mut node = node;
    let mut line = node.line;
    for k in path {
        let next = match &node.value {
            Value::Map(_) => node.get(k).map(|e| (e.key_line, &e.value)),
            Value::Seq(items) => k.parse::<usize>().ok().and_then(|i| items.get(i)).map(|n| (n.line, n)),
            Value::Scalar(..) => None,
        };
        match next {
            Some((l, n)) => {
                line = l;
                node = n;
            }
            None => break,
        }
    }
    line
}

pub fn filter(c: &mut Checker, cfg: &FilterConfig) {
    let (_, errors) = crate::processors::filter::matcher::compile(cfg);
    for e in errors {
        let path = e.path.iter().fold(c.path.to_string(), |p, f| join(&p, f));
        let mut err = ConfigError::new(path, Some(line_at(c.node, &e.path)), e.message);
        err.hint = e.hint;
        c.errors.push(err);
    }
}

pub fn tail_sampling(c: &mut Checker, cfg: &TailSamplingConfig) {
    if cfg.decision_wait.is_zero() {
        c.error(&["decision_wait"], "decision_wait must be above zero", Some("e.g. 30s"));
    }
    if let Some(d) = cfg.decision_wait_after_root_received {
        if d > cfg.decision_wait {
            c.error(
                &["decision_wait_after_root_received"],
                "decision_wait_after_root_received must not be longer than decision_wait",
                Some("it shortens the wait once the root span is in"),
            );
        }
    }
    if cfg.num_traces == 0 {
        c.error(&["num_traces"], "num_traces must be above 0", Some("e.g. 50000"));
    }
    if cfg.max_memory_mib == 0 {
        c.error(&["max_memory_mib"], "max_memory_mib must be above 0", Some("e.g. 256"));
    }
    let (_, errors) = crate::processors::tail_sampling::policy::compile_all(cfg, 1);
    for e in errors {
        let path = e.path.iter().fold(c.path.to_string(), |p, f| join(&p, f));
        let mut err = ConfigError::new(path, Some(line_at(c.node, &e.path)), e.message);
        err.hint = e.hint;
        c.errors.push(err);
    }
}

pub fn otlp_exporter(c: &mut Checker, cfg: &OtlpExporterConfig) {
    if cfg.endpoint.trim().is_empty() {
        c.error(&["endpoint"], "endpoint must not be empty", Some("e.g. tempo:4317 or https://tempo:4317"));
    } else if cfg.endpoint.contains("://") {
        c.url(&["endpoint"], &cfg.endpoint);
    } else {
        c.endpoint(&["endpoint"], &cfg.endpoint);
    }
    c.tls(&cfg.tls);
    c.retry(&cfg.retry_on_failure);
    c.queue(&cfg.sending_queue);
}

/// Which signals a `routing_key` applies to is checked where the pipelines are known.
pub fn loadbalancing_exporter(c: &mut Checker, cfg: &LoadBalancingConfig) {
    if let Some(key) = &cfg.routing_key {
        if !ROUTING_KEYS.iter().any(|(name, _, _)| name == key) {
            let names: Vec<&str> = ROUTING_KEYS.iter().map(|(n, _, _)| *n).collect();
            let keys = format!("routing keys are {}", names.join(", "));
            let hint = match super::suggest::did_you_mean(key, names.iter().copied()) {
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
    let otlp_node = c.node.get("protocol").and_then(|p| p.value.get("otlp")).map(|o| &o.value).unwrap_or(c.node);
    let mut sub = Checker { path: &otlp_path, node: otlp_node, errors: c.errors };
    let otlp = &cfg.protocol.otlp;
    sub.tls(&otlp.tls);
    sub.retry(&otlp.retry_on_failure);
    sub.queue(&otlp.sending_queue);
}

/// Per-signal endpoints are checked where the pipelines are known.
pub fn otlphttp_exporter(c: &mut Checker, cfg: &OtlpHttpExporterConfig) {
    for (name, url) in [
        ("endpoint", &cfg.endpoint),
        ("traces_endpoint", &cfg.traces_endpoint),
        ("metrics_endpoint", &cfg.metrics_endpoint),
        ("logs_endpoint", &cfg.logs_endpoint),
    ] {
        if let Some(url) = url {
            c.url(&[name], url);
        }
    }
    c.tls(&cfg.tls);
    c.retry(&cfg.retry_on_failure);
    c.queue(&cfg.sending_queue);
}

pub fn loki_exporter(c: &mut Checker, cfg: &LokiExporterConfig) {
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
    c.tls(&cfg.tls);
    c.retry(&cfg.retry_on_failure);
    c.queue(&cfg.sending_queue);
}

/// Label names that would be renamed on the way out are refused instead.
fn prometheus_label_names<'a>(c: &mut Checker, field: &str, names: impl Iterator<Item = &'a String>) {
    for name in names {
        if name.is_empty() || crate::exporters::prometheus_common::sanitize_label(name) != *name {
            c.error(
                &[field, name],
                format!("{field} name {name:?} is not a valid Prometheus label name"),
                Some("use letters, digits and _, not starting with a digit or _ (e.g. cluster)"),
            );
        }
    }
}

pub fn prometheus_exporter(c: &mut Checker, cfg: &PrometheusExporterConfig) {
    c.endpoint(&["endpoint"], &cfg.endpoint);
    prometheus_label_names(c, "const_labels", cfg.const_labels.keys());
    if cfg.metric_expiration.is_zero() {
        c.error(&["metric_expiration"], "metric_expiration must be above 0", Some("the default is 5m"));
    }
    if cfg.enable_open_metrics {
        c.error(
            &["enable_open_metrics"],
            "the OpenMetrics format is not supported; the page is the Prometheus text format 0.0.4",
            Some("remove enable_open_metrics or set it to false"),
        );
    }
}

pub fn prometheusremotewrite_exporter(c: &mut Checker, cfg: &PrometheusRemoteWriteConfig) {
    if cfg.endpoint.trim().is_empty() {
        c.error(&["endpoint"], "endpoint must not be empty", Some("e.g. http://prometheus:9090/api/v1/write"));
    } else {
        c.url(&["endpoint"], &cfg.endpoint);
    }
    if cfg.max_batch_size_bytes == 0 {
        c.error(&["max_batch_size_bytes"], "max_batch_size_bytes must be above 0", Some("the default is 3000000"));
    }
    prometheus_label_names(c, "external_labels", cfg.external_labels.keys());
    let d = &cfg.delta_to_cumulative;
    if d.enabled && d.max_series == 0 {
        c.error(
            &["delta_to_cumulative", "max_series"],
            "max_series must be above 0 when delta_to_cumulative is enabled",
            Some("e.g. 100000"),
        );
    }
    if d.enabled && d.max_stale.is_zero() {
        c.error(
            &["delta_to_cumulative", "max_stale"],
            "max_stale must be above 0 when delta_to_cumulative is enabled",
            Some("e.g. 10m: a series idle that long is forgotten"),
        );
    }
    if let Some(q) = &cfg.remote_write_queue {
        if q.queue_size == Some(0) {
            c.error(&["remote_write_queue", "queue_size"], "queue_size must be above 0", Some("e.g. 10000"));
        }
        if q.num_consumers == Some(0) {
            c.error(&["remote_write_queue", "num_consumers"], "num_consumers must be above 0", Some("e.g. 5"));
        }
    }
    c.tls(&cfg.tls);
    c.retry(&cfg.retry_on_failure);
    c.queue(&cfg.queue());
}

pub fn file_exporter(c: &mut Checker, cfg: &FileExporterConfig) {
    if cfg.path.trim().is_empty() {
        c.error(&["path"], "path must not be empty", Some("e.g. /var/lib/sluice/export.jsonl"));
    }
}

pub fn health_check(c: &mut Checker, cfg: &HealthCheckConfig) {
    c.endpoint(&["endpoint"], &cfg.endpoint);
}

pub fn attributes(c: &mut Checker, cfg: &AttributesConfig) {
    action_list(c, "actions", &cfg.actions);
    for (field, m) in [("include", &cfg.include), ("exclude", &cfg.exclude)] {
        let Some(m) = m else { continue };
        let Err(errors) = crate::processors::attributes::matcher::Matcher::compile(m) else { continue };
        for e in errors {
            let path: Vec<&str> = std::iter::once(field).chain(e.path.iter().map(String::as_str)).collect();
            let err = located(c, &path, e.message, e.hint.as_deref());
            c.errors.push(err);
        }
    }
}

pub fn resource(c: &mut Checker, cfg: &ResourceConfig) {
    action_list(c, "attributes", &cfg.attributes);
}

/// The action list of `attributes` (`actions:`) or `resource` (`attributes:`).
fn action_list(c: &mut Checker, field: &'static str, actions: &[ActionConfig]) {
    if actions.is_empty() {
        let hint = format!("e.g. {field}: [{{key: deployment.environment, value: production, action: upsert}}]");
        c.error(&[field], format!("{field} must list at least one action"), Some(&hint));
        return;
    }
    let (_, errors) = crate::processors::attributes::actions::Actions::compile(actions);
    for e in errors {
        let i = e.index.to_string();
        let mut path = vec![field, i.as_str()];
        if !e.field.is_empty() {
            path.push(e.field);
        }
        let err = located(c, &path, e.message, e.hint.as_deref());
        c.errors.push(err);
    }
}

/// The directory must be absent (its nearest existing ancestor writable, so
/// it can be created at start) or a writable directory. Nothing is created here.
pub fn file_storage(c: &mut Checker, cfg: &FileStorageConfig) {
    let hint = Some("give a directory the agent's user can write, e.g. /var/lib/sluice");
    if cfg.directory.trim().is_empty() {
        c.error(&["directory"], "directory must not be empty", hint);
        return;
    }
    let mut probe = std::path::Path::new(&cfg.directory);
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if !m.is_dir() => {
                c.error(&["directory"], format!("{} is not a directory", probe.display()), hint);
                return;
            }
            Ok(_) => break,
            Err(_) => match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p,
                _ => return, // relative path under the working directory
            },
        }
    }
    let Ok(cpath) = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()) else {
        c.error(&["directory"], "directory contains a NUL byte", None);
        return;
    };
    // SAFETY: access(2) with a NUL-terminated path we own.
    if unsafe { libc::access(cpath.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let what = if probe == std::path::Path::new(&cfg.directory) {
            format!("directory {} is not writable", cfg.directory)
        } else {
            format!("directory {} cannot be created: {} is not writable", cfg.directory, probe.display())
        };
        c.error(&["directory"], what, hint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert!(check_host_port("127.0.0.1:4317").is_ok());
        assert!(check_host_port(":4317").is_ok());
        assert!(check_host_port("[::1]:4317").is_ok());
        assert!(check_host_port("localhost").is_err());
        assert!(check_host_port("localhost:99999").is_err());
        assert!(check_host_port("localhost:http").is_err());
        assert!(check_host_port("http://x:1").is_err());
    }
}
