//! The registry: every built-in component, one line each. Nothing else in
//! the tree names a component's type; the loader, `sluice components` and
//! the pipeline find each one here and use only its contract.

use crate::exporters::{self, ExporterFactory};
use crate::processors::{self, ProcessorFactory};

/// Processors, in `sluice components` order.
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
];

/// The processor factory of a type name or alias.
pub fn processor(type_name: &str) -> Option<&'static ProcessorFactory> {
    PROCESSORS.iter().copied().find(|f| f.meta.is_named(type_name))
}

/// Exporters, in `sluice components` order.
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

/// The exporter factory of a type name or alias.
pub fn exporter(type_name: &str) -> Option<&'static ExporterFactory> {
    EXPORTERS.iter().copied().find(|f| f.meta.is_named(type_name))
}
