//! Configuration of the `probabilistic_sampler` processor, with the
//! Collector's field names and defaults (contrib `probabilisticsamplerprocessor`).
//!
//! `mode`, `attribute_source` and `sampling_precision` are kept loosely typed
//! here so that a bad value is reported by `config::validate` with its path,
//! line and a hint, rather than as a bare serde error.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
