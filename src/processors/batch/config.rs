//! Configuration of the `batch` processor, with the Collector's defaults.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Items (spans, data points, log records) at which a batch is sent. Default 8192.
    pub send_batch_size: usize,
    /// Upper bound of a batch; larger ones are split. 0 means no bound. Default 0.
    pub send_batch_max_size: usize,
    /// Longest time a non-empty batch waits before it is sent. Default 200ms.
    pub timeout: Duration,
    /// The Collector batches separately per value of these client metadata
    /// keys. sluice's receivers hand no client metadata on (there is no
    /// `include_metadata`), so every request has the same, empty, metadata
    /// and there is one batcher, as in the Collector without
    /// `include_metadata`. Checked as the Collector checks it.
    pub metadata_keys: Vec<String>,
    /// Most distinct metadata combinations batched at once. Default 1000.
    pub metadata_cardinality_limit: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

pub fn validate(c: &mut Checker, cfg: &BatchConfig) {
    if cfg.send_batch_max_size != 0 && cfg.send_batch_max_size < cfg.send_batch_size {
        c.error(
            &["send_batch_max_size"],
            format!(
                "send_batch_max_size ({}) must be 0 or at least send_batch_size ({})",
                cfg.send_batch_max_size, cfg.send_batch_size
            ),
            None,
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in cfg.metadata_keys.iter().enumerate() {
        if !seen.insert(key.to_ascii_lowercase()) {
            c.error_at(
                &["metadata_keys".to_string(), i.to_string()],
                format!("duplicate entry in metadata_keys: \"{key}\" (case-insensitive)"),
                None,
            );
        }
    }
    if !cfg.metadata_keys.is_empty() && cfg.metadata_cardinality_limit == 0 {
        c.error(
            &["metadata_cardinality_limit"],
            "metadata_cardinality_limit must be above 0 when metadata_keys is set",
            Some("e.g. 1000, the default"),
        );
    }
}
