//! Connectors in configs: what loads, and one exact error per mistake.

use super::*;

fn load(text: &str) -> Result<AgentConfig, ConfigErrors> {
    load_with_memory(text, &|_| None, Some(8 << 30))
}

/// Every error of a config that must not load, as `sluice validate` prints it.
fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn id(s: &str) -> ComponentId {
    ComponentId::parse(s).unwrap()
}

const HEAD: &str =
    "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\nexporters:\n  debug:\n";

#[test]
fn a_connector_joins_pipelines_on_both_sides_with_fan_out() {
    let text = format!(
        "{HEAD}connectors:\n  count:\n  forward:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [count, forward]\n    logs:\n      receivers: [otlp]\n      exporters: [count]\n    traces/copy:\n      receivers: [forward]\n      exporters: [debug]\n    metrics/a:\n      receivers: [count]\n      exporters: [debug]\n    metrics/b:\n      receivers: [count, otlp]\n      exporters: [debug]\n"
    );
    let cfg = load(&text).unwrap();
    assert_eq!(cfg.connectors.len(), 2);
    let count = cfg.connectors[&id("count")].downcast_ref::<crate::connectors::count::Count>().unwrap();
    assert_eq!(count.spans[0].name, "trace.span.count");
    assert_eq!(count.data_points[0].name, "metric.datapoint.count");
    assert_eq!(cfg.service.pipelines.len(), 5);
}

#[test]
fn an_unknown_connector_type_is_named_with_the_built_in_ones() {
    let text = format!("{HEAD}connectors:\n  cuont:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [cuont]\n    metrics:\n      receivers: [cuont]\n      exporters: [debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "connectors::cuont (line 9): unknown connector type \"cuont\"; hint: did you mean \"count\"? (built-in connectors: forward, count, spanmetrics, routing, slo)"
        ]
    );
}

#[test]
fn a_connector_no_pipeline_uses_is_an_error() {
    let text = format!("{HEAD}connectors:\n  forward/spare:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "connectors::forward/spare (line 9): connector \"forward/spare\" is defined but no pipeline uses it; hint: list it among the exporters of one pipeline and the receivers of another, or remove it"
        ]
    );
}

#[test]
fn a_connector_used_on_one_side_only_is_an_error() {
    let only_exporter = format!("{HEAD}connectors:\n  count:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [count]\n");
    assert_eq!(
        errors(&only_exporter),
        vec![
            "connectors::count (line 9): connector \"count\" is an exporter of traces but no pipeline's receiver; hint: add it to the receivers of the metrics pipeline that takes what it emits"
        ]
    );
    let only_receiver = format!("{HEAD}connectors:\n  count:\nservice:\n  pipelines:\n    metrics:\n      receivers: [count]\n      exporters: [debug]\n");
    assert_eq!(
        errors(&only_receiver),
        vec![
            "connectors::count (line 9): connector \"count\" is a receiver of metrics but no pipeline's exporter; hint: add it to the exporters of the traces or metrics or logs pipeline it takes data from"
        ]
    );
}

#[test]
fn a_wrong_signal_pair_is_one_error_where_the_pipeline_names_it() {
    // count turns anything into metrics: a traces pipeline cannot receive from it.
    let text = format!("{HEAD}connectors:\n  count:\nservice:\n  pipelines:\n    traces/in:\n      receivers: [otlp]\n      exporters: [count]\n    traces/out:\n      receivers: [count]\n      exporters: [debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "service::pipelines::traces/out::receivers::count (line 16): connector \"count\" cannot feed a traces pipeline: it connects traces to metrics, metrics to metrics, logs to metrics"
        ]
    );
    // forward keeps the signal: traces in, metrics out joins nothing.
    let text = format!("{HEAD}connectors:\n  forward:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [forward]\n    metrics:\n      receivers: [forward]\n      exporters: [debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "service::pipelines::metrics::receivers::forward (line 16): connector \"forward\" feeds a metrics pipeline from metrics pipelines, but no metrics pipeline lists it as an exporter; hint: it is an exporter of traces; it connects traces to traces, metrics to metrics, logs to logs"
        ]
    );
}

#[test]
fn a_cycle_of_pipelines_is_refused() {
    let text = format!("{HEAD}connectors:\n  forward/a:\n  forward/b:\nservice:\n  pipelines:\n    traces/a:\n      receivers: [otlp, forward/b]\n      exporters: [forward/a]\n    traces/b:\n      receivers: [forward/a]\n      exporters: [forward/b, debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "service::pipelines::traces/b::exporters::forward/b (line 18): connectors make a cycle of pipelines: pipeline traces/a exports to connector forward/a, which feeds traces/b; traces/b exports to connector forward/b, which feeds traces/a; hint: a pipeline may not receive, directly or through other pipelines, what it exports (the Collector refuses cycles too)"
        ]
    );
    // A pipeline that receives from the connector it exports to.
    let text = format!("{HEAD}connectors:\n  forward:\nservice:\n  pipelines:\n    logs:\n      receivers: [otlp, forward]\n      exporters: [forward, debug]\n");
    assert_eq!(
        errors(&text),
        vec![
            "service::pipelines::logs::exporters::forward (line 14): connectors make a cycle of pipelines: pipeline logs exports to connector forward, which feeds logs; hint: a pipeline may not receive, directly or through other pipelines, what it exports (the Collector refuses cycles too)"
        ]
    );
}

#[test]
fn count_settings_are_checked() {
    let pipelines = "service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [count]\n    metrics:\n      receivers: [count]\n      exporters: [debug]\n";
    let text = format!("{HEAD}connectors:\n  count:\n    logs:\n      my.error.count:\n        conditions:\n          - 'severity_number >= SEVERITY_NUMBER_ERROR'\n{pipelines}");
    let cfg = load(&text).unwrap();
    let count = cfg.connectors[&id("count")].downcast_ref::<crate::connectors::count::Count>().unwrap();
    assert!(!count.logs[0].conditions.is_empty());
    let text = text.replace("severity_number >=", "severity_nmuber >=");
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("connectors::count::logs::my.error.count::conditions::0 (line 13): in \"severity_nmuber >= SEVERITY_NUMBER_ERROR\" at column 1:"),
        "{e:?}"
    );
    let text = format!("{HEAD}connectors:\n  count:\n    metrics:\n      my.metric.count:\n        attributes:\n          - key: env\n    logs:\n      my.log.count:\n        attributes:\n          - key: \"\"\n{pipelines}");
    assert_eq!(
        errors(&text),
        vec![
            "connectors::count::metrics::my.metric.count::attributes (line 12): metrics cannot be counted by attributes (a metric has none; the Collector refuses it too); hint: count data points by attributes under datapoints",
            "connectors::count::logs::my.log.count::attributes::0::key (line 17): attribute key missing; hint: e.g. - key: env",
        ]
    );
}

#[test]
fn a_connector_type_named_in_a_pipeline_but_not_defined_says_where_to_define_it() {
    let text =
        format!("{HEAD}service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [spanmetrics]\n");
    assert_eq!(
        errors(&text),
        vec![
            "service::pipelines::traces::exporters::spanmetrics (line 12): undefined exporter \"spanmetrics\": it is not defined under exporters; hint: \"spanmetrics\" is a connector type: define it under connectors and list it among the exporters of one pipeline and the receivers of another"
        ]
    );
}

#[test]
fn an_slo_connector_feeds_metrics_and_logs_and_its_storage_is_checked() {
    let pipelines = "service:\n{EXT}  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [slo]\n    metrics:\n      receivers: [slo]\n      exporters: [debug]\n    logs:\n      receivers: [slo]\n      exporters: [debug]\n";
    let slo = "connectors:\n  slo:\n    storage: file_storage\n    slos: [{name: a, service: s, objective: 99.9}]\n";
    let ext = "extensions:\n  file_storage:\n    directory: /tmp/sluice-slo-load-test\n";
    let ok = format!("{HEAD}{ext}{slo}{}", pipelines.replace("{EXT}", "  extensions: [file_storage]\n"));
    let cfg = load(&ok).unwrap();
    assert_eq!(cfg.connectors[&id("slo")].pairs().len(), 2);
    let not_started = format!("{HEAD}{ext}{slo}{}", pipelines.replace("{EXT}", ""));
    assert_eq!(
        errors(&not_started),
        vec![
            "connectors::slo::storage (line 13): storage extension \"file_storage\" is not started: it is not listed in service.extensions; hint: add it: service: {extensions: [file_storage]}"
        ]
    );
    let undefined = format!("{HEAD}{slo}{}", pipelines.replace("{EXT}", ""));
    let e = errors(&undefined);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("connectors::slo::storage (line 10): "), "{e:?}");
}
