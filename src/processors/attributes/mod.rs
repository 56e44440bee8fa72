//! The `attributes` processor (traces, metrics, logs): the Collector's
//! attributesprocessor. Its actions (see `actions`) are applied in order to
//! the attributes of every span, log record and metric data point that
//! `include` / `exclude` select (all of them when neither is set); resource
//! and scope attributes are left to the `resource` processor.
//!
//! Guarantees: items are never dropped or reordered; regexes are compiled
//! once when the processor is built; an action that cannot apply to an item
//! (absent key, value of the wrong type, a convert that does not parse)
//! leaves that item as it was.

pub mod actions;
pub mod config;
pub mod matcher;

use super::{Processor, ProcessorContext};
use crate::data::Batch;
use actions::Actions;
use config::AttributesConfig;
use matcher::{Filter, Item, Matcher};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::time::Instant;

pub struct AttributesProcessor {
    actions: Actions,
    filter: Filter,
}

impl AttributesProcessor {
    pub fn new(cfg: &AttributesConfig, _ctx: &ProcessorContext) -> Self {
        // Validation refused every action and match property that does not compile.
        let matcher = |m: &Option<Box<matcher::MatchConfig>>| m.as_ref().and_then(|m| Matcher::compile(m).ok());
        AttributesProcessor {
            actions: Actions::compile(&cfg.actions).0,
            filter: Filter { include: matcher(&cfg.include), exclude: matcher(&cfg.exclude) },
        }
    }

    /// Applies the actions to the attributes of every selected item in place.
    pub fn apply(&self, batch: &mut Batch) {
        let a = &self.actions;
        let f = &self.filter;
        let all = f.is_empty();
        match batch {
            Batch::Traces(req) => {
                for rs in &mut req.resource_spans {
                    let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                    for span in rs.scope_spans.iter_mut().flat_map(|s| &mut s.spans) {
                        if all
                            || f.selects(&Item {
                                resource,
                                attributes: &span.attributes,
                                span_name: Some(&span.name),
                                log_body: None,
                                severity_text: None,
                                metric_name: None,
                            })
                        {
                            a.apply(&mut span.attributes);
                        }
                    }
                }
            }
            Batch::Logs(req) => {
                for rl in &mut req.resource_logs {
                    let resource = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                    for rec in rl.scope_logs.iter_mut().flat_map(|s| &mut s.log_records) {
                        if all
                            || f.selects(&Item {
                                resource,
                                attributes: &rec.attributes,
                                span_name: None,
                                log_body: rec.body.as_ref(),
                                severity_text: Some(&rec.severity_text),
                                metric_name: None,
                            })
                        {
                            a.apply(&mut rec.attributes);
                        }
                    }
                }
            }
            Batch::Metrics(req) => {
                for rm in &mut req.resource_metrics {
                    let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                    for m in rm.scope_metrics.iter_mut().flat_map(|s| &mut s.metrics) {
                        let name = &m.name;
                        let on = |attrs: &mut Vec<_>| {
                            if all
                                || f.selects(&Item {
                                    resource,
                                    attributes: attrs,
                                    span_name: None,
                                    log_body: None,
                                    severity_text: None,
                                    metric_name: Some(name),
                                })
                            {
                                a.apply(attrs);
                            }
                        };
                        match &mut m.data {
                            Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| on(&mut p.attributes)),
                            Some(Data::Sum(s)) => s.data_points.iter_mut().for_each(|p| on(&mut p.attributes)),
                            Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| on(&mut p.attributes)),
                            Some(Data::ExponentialHistogram(h)) => {
                                h.data_points.iter_mut().for_each(|p| on(&mut p.attributes))
                            }
                            Some(Data::Summary(s)) => s.data_points.iter_mut().for_each(|p| on(&mut p.attributes)),
                            None => {}
                        }
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
