use super::*;
use crate::config::component::CollectorOnly;
use crate::config::Duration;
use serde::Deserialize;
use std::collections::BTreeMap;

/// How a queue behaves when full.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
enum WhenFull {
    #[default]
    Block,
    DropNewest,
}

/// Settings of a retry loop.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Retry {
    /// First wait after a failure. Later waits grow.
    initial_interval: Duration,
    /// What to do when full.
    when_full: WhenFull,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { initial_interval: Duration::from_secs(5), when_full: WhenFull::Block }
    }
}

/// A rule that may nest rules.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Rule {
    /// The rule's name, e.g. `errors`.
    name: String,
    /// Rules all of which must hold.
    all_of: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// Where to send, `host:port`.
    endpoint: String,
    /// How long to wait.
    timeout: Option<Duration>,
    /// Retries after a failure.
    retry: Retry,
    /// Rules, in order.
    rules: Vec<Rule>,
    /// Extra headers.
    #[schemars(extend("x-sensitive" = true))]
    headers: BTreeMap<String, String>,
    /// The Collector's field.
    balancer_name: Option<CollectorOnly>,
}

fn field<'a>(all: &'a [Field], path: &str) -> &'a Field {
    all.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no field {path} in {all:#?}"))
}

#[test]
fn fields_have_paths_types_defaults_allowed_values_and_first_sentences() {
    let all = fields(&schema_of::<Settings>());
    let paths: Vec<&str> = all.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "endpoint",
            "timeout",
            "retry",
            "retry.initial_interval",
            "retry.when_full",
            "rules",
            "rules[].name",
            "rules[].all_of",
            "headers",
            "balancer_name"
        ]
    );
    let interval = field(&all, "retry.initial_interval");
    assert_eq!(interval.type_words, "duration");
    assert_eq!(interval.default.as_deref(), Some("5s"));
    assert_eq!(interval.description, "First wait after a failure.");
    let when_full = field(&all, "retry.when_full");
    assert_eq!(when_full.allowed, ["block", "drop_newest"]);
    assert_eq!(when_full.default.as_deref(), Some("block"));
    assert_eq!(field(&all, "timeout").type_words, "duration");
    assert_eq!(field(&all, "timeout").default, None);
    assert_eq!(field(&all, "endpoint").default.as_deref(), Some("\"\""));
    assert_eq!(field(&all, "rules[].name").description, "The rule's name, e.g. `errors`.");
    assert_eq!(field(&all, "headers").type_words, "map of string");
    assert!(field(&all, "balancer_name").collector_only);
    assert!(!field(&all, "endpoint").collector_only);
}

#[test]
fn a_type_that_contains_itself_is_listed_once() {
    let all = fields(&schema_of::<Settings>());
    let nested = field(&all, "rules[].all_of");
    assert_eq!(nested.same_as.as_deref(), Some("`rules[]` (each item)"));
    assert!(!all.iter().any(|f| f.path.starts_with("rules[].all_of[]")));
}

#[test]
fn effective_settings_fill_defaults_and_leave_out_unset_options() {
    let node =
        crate::config::node::parse("endpoint: collector:4317\nretry: {when_full: drop_newest}\n").unwrap().unwrap();
    let mut errors = Vec::new();
    let v = effective_of::<Settings>(&node, "exporters::x", &mut errors).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(v["endpoint"], "collector:4317");
    assert_eq!(v["retry"]["initial_interval"], "5s");
    assert_eq!(v["retry"]["when_full"], "drop_newest");
    assert!(v.get("timeout").is_none(), "{v}");
    assert!(v.get("balancer_name").is_none(), "{v}");
}

#[test]
fn effective_settings_report_every_error() {
    let node = crate::config::node::parse("endpoint: [1]\nretry: {when_full: sometimes}\n").unwrap().unwrap();
    let mut errors = Vec::new();
    assert!(effective_of::<Settings>(&node, "exporters::x", &mut errors).is_none());
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["exporters::x::endpoint", "exporters::x::retry::when_full"], "{errors:?}");
}

#[test]
fn sensitive_values_are_redacted_and_their_keys_kept() {
    let node = crate::config::node::parse("endpoint: a:1\nheaders: {x-api-key: abc, x-tenant: t1}\n").unwrap().unwrap();
    let mut errors = Vec::new();
    let mut v = effective_of::<Settings>(&node, "x", &mut errors).unwrap();
    redact(&mut v, &schema_of::<Settings>());
    assert_eq!(v["headers"]["x-api-key"], "[REDACTED]");
    assert_eq!(v["headers"]["x-tenant"], "[REDACTED]");
    assert_eq!(v["endpoint"], "a:1");
}

#[test]
fn yaml_out_quotes_what_would_read_back_as_something_else() {
    let v = serde_json::json!({
        "plain": "collector:4317",
        "empty": "",
        "looks_bool": "true",
        "looks_null": "null",
        "looks_int": "1_000",
        "looks_float": "1.5",
        "colon_space": "a: b",
        "hash": "a #b",
        "dash": "-x",
        "star": "*",
        "newline": "a\nb",
        "env": "${env:X}",
        "int": 5,
        "list": ["a", {"k": 1, "m": [1, 2]}, []],
        "map": {},
        "nested": {"deep": {"x": false}},
    });
    let text = to_yaml(&v);
    let node = crate::config::node::parse(&text).unwrap().unwrap();
    let back: serde_json::Value = crate::config::de::from_node(&node, "").unwrap();
    assert_eq!(back, v, "{text}");
    assert!(text.contains("plain: collector:4317\n"), "{text}");
    assert!(text.contains("looks_bool: \"true\"\n"), "{text}");
}

#[test]
fn first_sentence_stops_at_the_first_full_stop_but_not_at_abbreviations() {
    assert_eq!(first_sentence("Waits, e.g. 5s. Then\n more."), "Waits, e.g. 5s.");
    assert_eq!(first_sentence("No stop at all"), "No stop at all");
    assert_eq!(first_sentence("  Spread\n   over lines. x"), "Spread over lines.");
}
