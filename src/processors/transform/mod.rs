//! The `transform` processor (traces, metrics, logs): runs OTTL statements
//! on every item, as the Collector's transformprocessor does.
//!
//! Guarantees:
//! - Every statement is compiled when the config is loaded; a statement
//!   that does not compile is a config error at its YAML path, naming the
//!   column and a hint. Nothing is parsed per batch.
//! - Groups run in the order written, each over the whole batch in its
//!   context; within a group, an item's statements run in order, after the
//!   group's `conditions` (ORed) hold for it. The flat strings of a list are
//!   one group whose context is inferred from all of them (the Collector's
//!   basic config); a group written after a flat string is refused, as the
//!   Collector refuses it.
//! - A statement that fails on an item is counted in
//!   `sluice_ottl_errors_total`; then `ignore` logs it and goes on, `silent`
//!   goes on, and `propagate` drops the whole batch, counted in
//!   `sluice_ottl_batches_dropped_total` and `otelcol_processor_dropped_*`.
//! - No state, no I/O; `Now()` is the time the processor is given.

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::data::{Batch, Signal};
use crate::ottl::walk::{self, WallClock};
use crate::ottl::{Condition, ContextKind, ErrorMode, EvalCtx, EvalError, Limits, Statement};
use crate::processors::{Processor, ProcessorContext, ProcessorFactory, ProcessorSpec};
use crate::telemetry::{OttlMetrics, ProcessorMetrics};
use config::{StatementsEntry, TransformConfig};
use std::sync::Arc;
use std::time::Instant;

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "transform",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "modifies spans, metrics and logs with OTTL statements",
        example: "error_mode: ignore\ntrace_statements:\n  - set(span.attributes[\"deployment.environment\"], \"production\")\nmetric_statements:\n  - set(datapoint.attributes[\"deployment.environment\"], \"production\")\nlog_statements:\n  - set(log.attributes[\"deployment.environment\"], \"production\")\n",
    },
    settings: SettingsType::of::<TransformConfig>(),
    compile: |input| {
        let cfg: TransformConfig = input.typed()?;
        let mut c = input.checker();
        let mut ok = true;
        let mut groups = |field: &str, list: &[StatementsEntry], signal: Signal| {
            let (g, errors) = compile_groups(list, signal, cfg.error_mode);
            for (path, e) in &errors {
                let mut full = vec![field.to_string()];
                full.extend(path.iter().cloned());
                c.error_at(&full, e.to_string(), e.hint.clone());
            }
            ok &= errors.is_empty();
            g
        };
        let traces = groups("trace_statements", &cfg.trace_statements, Signal::Traces);
        let metrics = groups("metric_statements", &cfg.metric_statements, Signal::Metrics);
        let logs = groups("log_statements", &cfg.log_statements, Signal::Logs);
        ok.then(|| Arc::new(TransformSpec { config: cfg, groups: Arc::new(Groups { traces, metrics, logs }) }) as _)
    },
};

/// The contexts of each signal, item-most last.
pub fn contexts_of(signal: Signal) -> &'static [ContextKind] {
    match signal {
        Signal::Traces => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Span, ContextKind::SpanEvent],
        Signal::Metrics => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Metric, ContextKind::DataPoint],
        Signal::Logs => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Log],
    }
}

/// One compiled group.
#[derive(Debug)]
pub struct Group {
    pub context: ContextKind,
    pub conditions: Vec<Condition>,
    pub statements: Vec<Statement>,
    pub error_mode: ErrorMode,
}

#[derive(Debug, Default)]
pub struct Groups {
    pub traces: Vec<Group>,
    pub metrics: Vec<Group>,
    pub logs: Vec<Group>,
}

type PathErr = (Vec<String>, crate::ottl::OttlError);

/// Compiles a `*_statements` list: the groups, or every error with its
/// path below the list.
pub fn compile_groups(list: &[StatementsEntry], signal: Signal, mode: ErrorMode) -> (Vec<Group>, Vec<PathErr>) {
    let allowed = contexts_of(signal);
    let limits = Limits::default();
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    // The flat strings of a list are one group, as in the Collector.
    let flat: Vec<(usize, &str)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            StatementsEntry::Flat(s) => Some((i, s.as_str())),
            _ => None,
        })
        .collect();
    let mut flat_done = false;
    for (i, entry) in list.iter().enumerate() {
        match entry {
            StatementsEntry::Flat(_) if flat_done => {}
            StatementsEntry::Flat(_) => {
                flat_done = true;
                let texts: Vec<&str> = flat.iter().map(|(_, s)| *s).collect();
                match crate::ottl::compile::infer_group(&texts, &[], allowed, limits) {
                    Err((j, e)) => errors.push((vec![flat[j].0.to_string()], e)),
                    Ok(ctx) => {
                        let mut statements = Vec::new();
                        for (idx, text) in &flat {
                            match Statement::compile_in(text, ctx, true, limits) {
                                Ok(s) => statements.push(s),
                                Err(e) => errors.push((vec![idx.to_string()], e)),
                            }
                        }
                        groups.push(Group { context: ctx, conditions: Vec::new(), statements, error_mode: mode });
                    }
                }
            }
            StatementsEntry::Group(_) if flat_done => {
                // The Collector's Unmarshal: a group after a flat statement
                // (a flat statement after groups is taken, run last).
                errors.push((
                    vec![i.to_string()],
                    crate::ottl::OttlError {
                        statement: String::new(),
                        column: 1,
                        message: "configuring multiple configuration styles is not supported, please use only \
                                  Basic configuration or only Advanced configuration"
                            .into(),
                        hint: Some(
                            "the flat statements are one group whose context is inferred; \
                             write them as a `statements:` group, or move the groups before them"
                                .into(),
                        ),
                    },
                ));
            }
            StatementsEntry::Group(g) => {
                let at = |rest: &[&str]| {
                    let mut p = vec![i.to_string()];
                    p.extend(rest.iter().map(|s| s.to_string()));
                    p
                };
                if g.statements.is_empty() {
                    errors.push((
                        at(&["statements"]),
                        crate::ottl::OttlError::at("", 0, "a group needs at least one statement", None),
                    ));
                    continue;
                }
                let (ctx, prefixed) = match g.context.as_deref() {
                    Some(name) => match ContextKind::parse(name).filter(|c| allowed.contains(c)) {
                        Some(c) => (c, false),
                        None => {
                            let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
                            errors.push((
                                at(&["context"]),
                                crate::ottl::OttlError {
                                    statement: name.to_string(),
                                    column: 1,
                                    message: format!("unknown context \"{name}\" for {signal}"),
                                    hint: Some(format!("one of {}", names.join(", "))),
                                },
                            ));
                            continue;
                        }
                    },
                    None => {
                        let texts: Vec<&str> = g.statements.iter().map(String::as_str).collect();
                        let conds: Vec<&str> = g.conditions.iter().map(String::as_str).collect();
                        match crate::ottl::compile::infer_group(&texts, &conds, allowed, limits) {
                            Ok(c) => (c, true),
                            Err((j, e)) => {
                                let path = if j < texts.len() {
                                    at(&["statements", &j.to_string()])
                                } else {
                                    at(&["conditions", &(j - texts.len()).to_string()])
                                };
                                errors.push((path, e));
                                continue;
                            }
                        }
                    }
                };
                let mut conditions = Vec::new();
                for (j, text) in g.conditions.iter().enumerate() {
                    match Condition::compile_in(text, ctx, prefixed, limits) {
                        Ok(c) => conditions.push(c),
                        Err(e) => errors.push((at(&["conditions", &j.to_string()]), e)),
                    }
                }
                let mut statements = Vec::new();
                for (j, text) in g.statements.iter().enumerate() {
                    match Statement::compile_in(text, ctx, prefixed, limits) {
                        Ok(s) => statements.push(s),
                        Err(e) => errors.push((at(&["statements", &j.to_string()]), e)),
                    }
                }
                groups.push(Group { context: ctx, conditions, statements, error_mode: g.error_mode.unwrap_or(mode) });
            }
        }
    }
    (groups, errors)
}

/// The compiled statements, shared by the workers.
#[derive(Debug)]
pub struct TransformSpec {
    config: TransformConfig,
    groups: Arc<Groups>,
}

impl PartialEq for TransformSpec {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl ProcessorSpec for TransformSpec {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(TransformProcessor::new(self.groups.clone(), ctx)))
    }
}

pub struct TransformProcessor {
    groups: Arc<Groups>,
    clock: WallClock,
    id: String,
    ottl: OttlMetrics,
    processor: ProcessorMetrics,
}

/// What running a group over a batch came to.
#[derive(Default)]
pub struct RunOutcome {
    pub errors: u64,
    /// The first error, for the log line.
    pub first: Option<EvalError>,
    /// A statement failed under `propagate`: the batch goes.
    pub propagate: bool,
}

/// Runs a group's conditions and statements on one item.
pub fn run_group_on(g: &Group, ctx: &mut EvalCtx, out: &mut RunOutcome) {
    if out.propagate {
        return;
    }
    let fail = |e: EvalError, out: &mut RunOutcome| {
        out.errors += 1;
        if g.error_mode == ErrorMode::Propagate {
            out.propagate = true;
        }
        if g.error_mode != ErrorMode::Silent && out.first.is_none() {
            out.first = Some(e);
        }
    };
    if !g.conditions.is_empty() {
        let mut any = false;
        for c in &g.conditions {
            match c.eval(ctx) {
                Ok(true) => {
                    any = true;
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    fail(e, out);
                    if out.propagate {
                        return;
                    }
                }
            }
        }
        if !any {
            return;
        }
    }
    for s in &g.statements {
        if let Err(e) = s.execute(ctx) {
            fail(e, out);
            if out.propagate {
                return;
            }
        }
    }
}

impl TransformProcessor {
    pub fn new(groups: Arc<Groups>, ctx: &ProcessorContext) -> Self {
        TransformProcessor {
            groups,
            clock: WallClock::new(),
            id: ctx.id.clone(),
            ottl: OttlMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
            processor: ProcessorMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
        }
    }

    /// Compiles `cfg` on its own (tests and benches).
    pub fn from_config(cfg: &TransformConfig, ctx: &ProcessorContext) -> Result<Self, String> {
        let mut all = Groups::default();
        for (list, signal, slot) in [
            (&cfg.trace_statements, Signal::Traces, &mut all.traces),
            (&cfg.metric_statements, Signal::Metrics, &mut all.metrics),
            (&cfg.log_statements, Signal::Logs, &mut all.logs),
        ] {
            let (g, errors) = compile_groups(list, signal, cfg.error_mode);
            if let Some((_, e)) = errors.into_iter().next() {
                return Err(format!("{e}"));
            }
            *slot = g;
        }
        Ok(Self::new(Arc::new(all), ctx))
    }
}

impl Processor for TransformProcessor {
    fn process(&mut self, mut batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        let now = self.clock.unix_nanos(now);
        let mut outcome = RunOutcome::default();
        match &mut batch {
            Batch::Traces(req) => {
                for g in &self.groups.traces {
                    walk::traces(req, g.context, now, &mut |ctx| {
                        run_group_on(g, ctx, &mut outcome);
                        true
                    });
                }
            }
            Batch::Metrics(req) => {
                for g in &self.groups.metrics {
                    walk::metrics(req, g.context, now, &mut |ctx| {
                        run_group_on(g, ctx, &mut outcome);
                        true
                    });
                }
            }
            Batch::Logs(req) => {
                for g in &self.groups.logs {
                    walk::logs(req, g.context, now, &mut |ctx| {
                        run_group_on(g, ctx, &mut outcome);
                        true
                    });
                }
            }
        }
        if outcome.errors > 0 {
            self.ottl.errors.add(outcome.errors);
            if let Some(e) = &outcome.first {
                tracing::warn!(processor = %self.id, errors = outcome.errors, error = %e, "OTTL statements failed");
            }
        }
        if outcome.propagate {
            self.ottl.batches_dropped.inc();
            self.processor.dropped.add(batch.item_count() as u64);
            return;
        }
        out.push(batch);
    }
}

#[cfg(test)]
mod tests;
