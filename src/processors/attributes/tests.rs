use super::actions::{sha256_hex, ActionConfig, Actions};
use super::*;
use crate::config::{de::from_node, node::parse};
use crate::data::Signal;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A typed attribute value, for short expectations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    S(&'static str),
    Owned(String),
    I(i64),
    D(f64),
    B(bool),
}

pub(crate) fn kv(key: &str, v: V) -> KeyValue {
    let value = match v {
        V::S(s) => Value::StringValue(s.to_string()),
        V::Owned(s) => Value::StringValue(s),
        V::I(i) => Value::IntValue(i),
        V::D(d) => Value::DoubleValue(d),
        V::B(b) => Value::BoolValue(b),
    };
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

pub(crate) fn attrs(pairs: &[(&str, V)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v.clone())).collect()
}

/// Parses an action list written as YAML (the `actions:` value).
pub(crate) fn actions_of(yaml: &str) -> Vec<ActionConfig> {
    let node = parse(yaml).unwrap().unwrap();
    from_node(&node, "actions").unwrap()
}

fn compiled(yaml: &str) -> Actions {
    let (a, errors) = Actions::compile(&actions_of(yaml));
    assert!(errors.is_empty(), "{errors:?}");
    a
}

/// Applies `yaml` to `input` and returns the result.
fn run(yaml: &str, input: &[(&str, V)]) -> Vec<KeyValue> {
    let mut a = attrs(input);
    compiled(yaml).apply(&mut a);
    a
}

fn errors(yaml: &str) -> Vec<(usize, &'static str, String)> {
    Actions::compile(&actions_of(yaml)).1.into_iter().map(|e| (e.index, e.field, e.message)).collect()
}

#[test]
fn insert_sets_only_absent_keys_keeping_the_literal_type() {
    let yaml = "- {key: s, value: text, action: insert}\n- {key: i, value: 42, action: insert}\n\
                - {key: d, value: 1.5, action: insert}\n- {key: b, value: true, action: insert}\n\
                - {key: q, value: \"42\", action: insert}\n- {key: old, value: new, action: insert}";
    let got = run(yaml, &[("old", V::S("kept"))]);
    assert_eq!(
        got,
        attrs(&[
            ("old", V::S("kept")),
            ("s", V::S("text")),
            ("i", V::I(42)),
            ("d", V::D(1.5)),
            ("b", V::B(true)),
            ("q", V::S("42")),
        ])
    );
}

#[test]
fn update_changes_only_present_keys_in_place() {
    let yaml = "- {key: a, value: 7, action: update}\n- {key: missing, value: x, action: update}";
    assert_eq!(run(yaml, &[("a", V::S("x")), ("b", V::B(false))]), attrs(&[("a", V::I(7)), ("b", V::B(false))]));
}

#[test]
fn upsert_replaces_or_appends() {
    let yaml = "- {key: a, value: 2.5, action: upsert}\n- {key: c, value: false, action: upsert}";
    assert_eq!(
        run(yaml, &[("a", V::I(1)), ("b", V::I(2))]),
        attrs(&[("a", V::D(2.5)), ("b", V::I(2)), ("c", V::B(false))])
    );
}

#[test]
fn from_attribute_copies_the_value_with_its_type_and_skips_when_absent() {
    let yaml = "- {key: copy, from_attribute: n, action: insert}\n\
                - {key: n2, from_attribute: nope, action: upsert}\n\
                - {key: target, from_attribute: n, action: update}";
    assert_eq!(
        run(yaml, &[("n", V::I(5)), ("target", V::S("t"))]),
        attrs(&[("n", V::I(5)), ("target", V::I(5)), ("copy", V::I(5))])
    );
    // The source of insert is read before the target exists: inserting a key from itself does nothing.
    assert_eq!(run("- {key: x, from_attribute: x, action: insert}", &[]), attrs(&[]));
}

#[test]
fn delete_by_key_and_by_pattern() {
    let input = [("user.id", V::S("u")), ("user.email", V::S("e")), ("http.method", V::S("GET")), ("keep", V::I(1))];
    assert_eq!(
        run("- {key: keep, action: delete}", &input),
        attrs(&[("user.id", V::S("u")), ("user.email", V::S("e")), ("http.method", V::S("GET"))])
    );
    assert_eq!(
        run("- {pattern: ^user\\., action: delete}", &input),
        attrs(&[("http.method", V::S("GET")), ("keep", V::I(1))])
    );
    // Both: the key and every match.
    assert_eq!(run("- {key: keep, pattern: ^user\\., action: DELETE}", &input), attrs(&[("http.method", V::S("GET"))]));
}

#[test]
fn hash_is_the_collectors_sha256_of_each_type() {
    let input = [("s", V::S("alice")), ("i", V::I(42)), ("b", V::B(true)), ("d", V::D(1.5)), ("e", V::S(""))];
    let yaml = "- {key: s, action: hash}\n- {pattern: \"^[ibde]$\", action: hash}";
    let hex = |s: &'static str| V::S(s);
    assert_eq!(
        run(yaml, &input),
        attrs(&[
            ("s", hex("2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90")),
            ("i", hex("ed049108bc18f2c64369e8d0ea42850bdd1a7d1dd340cfde716315579702a76c")),
            ("b", hex("4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a")),
            ("d", hex("e163f8cb0f7067a7fc78ca859a77f849aea3214f38fb75b884e4a16be725c905")),
            // The current Collector hashes the empty string too (SHA-256 of no bytes).
            ("e", hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
        ])
    );
    // Arrays, maps, bytes and empty values are not hashed by the Collector: they become "".
    let arr = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![] })) };
    assert_eq!(sha256_hex(Some(&arr)), "");
    // Named by key and pattern: hashed twice, as the Collector does.
    let twice = run("- {key: s, pattern: ^s$, action: hash}", &[("s", V::S("alice"))]);
    let once = sha256_hex(Some(&kv("", V::S("alice")).value.unwrap()));
    assert_eq!(twice, attrs(&[("s", V::Owned(sha256_hex(Some(&kv("", V::Owned(once)).value.unwrap()))))]));
    // An absent key is left absent.
    assert_eq!(run("- {key: nope, action: hash}", &[("a", V::I(1))]), attrs(&[("a", V::I(1))]));
}

#[test]
fn extract_upserts_each_named_group_on_a_match() {
    let yaml = "- key: http.url\n  pattern: ^https?://(?P<http_host>[^/]+)/(?P<version>v\\d+)?/?(?P<path>.*)$\n  action: extract";
    assert_eq!(
        run(yaml, &[("http.url", V::S("https://api.example.com/v2/users")), ("version", V::I(1))]),
        attrs(&[
            ("http.url", V::S("https://api.example.com/v2/users")),
            ("version", V::S("v2")),
            ("http_host", V::S("api.example.com")),
            ("path", V::S("users")),
        ])
    );
    // A group that took no part in the match gives "", as Go's FindStringSubmatch.
    let got = run(yaml, &[("http.url", V::S("http://h/x"))]);
    assert_eq!(got[2], kv("version", V::S("")));
    // No match, a non-string value or no key: unchanged.
    assert_eq!(run(yaml, &[("http.url", V::S("ftp://x"))]), attrs(&[("http.url", V::S("ftp://x"))]));
    assert_eq!(run(yaml, &[("http.url", V::I(3))]), attrs(&[("http.url", V::I(3))]));
    assert_eq!(run(yaml, &[]), attrs(&[]));
}

#[test]
fn convert_to_each_type_and_leaves_failures_unchanged() {
    let to = |t: &str, v: V| {
        run(&format!("- {{key: k, action: convert, converted_type: {t}}}"), &[("k", v)]).remove(0).value.unwrap().value
    };
    let s = |x: &str| Some(Value::StringValue(x.to_string()));
    assert_eq!(to("int", V::S("123")), Some(Value::IntValue(123)));
    assert_eq!(to("int", V::S("-7")), Some(Value::IntValue(-7)));
    assert_eq!(to("int", V::S("12.5")), s("12.5"));
    assert_eq!(to("int", V::S("abc")), s("abc"));
    assert_eq!(to("int", V::D(3.9)), Some(Value::IntValue(3)));
    assert_eq!(to("int", V::B(true)), Some(Value::IntValue(1)));
    assert_eq!(to("double", V::S("2.5")), Some(Value::DoubleValue(2.5)));
    assert_eq!(to("double", V::S("x")), s("x"));
    assert_eq!(to("double", V::I(4)), Some(Value::DoubleValue(4.0)));
    assert_eq!(to("double", V::B(false)), Some(Value::DoubleValue(0.0)));
    assert_eq!(to("string", V::I(42)), s("42"));
    assert_eq!(to("string", V::D(1.5)), s("1.5"));
    assert_eq!(to("string", V::D(1e21)), s("1000000000000000000000"));
    assert_eq!(to("string", V::B(true)), s("true"));
    assert_eq!(to("string", V::S("same")), s("same"));
    let arr = KeyValue {
        key: "k".into(),
        value: Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![kv("", V::I(1)).value.unwrap(), kv("", V::S("a")).value.unwrap()],
            })),
        }),
        ..Default::default()
    };
    let mut a = vec![arr];
    compiled("- {key: k, action: convert, converted_type: string}").apply(&mut a);
    assert_eq!(a, attrs(&[("k", V::S("[1,\"a\"]"))]));
    let mut b = vec![KeyValue {
        key: "k".into(),
        value: Some(AnyValue { value: Some(Value::BytesValue(b"hi!?".to_vec())) }),
        ..Default::default()
    }];
    compiled("- {key: k, action: convert, converted_type: string}").apply(&mut b);
    assert_eq!(b, attrs(&[("k", V::S("aGkhPw=="))]));
}

#[test]
fn actions_apply_in_order() {
    // Copy, hash the original, then rename by copy + delete.
    let yaml = "- {key: raw, from_attribute: user, action: insert}\n- {key: user, action: hash}\n\
                - {key: person, from_attribute: raw, action: upsert}\n- {key: raw, action: delete}";
    assert_eq!(
        run(yaml, &[("user", V::S("alice"))]),
        attrs(&[
            ("user", V::S("2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90")),
            ("person", V::S("alice")),
        ])
    );
}

#[test]
fn invalid_actions_are_reported_with_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("- {key: a, value: 1, action: upsrt}", "action", "unknown action \"upsrt\""),
        ("- {value: 1, action: insert}", "key", "missing key"),
        ("- {action: delete}", "key", "missing key"),
        ("- {key: a, action: insert}", "", "needs one of value or from_attribute"),
        ("- {key: a, value: 1, from_attribute: b, action: upsert}", "", "exactly one of"),
        ("- {key: a, value: 1, pattern: x, action: upsert}", "pattern", "takes no pattern"),
        ("- {key: a, value: 1, action: delete}", "", "takes no value"),
        ("- {pattern: \"(\", action: delete}", "pattern", "invalid regex \"(\": error: unclosed group"),
        ("- {key: a, action: extract}", "pattern", "needs a pattern"),
        ("- {key: a, pattern: \"^(a)$\", action: extract}", "pattern", "a group without a name"),
        ("- {key: a, pattern: \"^a$\", action: extract}", "pattern", "has no groups"),
        ("- {key: a, action: convert}", "converted_type", "needs converted_type"),
        ("- {key: a, action: convert, converted_type: float}", "converted_type", "unknown converted_type \"float\""),
        ("- {key: a, action: hash, converted_type: int}", "converted_type", "takes no converted_type"),
        ("- {key: a, from_context: auth.user, action: insert}", "from_context", "not supported"),
    ];
    for (yaml, field, needle) in cases {
        let errs = errors(yaml);
        assert!(
            errs.iter().any(|(i, f, m)| *i == 0 && f == field && m.contains(needle)),
            "{yaml}: wanted {needle:?} at {field:?}, got {errs:?}"
        );
    }
    assert!(errors("- {pattern: ^tmp, action: hash}").is_empty());
}

fn processor(yaml: &str) -> AttributesProcessor {
    let ctx = ProcessorContext {
        id: "attributes".into(),
        signal: Signal::Traces,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    AttributesProcessor::new(&AttributesConfig { actions: actions_of(yaml), include: None, exclude: None }, &ctx)
        .unwrap()
}

const ACTIONS: &str = "- {key: env, value: prod, action: insert}\n- {key: secret, action: delete}\n\
                       - {key: user, action: hash}\n- {key: code, action: convert, converted_type: int}";

fn input() -> Vec<KeyValue> {
    attrs(&[("secret", V::S("s")), ("user", V::S("alice")), ("code", V::S("200"))])
}

fn expected() -> Vec<KeyValue> {
    attrs(&[
        ("user", V::S("2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90")),
        ("code", V::I(200)),
        ("env", V::S("prod")),
    ])
}

fn one(p: &mut AttributesProcessor, b: Batch) -> Batch {
    let mut out = Vec::new();
    p.process(b, Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

#[test]
fn span_attributes_are_acted_on_and_resource_is_not() {
    let mut p = processor(ACTIONS);
    let resource =
        Some(opentelemetry_proto::tonic::resource::v1::Resource { attributes: input(), ..Default::default() });
    let span = Span { name: "s".into(), attributes: input(), ..Default::default() };
    let b = Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans { spans: vec![span.clone(), span], ..Default::default() }],
            ..Default::default()
        }],
    });
    let Batch::Traces(r) = one(&mut p, b) else { panic!() };
    assert_eq!(r.resource_spans[0].resource, resource);
    for s in &r.resource_spans[0].scope_spans[0].spans {
        assert_eq!(s.attributes, expected());
    }
}

#[test]
fn log_record_attributes_are_acted_on() {
    let mut p = processor(ACTIONS);
    let rec = LogRecord { attributes: input(), ..Default::default() };
    let b = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![rec], ..Default::default() }],
            ..Default::default()
        }],
    });
    let Batch::Logs(r) = one(&mut p, b) else { panic!() };
    assert_eq!(r.resource_logs[0].scope_logs[0].log_records[0].attributes, expected());
}

#[test]
fn data_point_attributes_of_every_metric_type_are_acted_on() {
    let mut p = processor(ACTIONS);
    let num = NumberDataPoint { attributes: input(), ..Default::default() };
    let hist = HistogramDataPoint { attributes: input(), ..Default::default() };
    let metrics = vec![
        Metric {
            name: "g".into(),
            data: Some(Data::Gauge(Gauge { data_points: vec![num.clone()] })),
            ..Default::default()
        },
        Metric {
            name: "s".into(),
            data: Some(Data::Sum(Sum { data_points: vec![num.clone(), num], ..Default::default() })),
            ..Default::default()
        },
        Metric {
            name: "h".into(),
            data: Some(Data::Histogram(Histogram { data_points: vec![hist], ..Default::default() })),
            ..Default::default()
        },
    ];
    let b = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    });
    let Batch::Metrics(r) = one(&mut p, b) else { panic!() };
    let mut n = 0;
    for m in &r.resource_metrics[0].scope_metrics[0].metrics {
        match &m.data {
            Some(Data::Gauge(g)) => g.data_points.iter().for_each(|d| {
                n += 1;
                assert_eq!(d.attributes, expected())
            }),
            Some(Data::Sum(s)) => s.data_points.iter().for_each(|d| {
                n += 1;
                assert_eq!(d.attributes, expected())
            }),
            Some(Data::Histogram(h)) => h.data_points.iter().for_each(|d| {
                n += 1;
                assert_eq!(d.attributes, expected())
            }),
            _ => panic!(),
        }
    }
    assert_eq!(n, 4);
}

#[test]
fn integers_keep_their_yaml_type_and_beyond_i64_become_doubles() {
    let got =
        run("- {key: big, value: 18446744073709551615, action: insert}\n- {key: neg, value: -3, action: insert}", &[]);
    assert_eq!(got, attrs(&[("big", V::D(18446744073709551615.0)), ("neg", V::I(-3))]));
}

fn filtered(actions: &str, filter: &str) -> AttributesProcessor {
    let node = parse(filter).unwrap().unwrap();
    let mut cfg: AttributesConfig = from_node(&node, "attributes").unwrap();
    cfg.actions = actions_of(actions);
    let ctx = ProcessorContext {
        id: "attributes".into(),
        signal: Signal::Traces,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    AttributesProcessor::new(&cfg, &ctx).unwrap()
}

fn spans(service: &'static str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: attrs(&[("service.name", V::S(service))]),
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        ..Default::default()
    }
}

fn span(name: &str, a: &[(&str, V)]) -> Span {
    Span { name: name.into(), attributes: attrs(a), ..Default::default() }
}

/// (span name, whether the `hit` attribute was set) for every span.
fn hits(p: &mut AttributesProcessor, rs: Vec<ResourceSpans>) -> Vec<(String, bool)> {
    let Batch::Traces(r) = one(p, Batch::Traces(ExportTraceServiceRequest { resource_spans: rs })) else { panic!() };
    r.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| (s.name.clone(), s.attributes.iter().any(|kv| kv.key == "hit")))
        .collect()
}

const HIT: &str = "- {key: hit, value: true, action: insert}";

#[test]
fn include_strict_needs_every_property_and_any_name() {
    let mut p = filtered(
        HIT,
        "include:\n  match_type: strict\n  services: [api, web]\n  span_names: [GET, POST]\n  attributes:\n    - {key: code, value: 500}\n",
    );
    let got = hits(
        &mut p,
        vec![
            spans(
                "api",
                vec![
                    span("GET", &[("code", V::I(500))]),
                    span("POST", &[("code", V::I(500)), ("x", V::B(true))]),
                    span("PUT", &[("code", V::I(500))]),
                    // Strict compares the type too: "500" is not 500.
                    span("GET", &[("code", V::S("500"))]),
                    span("GET", &[]),
                ],
            ),
            spans("db", vec![span("GET", &[("code", V::I(500))])]),
        ],
    );
    let want: Vec<bool> = vec![true, true, false, false, false, false];
    assert_eq!(got.iter().map(|(_, h)| *h).collect::<Vec<_>>(), want, "{got:?}");
}

#[test]
fn exclude_regexp_and_include_together() {
    let mut p = filtered(
        HIT,
        "include:\n  match_type: regexp\n  span_names: [\"^GET \"]\nexclude:\n  match_type: regexp\n  attributes:\n    - {key: http.target, value: ^/health}\n    - {key: internal}\n",
    );
    let got = hits(
        &mut p,
        vec![spans(
            "api",
            vec![
                span("GET /users", &[("http.target", V::S("/users"))]),
                span("GET /health", &[("http.target", V::S("/healthz")), ("internal", V::B(true))]),
                // Every exclude attribute must match: this one lacks `internal`.
                span("GET /health2", &[("http.target", V::S("/health"))]),
                span("POST /users", &[]),
            ],
        )],
    );
    assert_eq!(got.iter().map(|(_, h)| *h).collect::<Vec<_>>(), vec![true, false, true, false], "{got:?}");
}

#[test]
fn properties_of_another_signal_match_nothing_and_logs_match_bodies() {
    // span_names never match a log record: include selects nothing.
    let mut p = filtered(HIT, "include:\n  match_type: strict\n  span_names: [x]\n");
    let rec = |body: &str, sev: &str| LogRecord {
        body: Some(AnyValue { value: Some(Value::StringValue(body.into())) }),
        severity_text: sev.into(),
        ..Default::default()
    };
    let logs = |recs: Vec<LogRecord>| {
        Batch::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: recs, ..Default::default() }],
                ..Default::default()
            }],
        })
    };
    let hit_flags = |b: Batch| -> Vec<bool> {
        let Batch::Logs(r) = b else { panic!() };
        r.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .map(|r| r.attributes.iter().any(|kv| kv.key == "hit"))
            .collect()
    };
    assert_eq!(hit_flags(one(&mut p, logs(vec![rec("x", "INFO")]))), vec![false]);
    let mut p =
        filtered(HIT, "include:\n  match_type: regexp\n  log_bodies: [timeout]\n  log_severity_texts: [ERROR|WARN]\n");
    let b = logs(vec![rec("db timeout after 3s", "ERROR"), rec("db timeout", "INFO"), rec("ok", "WARN")]);
    assert_eq!(hit_flags(one(&mut p, b)), vec![true, false, false]);
}

#[test]
fn metric_names_select_data_points() {
    let mut p = filtered(HIT, "exclude:\n  match_type: strict\n  metric_names: [skip.me]\n");
    let num = NumberDataPoint::default();
    let gauge = |name: &str| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![num.clone()] })),
        ..Default::default()
    };
    let b = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge("keep"), gauge("skip.me")], ..Default::default() }],
            ..Default::default()
        }],
    });
    let Batch::Metrics(r) = one(&mut p, b) else { panic!() };
    let flags: Vec<bool> = r.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points[0].attributes.iter().any(|kv| kv.key == "hit"),
            _ => panic!(),
        })
        .collect();
    assert_eq!(flags, vec![true, false]);
}

#[test]
fn invalid_match_properties_are_reported() {
    use super::matcher::{MatchConfig, Matcher};
    let errs = |yaml: &str| -> Vec<(Vec<String>, String)> {
        let node = parse(yaml).unwrap().unwrap();
        let m: MatchConfig = from_node(&node, "include").unwrap();
        Matcher::compile(&m).err().unwrap_or_default().into_iter().map(|e| (e.path, e.message)).collect()
    };
    let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(errs("services: [a]")[0].0, p(&["match_type"]));
    assert!(errs("match_type: regex\nservices: [a]")[0].1.contains("unknown match_type \"regex\""));
    assert_eq!(errs("match_type: regexp\nspan_names: [ok, \"(\"]")[0].0, p(&["span_names", "1"]));
    assert_eq!(errs("match_type: regexp\nattributes: [{key: a, value: 5}]")[0].0, p(&["attributes", "0", "value"]));
    assert!(errs("match_type: strict")[0].1.contains("no property to match on"));
    assert!(errs("match_type: strict\nattributes: [{key: a, value: 5}]").is_empty());
}

#[test]
fn sequence_and_mapping_values_become_arrays_and_maps() {
    use opentelemetry_proto::tonic::common::v1::KeyValueList;
    let got = run(
        "- {key: a, value: [1, x, true, null], action: insert}\n- {key: m, value: {n: 2.5, s: y}, action: insert}",
        &[],
    );
    let any = |v: V| kv("", v).value.unwrap();
    let arr = AnyValue {
        value: Some(Value::ArrayValue(ArrayValue {
            values: vec![any(V::I(1)), any(V::S("x")), any(V::B(true)), AnyValue { value: None }],
        })),
    };
    let map = AnyValue {
        value: Some(Value::KvlistValue(KeyValueList { values: vec![kv("n", V::D(2.5)), kv("s", V::S("y"))] })),
    };
    let expect = vec![
        KeyValue { key: "a".into(), value: Some(arr), ..Default::default() },
        KeyValue { key: "m".into(), value: Some(map), ..Default::default() },
    ];
    assert_eq!(got, expect);
}
