//! Configuration of the `head_sampler` processor. Every field has a default
//! except the goal, which also has one (100 traces/s) so an empty
//! `head_sampler:` section is a working sampler.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeadSamplerConfig {
    /// Traces per second to keep across all keys and workers (always-keep
    /// traces come on top). Default 100.
    pub traces_per_second: f64,
    /// How often per-key probabilities are recomputed. Default 10s.
    pub adjustment_interval: Duration,
    /// Weight of the newest interval in the moving average of per-key trace
    /// counts, in (0, 1]. Default 0.5.
    pub ema_weight: f64,
    /// Fields whose values, together, form a trace's key. Default: the
    /// resource's `service.name` and the span name.
    pub key: KeyConfig,
    /// Most keys tracked (split across workers); traces of further keys share
    /// one catch-all key. Default 10000.
    pub max_keys: usize,
    /// Decisions remembered for later spans (split across workers). Default 100000.
    pub decision_cache_size: usize,
    /// Keep every trace whose first span has error status. Default true.
    pub keep_errors: bool,
    /// Traces whose first span (or its resource) matches any rule are kept. Default none.
    pub always_keep: Vec<AttributeRule>,
    /// Significant hex digits of the `th` written. Default 4, as the
    /// Collector's `probabilistic_sampler`.
    pub sampling_precision: usize,
}

impl Default for HeadSamplerConfig {
    fn default() -> Self {
        HeadSamplerConfig {
            traces_per_second: 100.0,
            adjustment_interval: Duration::from_secs(10),
            ema_weight: 0.5,
            key: KeyConfig::default(),
            max_keys: 10_000,
            decision_cache_size: 100_000,
            keep_errors: true,
            always_keep: Vec::new(),
            sampling_precision: 4,
        }
    }
}

/// Which fields make a key. Separate lists, so a span attribute named `name`
/// can never be confused with the span name.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// Resource attributes, e.g. `service.name`. Default `[service.name]`.
    pub resource_attributes: Vec<String>,
    /// Whether the span name is part of the key. Default true.
    pub span_name: bool,
    /// Span attributes, e.g. `http.route`. Default none.
    pub span_attributes: Vec<String>,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            resource_attributes: vec!["service.name".to_string()],
            span_name: true,
            span_attributes: Vec::new(),
        }
    }
}

/// An always-keep rule: an attribute (span first, then resource) whose
/// string form equals one of `values` or matches `regex`. Exactly one of
/// the two is set.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// Span or resource attribute key.
    pub key: String,
    /// Keep when the value is one of these.
    #[serde(default)]
    pub values: Vec<String>,
    /// Keep when the value matches this regular expression.
    #[serde(default)]
    pub regex: Option<String>,
}

pub fn validate(c: &mut Checker, cfg: &HeadSamplerConfig) {
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
