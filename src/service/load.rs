//! YAML text → validated [`AgentConfig`].
//!
//! Guarantees: never panics on any input; reports every problem it can find
//! in one pass (a component whose settings fail to type is still "defined", so
//! pipelines that use it do not get follow-on errors), sorted by line; keys of
//! unknown things get a "did you mean" hint.

use super::*;
use crate::components;
use crate::config::component::{check_host_port, typed_all, ComponentInput, ComponentKind, ComponentMeta, LoadEnv};
use crate::config::expand::{expand_tree, join, UnsetVariable};
use crate::config::node::{self, Entry, Node, Value};
use crate::config::suggest::did_you_mean;
use crate::config::Duration;
use crate::connectors::{describe_pairs, ConnectorSpec, Joins};
use crate::data::Signal;
use crate::extensions::{ExtensionReference, ExtensionUse};
use std::collections::BTreeSet;

type ComponentType = ComponentMeta;
type Compiled<S> = BTreeMap<ComponentId, Arc<S>>;

const TOP_KEYS: &[&str] = &["receivers", "processors", "exporters", "connectors", "extensions", "service"];
const SERVICE_KEYS: &[&str] = &["extensions", "pipelines", "telemetry", "shutdown_timeout"];
pub(super) const DEFAULT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads, expands and validates a config, measuring the machine's memory for
/// `memory_limiter`'s `limit_percentage`.
pub fn load_agent_config(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, ConfigErrors> {
    load_with_memory(text, env, crate::telemetry::process::total_memory_bytes())
}

/// As [`load_agent_config`], with the total memory given (tests, fuzzing).
pub fn load_with_memory(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    total_memory: Option<u64>,
) -> Result<AgentConfig, ConfigErrors> {
    let root = match node::parse(text) {
        Ok(Some(n)) => n,
        Ok(None) => Node { line: 1, value: Value::Map(Vec::new()) },
        Err(e) => return Err(ConfigErrors::single(e)),
    };
    load_node(root, env, total_memory)
}

/// Expands and validates a config already read into nodes (several
/// `--config` sources merged, `--set` values applied).
pub fn load_node(
    mut root: Node,
    env: &dyn Fn(&str) -> Option<String>,
    total_memory: Option<u64>,
) -> Result<AgentConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut unset = Vec::new();
    expand_tree(&mut root, "", env, &mut errors, &mut unset);
    let mut loader = Loader { errors, env: LoadEnv { total_memory }, uses: Vec::new() };
    let config = loader.document(&root);
    let mut errors = loader.errors;
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => {
            if errors.is_empty() {
                errors.push(ConfigError::new("", None, "invalid configuration"));
            }
            name_unset_variables(&mut errors, &unset);
            errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(ConfigErrors(errors))
        }
    }
}

/// An error about a value an unset environment variable left empty says so:
/// `invalid endpoint ""` alone does not tell the user what went wrong.
fn name_unset_variables(errors: &mut [ConfigError], unset: &[UnsetVariable]) {
    for e in errors {
        let names: Vec<&str> = unset
            .iter()
            .filter(|u| e.path == u.path || e.path.starts_with(&format!("{}::", u.path)))
            .map(|u| u.name.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let which = names.iter().map(|n| format!("${{env:{n}}}")).collect::<Vec<_>>().join(", ");
        let note = format!(
            "the environment variable{} {} {} not set, so {} expanded to nothing",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
            which
        );
        e.hint = Some(match e.hint.take() {
            Some(h) => format!("{note}; {h}"),
            None => note,
        });
    }
}

/// A component that is defined (its key parsed and its type is known), with
/// or without valid settings.
struct Defined {
    /// `None` for an unknown type: reported once where it is defined, and
    /// not again where pipelines name it.
    ty: Option<&'static ComponentType>,
    line: usize,
}

type DefinedMap = BTreeMap<ComponentId, Defined>;

struct Loader {
    errors: Vec<ConfigError>,
    env: LoadEnv,
    /// Where pipelines name connectors, found while reading the pipelines.
    uses: Vec<ConnectorUse>,
}

/// A pipeline naming a connector among its exporters or receivers.
struct ConnectorUse {
    connector: ComponentId,
    pipeline: PipelineId,
    /// Among the pipeline's exporters (else its receivers).
    exporter: bool,
    path: String,
    line: usize,
}

fn kind_word(kind: ComponentKind) -> &'static str {
    kind.word()
}

impl Loader {
    fn err(&mut self, path: impl Into<String>, line: usize, message: impl Into<String>, hint: Option<String>) {
        let mut e = ConfigError::new(path, Some(line), message);
        e.hint = hint;
        self.errors.push(e);
    }

    /// The entries of a mapping node; a null node is an empty mapping.
    fn entries<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> &'n [Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => {
                self.err(path, node.line, format!("expected a mapping of {what}"), None);
                &[]
            }
        }
    }

    fn document(&mut self, root: &Node) -> Option<AgentConfig> {
        let mut sections: BTreeMap<&str, &Entry> = BTreeMap::new();
        for e in self.entries(root, "", "sections") {
            if TOP_KEYS.contains(&e.key.as_str()) {
                sections.entry(e.key.as_str()).or_insert(e);
            } else {
                let hint = did_you_mean(&e.key, TOP_KEYS.iter().copied())
                    .unwrap_or_else(|| format!("the top-level sections are {}", TOP_KEYS.join(", ")));
                self.err(e.key.clone(), e.key_line, format!("unknown top-level key \"{}\"", e.key), Some(hint));
            }
        }
        let section = |name: &str| sections.get(name).copied();

        let (receivers, recv_def) = self.components(section("receivers"), ComponentKind::Receiver, Self::receiver);
        let (processors, proc_def) = self.components(section("processors"), ComponentKind::Processor, Self::processor);
        let (exporters, exp_def) = self.components(section("exporters"), ComponentKind::Exporter, Self::exporter);
        let (extensions, ext_def) = self.components(section("extensions"), ComponentKind::Extension, Self::extension);
        let (connectors, conn_def) = self.components(section("connectors"), ComponentKind::Connector, Self::connector);
        self.ambiguous_connector_ids(&conn_def, &recv_def, &exp_def);
        let defs = Defs {
            receivers: &recv_def,
            processors: &proc_def,
            exporters: &exp_def,
            extensions: &ext_def,
            connectors: &conn_def,
        };
        let service = self.service(section("service"), &defs, &exporters);
        self.storage_references(section("exporters"), &exporters, &ext_def, &extensions, service.as_ref());
        let refs = (&ext_def, &extensions);
        let receiver_refs = |id: &ComponentId| receivers.get(id).map(|r| r.extension_references()).unwrap_or_default();
        self.extension_references(section("receivers"), "receivers", &receiver_refs, refs, service.as_ref());
        let processor_refs =
            |id: &ComponentId| processors.get(id).map(|p| p.extension_references()).unwrap_or_default();
        self.extension_references(section("processors"), "processors", &processor_refs, refs, service.as_ref());
        let connector_refs =
            |id: &ComponentId| connectors.get(id).map(|c| c.extension_references()).unwrap_or_default();
        self.extension_references(section("connectors"), "connectors", &connector_refs, refs, service.as_ref());
        if let Some(service) = &service {
            let pipelines: Vec<PipelineId> = service.pipelines.keys().cloned().collect();
            self.connections(&conn_def, &connectors, &pipelines);
        }
        let service = service?;
        Some(AgentConfig { receivers, processors, exporters, extensions, connectors, service })
    }

    /// Reads one component section: ids, types, typed settings, validation.
    fn components<T>(
        &mut self,
        section: Option<&Entry>,
        kind: ComponentKind,
        build: fn(&mut Self, &'static ComponentType, &Node, &str) -> Option<T>,
    ) -> (BTreeMap<ComponentId, T>, DefinedMap) {
        let mut typed = BTreeMap::new();
        let mut defined = DefinedMap::new();
        let Some(section) = section else { return (typed, defined) };
        let name = kind.section();
        for e in self.entries(&section.value, name, name) {
            let path = join(name, &e.key);
            let id = match ComponentId::parse(&e.key) {
                Ok(id) => id,
                Err(msg) => {
                    self.err(path, e.key_line, msg, None);
                    continue;
                }
            };
            let Some(ty) = components::find(kind, &id.kind) else {
                let builtin = components::names(kind);
                let list = format!("built-in {name}: {}", builtin.join(", "));
                let hint = match did_you_mean(&id.kind, builtin.iter().copied()) {
                    Some(h) => format!("{h} ({list})"),
                    None => list,
                };
                self.err(path, e.key_line, format!("unknown {} type \"{}\"", kind_word(kind), id.kind), Some(hint));
                defined.entry(id).or_insert(Defined { ty: None, line: e.key_line });
                continue;
            };
            if defined.contains_key(&id) {
                continue; // reported as a duplicate key
            }
            defined.insert(id.clone(), Defined { ty: Some(ty), line: e.key_line });
            if let Some(cfg) = build(self, ty, &e.value, &path) {
                typed.insert(id, cfg);
            }
        }
        (typed, defined)
    }

    fn typed<T: serde::de::DeserializeOwned>(&mut self, node: &Node, path: &str) -> Option<T> {
        typed_all(node, path, &mut self.errors)
    }

    fn receiver(&mut self, ty: &'static ComponentType, node: &Node, path: &str) -> Option<Arc<dyn ReceiverSpec>> {
        let factory = components::receiver(ty.name)?;
        let mut input = ComponentInput { node, path, env: self.env, errors: &mut self.errors };
        (factory.compile)(&mut input)
    }

    fn processor(&mut self, ty: &'static ComponentType, node: &Node, path: &str) -> Option<Arc<dyn ProcessorSpec>> {
        let factory = crate::components::processor(ty.name)?;
        let mut input = ComponentInput { node, path, env: self.env, errors: &mut self.errors };
        (factory.compile)(&mut input)
    }

    fn exporter(&mut self, ty: &'static ComponentType, node: &Node, path: &str) -> Option<Arc<dyn ExporterSpec>> {
        let factory = crate::components::exporter(ty.name)?;
        let mut input = ComponentInput { node, path, env: self.env, errors: &mut self.errors };
        (factory.compile)(&mut input)
    }

    fn connector(&mut self, ty: &'static ComponentType, node: &Node, path: &str) -> Option<Arc<dyn ConnectorSpec>> {
        let factory = components::connector(ty.name)?;
        let mut input = ComponentInput { node, path, env: self.env, errors: &mut self.errors };
        (factory.compile)(&mut input)
    }

    fn extension(&mut self, ty: &'static ComponentType, node: &Node, path: &str) -> Option<Arc<dyn ExtensionSpec>> {
        let factory = components::extension(ty.name)?;
        let mut input = ComponentInput { node, path, env: self.env, errors: &mut self.errors };
        (factory.compile)(&mut input)
    }

    fn service(
        &mut self,
        section: Option<&Entry>,
        defs: &Defs,
        exporters: &BTreeMap<ComponentId, Arc<dyn ExporterSpec>>,
    ) -> Option<ServiceConfig> {
        let Some(section) = section else {
            self.errors.push(
                ConfigError::new("service", None, "the config has no service section")
                    .with_hint("add service.pipelines, e.g. traces: {receivers: [otlp], exporters: [debug]}"),
            );
            return None;
        };
        let mut fields: BTreeMap<&str, &Entry> = BTreeMap::new();
        for e in self.entries(&section.value, "service", "service settings") {
            if SERVICE_KEYS.contains(&e.key.as_str()) {
                fields.entry(e.key.as_str()).or_insert(e);
            } else {
                let hint = did_you_mean(&e.key, SERVICE_KEYS.iter().copied())
                    .unwrap_or_else(|| format!("the service settings are {}", SERVICE_KEYS.join(", ")));
                self.err(join("service", &e.key), e.key_line, format!("unknown field \"{}\"", e.key), Some(hint));
            }
        }

        let mut ok = true;
        let mut extensions = Vec::new();
        if let Some(e) = fields.get("extensions") {
            let path = "service::extensions";
            match self.typed::<Vec<String>>(&e.value, path) {
                Some(names) => {
                    for (i, name) in names.iter().enumerate() {
                        let line = item_line(&e.value, i);
                        if let Some(id) =
                            self.reference(name, &join(path, name), line, ComponentKind::Extension, defs.extensions)
                        {
                            extensions.push(id);
                        }
                    }
                }
                None => ok = false,
            }
        }

        let telemetry = match fields.get("telemetry") {
            Some(e) => {
                let path = "service::telemetry";
                let t: Option<TelemetryConfig> = self.typed(&e.value, path);
                if let Some(t) = &t {
                    let pulls = t.metrics.readers.iter().filter(|r| r.pull.is_some()).count();
                    let explicit_address = e.value.get("metrics").is_some_and(|m| m.value.get("address").is_some());
                    if pulls > 1 {
                        let line = e.value.line_of(&["metrics", "readers"]);
                        self.err(
                            join(path, "metrics::readers"),
                            line,
                            format!("{pulls} pull readers: sluice serves its metrics on one endpoint"),
                            Some("keep one pull reader".into()),
                        );
                    } else if pulls == 1 && explicit_address {
                        let line = e.value.line_of(&["metrics", "address"]);
                        self.err(
                            join(path, "metrics::address"),
                            line,
                            "address and a pull reader both set where to serve metrics",
                            Some("keep the reader (the Collector's current form) and remove address".into()),
                        );
                    }
                    if t.logs.failure_summary_interval.is_zero() {
                        let line = e.value.line_of(&["logs", "failure_summary_interval"]);
                        self.err(
                            join(path, "logs::failure_summary_interval"),
                            line,
                            "failure_summary_interval must be above zero",
                            Some("how often a failing exporter says so again, e.g. 30s".into()),
                        );
                    }
                    let endpoint = t.metrics.endpoint();
                    if !endpoint.is_empty() {
                        if let Err(msg) = check_host_port(&endpoint) {
                            let field = if pulls == 1 { "metrics::readers" } else { "metrics::address" };
                            let line = e.value.line_of(&["metrics", field.rsplit("::").next().unwrap_or_default()]);
                            self.err(join(path, field), line, msg, Some("e.g. 127.0.0.1:8888".into()));
                        }
                    }
                }
                t
            }
            None => Some(TelemetryConfig::default()),
        };

        let shutdown_timeout = match fields.get("shutdown_timeout") {
            Some(e) => self.typed::<Duration>(&e.value, "service::shutdown_timeout").map(Duration::get),
            None => Some(DEFAULT_SHUTDOWN_TIMEOUT),
        };

        let pipelines = self.pipelines(fields.get("pipelines").copied(), section.key_line, defs, exporters);

        match (ok, telemetry, shutdown_timeout, pipelines) {
            (true, Some(telemetry), Some(shutdown_timeout), Some(pipelines)) => {
                Some(ServiceConfig { extensions, pipelines, telemetry, shutdown_timeout })
            }
            _ => None,
        }
    }

    /// Each `sending_queue.storage` must name a `file_storage` extension
    /// that is defined and started (listed in `service.extensions`).
    fn storage_references(
        &mut self,
        section: Option<&Entry>,
        exporters: &BTreeMap<ComponentId, Arc<dyn ExporterSpec>>,
        extensions: &DefinedMap,
        compiled: &Compiled<dyn ExtensionSpec>,
        service: Option<&ServiceConfig>,
    ) {
        let Some(section) = section else { return };
        let Value::Map(entries) = &section.value.value else { return };
        for (eid, cfg) in exporters {
            let (queue, _) = cfg.sending();
            let Some(name) = &queue.storage else { continue };
            let Some(entry) = entries.iter().find(|e| ComponentId::parse(&e.key).as_ref() == Ok(eid)) else {
                continue;
            };
            let path = join(&join("exporters", &entry.key), "sending_queue::storage");
            let line = entry.value.line_of(&["sending_queue", "storage"]);
            self.extension_reference(name, &path, line, (extensions, compiled), service, ExtensionUse::Storage);
        }
    }

    /// Each extension a receiver or connector names (an
    /// `auth.authenticator`, a `storage`) must be defined, of the right
    /// type, and started.
    fn extension_references<'c>(
        &mut self,
        section: Option<&Entry>,
        kind: &str,
        references: &dyn Fn(&ComponentId) -> Vec<ExtensionReference<'c>>,
        (extensions, compiled): (&DefinedMap, &Compiled<dyn ExtensionSpec>),
        service: Option<&ServiceConfig>,
    ) {
        let Some(section) = section else { return };
        let Value::Map(entries) = &section.value.value else { return };
        for entry in entries {
            let Ok(id) = ComponentId::parse(&entry.key) else { continue };
            for (fields, name, usage) in references(&id) {
                let path = fields.iter().fold(join(kind, &entry.key), |p, f| join(&p, f));
                let line = entry.value.line_of(fields);
                self.extension_reference(name, &path, line, (extensions, compiled), service, usage);
            }
        }
    }

    /// A component's reference to an extension: it must be defined, provide
    /// what the component uses it for, and be started (listed in
    /// `service.extensions`).
    fn extension_reference(
        &mut self,
        name: &str,
        path: &str,
        line: usize,
        (extensions, compiled): (&DefinedMap, &Compiled<dyn ExtensionSpec>),
        service: Option<&ServiceConfig>,
        usage: ExtensionUse,
    ) {
        let Some(eid) = self.reference(name, path, line, ComponentKind::Extension, extensions) else { return };
        if compiled.get(&eid).is_some_and(|e| e.provides() != Some(usage)) {
            let providers: Vec<String> =
                compiled.iter().filter(|(_, e)| e.provides() == Some(usage)).map(|(id, _)| id.to_string()).collect();
            let hint = if providers.is_empty() {
                usage.hint().to_string()
            } else {
                format!("{} defined here: {}", usage.plural(), providers.join(", "))
            };
            self.err(path, line, format!("extension \"{name}\" is not {}", usage.a_noun()), Some(hint));
        } else if service.is_some_and(|s| !s.extensions.contains(&eid)) {
            self.err(
                path,
                line,
                format!("{} \"{name}\" is not started: it is not listed in service.extensions", usage.noun()),
                Some(format!("add it: service: {{extensions: [{name}]}}")),
            );
        }
    }

    /// Resolves a reference to a defined component, reporting undefined ones.
    fn reference(
        &mut self,
        name: &str,
        path: &str,
        line: usize,
        kind: ComponentKind,
        defined: &DefinedMap,
    ) -> Option<ComponentId> {
        let word = kind_word(kind);
        let id = match ComponentId::parse(name) {
            Ok(id) => id,
            Err(msg) => {
                self.err(path, line, msg, None);
                return None;
            }
        };
        if defined.contains_key(&id) {
            return Some(id);
        }
        let names: Vec<String> = defined.keys().map(ToString::to_string).collect();
        let connector_type = matches!(kind, ComponentKind::Receiver | ComponentKind::Exporter)
            && components::find(ComponentKind::Connector, &id.kind).is_some();
        let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
            _ if connector_type => format!(
                "\"{}\" is a connector type: define it under connectors and list it among the exporters of one \
                 pipeline and the receivers of another",
                id.kind
            ),
            Some(h) => h,
            None if names.is_empty() => format!("no {} are defined", kind.section()),
            None => format!("defined {}: {}", kind.section(), names.join(", ")),
        };
        self.err(
            path,
            line,
            format!("undefined {word} \"{name}\": it is not defined under {}", kind.section()),
            Some(hint),
        );
        None
    }

    fn pipelines(
        &mut self,
        entry: Option<&Entry>,
        service_line: usize,
        defs: &Defs,
        exporters: &BTreeMap<ComponentId, Arc<dyn ExporterSpec>>,
    ) -> Option<BTreeMap<PipelineId, PipelineConfig>> {
        const PATH: &str = "service::pipelines";
        let hint = "e.g. pipelines: {traces: {receivers: [otlp], exporters: [debug]}}";
        let Some(entry) = entry else {
            self.err(PATH, service_line, "no pipelines are defined", Some(hint.into()));
            return None;
        };
        let entries = self.entries(&entry.value, PATH, "pipelines");
        if entries.is_empty() {
            self.err(PATH, entry.key_line, "no pipelines are defined", Some(hint.into()));
            return None;
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        let mut http_reported = BTreeSet::new();
        for e in entries {
            let path = join(PATH, &e.key);
            let Some(id) = self.pipeline_id(&e.key, &path, e.key_line) else {
                ok = false;
                continue;
            };
            let Some(cfg) = self.typed::<PipelineConfig>(&e.value, &path) else {
                ok = false;
                continue;
            };
            let lists: [(&str, &Vec<String>, ComponentKind, &DefinedMap); 3] = [
                ("receivers", &cfg.receivers, ComponentKind::Receiver, defs.receivers),
                ("processors", &cfg.processors, ComponentKind::Processor, defs.processors),
                ("exporters", &cfg.exporters, ComponentKind::Exporter, defs.exporters),
            ];
            for (list, names, kind, defined) in lists {
                let list_path = join(&path, list);
                let list_node = e.value.get(list).map(|l| &l.value);
                let list_line = e.value.line_of(&[list]);
                if names.is_empty() && kind != ComponentKind::Processor {
                    self.err(&list_path, list_line, format!("a pipeline needs at least one {}", kind_word(kind)), None);
                    ok = false;
                }
                let mut seen = BTreeSet::new();
                for (i, name) in names.iter().enumerate() {
                    let line = list_node.map_or(list_line, |n| item_line(n, i));
                    let item_path = join(&list_path, name);
                    if !seen.insert(name.as_str()) {
                        self.err(
                            &item_path,
                            line,
                            format!("{} \"{name}\" appears more than once in this pipeline", kind_word(kind)),
                            None,
                        );
                        ok = false;
                        continue;
                    }
                    if kind != ComponentKind::Processor {
                        if let Some(cid) = ComponentId::parse(name).ok().filter(|c| defs.connectors.contains_key(c)) {
                            self.uses.push(ConnectorUse {
                                connector: cid,
                                pipeline: id.clone(),
                                exporter: kind == ComponentKind::Exporter,
                                path: item_path,
                                line,
                            });
                            continue;
                        }
                    }
                    let Some(cid) = self.reference(name, &item_path, line, kind, defined) else {
                        ok = false;
                        continue;
                    };
                    if let Some(ty) = defined.get(&cid).and_then(|d| d.ty) {
                        if let Err(msg) = ty.check_signal(id.signal) {
                            self.err(&item_path, line, msg, None);
                            ok = false;
                        }
                    }
                    if let Some(exporter) = exporters.get(&cid) {
                        if let Err(problem) = exporter.check_signal(id.signal) {
                            if http_reported.insert((cid.clone(), id.signal)) {
                                let line = defs.exporters.get(&cid).map_or(line, |d| d.line);
                                let at = join("exporters", &cid.to_string());
                                let path = match problem.field {
                                    Some(f) => join(&at, f),
                                    None => at,
                                };
                                self.err(
                                    path,
                                    line,
                                    format!("{}, which pipeline \"{id}\" sends to it", problem.message),
                                    Some(problem.hint),
                                );
                                ok = false;
                            }
                        }
                    }
                }
            }
            out.insert(id, cfg);
        }
        ok.then_some(out)
    }

    fn pipeline_id(&mut self, key: &str, path: &str, line: usize) -> Option<PipelineId> {
        let (signal, name) = match key.split_once('/') {
            Some((s, n)) => (s, Some(n)),
            None => (key, None),
        };
        let Some(sig) = Signal::ALL.into_iter().find(|s| s.as_str() == signal) else {
            let names = Signal::ALL.map(Signal::as_str);
            let hint = did_you_mean(signal, names)
                .unwrap_or_else(|| "pipeline ids are traces, metrics or logs, optionally followed by /name".into());
            self.err(path, line, format!("unknown signal \"{signal}\" in pipeline id \"{key}\""), Some(hint));
            return None;
        };
        if name.is_some_and(str::is_empty) {
            self.err(path, line, format!("invalid pipeline id \"{key}\": the name after '/' is empty"), None);
            return None;
        }
        Some(PipelineId { signal: sig, name: name.map(str::to_string) })
    }
}

struct Defs<'a> {
    receivers: &'a DefinedMap,
    processors: &'a DefinedMap,
    exporters: &'a DefinedMap,
    extensions: &'a DefinedMap,
    connectors: &'a DefinedMap,
}

/// Line of the `i`th item of a sequence node, else the node's line.
fn item_line(node: &Node, i: usize) -> usize {
    match &node.value {
        Value::Seq(items) => items.get(i).map_or(node.line, |n| n.line),
        _ => node.line,
    }
}

#[path = "load_connectors.rs"]
mod connectors;

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
