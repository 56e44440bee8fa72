//! The `resource` processor (traces, metrics, logs): the Collector's
//! resourceprocessor. The same actions as `attributes` (see
//! `attributes::actions`), configured under `attributes:`, are applied in
//! order to the resource attributes of every resource in a batch; a
//! resource that is absent is acted on as an empty one.

pub mod config;

use super::attributes::actions::Actions;
use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use config::ResourceConfig;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::Instant;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::processors::{ProcessorFactory, ProcessorSpec};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "resource",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "applies the attributes processor's actions to resource attributes",
        example: "attributes:\n  - {key: deployment.environment, value: production, action: upsert}\n",
    },
    settings: SettingsType::of::<ResourceConfig>(),
    compile: |input| {
        let cfg: ResourceConfig = input.typed()?;
        let actions = crate::processors::attributes::config::compile_actions(
            &mut input.checker(),
            "attributes",
            &cfg.attributes,
        )?;
        Some(std::sync::Arc::new(ResourceSpec { config: cfg, actions }) as _)
    },
};

/// The resource processor's compiled actions.
#[derive(Debug)]
pub struct ResourceSpec {
    config: ResourceConfig,
    actions: Actions,
}

impl ResourceSpec {
    /// The settings it was compiled from.
    pub fn config(&self) -> &ResourceConfig {
        &self.config
    }
}

impl PartialEq for ResourceSpec {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl ProcessorSpec for ResourceSpec {
    fn build(&self, _ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(ResourceProcessor { actions: self.actions.clone() }))
    }
}

pub struct ResourceProcessor {
    actions: Actions,
}

impl ResourceProcessor {
    /// Compiles `cfg` on its own (tests and benches): the first error, if any.
    pub fn new(cfg: &ResourceConfig, _ctx: &ProcessorContext) -> Result<Self, String> {
        let (actions, errors) = Actions::compile(&cfg.attributes);
        match errors.into_iter().next() {
            Some(e) => Err(e.message),
            None => Ok(ResourceProcessor { actions }),
        }
    }

    fn on(&self, resource: &mut Option<Resource>) {
        self.actions.apply(&mut resource.get_or_insert_with(Resource::default).attributes);
    }

    /// Applies the actions to every resource's attributes in place.
    pub fn apply(&self, batch: &mut Batch) {
        match batch {
            Batch::Traces(req) => req.resource_spans.iter_mut().for_each(|r| self.on(&mut r.resource)),
            Batch::Logs(req) => req.resource_logs.iter_mut().for_each(|r| self.on(&mut r.resource)),
            Batch::Metrics(req) => req.resource_metrics.iter_mut().for_each(|r| self.on(&mut r.resource)),
        }
    }
}

impl Processor for ResourceProcessor {
    fn process(&mut self, mut batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        self.apply(&mut batch);
        out.push(batch);
    }
}

#[cfg(test)]
mod tests;
