//! Configuration of the `log_rate_limiter` processor. Every field has a
//! default, so an empty `log_rate_limiter:` section limits each
//! (service, severity, body template) to 100 records/s with a burst of 100.
//!
//! `key_fields` and `exempt_severity` are kept as text here so that a bad
//! value is reported by `config::validate` with its path, line and a hint;
//! `KeyField::parse` and `severity_floor` are the single source of truth for
//! what is accepted.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogRateLimiterConfig {
    /// Fields whose values, together, form a record's key: `resource.<attr>`,
    /// `attributes.<attr>`, `severity_text`, `severity_number`,
    /// `body_template`. Default `[resource.service.name, severity_text,
    /// body_template]`. An empty list puts every record under one key.
    pub key_fields: Vec<String>,
    /// Records per second kept per key, across the pipeline's workers. Default 100.
    pub rate: f64,
    /// Records a key may send at once above its rate (bucket size). Default 100.
    pub burst: u64,
    /// Records at or above this severity are never limited: `TRACE`, `DEBUG`,
    /// `INFO`, `WARN`, `ERROR`, `FATAL` (case-insensitive, optionally with
    /// the OTLP suffix 2..4, e.g. `ERROR3`), or `NONE` to limit every
    /// severity. Default `ERROR`.
    pub exempt_severity: String,
    /// Most keys tracked (split across workers); records of further keys
    /// share one catch-all key once no idle key can be evicted. Default 10000.
    pub max_keys: usize,
    /// How often one summary record per limited key is emitted. Default 10s.
    pub summary_interval: Duration,
}

impl Default for LogRateLimiterConfig {
    fn default() -> Self {
        LogRateLimiterConfig {
            key_fields: vec![
                "resource.service.name".to_string(),
                "severity_text".to_string(),
                "body_template".to_string(),
            ],
            rate: 100.0,
            burst: 100,
            exempt_severity: "ERROR".to_string(),
            max_keys: 10_000,
            summary_interval: Duration::from_secs(10),
        }
    }
}

/// One part of a record's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyField {
    Resource(String),
    Attribute(String),
    SeverityText,
    SeverityNumber,
    BodyTemplate,
}

/// What `key_fields` accepts, for hints.
pub const KEY_FIELD_FORMS: &str =
    "resource.<attribute>, attributes.<attribute>, severity_text, severity_number or body_template";

impl KeyField {
    pub fn parse(s: &str) -> Option<KeyField> {
        match s {
            "severity_text" => Some(KeyField::SeverityText),
            "severity_number" => Some(KeyField::SeverityNumber),
            "body_template" => Some(KeyField::BodyTemplate),
            _ => {
                if let Some(a) = s.strip_prefix("resource.").filter(|a| !a.is_empty()) {
                    Some(KeyField::Resource(a.to_string()))
                } else {
                    s.strip_prefix("attributes.").filter(|a| !a.is_empty()).map(|a| KeyField::Attribute(a.to_string()))
                }
            }
        }
    }
}

/// Severity names and the first OTLP severity number of each range.
pub const SEVERITIES: &[(&str, i32)] =
    &[("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21)];

/// The OTLP severity number a name stands for: `ERROR` is 17, `ERROR3` 19.
/// `WARNING` is taken as `WARN`, as many loggers write it.
pub fn severity_number(name: &str) -> Option<i32> {
    // Called per record for records with only a severity text: no allocation.
    let name = name.trim();
    let (base, step) = match name.as_bytes() {
        [.., d @ b'2'..=b'4'] if name.len() > 1 => (&name[..name.len() - 1], i32::from(d - b'1')),
        _ => (name, 0),
    };
    let base = if base.eq_ignore_ascii_case("WARNING") { "WARN" } else { base };
    SEVERITIES.iter().find(|(n, _)| n.eq_ignore_ascii_case(base)).map(|(_, v)| v + step)
}

/// A name that is neither a severity nor `NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSeverity;

/// The severity floor in effect: Ok(None) when nothing is exempt (`NONE`).
pub fn severity_floor(name: &str) -> Result<Option<i32>, UnknownSeverity> {
    if name.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    severity_number(name).map(Some).ok_or(UnknownSeverity)
}

impl LogRateLimiterConfig {
    /// Parsed key fields; unknown ones (refused by validation) are skipped.
    pub fn parsed_key_fields(&self) -> Vec<KeyField> {
        self.key_fields.iter().filter_map(|f| KeyField::parse(f)).collect()
    }

    /// The exempt severity number; an invalid name (refused by validation)
    /// falls back to the default, ERROR.
    pub fn exempt_floor(&self) -> Option<i32> {
        severity_floor(&self.exempt_severity).unwrap_or(Some(17))
    }
}

pub fn validate(c: &mut Checker, cfg: &LogRateLimiterConfig) {
    // NaN and infinity fail this check too.
    if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
        c.error(
            &["rate"],
            format!("rate {} must be a number above 0", cfg.rate),
            Some("records per second per key, e.g. 100"),
        );
    }
    if cfg.burst == 0 {
        c.error(&["burst"], "burst must be at least 1", Some("records a key may send at once, e.g. 100"));
    }
    if cfg.max_keys == 0 {
        c.error(&["max_keys"], "max_keys must be at least 1", Some("e.g. 10000"));
    }
    if cfg.summary_interval.is_zero() {
        c.error(&["summary_interval"], "summary_interval must be above zero", Some("e.g. 10s"));
    }
    for (i, field) in cfg.key_fields.iter().enumerate() {
        if KeyField::parse(field).is_none() {
            let i = i.to_string();
            let hint = format!("a key field is {KEY_FIELD_FORMS}");
            c.error(&["key_fields", i.as_str()], format!("unknown key field \"{field}\""), Some(&hint));
        }
    }
    if severity_floor(&cfg.exempt_severity).is_err() {
        let names: Vec<&str> = SEVERITIES.iter().map(|(n, _)| *n).chain(["NONE"]).collect();
        let hint = format!("severities are {}", names.join(", "));
        c.error(&["exempt_severity"], format!("unknown severity \"{}\"", cfg.exempt_severity), Some(&hint));
    }
}
