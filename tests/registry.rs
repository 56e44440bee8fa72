//! The registry as a whole: every component type it lists loads from its own
//! `example` settings and starts, in a pipeline of every signal it takes (a
//! connector: between the pipelines of every signal pair it joins), in an
//! agent run in this process, which then shuts down cleanly. A new
//! component is covered by this test as soon as its registry line exists.

use sluice::components;
use sluice::config::ComponentKind;
use sluice::data::Signal;
use std::path::Path;

/// Every host:port an example listens on becomes a free port, and every
/// file an example names lives in `dir`.
fn localise(example: &str, dir: &Path) -> String {
    let mut text = example.to_string();
    for port in ["4317", "4318", "8889", "13133"] {
        text = text.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:0");
    }
    let dir = dir.display().to_string();
    text.replace("/var/lib/sluice", &dir).replace("/etc/sluice", &dir).replace("/var/log/pods", &dir)
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

/// `name:` with its example body under it, indented for a section.
fn component(name: &str, example: &str, dir: &Path) -> String {
    let body = localise(example, dir);
    if body.trim().is_empty() {
        format!("  {name}:\n")
    } else {
        format!("  {name}:\n{}", indent(&body, 4))
    }
}

const RECEIVER: &str = "  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\n";

/// The config that exercises `meta` with its example, one pipeline per
/// signal (per signal pair for a connector).
fn config_for(meta: &sluice::config::component::ComponentMeta, dir: &Path) -> String {
    let me = component(meta.name, meta.example, dir);
    let signals: Vec<Signal> = meta.signals.to_vec();
    let pipeline = |id: &str, receivers: &str, processors: &str, exporters: &str| {
        format!(
            "    {id}:\n      receivers: [{receivers}]\n      processors: [{processors}]\n      exporters: [{exporters}]\n"
        )
    };
    let mut receivers = RECEIVER.to_string();
    let mut processors = String::new();
    let mut exporters = "  nop:\n".to_string();
    let mut connectors = String::new();
    let mut extensions = String::new();
    let mut service_extensions = Vec::new();
    let mut pipelines = String::new();
    match meta.kind {
        ComponentKind::Receiver => {
            if meta.name != "otlp" {
                receivers.push_str(&me);
            }
            for s in &signals {
                pipelines.push_str(&pipeline(s.as_str(), meta.name, "", "nop"));
            }
        }
        ComponentKind::Processor => {
            processors.push_str(&me);
            for s in &signals {
                pipelines.push_str(&pipeline(s.as_str(), "otlp", meta.name, "nop"));
            }
        }
        ComponentKind::Exporter => {
            if meta.name != "nop" {
                exporters.push_str(&me);
            }
            for s in &signals {
                pipelines.push_str(&pipeline(s.as_str(), "otlp", "", meta.name));
            }
        }
        ComponentKind::Connector => {
            connectors.push_str(&me);
            let factory = components::CONNECTORS.iter().find(|f| f.meta.name == meta.name).unwrap();
            let node = sluice::config::node::parse(&localise(meta.example, dir))
                .unwrap()
                .unwrap_or_else(|| sluice::config::node::Node::null(1));
            let mut errors = Vec::new();
            let mut input = sluice::config::component::ComponentInput {
                node: &node,
                path: "connectors",
                env: Default::default(),
                errors: &mut errors,
            };
            let spec = (factory.compile)(&mut input).unwrap_or_else(|| panic!("connector {}: {errors:?}", meta.name));
            let pairs = spec.pairs();
            for (from, to) in pairs {
                pipelines.push_str(&pipeline(&format!("{from}/in-{to}"), "otlp", "", meta.name));
                pipelines.push_str(&pipeline(&format!("{to}/out-{from}"), meta.name, "", "nop"));
            }
        }
        ComponentKind::Extension => {
            extensions.push_str(&me);
            service_extensions.push(meta.name);
            pipelines.push_str(&pipeline("traces", "otlp", "", "nop"));
        }
    }
    let section = |name: &str, body: &str| if body.is_empty() { String::new() } else { format!("{name}:\n{body}") };
    format!(
        "{}{}{}{}{}service:\n  extensions: [{}]\n  telemetry:\n    metrics:\n      address: \"\"\n  pipelines:\n{pipelines}",
        section("receivers", &receivers),
        section("processors", &processors),
        section("exporters", &exporters),
        section("connectors", &connectors),
        section("extensions", &extensions),
        service_extensions.join(", "),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_component_loads_its_example_and_starts_for_every_signal() {
    let dir = tempfile::tempdir().unwrap();
    // Files the auth examples read at start.
    std::fs::write(dir.path().join("token"), "registry-test-token\n").unwrap();
    let hash = bcrypt::hash("registry-test-password", 4).unwrap();
    std::fs::write(dir.path().join("htpasswd"), format!("registry:{hash}\n")).unwrap();

    let mut checked = Vec::new();
    for meta in components::all() {
        let yaml = config_for(meta, dir.path());
        let cfg = sluice::service::load(&yaml, &|_| None)
            .unwrap_or_else(|e| panic!("{} {}: its example does not load:\n{e}\n{yaml}", meta.kind.word(), meta.name));
        let agent = sluice::pipeline::start(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{} {}: does not start: {e}\n{yaml}", meta.kind.word(), meta.name));
        agent.shutdown().await;
        checked.push(format!("{} {}", meta.kind.word(), meta.name));
    }
    // The registry lists every kind; none was skipped.
    let kinds = [
        ComponentKind::Receiver,
        ComponentKind::Processor,
        ComponentKind::Exporter,
        ComponentKind::Connector,
        ComponentKind::Extension,
    ];
    for kind in kinds {
        assert!(components::all().any(|m| m.kind == kind), "no {} in the registry", kind.word());
    }
    assert_eq!(checked.len(), components::all().count());
}
