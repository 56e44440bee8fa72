use super::*;
use crate::config::ComponentId;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

const ID: &str = "transform";

/// Loads `body` (YAML under `transform:`, indented four spaces) through the
/// real loader in a pipeline of `signal`.
fn load(body: &str, signal: &str) -> Result<Arc<dyn ProcessorSpec>, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  transform:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    {signal}: {{receivers: [otlp], processors: [transform], exporters: [debug]}}\n"
    );
    let cfg = crate::service::load::load_agent_config(&text, &|_| None)?;
    Ok(cfg.processors.get(&ComponentId::parse(ID).unwrap()).expect("transform").clone())
}

fn processor(body: &str, signal: Signal) -> (Box<dyn Processor>, Registry) {
    let spec = load(body, signal.as_str()).unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: ID.to_string(),
        signal,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    (spec.build(&ctx).unwrap(), registry)
}

fn errors_of(body: &str) -> Vec<String> {
    load(body, "traces").err().map(|e| e.0.iter().map(ToString::to_string).collect()).unwrap_or_default()
}

fn sv(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Av::StringValue(s.into())) })
}
fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue { key: k.into(), value: v, ..Default::default() }
}
fn get<'a>(attrs: &'a [KeyValue], k: &str) -> Option<&'a Av> {
    attrs.iter().find(|a| a.key == k).and_then(|a| a.value.as_ref()).and_then(|v| v.value.as_ref())
}
fn resource(service: &str) -> Option<Resource> {
    Some(Resource { attributes: vec![kv("service.name", sv(service))], ..Default::default() })
}

fn traces(services: &[&str], spans_each: usize) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: services
            .iter()
            .map(|s| ResourceSpans {
                resource: resource(s),
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans_each)
                        .map(|i| Span {
                            name: format!("span-{i}"),
                            trace_id: vec![1; 16],
                            span_id: vec![2; 8],
                            attributes: vec![
                                kv("http.method", sv("GET")),
                                kv("process.command_line", sv("app --password=hunter2 --v")),
                                kv("user.email", sv("a@b.c")),
                            ],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

fn run(p: &mut Box<dyn Processor>, b: Batch) -> Vec<Batch> {
    let mut out = Vec::new();
    p.process(b, Instant::now(), &mut out);
    out
}

fn spans(b: &Batch) -> Vec<(&Option<Resource>, &Span)> {
    let Batch::Traces(r) = b else { panic!() };
    r.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(move |ss| ss.spans.iter().map(move |s| (&rs.resource, s))))
        .collect()
}

fn counter(reg: &Registry, name: &str, signal: Signal) -> f64 {
    reg.value(name, &[("processor", ID), ("otel_signal", signal.as_str())]).unwrap_or(0.0)
}

#[test]
fn readme_basic_config_trace_statements() {
    let (mut p, _) = processor(
        r#"    error_mode: ignore
    trace_statements:
      - keep_keys(span.attributes, ["service.name", "service.namespace", "cloud.region", "process.command_line"])
      - replace_pattern(span.attributes["process.command_line"], "password\\=[^\\s]*(\\s?)", "password=***")
      - limit(span.attributes, 100, [])
      - truncate_all(span.attributes, 4096)
"#,
        Signal::Traces,
    );
    let out = run(&mut p, traces(&["a"], 2));
    for (_, s) in spans(&out[0]) {
        assert_eq!(s.attributes.len(), 1, "{:?}", s.attributes);
        // `password\=[^\s]*(\s?)` takes the value and the space after it.
        assert_eq!(get(&s.attributes, "process.command_line"), Some(&Av::StringValue("app --password=***--v".into())));
    }
}

#[test]
fn group_form_with_context_and_conditions_on_resource_attributes() {
    let (mut p, _) = processor(
        r#"    trace_statements:
      - context: span
        conditions:
          - resource.attributes["service.name"] == "checkout"
        statements:
          - set(attributes["team"], "payments")
          - set(attributes["http.request.method"], attributes["http.method"])
          - delete_key(attributes, "http.method")
          - delete_key(attributes, "user.email") where name == "span-1"
      - context: resource
        statements:
          - set(attributes["deployment.environment"], "prod") where attributes["service.name"] != "checkout"
"#,
        Signal::Traces,
    );
    let out = run(&mut p, traces(&["checkout", "search"], 2));
    let all = spans(&out[0]);
    assert_eq!(all.len(), 4);
    for (res, s) in all {
        let svc = get(&res.as_ref().unwrap().attributes, "service.name");
        let env = get(&res.as_ref().unwrap().attributes, "deployment.environment");
        if svc == Some(&Av::StringValue("checkout".into())) {
            assert_eq!(get(&s.attributes, "team"), Some(&Av::StringValue("payments".into())));
            assert_eq!(get(&s.attributes, "http.request.method"), Some(&Av::StringValue("GET".into())));
            assert_eq!(get(&s.attributes, "http.method"), None);
            assert_eq!(get(&s.attributes, "user.email").is_some(), s.name != "span-1");
            assert_eq!(env, None);
        } else {
            assert_eq!(get(&s.attributes, "team"), None);
            assert_eq!(get(&s.attributes, "http.method"), Some(&Av::StringValue("GET".into())));
            assert_eq!(env, Some(&Av::StringValue("prod".into())));
        }
    }
}

fn metrics_batch() -> Batch {
    let point = |v: f64| NumberDataPoint {
        value: Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(v)),
        attributes: vec![kv("host.name", sv("h1")), kv("other", sv("x"))],
        ..Default::default()
    };
    Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("host.name", sv("h1")), kv("cloud.region", sv("eu"))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "system.processes.count".into(),
                        data: Some(Data::Sum(Sum { data_points: vec![point(1.0)], ..Default::default() })),
                        ..Default::default()
                    },
                    Metric {
                        name: "prometheus_metric".into(),
                        data: Some(Data::Gauge(Gauge { data_points: vec![point(2.0)] })),
                        ..Default::default()
                    },
                    Metric {
                        name: "requests".into(),
                        data: Some(Data::Sum(Sum { data_points: vec![point(3.0)], ..Default::default() })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

#[test]
fn readme_basic_config_metric_statements() {
    let (mut p, _) = processor(
        r#"    error_mode: ignore
    metric_statements:
      - keep_keys(resource.attributes, ["host.name"])
      - truncate_all(resource.attributes, 4096)
      - set(metric.description, "Sum") where metric.type == "Sum"
      - convert_sum_to_gauge() where metric.name == "system.processes.count"
      - convert_gauge_to_sum("cumulative", false) where metric.name == "prometheus_metric"
"#,
        Signal::Metrics,
    );
    let out = run(&mut p, metrics_batch());
    let Batch::Metrics(r) = &out[0] else { panic!() };
    let rm = &r.resource_metrics[0];
    assert_eq!(rm.resource.as_ref().unwrap().attributes.len(), 1);
    let m = &rm.scope_metrics[0].metrics;
    // metric.type is an enum (an int): comparing it with "Sum" is false.
    assert!(m.iter().all(|m| m.description.is_empty()));
    assert!(matches!(m[0].data, Some(Data::Gauge(_))));
    assert!(matches!(&m[1].data, Some(Data::Sum(s)) if s.aggregation_temporality == 2 && !s.is_monotonic));
    assert!(matches!(m[2].data, Some(Data::Sum(_))));
}

#[test]
fn readme_advanced_config_and_datapoint_context() {
    let (mut p, _) = processor(
        r#"    error_mode: ignore
    metric_statements:
      - error_mode: propagate
        conditions:
          - metric.type == METRIC_DATA_TYPE_SUM
        statements:
          - set(metric.description, "Sum")
      - statements:
          - limit(datapoint.attributes, 1, ["host.name"])
      - set(metric.unit, "1") where datapoint.attributes["host.name"] == "h1"
"#,
        Signal::Metrics,
    );
    let out = run(&mut p, metrics_batch());
    let Batch::Metrics(r) = &out[0] else { panic!() };
    let m = &r.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(m[0].description, "Sum");
    assert_eq!(m[1].description, "");
    assert_eq!(m[2].description, "Sum");
    for metric in m {
        // Inferred datapoint context: metric paths read and write the point's metric.
        assert_eq!(metric.unit, "1");
        let pts = match &metric.data {
            Some(Data::Gauge(g)) => &g.data_points,
            Some(Data::Sum(s)) => &s.data_points,
            _ => panic!(),
        };
        let keys: Vec<&str> = pts[0].attributes.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["host.name"]);
    }
}

fn logs_batch() -> Batch {
    Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        body: sv("request failed"),
                        attributes: vec![
                            kv("http.route", sv("/api")),
                            kv("path", sv("/user/42/list/7")),
                            kv("acct", sv("/account/1234")),
                        ],
                        ..Default::default()
                    },
                    LogRecord {
                        body: Some(AnyValue {
                            value: Some(Av::KvlistValue(KeyValueList { values: vec![kv("object", sv("o"))] })),
                        }),
                        attributes: vec![kv("http.route", sv("/map"))],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

#[test]
fn readme_basic_and_advanced_log_statements() {
    let (mut p, _) = processor(
        r#"    error_mode: ignore
    log_statements:
      - set(log.severity_text, "FAIL") where log.body == "request failed"
      - replace_all_matches(log.attributes, "/user/*/list/*", "/user/{userId}/list/{listId}")
      - replace_all_patterns(log.attributes, "value", "/account/\\d{4}", "/account/{accountId}")
"#,
        Signal::Logs,
    );
    let out = run(&mut p, logs_batch());
    let Batch::Logs(r) = &out[0] else { panic!() };
    let recs = &r.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(recs[0].severity_text, "FAIL");
    assert_eq!(recs[1].severity_text, "");
    assert_eq!(get(&recs[0].attributes, "path"), Some(&Av::StringValue("/user/{userId}/list/{listId}".into())));
    assert_eq!(get(&recs[0].attributes, "acct"), Some(&Av::StringValue("/account/{accountId}".into())));

    let (mut p, _) = processor(
        r#"    log_statements:
      - conditions:
          - IsMap(log.body) and log.body["object"] != nil
        statements:
          - set(log.body, log.attributes["http.route"])
"#,
        Signal::Logs,
    );
    let out = run(&mut p, logs_batch());
    let Batch::Logs(r) = &out[0] else { panic!() };
    let recs = &r.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(recs[0].body, sv("request failed"));
    assert_eq!(recs[1].body, sv("/map"));
}

#[test]
fn error_modes_count_and_decide() {
    // Substring past the end fails on every span (names are 6 bytes).
    let stmt = r#"      - set(span.attributes["x"], Substring(span.name, 0, 100))
      - set(span.attributes["after"], "ran")
"#;
    for (mode, passes) in [("ignore", true), ("silent", true), ("propagate", false)] {
        let (mut p, reg) = processor(&format!("    error_mode: {mode}\n    trace_statements:\n{stmt}"), Signal::Traces);
        let out = run(&mut p, traces(&["a"], 3));
        // propagate stops at the first failure: the batch is gone anyway.
        let errors = if passes { 3.0 } else { 1.0 };
        assert_eq!(counter(&reg, "sluice_ottl_errors_total", Signal::Traces), errors, "{mode}");
        if passes {
            assert_eq!(out.len(), 1, "{mode}");
            // The next statement still ran.
            assert!(spans(&out[0]).iter().all(|(_, s)| get(&s.attributes, "after").is_some()), "{mode}");
            assert_eq!(counter(&reg, "sluice_ottl_batches_dropped_total", Signal::Traces), 0.0);
        } else {
            assert!(out.is_empty(), "{mode}");
            assert_eq!(counter(&reg, "sluice_ottl_batches_dropped_total", Signal::Traces), 1.0);
            assert_eq!(reg.value("otelcol_processor_dropped_spans_total", &[("processor", ID)]), Some(3.0));
        }
    }
    // The Collector's default is propagate.
    let (mut p, _) = processor(&format!("    trace_statements:\n{stmt}"), Signal::Traces);
    assert!(run(&mut p, traces(&["a"], 1)).is_empty());
}

#[test]
fn config_errors_name_the_statement_path_column_and_hint() {
    let errors = errors_of(
        r#"    trace_statements:
      - context: span
        statements:
          - set(attributes["a"], "b")
          - sett(attributes["a"], "b")
      - context: spann
        statements:
          - set(attributes["a"], "b")
      - set(attributes["x"], "y")
    error_mode: loud
"#,
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("processors::transform::error_mode (line 15): unknown error_mode \"loud\"")),
        "{errors:#?}"
    );
    // Values are checked once the fields type: fix error_mode and see the rest.
    let errors = errors_of(
        r#"    trace_statements:
      - context: span
        statements:
          - set(attributes["a"], "b")
          - sett(attributes["a"], "b")
      - context: spann
        statements:
          - set(attributes["a"], "b")
      - set(attributes["x"], "y")
"#,
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0],
        "processors::transform::trace_statements::0::statements::1 (line 10): in \"sett(attributes[\\\"a\\\"], \\\"b\\\")\" \
         at column 1: unknown editor `sett`; hint: did you mean `set`?"
    );
    assert!(errors[1].starts_with("processors::transform::trace_statements::1::context (line 11): "), "{errors:#?}");
    assert!(errors[1].contains("unknown context \"spann\" for traces; hint: one of resource, scope, span, spanevent"));
    assert!(errors[2].starts_with("processors::transform::trace_statements::2 (line 14): "), "{errors:#?}");
    assert!(errors[2].contains("does not name its context"), "{errors:#?}");
    let errors = errors_of("    log_statements:\n      - set(span.name, \"x\")\n");
    assert!(errors[0].contains("`span` paths are not available here"), "{errors:#?}");
}

#[test]
fn readme_examples_section() {
    // Parsing JSON logs into attributes through the cache; severity from an
    // unstructured body; rename by set + delete and by replace_all_patterns.
    let (mut p, _) = processor(
        r#"    error_mode: ignore
    log_statements:
      - statements:
          - merge_maps(log.cache, ParseJSON(log.body), "upsert") where IsMatch(log.body, "^\\{")
          - set(log.attributes["attr1"], log.cache["attr1"])
          - set(log.attributes["attr2"], log.cache["attr2"])
          - set(log.attributes["nested.attr3"], log.cache["nested"]["attr3"])
      - set(log.severity_number, SEVERITY_NUMBER_INFO) where IsString(log.body) and IsMatch(log.body, "\\sINFO\\s")
      - set(log.severity_number, SEVERITY_NUMBER_WARN) where IsString(log.body) and IsMatch(log.body, "\\sWARN\\s")
      - set(log.attributes["test"], "pass") where log.attributes["test"] == nil
      - set(log.attributes["body"], log.body)
"#,
        Signal::Logs,
    );
    let json = r#"{"name": "log", "attr1": "foo", "attr2": "bar", "nested": {"attr3": "example"}}"#;
    let plain = "[2023-09-22 07:38:22,570] INFO [Something]: some interesting log";
    let batch = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord { body: sv(json), ..Default::default() },
                    LogRecord { body: sv(plain), ..Default::default() },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let out = run(&mut p, batch);
    let Batch::Logs(r) = &out[0] else { panic!() };
    let recs = &r.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(get(&recs[0].attributes, "attr1"), Some(&Av::StringValue("foo".into())));
    assert_eq!(get(&recs[0].attributes, "attr2"), Some(&Av::StringValue("bar".into())));
    assert_eq!(get(&recs[0].attributes, "nested.attr3"), Some(&Av::StringValue("example".into())));
    assert_eq!(get(&recs[0].attributes, "body"), Some(&Av::StringValue(json.into())));
    assert_eq!(recs[0].severity_number, 0);
    // The cache is per record: the plain line got nothing from the JSON one.
    assert_eq!(get(&recs[1].attributes, "attr1"), None);
    assert_eq!(recs[1].severity_number, 9);
    assert!(recs.iter().all(|r| get(&r.attributes, "test") == Some(&Av::StringValue("pass".into()))));

    let (mut p, _) = processor(
        r#"    error_mode: ignore
    trace_statements:
      - statements:
          - set(resource.cache["attrs"], resource.attributes)
          - keep_matching_keys(resource.cache["attrs"], "pod_labels_.*")
          - set(resource.attributes["kubernetes.labels"], resource.cache["attrs"])
      - set(resource.attributes["namespace"], resource.attributes["k8s.namespace.name"])
      - delete_key(resource.attributes, "k8s.namespace.name")
      - set(resource.attributes["test"], Concat([resource.attributes["foo"], resource.attributes["bar"]], " "))
      - replace_all_patterns(resource.attributes, "key", "k8s\\.pod\\.name", "pod")
"#,
        Signal::Traces,
    );
    let mut b = traces(&["a"], 1);
    if let Batch::Traces(r) = &mut b {
        let attrs = &mut r.resource_spans[0].resource.as_mut().unwrap().attributes;
        attrs.push(kv("k8s.namespace.name", sv("ns")));
        attrs.push(kv("foo", sv("f")));
        attrs.push(kv("bar", sv("b")));
        attrs.push(kv("k8s.pod.name", sv("p-1")));
        attrs.push(kv("pod_labels_app", sv("web")));
    }
    let out = run(&mut p, b);
    let Batch::Traces(r) = &out[0] else { panic!() };
    let res = &r.resource_spans[0].resource.as_ref().unwrap().attributes;
    assert_eq!(get(res, "namespace"), Some(&Av::StringValue("ns".into())));
    assert_eq!(get(res, "k8s.namespace.name"), None);
    assert_eq!(get(res, "test"), Some(&Av::StringValue("f b".into())));
    assert_eq!(get(res, "pod"), Some(&Av::StringValue("p-1".into())));
    let Some(Av::KvlistValue(labels)) = get(res, "kubernetes.labels") else { panic!("{res:?}") };
    assert_eq!(labels.values.len(), 1);
    assert_eq!(get(&labels.values, "pod_labels_app"), Some(&Av::StringValue("web".into())));
}

/// The Collector's basic config (transformprocessor `Config.Unmarshal`, since
/// v0.124, #39290): the flat strings of a `*_statements` list are ONE group
/// with no `context`; its context is inferred from all of them together: the
/// first of `log, datapoint, metric, spanevent, span, resource, scope` that a
/// path names. So every flat statement runs on each item of that context in
/// turn (statement 1 then 2 on span A, then on span B), sharing the item's
/// cache, and a statement on `resource.` paths runs once per span (not at all
/// for a resource without spans). A group after a flat string is refused with
/// the Collector's message; flat strings after groups are one more group, run
/// after them.
#[test]
fn flat_statements_are_one_group_run_per_item_in_the_deepest_context() {
    let (mut p, _) = processor(
        r#"    trace_statements:
      - set(resource.attributes["seen"], Concat([resource.attributes["seen"], span.name], ","))
      - set(span.attributes["seen_then"], resource.attributes["seen"])
      - set(span.cache["name"], span.name)
      - set(span.attributes["from_cache"], span.cache["name"])
"#,
        Signal::Traces,
    );
    let mut batch = traces(&["a", "empty"], 2);
    if let Batch::Traces(r) = &mut batch {
        r.resource_spans[1].scope_spans.clear();
    }
    let out = run(&mut p, batch);
    let Batch::Traces(r) = &out[0] else { panic!() };
    let s = &r.resource_spans[0].scope_spans[0].spans;
    // Interleaved per span: span-0 saw the resource after its own statement 1 only.
    assert_eq!(get(&s[0].attributes, "seen_then"), Some(&Av::StringValue("<nil>,span-0".into())));
    assert_eq!(get(&s[1].attributes, "seen_then"), Some(&Av::StringValue("<nil>,span-0,span-1".into())));
    assert_eq!(get(&s[1].attributes, "from_cache"), Some(&Av::StringValue("span-1".into())));
    // The resource without spans is not visited: the group's context is span.
    assert_eq!(get(&r.resource_spans[1].resource.as_ref().unwrap().attributes, "seen"), None);

    // Groups, by contrast, run one after the other over the whole batch.
    let (mut p, _) = processor(
        r#"    trace_statements:
      - statements:
          - set(resource.attributes["seen"], Concat([resource.attributes["seen"], span.name], ","))
      - statements:
          - set(span.attributes["seen_then"], resource.attributes["seen"])
"#,
        Signal::Traces,
    );
    let out = run(&mut p, traces(&["a"], 2));
    for (_, s) in spans(&out[0]) {
        assert_eq!(get(&s.attributes, "seen_then"), Some(&Av::StringValue("<nil>,span-0,span-1".into())));
    }

    // A group after a flat statement: the Collector's error, at the group.
    let errors = errors_of(
        "    trace_statements:\n      - set(span.name, \"x\")\n      - statements:\n          - set(span.name, \"y\")\n",
    );
    assert_eq!(
        errors,
        vec!["processors::transform::trace_statements::1 (line 8): configuring multiple configuration styles is not \
             supported, please use only Basic configuration or only Advanced configuration; hint: the flat \
             statements are one group whose context is inferred; write them as a `statements:` group, or move \
             the groups before them"
            .to_string()]
    );
    // Flat statements after groups: taken, and run after the groups.
    let (mut p, _) = processor(
        r#"    trace_statements:
      - statements:
          - set(span.attributes["order"], "group")
      - set(span.attributes["order"], Concat([span.attributes["order"], "flat"], "+"))
"#,
        Signal::Traces,
    );
    let out = run(&mut p, traces(&["a"], 1));
    assert_eq!(get(&spans(&out[0])[0].1.attributes, "order"), Some(&Av::StringValue("group+flat".into())));
}

/// `Time`'s location is looked up when the config loads: a wrong name is an
/// error at the statement's YAML path, with the column of the argument.
#[test]
fn time_location_errors_at_config_load() {
    let errors = errors_of(
        "    log_statements:\n      - set(log.time, Time(log.body, \"%F\", \"Mars/Olympus\"))\n      \
         - set(log.time, Time(log.body, \"%F\", \"UTC\", \"de\"))\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "processors::transform::log_statements::0 (line 7): in \"set(log.time, Time(log.body, \\\"%F\\\", \
             \\\"Mars/Olympus\\\"))\" at column 36: unknown location \"Mars/Olympus\""
        ),
        "{errors:#?}"
    );
    assert!(errors[0].ends_with("hint: an IANA time zone name (America/New_York, Europe/Berlin), UTC or Local"));
    assert!(errors[1].starts_with("processors::transform::log_statements::1 (line 8): "), "{errors:#?}");
    assert!(errors[1].contains("locale \"de\" is not supported; hint: sluice reads month and day names in English"));
    // A good zone loads and runs.
    let (mut p, _) = processor(
        "    log_statements:\n      - set(log.time, Time(log.body, \"%Y-%m-%d %H:%M\", \"America/New_York\"))\n",
        Signal::Logs,
    );
    let batch = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { body: sv("2024-01-15 09:00"), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let out = run(&mut p, batch);
    let Batch::Logs(r) = &out[0] else { panic!() };
    // 09:00 EST (-5) is 14:00 UTC.
    assert_eq!(r.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano, 1_705_327_200_000_000_000);
}
