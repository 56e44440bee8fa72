//! The values OTTL expressions produce: borrowed from the item where they
//! can be (a condition that compares an attribute copies nothing), owned
//! where a function made them.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, ArrayValue, KeyValue, KeyValueList};
use std::borrow::Cow;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Map(Cow<'a, [KeyValue]>),
    List(Cow<'a, [AnyValue]>),
    /// Nanoseconds since the Unix epoch.
    Time(i64),
    /// Nanoseconds.
    Duration(i64),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn string(s: String) -> Value<'static> {
        Value::Str(Cow::Owned(s))
    }

    /// The name used in error messages, as the Collector's Go types read.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Double(_) => "float64",
            Value::Str(_) => "string",
            Value::Bytes(_) => "[]byte",
            Value::Map(_) => "map",
            Value::List(_) => "slice",
            Value::Time(_) => "time",
            Value::Duration(_) => "duration",
        }
    }

    pub fn from_any(v: &'a AnyValue) -> Value<'a> {
        match &v.value {
            None => Value::Nil,
            Some(Av::StringValue(s)) => Value::Str(Cow::Borrowed(s)),
            Some(Av::BoolValue(b)) => Value::Bool(*b),
            Some(Av::IntValue(i)) => Value::Int(*i),
            Some(Av::DoubleValue(d)) => Value::Double(*d),
            Some(Av::BytesValue(b)) => Value::Bytes(Cow::Borrowed(b)),
            Some(Av::ArrayValue(a)) => Value::List(Cow::Borrowed(&a.values)),
            Some(Av::KvlistValue(m)) => Value::Map(Cow::Borrowed(&m.values)),
            // Only in profiles' dictionaries: no string of its own.
            Some(Av::StringValueStrindex(_)) => Value::Nil,
        }
    }

    pub fn from_any_opt(v: Option<&'a AnyValue>) -> Value<'a> {
        v.map_or(Value::Nil, Value::from_any)
    }

    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Double(d) => Value::Double(d),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Map(m) => Value::Map(Cow::Owned(m.into_owned())),
            Value::List(l) => Value::List(Cow::Owned(l.into_owned())),
            Value::Time(t) => Value::Time(t),
            Value::Duration(d) => Value::Duration(d),
        }
    }

    /// The attribute value it is stored as; `None` for nil. Times and
    /// durations are stored as their nanoseconds.
    pub fn into_any(self) -> Option<AnyValue> {
        let v = match self {
            Value::Nil => return None,
            Value::Bool(b) => Av::BoolValue(b),
            Value::Int(i) | Value::Time(i) | Value::Duration(i) => Av::IntValue(i),
            Value::Double(d) => Av::DoubleValue(d),
            Value::Str(s) => Av::StringValue(s.into_owned()),
            Value::Bytes(b) => Av::BytesValue(b.into_owned()),
            Value::Map(m) => Av::KvlistValue(KeyValueList { values: m.into_owned() }),
            Value::List(l) => Av::ArrayValue(ArrayValue { values: l.into_owned() }),
        };
        Some(AnyValue { value: Some(v) })
    }

    /// The Collector's "string-like" reading: strings as they are, other
    /// scalars printed, bytes as hex, maps and lists as JSON; nil is none.
    pub fn to_string_like(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Value::Nil => return None,
            Value::Str(s) => Cow::Borrowed(s.as_ref()),
            other => Cow::Owned(other.display()),
        })
    }

    /// The text `String()` gives.
    pub fn display(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => format_double(*d),
            Value::Str(s) => s.to_string(),
            Value::Bytes(b) => hex(b),
            Value::Map(_) | Value::List(_) => self.to_json().to_string(),
            Value::Time(t) => t.to_string(),
            Value::Duration(d) => format_duration(*d),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) | Value::Time(i) | Value::Duration(i) => J::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.to_string()),
            Value::Bytes(b) => J::String(base64_std(b)),
            Value::Map(m) => J::Object(
                m.iter().map(|kv| (kv.key.clone(), Value::from_any_opt(kv.value.as_ref()).to_json())).collect(),
            ),
            Value::List(l) => J::Array(l.iter().map(|v| Value::from_any(v).to_json()).collect()),
        }
    }

    pub fn from_json(j: &serde_json::Value) -> Value<'static> {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            // encoding/json decodes every number as float64, and so does the Collector's ParseJSON.
            J::Number(n) => Value::Double(n.as_f64().unwrap_or(0.0)),
            J::String(s) => Value::string(s.clone()),
            J::Array(a) => Value::List(Cow::Owned(a.iter().map(|v| any_or_empty(Value::from_json(v))).collect())),
            J::Object(o) => Value::Map(Cow::Owned(
                o.iter()
                    .map(|(k, v)| KeyValue {
                        key: k.clone(),
                        value: Some(any_or_empty(Value::from_json(v))),
                        ..Default::default()
                    })
                    .collect(),
            )),
        }
    }
}

/// An attribute value; nil becomes an empty value (as pcommon's empty Value).
pub fn any_or_empty(v: Value<'_>) -> AnyValue {
    v.into_any().unwrap_or(AnyValue { value: None })
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` for the usual cases: the
/// shortest text that reads back the same.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if d.is_nan() {
        return "NaN".into();
    }
    format!("{d}")
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        s.push_str(&trim_fraction(n / div, n % div, div));
        s.push_str(unit);
        return s;
    }
    let h = n / 3_600_000_000_000;
    let m = (n / 60_000_000_000) % 60;
    let rest = n % 60_000_000_000;
    if h > 0 {
        let _ = write!(s, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(s, "{m}m");
    }
    s.push_str(&trim_fraction(rest / 1_000_000_000, rest % 1_000_000_000, 1_000_000_000));
    s.push('s');
    s
}

fn trim_fraction(whole: u64, frac: u64, div: u64) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let width = (div as f64).log10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, optionally signed.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (neg, mut s) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = s[..num_end].parse().ok()?;
        s = &s[num_end..];
        let unit_end = s.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(s.len());
        let mult = match &s[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        s = &s[unit_end..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_as_go_does() {
        assert_eq!(parse_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(parse_duration("150ms"), Some(150_000_000));
        assert_eq!(parse_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_duration("2x"), None);
        assert_eq!(format_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(format_duration(150_000_000), "150ms");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(60_000_000_000), "1m0s");
    }

    #[test]
    fn doubles_print_shortest() {
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(1.5), "1.5");
    }
}
