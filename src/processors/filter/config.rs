//! Configuration of the `filter` processor: the OpenTelemetry Collector
//! contrib filterprocessor's legacy (non-OTTL) `include`/`exclude` blocks,
//! field for field, plus three sluice additions documented on their fields:
//! `status_codes` (spans), `span_events` (drop events from kept spans) and
//! `datapoint_attributes` (match single metric data points).
//!
//! Names (match types, span kinds, status codes, severities) are kept as text
//! here so that a bad one is reported by `config::validate` with its path,
//! line and a hint; `matcher::compile` is the single source of truth for what
//! is accepted.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// `ignore`, `silent` or `propagate` (the Collector's default): what a
    /// failing OTTL condition does (legacy matching cannot fail).
    pub error_mode: Option<String>,
    /// Used by traces pipelines only; other pipelines ignore it.
    pub spans: SpanFilters,
    /// Used by metrics pipelines only.
    pub metrics: MetricFilters,
    /// Used by logs pipelines only.
    pub logs: LogFilters,
    /// The Collector's OTTL conditions for traces pipelines.
    pub traces: TraceConditions,
}

/// The Collector's `traces` block: OTTL conditions, any of which drops
/// the span (`span`) or the span event (`spanevent`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConditions {
    pub span: Option<Vec<String>>,
    pub spanevent: Option<Vec<String>>,
}

/// A span is kept when it matches `include` (if given) and does not match
/// `exclude` (if given). Blocks are boxed: they are large and usually absent.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanFilters {
    pub include: Option<Box<SpanMatch>>,
    pub exclude: Option<Box<SpanMatch>>,
    /// sluice addition (the Collector's OTTL `traces.spanevent`): events of
    /// kept spans are dropped unless they match `include` (if given), or when
    /// they match `exclude`. The span itself is always kept.
    pub span_events: SpanEventFilters,
}

/// Properties of one match block: every property given must match (AND);
/// within `services`, `span_names`, `span_kinds`, `status_codes` and
/// `libraries` any entry may match (OR); within `attributes` and `resources`
/// every entry must match, as in the Collector.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMatch {
    /// `strict` (equality) or `regexp` (unanchored, RE2-like syntax of the
    /// `regex` crate). Required, as in the Collector.
    pub match_type: Option<String>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    pub regexp: Option<crate::processors::attributes::matcher::RegexpCacheConfig>,
    /// The resource's `service.name`.
    pub services: Vec<String>,
    pub span_names: Vec<String>,
    /// `SPAN_KIND_SERVER`, ... (`SERVER` and any case accepted).
    pub span_kinds: Vec<String>,
    /// sluice addition: `STATUS_CODE_UNSET`, `STATUS_CODE_OK`,
    /// `STATUS_CODE_ERROR` (`ERROR` and any case accepted).
    pub status_codes: Vec<String>,
    /// Span attributes.
    pub attributes: Vec<AttributeMatch>,
    /// Resource attributes.
    pub resources: Vec<AttributeMatch>,
    /// Instrumentation scopes.
    pub libraries: Vec<LibraryMatch>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanEventFilters {
    pub include: Option<Box<SpanEventMatch>>,
    pub exclude: Option<Box<SpanEventMatch>>,
}

/// Every property given must match: any of `names`, all of `attributes`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanEventMatch {
    pub match_type: Option<String>,
    pub names: Vec<String>,
    pub attributes: Vec<AttributeMatch>,
}

/// A data point is kept when it matches `include` (if given) and does not
/// match `exclude` (if given); metrics left without points are removed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricFilters {
    pub include: Option<Box<MetricMatch>>,
    pub exclude: Option<Box<MetricMatch>>,
    /// OTTL conditions: a metric that meets any is dropped.
    pub metric: Option<Vec<String>>,
    /// OTTL conditions: a data point that meets any is dropped (a metric
    /// left without points goes too).
    pub datapoint: Option<Vec<String>>,
}

/// Any of `metric_names`, all of `resource_attributes`, all of
/// `datapoint_attributes`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatch {
    /// `strict` or `regexp` (the Collector's `expr` is not supported).
    pub match_type: Option<String>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    pub regexp: Option<crate::processors::attributes::matcher::RegexpCacheConfig>,
    pub metric_names: Vec<String>,
    pub resource_attributes: Vec<AttributeMatch>,
    /// sluice addition (the Collector's OTTL `metrics.datapoint`): matches
    /// single data points by their attributes, so an `exclude` drops only
    /// the matching points of a metric.
    pub datapoint_attributes: Vec<AttributeMatch>,
    /// The Collector's `expr` expressions: not implemented.
    pub expressions: Option<crate::config::component::CollectorOnly>,
}

/// A record is kept when it matches `include` (if given) and does not match
/// `exclude` (if given).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogFilters {
    pub include: Option<Box<LogMatch>>,
    pub exclude: Option<Box<LogMatch>>,
    /// OTTL conditions: a log record that meets any is dropped.
    pub log_record: Option<Vec<String>>,
}

/// All of `resource_attributes`, all of `record_attributes`, any of
/// `severity_texts`, `severity_number`, any of `bodies` (string bodies).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogMatch {
    pub match_type: Option<String>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    pub regexp: Option<crate::processors::attributes::matcher::RegexpCacheConfig>,
    pub resource_attributes: Vec<AttributeMatch>,
    pub record_attributes: Vec<AttributeMatch>,
    pub severity_texts: Vec<String>,
    pub severity_number: Option<SeverityMatch>,
    pub bodies: Vec<String>,
}

/// Matches records at or above `min`; records without a severity number
/// match only when `match_undefined`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeverityMatch {
    /// `TRACE`..`FATAL4` (`INFO`, `WARN3`, ... any case) or 1..24.
    pub min: String,
    #[serde(default)]
    pub match_undefined: bool,
}

/// `key` present and, when `value` is given, equal to it (`strict`: same
/// type and value) or, for string values under `regexp`, matching it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatch {
    pub key: String,
    #[serde(default)]
    pub value: Option<AttrValue>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LibraryMatch {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// A scalar attribute value, typed as YAML infers it (`"1"` is a string).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AttrValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
                Ok(AttrValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
                Ok(AttrValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
                i64::try_from(v).map(AttrValue::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
                Ok(AttrValue::Double(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
                Ok(AttrValue::String(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
                Ok(AttrValue::String(v))
            }
        }
        d.deserialize_any(V)
    }
}
