//! Configuration of the `debug` exporter.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// One summary line per batch.
    #[default]
    Basic,
    /// One line per span, data point or log record.
    Normal,
    /// Every field of every item.
    Detailed,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DebugExporterConfig {
    /// How much is written: `basic` one line per batch, `normal` one per item, `detailed`
    /// everything.
    pub verbosity: Verbosity,
    /// Batches logged per second before sampling starts. Default 2.
    pub sampling_initial: u64,
    /// After the initial ones, log one batch in this many per second. Default 1 (all).
    pub sampling_thereafter: u64,
    /// The Collector's choice between its logger (true, default) and stdout.
    /// Accepted: sluice's debug output always goes to its own log.
    pub use_internal_logger: bool,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        DebugExporterConfig {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
        }
    }
}
