use super::*;
use crate::config::ComponentId;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

const ID: &str = "filter";

/// Loads `body` (the YAML under `filter:`, indented four spaces) through the
/// real config loader, in a pipeline of `signal`.
fn load(body: &str, signal: &str) -> Result<FilterConfig, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  filter:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    {signal}: {{receivers: [otlp], processors: [filter], exporters: [debug]}}\n"
    );
    let cfg = crate::service::load::load_agent_config(&text, &|_| None)?;
    match cfg.processors.get(&ComponentId::parse(ID).unwrap()) {
        Some(p) if p.downcast_ref::<super::FilterSpec>().is_some() => {
            Ok(p.downcast_ref::<super::FilterSpec>().unwrap().config().clone())
        }
        other => panic!("not a filter config: {other:?}"),
    }
}

fn processor(body: &str, signal: Signal) -> (FilterProcessor, Registry) {
    let cfg = load(body, signal.as_str()).unwrap_or_else(|e| panic!("{e}"));
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
    (FilterProcessor::new(&cfg, &ctx).unwrap(), registry)
}

fn dropped(reg: &Registry, name: &str) -> f64 {
    reg.value(name, &[("processor", ID)]).unwrap_or(0.0)
}

fn run(p: &mut FilterProcessor, batch: Batch) -> Vec<Batch> {
    let mut out = Vec::new();
    p.process(batch, Instant::now(), &mut out);
    out
}

fn sv(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) })
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn resource(service: &str, extra: Vec<KeyValue>) -> Option<Resource> {
    let mut attributes = vec![s("service.name", service)];
    attributes.extend(extra);
    Some(Resource { attributes, ..Default::default() })
}

// ----------------------------------------------------------------- traces

fn sp(name: &str, kind: span::SpanKind, status: i32, attributes: Vec<KeyValue>) -> Span {
    Span {
        name: name.to_string(),
        kind: kind as i32,
        status: Some(Status { code: status, ..Default::default() }),
        attributes,
        events: vec![
            span::Event { name: "request.received".into(), ..Default::default() },
            span::Event { name: "step".into(), attributes: vec![i("level", 1)], ..Default::default() },
        ],
        ..Default::default()
    }
}

/// Two services; `api` has scopes `web` 1.0 and `db` 2.0, `worker` one scope.
fn traces() -> Batch {
    use span::SpanKind::*;
    let scope = |name: &str, version: &str, spans: Vec<Span>| ScopeSpans {
        scope: Some(InstrumentationScope { name: name.into(), version: version.into(), ..Default::default() }),
        spans,
        ..Default::default()
    };
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("api", vec![s("env", "prod")]),
                scope_spans: vec![
                    scope(
                        "web",
                        "1.0",
                        vec![
                            sp("GET /users", Server, 1, vec![s("http.route", "/users"), i("http.status", 200)]),
                            sp("GET /health", Server, 0, vec![s("http.route", "/health"), i("http.status", 200)]),
                            sp("render", Internal, 2, vec![s("http.status", "500")]),
                        ],
                    ),
                    scope("db", "2.0", vec![sp("SELECT users", Client, 0, vec![s("db.system", "postgres")])]),
                ],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource("worker", vec![s("env", "dev")]),
                scope_spans: vec![scope(
                    "jobs",
                    "0.1",
                    vec![
                        sp("process job", Consumer, 2, vec![i("http.status", 500)]),
                        sp("GET /health", Server, 0, vec![]),
                    ],
                )],
                ..Default::default()
            },
        ],
    })
}

fn span_names(out: &[Batch]) -> Vec<String> {
    let mut v = Vec::new();
    for b in out {
        let Batch::Traces(req) = b else { panic!("not traces") };
        for rs in &req.resource_spans {
            assert!(!rs.scope_spans.is_empty(), "empty resource left in");
            for ss in &rs.scope_spans {
                assert!(!ss.spans.is_empty(), "empty scope left in");
                v.extend(ss.spans.iter().map(|s| s.name.clone()));
            }
        }
    }
    v
}

const SPANS_DROPPED: &str = "otelcol_processor_dropped_spans_total";

fn spans_after(body: &str) -> (Vec<String>, f64) {
    let (mut p, reg) = processor(body, Signal::Traces);
    let out = run(&mut p, traces());
    (span_names(&out), dropped(&reg, SPANS_DROPPED))
}

#[test]
fn span_names_strict_exclude() {
    let (kept, n) =
        spans_after("    spans:\n      exclude:\n        match_type: strict\n        span_names: [GET /health]\n");
    assert_eq!(kept, ["GET /users", "render", "SELECT users", "process job"]);
    assert_eq!(n, 2.0);
}

#[test]
fn span_names_regexp_include_is_unanchored() {
    let (kept, n) =
        spans_after("    spans:\n      include:\n        match_type: regexp\n        span_names: [\"^GET \", user]\n");
    assert_eq!(kept, ["GET /users", "GET /health", "SELECT users", "GET /health"]);
    assert_eq!(n, 2.0);
}

#[test]
fn services_strict_and_regexp() {
    let (kept, n) = spans_after("    spans:\n      include:\n        match_type: strict\n        services: [worker]\n");
    assert_eq!(kept, ["process job", "GET /health"]);
    assert_eq!(n, 4.0);
    let (kept, _) = spans_after("    spans:\n      exclude:\n        match_type: regexp\n        services: [\"^a\"]\n");
    assert_eq!(kept, ["process job", "GET /health"]);
}

#[test]
fn span_kinds_full_and_short_names() {
    let (kept, n) = spans_after(
        "    spans:\n      exclude:\n        match_type: strict\n        span_kinds: [SPAN_KIND_SERVER, client]\n",
    );
    assert_eq!(kept, ["render", "process job"]);
    assert_eq!(n, 4.0);
}

#[test]
fn status_codes_keep_only_errors() {
    let (kept, n) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        status_codes: [STATUS_CODE_ERROR]\n",
    );
    assert_eq!(kept, ["render", "process job"]);
    assert_eq!(n, 4.0);
    let (kept, _) =
        spans_after("    spans:\n      exclude:\n        match_type: strict\n        status_codes: [unset, Ok]\n");
    assert_eq!(kept, ["render", "process job"]);
}

#[test]
fn attributes_present_typed_and_regexp() {
    // Key present, whatever its value.
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        attributes: [{key: http.route}]\n",
    );
    assert_eq!(kept, ["GET /users", "GET /health"]);
    // Strict is typed: int 500 is not the string "500".
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        attributes: [{key: http.status, value: 500}]\n",
    );
    assert_eq!(kept, ["process job"]);
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        attributes: [{key: http.status, value: \"500\"}]\n",
    );
    assert_eq!(kept, ["render"]);
    // Regexp applies to string values only.
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: regexp\n        attributes: [{key: http.status, value: \"^5\"}]\n",
    );
    assert_eq!(kept, ["render"]);
}

#[test]
fn attribute_lists_need_every_entry() {
    let (kept, n) = spans_after(
        "    spans:\n      exclude:\n        match_type: strict\n        attributes:\n          - {key: http.route, value: /health}\n          - {key: http.status, value: 200}\n",
    );
    assert_eq!(kept, ["GET /users", "render", "SELECT users", "process job", "GET /health"]);
    assert_eq!(n, 1.0, "the worker's health span has no attributes, so it does not match");
}

#[test]
fn resources_and_libraries() {
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        resources: [{key: env, value: dev}]\n",
    );
    assert_eq!(kept, ["process job", "GET /health"]);
    let (kept, _) =
        spans_after("    spans:\n      exclude:\n        match_type: strict\n        libraries: [{name: web}]\n");
    assert_eq!(kept, ["SELECT users", "process job", "GET /health"]);
    let (kept, _) = spans_after(
        "    spans:\n      include:\n        match_type: regexp\n        libraries: [{name: \"^(web|db)$\", version: \"^2\\\\.\"}, {name: jobs}]\n",
    );
    assert_eq!(kept, ["SELECT users", "process job", "GET /health"]);
}

#[test]
fn properties_of_one_block_all_match() {
    let (kept, n) = spans_after(
        "    spans:\n      exclude:\n        match_type: strict\n        services: [api]\n        span_names: [GET /health]\n",
    );
    assert_eq!(kept, ["GET /users", "render", "SELECT users", "process job", "GET /health"]);
    assert_eq!(n, 1.0);
}

#[test]
fn include_and_exclude_together() {
    let (kept, n) = spans_after(
        "    spans:\n      include:\n        match_type: strict\n        services: [api]\n      exclude:\n        match_type: regexp\n        span_names: [health, SELECT]\n",
    );
    assert_eq!(kept, ["GET /users", "render"]);
    assert_eq!(n, 4.0);
}

#[test]
fn empty_scopes_resources_and_batches_are_removed() {
    let (mut p, reg) = processor(
        "    spans:\n      exclude:\n        match_type: strict\n        services: [api, worker]\n",
        Signal::Traces,
    );
    assert!(run(&mut p, traces()).is_empty(), "an empty batch is not passed on");
    assert_eq!(dropped(&reg, SPANS_DROPPED), 6.0);
    let (mut p, _) = processor(
        "    spans:\n      exclude:\n        match_type: strict\n        libraries: [{name: db}]\n",
        Signal::Traces,
    );
    let out = run(&mut p, traces());
    let Batch::Traces(req) = &out[0] else { panic!() };
    assert_eq!(req.resource_spans[0].scope_spans.len(), 1, "the db scope is gone");
}

#[test]
fn span_events_are_dropped_from_kept_spans() {
    let (mut p, reg) = processor(
        "    spans:\n      span_events:\n        exclude:\n          match_type: strict\n          names: [request.received]\n",
        Signal::Traces,
    );
    let out = run(&mut p, traces());
    assert_eq!(span_names(&out).len(), 6, "spans are kept");
    let Batch::Traces(req) = &out[0] else { panic!() };
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
                assert_eq!(names, ["step"]);
                assert_eq!(s.dropped_events_count, 1);
            }
        }
    }
    assert_eq!(dropped(&reg, "sluice_filter_span_events_dropped_total"), 6.0);
    assert_eq!(dropped(&reg, SPANS_DROPPED), 0.0);
    // By attributes, under regexp.
    let (mut p, reg) = processor(
        "    spans:\n      span_events:\n        include:\n          match_type: regexp\n          names: [\"^st\"]\n          attributes: [{key: level}]\n",
        Signal::Traces,
    );
    run(&mut p, traces());
    assert_eq!(dropped(&reg, "sluice_filter_span_events_dropped_total"), 6.0);
}

#[test]
fn blocks_of_other_signals_pass_data_unchanged() {
    let (mut p, reg) = processor(
        "    logs:\n      exclude:\n        match_type: strict\n        severity_texts: [INFO]\n",
        Signal::Traces,
    );
    let before = traces();
    let out = run(&mut p, before.clone());
    assert_eq!(out.len(), 1);
    assert_eq!(format!("{:?}", out[0]), format!("{before:?}"));
    assert_eq!(dropped(&reg, SPANS_DROPPED), 0.0);
    assert!(!p.acts_on(Signal::Traces));
}

// ---------------------------------------------------------------- metrics

fn point(attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint { attributes, ..Default::default() }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric { name: name.into(), data: Some(Data::Gauge(Gauge { data_points: points })), ..Default::default() }
}

fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum { data_points: points, aggregation_temporality: 2, is_monotonic: true })),
        ..Default::default()
    }
}

/// api: http.requests (3 points), http.latency (2), cpu (1); worker: http.requests (2).
fn metrics() -> Batch {
    let rm = |service: &str, metrics: Vec<Metric>| ResourceMetrics {
        resource: resource(service, vec![]),
        scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
        ..Default::default()
    };
    Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![
            rm(
                "api",
                vec![
                    sum(
                        "http.requests",
                        vec![point(vec![s("route", "/a")]), point(vec![s("route", "/health")]), point(vec![])],
                    ),
                    gauge("http.latency", vec![point(vec![s("route", "/a")]), point(vec![s("route", "/health")])]),
                    gauge("cpu", vec![point(vec![i("core", 0)])]),
                ],
            ),
            rm("worker", vec![sum("http.requests", vec![point(vec![s("route", "/health")]), point(vec![])])]),
        ],
    })
}

/// `service/metric:points` of what is left.
fn metric_points(out: &[Batch]) -> Vec<String> {
    let mut v = Vec::new();
    for b in out {
        let Batch::Metrics(req) = b else { panic!("not metrics") };
        for rm in &req.resource_metrics {
            assert!(!rm.scope_metrics.is_empty(), "empty resource left in");
            let service = matcher::string_attr(&rm.resource.as_ref().unwrap().attributes, "service.name").unwrap();
            for sm in &rm.scope_metrics {
                assert!(!sm.metrics.is_empty(), "empty scope left in");
                v.extend(sm.metrics.iter().map(|m| format!("{service}/{}:{}", m.name, point_count(m))));
            }
        }
    }
    v
}

const POINTS_DROPPED: &str = "otelcol_processor_dropped_metric_points_total";

fn metrics_after(body: &str) -> (Vec<String>, f64) {
    let (mut p, reg) = processor(body, Signal::Metrics);
    let out = run(&mut p, metrics());
    (metric_points(&out), dropped(&reg, POINTS_DROPPED))
}

#[test]
fn metric_names_strict_exclude_counts_points() {
    let (kept, n) = metrics_after(
        "    metrics:\n      exclude:\n        match_type: strict\n        metric_names: [http.requests]\n",
    );
    assert_eq!(kept, ["api/http.latency:2", "api/cpu:1"]);
    assert_eq!(n, 5.0);
}

#[test]
fn metric_names_regexp_include() {
    let (kept, n) = metrics_after(
        "    metrics:\n      include:\n        match_type: regexp\n        metric_names: [\"^http\\\\.\"]\n",
    );
    assert_eq!(kept, ["api/http.requests:3", "api/http.latency:2", "worker/http.requests:2"]);
    assert_eq!(n, 1.0);
}

#[test]
fn metric_resource_attributes() {
    let (kept, n) = metrics_after(
        "    metrics:\n      include:\n        match_type: strict\n        resource_attributes: [{key: service.name, value: worker}]\n",
    );
    assert_eq!(kept, ["worker/http.requests:2"]);
    assert_eq!(n, 6.0);
}

#[test]
fn datapoint_attributes_exclude_drops_points_and_empty_metrics() {
    let (kept, n) = metrics_after(
        "    metrics:\n      exclude:\n        match_type: strict\n        datapoint_attributes: [{key: route, value: /health}]\n",
    );
    assert_eq!(kept, ["api/http.requests:2", "api/http.latency:1", "api/cpu:1", "worker/http.requests:1"]);
    assert_eq!(n, 3.0);
    // Together with a name: only that metric's points.
    let (kept, n) = metrics_after(
        "    metrics:\n      exclude:\n        match_type: regexp\n        metric_names: [latency]\n        datapoint_attributes: [{key: route}]\n",
    );
    assert_eq!(kept, ["api/http.requests:3", "api/cpu:1", "worker/http.requests:2"]);
    assert_eq!(n, 2.0, "http.latency lost both points and is gone");
}

#[test]
fn datapoint_attributes_include_with_exclude() {
    let (kept, n) = metrics_after(
        "    metrics:\n      include:\n        match_type: strict\n        metric_names: [http.requests]\n        datapoint_attributes: [{key: route}]\n      exclude:\n        match_type: strict\n        resource_attributes: [{key: service.name, value: worker}]\n",
    );
    assert_eq!(kept, ["api/http.requests:2"]);
    assert_eq!(n, 6.0);
}

// ------------------------------------------------------------------- logs

fn rec(severity: i32, text: &str, body: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        severity_number: severity,
        severity_text: text.into(),
        body: sv(body),
        attributes,
        ..Default::default()
    }
}

fn logs() -> Batch {
    let rl = |service: &str, records: Vec<LogRecord>| ResourceLogs {
        resource: resource(service, vec![]),
        scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
        ..Default::default()
    };
    Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![
            rl(
                "api",
                vec![
                    rec(5, "DEBUG", "cache miss", vec![s("user", "a")]),
                    rec(9, "INFO", "GET /health 200", vec![]),
                    rec(13, "WARN", "slow query", vec![s("user", "b")]),
                    rec(17, "ERROR", "db down", vec![i("code", 7)]),
                ],
            ),
            rl("worker", vec![rec(0, "", "no severity", vec![]), rec(21, "FATAL", "crash", vec![])]),
        ],
    })
}

fn bodies(out: &[Batch]) -> Vec<String> {
    let mut v = Vec::new();
    for b in out {
        let Batch::Logs(req) = b else { panic!("not logs") };
        for rl in &req.resource_logs {
            assert!(!rl.scope_logs.is_empty(), "empty resource left in");
            for sl in &rl.scope_logs {
                assert!(!sl.log_records.is_empty(), "empty scope left in");
                for r in &sl.log_records {
                    let Some(any_value::Value::StringValue(b)) = r.body.as_ref().and_then(|b| b.value.as_ref()) else {
                        panic!()
                    };
                    v.push(b.clone());
                }
            }
        }
    }
    v
}

const RECORDS_DROPPED: &str = "otelcol_processor_dropped_log_records_total";

fn logs_after(body: &str) -> (Vec<String>, f64) {
    let (mut p, reg) = processor(body, Signal::Logs);
    let out = run(&mut p, logs());
    (bodies(&out), dropped(&reg, RECORDS_DROPPED))
}

#[test]
fn severity_number_min_and_undefined() {
    let (kept, n) =
        logs_after("    logs:\n      include:\n        match_type: strict\n        severity_number: {min: WARN}\n");
    assert_eq!(kept, ["slow query", "db down", "crash"]);
    assert_eq!(n, 3.0);
    let (kept, _) = logs_after(
        "    logs:\n      include:\n        match_type: strict\n        severity_number: {min: error, match_undefined: true}\n",
    );
    assert_eq!(kept, ["db down", "no severity", "crash"]);
}

#[test]
fn severity_texts_strict_and_regexp() {
    let (kept, n) =
        logs_after("    logs:\n      exclude:\n        match_type: strict\n        severity_texts: [DEBUG, INFO]\n");
    assert_eq!(kept, ["slow query", "db down", "no severity", "crash"]);
    assert_eq!(n, 2.0);
    let (kept, _) =
        logs_after("    logs:\n      include:\n        match_type: regexp\n        severity_texts: [\"^(ERR|FAT)\"]\n");
    assert_eq!(kept, ["db down", "crash"]);
}

#[test]
fn bodies_strict_and_regexp() {
    let (kept, _) =
        logs_after("    logs:\n      exclude:\n        match_type: strict\n        bodies: [GET /health 200]\n");
    assert_eq!(kept, ["cache miss", "slow query", "db down", "no severity", "crash"]);
    let (kept, n) =
        logs_after("    logs:\n      exclude:\n        match_type: regexp\n        bodies: [health, \"^c\"]\n");
    assert_eq!(kept, ["slow query", "db down", "no severity"]);
    assert_eq!(n, 3.0);
}

#[test]
fn record_and_resource_attributes() {
    let (kept, _) =
        logs_after("    logs:\n      include:\n        match_type: strict\n        record_attributes: [{key: user}]\n");
    assert_eq!(kept, ["cache miss", "slow query"]);
    let (kept, _) = logs_after(
        "    logs:\n      include:\n        match_type: strict\n        record_attributes: [{key: code, value: 7}]\n",
    );
    assert_eq!(kept, ["db down"]);
    let (kept, n) = logs_after(
        "    logs:\n      exclude:\n        match_type: regexp\n        resource_attributes: [{key: service.name, value: \"^w\"}]\n",
    );
    assert_eq!(kept, ["cache miss", "GET /health 200", "slow query", "db down"]);
    assert_eq!(n, 2.0);
}

#[test]
fn logs_include_and_exclude() {
    let (kept, n) = logs_after(
        "    logs:\n      include:\n        match_type: strict\n        resource_attributes: [{key: service.name, value: api}]\n      exclude:\n        match_type: strict\n        severity_number: {min: ERROR}\n        severity_texts: [ERROR]\n",
    );
    assert_eq!(kept, ["cache miss", "GET /health 200", "slow query"]);
    assert_eq!(n, 3.0);
}

// ----------------------------------------------------------------- config

#[test]
fn config_errors_carry_path_and_hint() {
    let cases: &[(&str, &str, &str)] = &[
        ("    spans:\n      exclude:\n        match_type: regex\n        span_names: [a]\n", "processors::filter::spans::exclude::match_type", "did you mean \"regexp\"?"),
        ("    spans:\n      exclude:\n        span_names: [a]\n", "processors::filter::spans::exclude::match_type", "match_type is required"),
        ("    spans:\n      exclude:\n        match_type: regexp\n        span_names: [ok, \"(\"]\n", "processors::filter::spans::exclude::span_names::1", "invalid regular expression \"(\""),
        ("    spans:\n      include:\n        match_type: strict\n        span_kinds: [SPAN_KIND_SERVR]\n", "processors::filter::spans::include::span_kinds::0", "did you mean \"SPAN_KIND_SERVER\"?"),
        ("    spans:\n      include:\n        match_type: strict\n        status_codes: [STATUS_CODE_EROR]\n", "processors::filter::spans::include::status_codes::0", "did you mean \"STATUS_CODE_ERROR\"?"),
        ("    logs:\n      include:\n        match_type: strict\n        severity_number: {min: WARNN}\n", "processors::filter::logs::include::severity_number::min", "did you mean \"WARN\"?"),
        ("    metrics:\n      exclude:\n        match_type: regexp\n        datapoint_attributes: [{key: a, value: 5}]\n", "processors::filter::metrics::exclude::datapoint_attributes::0::value", "must be a string"),
        ("    metrics:\n      exclude:\n        match_type: expr\n        metric_names: [a]\n", "processors::filter::metrics::exclude::match_type", "not supported"),
        ("    logs:\n      exclude:\n        match_type: strict\n", "processors::filter::logs::exclude", "no properties"),
        ("    error_mode: propogate\n    logs:\n      exclude: {match_type: strict, bodies: [x]}\n", "processors::filter::error_mode", "did you mean \"propagate\"?"),
        ("    {}\n", "processors::filter", "no include or exclude block"),
    ];
    let mut failures = Vec::new();
    for (body, path, needle) in cases {
        match load(body, "traces") {
            Ok(_) => failures.push(format!("loaded but should fail: {body}")),
            Err(e) => {
                let rendered = e.to_string();
                match e.0.iter().find(|x| x.path == *path) {
                    Some(x) if x.to_string().contains(needle) => {}
                    _ => failures.push(format!("wanted {needle:?} at {path}; got:\n{rendered}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn config_accepts_the_collector_legacy_format() {
    let c = load(
        "    error_mode: ignore\n    spans:\n      include:\n        match_type: strict\n        services: [a]\n        attributes: [{key: k, value: true}, {key: n, value: 1.5}, {key: s, value: \"1\"}]\n    metrics:\n      exclude:\n        match_type: regexp\n        metric_names: [\".*\"]\n",
        "metrics",
    )
    .unwrap();
    let attrs = &c.spans.include.as_ref().unwrap().attributes;
    assert_eq!(attrs[0].value, Some(config::AttrValue::Bool(true)));
    assert_eq!(attrs[1].value, Some(config::AttrValue::Double(1.5)));
    assert_eq!(attrs[2].value, Some(config::AttrValue::String("1".into())));
    assert!(load("    spans:\n      exclude:\n        match_type: strict\n        span_name: [a]\n", "traces").is_err());
}
