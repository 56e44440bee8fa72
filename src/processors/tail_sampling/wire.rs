//! Reading what the policies need straight from a span's protobuf bytes, so
//! a trace can be buffered as received instead of decoded and re-encoded.
//!
//! Guarantee: on bytes a decode accepts, every value read here is the one
//! the decoded `Span` holds (scalars: the last occurrence wins; `status`:
//! occurrences merge, so the last `code` wins; attributes: every occurrence
//! of the keys asked for, in order). `tests.rs` checks this against prost
//! on generated spans.

use super::policy::{AttrValue, Attrs, SpanFacts};
use crate::data::wire::{fields, key_value_key, WireValue};
use smallvec::SmallVec;

/// Key and value of the attributes a span has of the keys the policies
/// read: rarely more than a few, so they stay inline. Each value is read
/// once, however many policies look at it.
pub type WireAttrs<'a> = SmallVec<[(&'a [u8], AttrValue<'a>); 4]>;

/// The attribute keys the policies read, with a mask of their lengths: most
/// other keys are told apart by length, without a comparison.
pub struct AttributeKeys {
    keys: Vec<Vec<u8>>,
    lengths: u128,
}

impl AttributeKeys {
    pub fn new(keys: Vec<Vec<u8>>) -> AttributeKeys {
        let lengths = keys.iter().fold(0, |m, k| m | Self::length_bit(k.len()));
        AttributeKeys { keys, lengths }
    }

    /// Lengths up to 126 have a bit each; longer ones share the last.
    fn length_bit(len: usize) -> u128 {
        1 << len.min(127)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.lengths & Self::length_bit(key.len()) != 0 && self.keys.iter().any(|k| k.as_slice() == key)
    }
}

/// The fields of one encoded span that buffering and deciding read.
pub struct WireSpan<'a> {
    /// The whole span message, as received.
    pub bytes: &'a [u8],
    pub trace_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    trace_state: &'a str,
    start: u64,
    end: u64,
    status_code: i32,
    flags: u32,
    /// The attributes with one of the keys asked for, in wire order: read
    /// once here, so each attribute policy compares keys with these few
    /// instead of walking the span again.
    attributes: WireAttrs<'a>,
}

impl<'a> WireSpan<'a> {
    /// Reads a span's bytes, keeping the attributes whose key is in `keys`
    /// (see [`super::policy::attribute_keys`]); with no keys, none is read.
    pub fn read(bytes: &'a [u8], keys: &AttributeKeys) -> WireSpan<'a> {
        let mut span = WireSpan {
            bytes,
            trace_id: &[],
            parent_span_id: &[],
            trace_state: "",
            start: 0,
            end: 0,
            status_code: 0,
            flags: 0,
            attributes: SmallVec::new(),
        };
        for (field, value) in fields(bytes) {
            match (field, value) {
                (1, WireValue::Bytes(b)) => span.trace_id = b,
                // A request that reached here passed the UTF-8 check.
                (3, WireValue::Bytes(b)) => span.trace_state = std::str::from_utf8(b).unwrap_or_default(),
                (4, WireValue::Bytes(b)) => span.parent_span_id = b,
                (7, WireValue::Fixed64(v)) => span.start = v,
                (8, WireValue::Fixed64(v)) => span.end = v,
                (16, WireValue::Fixed32(v)) => span.flags = v,
                (9, WireValue::Bytes(kv)) if !keys.is_empty() => {
                    let key = key_value_key(kv);
                    if keys.contains(key) {
                        span.attributes.push((key, value_of(kv)));
                    }
                }
                // Status: message(2), code(3).
                (15, WireValue::Bytes(status)) => {
                    for (f, v) in fields(status) {
                        if let (3, WireValue::Varint(code)) = (f, v) {
                            span.status_code = code as i32;
                        }
                    }
                }
                _ => {}
            }
        }
        span
    }

    /// The span as the policies see it.
    pub fn facts(&self) -> SpanFacts<'_> {
        SpanFacts {
            start: self.start,
            end: self.end,
            status_code: self.status_code,
            flags: self.flags,
            trace_state: self.trace_state,
            attributes: &self.attributes,
        }
    }
}

/// The trace ID of an encoded span when it is the span's first field (as
/// every SDK writes it); a guess for sizing buffers, not for routing.
pub fn peek_trace_id(span: &[u8]) -> Option<[u8; 16]> {
    match span {
        [0x0a, 16, id @ ..] => id.first_chunk::<16>().copied(),
        _ => None,
    }
}

impl Attrs for WireAttrs<'_> {
    fn any_with_key(&self, key: &str, pred: &mut dyn FnMut(AttrValue<'_>) -> bool) -> bool {
        self.iter().any(|(k, v)| *k == key.as_bytes() && pred(*v))
    }
}

/// The value of one encoded `KeyValue`. Later `value` fields merge into
/// earlier ones, as in a decode: one without a variant keeps the earlier.
fn value_of(kv: &[u8]) -> AttrValue<'_> {
    let mut value = AttrValue::Other;
    for (f, v) in fields(kv) {
        if let (2, WireValue::Bytes(v)) = (f, v) {
            value = any_value(v, value);
        }
    }
    value
}

/// An `AnyValue`'s value merged over `value`: the last variant on the wire
/// wins, as in a decode.
fn any_value<'a>(bytes: &'a [u8], mut value: AttrValue<'a>) -> AttrValue<'a> {
    for (f, v) in fields(bytes) {
        value = match (f, v) {
            (1, WireValue::Bytes(s)) => std::str::from_utf8(s).map_or(AttrValue::Other, AttrValue::Str),
            (2, WireValue::Varint(b)) => AttrValue::Bool(b != 0),
            (3, WireValue::Varint(i)) => AttrValue::Int(i as i64),
            (4, WireValue::Fixed64(d)) => AttrValue::Double(f64::from_bits(d)),
            (5..=7, _) => AttrValue::Other,
            _ => continue,
        };
    }
    value
}
