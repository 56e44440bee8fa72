//! What a component's settings look like, taken from the settings type
//! itself: its JSON Schema (derived with `schemars` from the struct, its serde
//! attributes and its doc comments) and its typed value with defaults filled
//! in. `sluice components TYPE`, `sluice print-config` and the README's
//! component table are all made from here, so a field, default or doc
//! comment changed in the struct changes every one of them.
//!
//! Guarantees: [`fields`] lists every field the type reads, nested ones by
//! their dotted path, each once (a type that contains itself is listed once,
//! and its nested use points back to it); [`to_yaml`] writes YAML that
//! sluice's own loader reads back to the same values; [`redact`] replaces
//! every value whose schema is marked [`SENSITIVE_KEY`].

use super::component::typed_all;
use super::component::COLLECTOR_ONLY_KEY;
use super::error::ConfigError;
use super::node::Node;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Schema keyword of a secret (a password, token or private key): printed
/// as `[REDACTED]` by `print-config`. Put it on a field with
/// `#[schemars(extend("x-sensitive" = true))]`.
pub const SENSITIVE_KEY: &str = "x-sensitive";

/// A component's settings type, seen from outside: its schema, and its
/// settings typed and written back with every default filled in.
#[derive(Clone, Copy)]
pub struct SettingsType {
    pub schema: fn() -> Value,
    pub effective: fn(&Node, &str, &mut Vec<ConfigError>) -> Option<Value>,
}

impl SettingsType {
    pub const fn of<T: DeserializeOwned + Serialize + JsonSchema>() -> SettingsType {
        SettingsType { schema: schema_of::<T>, effective: effective_of::<T> }
    }
}

/// The JSON Schema of `T`, every type it names in `$defs`.
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// `node` typed as `T` and written back: the settings as sluice runs them,
/// defaults included. Unset optional fields are left out.
pub fn effective_of<T: DeserializeOwned + Serialize>(
    node: &Node,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Value> {
    let typed: T = typed_all(node, path, errors)?;
    match serde_json::to_value(&typed) {
        Ok(mut v) => {
            drop_nulls(&mut v);
            Some(v)
        }
        Err(e) => {
            errors.push(ConfigError::new(path, Some(node.line), format!("cannot print the settings: {e}")));
            None
        }
    }
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// One field of a settings type, as `sluice components TYPE` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Dotted from the component's top: `retry_on_failure.max_interval`;
    /// a list's items add `[]`: `policies[].name`.
    pub path: String,
    /// In words: `duration`, `integer`, `list of string`, `map of string`.
    pub type_words: String,
    /// The default as YAML would write it, when the type has one.
    pub default: Option<String>,
    /// The values it takes, when they are a fixed set.
    pub allowed: Vec<String>,
    /// The first sentence of the field's doc comment.
    pub description: String,
    /// The Collector has it; sluice refuses it.
    pub collector_only: bool,
    /// Names a type already listed above (a type that contains itself).
    pub same_as: Option<String>,
}

/// Every field of the settings `schema` describes, depth first, in
/// declaration order.
pub fn fields(schema: &Value) -> Vec<Field> {
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    walk_object(schema, &defs, "", None, &mut seen, &mut out);
    out
}

/// The schema `s` points to, following `$ref` into `$defs`.
fn resolve<'a>(s: &'a Value, defs: &'a Map<String, Value>) -> (&'a Value, Option<String>) {
    let mut s = s;
    let mut name = None;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(def) => match defs.get(def) {
                Some(target) => {
                    name = Some(def.to_string());
                    s = target;
                }
                None => break,
            },
            None => break,
        }
    }
    (s, name)
}

/// `Option<T>` is `anyOf: [T, null]` or `type: [t, "null"]`: the T part.
fn non_null(s: &Value) -> &Value {
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let rest: Vec<&Value> = alts.iter().filter(|a| a.get("type") != Some(&Value::from("null"))).collect();
            if rest.len() == 1 && alts.len() == 2 {
                return rest[0];
            }
        }
    }
    s
}

fn walk_object(
    s: &Value,
    defs: &Map<String, Value>,
    prefix: &str,
    defaults: Option<&Value>,
    seen: &mut Vec<(String, String)>,
    out: &mut Vec<Field>,
) {
    let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
    // A container's own default (`#[serde(default)]` on the struct) holds
    // each field's default.
    let own_defaults = s.get("default").or(defaults);
    for (name, field_schema) in props {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let inner = non_null(field_schema);
        let (target, def_name) = resolve(inner, defs);
        let target = non_null(target);
        let default = field_schema.get("default").or_else(|| own_defaults.and_then(|d| d.get(name)));
        let description = first_sentence(
            field_schema
                .get("description")
                .or_else(|| inner.get("description"))
                .or_else(|| target.get("description"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let collector_only = inner.get(COLLECTOR_ONLY_KEY).is_some() || target.get(COLLECTOR_ONLY_KEY).is_some();
        let same_as = def_name.as_ref().and_then(|d| seen.iter().find(|(n, _)| n == d).map(|(_, p)| p.clone()));
        out.push(Field {
            path: path.clone(),
            type_words: type_words(target, defs, 0),
            default: default.filter(|d| !d.is_null() && !d.is_object() && !is_empty_container(d)).map(scalar_words),
            allowed: allowed_values(target),
            description,
            collector_only,
            same_as: same_as.as_ref().map(|p| format!("`{p}`")),
        });
        if same_as.is_some() || collector_only {
            continue;
        }
        let pushed = def_name.map(|d| {
            seen.push((d, path.clone()));
        });
        if target.get("properties").is_some() {
            walk_object(target, defs, &path, default, seen, out);
        } else if let Some(items) = target.get("items") {
            let (item, item_def) = resolve(non_null(items), defs);
            let item = non_null(item);
            if item.get("properties").is_some() {
                let item_path = format!("{path}[]");
                let repeat = item_def.as_ref().and_then(|d| seen.iter().find(|(n, _)| n == d).map(|(_, p)| p.clone()));
                if repeat.is_none() {
                    let pushed_item = item_def.map(|d| seen.push((d, item_path.clone())));
                    walk_object(item, defs, &item_path, None, seen, out);
                    if pushed_item.is_some() {
                        seen.pop();
                    }
                } else if let Some(last) = out.last_mut() {
                    last.same_as = repeat.map(|p| format!("`{p}` (each item)"));
                }
            }
        } else if let Some(values) = target.get("additionalProperties").filter(|v| v.is_object()) {
            let (value, _) = resolve(non_null(values), defs);
            if value.get("properties").is_some() {
                walk_object(non_null(value), defs, &format!("{path}.<name>"), None, seen, out);
            }
        }
        if pushed.is_some() {
            seen.pop();
        }
    }
}

fn is_empty_container(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.is_empty()) || matches!(v, Value::Object(o) if o.is_empty())
}

/// A default as a user writes it: strings bare, lists and maps as flow YAML.
fn scalar_words(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => s.clone(),
        other => {
            let mut text = to_yaml_flow(other);
            if text.len() > 60 {
                text.truncate(57);
                text.push_str("...");
            }
            text
        }
    }
}

fn to_yaml_flow(v: &Value) -> String {
    match v {
        Value::Array(items) => format!("[{}]", items.iter().map(to_yaml_flow).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", yaml_string(k), to_yaml_flow(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => yaml_string(s),
        other => other.to_string(),
    }
}

/// The fixed values of an enum-like schema: `enum`, or `oneOf` of `const`s.
fn allowed_values(s: &Value) -> Vec<String> {
    let word = |v: &Value| match v {
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values.iter().filter(|v| !v.is_null()).map(word).collect();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let mut out = Vec::new();
            for a in alts {
                if let Some(c) = a.get("const") {
                    out.push(word(c));
                } else if let Some(values) = a.get("enum").and_then(Value::as_array) {
                    out.extend(values.iter().filter(|v| !v.is_null()).map(word));
                } else {
                    return Vec::new();
                }
            }
            return out;
        }
    }
    Vec::new()
}

fn type_words(s: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    if depth > 4 {
        return "value".to_string();
    }
    let s = non_null(resolve(s, defs).0);
    if s.get(COLLECTOR_ONLY_KEY).is_some() {
        return "(the Collector's)".to_string();
    }
    if let Some(format) = s.get("format").and_then(Value::as_str) {
        match format {
            "duration" => return "duration".to_string(),
            "byte-size" => return "size".to_string(),
            _ => {}
        }
    }
    if !allowed_values(s).is_empty() && s.get("type").is_none() {
        // A unit enum: `oneOf` of string constants.
        return "string".to_string();
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        ["array"] => match s.get("items") {
            Some(items) => format!("list of {}", type_words(items, defs, depth + 1)),
            None => "list".to_string(),
        },
        ["object"] => match s.get("additionalProperties").filter(|v| v.is_object()) {
            Some(values) if s.get("properties").is_none() => {
                format!("map of {}", type_words(values, defs, depth + 1))
            }
            _ => "mapping".to_string(),
        },
        ["integer"] => "integer".to_string(),
        ["number"] => "number".to_string(),
        ["boolean"] => "bool".to_string(),
        ["string"] => "string".to_string(),
        [] => "value".to_string(),
        many => many.iter().map(|t| if *t == "boolean" { "bool" } else { t }).collect::<Vec<_>>().join(" or "),
    }
}

/// The first sentence of a doc comment, on one line.
pub fn first_sentence(doc: &str) -> String {
    let one_line = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = one_line.len();
    for (i, _) in one_line.match_indices(". ") {
        // "e.g. x" and "i.e. x" do not end a sentence.
        let before = &one_line[..i];
        if before.ends_with("e.g") || before.ends_with("i.e") || before.ends_with("etc") {
            continue;
        }
        end = i + 1;
        break;
    }
    one_line[..end].to_string()
}

/// Replaces every value the schema marks [`SENSITIVE_KEY`] with `[REDACTED]`.
pub fn redact(value: &mut Value, schema: &Value) {
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    redact_at(value, schema, &defs, 0);
}

fn redact_at(value: &mut Value, s: &Value, defs: &Map<String, Value>, depth: usize) {
    if depth > 32 {
        return;
    }
    let s = non_null(resolve(non_null(s), defs).0);
    if s.get(SENSITIVE_KEY).is_some() {
        redact_all(value);
        return;
    }
    match value {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties").filter(|v| v.is_object());
            for (k, v) in map.iter_mut() {
                if let Some(field) = props.and_then(|p| p.get(k)).or(extra) {
                    if field.get(SENSITIVE_KEY).is_some() {
                        redact_all(v);
                    } else {
                        redact_at(v, field, defs, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                items.iter_mut().for_each(|v| redact_at(v, item_schema, defs, depth + 1));
            }
        }
        _ => {}
    }
}

/// A secret's every string is redacted; a map of secrets (headers) keeps
/// its keys.
fn redact_all(v: &mut Value) {
    match v {
        Value::Object(map) => map.values_mut().for_each(redact_all),
        Value::Array(items) => items.iter_mut().for_each(redact_all),
        Value::String(s) if !s.is_empty() => *s = "[REDACTED]".to_string(),
        _ => {}
    }
}

/// `v` as block YAML, two spaces an indent level, keys in the order given.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        other => {
            out.push_str(&to_yaml_flow(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(k));
        out.push(':');
        write_value(v, indent, out);
    }
}

fn write_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                out.push_str(&" ".repeat(indent + 2));
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the rest under it.
                        let mut first = true;
                        for (k, v) in map {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                out.push_str(&" ".repeat(indent + 4));
                            }
                            out.push_str(&yaml_string(k));
                            out.push(':');
                            write_value(v, indent + 4, out);
                        }
                    }
                    Value::Array(inner) if !inner.is_empty() => {
                        out.push(' ');
                        out.push_str(&to_yaml_flow(item));
                        out.push('\n');
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&to_yaml_flow(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push(' ');
            out.push_str(&to_yaml_flow(other));
            out.push('\n');
        }
    }
}

/// A string as YAML: plain when it cannot be read as anything else, else
/// double-quoted with JSON's escapes (which YAML reads the same).
fn yaml_string(s: &str) -> String {
    let plain_char = |c: char| c.is_ascii_alphanumeric() || "_./:@+-${}".contains(c);
    let plain = !s.is_empty()
        && s.chars().all(plain_char)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.')
        && !s.ends_with(':')
        && !s.contains("${")
        && !super::node::is_null_text(s)
        && !matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n")
        && !looks_numeric(s);
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn looks_numeric(s: &str) -> bool {
    let t = s.replace('_', "");
    t.parse::<f64>().is_ok()
        || t.starts_with("0x")
        || t.starts_with("0o")
        || t.starts_with(".")
        || t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.chars().all(|c| c.is_ascii_digit() || c == ':')
}

#[cfg(test)]
#[path = "describe_tests.rs"]
mod tests;
