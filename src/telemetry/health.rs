//! What the health endpoints report: whether every receiver is listening
//! and, when the `health_check` extension's `component_health` asks for it,
//! whether an exporter is failing (the Collector's healthcheck v2 rule: a
//! permanent error counts at once; a recoverable one once it has lasted
//! `recovery_duration`).
//!
//! Components update their own entry only when their state changes, so the
//! hot path pays one relaxed atomic load per batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Entry {
    failing: AtomicBool,
    state: Mutex<Failure>,
}

/// What an exporter's last send said, when it failed.
#[derive(Debug, Clone, Default, PartialEq)]
enum Failure {
    #[default]
    None,
    /// Sends fail and are retried; `since` the first of this streak.
    Recoverable { since: Instant, message: String },
    /// The destination refused a batch for good.
    Permanent { message: String },
}

/// One component's health; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ComponentHealth(Arc<Entry>);

impl ComponentHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, Failure> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A send succeeded.
    pub fn set_ok(&self) {
        if self.0.failing.swap(false, Ordering::Relaxed) {
            *self.state() = Failure::None;
        }
    }

    /// A send failed and will be retried; a streak keeps its first instant.
    pub fn set_recoverable_failure(&self, message: String, now: Instant) {
        let mut state = self.state();
        match &mut *state {
            Failure::Recoverable { message: last, .. } => *last = message,
            other => *other = Failure::Recoverable { since: now, message },
        }
        self.0.failing.store(true, Ordering::Relaxed);
    }

    pub fn set_permanent_failure(&self, message: String) {
        *self.state() = Failure::Permanent { message };
        self.0.failing.store(true, Ordering::Relaxed);
    }

    /// Why this component counts as unhealthy under `policy` at `now`.
    fn unhealthy(&self, policy: &ComponentHealthPolicy, now: Instant) -> Option<String> {
        if !self.0.failing.load(Ordering::Relaxed) {
            return None;
        }
        match &*self.state() {
            Failure::Permanent { message } if policy.include_permanent_errors => {
                Some(format!("permanent failure: {message}"))
            }
            Failure::Recoverable { since, message }
                if policy.include_recoverable_errors
                    && now.saturating_duration_since(*since) >= policy.recovery_duration =>
            {
                let secs = now.saturating_duration_since(*since).as_secs_f64();
                Some(format!("failing for {secs:.1}s: {message}"))
            }
            _ => None,
        }
    }
}

/// Which exporter failures make the agent not ready: the Collector's
/// healthcheck v2 `component_health`. The default counts none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComponentHealthPolicy {
    pub include_permanent_errors: bool,
    pub include_recoverable_errors: bool,
    pub recovery_duration: Duration,
}

/// The agent's health as the endpoints see it.
#[derive(Debug, Clone, Default)]
pub struct HealthState {
    inner: Arc<Mutex<HealthInner>>,
}

#[derive(Debug, Default)]
struct HealthInner {
    started: bool,
    shutting_down: bool,
    /// Receiver ID → bound?
    receivers: BTreeMap<String, bool>,
    exporters: BTreeMap<String, ComponentHealth>,
}

/// A readiness verdict and the reasons for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    /// Component → why it is not ready.
    pub not_ready: BTreeMap<String, String>,
}

impl HealthState {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn expect_receiver(&self, id: &str) {
        self.lock().receivers.insert(id.to_string(), false);
    }

    /// A receiver removed by a config reload no longer counts for readiness.
    pub fn forget_receiver(&self, id: &str) {
        self.lock().receivers.remove(id);
    }

    pub fn receiver_bound(&self, id: &str) {
        self.lock().receivers.insert(id.to_string(), true);
    }

    /// Registers an exporter and returns the handle it reports through.
    pub fn exporter(&self, id: &str) -> ComponentHealth {
        self.lock().exporters.entry(id.to_string()).or_default().clone()
    }

    pub fn set_started(&self) {
        self.lock().started = true;
    }

    pub fn set_shutting_down(&self) {
        self.lock().shutting_down = true;
    }

    pub fn started(&self) -> bool {
        self.lock().started
    }

    /// Readiness with exporter failures counted as `policy` says, at `now`.
    pub fn readiness(&self, policy: &ComponentHealthPolicy, now: Instant) -> Readiness {
        let inner = self.lock();
        let mut not_ready = BTreeMap::new();
        if !inner.started {
            not_ready.insert("agent".to_string(), "starting".to_string());
        }
        if inner.shutting_down {
            not_ready.insert("agent".to_string(), "shutting down".to_string());
        }
        for (id, bound) in &inner.receivers {
            if !bound {
                not_ready.insert(format!("receiver/{id}"), "not listening".to_string());
            }
        }
        for (id, health) in &inner.exporters {
            if let Some(why) = health.unhealthy(policy, now) {
                not_ready.insert(format!("exporter/{id}"), why);
            }
        }
        Readiness { ready: not_ready.is_empty(), not_ready }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_started_and_bound_whatever_the_exporters_by_default() {
        let h = HealthState::new();
        h.expect_receiver("otlp");
        let exp = h.exporter("otlp/tempo");
        let (off, now) = (ComponentHealthPolicy::default(), Instant::now());
        assert!(!h.readiness(&off, now).ready);
        h.set_started();
        h.receiver_bound("otlp");
        assert!(h.readiness(&off, now).ready);
        // As the Collector's healthcheck v2 with no component_health: failures do not count.
        exp.set_permanent_failure("HTTP 401 Unauthorized".into());
        assert!(h.readiness(&off, now).ready);
    }

    /// The Collector's rule (healthcheckv2 `componentHealthResponder`): a
    /// permanent error is unhealthy iff include_permanent_errors; a
    /// recoverable one iff include_recoverable_errors and now is not before
    /// the error's time + recovery_duration; OK is healthy.
    #[test]
    fn component_health_follows_the_collectors_rule() {
        let h = HealthState::new();
        h.set_started();
        let exp = h.exporter("otlp");
        let t0 = Instant::now();
        let both = ComponentHealthPolicy {
            include_permanent_errors: true,
            include_recoverable_errors: true,
            recovery_duration: Duration::from_secs(5),
        };
        let permanent_only = ComponentHealthPolicy { include_recoverable_errors: false, ..both };
        let recoverable_only = ComponentHealthPolicy { include_permanent_errors: false, ..both };

        exp.set_recoverable_failure("connection refused".into(), t0);
        // A streak keeps its first instant: a later failure does not restart the clock.
        exp.set_recoverable_failure("connection refused again".into(), t0 + Duration::from_secs(3));
        assert!(h.readiness(&both, t0 + Duration::from_millis(4999)).ready, "before the recovery duration");
        let r = h.readiness(&both, t0 + Duration::from_secs(5));
        assert!(!r.ready);
        assert_eq!(r.not_ready["exporter/otlp"], "failing for 5.0s: connection refused again");
        assert!(h.readiness(&permanent_only, t0 + Duration::from_secs(60)).ready);
        // Recovery: one good send and it is healthy again, and a new streak starts anew.
        exp.set_ok();
        assert!(h.readiness(&both, t0 + Duration::from_secs(60)).ready);
        exp.set_recoverable_failure("timeout".into(), t0 + Duration::from_secs(60));
        assert!(h.readiness(&both, t0 + Duration::from_secs(64)).ready);

        exp.set_permanent_failure("HTTP 401 Unauthorized".into());
        let r = h.readiness(&both, t0);
        assert_eq!(r.not_ready["exporter/otlp"], "permanent failure: HTTP 401 Unauthorized");
        assert!(h.readiness(&recoverable_only, t0 + Duration::from_secs(600)).ready);
        // recovery_duration 0 (the Collector's default): unhealthy from the first failure.
        exp.set_ok();
        exp.set_recoverable_failure("refused".into(), t0);
        let at_once = ComponentHealthPolicy { recovery_duration: Duration::ZERO, ..recoverable_only };
        assert!(!h.readiness(&at_once, t0).ready);
    }
}
