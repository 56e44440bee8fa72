//! The `memory_limiter` processor. Every `check_interval` it reads the
//! process's resident memory; above the soft limit (`limit - spike_limit`) the
//! pipelines that list it refuse new data with retryable errors, and they take
//! data again once memory falls below the soft limit.
//!
//! The decision is made at the pipeline's door (before a batch is queued),
//! because refusing there is what lets the client retry; data already inside
//! the pipeline is never dropped for memory.
//!
//! Below the soft limit, a receiver still asks the door to [`MemoryGate::claim`]
//! a request's decoded size (estimated from its bytes) before decoding it: a
//! request that would take memory past the hard limit, counting what was
//! admitted since the last reading, is refused retryably without being decoded.

pub mod config;

use super::{DataForm, Processor, ProcessorContext, ProcessorFactory, ProcessorSpec};
use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use config::MemoryLimiterConfig;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "memory_limiter",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "refuses data with retryable errors while memory is above its limit",
        example: "check_interval: 1s\nlimit_percentage: 80\nspike_limit_percentage: 20\n",
    },
    settings: SettingsType::of::<MemoryLimiterConfig>(),
    compile: |input| {
        let cfg: MemoryLimiterConfig = input.typed()?;
        let total = input.env.total_memory;
        let mut limits = None;
        input.check(|c| limits = config::validate(c, &cfg, total)).then_some(())?;
        Some(Arc::new(Admission { limits: limits?, check_interval: cfg.check_interval.get(), config: cfg }))
    },
};

/// A memory limiter's compiled form: the limits the pipeline's door
/// enforces and how often memory is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub limits: MemoryLimits,
    pub check_interval: std::time::Duration,
    config: MemoryLimiterConfig,
}

impl ProcessorSpec for Admission {
    /// Inside the chain it hands data on: it acts at the door.
    fn build(&self, _ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(super::PassThrough))
    }

    fn data_form(&self) -> DataForm {
        DataForm::Untouched
    }

    fn admission(&self) -> Option<&Admission> {
        Some(self)
    }
}

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
            let bytes = |mib: u64| {
                mib.checked_mul(MIB).ok_or_else(|| format!("{mib} MiB is more memory than can be addressed"))
            };
            (bytes(cfg.limit_mib)?, bytes(spike)?)
        } else if cfg.limit_percentage > 0 {
            let total = total_memory.ok_or(
                "limit_percentage needs the machine's total memory, which could not be read; set limit_mib instead",
            )?;
            if cfg.limit_percentage > 100 {
                return Err(format!("limit_percentage {} is above 100", cfg.limit_percentage));
            }
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

/// What the pipeline's door reads; the checker thread writes it: whether
/// memory is above the soft limit, and the headroom below the hard limit
/// that requests admitted since the last reading have not yet claimed.
#[derive(Debug, Clone, Default)]
pub struct MemoryGate(Arc<GateState>);

#[derive(Debug, Default)]
struct GateState {
    refusing: AtomicBool,
    /// The last reading and the hard limit it was compared with; 0 before the first.
    used: AtomicU64,
    hard: AtomicU64,
    /// Decoded bytes of the requests admitted since the last reading: they
    /// are not in it yet, so they count against the headroom until the next.
    claimed: AtomicU64,
}

impl MemoryGate {
    pub fn refusing(&self) -> bool {
        self.0.refusing.load(Ordering::Relaxed)
    }

    /// Applies one reading; returns whether the refusing state changed.
    pub fn update(&self, limits: &MemoryLimits, used: u64) -> bool {
        let s = &self.0;
        s.hard.store(limits.hard, Ordering::Relaxed);
        s.used.store(used, Ordering::Relaxed);
        s.claimed.store(0, Ordering::Relaxed);
        let refuse = used >= limits.soft;
        s.refusing.swap(refuse, Ordering::Relaxed) != refuse
    }

    /// Claims `bytes` of the headroom (the hard limit less the last reading
    /// and what was claimed since) for a request about to be decoded;
    /// `false`, claiming nothing, when they do not fit. Before the first
    /// reading every request fits.
    pub fn claim(&self, bytes: u64) -> bool {
        let s = &self.0;
        let hard = s.hard.load(Ordering::Relaxed);
        if hard == 0 {
            return true;
        }
        let free = hard.saturating_sub(s.used.load(Ordering::Relaxed));
        s.claimed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |claimed| {
                claimed.checked_add(bytes).filter(|total| *total <= free)
            })
            .is_ok()
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

    #[test]
    fn claims_fit_the_headroom_below_the_hard_limit_until_the_next_reading() {
        let l = MemoryLimits { hard: 100, soft: 80 };
        let g = MemoryGate::default();
        assert!(g.claim(1 << 40), "no reading yet: nothing to compare with");
        g.update(&l, 60);
        assert!(!g.claim(41), "60 used + 41 > 100");
        assert!(g.claim(30));
        assert!(g.claim(10));
        assert!(!g.claim(1), "the headroom is claimed until the next reading");
        g.update(&l, 70);
        assert!(g.claim(30));
        assert!(!g.claim(1));
    }
}
