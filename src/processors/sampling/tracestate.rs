//! The W3C `tracestate` header value and the OpenTelemetry `ot` entry in it.
//!
//! Parsing is forgiving where the specs allow and strict where a wrong guess
//! would change a sampling decision: an `ot` entry with a malformed `th` or
//! `rv` is reported, not ignored.

use super::{Randomness, Threshold};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("tracestate has more than 32 entries")]
    TooManyEntries,
    #[error("malformed tracestate entry {0:?}")]
    MalformedEntry(String),
    #[error("malformed ot tracestate value {0:?}")]
    MalformedOt(String),
}

/// A parsed `tracestate`: vendor entries in order, first is most recent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct W3cTraceState {
    entries: Vec<(String, String)>,
}

impl W3cTraceState {
    pub fn parse(s: &str) -> Result<W3cTraceState, TraceStateError> {
        let mut entries = Vec::new();
        for member in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let (k, v) = member.split_once('=').ok_or_else(|| TraceStateError::MalformedEntry(member.to_string()))?;
            if k.is_empty() || v.is_empty() {
                return Err(TraceStateError::MalformedEntry(member.to_string()));
            }
            entries.push((k.to_string(), v.to_string()));
        }
        if entries.len() > 32 {
            return Err(TraceStateError::TooManyEntries);
        }
        Ok(W3cTraceState { entries })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` and moves it to the front, as W3C requires of a modified entry.
    pub fn set(&mut self, key: &str, value: String) {
        self.entries.retain(|(k, _)| k != key);
        self.entries.insert(0, (key.to_string(), value));
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    pub fn ot(&self) -> Result<OtTraceState, TraceStateError> {
        self.get("ot").map_or(Ok(OtTraceState::default()), OtTraceState::parse)
    }

    pub fn set_ot(&mut self, ot: &OtTraceState) {
        if ot.is_empty() {
            self.remove("ot");
        } else {
            self.set("ot", ot.to_string());
        }
    }
}

impl fmt::Display for W3cTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The `ot` entry: `th`, `rv`, and any other sub-keys kept as they were.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtTraceState {
    pub threshold: Option<Threshold>,
    pub randomness: Option<Randomness>,
    pub extra: Vec<(String, String)>,
}

impl OtTraceState {
    pub fn parse(s: &str) -> Result<OtTraceState, TraceStateError> {
        let mut ot = OtTraceState::default();
        for field in s.split(';').filter(|f| !f.is_empty()) {
            let (k, v) = field.split_once(':').ok_or_else(|| TraceStateError::MalformedOt(s.to_string()))?;
            match k {
                "th" => {
                    ot.threshold =
                        Some(Threshold::parse_hex(v).ok_or_else(|| TraceStateError::MalformedOt(s.to_string()))?)
                }
                "rv" => {
                    ot.randomness =
                        Some(Randomness::parse_hex(v).ok_or_else(|| TraceStateError::MalformedOt(s.to_string()))?)
                }
                _ => ot.extra.push((k.to_string(), v.to_string())),
            }
        }
        Ok(ot)
    }

    pub fn is_empty(&self) -> bool {
        self.threshold.is_none() && self.randomness.is_none() && self.extra.is_empty()
    }
}

impl fmt::Display for OtTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(th) = self.threshold {
            parts.push(format!("th:{}", th.to_hex()));
        }
        if let Some(rv) = self.randomness {
            parts.push(format!("rv:{}", rv.to_hex()));
        }
        parts.extend(self.extra.iter().map(|(k, v)| format!("{k}:{v}")));
        f.write_str(&parts.join(";"))
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
    let mut ot = ts.ot()?;
    ot.threshold = Some(ot.threshold.map_or(th, |old| old.max(th)));
    ts.set_ot(&ot);
    Ok(ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_vendors_and_moves_ot_first() {
        let out =
            record_threshold("congo=t61rcWkgMzE,ot=rv:01020304050607;x:y", Threshold::parse_hex("c").unwrap()).unwrap();
        assert_eq!(out, "ot=th:c;rv:01020304050607;x:y,congo=t61rcWkgMzE");
    }

    #[test]
    fn never_lowers_a_threshold() {
        assert_eq!(record_threshold("ot=th:c", Threshold::parse_hex("8").unwrap()).unwrap(), "ot=th:c");
        assert_eq!(record_threshold("ot=th:8", Threshold::parse_hex("c").unwrap()).unwrap(), "ot=th:c");
        assert_eq!(record_threshold("", Threshold::parse_hex("8").unwrap()).unwrap(), "ot=th:8");
    }

    #[test]
    fn malformed_ot_values_are_errors() {
        assert!(matches!(W3cTraceState::parse("ot=th:zz").unwrap().ot(), Err(TraceStateError::MalformedOt(_))));
        assert!(matches!(W3cTraceState::parse("ot=rv:123").unwrap().ot(), Err(TraceStateError::MalformedOt(_))));
        assert!(W3cTraceState::parse("novalue").is_err());
    }
}
