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
/// The smallest probability a threshold can express, 2^-56.
pub const MIN_PROBABILITY: f64 = 1.0 / MAX_ADJUSTED_COUNT as f64;
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

/// The binary exponent `e` of `x = f * 2^e` with `f` in `[0.5, 1)` (Go's
/// `math.Frexp`), for finite `x > 0`.
fn frexp_exponent(x: f64) -> i32 {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        return frexp_exponent(x * (1u64 << 54) as f64) - 54;
    }
    biased - 1022
}

impl Threshold {
    /// Keeps everything (probability 1).
    pub const ALWAYS_SAMPLE: Threshold = Threshold(0);

    /// The threshold for probability `p`, with `precision` significant hex
    /// digits (0 means all 14), exactly as the Collector's
    /// `ProbabilityToThresholdWithPrecision` computes it:
    ///
    /// - `p` must be in `[2^-56, 1]` (else None); `p == 1` is `th:0`;
    /// - precision grows by one digit for every 4 binary orders of magnitude
    ///   that `p` or `1 - p` lies below 1 (the exponents of `math.Frexp`), so
    ///   the leading `0`s of a high probability's threshold and the leading
    ///   `f`s of a low one do not eat the requested significant digits; at
    ///   most 14 digits;
    /// - the threshold is `2^56 - round(p * 2^56)`, then rounded half up to
    ///   that many digits.
    ///
    /// A tiny non-zero probability therefore stays a tiny probability: it is
    /// never rounded up to "sample nothing". (Rounding could only reach 2^56
    /// if every kept digit were `f`, which the precision extension rules
    /// out; should it happen, None is returned, as the Collector's threshold
    /// would then sample nothing.)
    pub fn from_probability(p: f64, precision: usize) -> Option<Threshold> {
        if !(MIN_PROBABILITY..=1.0).contains(&p) {
            return None;
        }
        if p == 1.0 {
            return Some(Threshold::ALWAYS_SAMPLE);
        }
        let precision = if precision == 0 { THRESHOLD_HEX_DIGITS } else { precision.min(THRESHOLD_HEX_DIGITS) };
        let extra = |x: f64| (-frexp_exponent(x)) as usize / 4;
        let precision = (precision + extra(p).max(extra(1.0 - p))).min(THRESHOLD_HEX_DIGITS);
        let scaled = (p * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let mut t = MAX_THRESHOLD - scaled;
        let shift = 4 * (THRESHOLD_HEX_DIGITS - precision) as u32;
        if shift != 0 {
            t += 1 << (shift - 1);
            t = (t >> shift) << shift;
        }
        Threshold::from_value(t)
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
        // At precision 4; 0.01 lies below 2^-4, so it gets a fifth digit.
        let cases = [(1.0, "0"), (0.5, "8"), (0.25, "c"), (0.1, "e666"), (0.01, "fd70a")];
        for (p, hex) in cases {
            let t = Threshold::from_probability(p, 4).unwrap();
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
