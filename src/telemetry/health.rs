//! What the health endpoints report: whether every receiver is listening and
//! whether any exporter is in permanent failure.
//!
//! Components update their own entry only when their state changes, so the
//! hot path pays one relaxed atomic load per batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Entry {
    failing: AtomicBool,
    message: Mutex<Option<String>>,
}

/// One component's health; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ComponentHealth(Arc<Entry>);

impl ComponentHealth {
    pub fn set_ok(&self) {
        if self.0.failing.swap(false, Ordering::Relaxed) {
            *self.0.message.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub fn set_permanent_failure(&self, message: String) {
        *self.0.message.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        self.0.failing.store(true, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        if self.0.failing.load(Ordering::Relaxed) {
            self.0.message.lock().unwrap_or_else(|e| e.into_inner()).clone()
        } else {
            None
        }
    }
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

    pub fn readiness(&self) -> Readiness {
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
            if let Some(msg) = health.failure() {
                not_ready.insert(format!("exporter/{id}"), format!("permanent failure: {msg}"));
            }
        }
        Readiness { ready: not_ready.is_empty(), not_ready }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_started_bound_and_no_exporter_failing() {
        let h = HealthState::new();
        h.expect_receiver("otlp");
        let exp = h.exporter("otlp/tempo");
        assert!(!h.readiness().ready);
        h.set_started();
        h.receiver_bound("otlp");
        assert!(h.readiness().ready);
        exp.set_permanent_failure("HTTP 401 Unauthorized".into());
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.not_ready["exporter/otlp/tempo"], "permanent failure: HTTP 401 Unauthorized");
        exp.set_ok();
        assert!(h.readiness().ready);
    }
}
