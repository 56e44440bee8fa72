//! What every sampler shares: the OpenTelemetry consistent-probability
//! threshold (`th`) and randomness (`rv`) carried in the `ot` entry of the W3C
//! `tracestate`, so a sampled span says how many spans it stands for.
//!
//! A threshold `T` is a 56-bit rejection threshold: an item whose 56-bit
//! randomness `R` satisfies `R >= T` is kept, so the sampling probability is
//! `(2^56 - T) / 2^56` and each kept item's adjusted count is its inverse.
//! `T = 0` keeps everything. Randomness comes from `rv` when present, else
//! the low 56 bits (last 7 bytes) of the trace ID.

pub mod tracestate;

pub use tracestate::{OtTraceState, TraceStateError, W3cTraceState};

/// 2^56: the number of distinct randomness values.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
const MAX_THRESHOLD: u64 = MAX_ADJUSTED_COUNT;
/// Hex digits of a full-precision threshold.
pub const THRESHOLD_HEX_DIGITS: usize = 14;

/// A rejection threshold in `[0, 2^56)`; `2^56` itself ("never") is not a
/// threshold that can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// 56 bits of randomness of one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Randomness(u64);

impl Randomness {
    /// The low 56 bits of a 16-byte trace ID; None for any other length.
    pub fn from_trace_id(trace_id: &[u8]) -> Option<Randomness> {
        let bytes: &[u8; 16] = trace_id.try_into().ok()?;
        let mut v = 0u64;
        for b in &bytes[9..16] {
            v = (v << 8) | u64::from(*b);
        }
        Some(Randomness(v))
    }

    /// Parses the 14 hex digits of an `rv` value.
    pub fn parse_hex(s: &str) -> Option<Randomness> {
        if s.len() != THRESHOLD_HEX_DIGITS || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Randomness)
    }

    pub fn to_hex(self) -> String {
        format!("{:014x}", self.0)
    }

    pub fn value(self) -> u64 {
        self.0
    }

    pub fn from_value(v: u64) -> Randomness {
        Randomness(v & (MAX_ADJUSTED_COUNT - 1))
    }
}

impl Threshold {
    /// Keeps everything (probability 1).
    pub const ALWAYS_SAMPLE: Threshold = Threshold(0);

    /// The threshold for probability `p` in `(0, 1]`, rounded to `precision`
    /// significant hex digits (1..=14), as the spec's encoders do. None when
    /// `p` is not in `(0, 1]` or is so small the threshold would reach 2^56.
    pub fn from_probability(p: f64, precision: usize) -> Option<Threshold> {
        if !(p > 0.0 && p <= 1.0) {
            return None;
        }
        let precision = precision.clamp(1, THRESHOLD_HEX_DIGITS);
        let scaled = ((1.0 - p) * MAX_THRESHOLD as f64).round();
        let mut t = if scaled >= MAX_THRESHOLD as f64 { MAX_THRESHOLD - 1 } else { scaled as u64 };
        if t == 0 {
            return Some(Threshold(0));
        }
        // Keep `precision` hex digits counted from the first non-zero one.
        let leading_zero_digits = (t.leading_zeros() as usize - 8) / 4;
        let keep = leading_zero_digits + precision;
        if keep < THRESHOLD_HEX_DIGITS {
            let unit = 1u64 << (4 * (THRESHOLD_HEX_DIGITS - keep));
            t = (t + unit / 2) / unit * unit;
        }
        if t >= MAX_THRESHOLD {
            t = MAX_THRESHOLD - 1;
        }
        Some(Threshold(t))
    }

    pub fn from_value(t: u64) -> Option<Threshold> {
        (t < MAX_THRESHOLD).then_some(Threshold(t))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// The probability this threshold keeps an item with.
    pub fn probability(self) -> f64 {
        (MAX_THRESHOLD - self.0) as f64 / MAX_THRESHOLD as f64
    }

    /// How many items each kept item stands for.
    pub fn adjusted_count(self) -> f64 {
        1.0 / self.probability()
    }

    pub fn should_sample(self, r: Randomness) -> bool {
        r.0 >= self.0
    }

    /// The `th` encoding: 14 hex digits with trailing zeros removed, `0` for
    /// always-sample.
    pub fn to_hex(self) -> String {
        if self.0 == 0 {
            return "0".to_string();
        }
        let full = format!("{:014x}", self.0);
        full.trim_end_matches('0').to_string()
    }

    /// Parses a `th` value: 1 to 14 hex digits, right-padded with zeros.
    pub fn parse_hex(s: &str) -> Option<Threshold> {
        if s.is_empty() || s.len() > THRESHOLD_HEX_DIGITS || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u64::from_str_radix(s, 16).ok()?;
        Some(Threshold(v << (4 * (THRESHOLD_HEX_DIGITS - s.len()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_of_th_encoding() {
        // From the OpenTelemetry tracestate probability sampling spec.
        let cases = [(1.0, "0"), (0.5, "8"), (0.25, "c"), (0.1, "e666"), (0.01, "fd70a")];
        for (p, hex) in cases {
            let precision = if p == 0.01 { 5 } else { 4 };
            let t = Threshold::from_probability(p, precision).unwrap();
            assert_eq!(t.to_hex(), hex, "p={p}");
            assert_eq!(Threshold::parse_hex(hex), Some(t));
        }
        assert_eq!(Threshold::parse_hex("8").unwrap().probability(), 0.5);
        assert!(Threshold::from_probability(0.0, 4).is_none());
        assert!(Threshold::from_probability(1.5, 4).is_none());
    }

    #[test]
    fn randomness_is_the_low_56_bits_of_the_trace_id() {
        let id = [0xffu8, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        assert_eq!(Randomness::from_trace_id(&id).unwrap().to_hex(), "01020304050607");
        assert!(Randomness::from_trace_id(&id[..8]).is_none());
        let t = Threshold::parse_hex("8").unwrap();
        assert!(!t.should_sample(Randomness::parse_hex("7fffffffffffff").unwrap()));
        assert!(t.should_sample(Randomness::parse_hex("80000000000000").unwrap()));
    }
}
