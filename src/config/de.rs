//! A serde `Deserializer` over the line-aware node tree.
//!
//! Guarantees: every error names the `::`-joined path of the offending node
//! and its line (for unknown fields, the key's line). Plain scalars are typed
//! leniently, as the Collector does: a plain `5` is offered as a string when
//! the target wants one and `"5"`-like plain text as a number when it wants
//! that; `deserialize_any` follows the YAML 1.2 core schema, and quoted
//! scalars are always strings.

use super::error::ConfigError;
use super::expand::join;
use super::node::{is_null_text, Entry, Node, Style, Value};
use super::suggest::did_you_mean;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use std::fmt;

/// A deserialization error; the path and line are filled in by the innermost
/// node that sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub path: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl DeError {
    fn at(mut self, path: &str, line: usize) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_string());
            self.line = Some(line);
        }
        self
    }

    pub fn into_config_error(self, fallback_path: &str) -> ConfigError {
        ConfigError {
            path: self.path.unwrap_or_else(|| fallback_path.to_string()),
            line: self.line,
            message: self.message,
            hint: self.hint,
            source: None,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn describe(u: &Unexpected) -> String {
    match u {
        Unexpected::Unit => "null".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a mapping".to_string(),
        other => other.to_string(),
    }
}

/// What serde expects, in words rather than Rust type names (`u32`, `f64`).
fn plain_expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    let words = match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "char" => "a single character",
        "a string" | "string" => "a string",
        _ => return text,
    };
    words.to_string()
}

fn one_of(expected: &[&str]) -> String {
    let names: Vec<String> = expected.iter().map(|e| format!("\"{e}\"")).collect();
    format!("one of {}", names.join(", "))
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { path: None, line: None, message: msg.to_string(), hint: None }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!("expected {}, found {}", plain_expected(exp), describe(&unexp)))
    }

    fn invalid_value(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!("invalid value {}, expected {}", describe(&unexp), plain_expected(exp)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(field, expected.iter().copied())
            .unwrap_or_else(|| format!("the known fields are {}", one_of(expected)));
        DeError { hint: Some(hint), ..Self::custom(format!("unknown field \"{field}\"")) }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(variant, expected.iter().copied())
            .map(|h| format!("{h} (valid values: {})", one_of(expected)))
            .unwrap_or_else(|| format!("valid values are {}", one_of(expected)));
        DeError { hint: Some(hint), ..Self::custom(format!("unknown value \"{variant}\"")) }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing field `{field}`"))
    }
}

/// Deserializes `node` (found at `path`) into `T`.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, ConfigError> {
    T::deserialize(NodeDe { node, path: path.to_string() }).map_err(|e| e.into_config_error(path))
}

enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

fn parse_int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        if neg || h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        if neg || o.is_empty() || !o.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        i128::from_str_radix(o, 8).ok()?
    } else {
        // YAML 1.1 allows `_` between digits (`100_000`), and the Collector
        // reads such integers; a leading or trailing `_` is text.
        let grouped = digits.contains('_');
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
            || digits.starts_with('_')
            || digits.ends_with('_')
        {
            return None;
        }
        if grouped {
            digits.replace('_', "").parse::<i128>().ok()?
        } else {
            digits.parse::<i128>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // Rust also accepts "inf"/"nan"; YAML does not, so only digits and signs pass.
    let ok = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-' | b'e' | b'E'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn infer(s: &str) -> Scalar {
    if is_null_text(s) {
        Scalar::Null
    } else if let Some(b) = parse_bool(s) {
        Scalar::Bool(b)
    } else if let Some(i) = parse_int(s) {
        Scalar::Int(i)
    } else if let Some(f) = parse_float(s) {
        Scalar::Float(f)
    } else {
        Scalar::Str
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn err(&self, e: DeError) -> DeError {
        e.at(&self.path, self.node.line)
    }

    /// Text of a scalar that may be typed (plain or expanded text).
    fn typed_text(&self) -> Option<&'a str> {
        match &self.node.value {
            Value::Scalar(s, Style::Plain | Style::Text) => Some(s.as_str()),
            _ => None,
        }
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.value {
            Value::Seq(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
            Value::Scalar(s, Style::Plain) => match infer(s) {
                Scalar::Null => Unexpected::Unit,
                Scalar::Bool(b) => Unexpected::Bool(b),
                Scalar::Int(i) => match u64::try_from(i) {
                    Ok(u) => Unexpected::Unsigned(u),
                    Err(_) => i64::try_from(i).map(Unexpected::Signed).unwrap_or(Unexpected::Str(s)),
                },
                Scalar::Float(f) => Unexpected::Float(f),
                Scalar::Str => Unexpected::Str(s),
            },
            Value::Scalar(s, _) => Unexpected::Str(s),
        }
    }

    fn type_error(&self, v: &dyn de::Expected) -> DeError {
        self.err(de::Error::invalid_type(self.unexpected(), v))
    }

    fn visit_int<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let Some(i) = self.typed_text().and_then(parse_int) else {
            return Err(self.err(de::Error::invalid_type(self.unexpected(), &v)));
        };
        let r = if let Ok(u) = u64::try_from(i) {
            v.visit_u64(u)
        } else if let Ok(s) = i64::try_from(i) {
            v.visit_i64(s)
        } else {
            Err(de::Error::custom(format!("integer {i} is out of range")))
        };
        r.map_err(|e| self.err(e))
    }

    fn visit_float<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.typed_text().and_then(parse_float) {
            Some(f) => v.visit_f64(f).map_err(|e| self.err(e)),
            None => Err(self.err(de::Error::invalid_type(self.unexpected(), &v))),
        }
    }

    fn visit_string<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            // A bare `key:` is Go's zero value, the empty string.
            Value::Scalar(s, Style::Plain) if is_null_text(s) => v.visit_str(""),
            Value::Scalar(s, _) => v.visit_str(s),
            _ => Err(self.type_error(&v)),
        }
        .map_err(|e| self.err(e))
    }
}

macro_rules! ints {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            self.visit_int(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Scalar(s, Style::Plain) => match infer(s) {
                Scalar::Null => v.visit_unit(),
                Scalar::Bool(b) => v.visit_bool(b),
                Scalar::Int(i) => match (u64::try_from(i), i64::try_from(i)) {
                    (Ok(u), _) => v.visit_u64(u),
                    (_, Ok(s)) => v.visit_i64(s),
                    _ => v.visit_str(s),
                },
                Scalar::Float(f) => v.visit_f64(f),
                Scalar::Str => v.visit_str(s),
            },
            Value::Scalar(s, _) => v.visit_str(s),
            Value::Seq(items) => return visit_seq(items, &self.path, self.node.line, v),
            Value::Map(entries) => return visit_map(entries, &self.path, self.node.line, v),
        };
        r.map_err(|e| self.err(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.typed_text().and_then(parse_bool) {
            Some(b) => v.visit_bool(b).map_err(|e| self.err(e)),
            None => Err(self.type_error(&v)),
        }
    }

    ints! { deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
    deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128 }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_float(v)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_float(v)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.visit_string(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.err(e))
        } else {
            let (path, line) = (self.path.clone(), self.node.line);
            v.visit_some(self).map_err(|e| e.at(&path, line))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_unit().map_err(|e| self.err(e))
        } else {
            Err(self.type_error(&v))
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, DeError> {
        let (path, line) = (self.path.clone(), self.node.line);
        v.visit_newtype_struct(self).map_err(|e| e.at(&path, line))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => visit_seq(items, &self.path, self.node.line, v),
            // A bare `key:` is an empty list, as in the Collector.
            _ if self.node.is_null() => visit_seq(&[], &self.path, self.node.line, v),
            _ => Err(self.type_error(&v)),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => visit_map(entries, &self.path, self.node.line, v),
            // A bare `key:` is an empty mapping: the struct's defaults.
            _ if self.node.is_null() => visit_map(&[], &self.path, self.node.line, v),
            _ => Err(self.type_error(&v)),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let text = match &self.node.value {
            Value::Scalar(s, Style::Plain) if is_null_text(s) => "",
            Value::Scalar(s, _) => s.as_str(),
            _ => return Err(self.type_error(&v)),
        };
        let de: de::value::StrDeserializer<'_, DeError> = text.into_deserializer();
        v.visit_enum(de).map_err(|e| self.err(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: &[Node], path: &str, line: usize, v: V) -> Result<V::Value, DeError> {
    let mut access = SeqDe { items: items.iter().enumerate(), path };
    v.visit_seq(&mut access).map_err(|e| e.at(path, line))
}

fn visit_map<'de, V: Visitor<'de>>(entries: &[Entry], path: &str, line: usize, v: V) -> Result<V::Value, DeError> {
    let mut access = MapDe { entries: entries.iter(), current: None, path };
    v.visit_map(&mut access).map_err(|e| e.at(path, line))
}

struct SeqDe<'a, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'p str,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => seed.deserialize(NodeDe { node, path: join(self.path, &i.to_string()) }).map(Some),
            None => Ok(None),
        }
    }
}

struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, Entry>,
    current: Option<&'a Entry>,
    path: &'p str,
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else { return Ok(None) };
        self.current = Some(entry);
        let path = join(self.path, &entry.key);
        seed.deserialize(KeyDe { key: &entry.key }).map(Some).map_err(|e| e.at(&path, entry.key_line))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.current.take() {
            Some(entry) => seed.deserialize(NodeDe { node: &entry.value, path: join(self.path, &entry.key) }),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }
}

/// Mapping keys are always strings; they are never expanded or typed.
struct KeyDe<'a> {
    key: &'a str,
}

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str(self.key)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct T {
        s: String,
        n: u64,
        i: i32,
        f: f64,
        b: bool,
        o: Option<u32>,
        l: Vec<String>,
        m: BTreeMap<String, String>,
        d: crate::config::Duration,
    }

    fn de(text: &str) -> Result<T, ConfigError> {
        let node = parse(text).unwrap().unwrap();
        from_node(&node, "x")
    }

    #[test]
    fn plain_scalars_are_lenient() {
        let t = de("s: 5\nn: 7\ni: -3\nf: 2\nb: true\no: ~\nl: [a, 1, true]\nm: {k: 1}\nd: 1m30s\n").unwrap();
        assert_eq!(t.s, "5");
        assert_eq!((t.n, t.i, t.f, t.b, t.o), (7, -3, 2.0, true, None));
        assert_eq!(t.l, ["a", "1", "true"]);
        assert_eq!(t.m.get("k").map(String::as_str), Some("1"));
        assert_eq!(t.d, crate::config::Duration::from_secs(90));
    }

    #[test]
    fn integers_may_group_digits_with_underscores() {
        assert_eq!(parse_int("100_000"), Some(100_000));
        assert_eq!(parse_int("-1_0"), Some(-10));
        assert_eq!(parse_int("_100"), None);
        assert_eq!(parse_int("100_"), None);
        assert_eq!(parse_int("1__0").map(|_| ()), Some(()));
    }

    #[test]
    fn quoted_scalars_are_strings() {
        let e = de("n: \"7\"\n").unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("x::n", Some(1)));
        assert!(e.message.contains("expected a whole number, 0 or more"), "{}", e.message);
    }

    #[test]
    fn errors_name_path_and_line() {
        let e = de("l:\n  - a\n  - [b]\n").unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("x::l::1", Some(3)));
        let e = de("s: a\nnn: 1\n").unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("x::nn", Some(2)));
        assert_eq!(e.hint.as_deref(), Some("did you mean \"n\"?"));
        let e = de("d: 5 seconds\n").unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("x::d", Some(1)));
        let e = de("n: -1\n").unwrap_err();
        assert_eq!(e.path, "x::n");
    }
}
