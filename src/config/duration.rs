//! Durations and sizes as the Collector writes them: Go duration strings
//! (`200ms`, `5s`, `1m30s`, `1h`), or a bare integer of nanoseconds.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration as StdDuration;

/// A `std::time::Duration` that reads and writes Go's duration syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(StdDuration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(StdDuration::from_millis(ms))
    }
    pub fn get(self) -> StdDuration {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for StdDuration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Parses a Go duration string: a sequence of decimal numbers each with a
/// unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1h2m0.5s`. `0` alone
/// is allowed. Negative durations are rejected.
pub fn parse_duration(s: &str) -> Result<StdDuration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(StdDuration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!("invalid duration \"{s}\": must not be negative"));
    }
    let s_body = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s_body;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration \"{s}\": expected a number, e.g. \"5s\" or \"200ms\""));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration \"{s}\": bad number \"{}\"", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("invalid duration \"{s}\": missing unit (use ns, us, ms, s, m or h)")),
            other => {
                return Err(format!("invalid duration \"{s}\": unknown unit \"{other}\" (use ns, us, ms, s, m or h)"))
            }
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("invalid duration \"{s}\": too large"));
    }
    Ok(StdDuration::from_nanos(total.round() as u64))
}

/// Formats a duration the way Go prints it (`1m30s`, `200ms`).
pub fn format_duration(d: StdDuration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}us", trim_float(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_float(nanos as f64 / 1e6));
    }
    let total_secs = d.as_secs_f64();
    let hours = (total_secs / 3600.0).floor() as u64;
    let minutes = ((total_secs - hours as f64 * 3600.0) / 60.0).floor() as u64;
    let secs = total_secs - hours as f64 * 3600.0 - minutes as f64 * 60.0;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(secs)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "duration"})
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"5s\", \"200ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map(Duration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration(StdDuration::from_nanos(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v < 0 {
                    return Err(E::custom("a duration must not be negative"));
                }
                Ok(Duration(StdDuration::from_nanos(v as u64)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("200ms").unwrap(), StdDuration::from_millis(200));
        assert_eq!(parse_duration("5s").unwrap(), StdDuration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), StdDuration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), StdDuration::from_secs(5400));
        assert_eq!(parse_duration("10us").unwrap(), StdDuration::from_micros(10));
        assert_eq!(parse_duration("0").unwrap(), StdDuration::ZERO);
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5sec").unwrap_err().contains("unknown unit \"sec\""));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("s").unwrap_err().contains("expected a number"));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(StdDuration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(StdDuration::from_millis(200)), "200ms");
        assert_eq!(format_duration(StdDuration::from_secs(300)), "5m0s");
    }
}
