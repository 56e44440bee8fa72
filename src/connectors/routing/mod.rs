//! The `routing` connector: sends each item a pipeline exports to the
//! pipelines of the first route of its `table` whose OTTL condition the item
//! matches, and what matches no route to `default_pipelines`, as the
//! Collector's `routingconnector` does (traces to traces, metrics to
//! metrics, logs to logs).
//!
//! The routes are tried in table order and the first match wins (the
//! Collector's behaviour since `match_once` was removed): route 0 takes
//! what it matches out of the batch, route 1 sees only the rest, and so on;
//! what is left goes to `default_pipelines`, or is dropped and counted when
//! there are none. A route's `context` says what it moves: whole resources
//! (`resource`, the default), or single spans, metrics, data points or log
//! records with their resource and scope.
//!
//! A condition that fails on an item (`error_mode`): `propagate` (the
//! default) drops the whole batch, as the Collector's error does; `ignore`
//! (logged) and `silent` take the item as not matching that route, so it
//! goes on to the next route and, matching none, to the default pipelines.
//!
//! Guarantee: every item taken goes to exactly one route's pipelines, the
//! default pipelines, or is counted as dropped
//! (`sluice_connector_routing_routed_items_total{route}`,
//! `sluice_connector_routing_unrouted_items_total`,
//! `sluice_connector_routing_errors_total`); validation makes sure every
//! pipeline a route names exists and receives from this connector.

use crate::config::component::{line_at, Checker, ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::config::{ConfigError, PipelineId};
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Emitted, Joins, Targets};
use crate::data::{Batch, Payload, Signal};
use crate::ottl::{Condition, ContextKind, ErrorMode, Limits};
use crate::telemetry::RoutingMetrics;
use std::sync::Arc;

mod run;

pub static FACTORY: ConnectorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Connector,
        name: "routing",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "sends each item to the pipelines of the first route whose OTTL condition it matches",
        example: "table:\n  - condition: attributes[\"service.name\"] == \"checkout\"\n    pipelines: [traces/out-traces, metrics/out-metrics, logs/out-logs]\ndefault_pipelines: [traces/out-traces, metrics/out-metrics, logs/out-logs]\n",
    },
    settings: SettingsType::of::<RoutingConfig>(),
    compile: |input| {
        let cfg: RoutingConfig = input.typed()?;
        let mut compiled = None;
        input.check(|c| compiled = Some(cfg.compile(c))).then_some(())?;
        compiled.map(|c| Arc::new(c) as _)
    },
};

/// `connectors::routing`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The routes, tried in order: an item goes to the first whose condition it matches.
    #[serde(default)]
    pub table: Vec<RouteConfig>,
    /// Pipelines for what matches no route; none: such items are dropped (counted).
    #[serde(default)]
    pub default_pipelines: Vec<String>,
    /// A condition that fails on an item: `propagate` drops the batch; `ignore` (logged) and `silent` take the item as not matching.
    #[serde(default)]
    pub error_mode: ErrorMode,
}

/// One route of the table.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// OTTL context: `resource` (default), `span`, `metric`, `datapoint` or `log`; `request` is refused.
    #[serde(default)]
    pub context: Option<String>,
    /// An OTTL statement `route() where <condition>` (give this or `condition`).
    #[serde(default)]
    pub statement: Option<String>,
    /// An OTTL condition (give this or `statement`).
    #[serde(default)]
    pub condition: Option<String>,
    /// The pipelines that take what this route matches.
    #[serde(default)]
    pub pipelines: Vec<String>,
}

/// A pipeline a route or the default names, with where, for `check_joins`.
#[derive(Debug, Clone, PartialEq)]
struct PipelineRef {
    pid: PipelineId,
    path: String,
    line: usize,
}

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    pub context: ContextKind,
    /// `None`: `route()` without `where`, which matches everything.
    pub condition: Option<Condition>,
    pub pipelines: Arc<[PipelineId]>,
    /// The text, for messages.
    pub text: String,
    context_path: String,
    context_line: usize,
    refs: Vec<PipelineRef>,
}

/// The compiled `routing` connector.
#[derive(Debug)]
pub struct Routing {
    pub routes: Arc<[Route]>,
    /// Empty: what matches no route is dropped.
    pub default: Arc<[PipelineId]>,
    pub error_mode: ErrorMode,
    default_refs: Vec<PipelineRef>,
    settings: RoutingConfig,
}

impl PartialEq for Routing {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

/// The signal whose items a context moves, if it is not every signal's.
fn signal_of(context: ContextKind) -> Option<Signal> {
    match context {
        ContextKind::Span | ContextKind::SpanEvent => Some(Signal::Traces),
        ContextKind::Metric | ContextKind::DataPoint => Some(Signal::Metrics),
        ContextKind::Log => Some(Signal::Logs),
        ContextKind::Resource | ContextKind::Scope => None,
    }
}

/// The contexts a route may name.
const CONTEXTS: &[ContextKind] =
    &[ContextKind::Resource, ContextKind::Span, ContextKind::Metric, ContextKind::DataPoint, ContextKind::Log];

/// The condition of a statement `route() where <condition>`: `Ok(None)` for
/// a bare `route()`, with the byte offset of the condition in `text`.
fn statement_condition(text: &str) -> Result<Option<(usize, &str)>, String> {
    let bad = || format!("in {text:?}: a routing statement is `route() where <condition>`");
    let rest = text.trim_start();
    let rest = rest.strip_prefix("route").ok_or_else(bad)?.trim_start();
    let rest = rest.strip_prefix('(').ok_or_else(bad)?.trim_start();
    let rest = rest.strip_prefix(')').ok_or_else(bad)?;
    if rest.trim().is_empty() {
        return Ok(None);
    }
    let after = rest.trim_start();
    let cond = after.strip_prefix("where").filter(|c| c.starts_with(char::is_whitespace)).ok_or_else(bad)?;
    let cond_trimmed = cond.trim_start();
    Ok(Some((text.len() - cond_trimmed.len(), cond_trimmed)))
}

impl RoutingConfig {
    fn compile(&self, c: &mut Checker) -> Routing {
        let at = |c: &Checker, path: &[String]| {
            let full = path.iter().fold(c.path.to_string(), |p, f| crate::config::expand::join(&p, f));
            (full, line_at(c.node, path))
        };
        let pipeline_refs = |c: &mut Checker, field: &[String], names: &[String]| {
            let mut refs = Vec::new();
            for (j, name) in names.iter().enumerate() {
                let mut path = field.to_vec();
                path.push(j.to_string());
                match PipelineId::parse(name) {
                    Ok(pid) => {
                        let (p, line) = at(c, &path);
                        refs.push(PipelineRef { pid, path: p, line });
                    }
                    Err(message) => c.error_at(&path, message, Some("e.g. traces/checkout".to_string())),
                }
            }
            refs
        };
        if self.table.is_empty() {
            c.error(
                &["table"],
                "invalid routing table: the routing table is empty",
                Some("add a route, e.g. table: [{condition: 'attributes[\"env\"] == \"prod\"', pipelines: [traces/prod]}]"),
            );
        }
        let mut routes = Vec::new();
        for (i, r) in self.table.iter().enumerate() {
            let field = |f: &str| vec!["table".to_string(), i.to_string(), f.to_string()];
            let here = vec!["table".to_string(), i.to_string()];
            let refs = pipeline_refs(c, &field("pipelines"), &r.pipelines);
            if r.pipelines.is_empty() {
                c.error_at(
                    &here,
                    "invalid route: no pipelines defined",
                    Some("name the pipelines that take what it matches, e.g. pipelines: [traces/prod]".into()),
                );
            }
            let context = match r.context.as_deref() {
                None | Some("") => None,
                Some("request") => {
                    c.error_at(
                        &field("context"),
                        "the request context (routing on the client's request metadata) is not supported by sluice: \
                         a batch does not keep its request's headers",
                        Some("route on resource attributes instead, e.g. context: resource, condition: attributes[\"tenant\"] == \"acme\"".into()),
                    );
                    continue;
                }
                Some(name) => match ContextKind::parse(name).filter(|k| CONTEXTS.contains(k)) {
                    Some(k) => Some(k),
                    None => {
                        c.error_at(
                            &field("context"),
                            format!("invalid context: {name}"),
                            Some("one of resource, span, metric, datapoint, log".into()),
                        );
                        continue;
                    }
                },
            };
            let (text, text_field, offset, cond_text) = match (&r.statement, &r.condition) {
                (Some(_), Some(_)) => {
                    c.error_at(
                        &here,
                        "invalid route: both condition and statement provided",
                        Some("keep one of them".into()),
                    );
                    continue;
                }
                (None, None) => {
                    c.error_at(
                        &here,
                        "invalid route: no condition or statement provided",
                        Some("e.g. condition: attributes[\"service.name\"] == \"checkout\"".into()),
                    );
                    continue;
                }
                (Some(s), None) => match statement_condition(s) {
                    Ok(Some((offset, cond))) => (s.clone(), "statement", offset, Some(cond)),
                    Ok(None) => (s.clone(), "statement", 0, None),
                    Err(message) => {
                        c.error_at(
                            &field("statement"),
                            message,
                            Some("e.g. route() where attributes[\"env\"] == \"prod\"; or use condition".into()),
                        );
                        continue;
                    }
                },
                (None, Some(cond)) => (cond.clone(), "condition", 0, Some(cond.as_str())),
            };
            let condition = match cond_text {
                None => None,
                Some(cond) => match compile_condition(cond, context) {
                    Ok(compiled) => Some(compiled),
                    Err(e) => {
                        let column = text[..offset].chars().count() + e.column;
                        c.error_at(
                            &field(text_field),
                            format!("in {text:?} at column {column}: {}", e.message),
                            e.hint.clone(),
                        );
                        continue;
                    }
                },
            };
            let kind = condition.as_ref().map_or(context.unwrap_or(ContextKind::Resource), |c| c.context);
            let (context_path, context_line) =
                if r.context.is_some() { at(c, &field("context")) } else { at(c, &field(text_field)) };
            routes.push(Route {
                context: kind,
                condition,
                pipelines: refs.iter().map(|r| r.pid.clone()).collect(),
                text,
                context_path,
                context_line,
                refs,
            });
        }
        let default_refs = pipeline_refs(c, &["default_pipelines".to_string()], &self.default_pipelines);
        Routing {
            routes: routes.into(),
            default: default_refs.iter().map(|r| r.pid.clone()).collect(),
            error_mode: self.error_mode,
            default_refs,
            settings: self.clone(),
        }
    }
}

/// Compiles a route's condition in `context`, or with no context in the one
/// its paths name (the Collector's inference), falling back to `resource`
/// for paths that name none, as the Collector does.
fn compile_condition(text: &str, context: Option<ContextKind>) -> Result<Condition, crate::ottl::OttlError> {
    let limits = Limits::default();
    match context {
        Some(k) => Condition::compile_in(text, k, false, limits),
        None => Condition::compile(text, None, CONTEXTS, limits)
            .or_else(|_| Condition::compile_in(text, ContextKind::Resource, false, limits)),
    }
}

const PAIRS: &[(Signal, Signal)] =
    &[(Signal::Traces, Signal::Traces), (Signal::Metrics, Signal::Metrics), (Signal::Logs, Signal::Logs)];

impl ConnectorSpec for Routing {
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        PAIRS
    }

    fn build(&self, ctx: &ConnectorContext) -> Result<Box<dyn Connector>, String> {
        for (i, r) in self.routes.iter().enumerate() {
            if signal_of(r.context).is_some_and(|s| s != ctx.from) {
                return Err(format!("route {i} routes {}s, which {} data has none of", r.context.as_str(), ctx.from));
            }
        }
        let metrics = RoutingMetrics::new(&ctx.registry, &ctx.id, ctx.from, self.routes.len());
        Ok(Box::new(run::Router {
            id: ctx.id.clone(),
            routes: self.routes.clone(),
            default: self.default.clone(),
            error_mode: self.error_mode,
            metrics,
        }))
    }

    fn check_joins(&self, joins: &Joins) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |path: &str, line: usize, message: String, hint: String| {
            let mut e = ConfigError::new(path, Some(line), message);
            e.hint = Some(hint);
            errors.push(e);
        };
        let taken: Vec<Signal> = {
            let mut s: Vec<Signal> = joins.exporters.iter().map(|p| p.signal).collect();
            s.sort();
            s.dedup();
            s
        };
        let from_names = |sig: Signal| {
            joins.exporters.iter().filter(|p| p.signal == sig).map(ToString::to_string).collect::<Vec<_>>().join(", ")
        };
        let receivers = joins.receivers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let lists = self
            .routes
            .iter()
            .map(|r| (r.refs.as_slice(), r.refs.first().map(|f| (f.path.clone(), f.line))))
            .chain(std::iter::once((self.default_refs.as_slice(), None)));
        for (refs, list_at) in lists {
            for r in refs {
                if !joins.pipelines.contains(&r.pid) {
                    err(
                        &r.path,
                        r.line,
                        format!("pipeline \"{}\" does not exist", r.pid),
                        format!("the pipelines that receive from this connector: {receivers}"),
                    );
                } else if !joins.receivers.contains(&r.pid) {
                    err(
                        &r.path,
                        r.line,
                        format!("pipeline \"{}\" does not list this connector among its receivers", r.pid),
                        format!("add the connector to the receivers of {}, or route to one of: {receivers}", r.pid),
                    );
                }
            }
            // A route names a pipeline of every signal the connector takes:
            // the Collector's route of one signal fails to find a pipeline
            // of another.
            if refs.is_empty() {
                continue;
            }
            for &sig in &taken {
                if !refs.iter().any(|r| r.pid.signal == sig) {
                    let (path, line) = list_at.clone().unwrap_or_else(|| (refs[0].path.clone(), refs[0].line));
                    err(
                        &path,
                        line,
                        format!(
                            "this list names no {sig} pipeline, but the connector takes {sig} from {}",
                            from_names(sig)
                        ),
                        format!(
                            "what a route matches goes to pipelines of the signal it came from; add a {sig} pipeline"
                        ),
                    );
                }
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let Some(needs) = signal_of(r.context) else { continue };
            for &sig in taken.iter().filter(|s| **s != needs) {
                err(
                    &r.context_path,
                    r.context_line,
                    format!(
                        "route {i} routes {}s, but the connector takes {sig} from {}, which has none",
                        r.context.as_str(),
                        from_names(sig)
                    ),
                    format!("route {sig} with context resource, or use a routing connector per signal"),
                );
            }
        }
        errors
    }
}

/// Decodes what a pipeline handed over into a batch of its own to split.
fn owned(payload: &Payload) -> Result<Batch, String> {
    match payload {
        Payload::Decoded(b) => Ok(b.clone()),
        Payload::Encoded(e) => e.decode().map_err(|e| format!("cannot decode a checked batch: {e}")),
    }
}

/// What the routes of one batch sent where.
fn emit(out: &mut Vec<Emitted>, pipelines: &Arc<[PipelineId]>, batch: Batch) {
    out.push(Emitted { targets: Targets::Only(pipelines.clone()), payload: Payload::Decoded(batch) });
}

#[cfg(test)]
mod tests;
