//! Configuration of the `cardinality_limiter` processor (metrics).
//!
//! Numbers and `action` are kept loosely typed so that a bad value is
//! reported by `config::validate` with its path, line and a hint, rather than
//! as a bare serde error.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CardinalityLimiterConfig {
    /// Distinct series (data-point attribute sets) allowed per metric name
    /// and resource. Default 2000.
    pub default_limit: i64,
    /// `overflow` (default), `drop_attributes` or `drop`: what happens to a
    /// point of a new series once its metric is at its limit.
    pub action: String,
    /// Attribute keys removed by `action: drop_attributes`. Default none.
    pub drop_attributes: Vec<String>,
    /// A series not seen for this long frees its slot. Default 10m.
    pub series_ttl: Duration,
    /// Per-metric limits that replace `default_limit`. Default none.
    pub metrics: Vec<MetricLimit>,
    /// Metric names passed through unlimited. Default none.
    pub exclude: Vec<String>,
    /// Series tracked in all, across metrics (the memory bound). Default 1,000,000.
    pub max_series: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricLimit {
    /// Metric name.
    pub name: String,
    /// Distinct series allowed for it (per resource and scope).
    pub limit: i64,
}

impl Default for CardinalityLimiterConfig {
    fn default() -> Self {
        CardinalityLimiterConfig {
            default_limit: 2000,
            action: "overflow".to_string(),
            drop_attributes: Vec::new(),
            series_ttl: Duration::from_secs(600),
            metrics: Vec::new(),
            exclude: Vec::new(),
            max_series: 1_000_000,
        }
    }
}

/// What happens to a point of a series over its metric's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// Fold into the one `otel.metric.overflow=true` series, as the SDK does.
    Overflow,
    /// Remove `drop_attributes` keys and re-aggregate within the batch.
    DropAttributes,
    Drop,
}

pub const ACTIONS: &[&str] = &["overflow", "drop_attributes", "drop"];

impl LimitAction {
    pub fn parse(s: &str) -> Option<LimitAction> {
        match s {
            "overflow" => Some(LimitAction::Overflow),
            "drop_attributes" => Some(LimitAction::DropAttributes),
            "drop" => Some(LimitAction::Drop),
            _ => None,
        }
    }
}

impl CardinalityLimiterConfig {
    /// The action in effect; invalid values are refused by validation and
    /// fall back to `overflow` here.
    pub fn resolved_action(&self) -> LimitAction {
        LimitAction::parse(&self.action).unwrap_or(LimitAction::Overflow)
    }
}

pub fn validate(c: &mut Checker, cfg: &CardinalityLimiterConfig) {
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
            let hint = match crate::config::suggest::did_you_mean(&cfg.action, ACTIONS.iter().copied()) {
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
            c.error(&["metrics", i.as_str(), "name"], "metric name must not be empty", None);
        }
        if m.limit < 1 {
            let msg = format!("limit {} of metric \"{}\" must be at least 1", m.limit, m.name);
            c.error(&["metrics", i.as_str(), "limit"], msg, Some("e.g. 500"));
        }
    }
}
