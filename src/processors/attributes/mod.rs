//! The `attributes` processor (traces, metrics, logs): the Collector's
//! attributesprocessor. Its actions (see `actions`) are applied in order to
//! the attributes of every span, log record and metric data point; resource
//! and scope attributes are left to the `resource` processor.
//!
//! Guarantees: items are never dropped or reordered; regexes are compiled
//! once when the processor is built; an action that cannot apply to an item
//! (absent key, value of the wrong type, a convert that does not parse)
//! leaves that item as it was.

pub mod actions;
pub mod config;

use super::{Processor, ProcessorContext};
use crate::data::Batch;
use actions::Actions;
use config::AttributesConfig;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::time::Instant;

pub struct AttributesProcessor {
    actions: Actions,
}

impl AttributesProcessor {
    pub fn new(cfg: &AttributesConfig, _ctx: &ProcessorContext) -> Self {
        // Validation refused every action that does not compile.
        AttributesProcessor { actions: Actions::compile(&cfg.actions).0 }
    }

    /// Applies the actions to every item's attributes in place.
    pub fn apply(&self, batch: &mut Batch) {
        let a = &self.actions;
        match batch {
            Batch::Traces(req) => {
                for span in req.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans) {
                    a.apply(&mut span.attributes);
                }
            }
            Batch::Logs(req) => {
                for rec in req.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records)
                {
                    a.apply(&mut rec.attributes);
                }
            }
            Batch::Metrics(req) => {
                let metrics =
                    req.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics);
                for m in metrics {
                    match &mut m.data {
                        Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::Sum(s)) => s.data_points.iter_mut().for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::ExponentialHistogram(h)) => {
                            h.data_points.iter_mut().for_each(|p| a.apply(&mut p.attributes))
                        }
                        Some(Data::Summary(s)) => s.data_points.iter_mut().for_each(|p| a.apply(&mut p.attributes)),
                        None => {}
                    }
                }
            }
        }
    }
}

impl Processor for AttributesProcessor {
    fn process(&mut self, mut batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        self.apply(&mut batch);
        out.push(batch);
    }
}

#[cfg(test)]
pub(crate) mod tests;
