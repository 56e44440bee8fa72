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
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig { endpoint: "127.0.0.1:13133".into(), path: "/".into() }
    }
}

pub fn health_check(c: &mut Checker, cfg: &HealthCheckConfig) {
    c.endpoint(&["endpoint"], &cfg.endpoint);
}
