//! `include` / `exclude` of the `attributes` processor: the Collector's
//! match properties. An item is acted on when it matches `include` (if set)
//! and does not match `exclude` (if set).
//!
//! Within one match properties every property that is set must match (AND);
//! within a list of names any one may match (OR); every entry of
//! `attributes` and `resources` must match. `match_type: strict` compares
//! names and values exactly (values with their type); `regexp` matches names
//! and the string form of values with a regex (unanchored, as Go's
//! `MatchString`). An entry without `value` matches when the key is present.
//!
//! `services` (the resource's `service.name`), `attributes` and `resources`
//! apply to every signal. `span_names` applies to spans, `log_bodies` and
//! `log_severity_texts` to log records, `metric_names` to metric data
//! points: on another signal such a property matches nothing.

use super::actions::{as_string, regex_error, LiteralValue};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const MATCH_TYPES: &[&str] = &["strict", "regexp"];

/// One `include:` or `exclude:` as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// `strict` (equality) or `regexp` (unanchored). Required.
    #[serde(default)]
    pub match_type: String,
    /// The resource's `service.name`; any may match.
    #[serde(default)]
    pub services: Vec<String>,
    /// Span names; any may match (spans only).
    #[serde(default)]
    pub span_names: Vec<String>,
    /// String bodies of log records; any may match (logs only).
    #[serde(default)]
    pub log_bodies: Vec<String>,
    /// Severity texts of log records; any may match (logs only).
    #[serde(default)]
    pub log_severity_texts: Vec<String>,
    /// Metric names; any may match (metrics only).
    #[serde(default)]
    pub metric_names: Vec<String>,
    /// Item attributes; all must match.
    #[serde(default)]
    pub attributes: Vec<AttributeMatchConfig>,
    /// Resource attributes; all must match.
    #[serde(default)]
    pub resources: Vec<AttributeMatchConfig>,
    /// The Collector's regexp cache settings: accepted (sluice's regexes
    /// need no result cache).
    #[serde(default)]
    pub regexp: Option<RegexpCacheConfig>,
    /// Not implemented (yet): span kinds, scopes, log severity numbers, expr.
    #[serde(default)]
    pub span_kinds: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub libraries: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub log_severity_number: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub expressions: Option<crate::config::component::CollectorOnly>,
}

/// `regexp:` of a Collector match block (filterset's cache of match results).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegexpCacheConfig {
    /// Accepted for compatibility: sluice's regexes cache nothing.
    pub cacheenabled: bool,
    /// Accepted for compatibility: sluice's regexes cache nothing.
    pub cachemaxnumentries: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatchConfig {
    /// Attribute key; the attribute must be present.
    pub key: String,
    /// When given, the value it must have (or, under `regexp`, match).
    #[serde(default)]
    pub value: Option<LiteralValue>,
}

/// A match-properties error: `field` and optional index below the match properties.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchError {
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Debug, Clone)]
enum Names {
    Strict(Vec<String>),
    Regexp(Vec<Regex>),
}

impl Names {
    fn matches(&self, s: &str) -> bool {
        match self {
            Names::Strict(v) => v.iter().any(|n| n == s),
            Names::Regexp(v) => v.iter().any(|r| r.is_match(s)),
        }
    }
}

#[derive(Debug, Clone)]
enum ValueMatch {
    Any,
    Equal(AnyValue),
    Regexp(Regex),
}

#[derive(Debug, Clone)]
struct AttrMatch {
    key: String,
    value: ValueMatch,
}

fn attrs_match(wanted: &[AttrMatch], attrs: &[KeyValue]) -> bool {
    wanted.iter().all(|w| {
        let Some(kv) = attrs.iter().find(|kv| kv.key == w.key) else { return false };
        match &w.value {
            ValueMatch::Any => true,
            ValueMatch::Equal(v) => kv.value.as_ref().map(|x| &x.value) == Some(&v.value),
            ValueMatch::Regexp(r) => match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => r.is_match(s),
                other => r.is_match(&as_string(other)),
            },
        }
    })
}

/// What an item offers to matching.
pub struct Item<'a> {
    pub resource: &'a [KeyValue],
    pub attributes: &'a [KeyValue],
    pub span_name: Option<&'a str>,
    pub log_body: Option<&'a AnyValue>,
    pub severity_text: Option<&'a str>,
    pub metric_name: Option<&'a str>,
}

/// Compiled match properties.
#[derive(Debug, Clone)]
pub struct Matcher {
    services: Option<Names>,
    span_names: Option<Names>,
    log_bodies: Option<Names>,
    log_severity_texts: Option<Names>,
    metric_names: Option<Names>,
    attributes: Vec<AttrMatch>,
    resources: Vec<AttrMatch>,
}

impl Matcher {
    pub fn compile(c: &MatchConfig) -> Result<Matcher, Vec<MatchError>> {
        let mut errors = Vec::new();
        let regexp = match c.match_type.trim() {
            "strict" => false,
            "regexp" => true,
            "" => {
                errors.push(MatchError {
                    path: vec!["match_type".into()],
                    message: "match_type is required".into(),
                    hint: Some("strict or regexp".into()),
                });
                false
            }
            other => {
                let hint = crate::config::suggest::did_you_mean(other, MATCH_TYPES.iter().copied())
                    .map_or("strict or regexp".to_string(), |s| format!("{s} match_type is strict or regexp"));
                errors.push(MatchError {
                    path: vec!["match_type".into()],
                    message: format!("unknown match_type \"{other}\""),
                    hint: Some(hint),
                });
                false
            }
        };
        let regex = |path: Vec<String>, p: &str, errors: &mut Vec<MatchError>| match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(MatchError {
                    path,
                    message: format!("invalid regex \"{p}\": {}", regex_error(&e)),
                    hint: None,
                });
                None
            }
        };
        let names = |field: &str, list: &[String], errors: &mut Vec<MatchError>| -> Option<Names> {
            if list.is_empty() {
                return None;
            }
            if !regexp {
                return Some(Names::Strict(list.to_vec()));
            }
            let v = list
                .iter()
                .enumerate()
                .filter_map(|(i, p)| regex(vec![field.to_string(), i.to_string()], p, errors))
                .collect();
            Some(Names::Regexp(v))
        };
        let services = names("services", &c.services, &mut errors);
        let span_names = names("span_names", &c.span_names, &mut errors);
        let log_bodies = names("log_bodies", &c.log_bodies, &mut errors);
        let log_severity_texts = names("log_severity_texts", &c.log_severity_texts, &mut errors);
        let metric_names = names("metric_names", &c.metric_names, &mut errors);
        let attr_list = |field: &str, list: &[AttributeMatchConfig], errors: &mut Vec<MatchError>| {
            let mut out = Vec::new();
            for (i, a) in list.iter().enumerate() {
                let path = |f: &str| vec![field.to_string(), i.to_string(), f.to_string()];
                if a.key.is_empty() {
                    errors.push(MatchError { path: path("key"), message: "key must not be empty".into(), hint: None });
                }
                let value = match (&a.value, regexp) {
                    (None, _) => ValueMatch::Any,
                    (Some(v), false) => ValueMatch::Equal(v.to_any()),
                    (Some(LiteralValue::Str(p)), true) => match regex(path("value"), p, errors) {
                        Some(r) => ValueMatch::Regexp(r),
                        None => ValueMatch::Any,
                    },
                    (Some(_), true) => {
                        errors.push(MatchError {
                            path: path("value"),
                            message: "with match_type regexp, value must be a string (a regex)".into(),
                            hint: Some("quote it, e.g. value: \"^5\\\\d\\\\d$\"".into()),
                        });
                        ValueMatch::Any
                    }
                };
                out.push(AttrMatch { key: a.key.clone(), value });
            }
            out
        };
        let attributes = attr_list("attributes", &c.attributes, &mut errors);
        let resources = attr_list("resources", &c.resources, &mut errors);
        let m = Matcher { services, span_names, log_bodies, log_severity_texts, metric_names, attributes, resources };
        if m.services.is_none()
            && m.span_names.is_none()
            && m.log_bodies.is_none()
            && m.log_severity_texts.is_none()
            && m.metric_names.is_none()
            && m.attributes.is_empty()
            && m.resources.is_empty()
            && errors.is_empty()
        {
            errors.push(MatchError {
                path: vec![],
                message: "no property to match on".into(),
                hint: Some(
                    "set at least one of services, span_names, log_bodies, log_severity_texts, metric_names, \
                     attributes, resources"
                        .into(),
                ),
            });
        }
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(errors)
        }
    }

    pub fn matches(&self, item: &Item) -> bool {
        fn check(names: &Option<Names>, value: Option<&str>) -> bool {
            match (names, value) {
                (None, _) => true,
                (Some(n), Some(v)) => n.matches(v),
                (Some(_), None) => false,
            }
        }
        if let Some(s) = &self.services {
            let service = item.resource.iter().find(|kv| kv.key == "service.name");
            let name = match service.and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.as_str(),
                _ => "",
            };
            if !s.matches(name) {
                return false;
            }
        }
        if !check(&self.span_names, item.span_name)
            || !check(&self.log_severity_texts, item.severity_text)
            || !check(&self.metric_names, item.metric_name)
        {
            return false;
        }
        if let Some(b) = &self.log_bodies {
            let Some(body) = item.log_body else { return false };
            let matched = match body.value.as_ref() {
                Some(Value::StringValue(s)) => b.matches(s),
                other => b.matches(&as_string(other)),
            };
            if !matched {
                return false;
            }
        }
        attrs_match(&self.resources, item.resource) && attrs_match(&self.attributes, item.attributes)
    }
}

/// `include` and `exclude` together.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Option<Matcher>,
    pub exclude: Option<Matcher>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether the actions apply to this item.
    pub fn selects(&self, item: &Item) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(item)) && !self.exclude.as_ref().is_some_and(|m| m.matches(item))
    }
}
