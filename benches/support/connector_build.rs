//! Builds a connector from its YAML settings, as the agent does, for the
//! connector benches and the connector memory test.

use sluice::config::component::ComponentInput;
use sluice::config::node;
use sluice::connectors::{Connector, ConnectorContext, ConnectorFactory};
use sluice::data::Signal;
use sluice::telemetry::Registry;

/// A connector from traces to metrics.
pub fn build(factory: &ConnectorFactory, yaml: &str) -> Box<dyn Connector> {
    build_to(factory, yaml, Signal::Metrics)
}

/// A connector from traces to `to`; panics with the config errors.
pub fn build_to(factory: &ConnectorFactory, yaml: &str, to: Signal) -> Box<dyn Connector> {
    let node = node::parse(yaml).unwrap().unwrap();
    let mut errors = Vec::new();
    let mut input = ComponentInput { node: &node, path: "connectors::x", env: Default::default(), errors: &mut errors };
    let spec = (factory.compile)(&mut input).unwrap_or_else(|| panic!("{errors:?}"));
    let ctx = ConnectorContext {
        id: "x".into(),
        from: Signal::Traces,
        to,
        registry: Registry::new(),
        extensions: Default::default(),
    };
    spec.build(&ctx).unwrap()
}
