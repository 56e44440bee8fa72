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
use crate::config::describe::SettingsType;
use crate::data::Batch;
use actions::Actions;
use config::AttributesConfig;
use matcher::{Filter, Item, Matcher};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::time::Instant;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::processors::{ProcessorFactory, ProcessorSpec};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "attributes",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "inserts, updates, deletes, hashes, extracts or converts span, log and data point attributes",
        example: "actions:\n  - {key: deployment.environment, value: production, action: upsert}\n",
    },
    settings: SettingsType::of::<AttributesConfig>(),
    compile: |input| {
        let cfg: AttributesConfig = input.typed()?;
        let mut c = input.checker();
        let actions = config::compile_actions(&mut c, "actions", &cfg.actions);
        let include = config::compile_matcher(&mut c, "include", cfg.include.as_deref());
        let exclude = config::compile_matcher(&mut c, "exclude", cfg.exclude.as_deref());
        let (actions, include, exclude) = (actions?, include?, exclude?);
        Some(std::sync::Arc::new(AttributesSpec { config: cfg, actions, filter: Filter { include, exclude } }) as _)
    },
};

/// The attributes processor's compiled actions and match properties.
#[derive(Debug)]
pub struct AttributesSpec {
    config: AttributesConfig,
    actions: Actions,
    filter: Filter,
}

impl AttributesSpec {
    /// The settings it was compiled from.
    pub fn config(&self) -> &AttributesConfig {
        &self.config
    }
}

impl PartialEq for AttributesSpec {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl ProcessorSpec for AttributesSpec {
    fn build(&self, _ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(AttributesProcessor { actions: self.actions.clone(), filter: self.filter.clone() }))
    }
}

pub struct AttributesProcessor {
    actions: Actions,
    filter: Filter,
}

impl AttributesProcessor {
    /// Compiles `cfg` on its own (tests and benches; the agent builds from
    /// the compiled form): the first error, if any.
    pub fn new(cfg: &AttributesConfig, _ctx: &ProcessorContext) -> Result<Self, String> {
        let (actions, errors) = Actions::compile(&cfg.actions);
        if let Some(e) = errors.into_iter().next() {
            return Err(e.message);
        }
        let matcher = |m: &Option<Box<matcher::MatchConfig>>| {
            m.as_deref()
                .map(Matcher::compile)
                .transpose()
                .map_err(|e| e.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "))
        };
        Ok(AttributesProcessor {
            actions,
            filter: Filter { include: matcher(&cfg.include)?, exclude: matcher(&cfg.exclude)? },
        })
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
