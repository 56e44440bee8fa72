//! The `health_check` extension: liveness, readiness and startup endpoints
//! (served by `telemetry::server`).

use super::{ExtensionFactory, ExtensionSpec};
use crate::config::component::{CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::telemetry::health::ComponentHealthPolicy;
use crate::telemetry::health_config::{health_check, HealthCheckConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub static FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "health_check",
        aliases: &[],
        signals: &[],
        description: "liveness, readiness and startup endpoints",
        example: "endpoint: 127.0.0.1:13133\n",
    },
    settings: SettingsType::of::<HealthCheckSettings>(),
    compile: |input| {
        let settings: HealthCheckSettings = input.typed()?;
        let defaults = HealthCheckConfig::default();
        let health = settings.component_health.clone().unwrap_or_default();
        let cfg = HealthCheckConfig {
            endpoint: settings.endpoint.clone().unwrap_or(defaults.endpoint),
            path: settings.path.clone().unwrap_or(defaults.path),
            component_health: ComponentHealthPolicy {
                include_permanent_errors: health.include_permanent_errors,
                include_recoverable_errors: health.include_recoverable_errors,
                recovery_duration: health.recovery_duration.get(),
            },
        };
        input
            .check(|c| {
                health_check(c, &cfg);
                if settings.check_collector_pipeline.as_ref().is_some_and(|p| p.enabled) {
                    c.error(
                        &["check_collector_pipeline", "enabled"],
                        "the Collector has `check_collector_pipeline`; sluice does not support it (yet)",
                        Some(
                            "remove it or set enabled: false; the Collector's README says it does not work as expected",
                        ),
                    );
                }
            })
            .then(|| Arc::new(cfg) as _)
    },
};

/// The extension's settings, field for field the Collector's `health_check`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckSettings {
    /// host:port to listen on. Default 127.0.0.1:13133.
    pub endpoint: Option<String>,
    /// Path of the Collector-compatible status page. Default "/".
    pub path: Option<String>,
    /// Not implemented: a static body, TLS on the health endpoint.
    pub response_body: Option<CollectorOnly>,
    pub tls: Option<CollectorOnly>,
    /// Accepted with `enabled: false` only (deprecated in the Collector).
    pub check_collector_pipeline: Option<CheckCollectorPipeline>,
    /// Which exporter failures make `/health/ready` (and the status page)
    /// answer 503, as the Collector's healthcheck v2 `component_health`.
    /// Absent: exporter failures do not affect readiness.
    pub component_health: Option<ComponentHealthSettings>,
}

/// The Collector's healthcheck v2 `component_health`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ComponentHealthSettings {
    /// An exporter whose destination refused a batch for good (e.g. HTTP
    /// 401) makes the agent not ready until a send succeeds.
    pub include_permanent_errors: bool,
    /// An exporter whose sends have kept failing retryably (unreachable,
    /// 503, timeouts) for `recovery_duration` makes the agent not ready
    /// until a send succeeds.
    pub include_recoverable_errors: bool,
    /// How long retryable failures may last before they count. Default 0s:
    /// at once, as in the Collector.
    pub recovery_duration: crate::config::Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CheckCollectorPipeline {
    /// The Collector's pipeline check: only `false` is accepted.
    pub enabled: bool,
    /// Accepted with `enabled: false`.
    pub interval: Option<crate::config::Duration>,
    /// Accepted with `enabled: false`.
    pub exporter_failure_threshold: Option<u64>,
}

impl ExtensionSpec for HealthCheckConfig {
    fn health_server(&self) -> Option<&HealthCheckConfig> {
        Some(self)
    }
}
