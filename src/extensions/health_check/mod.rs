//! The `health_check` extension: liveness, readiness and startup endpoints
//! (served by `telemetry::server`).

use super::{ExtensionFactory, ExtensionSpec};
use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::telemetry::health_config::{health_check, HealthCheckConfig};
use std::sync::Arc;

pub static FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "health_check",
        aliases: &[],
        signals: &[],
        description: "liveness, readiness and startup endpoints",
    },
    compile: |input| {
        let cfg: HealthCheckConfig = input.typed()?;
        input.check(|c| health_check(c, &cfg)).then(|| Arc::new(cfg) as _)
    },
};

impl ExtensionSpec for HealthCheckConfig {
    fn health_server(&self) -> Option<&HealthCheckConfig> {
        Some(self)
    }
}
