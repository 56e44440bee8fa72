//! The `resource` processor (traces, metrics, logs): the Collector's
//! resourceprocessor. The same actions as `attributes` (see
//! `attributes::actions`), configured under `attributes:`, are applied in
//! order to the resource attributes of every resource in a batch; a
//! resource that is absent is acted on as an empty one.

pub mod config;

use super::attributes::actions::Actions;
use super::{Processor, ProcessorContext};
use crate::data::Batch;
use config::ResourceConfig;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::Instant;

pub struct ResourceProcessor {
    actions: Actions,
}

impl ResourceProcessor {
    pub fn new(cfg: &ResourceConfig, _ctx: &ProcessorContext) -> Self {
        ResourceProcessor { actions: Actions::compile(&cfg.attributes).0 }
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
