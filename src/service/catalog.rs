//! What sluice tells users about its components and their config, made from
//! the registry and each component's settings type (one source of truth):
//! `sluice components [TYPE]`, the README's component table and
//! `docs/components.md`, and `sluice print-config`.
//!
//! Guarantee: `print-config` prints only a config that loads, and what it
//! prints loads back to the same components and pipelines (tested on every
//! config under `tests/collector_configs/`).

use super::{read_sources, ConfigSources, PipelineConfig, TelemetryConfig};
use crate::components;
use crate::config::component::{typed_all, ComponentKind, ComponentMeta};
use crate::config::describe::{effective_of, fields, redact, to_yaml, Field};
use crate::config::node::{Node, Value as NodeValue};
use crate::config::{ComponentId, ConfigErrors};
use serde_json::{Map, Value};

const KINDS: [ComponentKind; 5] = [
    ComponentKind::Receiver,
    ComponentKind::Processor,
    ComponentKind::Exporter,
    ComponentKind::Connector,
    ComponentKind::Extension,
];

/// `sluice components`: one line per component type.
pub fn component_list() -> String {
    let mut out = String::new();
    for kind in KINDS {
        out.push_str(&format!("{}:\n", kind.section()));
        for c in components::all().filter(|c| c.kind == kind) {
            let aliases =
                if c.aliases.is_empty() { String::new() } else { format!(" (alias {})", c.aliases.join(", ")) };
            let signals = signal_words(c);
            let signals = if signals.is_empty() { String::new() } else { format!(" [{signals}]") };
            out.push_str(&format!("  {}{aliases}{signals}: {}\n", c.name, c.description));
        }
    }
    out.push_str("\n`sluice components TYPE` lists a type's settings.\n");
    out
}

fn signal_words(c: &ComponentMeta) -> String {
    c.signals.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// `sluice components TYPE`: each kind that has the type (`otlp` is both a
/// receiver and an exporter), with every setting. `None` if no kind has it.
pub fn component_text(type_name: &str) -> Option<String> {
    let matches: Vec<_> = components::described().filter(|(m, _)| m.is_named(type_name)).collect();
    if matches.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, (meta, settings)) in matches.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} {}", meta.kind.word(), meta.name));
        if !meta.aliases.is_empty() {
            out.push_str(&format!(" (alias {})", meta.aliases.join(", ")));
        }
        out.push_str(&format!(": {}\n", meta.description));
        if !meta.signals.is_empty() {
            out.push_str(&format!("signals: {}\n", signal_words(meta)));
        }
        let all = fields(&(settings.schema)());
        let (refused, read): (Vec<&Field>, Vec<&Field>) = all.iter().partition(|f| f.collector_only);
        if read.is_empty() {
            out.push_str("settings: none\n");
        } else {
            out.push_str("settings:\n");
            out.push_str(&field_table(&read));
        }
        if !refused.is_empty() {
            let names: Vec<&str> = refused.iter().map(|f| f.path.as_str()).collect();
            out.push_str(&format!(
                "the Collector's settings sluice refuses (not supported yet): {}\n",
                names.join(", ")
            ));
        }
        out.push_str(&format!("example:\n  {}:\n    {}:", meta.kind.section(), meta.name));
        if meta.example.is_empty() {
            out.push('\n');
        } else {
            out.push('\n');
            for line in meta.example.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    Some(out)
}

/// Aligned columns: path, type, default, then the description (with the
/// allowed values) as the rest of the line.
fn field_table(rows: &[&Field]) -> String {
    let width = |len: fn(&Field) -> usize, header: &str, cap: usize| {
        rows.iter().map(|f| len(f)).max().unwrap_or(0).min(cap).max(header.len())
    };
    let path_width = width(|f| f.path.len(), "FIELD", 48);
    let type_width = width(|f| f.type_words.len(), "TYPE", 24);
    let default_width = width(|f| f.default.as_deref().map_or(1, str::len), "DEFAULT", 20);
    let mut out =
        format!("  {:path_width$}  {:type_width$}  {:default_width$}  {}\n", "FIELD", "TYPE", "DEFAULT", "DESCRIPTION");
    for f in rows {
        let default = f.default.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "  {:path_width$}  {:type_width$}  {:default_width$}  {}\n",
            f.path,
            f.type_words,
            default,
            describe_field(f)
        ));
    }
    out
}

fn describe_field(f: &Field) -> String {
    let mut text = f.description.clone();
    if !f.allowed.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("One of: {}.", f.allowed.join(", ")));
    }
    if let Some(same) = &f.same_as {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("Same fields as {same}."));
    }
    text
}

/// The README's component table (between its `<!-- components -->`
/// markers): every type, with a link to its settings in docs/components.md.
pub fn readme_table() -> String {
    let mut out = String::from("| kind | type (alias) | signals | what it does |\n|---|---|---|---|\n");
    for kind in KINDS {
        for c in components::all().filter(|c| c.kind == kind) {
            let aliases = if c.aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "))
            };
            out.push_str(&format!(
                "| {} | [`{}`](docs/components.md#{}){aliases} | {} | {} |\n",
                kind.word(),
                c.name,
                anchor(c),
                signal_words(c),
                c.description
            ));
        }
    }
    out
}

fn anchor(c: &ComponentMeta) -> String {
    format!("{}-{}", c.kind.word(), c.name.replace('_', "-"))
}

/// docs/components.md: every type's settings, as `sluice components TYPE`
/// prints them, in Markdown.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Components\n\n\
         Generated from the settings types by `sluice components --markdown`; \
         a test fails when this file is stale. `sluice components TYPE` prints the same in a terminal.\n",
    );
    for kind in KINDS {
        out.push_str(&format!("\n## {}\n", capitalised(kind.section())));
        for (meta, settings) in components::described().filter(|(m, _)| m.kind == kind) {
            out.push_str(&format!("\n<a id=\"{}\"></a>\n### {} `{}`\n\n", anchor(meta), kind.word(), meta.name));
            out.push_str(&format!("{}.", capitalised(meta.description)));
            if !meta.aliases.is_empty() {
                let aliases: Vec<String> = meta.aliases.iter().map(|a| format!("`{a}`")).collect();
                out.push_str(&format!(" Also named {}.", aliases.join(", ")));
            }
            if !meta.signals.is_empty() {
                out.push_str(&format!(" Signals: {}.", signal_words(meta)));
            }
            out.push('\n');
            let all = fields(&(settings.schema)());
            let (refused, read): (Vec<&Field>, Vec<&Field>) = all.iter().partition(|f| f.collector_only);
            if read.is_empty() {
                out.push_str("\nNo settings.\n");
            } else {
                out.push_str("\n| field | type | default | description |\n|---|---|---|---|\n");
                for f in read {
                    let default = f.default.as_deref().map(|d| format!("`{}`", d.replace('|', "\\|")));
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {} |\n",
                        f.path,
                        f.type_words,
                        default.unwrap_or_default(),
                        describe_field(f).replace('|', "\\|")
                    ));
                }
            }
            if !refused.is_empty() {
                let names: Vec<String> = refused.iter().map(|f| format!("`{}`", f.path)).collect();
                out.push_str(&format!("\nThe Collector's settings sluice refuses (not yet): {}.\n", names.join(", ")));
            }
            out.push_str(&format!("\nExample:\n\n```yaml\n{}:\n  {}:\n", kind.section(), meta.name));
            for line in meta.example.lines() {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str("```\n");
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `sluice print-config`: the merged config (every `--config` and `--set`,
/// `${env:}` and `${file:}` expanded) with every component's settings as
/// sluice runs them, defaults filled in; secrets shown as `[REDACTED]`
/// unless `redacted` is false. Fails as `validate` does on a config that
/// does not load.
pub fn effective_config(sources: &ConfigSources, redacted: bool) -> Result<String, ConfigErrors> {
    let root = read_sources(sources)?;
    let loaded = super::load::load_node(
        root.clone(),
        &|k| std::env::var(k).ok(),
        crate::telemetry::process::total_memory_bytes(),
    )
    .map_err(|e| sources.locate(e))?;
    let mut root = root;
    let (mut expand_errors, mut unset) = (Vec::new(), Vec::new());
    crate::config::expand::expand_tree(&mut root, "", &|k| std::env::var(k).ok(), &mut expand_errors, &mut unset);
    let mut errors = Vec::new();
    let mut out = Map::new();
    for kind in KINDS {
        let Some(section) = root.get(kind.section()).map(|e| &e.value) else { continue };
        let mut printed = Map::new();
        for entry in map_entries(&section.value) {
            let path = format!("{}::{}", kind.section(), entry.key);
            let Ok(id) = ComponentId::parse(&entry.key) else { continue };
            let Some(settings) = components::settings(kind, &id.kind) else { continue };
            if let Some(mut value) = (settings.effective)(&entry.value, &path, &mut errors) {
                if redacted {
                    redact(&mut value, &(settings.schema)());
                }
                printed.insert(entry.key.clone(), value);
            }
        }
        out.insert(kind.section().to_string(), Value::Object(printed));
    }
    out.insert("service".to_string(), service_value(&root, &loaded, &mut errors));
    if !errors.is_empty() {
        return Err(sources.locate(ConfigErrors(errors)));
    }
    Ok(to_yaml(&Value::Object(out)))
}

fn map_entries(v: &NodeValue) -> &[crate::config::node::Entry] {
    match v {
        NodeValue::Map(entries) => entries,
        _ => &[],
    }
}

/// The `service` section with its pipelines' and telemetry's defaults; a
/// pipeline's `channel_capacity` is the one it runs with (the default
/// follows its memory limiters), as `loaded` has it.
fn service_value(root: &Node, loaded: &super::AgentConfig, errors: &mut Vec<crate::config::ConfigError>) -> Value {
    let mut service = Map::new();
    let Some(node) = root.get("service").map(|e| &e.value) else { return Value::Object(service) };
    if let Some(extensions) = node.get("extensions").map(|e| &e.value) {
        if let Some(list) = typed_all::<Vec<String>>(extensions, "service::extensions", errors) {
            service.insert("extensions".into(), Value::from(list));
        }
    }
    if let Some(pipelines) = node.get("pipelines").map(|e| &e.value) {
        let mut printed = Map::new();
        for entry in map_entries(&pipelines.value) {
            let path = format!("service::pipelines::{}", entry.key);
            if let Some(mut v) = effective_of::<PipelineConfig>(&entry.value, &path, errors) {
                let id = crate::config::PipelineId::parse(&entry.key).ok();
                let pipeline = id.as_ref().and_then(|id| loaded.service.pipelines.get(id));
                if let (Some(p), Value::Object(fields)) = (pipeline, &mut v) {
                    let capacity = super::ChannelCapacity::of(loaded, p);
                    if let Ok(capacity) = serde_json::to_value(capacity) {
                        fields.insert("channel_capacity".into(), capacity);
                    }
                }
                printed.insert(entry.key.clone(), v);
            }
        }
        service.insert("pipelines".into(), Value::Object(printed));
    }
    let telemetry =
        node.get("telemetry").map(|e| e.value.clone()).unwrap_or(Node { line: 0, value: NodeValue::Map(Vec::new()) });
    if let Some(v) = effective_of::<TelemetryConfig>(&telemetry, "service::telemetry", errors) {
        service.insert("telemetry".into(), v);
    }
    let shutdown =
        node.get("shutdown_timeout").and_then(|e| typed_all::<crate::config::Duration>(&e.value, "", errors));
    let shutdown = shutdown.map_or(super::load::DEFAULT_SHUTDOWN_TIMEOUT, |d| d.get());
    let shutdown = crate::config::Duration(shutdown).to_string();
    service.insert("shutdown_timeout".into(), Value::from(shutdown));
    Value::Object(service)
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
