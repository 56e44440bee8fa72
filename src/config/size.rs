//! Sizes in bytes as the Collector writes them (`1024`, `16kb`, `1MiB`,
//! `1.5GiB`): every unit a power of 1024, any case, as the Collector's
//! `filelog` and sluice's own size fields read them.

use serde::{de, Deserialize, Deserializer};

/// A size in bytes as the Collector writes it: a number, or a number with a
/// unit `kb`/`kib`, `mb`/`mib`, `gb`/`gib` (any case; all powers of 1024, as the Collector's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim().to_ascii_lowercase());
    let n: f64 = num.parse().map_err(|_| format!("invalid size \"{s}\""))?;
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size \"{s}\": unknown unit \"{unit}\"")),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("invalid size \"{s}\""));
    }
    Ok(bytes as u64)
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["integer", "string"], "format": "byte-size"})
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as 1024, 16kb or 1MiB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A size as a person writes it: the largest unit (`GiB`, `MiB`, `KiB`)
/// that divides it exactly, else bytes; [`parse_byte_size`] reads it back.
pub fn format_byte_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_as_the_collector_writes_them() {
        assert_eq!(parse_byte_size("1kb"), Ok(1024));
        assert_eq!(parse_byte_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("16KiB"), Ok(16 << 10));
        assert_eq!(parse_byte_size("1.5mb"), Ok(3 << 19));
        assert_eq!(parse_byte_size("300"), Ok(300));
        assert!(parse_byte_size("1 parsec").unwrap_err().contains("unknown unit"));
        assert!(parse_byte_size("lots").is_err());
    }

    #[test]
    fn sizes_are_written_back_in_the_largest_exact_unit() {
        for (bytes, text) in [(64 << 20, "64MiB"), (512 << 10, "512KiB"), (3 << 30, "3GiB"), (1000, "1000B"), (0, "0B")]
        {
            assert_eq!(format_byte_size(bytes), text);
            assert_eq!(parse_byte_size(text), Ok(bytes));
        }
    }
}
