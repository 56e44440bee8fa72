//! Body templates: a log body with its variable tokens masked, so that
//! "user 17 failed" and "user 42 failed" share one key.
//!
//! The scanner splits text into runs of ASCII letters and digits. A run is
//! variable when it holds any digit (numbers, hex and UUID parts, IDs like
//! `req7f3a`) or when it is 12 or more hex letters (an all-letter hex ID;
//! English words that long are almost never all in a-f). Variable runs joined
//! by one of `. - : _ /` (an IP, a UUID, a version, a path of IDs) collapse
//! into one mask, so `1.5ms` and `17ms` mask alike. Everything else is kept
//! as it is. The scanner never allocates; `fingerprint` hashes into a
//! caller-owned buffer.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

/// What a masked token renders as in the key text.
pub const MASK: &str = "<*>";
/// Stands for a mask in the hashed form; not a byte text normally holds.
const MASK_BYTE: u8 = 0;

/// Minimum length of an all-letter hex run taken as an ID.
const MIN_LETTER_HEX_ID: usize = 12;

/// A piece of a scanned body: literal text or one masked token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Literal(&'a str),
    Masked,
}

fn is_variable(token: &[u8]) -> bool {
    token.iter().any(u8::is_ascii_digit)
        || (token.len() >= MIN_LETTER_HEX_ID && token.iter().all(u8::is_ascii_hexdigit))
}

fn is_joiner(b: u8) -> bool {
    matches!(b, b'.' | b'-' | b':' | b'_' | b'/')
}

/// Calls `f` with the pieces of `text`, in order. Consecutive masks are
/// reported once.
pub fn scan<'a>(text: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    // Start of literal text not yet reported.
    let mut lit = 0;
    // Whether the last thing reported (or pending) is a mask.
    let mut in_mask = false;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            // A joiner between a mask and another variable token is part of the mask.
            if in_mask && lit == i && is_joiner(bytes[i]) {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
                    end += 1;
                }
                if end > start && is_variable(&bytes[start..end]) {
                    i = end;
                    lit = end;
                    continue;
                }
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if is_variable(&bytes[start..i]) {
            // Token boundaries are ASCII, so slicing here is on char boundaries.
            if lit < start {
                f(Piece::Literal(&text[lit..start]));
                in_mask = false;
            }
            if !in_mask {
                f(Piece::Masked);
            }
            in_mask = true;
            lit = i;
        } else {
            in_mask = false;
        }
    }
    if lit < bytes.len() {
        f(Piece::Literal(&text[lit..]));
    }
}

/// Appends the masked form of `text` to `out` (masks as a 0 byte).
pub fn write_masked(text: &str, out: &mut Vec<u8>) {
    scan(text, |p| match p {
        Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
        Piece::Masked => out.push(MASK_BYTE),
    });
}

/// The masked form of `text` for people (masks as `<*>`).
pub fn render(text: &str, out: &mut String) {
    scan(text, |p| match p {
        Piece::Literal(s) => out.push_str(s),
        Piece::Masked => out.push_str(MASK),
    });
}

/// The xxh3 fingerprint of a body's template. `scratch` is reused between
/// calls so the hot path does not allocate. A string body is masked; a
/// number or bytes body is one variable token; a bool is itself; arrays and
/// key-value lists are keyed by their kind alone.
pub fn fingerprint(body: Option<&AnyValue>, scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    write_body(body, scratch);
    xxhash_rust::xxh3::xxh3_64(scratch)
}

fn write_body(body: Option<&AnyValue>, out: &mut Vec<u8>) {
    match body.and_then(|v| v.value.as_ref()) {
        None => {}
        Some(any_value::Value::StringValue(s)) => write_masked(s, out),
        Some(any_value::Value::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(
            any_value::Value::IntValue(_)
            | any_value::Value::DoubleValue(_)
            | any_value::Value::BytesValue(_)
            | any_value::Value::StringValueStrindex(_),
        ) => out.push(MASK_BYTE),
        Some(any_value::Value::ArrayValue(_)) => out.extend_from_slice(b"\x01array"),
        Some(any_value::Value::KvlistValue(_)) => out.extend_from_slice(b"\x01kvlist"),
    }
}

/// The template of a body as key text.
pub fn render_body(body: Option<&AnyValue>, out: &mut String) {
    match body.and_then(|v| v.value.as_ref()) {
        None => {}
        Some(any_value::Value::StringValue(s)) => render(s, out),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(
            any_value::Value::IntValue(_)
            | any_value::Value::DoubleValue(_)
            | any_value::Value::BytesValue(_)
            | any_value::Value::StringValueStrindex(_),
        ) => out.push_str(MASK),
        Some(any_value::Value::ArrayValue(_)) => out.push_str("<array>"),
        Some(any_value::Value::KvlistValue(_)) => out.push_str("<kvlist>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(s: &str) -> String {
        let mut out = String::new();
        render(s, &mut out);
        out
    }

    fn fp(s: &str) -> u64 {
        let body = AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) };
        fingerprint(Some(&body), &mut Vec::new())
    }

    #[test]
    fn masks_numbers_ids_and_keeps_words() {
        assert_eq!(rendered("user 17 failed"), "user <*> failed");
        assert_eq!(rendered("user 42 failed"), "user <*> failed");
        assert_eq!(rendered("disk full"), "disk full");
        assert_eq!(rendered(""), "");
        assert_eq!(rendered("42"), "<*>");
        assert_eq!(rendered("took 1.5ms"), "took <*>");
        assert_eq!(rendered("took 17ms"), "took <*>");
        assert_eq!(rendered("from 10.0.0.1:8080 ok"), "from <*> ok");
        assert_eq!(rendered("req 550e8400-e29b-41d4-a716-446655440000 done"), "req <*> done");
        assert_eq!(rendered("trace 0x7f3a, span deadbeefcafebabe."), "trace <*>, span <*>.");
        assert_eq!(rendered("order-17 shipped"), "order-<*> shipped");
        assert_eq!(rendered("a.b: c-d"), "a.b: c-d");
        assert_eq!(rendered("café 7 ünïcode"), "café <*> ünïcode");
        assert_eq!(rendered("1 2 3"), "<*> <*> <*>");
        assert_eq!(rendered("end."), "end.");
        assert_eq!(rendered("7-"), "<*>-");
    }

    #[test]
    fn fingerprints_group_by_template() {
        assert_eq!(fp("user 17 failed"), fp("user 42 failed"));
        assert_ne!(fp("user 17 failed"), fp("disk full"));
        assert_ne!(fp("user 17 failed"), fp("user failed"));
        let int = AnyValue { value: Some(any_value::Value::IntValue(3)) };
        let int2 = AnyValue { value: Some(any_value::Value::IntValue(9)) };
        assert_eq!(fingerprint(Some(&int), &mut Vec::new()), fingerprint(Some(&int2), &mut Vec::new()));
        assert_ne!(fingerprint(None, &mut Vec::new()), fp("x"));
    }

    #[test]
    fn scan_never_panics_on_odd_text() {
        for s in ["\u{0}", "--..::", "é1é", "1é", "é", "𝄞9𝄞", "/1/2/", "a_1_b"] {
            let mut out = String::new();
            render(s, &mut out);
            write_masked(s, &mut Vec::new());
        }
    }
}
