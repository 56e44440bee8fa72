//! The `memory_limiter` processor. Every `check_interval` it reads the
//! process's resident memory; above the soft limit (`limit - spike_limit`) the
//! pipelines that list it refuse new data with retryable errors, and they take
//! data again once memory falls below the soft limit.
//!
//! The decision is made at the pipeline's door (before a batch is queued),
//! because refusing there is what lets the client retry; data already inside
//! the pipeline is never dropped for memory.

pub mod config;

use config::MemoryLimiterConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Limits in bytes, resolved from the config and the machine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub hard: u64,
    pub soft: u64,
}

impl MemoryLimits {
    /// Resolves `limit_mib`/`limit_percentage` against `total_memory`.
    pub fn resolve(cfg: &MemoryLimiterConfig, total_memory: Option<u64>) -> Result<MemoryLimits, String> {
        const MIB: u64 = 1024 * 1024;
        let (hard, spike) = if cfg.limit_mib > 0 {
            let spike = if cfg.spike_limit_mib > 0 { cfg.spike_limit_mib } else { cfg.limit_mib / 5 };
            (cfg.limit_mib * MIB, spike * MIB)
        } else if cfg.limit_percentage > 0 {
            let total = total_memory.ok_or(
                "limit_percentage needs the machine's total memory, which could not be read; set limit_mib instead",
            )?;
            let hard = total / 100 * cfg.limit_percentage;
            let spike_pct =
                if cfg.spike_limit_percentage > 0 { cfg.spike_limit_percentage } else { cfg.limit_percentage / 5 };
            (hard, total / 100 * spike_pct)
        } else {
            return Err("one of limit_mib or limit_percentage must be set above 0".into());
        };
        if spike >= hard {
            return Err(format!("spike limit ({} MiB) must be below the limit ({} MiB)", spike / MIB, hard / MIB));
        }
        Ok(MemoryLimits { hard, soft: hard - spike })
    }
}

/// Shared flag the pipeline's door reads; the checker thread writes it.
#[derive(Debug, Clone, Default)]
pub struct MemoryGate(Arc<AtomicBool>);

impl MemoryGate {
    pub fn refusing(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Applies one reading; returns whether the state changed.
    pub fn update(&self, limits: &MemoryLimits, used: u64) -> bool {
        let refuse = used >= limits.soft;
        self.0.swap(refuse, Ordering::Relaxed) != refuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration;

    fn cfg(limit_mib: u64, spike_mib: u64) -> MemoryLimiterConfig {
        MemoryLimiterConfig {
            check_interval: Duration::from_secs(1),
            limit_mib,
            spike_limit_mib: spike_mib,
            limit_percentage: 0,
            spike_limit_percentage: 0,
        }
    }

    #[test]
    fn soft_limit_is_limit_minus_spike() {
        let l = MemoryLimits::resolve(&cfg(100, 30), None).unwrap();
        assert_eq!(l.soft, 70 * 1024 * 1024);
        let default_spike = MemoryLimits::resolve(&cfg(100, 0), None).unwrap();
        assert_eq!(default_spike.soft, 80 * 1024 * 1024);
    }

    #[test]
    fn percentage_uses_total_memory() {
        let c = MemoryLimiterConfig { limit_percentage: 50, spike_limit_percentage: 10, ..cfg(0, 0) };
        let l = MemoryLimits::resolve(&c, Some(1000 * 100)).unwrap();
        assert_eq!((l.hard, l.soft), (50_000, 40_000));
    }

    #[test]
    fn rejects_missing_or_inverted_limits() {
        assert!(MemoryLimits::resolve(&cfg(0, 0), None).unwrap_err().contains("limit_mib or limit_percentage"));
        assert!(MemoryLimits::resolve(&cfg(100, 100), None).unwrap_err().contains("must be below"));
    }

    #[test]
    fn gate_refuses_above_soft_and_recovers_below() {
        let l = MemoryLimits { hard: 100, soft: 80 };
        let g = MemoryGate::default();
        assert!(!g.update(&l, 50));
        assert!(g.update(&l, 85));
        assert!(g.refusing());
        assert!(g.update(&l, 60));
        assert!(!g.refusing());
    }
}
