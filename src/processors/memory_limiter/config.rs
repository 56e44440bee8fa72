//! Configuration of the `memory_limiter` processor, as the Collector's.

use crate::config::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
