//! The registry: every built-in component, one line each. Nothing else in
//! the tree names a component's type; the loader, `sluice components` and
//! the pipeline find each one here and use only its contract.

use crate::config::component::{ComponentKind, ComponentMeta};
use crate::config::describe::SettingsType;
use crate::connectors::{self, ConnectorFactory};
use crate::exporters::{self, ExporterFactory};
use crate::extensions::{self, ExtensionFactory};
use crate::processors::{self, ProcessorFactory};
use crate::receivers::{self, ReceiverFactory};

pub static RECEIVERS: &[&ReceiverFactory] = &[&receivers::otlp::FACTORY, &receivers::filelog::FACTORY];

pub static PROCESSORS: &[&ProcessorFactory] = &[
    &processors::batch::FACTORY,
    &processors::memory_limiter::FACTORY,
    &processors::head_sampler::FACTORY,
    &processors::probabilistic_sampler::FACTORY,
    &processors::tail_sampling::FACTORY,
    &processors::cardinality_limiter::FACTORY,
    &processors::log_rate_limiter::FACTORY,
    &processors::filter::FACTORY,
    &processors::attributes::FACTORY,
    &processors::resource::FACTORY,
    &processors::transform::FACTORY,
];

pub static EXPORTERS: &[&ExporterFactory] = &[
    &exporters::otlp::FACTORY,
    &exporters::otlphttp::FACTORY,
    &exporters::loadbalancing::FACTORY,
    &exporters::loki::FACTORY,
    &exporters::prometheus::FACTORY,
    &exporters::prometheusremotewrite::FACTORY,
    &exporters::debug::FACTORY,
    &exporters::file::FACTORY,
    &exporters::nop::FACTORY,
];

pub static CONNECTORS: &[&ConnectorFactory] = &[
    &connectors::forward::FACTORY,
    &connectors::count::FACTORY,
    &connectors::spanmetrics::FACTORY,
    &connectors::routing::FACTORY,
    &connectors::slo::FACTORY,
];

pub static EXTENSIONS: &[&ExtensionFactory] = &[
    &extensions::health_check::FACTORY,
    &extensions::file_storage::FACTORY,
    &extensions::auth::BEARER_FACTORY,
    &extensions::auth::BASIC_FACTORY,
];

/// Every built-in component type, in `sluice components` order.
pub fn all() -> impl Iterator<Item = &'static ComponentMeta> {
    described().map(|(meta, _)| meta)
}

/// Every built-in component type with its settings type, in `sluice
/// components` order.
pub fn described() -> impl Iterator<Item = (&'static ComponentMeta, SettingsType)> {
    let receivers = RECEIVERS.iter().map(|f| (&f.meta, f.settings));
    let processors = PROCESSORS.iter().map(|f| (&f.meta, f.settings));
    let exporters = EXPORTERS.iter().map(|f| (&f.meta, f.settings));
    let connectors = CONNECTORS.iter().map(|f| (&f.meta, f.settings));
    let extensions = EXTENSIONS.iter().map(|f| (&f.meta, f.settings));
    receivers.chain(processors).chain(exporters).chain(connectors).chain(extensions)
}

/// The settings type of a component type, by kind and name or alias.
pub fn settings(kind: ComponentKind, type_name: &str) -> Option<SettingsType> {
    described().find(|(m, _)| m.kind == kind && m.is_named(type_name)).map(|(_, s)| s)
}

/// Looks up a type by name or alias within a section.
pub fn find(kind: ComponentKind, type_name: &str) -> Option<&'static ComponentMeta> {
    all().find(|c| c.kind == kind && c.is_named(type_name))
}

/// The names (and aliases) of every type of a section, for "did you mean" hints.
pub fn names(kind: ComponentKind) -> Vec<&'static str> {
    all().filter(|c| c.kind == kind).flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied())).collect()
}

fn factory<F: ?Sized>(
    list: &'static [&'static crate::config::component::Factory<F>],
    type_name: &str,
) -> Option<&'static crate::config::component::Factory<F>> {
    list.iter().copied().find(|f| f.meta.is_named(type_name))
}

pub fn receiver(type_name: &str) -> Option<&'static ReceiverFactory> {
    factory(RECEIVERS, type_name)
}

pub fn processor(type_name: &str) -> Option<&'static ProcessorFactory> {
    factory(PROCESSORS, type_name)
}

pub fn exporter(type_name: &str) -> Option<&'static ExporterFactory> {
    factory(EXPORTERS, type_name)
}

pub fn extension(type_name: &str) -> Option<&'static ExtensionFactory> {
    factory(EXTENSIONS, type_name)
}

pub fn connector(type_name: &str) -> Option<&'static ConnectorFactory> {
    factory(CONNECTORS, type_name)
}
