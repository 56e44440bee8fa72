//! Configuration of the `memory_limiter` processor, as the Collector's.

use super::MemoryLimits;
use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often memory is measured. Required to be above zero. Default 1s.
    pub check_interval: Duration,
    /// Hard limit in MiB. One of limit_mib and limit_percentage is required.
    pub limit_mib: u64,
    /// Headroom below the hard limit; data is refused above limit - spike.
    /// Default 20% of the limit.
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of total (or cgroup) memory.
    pub limit_percentage: u64,
    /// Headroom below `limit_percentage`, in percent of total memory, used when `spike_limit_mib`
    /// is 0.
    pub spike_limit_percentage: u64,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        MemoryLimiterConfig {
            check_interval: Duration::from_secs(1),
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
        }
    }
}

/// Checks the settings; the limits they resolve to on this machine.
pub fn validate(c: &mut Checker, cfg: &MemoryLimiterConfig, total_memory: Option<u64>) -> Option<MemoryLimits> {
    if cfg.check_interval.get() < std::time::Duration::from_millis(1) {
        c.error(
            &["check_interval"],
            format!("check_interval {} is below 1ms", cfg.check_interval),
            Some("memory is read once per interval; e.g. 1s"),
        );
    }
    if cfg.spike_limit_percentage > 100 {
        c.error(
            &["spike_limit_percentage"],
            format!("spike_limit_percentage {} is above 100", cfg.spike_limit_percentage),
            None,
        );
    }
    match MemoryLimits::resolve(cfg, total_memory) {
        Ok(limits) => Some(limits),
        Err(msg) => {
            let field = if cfg.limit_mib > 0 {
                "limit_mib"
            } else if cfg.limit_percentage > 0 {
                "limit_percentage"
            } else {
                ""
            };
            let field: &[&str] = if field.is_empty() { &[] } else { &[field] };
            c.error(field, msg, Some("set limit_mib (e.g. 512) or limit_percentage (e.g. 80)"));
            None
        }
    }
}
