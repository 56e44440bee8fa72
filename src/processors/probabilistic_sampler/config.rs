//! Configuration of the `probabilistic_sampler` processor, with the
//! Collector's field names and defaults (contrib `probabilisticsamplerprocessor`).
//!
//! `mode`, `attribute_source` and `sampling_precision` are kept loosely typed
//! here so that a bad value is reported by `config::validate` with its path,
//! line and a hint, rather than as a bare serde error.

use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticSamplerConfig {
    /// Percentage of items kept, in [0, 100]. Default 0 (keep nothing), as the Collector.
    pub sampling_percentage: f64,
    /// Seed of the FNV hash in `hash_seed` mode; collectors of one tier must share it. Default 0.
    pub hash_seed: u32,
    /// `hash_seed`, `proportional` or `equalizing`. Default (unset): `hash_seed`,
    /// as the Collector resolves an unset mode.
    pub mode: Option<String>,
    /// Drop items whose sampling input is unusable (malformed tracestate,
    /// missing randomness, inconsistent threshold). Default true.
    pub fail_closed: bool,
    /// Hex digits of the `th` written by `proportional`/`equalizing`, 1..=14. Default 4.
    pub sampling_precision: i64,
    /// Logs: `traceID` or `record` (hash the `from_attribute` value). Default `traceID`.
    pub attribute_source: String,
    /// Logs: the record attribute hashed when `attribute_source: record`, or
    /// when a record has no trace ID. Default none.
    pub from_attribute: String,
    /// Logs: a record attribute whose numeric value (a percentage) replaces
    /// `sampling_percentage` for that record. Default none.
    pub sampling_priority: String,
}

impl Default for ProbabilisticSamplerConfig {
    fn default() -> Self {
        ProbabilisticSamplerConfig {
            sampling_percentage: 0.0,
            hash_seed: 0,
            mode: None,
            fail_closed: true,
            sampling_precision: 4,
            attribute_source: "traceID".to_string(),
            from_attribute: String::new(),
            sampling_priority: String::new(),
        }
    }
}

/// How the sampling decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerMode {
    /// FNV-1a of the seed and trace ID (or attribute), 14 bits: the
    /// Collector's original, non-consistent algorithm.
    HashSeed,
    /// OTEP 235: raise the threshold to the configured one.
    Equalizing,
    /// OTEP 235: multiply the incoming probability by the configured one.
    Proportional,
}

pub const MODES: &[&str] = &["hash_seed", "proportional", "equalizing"];
pub const ATTRIBUTE_SOURCES: &[&str] = &["traceID", "record"];

impl SamplerMode {
    pub fn parse(s: &str) -> Option<SamplerMode> {
        match s {
            "hash_seed" => Some(SamplerMode::HashSeed),
            "equalizing" => Some(SamplerMode::Equalizing),
            "proportional" => Some(SamplerMode::Proportional),
            _ => None,
        }
    }
}

impl ProbabilisticSamplerConfig {
    /// The mode in effect. An unset (or empty) mode is `hash_seed`, as in the
    /// Collector, whose default mode is `hash_seed`. Invalid values are
    /// refused by validation; here they fall back to the default.
    pub fn resolved_mode(&self) -> SamplerMode {
        self.mode.as_deref().and_then(SamplerMode::parse).unwrap_or(SamplerMode::HashSeed)
    }

    /// Whether logs take randomness from the record's trace ID.
    pub fn logs_by_trace_id(&self) -> bool {
        self.attribute_source != "record"
    }
}

pub fn validate(c: &mut Checker, cfg: &ProbabilisticSamplerConfig) {
    let pct = cfg.sampling_percentage;
    // Above 100 means keep everything, as in the Collector; infinity is
    // refused there (it is not a percentage), so it is here.
    if pct.is_infinite() {
        c.error(
            &["sampling_percentage"],
            format!("sampling_percentage {pct} is not a finite number"),
            Some("a percentage of items to keep, e.g. 15.3; 100 keeps everything"),
        );
    } else if pct.is_nan() || pct < 0.0 {
        c.error(
            &["sampling_percentage"],
            format!("sampling_percentage {pct} must not be negative"),
            Some("a percentage of items to keep, e.g. 15.3; 0 keeps nothing, 100 (or more) keeps everything"),
        );
    } else if pct > 0.0 && pct / 100.0 < 1.0 / (1u64 << 56) as f64 {
        c.error(
            &["sampling_percentage"],
            format!("sampling_percentage {pct} is too small to express"),
            Some("the smallest probability is 2^-56; use 0 to keep nothing"),
        );
    }
    if let Some(mode) = &cfg.mode {
        if !mode.is_empty() && !MODES.contains(&mode.as_str()) {
            let modes = format!("modes are {}", MODES.join(", "));
            let hint = match crate::config::suggest::did_you_mean(mode, MODES.iter().copied()) {
                Some(s) => format!("{s} {modes}"),
                None => modes,
            };
            c.error(&["mode"], format!("unknown mode \"{mode}\""), Some(&hint));
        }
    }
    if !(1..=14).contains(&cfg.sampling_precision) {
        c.error(
            &["sampling_precision"],
            format!("sampling_precision {} must be from 1 to 14", cfg.sampling_precision),
            Some("hex digits of the threshold written in tracestate; the default is 4"),
        );
    }
    if !ATTRIBUTE_SOURCES.contains(&cfg.attribute_source.as_str()) {
        c.error(
            &["attribute_source"],
            format!("unknown attribute_source \"{}\"", cfg.attribute_source),
            Some("traceID (the default) or record"),
        );
    } else if cfg.attribute_source == "record" && cfg.from_attribute.is_empty() {
        c.error(
            &["from_attribute"],
            "from_attribute is required when attribute_source is record",
            Some("name the log record attribute to sample by, e.g. from_attribute: log.id"),
        );
    }
}
