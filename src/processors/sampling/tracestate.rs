//! The W3C `tracestate` header value and the OpenTelemetry `ot` entry in it,
//! validated and rewritten exactly as the Collector's `pkg/sampling` does,
//! so a fleet mixing sluice and Collectors rejects the same tracestates and
//! writes the same bytes:
//!
//! - W3C: at most 1024 bytes; members separated by `,` with optional spaces
//!   or tabs around them, empty members allowed; a member is `key=value`
//!   with a lowercase key (`a-z`, then `a-z0-9_-*/`; or `tenant@system`,
//!   the tenant starting `a-z0-9`, the system `a-z`), keys at most 256
//!   bytes, tenants 241, systems 14; values of 1 to 256 printable ASCII
//!   characters other than `,` and `=`, not ending in a space. The Collector
//!   counts list members (empty ones included) and refuses a list once the
//!   count reaches 32, so a list of 32 members is refused too.
//! - `ot`: at most 256 bytes; `key:value` members separated by `;`, no empty
//!   member and no trailing `;`; keys `a-z` then `a-z0-9`; values of
//!   `A-Za-z0-9._-`. `th` is 1 to 14 hex digits, `rv` exactly 14 (either
//!   case, as Go's `ParseUint`).
//! - Of several `ot` members the last one counts (an error in any of them
//!   still makes the tracestate malformed); so does the last of several `th`
//!   or `rv` inside one `ot`.
//! - Written back: `ot` first, then the other members in their order;
//!   inside `ot`, `rv`, then `th`, then the other sub-keys. A `th` or `rv`
//!   that was not changed is written back byte for byte as it came.

use super::{Randomness, Threshold};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("tracestate has 32 or more list members")]
    TooManyEntries,
    #[error("tracestate, or a key or value in it, is too long")]
    TooLong,
    #[error("malformed tracestate entry {0:?}")]
    MalformedEntry(String),
    #[error("malformed ot tracestate value {0:?}")]
    MalformedOt(String),
}

const MAX_W3C_LENGTH: usize = 1024;
/// The Collector refuses a list whose member count reaches this.
const MAX_W3C_MEMBERS: usize = 32;
const MAX_KEY_LENGTH: usize = 256;
const MAX_TENANT_LENGTH: usize = 241;
const MAX_SYSTEM_LENGTH: usize = 14;
const MAX_W3C_VALUE_LENGTH: usize = 256;
const MAX_OT_LENGTH: usize = 256;

/// A parsed `tracestate`: the `ot` member (parsed) and the other vendors'
/// members in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct W3cTraceState {
    ot: OtTraceState,
    entries: Vec<(String, String)>,
}

fn is_lc_alpha(c: u8) -> bool {
    c.is_ascii_lowercase()
}

fn is_lc_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_key_char(c: u8) -> bool {
    is_lc_alnum(c) || matches!(c, b'_' | b'-' | b'*' | b'/')
}

pub(crate) fn valid_w3c_key(key: &str) -> bool {
    let k = key.as_bytes();
    if k.is_empty() {
        return false;
    }
    match key.split_once('@') {
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            !t.is_empty()
                && !s.is_empty()
                && is_lc_alnum(t[0])
                && is_lc_alpha(s[0])
                && t[1..].iter().all(|c| is_key_char(*c))
                && s[1..].iter().all(|c| is_key_char(*c))
        }
        None => is_lc_alpha(k[0]) && k[1..].iter().all(|c| is_key_char(*c)),
    }
}

fn is_nonblank_value_char(c: u8) -> bool {
    matches!(c, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e)
}

pub(crate) fn valid_w3c_value(value: &str) -> bool {
    let v = value.as_bytes();
    match v.split_last() {
        None => false,
        Some((last, rest)) => {
            v.len() <= MAX_W3C_VALUE_LENGTH
                && is_nonblank_value_char(*last)
                && rest.iter().all(|c| *c == b' ' || is_nonblank_value_char(*c))
        }
    }
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn valid_w3c_syntax(input: &str) -> bool {
    input.split(',').map(trim_ows).filter(|m| !m.is_empty()).all(|m| match m.find('=') {
        Some(eq) if eq >= 1 => valid_w3c_key(&m[..eq]) && valid_w3c_value(&m[eq + 1..]),
        _ => false,
    })
}

impl W3cTraceState {
    /// Parses as the Collector does; any error makes the whole tracestate
    /// malformed.
    pub fn parse(s: &str) -> Result<W3cTraceState, TraceStateError> {
        match Self::parse_partial(s) {
            (ts, None) => Ok(ts),
            (_, Some(e)) => Err(e),
        }
    }

    /// Parses as the Collector does, returning what was read before and
    /// around an error too (the Collector keeps that partial state, and a
    /// sampler that keeps such an item writes it back).
    pub fn parse_partial(s: &str) -> (W3cTraceState, Option<TraceStateError>) {
        let mut ts = W3cTraceState::default();
        if s.is_empty() {
            return (ts, None);
        }
        if s.len() > MAX_W3C_LENGTH {
            return (ts, Some(TraceStateError::TooLong));
        }
        if !valid_w3c_syntax(s) {
            return (ts, Some(TraceStateError::MalformedEntry(s.to_string())));
        }
        let mut first_err = None;
        // The Collector counts a member per separator-delimited piece, but
        // not an empty piece after a final `,`.
        let pieces = s.strip_suffix(',').unwrap_or(s).split(',');
        for (i, member) in pieces.enumerate() {
            if i + 1 >= MAX_W3C_MEMBERS {
                return (ts, Some(TraceStateError::TooManyEntries));
            }
            let member = trim_ows(member);
            let Some((key, value)) = member.split_once('=') else { continue };
            let too_long = key.len() > MAX_KEY_LENGTH
                || key
                    .split_once('@')
                    .is_some_and(|(t, sy)| t.len() > MAX_TENANT_LENGTH || sy.len() > MAX_SYSTEM_LENGTH);
            if too_long {
                first_err.get_or_insert(TraceStateError::TooLong);
                continue;
            }
            if key == "ot" {
                let (ot, e) = OtTraceState::parse_partial(value);
                ts.ot = ot;
                if let Some(e) = e {
                    first_err.get_or_insert(e);
                }
            } else {
                ts.entries.push((key.to_string(), value.to_string()));
            }
        }
        (ts, first_err)
    }

    /// The value of member `key`; for `ot`, as it would be written.
    pub fn get(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        if key == "ot" {
            return (!self.ot.is_empty()).then(|| std::borrow::Cow::Owned(self.ot.to_string()));
        }
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| std::borrow::Cow::Borrowed(v.as_str()))
    }

    /// Sets member `key` (not `ot`: see [`W3cTraceState::set_ot`]) and moves
    /// it to the front of the other vendors' members.
    pub fn set(&mut self, key: &str, value: String) {
        self.entries.retain(|(k, _)| k != key);
        self.entries.insert(0, (key.to_string(), value));
    }

    pub fn remove(&mut self, key: &str) {
        if key == "ot" {
            self.ot = OtTraceState::default();
        }
        self.entries.retain(|(k, _)| k != key);
    }

    /// The `ot` member (empty when there is none).
    pub fn ot(&self) -> Result<OtTraceState, TraceStateError> {
        Ok(self.ot.clone())
    }

    pub fn ot_mut(&mut self) -> &mut OtTraceState {
        &mut self.ot
    }

    pub fn set_ot(&mut self, ot: &OtTraceState) {
        self.ot = ot.clone();
    }

    /// No member at all.
    pub fn is_empty(&self) -> bool {
        self.ot.is_empty() && self.entries.is_empty()
    }
}

impl fmt::Display for W3cTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if !self.ot.is_empty() {
            write!(f, "ot={}", self.ot)?;
            first = false;
        }
        for (k, v) in &self.entries {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The `ot` entry: `th`, `rv`, and any other sub-keys kept as they were.
/// `th` and `rv` remember their text as received, written back unchanged
/// while the value is not changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtTraceState {
    pub threshold: Option<Threshold>,
    pub randomness: Option<Randomness>,
    pub extra: Vec<(String, String)>,
    th_text: Option<(Threshold, String)>,
    rv_text: Option<(Randomness, String)>,
}

fn valid_ot_syntax(input: &str) -> bool {
    if input.is_empty() || input.ends_with(';') {
        return false;
    }
    input.split(';').all(|m| match m.find(':') {
        Some(colon) if colon >= 1 => {
            let (k, v) = (&m.as_bytes()[..colon], &m.as_bytes()[colon + 1..]);
            is_lc_alpha(k[0])
                && k[1..].iter().all(|c| is_lc_alnum(*c))
                && v.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        }
        _ => false,
    })
}

impl OtTraceState {
    pub fn parse(s: &str) -> Result<OtTraceState, TraceStateError> {
        match Self::parse_partial(s) {
            (ot, None) => Ok(ot),
            (_, Some(e)) => Err(e),
        }
    }

    /// As the Collector: a malformed `th` or `rv` is left out (and is an
    /// error); the rest is kept.
    pub fn parse_partial(s: &str) -> (OtTraceState, Option<TraceStateError>) {
        let mut ot = OtTraceState::default();
        if s.len() > MAX_OT_LENGTH {
            return (ot, Some(TraceStateError::TooLong));
        }
        if !valid_ot_syntax(s) {
            return (ot, Some(TraceStateError::MalformedOt(s.to_string())));
        }
        let mut first_err = None;
        for member in s.split(';') {
            let Some((k, v)) = member.split_once(':') else { continue };
            match k {
                "th" => match Threshold::parse_hex(v) {
                    Some(t) => ot.set_threshold_text(t, v),
                    None => {
                        ot.threshold = None;
                        ot.th_text = None;
                        first_err.get_or_insert(TraceStateError::MalformedOt(s.to_string()));
                    }
                },
                "rv" => match Randomness::parse_hex(v) {
                    Some(r) => {
                        ot.randomness = Some(r);
                        ot.rv_text = Some((r, v.to_string()));
                    }
                    None => {
                        ot.randomness = None;
                        ot.rv_text = None;
                        first_err.get_or_insert(TraceStateError::MalformedOt(s.to_string()));
                    }
                },
                _ => ot.extra.push((k.to_string(), v.to_string())),
            }
        }
        (ot, first_err)
    }

    fn set_threshold_text(&mut self, t: Threshold, text: &str) {
        self.threshold = Some(t);
        self.th_text = Some((t, text.to_string()));
    }

    pub fn is_empty(&self) -> bool {
        self.threshold.is_none() && self.randomness.is_none() && self.extra.is_empty()
    }

    /// The `th` text as it will be written (as received if unchanged).
    pub fn threshold_text(&self) -> Option<String> {
        self.threshold.map(|t| match &self.th_text {
            Some((orig, text)) if *orig == t => text.clone(),
            _ => t.to_hex(),
        })
    }

    /// The Collector's `UpdateTValueWithSampling`: an existing `th` greater
    /// than `th` stays as it is, byte for byte (raising a probability is
    /// illogical) and false is returned; otherwise `th` replaces it, written
    /// in its shortest form.
    pub fn update_threshold(&mut self, th: Threshold) -> bool {
        if self.threshold.is_some_and(|old| old > th) {
            return false;
        }
        self.threshold = Some(th);
        self.th_text = None;
        true
    }
}

impl fmt::Display for OtTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { ";" };
            first = false;
            f.write_str(s)
        };
        if let Some(rv) = self.randomness {
            sep(f)?;
            match &self.rv_text {
                Some((orig, text)) if *orig == rv => write!(f, "rv:{text}")?,
                _ => write!(f, "rv:{}", rv.to_hex())?,
            }
        }
        if let Some(th) = self.threshold_text() {
            sep(f)?;
            write!(f, "th:{th}")?;
        }
        for (k, v) in &self.extra {
            sep(f)?;
            write!(f, "{k}:{v}")?;
        }
        Ok(())
    }
}

/// The randomness of a span: `rv` from its tracestate, else from its trace ID.
pub fn randomness_of(trace_id: &[u8], tracestate: &OtTraceState) -> Option<Randomness> {
    tracestate.randomness.or_else(|| Randomness::from_trace_id(trace_id))
}

/// Records `th` in a span's tracestate string, keeping every other entry and
/// sub-key. A threshold is only ever raised: an existing higher `th` stays.
pub fn record_threshold(tracestate: &str, th: Threshold) -> Result<String, TraceStateError> {
    let mut ts = W3cTraceState::parse(tracestate)?;
    ts.ot_mut().update_threshold(th);
    Ok(ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_vendors_and_moves_ot_first() {
        let out =
            record_threshold("congo=t61rcWkgMzE,ot=rv:01020304050607;x:y", Threshold::parse_hex("c").unwrap()).unwrap();
        assert_eq!(out, "ot=rv:01020304050607;th:c;x:y,congo=t61rcWkgMzE");
    }

    #[test]
    fn never_lowers_a_threshold() {
        assert_eq!(record_threshold("ot=th:c", Threshold::parse_hex("8").unwrap()).unwrap(), "ot=th:c");
        assert_eq!(record_threshold("ot=th:8", Threshold::parse_hex("c").unwrap()).unwrap(), "ot=th:c");
        assert_eq!(record_threshold("", Threshold::parse_hex("8").unwrap()).unwrap(), "ot=th:8");
        // Not raised: the incoming text stays byte for byte, even unnormalised.
        assert_eq!(record_threshold("ot=th:C0", Threshold::parse_hex("8").unwrap()).unwrap(), "ot=th:C0");
    }

    #[test]
    fn malformed_ot_values_are_errors() {
        assert!(matches!(W3cTraceState::parse("ot=th:zz"), Err(TraceStateError::MalformedOt(_))));
        assert!(matches!(W3cTraceState::parse("ot=rv:123"), Err(TraceStateError::MalformedOt(_))));
        assert!(W3cTraceState::parse("novalue").is_err());
    }
}
