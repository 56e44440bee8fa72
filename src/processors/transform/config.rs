//! Configuration of the `transform` processor: the Collector's
//! transformprocessor, field for field. Each `*_statements` list holds
//! either OTTL statements as strings (the flat form: one group whose
//! context is inferred from the paths) or groups with `context`,
//! `conditions`, `statements` and `error_mode`.

use crate::ottl::ErrorMode;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    /// `ignore`, `silent` or `propagate`; the Collector's default (in its
    /// code, `createDefaultConfig`) is `propagate`.
    pub error_mode: ErrorMode,
    /// OTTL statements on traces: strings, or groups with `context`, `conditions` and `statements`.
    pub trace_statements: Vec<StatementsEntry>,
    /// OTTL statements on metrics: strings, or groups with `context`, `conditions` and
    /// `statements`.
    pub metric_statements: Vec<StatementsEntry>,
    /// OTTL statements on logs: strings, or groups with `context`, `conditions` and `statements`.
    pub log_statements: Vec<StatementsEntry>,
    /// The Collector's `flatten_data` (logs): not implemented.
    pub flatten_data: Option<crate::config::component::CollectorOnly>,
    /// The Collector's profiles: sluice has no profiles signal.
    pub profile_statements: Option<crate::config::component::CollectorOnly>,
}

/// One entry of a `*_statements` list.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementsEntry {
    /// `- set(span.attributes["k"], "v")`
    Flat(String),
    /// `- context: span` / `statements: [...]`
    Group(StatementGroup),
}

/// Statements run in one context, on the items that meet `conditions`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatementGroup {
    /// `resource`, `scope`, `span`, `spanevent`, `metric`, `datapoint` or
    /// `log`; inferred from the paths when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// ORed: the statements run on an item when any of them holds.
    #[serde(default)]
    pub conditions: Vec<String>,
    pub statements: Vec<String>,
    /// Overrides the processor's `error_mode` for this group.
    #[serde(default)]
    pub error_mode: Option<ErrorMode>,
}

impl Serialize for StatementsEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatementsEntry::Flat(statement) => s.serialize_str(statement),
            StatementsEntry::Group(group) => group.serialize(s),
        }
    }
}

impl JsonSchema for StatementsEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatementsEntry".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let group = generator.subschema_for::<StatementGroup>();
        schemars::json_schema!({
            "description": "An OTTL statement, or a group of statements with a context and conditions.",
            "anyOf": [{"type": "string"}, group]
        })
    }
}

impl<'de> Deserialize<'de> for StatementsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatementsEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an OTTL statement (a string) or a group with `statements`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatementsEntry, E> {
                Ok(StatementsEntry::Flat(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StatementsEntry, E> {
                Ok(StatementsEntry::Flat(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StatementsEntry, A::Error> {
                StatementGroup::deserialize(de::value::MapAccessDeserializer::new(map)).map(StatementsEntry::Group)
            }
        }
        d.deserialize_any(V)
    }
}
