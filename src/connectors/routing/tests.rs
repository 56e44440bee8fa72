//! The `routing` connector against hand-built batches. The expected values
//! follow the Collector's routingconnector (the `match_once` behaviour it
//! kept when the field was removed in v0.120.0): routes are tried in table
//! order, each takes what it matches out of what is left, and what no route
//! takes goes to `default_pipelines`.

use super::*;
use crate::config::node;
use crate::connectors::Now;
use crate::data::fixtures::{self, kv};
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::time::Instant;

fn compile(yaml: &str) -> Result<Routing, Vec<String>> {
    let node = node::parse(yaml).unwrap().unwrap_or(node::Node { line: 1, value: node::Value::Map(Vec::new()) });
    let mut errors = Vec::new();
    let mut input = crate::config::component::ComponentInput {
        node: &node,
        path: "connectors::routing",
        env: Default::default(),
        errors: &mut errors,
    };
    match (FACTORY.compile)(&mut input) {
        Some(c) => {
            let r = c.downcast_ref::<Routing>().unwrap();
            Ok(Routing {
                routes: r.routes.clone(),
                default: r.default.clone(),
                error_mode: r.error_mode,
                default_refs: r.default_refs.clone(),
                settings: r.settings.clone(),
            })
        }
        None => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

fn errors(yaml: &str) -> Vec<String> {
    match compile(yaml) {
        Ok(_) => panic!("compiled:\n{yaml}"),
        Err(e) => e,
    }
}

struct Run {
    router: Box<dyn Connector>,
    registry: Registry,
}

fn build(yaml: &str, signal: Signal) -> Run {
    let registry = Registry::new();
    let ctx = ConnectorContext {
        id: "routing".into(),
        from: signal,
        to: signal,
        registry: registry.clone(),
        extensions: Default::default(),
    };
    let router = compile(yaml).unwrap().build(&ctx).unwrap();
    Run { router, registry }
}

fn now() -> Now {
    Now { instant: Instant::now(), unix_nanos: fixtures::EPOCH_NANOS }
}

impl Run {
    /// Items each destination got: (pipelines joined with ",", items).
    fn route(&mut self, batch: Batch) -> Result<Vec<(String, Batch)>, String> {
        let mut out = Vec::new();
        self.router.consume_routed(&Payload::Decoded(batch), now(), &mut out)?;
        Ok(out
            .into_iter()
            .map(|e| {
                let Targets::Only(p) = e.targets else { panic!("routing always names its pipelines") };
                let names = p.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                (names, e.payload.into_decoded().unwrap())
            })
            .collect())
    }

    fn counts(&mut self, batch: Batch) -> Vec<(String, usize)> {
        self.route(batch).unwrap().into_iter().map(|(p, b)| (p, b.item_count())).collect()
    }

    fn metric(&self, name: &str, route: Option<&str>, signal: &str) -> f64 {
        let mut labels: Vec<(&'static str, &str)> = vec![("connector", "routing"), ("otel_signal", signal)];
        if let Some(r) = route {
            labels.push(("route", r));
        }
        self.registry.value(name, &labels).unwrap_or(0.0)
    }
}

const ROUTED: &str = "sluice_connector_routing_routed_items_total";
const UNROUTED: &str = "sluice_connector_routing_unrouted_items_total";
const ERRORS: &str = "sluice_connector_routing_errors_total";

/// Resources of services `a` (2 spans), `b` (3 spans), `c` (1 span), in one batch.
fn three_services() -> Batch {
    let spans = |n: u64| (0..n).map(|i| fixtures::span(1, i + 1, "op")).collect::<Vec<_>>();
    let mut req = fixtures::traces("a", spans(2));
    req.resource_spans.extend(fixtures::traces("b", spans(3)).resource_spans);
    req.resource_spans.extend(fixtures::traces("c", spans(1)).resource_spans);
    Batch::Traces(req)
}

const BY_SERVICE: &str = "table:\n  - condition: attributes[\"service.name\"] == \"a\"\n    pipelines: [traces/a]\n  - statement: route() where attributes[\"service.name\"] == \"b\"\n    pipelines: [traces/b, traces/all]\ndefault_pipelines: [traces/other]\n";

#[test]
fn resources_go_to_their_route_and_the_rest_to_the_default() {
    let mut run = build(BY_SERVICE, Signal::Traces);
    let got = run.counts(three_services());
    // a: 2 spans to route 0; b: 3 spans to route 1 (two pipelines, one
    // batch); c matches nothing: 1 span to the default.
    assert_eq!(got, vec![("traces/a".into(), 2), ("traces/b,traces/all".into(), 3), ("traces/other".into(), 1)]);
    assert_eq!(run.metric(ROUTED, Some("0"), "traces"), 2.0);
    assert_eq!(run.metric(ROUTED, Some("1"), "traces"), 3.0);
    assert_eq!(run.metric(ROUTED, Some("default"), "traces"), 1.0);
    assert_eq!(run.metric(UNROUTED, None, "traces"), 0.0);
}

#[test]
fn the_first_matching_route_wins() {
    // Both routes match service a: only the first gets it (match_once).
    let yaml = "table:\n  - condition: attributes[\"service.name\"] != \"zzz\"\n    pipelines: [traces/first]\n  - condition: attributes[\"service.name\"] == \"a\"\n    pipelines: [traces/second]\n";
    let mut run = build(yaml, Signal::Traces);
    assert_eq!(run.counts(three_services()), vec![("traces/first".into(), 6)]);
    assert_eq!(run.metric(ROUTED, Some("1"), "traces"), 0.0);
}

#[test]
fn with_no_default_pipelines_what_matches_no_route_is_dropped_and_counted() {
    let yaml = "table:\n  - condition: attributes[\"service.name\"] == \"b\"\n    pipelines: [traces/b]\n";
    let mut run = build(yaml, Signal::Traces);
    assert_eq!(run.counts(three_services()), vec![("traces/b".into(), 3)]);
    assert_eq!(run.metric(UNROUTED, None, "traces"), 3.0);
    assert_eq!(run.metric(ROUTED, Some("default"), "traces"), 0.0);
}

#[test]
fn span_routes_move_single_spans_with_their_resource_and_scope() {
    let yaml = "table:\n  - context: span\n    condition: name == \"slow\"\n    pipelines: [traces/slow]\n  - condition: resource.attributes[\"service.name\"] == \"b\"\n    pipelines: [traces/b]\ndefault_pipelines: [traces/other]\n";
    let mut run = build(yaml, Signal::Traces);
    let mut req = fixtures::traces("a", vec![fixtures::span(1, 1, "slow"), fixtures::span(1, 2, "fast")]);
    req.resource_spans.extend(
        fixtures::traces(
            "b",
            vec![fixtures::span(2, 1, "fast"), fixtures::span(2, 2, "slow"), fixtures::span(2, 3, "x")],
        )
        .resource_spans,
    );
    let got = run.route(Batch::Traces(req)).unwrap();
    let names: Vec<(String, usize)> = got.iter().map(|(p, b)| (p.clone(), b.item_count())).collect();
    // slow spans of a and b (2) go to route 0; what is left of b (2) to
    // route 1, which infers the resource context from its path; a's fast span
    // to the default.
    assert_eq!(names, vec![("traces/slow".into(), 2), ("traces/b".into(), 2), ("traces/other".into(), 1)]);
    let Batch::Traces(slow) = &got[0].1 else { panic!() };
    assert_eq!(slow.resource_spans.len(), 2, "each span keeps its own resource");
    let service = |rs: &opentelemetry_proto::tonic::trace::v1::ResourceSpans| {
        rs.resource.as_ref().unwrap().attributes[0].value.clone().unwrap()
    };
    assert_eq!(service(&slow.resource_spans[0]), crate::data::fixtures::kv("", "a").value.unwrap());
    assert_eq!(slow.resource_spans[0].scope_spans[0].scope.as_ref().unwrap().name, "sluice-fixtures");
    let Batch::Traces(b) = &got[1].1 else { panic!() };
    let names: Vec<&str> = b.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fast", "x"], "order kept");
}

#[test]
fn log_and_metric_and_datapoint_contexts() {
    let yaml = "table:\n  - context: log\n    condition: body == \"error\"\n    pipelines: [logs/errors]\ndefault_pipelines: [logs/rest]\n";
    let mut run = build(yaml, Signal::Logs);
    let req = fixtures::logs(
        "a",
        vec![fixtures::log_record("error"), fixtures::log_record("ok"), fixtures::log_record("error")],
    );
    assert_eq!(run.counts(Batch::Logs(req)), vec![("logs/errors".into(), 2), ("logs/rest".into(), 1)]);

    let yaml = "table:\n  - context: datapoint\n    condition: attributes[\"host\"] == \"h1\"\n    pipelines: [metrics/h1]\n  - context: metric\n    condition: name == \"g\"\n    pipelines: [metrics/g]\ndefault_pipelines: [metrics/rest]\n";
    let mut run = build(yaml, Signal::Metrics);
    let p = |host: &str| fixtures::point(1.0, vec![kv("host", host)]);
    let req = fixtures::metrics(
        "a",
        vec![fixtures::counter("c", vec![p("h1"), p("h2"), p("h1")]), fixtures::gauge("g", vec![p("h2"), p("h3")])],
    );
    let got = run.route(Batch::Metrics(req)).unwrap();
    let counts: Vec<(String, usize)> = got.iter().map(|(p, b)| (p.clone(), b.item_count())).collect();
    // Data points of h1 (2, both of c) to route 0; the gauge g (2 points)
    // to route 1; c's h2 point to the default.
    assert_eq!(counts, vec![("metrics/h1".into(), 2), ("metrics/g".into(), 2), ("metrics/rest".into(), 1)]);
    let Batch::Metrics(h1) = &got[0].1 else { panic!() };
    let m = &h1.resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(m.name, "c");
    let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) = &m.data else { panic!("a sum") };
    assert!(sum.is_monotonic, "the copy keeps the metric's type and temporality");
    assert_eq!(sum.aggregation_temporality, 2);
    assert_eq!(run.metric(ROUTED, Some("0"), "metrics"), 2.0);
    assert_eq!(run.metric(ROUTED, Some("default"), "metrics"), 1.0);
}

/// `attributes["n"] + 1` fails on a string: the condition errs on service b.
const FAILING: &str = "table:\n  - condition: attributes[\"n\"] + 1 > 2\n    pipelines: [traces/n]\n  - condition: attributes[\"service.name\"] == \"b\"\n    pipelines: [traces/b]\ndefault_pipelines: [traces/other]\n";

fn with_n() -> Batch {
    let mut req = fixtures::traces("a", vec![fixtures::span(1, 1, "x")]);
    req.resource_spans[0].resource.as_mut().unwrap().attributes.push(kv("n", 5_i64));
    let mut b = fixtures::traces("b", vec![fixtures::span(2, 1, "x"), fixtures::span(2, 2, "y")]);
    b.resource_spans[0].resource.as_mut().unwrap().attributes.push(kv("n", "not a number"));
    req.resource_spans.extend(b.resource_spans);
    Batch::Traces(req)
}

#[test]
fn error_mode_propagate_drops_the_whole_batch() {
    let mut run = build(FAILING, Signal::Traces);
    let err = run.route(with_n()).unwrap_err();
    assert!(err.contains("route 0") && err.contains("error_mode: propagate"), "{err}");
    assert_eq!(run.metric(ERRORS, Some("0"), "traces"), 1.0);
    // Nothing was sent, nothing counted as routed.
    assert_eq!(run.metric(ROUTED, Some("0"), "traces"), 0.0);
}

#[test]
fn error_mode_ignore_and_silent_take_the_item_as_not_matching() {
    for mode in ["ignore", "silent"] {
        let mut run = build(&format!("error_mode: {mode}\n{FAILING}"), Signal::Traces);
        // a (n = 5) matches route 0; b fails route 0, goes on and matches route 1.
        assert_eq!(run.counts(with_n()), vec![("traces/n".into(), 1), ("traces/b".into(), 2)], "{mode}");
        assert_eq!(run.metric(ERRORS, Some("0"), "traces"), 1.0);
    }
    // With no later route it would match, it goes to the default.
    let yaml = "error_mode: ignore\ntable:\n  - condition: attributes[\"n\"] + 1 > 2\n    pipelines: [traces/n]\ndefault_pipelines: [traces/other]\n";
    let mut run = build(yaml, Signal::Traces);
    assert_eq!(run.counts(with_n()), vec![("traces/n".into(), 1), ("traces/other".into(), 2)]);
}

#[test]
fn encoded_batches_are_routed_too() {
    let mut run = build(BY_SERVICE, Signal::Traces);
    let encoded = Payload::Decoded(three_services()).into_encoded();
    let mut out = Vec::new();
    run.router.consume_routed(&Payload::Encoded(encoded), now(), &mut out).unwrap();
    let counts: Vec<usize> = out.iter().map(|e| e.payload.item_count()).collect();
    assert_eq!(counts, vec![2, 3, 1]);
}

#[test]
fn a_bare_route_statement_matches_everything() {
    let yaml = "table:\n  - statement: route()\n    pipelines: [traces/all]\n";
    let mut run = build(yaml, Signal::Traces);
    assert_eq!(run.counts(three_services()), vec![("traces/all".into(), 6)]);
}

#[test]
fn empty_batches_send_nothing() {
    let mut run = build(BY_SERVICE, Signal::Traces);
    assert!(run.counts(Batch::Traces(ExportTraceServiceRequest::default())).is_empty());
    let mut run = build("table:\n  - condition: attributes[\"x\"] == 1\n    pipelines: [logs/x]\n", Signal::Logs);
    assert!(run.counts(Batch::Logs(ExportLogsServiceRequest::default())).is_empty());
    let mut run = build("table:\n  - condition: attributes[\"x\"] == 1\n    pipelines: [metrics/x]\n", Signal::Metrics);
    assert!(run.counts(Batch::Metrics(ExportMetricsServiceRequest::default())).is_empty());
}

#[test]
fn settings_errors_name_the_field_and_say_what_to_do() {
    assert_eq!(
        errors("table: []\n"),
        vec![
            "connectors::routing::table (line 1): invalid routing table: the routing table is empty; hint: add a route, e.g. table: [{condition: 'attributes[\"env\"] == \"prod\"', pipelines: [traces/prod]}]"
        ]
    );
    assert_eq!(
        errors("table:\n  - pipelines: [traces/a]\n"),
        vec!["connectors::routing::table::0 (line 2): invalid route: no condition or statement provided; hint: e.g. condition: attributes[\"service.name\"] == \"checkout\""]
    );
    assert_eq!(
        errors("table:\n  - condition: attributes[\"a\"] == \"b\"\n    statement: route()\n    pipelines: [traces/a]\n"),
        vec!["connectors::routing::table::0 (line 2): invalid route: both condition and statement provided; hint: keep one of them"]
    );
    assert_eq!(
        errors("table:\n  - condition: attributes[\"a\"] == \"b\"\n"),
        vec!["connectors::routing::table::0 (line 2): invalid route: no pipelines defined; hint: name the pipelines that take what it matches, e.g. pipelines: [traces/prod]"]
    );
    assert_eq!(
        errors("table:\n  - condition: attributes[\"a\"] == \"b\"\n    pipelines: [trace/a]\n"),
        vec!["connectors::routing::table::0::pipelines::0 (line 3): \"trace/a\" is not a pipeline id: it begins with traces, metrics or logs, optionally followed by /name; hint: e.g. traces/checkout"]
    );
}

#[test]
fn a_bad_condition_is_reported_with_its_column() {
    let e = errors("table:\n  - condition: attributes[\"a\"] === \"b\"\n    pipelines: [traces/a]\n");
    assert_eq!(e.len(), 1);
    // `attributes["a"] ==` is a comparison; the third `=` (column 19) is where it breaks.
    assert_eq!(
        e[0],
        "connectors::routing::table::0::condition (line 2): in \"attributes[\\\"a\\\"] === \\\"b\\\"\" at column 19: expected a value, found `=`"
    );
    // In a statement, the column counts from the statement's start.
    let e =
        errors("table:\n  - statement: route() where nmae == \"x\"\n    context: span\n    pipelines: [traces/a]\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "connectors::routing::table::0::statement (line 2): in \"route() where nmae == \\\"x\\\"\" at column 15:"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("name"), "suggests the close name: {e:?}");
    let e = errors("table:\n  - statement: drop() where name == \"x\"\n    pipelines: [traces/a]\n");
    assert_eq!(e, vec!["connectors::routing::table::0::statement (line 2): in \"drop() where name == \\\"x\\\"\": a routing statement is `route() where <condition>`; hint: e.g. route() where attributes[\"env\"] == \"prod\"; or use condition"]);
}

#[test]
fn the_request_context_and_unknown_contexts_are_refused() {
    let e = errors(
        "table:\n  - context: request\n    condition: request[\"X-Tenant\"] == \"acme\"\n    pipelines: [logs/acme]\n",
    );
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("connectors::routing::table::0::context (line 2): the request context (routing on the client's request metadata) is not supported by sluice"), "{e:?}");
    assert_eq!(
        errors("table:\n  - context: spanevent\n    condition: name == \"x\"\n    pipelines: [traces/a]\n"),
        vec!["connectors::routing::table::0::context (line 2): invalid context: spanevent; hint: one of resource, span, metric, datapoint, log"]
    );
}

#[test]
fn an_unknown_error_mode_is_refused() {
    let e = errors("error_mode: loud\ntable:\n  - condition: attributes[\"a\"] == \"b\"\n    pipelines: [traces/a]\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("unknown error_mode \"loud\"; expected ignore, silent or propagate"), "{e:?}");
}

/// The config around a routing connector: `traces/in` exports to it; the
/// pipelines named receive from it.
fn config(routing: &str, receivers: &[&str]) -> String {
    let mut text = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\nexporters:\n  debug:\nconnectors:\n  routing:\n{}service:\n  pipelines:\n    traces/in:\n      receivers: [otlp]\n      exporters: [routing]\n",
        routing.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    for r in receivers {
        text.push_str(&format!("    {r}:\n      receivers: [routing]\n      exporters: [debug]\n"));
    }
    text
}

fn load_errors(text: &str) -> Vec<String> {
    match crate::service::load(text, &|_| None) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_config_with_routes_to_its_receiving_pipelines_loads() {
    let text = config(BY_SERVICE, &["traces/a", "traces/b", "traces/all", "traces/other"]);
    let cfg = crate::service::load(&text, &|_| None).unwrap();
    assert_eq!(cfg.connectors.len(), 1);
}

#[test]
fn routes_to_pipelines_that_do_not_exist_or_do_not_receive_from_it_are_errors() {
    // traces/b is not defined; traces/all exists but receives from otlp.
    let mut text = config(BY_SERVICE, &["traces/a", "traces/other"]);
    text.push_str("    traces/all:\n      receivers: [otlp]\n      exporters: [debug]\n");
    assert_eq!(
        load_errors(&text),
        vec![
            "connectors::routing::table::1::pipelines::0 (line 14): pipeline \"traces/b\" does not exist; hint: the pipelines that receive from this connector: traces/a, traces/other",
            "connectors::routing::table::1::pipelines::1 (line 14): pipeline \"traces/all\" does not list this connector among its receivers; hint: add the connector to the receivers of traces/all, or route to one of: traces/a, traces/other",
        ]
    );
}

#[test]
fn a_route_of_another_signal_or_a_context_the_signal_lacks_is_an_error() {
    let routing = "table:\n  - condition: attributes[\"x\"] == \"y\"\n    pipelines: [logs/x]\n  - context: log\n    condition: body == \"y\"\n    pipelines: [traces/a, logs/x]\n";
    let mut text = config(routing, &["traces/a", "logs/x"]);
    // logs/in exports to it too: route 0 sends logs only, route 1 routes
    // log records, which traces have none of.
    text.push_str("    logs/in:\n      receivers: [otlp]\n      exporters: [routing]\n");
    assert_eq!(
        load_errors(&text),
        vec![
            "connectors::routing::table::0::pipelines::0 (line 12): this list names no traces pipeline, but the connector takes traces from traces/in; hint: what a route matches goes to pipelines of the signal it came from; add a traces pipeline",
            "connectors::routing::table::1::context (line 13): route 1 routes logs, but the connector takes traces from traces/in, which has none; hint: route traces with context resource, or use a routing connector per signal",
        ]
    );
}
