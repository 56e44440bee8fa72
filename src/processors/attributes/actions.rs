//! The action engine shared by the `attributes` and `resource` processors:
//! the Collector's `attraction` package. A list of actions is compiled once
//! (regexes included) and applied in order to one attribute list at a time.
//!
//! Semantics follow the Collector:
//! - `insert` sets `key` only when it is absent, `update` only when it is
//!   present, `upsert` always; the value is the literal `value` (its YAML
//!   type kept; sequences and mappings become arrays and maps) or a copy of `from_attribute` of the same item, and the
//!   action does nothing when that attribute is absent.
//! - `delete` and `hash` act on `key` and on every key that `pattern`
//!   matches (`hash` does `key` first, then the matches, so a key named by
//!   both is hashed twice, as in the Collector). `hash` replaces a value by the hex SHA-256 of its bytes
//!   (strings as UTF-8, the empty string included, bools as one byte, ints
//!   and doubles as 8 little-endian bytes); other types become the empty
//!   string. (Collectors before the SHA-256 change used SHA-1, and left an
//!   empty string empty.)
//! - `extract` applies `pattern` (named groups only) to the string value of
//!   `key`; on a match each group is upserted as a string attribute.
//! - `convert` turns the value of `key` into `int`, `double` or `string`;
//!   a value that does not parse is left as it was.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use regex::Regex;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The action names, for validation and hints.
pub const ACTION_NAMES: &[&str] = &["insert", "update", "upsert", "delete", "hash", "extract", "convert"];
/// The `converted_type` names.
pub const CONVERTED_TYPES: &[&str] = &["int", "double", "string"];

/// One entry of `actions:` (attributes) or `attributes:` (resource), as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// The attribute acted on; required except for `delete`/`hash` with `pattern`.
    #[serde(default)]
    pub key: String,
    /// insert, update, upsert, delete, hash, extract or convert (case-insensitive).
    pub action: String,
    /// A literal value: string, int, double or bool.
    #[serde(default)]
    pub value: Option<LiteralValue>,
    /// Take the value from this attribute of the same item.
    #[serde(default)]
    pub from_attribute: Option<String>,
    /// Accepted by the Collector (client metadata); refused by validation here.
    #[serde(default)]
    pub from_context: Option<String>,
    /// A regex: over keys for delete/hash, over the value for extract.
    #[serde(default)]
    pub pattern: Option<String>,
    /// int, double or string, for convert.
    #[serde(default)]
    pub converted_type: Option<String>,
}

/// A literal `value:` with the type YAML gave it; sequences and mappings
/// become OTLP arrays and maps, as the Collector's `FromRaw` makes them.
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralValue {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// A null inside a sequence or mapping: an empty value.
    Empty,
    Array(Vec<LiteralValue>),
    Map(Vec<(String, LiteralValue)>),
}

impl LiteralValue {
    pub(crate) fn to_any(&self) -> AnyValue {
        let v = match self {
            LiteralValue::Str(s) => Value::StringValue(s.clone()),
            LiteralValue::Int(i) => Value::IntValue(*i),
            LiteralValue::Double(d) => Value::DoubleValue(*d),
            LiteralValue::Bool(b) => Value::BoolValue(*b),
            LiteralValue::Empty => return AnyValue { value: None },
            LiteralValue::Array(items) => {
                Value::ArrayValue(ArrayValue { values: items.iter().map(LiteralValue::to_any).collect() })
            }
            LiteralValue::Map(entries) => Value::KvlistValue(KeyValueList {
                values: entries
                    .iter()
                    .map(|(k, v)| KeyValue { key: k.clone(), value: Some(v.to_any()), ..Default::default() })
                    .collect(),
            }),
        };
        AnyValue { value: Some(v) }
    }
}

impl serde::Serialize for LiteralValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            LiteralValue::Str(v) => s.serialize_str(v),
            LiteralValue::Int(v) => s.serialize_i64(*v),
            LiteralValue::Double(v) => s.serialize_f64(*v),
            LiteralValue::Bool(v) => s.serialize_bool(*v),
            LiteralValue::Empty => s.serialize_unit(),
            LiteralValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            LiteralValue::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl schemars::JsonSchema for LiteralValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LiteralValue".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "integer", "number", "boolean", "array", "object", "null"]})
    }
}

impl<'de> Deserialize<'de> for LiteralValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LiteralValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, integer, number, boolean, sequence or mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LiteralValue, E> {
                // Above i64::MAX an OTLP int cannot hold it; keep it as a double, as YAML would.
                Ok(i64::try_from(v).map(LiteralValue::Int).unwrap_or(LiteralValue::Double(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Double(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LiteralValue, E> {
                Ok(LiteralValue::Empty)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LiteralValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(LiteralValue::Array(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<LiteralValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, LiteralValue>()? {
                    entries.push(entry);
                }
                Ok(LiteralValue::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertedType {
    Int,
    Double,
    String,
}

#[derive(Debug, Clone)]
enum Source {
    Literal(AnyValue),
    Attribute(String),
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Source),
    Update(Source),
    Upsert(Source),
    Delete(Option<Regex>),
    Hash(Option<Regex>),
    Extract { regex: Regex, names: Vec<String> },
    Convert(ConvertedType),
}

/// One compiled action.
#[derive(Debug, Clone)]
pub struct Action {
    key: String,
    op: Op,
}

/// Why an action cannot be compiled: `field` is the path below the action
/// (e.g. `pattern`), empty for the action as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

/// The compiled action list, applied in order.
#[derive(Debug, Clone, Default)]
pub struct Actions(Vec<Action>);

impl Actions {
    /// Compiles every action; the actions that fail are left out and each
    /// failure is reported (validation refuses a config with any).
    pub fn compile(configs: &[ActionConfig]) -> (Actions, Vec<ActionError>) {
        let mut actions = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            match compile_one(i, c) {
                Ok(a) => actions.push(a),
                Err(mut e) => errors.append(&mut e),
            }
        }
        (Actions(actions), errors)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies every action, in order, to one attribute list.
    pub fn apply(&self, attrs: &mut Vec<KeyValue>) {
        for a in &self.0 {
            a.apply(attrs);
        }
    }
}

fn compile_one(index: usize, c: &ActionConfig) -> Result<Action, Vec<ActionError>> {
    let mut errors = Vec::new();
    let mut err = |field: &'static str, message: String, hint: Option<String>| {
        errors.push(ActionError { index, field, message, hint });
    };
    let name = c.action.trim().to_ascii_lowercase();
    let non_empty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let has_pattern = non_empty(&c.pattern);
    let sources = usize::from(c.value.is_some())
        + usize::from(non_empty(&c.from_attribute))
        + usize::from(non_empty(&c.from_context));
    if non_empty(&c.from_context) {
        err(
            "from_context",
            "from_context is not supported by sluice: it has no client metadata to read".into(),
            Some("use value (with ${env:VAR} if needed) or from_attribute".into()),
        );
    }
    let key_needed = !matches!(name.as_str(), "delete" | "hash") || !has_pattern;
    if c.key.is_empty() && key_needed && ACTION_NAMES.contains(&name.as_str()) {
        let hint = if matches!(name.as_str(), "delete" | "hash") {
            "delete and hash need a key or a pattern over keys"
        } else {
            "the attribute to act on, e.g. key: deployment.environment"
        };
        err("key", format!("missing key for action \"{name}\""), Some(hint.into()));
    }
    let no_sources = |err: &mut dyn FnMut(&'static str, String, Option<String>)| {
        if sources > 0 {
            err("", format!("action \"{name}\" takes no value, from_attribute or from_context"), None);
        }
    };
    let compile_regex = |err: &mut dyn FnMut(&'static str, String, Option<String>)| -> Option<Regex> {
        let p = c.pattern.as_deref().filter(|p| !p.is_empty())?;
        match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                err("pattern", format!("invalid regex \"{p}\": {}", regex_error(&e)), None);
                None
            }
        }
    };
    let op = match name.as_str() {
        "insert" | "update" | "upsert" => {
            if sources == 0 {
                err(
                    "",
                    format!("action \"{name}\" needs one of value or from_attribute"),
                    Some("e.g. value: production, or from_attribute: other.key".into()),
                );
            } else if sources > 1 {
                err("", format!("action \"{name}\" takes exactly one of value or from_attribute, not both"), None);
            }
            if has_pattern {
                err(
                    "pattern",
                    format!("action \"{name}\" takes no pattern"),
                    Some("pattern is for delete, hash and extract".into()),
                );
            }
            let source = match (&c.value, c.from_attribute.as_deref().filter(|s| !s.is_empty())) {
                (Some(v), _) => Source::Literal(v.to_any()),
                (None, Some(a)) => Source::Attribute(a.to_string()),
                (None, None) => Source::Literal(AnyValue::default()),
            };
            match name.as_str() {
                "insert" => Some(Op::Insert(source)),
                "update" => Some(Op::Update(source)),
                _ => Some(Op::Upsert(source)),
            }
        }
        "delete" | "hash" => {
            no_sources(&mut err);
            let re = compile_regex(&mut err);
            Some(if name == "delete" { Op::Delete(re) } else { Op::Hash(re) })
        }
        "extract" => {
            no_sources(&mut err);
            if !has_pattern {
                err(
                    "pattern",
                    "action \"extract\" needs a pattern".into(),
                    Some("a regex with named groups, e.g. ^/api/(?P<version>v\\d+)/".into()),
                );
                None
            } else if let Some(regex) = compile_regex(&mut err) {
                let names: Vec<Option<&str>> = regex.capture_names().skip(1).collect();
                if names.is_empty() || names.iter().any(Option::is_none) {
                    let what = if names.is_empty() { "has no groups" } else { "has a group without a name" };
                    err(
                        "pattern",
                        format!("the extract pattern \"{}\" {what}: every group must be named", regex.as_str()),
                        Some("name each group, (?P<name>...), or use (?:...) for groups that capture nothing".into()),
                    );
                    None
                } else {
                    let names = names.into_iter().map(|n| n.unwrap_or_default().to_string()).collect();
                    Some(Op::Extract { regex, names })
                }
            } else {
                None
            }
        }
        "convert" => {
            no_sources(&mut err);
            let types = format!("converted_type is one of {}", CONVERTED_TYPES.join(", "));
            match c.converted_type.as_deref().map(str::trim) {
                None | Some("") => {
                    err("converted_type", "action \"convert\" needs converted_type".into(), Some(types));
                    None
                }
                Some("int") => Some(Op::Convert(ConvertedType::Int)),
                Some("double") => Some(Op::Convert(ConvertedType::Double)),
                Some("string") => Some(Op::Convert(ConvertedType::String)),
                Some(other) => {
                    let hint = match crate::config::suggest::did_you_mean(other, CONVERTED_TYPES.iter().copied()) {
                        Some(s) => format!("{s} {types}"),
                        None => types,
                    };
                    err("converted_type", format!("unknown converted_type \"{other}\""), Some(hint));
                    None
                }
            }
        }
        _ => {
            let names = format!("actions are {}", ACTION_NAMES.join(", "));
            let hint = match crate::config::suggest::did_you_mean(&name, ACTION_NAMES.iter().copied()) {
                Some(s) => format!("{s} {names}"),
                None => names,
            };
            err("action", format!("unknown action \"{}\"", c.action), Some(hint));
            None
        }
    };
    if name != "convert" && c.converted_type.is_some() && ACTION_NAMES.contains(&name.as_str()) {
        err(
            "converted_type",
            format!("action \"{name}\" takes no converted_type"),
            Some("converted_type is for convert".into()),
        );
    }
    match op {
        Some(op) if errors.is_empty() => Ok(Action { key: c.key.clone(), op }),
        _ => Err(errors),
    }
}

/// The regex crate's message spans lines (pattern, caret); the last says what is wrong.
pub(crate) fn regex_error(e: &regex::Error) -> String {
    e.to_string().lines().last().unwrap_or_default().trim().to_string()
}

fn position(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

impl Action {
    fn source_value(source: &Source, attrs: &[KeyValue]) -> Option<AnyValue> {
        match source {
            Source::Literal(v) => Some(v.clone()),
            Source::Attribute(a) => {
                let i = position(attrs, a)?;
                Some(attrs[i].value.clone().unwrap_or_default())
            }
        }
    }

    /// Named by `key` (when set) or matched by `pattern`.
    fn matches(&self, key: &str, re: &Option<Regex>) -> bool {
        (!self.key.is_empty() && key == self.key) || re.as_ref().is_some_and(|r| r.is_match(key))
    }

    fn apply(&self, attrs: &mut Vec<KeyValue>) {
        match &self.op {
            Op::Insert(src) => {
                if position(attrs, &self.key).is_some() {
                    return;
                }
                if let Some(v) = Self::source_value(src, attrs) {
                    attrs.push(KeyValue { key: self.key.clone(), value: Some(v), ..Default::default() });
                }
            }
            Op::Update(src) => {
                let Some(i) = position(attrs, &self.key) else { return };
                if let Some(v) = Self::source_value(src, attrs) {
                    attrs[i].value = Some(v);
                }
            }
            Op::Upsert(src) => {
                if let Some(v) = Self::source_value(src, attrs) {
                    put(attrs, &self.key, v);
                }
            }
            Op::Delete(re) => attrs.retain(|kv| !self.matches(&kv.key, re)),
            Op::Hash(re) => {
                let hash = |kv: &mut KeyValue| {
                    let hashed = sha256_hex(kv.value.as_ref());
                    kv.value = Some(AnyValue { value: Some(Value::StringValue(hashed)) });
                };
                // As the Collector: `key` first, then every key `pattern`
                // matches, so a key named by both is hashed twice.
                if let Some(i) = position(attrs, &self.key).filter(|_| !self.key.is_empty()) {
                    hash(&mut attrs[i]);
                }
                if let Some(re) = re {
                    attrs.iter_mut().filter(|kv| re.is_match(&kv.key)).for_each(hash);
                }
            }
            Op::Extract { regex, names } => {
                let Some(i) = position(attrs, &self.key) else { return };
                let Some(Value::StringValue(s)) = attrs[i].value.as_ref().and_then(|v| v.value.as_ref()) else {
                    return;
                };
                let Some(caps) = regex.captures(s) else { return };
                // As the Collector (Go's FindStringSubmatch): a group that took
                // no part in the match gives the empty string.
                let found: Vec<String> =
                    (1..=names.len()).map(|g| caps.get(g).map_or(String::new(), |m| m.as_str().to_string())).collect();
                for (name, v) in names.iter().zip(found) {
                    put(attrs, name, AnyValue { value: Some(Value::StringValue(v)) });
                }
            }
            Op::Convert(to) => {
                let Some(i) = position(attrs, &self.key) else { return };
                if let Some(v) = attrs[i].value.as_mut() {
                    convert(v, *to);
                }
            }
        }
    }
}

/// Sets `key` to `v`, replacing its value in place or appending it.
fn put(attrs: &mut Vec<KeyValue>, key: &str, v: AnyValue) {
    match position(attrs, key) {
        Some(i) => attrs[i].value = Some(v),
        None => attrs.push(KeyValue { key: key.to_string(), value: Some(v), ..Default::default() }),
    }
}

/// The Collector's `sha2Hasher`: hex SHA-256 of the value's bytes.
pub fn sha256_hex(v: Option<&AnyValue>) -> String {
    let mut num = [0u8; 8];
    let bytes: &[u8] = match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.as_bytes(),
        Some(Value::BoolValue(b)) => {
            num[0] = u8::from(*b);
            &num[..1]
        }
        Some(Value::IntValue(i)) => {
            num = i.to_le_bytes();
            &num
        }
        Some(Value::DoubleValue(d)) => {
            num = d.to_bits().to_le_bytes();
            &num
        }
        // Empty values, bytes, arrays and maps are not hashed: they become "".
        _ => return String::new(),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// The Collector's `convertValue`; a failed parse leaves the value as it is.
fn convert(v: &mut AnyValue, to: ConvertedType) {
    let new = match (to, v.value.as_ref()) {
        (ConvertedType::Int, Some(Value::DoubleValue(d))) => Value::IntValue(*d as i64),
        (ConvertedType::Int, Some(Value::BoolValue(b))) => Value::IntValue(i64::from(*b)),
        (ConvertedType::Int, Some(Value::StringValue(s))) => match s.parse::<i64>() {
            Ok(n) => Value::IntValue(n),
            Err(_) => return,
        },
        (ConvertedType::Double, Some(Value::IntValue(i))) => Value::DoubleValue(*i as f64),
        (ConvertedType::Double, Some(Value::BoolValue(b))) => Value::DoubleValue(if *b { 1.0 } else { 0.0 }),
        (ConvertedType::Double, Some(Value::StringValue(s))) => match s.parse::<f64>() {
            Ok(n) => Value::DoubleValue(n),
            Err(_) => return,
        },
        (ConvertedType::String, Some(Value::StringValue(_))) => return,
        (ConvertedType::String, other) => Value::StringValue(as_string(other)),
        _ => return,
    };
    v.value = Some(new);
}

/// pcommon's `Value.AsString`: scalars as Go formats them, bytes as base64,
/// arrays and maps as JSON, an empty value as "".
pub(crate) fn as_string(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format_double(*d),
        Some(Value::BytesValue(b)) => base64(b),
        Some(other) => to_json(Some(other)).to_string(),
    }
}

/// Go's `strconv.FormatFloat(d, 'f', -1, 64)`: shortest digits, no exponent.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display is the shortest round-trip form without exponent.
        d.to_string()
    }
}

fn to_json(v: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(Value::BytesValue(b)) => J::String(base64(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(|x| to_json(x.value.as_ref())).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|e| (e.key.clone(), to_json(e.value.as_ref().and_then(|x| x.value.as_ref()))))
                .collect(),
        ),
        // An index into a profiles dictionary this item does not carry.
        Some(Value::StringValueStrindex(_)) => J::Null,
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
