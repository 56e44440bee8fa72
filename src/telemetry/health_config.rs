//! Configuration of the `health_check` extension.

use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// host:port to listen on. Default 127.0.0.1:13133.
    pub endpoint: String,
    /// Path of the Collector-compatible status page. Default "/".
    pub path: String,
    /// Which exporter failures make the agent not ready (none by default).
    #[serde(skip)]
    #[schemars(skip)]
    pub component_health: crate::telemetry::health::ComponentHealthPolicy,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig { endpoint: "127.0.0.1:13133".into(), path: "/".into(), component_health: Default::default() }
    }
}

pub fn health_check(c: &mut Checker, cfg: &HealthCheckConfig) {
    c.endpoint(&["endpoint"], &cfg.endpoint);
}
