//! Configuration of the `batch` processor, with the Collector's defaults.

use crate::config::component::Checker;
use crate::config::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Items (spans, data points, log records) at which a batch is sent. Default 8192.
    pub send_batch_size: usize,
    /// Upper bound of a batch; larger ones are split. 0 means no bound. Default 0.
    pub send_batch_max_size: usize,
    /// Longest time a non-empty batch waits before it is sent. Default 200ms.
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { send_batch_size: 8192, send_batch_max_size: 0, timeout: Duration::from_millis(200) }
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
}
