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

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
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
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConditions {
    /// OTTL conditions: a span that meets any is dropped.
    pub span: Option<Vec<String>>,
    /// OTTL conditions: a span event that meets any is dropped.
    pub spanevent: Option<Vec<String>>,
}

/// A span is kept when it matches `include` (if given) and does not match
/// `exclude` (if given). Blocks are boxed: they are large and usually absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanFilters {
    /// Keep only spans that match this block.
    pub include: Option<Box<SpanMatch>>,
    /// Drop spans that match this block.
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
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
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
    /// Span names; any may match.
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

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanEventFilters {
    /// Keep only events that match this block.
    pub include: Option<Box<SpanEventMatch>>,
    /// Drop events that match this block.
    pub exclude: Option<Box<SpanEventMatch>>,
}

/// Every property given must match: any of `names`, all of `attributes`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanEventMatch {
    /// `strict` (equality) or `regexp` (unanchored). Required.
    pub match_type: Option<String>,
    /// Event names; any may match.
    pub names: Vec<String>,
    /// Event attributes; all must match.
    pub attributes: Vec<AttributeMatch>,
}

/// A data point is kept when it matches `include` (if given) and does not
/// match `exclude` (if given); metrics left without points are removed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricFilters {
    /// Keep only metrics (or data points) that match this block.
    pub include: Option<Box<MetricMatch>>,
    /// Drop metrics (or data points) that match this block.
    pub exclude: Option<Box<MetricMatch>>,
    /// OTTL conditions: a metric that meets any is dropped.
    pub metric: Option<Vec<String>>,
    /// OTTL conditions: a data point that meets any is dropped (a metric
    /// left without points goes too).
    pub datapoint: Option<Vec<String>>,
}

/// Any of `metric_names`, all of `resource_attributes`, all of
/// `datapoint_attributes`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatch {
    /// `strict` or `regexp` (the Collector's `expr` is not supported).
    pub match_type: Option<String>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    pub regexp: Option<crate::processors::attributes::matcher::RegexpCacheConfig>,
    /// Metric names; any may match.
    pub metric_names: Vec<String>,
    /// Resource attributes; all must match.
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
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogFilters {
    /// Keep only records that match this block.
    pub include: Option<Box<LogMatch>>,
    /// Drop records that match this block.
    pub exclude: Option<Box<LogMatch>>,
    /// OTTL conditions: a log record that meets any is dropped.
    pub log_record: Option<Vec<String>>,
}

/// All of `resource_attributes`, all of `record_attributes`, any of
/// `severity_texts`, `severity_number`, any of `bodies` (string bodies).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogMatch {
    /// `strict` (equality) or `regexp` (unanchored); not needed for a block of `severity_number`
    /// alone.
    pub match_type: Option<String>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    pub regexp: Option<crate::processors::attributes::matcher::RegexpCacheConfig>,
    /// Resource attributes; all must match.
    pub resource_attributes: Vec<AttributeMatch>,
    /// Log record attributes; all must match.
    pub record_attributes: Vec<AttributeMatch>,
    /// Severity texts; any may match.
    pub severity_texts: Vec<String>,
    /// Records at or above a severity number.
    pub severity_number: Option<SeverityMatch>,
    /// String bodies; any may match.
    pub bodies: Vec<String>,
}

/// Matches records at or above `min`; records without a severity number
/// match only when `match_undefined`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeverityMatch {
    /// `TRACE`..`FATAL4` (`INFO`, `WARN3`, ... any case) or 1..24.
    pub min: String,
    /// Also match records with no severity number (0).
    #[serde(default)]
    pub match_undefined: bool,
}

/// `key` present and, when `value` is given, equal to it (`strict`: same
/// type and value) or, for string values under `regexp`, matching it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatch {
    /// Attribute key; the attribute must be present.
    pub key: String,
    /// When given, the value it must have (or, under `regexp`, match).
    #[serde(default)]
    pub value: Option<AttrValue>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LibraryMatch {
    /// Instrumentation scope name.
    pub name: String,
    /// When given, the scope version it must have.
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

impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::String(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Double(v) => s.serialize_f64(*v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl schemars::JsonSchema for AttrValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AttrValue".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "integer", "number", "boolean"]})
    }
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
