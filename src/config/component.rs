//! What every component has in common, whatever its kind: its type name and
//! aliases, the signals it takes, and the step that turns its YAML node into
//! its compiled form.
//!
//! Guarantee: a [`Factory`]'s `compile` either returns the compiled form,
//! ready to build without further checks, or pushes every error it found in
//! the component's settings (each with its YAML path, line and hint). The
//! kinds' own contracts (what a compiled processor, exporter, receiver or
//! extension can do) live with each kind; this module knows none of them.

use super::de::from_node;
use super::error::ConfigError;
use super::expand::join;
use super::node::{Node, Value};
use crate::data::Signal;
use serde::de::DeserializeOwned;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Receiver,
    Processor,
    Exporter,
    Connector,
    Extension,
}

impl ComponentKind {
    /// The top-level section name (`receivers`, ...).
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receivers",
            ComponentKind::Processor => "processors",
            ComponentKind::Exporter => "exporters",
            ComponentKind::Extension => "extensions",
            ComponentKind::Connector => "connectors",
        }
    }

    /// The singular, as in "unknown processor type".
    pub fn word(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receiver",
            ComponentKind::Processor => "processor",
            ComponentKind::Exporter => "exporter",
            ComponentKind::Extension => "extension",
            ComponentKind::Connector => "connector",
        }
    }
}

/// A component type's identity card: `sluice components` prints it.
#[derive(Debug, Clone, Copy)]
pub struct ComponentMeta {
    pub kind: ComponentKind,
    /// Canonical type name.
    pub name: &'static str,
    /// Other names the Collector or sluice accept for it.
    pub aliases: &'static [&'static str],
    /// Signals of the pipelines it may be in; empty for extensions.
    pub signals: &'static [Signal],
    pub description: &'static str,
    /// A minimal working body of its settings, as block YAML (empty: it
    /// needs none). `sluice components TYPE` prints it, and a test loads and
    /// starts it in a pipeline of every signal the type takes.
    pub example: &'static str,
}

impl ComponentMeta {
    pub fn is_named(&self, type_name: &str) -> bool {
        self.name == type_name || self.aliases.contains(&type_name)
    }

    /// Whether it can be used in a pipeline of `signal`, else why not.
    pub fn check_signal(&self, signal: Signal) -> Result<(), String> {
        if self.signals.contains(&signal) {
            return Ok(());
        }
        let supported: Vec<&str> = self.signals.iter().map(|s| s.as_str()).collect();
        Err(if supported.is_empty() {
            format!("{} \"{}\" cannot be used in pipelines", self.kind.word(), self.name)
        } else {
            format!(
                "{} \"{}\" does not support {signal}; it supports {}",
                self.kind.word(),
                self.name,
                supported.join(", ")
            )
        })
    }
}

pub const ALL_SIGNALS: &[Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];

/// Facts about the machine a config is loaded on that some components'
/// validation needs (`memory_limiter`'s `limit_percentage`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadEnv {
    pub total_memory: Option<u64>,
}

/// One component's settings being compiled: its YAML node, its path, and
/// where its errors go.
pub struct ComponentInput<'a> {
    pub node: &'a Node,
    pub path: &'a str,
    pub env: LoadEnv,
    pub errors: &'a mut Vec<ConfigError>,
}

impl ComponentInput<'_> {
    /// Types the settings, reporting every field that does not type (see
    /// [`typed_all`]).
    pub fn typed<T: DeserializeOwned>(&mut self) -> Option<T> {
        typed_all(self.node, self.path, self.errors)
    }

    /// A checker of the typed settings' values.
    pub fn checker(&mut self) -> Checker<'_> {
        Checker { path: self.path, node: self.node, errors: self.errors }
    }

    /// Runs `check` and says whether it found nothing wrong.
    pub fn check(&mut self, check: impl FnOnce(&mut Checker)) -> bool {
        let before = self.errors.len();
        check(&mut self.checker());
        self.errors.len() == before
    }
}

/// How a component type is loaded: its identity and its compile step,
/// which yields the kind's compiled form `S` (a trait object).
pub struct Factory<S: ?Sized + 'static> {
    pub meta: ComponentMeta,
    /// The settings type `compile` reads, for `sluice components` and
    /// `print-config`: `SettingsType::of::<TheConfig>()`.
    pub settings: super::describe::SettingsType,
    pub compile: fn(&mut ComponentInput<'_>) -> Option<Arc<S>>,
}

/// Whether two compiled components have the same settings: a config reload
/// keeps a running part whose settings did not change. Every compiled form
/// whose type compares with `==` has it.
pub trait SameSettings: std::any::Any {
    fn same_settings(&self, other: &dyn std::any::Any) -> bool;
}

impl<T: PartialEq + std::any::Any> SameSettings for T {
    fn same_settings(&self, other: &dyn std::any::Any) -> bool {
        other.downcast_ref::<T>().is_some_and(|o| o == self)
    }
}

/// What every kind's compiled-form trait object has: `downcast_ref` to its
/// own type (tests, settings a caller knows the type of), and `==` by
/// [`SameSettings`].
macro_rules! compiled_form {
    ($object:ty) => {
        impl $object {
            /// The compiled form as its own type.
            pub fn downcast_ref<T: std::any::Any>(&self) -> Option<&T> {
                (self as &dyn std::any::Any).downcast_ref::<T>()
            }
        }

        impl PartialEq for $object {
            fn eq(&self, other: &Self) -> bool {
                $crate::config::component::SameSettings::same_settings(self, other as &dyn std::any::Any)
            }
        }
    };
}
pub(crate) use compiled_form;

/// Most fields a component's settings may get wrong before typing stops
/// looking for more (each found error costs one more typing pass).
const MAX_TYPING_ERRORS: usize = 32;

/// Types `node` into `T`, reporting every field that does not type, not just
/// the first: serde stops at the first error, so the offending field is taken
/// out of the node (an unknown or ill-typed field; for a missing one there is
/// nothing to take out) and typing runs again, until it succeeds or nothing
/// more can be taken out. `None` if anything was wrong.
pub fn typed_all<T: DeserializeOwned>(node: &Node, path: &str, errors: &mut Vec<ConfigError>) -> Option<T> {
    let mut work: Option<Node> = None;
    let mut found = 0;
    // Paths (relative, as written) taken out so far, and list items taken
    // out: (the list's path, the item's index as written).
    let mut removed: Vec<String> = Vec::new();
    let mut removed_items: Vec<(String, usize)> = Vec::new();
    loop {
        let current = work.as_ref().unwrap_or(node);
        match from_node::<T>(current, path) {
            Ok(v) if found == 0 => return Some(v),
            Ok(_) => return None,
            Err(mut e) => {
                let Some(relative) = e.path.strip_prefix(path).map(|r| r.trim_start_matches("::").to_string()) else {
                    errors.push(e);
                    return None;
                };
                let (written, parts) = as_written(&relative, &removed_items);
                // A required field taken out for being ill-typed is now
                // missing too: that was reported already.
                let missing = e.message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`'));
                if missing.is_some_and(|f| removed.contains(&join(&written, f).trim_start_matches("::").to_string())) {
                    return None;
                }
                found += 1;
                name_collector_only(&mut e);
                if !written.is_empty() {
                    e.path = join(path, &written);
                    e.line = Some(line_at(node, &parts));
                }
                errors.push(e);
                if relative.is_empty() || found >= MAX_TYPING_ERRORS {
                    return None;
                }
                let mut next = current.clone();
                match remove_path(&mut next, &relative) {
                    Removed::Nothing => return None,
                    Removed::Field => removed.push(written),
                    Removed::Item => {
                        let list = parts[..parts.len() - 1].join("::");
                        let original = parts.last().and_then(|p| p.parse().ok()).unwrap_or(0);
                        removed_items.push((list, original));
                    }
                }
                work = Some(next);
            }
        }
    }
}

/// A path in the node being typed (from which list items were taken out)
/// as the user wrote it: each list index shifted past the items taken out
/// before it. Returns the `::`-joined path and its parts.
fn as_written(relative: &str, removed_items: &[(String, usize)]) -> (String, Vec<String>) {
    let mut parts: Vec<String> = Vec::new();
    for seg in relative.split("::").filter(|s| !s.is_empty()) {
        let list = parts.join("::");
        let mut written = seg.to_string();
        if let Ok(mut index) = seg.parse::<usize>() {
            let mut gone: Vec<usize> = removed_items.iter().filter(|(l, _)| *l == list).map(|(_, i)| *i).collect();
            gone.sort_unstable();
            for g in gone {
                if g <= index {
                    index += 1;
                }
            }
            written = index.to_string();
        }
        parts.push(written);
    }
    (parts.join("::"), parts)
}

enum Removed {
    Nothing,
    Field,
    Item,
}

/// Removes the node at a `::`-joined path (map keys and sequence indexes).
fn remove_path(node: &mut Node, path: &str) -> Removed {
    // Keys may hold "::" only in theory; component fields never do.
    let parts: Vec<&str> = path.split("::").collect();
    let Some((last, parents)) = parts.split_last() else { return Removed::Nothing };
    let mut cur = node;
    for p in parents {
        let next = match &mut cur.value {
            Value::Map(entries) => entries.iter_mut().find(|e| e.key == *p).map(|e| &mut e.value),
            Value::Seq(items) => p.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            Value::Scalar(..) => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Removed::Nothing,
        }
    }
    match &mut cur.value {
        Value::Map(entries) => {
            let before = entries.len();
            entries.retain(|e| e.key != *last);
            if entries.len() != before {
                Removed::Field
            } else {
                Removed::Nothing
            }
        }
        Value::Seq(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                Removed::Item
            }
            _ => Removed::Nothing,
        },
        Value::Scalar(..) => Removed::Nothing,
    }
}

/// A Collector setting sluice does not implement (yet). As a field of a
/// config struct (`#[serde(default)] pub balancer_name: Option<CollectorOnly>`)
/// it turns the Collector's field into a clear error instead of an "unknown
/// field" that reads like a typo: "the Collector has `balancer_name`; sluice
/// does not support it (yet)".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CollectorOnly;

const COLLECTOR_ONLY: &str = "\u{0}collector-only";

impl<'de> serde::Deserialize<'de> for CollectorOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Err(serde::de::Error::custom(COLLECTOR_ONLY))
    }
}

/// Never set (typing it fails), so it prints as nothing.
impl serde::Serialize for CollectorOnly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

/// Described as the Collector's, not sluice's: `sluice components` lists it
/// apart from the fields sluice reads.
impl schemars::JsonSchema for CollectorOnly {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CollectorOnly".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ COLLECTOR_ONLY_KEY: true })
    }
}

/// The schema keyword that marks a [`CollectorOnly`] field.
pub const COLLECTOR_ONLY_KEY: &str = "x-collector-only";

/// Rewrites the error of a [`CollectorOnly`] field to name the field.
fn name_collector_only(e: &mut ConfigError) {
    if e.message == COLLECTOR_ONLY {
        let field = e.path.rsplit("::").next().unwrap_or_default().to_string();
        e.message = format!("the Collector has `{field}`; sluice does not support it (yet)");
        e.hint = Some(format!("remove `{field}`; the README lists what sluice reads of each component"));
    }
}

/// Collects errors for one component: `path` is the component's path and
/// `node` its body, used to find the line of each field.
pub struct Checker<'a> {
    pub path: &'a str,
    pub node: &'a Node,
    pub errors: &'a mut Vec<ConfigError>,
}

impl Checker<'_> {
    /// An error at a field of the component (`&["retry_on_failure", "multiplier"]`).
    pub fn error(&mut self, field: &[&str], message: impl Into<String>, hint: Option<&str>) {
        let path = field.iter().fold(self.path.to_string(), |p, f| join(&p, f));
        let owned: Vec<String> = field.iter().map(|s| s.to_string()).collect();
        let mut e = ConfigError::new(path, Some(line_at(self.node, &owned)), message);
        e.hint = hint.map(str::to_string);
        self.errors.push(e);
    }

    /// An error at a field path given as owned parts (indexes into lists included).
    pub fn error_at(&mut self, field: &[String], message: impl Into<String>, hint: Option<String>) {
        let path = field.iter().fold(self.path.to_string(), |p, f| join(&p, f));
        let mut e = ConfigError::new(path, Some(line_at(self.node, field)), message);
        e.hint = hint;
        self.errors.push(e);
    }

    /// `value` must be `host:port`.
    pub fn endpoint(&mut self, field: &[&str], value: &str) {
        if let Err(msg) = check_host_port(value) {
            self.error(field, msg, Some("write host:port, e.g. 127.0.0.1:4317 or :4317"));
        }
    }

    /// `value` must be an http(s) URL with a host.
    pub fn url(&mut self, field: &[&str], value: &str) {
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
}

/// `host:port` with a numeric port; an empty host means all interfaces.
pub fn check_host_port(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the endpoint is empty: expected host:port".to_string());
    }
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

/// Line of a path that may index into sequences (`policies`, `2`, `type`):
/// the deepest part of it that exists.
pub fn line_at(node: &Node, path: &[String]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        size: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<u32>,
    }

    fn typed(text: &str) -> (Option<Settings>, Vec<String>) {
        let node = super::super::node::parse(text).unwrap().unwrap();
        let mut errors = Vec::new();
        let v = typed_all::<Settings>(&node, "processors::x", &mut errors);
        (v, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_field_that_does_not_type_is_reported() {
        let (v, errors) =
            typed("count: many\nnmae: x\ninner:\n  size: -1\n  colour: red\nlist:\n  - 1\n  - two\n  - 3\n  - four\n");
        assert_eq!(v, None);
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("processors::x::count (line 1): "), "{errors:#?}");
        assert!(
            errors[1].starts_with("processors::x::nmae (line 2): unknown field \"nmae\"; hint: did you mean \"name\"")
        );
        assert!(errors.iter().any(|e| e.starts_with("processors::x::inner::size (line 4)")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("processors::x::inner::colour (line 5)")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("processors::x::list::1 (line 8)")), "{errors:#?}");
        // Found after item 1 was taken out, still named as written.
        assert!(errors.iter().any(|e| e.starts_with("processors::x::list::3 (line 10)")), "{errors:#?}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // typed only to see what typing reports
    struct WithCollectorOnly {
        #[serde(default)]
        balancer_name: Option<CollectorOnly>,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn a_collector_setting_sluice_lacks_is_named_as_such() {
        let node = super::super::node::parse("balancer_name: round_robin\ncount: x\n").unwrap().unwrap();
        let mut errors = Vec::new();
        assert!(typed_all::<WithCollectorOnly>(&node, "exporters::otlp", &mut errors).is_none());
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert_eq!(
            shown[0],
            "exporters::otlp::balancer_name (line 1): the Collector has `balancer_name`; sluice does not support it \
             (yet); hint: remove `balancer_name`; the README lists what sluice reads of each component"
        );
        // Absent, it is nothing.
        let node = super::super::node::parse("count: 2\n").unwrap().unwrap();
        assert!(typed_all::<WithCollectorOnly>(&node, "exporters::otlp", &mut Vec::new()).is_some());
    }

    #[test]
    fn valid_settings_type_in_one_pass() {
        let (v, errors) = typed("count: 3\nlist: [1]\n");
        assert!(errors.is_empty());
        assert_eq!(v, Some(Settings { count: 3, name: String::new(), inner: None, list: vec![1] }));
    }
}
