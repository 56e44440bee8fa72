use super::context::{ContextKind, EvalCtx};
use super::*;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

const TRACES: &[ContextKind] = &[ContextKind::Resource, ContextKind::Scope, ContextKind::Span, ContextKind::SpanEvent];

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Av::StringValue(v.into())) })
}
fn i(v: i64) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Av::IntValue(v)) })
}
fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue { key: k.into(), value: v, ..Default::default() }
}
fn get<'a>(attrs: &'a [KeyValue], k: &str) -> Option<&'a Av> {
    attrs.iter().find(|a| a.key == k).and_then(|a| a.value.as_ref()).and_then(|v| v.value.as_ref())
}

struct Item {
    resource: Option<Resource>,
    scope: Option<InstrumentationScope>,
    span: Span,
}

fn item() -> Item {
    Item {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s("checkout")), kv("host.name", s("h1"))],
            ..Default::default()
        }),
        scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
        span: Span {
            name: "GET /users/123".into(),
            kind: 2,
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_500_000_000,
            attributes: vec![
                kv("http.method", s("GET")),
                kv("http.status_code", i(500)),
                kv("process.command_line", s("run --password=secret --x")),
                kv("empty", None),
            ],
            ..Default::default()
        },
    }
}

fn run(it: &mut Item, stmts: &[&str]) -> Result<(), EvalError> {
    for text in stmts {
        let st = Statement::compile(text, Some(ContextKind::Span), TRACES, Limits::default())
            .unwrap_or_else(|e| panic!("{text}: {e} ({:?})", e.hint));
        let mut ctx = EvalCtx {
            resource: Some(&mut it.resource),
            scope: Some(&mut it.scope),
            span: Some(&mut it.span),
            ..Default::default()
        };
        st.execute(&mut ctx)?;
    }
    Ok(())
}

fn cond(it: &mut Item, text: &str) -> Result<bool, EvalError> {
    let c = Condition::compile(text, Some(ContextKind::Span), TRACES, Limits::default())
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let ctx = EvalCtx {
        resource: Some(&mut it.resource),
        scope: Some(&mut it.scope),
        span: Some(&mut it.span),
        ..Default::default()
    };
    c.eval(&ctx)
}

fn compile_err(text: &str) -> OttlError {
    Statement::compile(text, Some(ContextKind::Span), TRACES, Limits::default()).expect_err(text)
}

#[test]
fn set_with_where_on_resource_attributes() {
    let mut it = item();
    run(
        &mut it,
        &[
            r#"set(attributes["env"], "prod") where resource.attributes["service.name"] == "checkout""#,
            r#"set(attributes["skipped"], "x") where resource.attributes["service.name"] == "other""#,
            r#"set(name, Concat([name, kind.string], "|"))"#,
            r#"set(status.code, STATUS_CODE_ERROR) where attributes["http.status_code"] >= 500"#,
        ],
    )
    .unwrap();
    assert_eq!(get(&it.span.attributes, "env"), Some(&Av::StringValue("prod".into())));
    assert_eq!(get(&it.span.attributes, "skipped"), None);
    assert_eq!(it.span.name, "GET /users/123|Server");
    assert_eq!(it.span.status.as_ref().map(|s| s.code), Some(2));
}

#[test]
fn rename_is_set_then_delete() {
    let mut it = item();
    run(
        &mut it,
        &[
            r#"set(attributes["http.request.method"], attributes["http.method"])"#,
            r#"delete_key(attributes, "http.method")"#,
        ],
    )
    .unwrap();
    assert_eq!(get(&it.span.attributes, "http.request.method"), Some(&Av::StringValue("GET".into())));
    assert_eq!(get(&it.span.attributes, "http.method"), None);
    // Setting nil (a missing key) changes nothing.
    run(&mut it, &[r#"set(attributes["x"], attributes["missing"])"#]).unwrap();
    assert_eq!(get(&it.span.attributes, "x"), None);
}

#[test]
fn readme_basic_trace_statements() {
    let mut it = item();
    run(
        &mut it,
        &[
            r#"keep_keys(attributes, ["service.name", "service.namespace", "cloud.region", "process.command_line"])"#,
            r#"replace_pattern(attributes["process.command_line"], "password\\=[^\\s]*(\\s?)", "password=***")"#,
            "limit(attributes, 100, [])",
            "truncate_all(attributes, 4096)",
        ],
    )
    .unwrap();
    assert_eq!(it.span.attributes.len(), 1);
    assert_eq!(
        get(&it.span.attributes, "process.command_line"),
        Some(&Av::StringValue("run --password=***--x".into()))
    );
}

#[test]
fn limit_keeps_priority_keys_first() {
    let mut it = item();
    run(&mut it, &[r#"limit(attributes, 2, ["empty"])"#]).unwrap();
    let keys: Vec<&str> = it.span.attributes.iter().map(|k| k.key.as_str()).collect();
    // "empty" counts first; then the first other key in order fills the limit.
    assert_eq!(keys, ["http.method", "empty"]);
    assert!(compile_err(r#"limit(attributes, 0, [])"#).message.contains("cannot be less than 1"));
    assert!(compile_err(r#"limit(attributes, 1, ["a", "b"])"#).message.contains("number of priority attributes 2"));
}

#[test]
fn conditions_compare_as_the_collector() {
    let mut it = item();
    assert!(cond(&mut it, r#"name == "GET /users/123" and kind == SPAN_KIND_SERVER"#).unwrap());
    assert!(cond(&mut it, r#"attributes["http.status_code"] == 500.0"#).unwrap());
    assert!(!cond(&mut it, r#"attributes["http.status_code"] == "500""#).unwrap());
    assert!(cond(&mut it, r#"attributes["http.status_code"] != "500""#).unwrap());
    assert!(cond(&mut it, r#"attributes["missing"] == nil"#).unwrap());
    assert!(cond(&mut it, r#"not (attributes["missing"] != nil) or false"#).unwrap());
    assert!(cond(&mut it, r#"IsMatch(name, "^GET /users/[0-9]+$")"#).unwrap());
    assert!(cond(&mut it, r#"end_time - start_time > Duration("400ms")"#).unwrap());
    assert!(cond(&mut it, r#"end_time_unix_nano - start_time_unix_nano == 500000000"#).unwrap());
    assert!(cond(&mut it, r#"(1 + 2) * 3 == 9 and 7 / 2 == 3"#).unwrap());
    assert!(cond(&mut it, r#"trace_id.string == "01010101010101010101010101010101""#).unwrap());
    assert!(cond(&mut it, r#"span_id == SpanID(0x0202020202020202)"#).unwrap());
    assert!(cond(&mut it, r#"instrumentation_scope.name == "lib" and scope.name == "lib""#).unwrap());
    assert!(cond(&mut it, r#"Len(attributes) == 4 and Split("a,b", ",")[1] == "b""#).unwrap());
    // A converter that does not return a bool in a condition is an error.
    assert!(cond(&mut it, r#"String(name)"#).is_err());
    // Math on mismatched types is an error, not a panic.
    assert!(cond(&mut it, r#"name + 1 == 2"#).is_err());
    assert!(cond(&mut it, r#"1 / 0 == 2"#).is_err());
}

#[test]
fn converters() {
    let mut it = item();
    run(
        &mut it,
        &[
            r#"set(attributes["lower"], ToLowerCase(attributes["http.method"]))"#,
            r#"set(attributes["snake"], ConvertCase("HelloWorld", "snake"))"#,
            r#"set(attributes["int"], Int("42"))"#,
            r#"set(attributes["dbl"], Double(attributes["http.status_code"]))"#,
            r#"set(attributes["str"], String(attributes["http.status_code"]))"#,
            r#"set(attributes["sub"], Substring(name, 4, 6))"#,
            r#"set(attributes["sha"], SHA256("abc"))"#,
            r#"set(attributes["json"], ParseJSON("{\"a\": {\"b\": 1}}"))"#,
            r#"set(attributes["ex"], ExtractPatterns(name, "^(?P<method>\\w+) (?P<path>.*)$"))"#,
            r#"set(attributes["hex"], Hex(span_id))"#,
            r#"set(attributes["ms"], UnixMilli(start_time))"#,
            r#"set(attributes["nested"]["deep"], "v")"#,
        ],
    )
    .unwrap();
    let a = &it.span.attributes;
    assert_eq!(get(a, "lower"), Some(&Av::StringValue("get".into())));
    assert_eq!(get(a, "snake"), Some(&Av::StringValue("hello_world".into())));
    assert_eq!(get(a, "int"), Some(&Av::IntValue(42)));
    assert_eq!(get(a, "dbl"), Some(&Av::DoubleValue(500.0)));
    assert_eq!(get(a, "str"), Some(&Av::StringValue("500".into())));
    assert_eq!(get(a, "sub"), Some(&Av::StringValue("/users".into())));
    // sha256("abc"), from FIPS 180-2's example.
    assert_eq!(
        get(a, "sha"),
        Some(&Av::StringValue("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()))
    );
    let Some(Av::KvlistValue(json)) = get(a, "json") else { panic!("{a:?}") };
    let Some(Av::KvlistValue(inner)) = get(&json.values, "a") else { panic!() };
    // encoding/json reads numbers as float64.
    assert_eq!(get(&inner.values, "b"), Some(&Av::DoubleValue(1.0)));
    let Some(Av::KvlistValue(ex)) = get(a, "ex") else { panic!() };
    assert_eq!(get(&ex.values, "method"), Some(&Av::StringValue("GET".into())));
    assert_eq!(get(&ex.values, "path"), Some(&Av::StringValue("/users/123".into())));
    assert_eq!(get(a, "hex"), Some(&Av::StringValue("0202020202020202".into())));
    assert_eq!(get(a, "ms"), Some(&Av::IntValue(1000)));
    let Some(Av::KvlistValue(n)) = get(a, "nested") else { panic!() };
    assert_eq!(get(&n.values, "deep"), Some(&Av::StringValue("v".into())));
    // Substring out of range: an error at run time.
    assert!(run(&mut it, &[r#"set(attributes["x"], Substring(name, 10, 100))"#]).is_err());
}

#[test]
fn map_editors() {
    let mut it = item();
    run(
        &mut it,
        &[
            r#"set(attributes["m"], {"a": {"b": "c"}, "l": [1, 2]})"#,
            r#"flatten(attributes["m"], "p")"#,
            r#"merge_maps(attributes, {"http.method": "POST", "new": 1}, "insert")"#,
            r#"delete_matching_keys(attributes, "^process\\.")"#,
            r#"replace_all_matches(attributes, "G*", "verb")"#,
            r#"replace_all_patterns(attributes, "key", "^http\\.", "h.")"#,
            r#"append(attributes["list"], "a")"#,
            r#"append(attributes["list"], values = ["b", "c"])"#,
        ],
    )
    .unwrap();
    let a = &it.span.attributes;
    let Some(Av::KvlistValue(m)) = get(a, "m") else { panic!("{a:?}") };
    let keys: Vec<&str> = m.values.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["p.a.b", "p.l.0", "p.l.1"]);
    assert_eq!(get(a, "h.method"), Some(&Av::StringValue("verb".into())), "{a:?}");
    assert_eq!(get(a, "new"), Some(&Av::IntValue(1)));
    assert_eq!(get(a, "process.command_line"), None);
    let Some(Av::ArrayValue(l)) = get(a, "list") else { panic!() };
    assert_eq!(l.values.len(), 3);
    // A map editor on a non-map is a run-time error.
    assert!(run(&mut it, &[r#"delete_key(attributes["new"], "x")"#]).is_err());
}

#[test]
fn replace_with_hash_function_and_format() {
    let mut it = item();
    run(&mut it, &[r#"replace_pattern(name, "^GET (.*)$", "$1", SHA256, "path:%s")"#]).unwrap();
    // sha256("/users/123")
    assert!(it.span.name.starts_with("path:") && it.span.name.len() == 5 + 64, "{}", it.span.name);
    run(&mut it, &[r#"replace_match(attributes["http.method"], "G?T", "read")"#]).unwrap();
    assert_eq!(get(&it.span.attributes, "http.method"), Some(&Av::StringValue("read".into())));
}

#[test]
fn parse_errors_name_the_column_and_a_hint() {
    let e = compile_err(r#"set(attributes["a"], "b") whre name == "x""#);
    assert_eq!(e.column, 27, "{e}");
    let e = compile_err(r#"sett(attributes["a"], "b")"#);
    assert_eq!(e.message, "unknown editor `sett`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `set`?"));
    assert_eq!(e.column, 1);
    let e = compile_err(r#"set(attributes["a"], Concatt(["a"], ""))"#);
    assert!(e.hint.as_deref().unwrap_or("").contains("`Concat`"), "{e:?}");
    assert_eq!(e.column, 22);
    let e = compile_err(r#"set(atributes["a"], "b")"#);
    assert!(e.message.contains("unknown path `atributes`"), "{e}");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"attributes\"?"));
    let e = compile_err(r#"set(attributes["a"], 'b')"#);
    assert_eq!(e.hint.as_deref(), Some("strings are written in double quotes"));
    let e = compile_err(r#"set(attributes["a"], "b") where name"#);
    assert!(e.message.contains("is a value, not a condition"), "{e}");
    let e = compile_err(r#"set(attributes["a"], "unterminated)"#);
    assert!(e.message.contains("not closed"));
    let e = compile_err(r#"set(attributes["a"]) where 1 < 2 < 3"#);
    assert!(e.message.contains("needs its `value`") || e.message.contains("do not chain"), "{e}");
    let e = compile_err(r#"set(log.body, "x")"#);
    assert!(e.message.contains("cannot be used in the span context"), "{e}");
    let e = compile_err(r#"set(attributes["a"], SPAN_KIND_SERVR)"#);
    assert_eq!(e.hint.as_deref(), Some("did you mean \"SPAN_KIND_SERVER\"?"));
    let e = compile_err(r#"IsMatch(name, "a")"#);
    assert!(e.message.contains("is a converter"), "{e}");
    let e = compile_err(r#"set(attributes["a"], "\d")"#);
    assert!(e.message.contains("unknown escape"), "{e}");
}

#[test]
fn deep_and_long_input_is_refused_before_work() {
    let deep = format!("set(attributes[\"a\"], {}1{})", "(".repeat(10_000), ")".repeat(10_000));
    let e = Statement::compile(&deep, Some(ContextKind::Span), TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("statement is") || e.message.contains("nested"), "{e}");
    let deep = format!("set(attributes[\"a\"], {}1{})", "(".repeat(100), ")".repeat(100));
    let e = Statement::compile(&deep, Some(ContextKind::Span), TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("nested more than 64 levels"), "{e}");
    // A long chain is a deep tree: bounded by the operator count.
    let chain = format!("{}1 == 1", "1 + ".repeat(3000));
    let e = Condition::compile(&chain, Some(ContextKind::Span), TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("more than 512 operators"), "{e}");
    let ors = vec!["name == \"x\""; 200].join(" or ");
    assert!(Condition::compile(&ors, Some(ContextKind::Span), TRACES, Limits::default()).is_ok());
    let nots = format!("{}true", "not ".repeat(1000));
    assert!(Condition::compile(&nots, Some(ContextKind::Span), TRACES, Limits::default()).is_err());
    let huge = r#"IsMatch(name, "(a{1000}){1000}")"#;
    let e = Condition::compile(huge, Some(ContextKind::Span), TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("compiles to more than"), "{e}");
}

#[test]
fn flat_form_infers_the_deepest_context() {
    let st = Statement::compile(
        r#"set(span.attributes["x"], "y") where resource.attributes["a"] == "b""#,
        None,
        TRACES,
        Limits::default(),
    )
    .unwrap();
    assert_eq!(st.context, ContextKind::Span);
    let st = Statement::compile(r#"set(resource.attributes["x"], "y")"#, None, TRACES, Limits::default()).unwrap();
    assert_eq!(st.context, ContextKind::Resource);
    let st = Statement::compile(r#"set(spanevent.name, span.name)"#, None, TRACES, Limits::default()).unwrap();
    assert_eq!(st.context, ContextKind::SpanEvent);
    let e = Statement::compile(r#"set(attributes["x"], "y")"#, None, TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("does not name its context"), "{e}");
    let e = Statement::compile(r#"set(log.attributes["x"], "y")"#, None, TRACES, Limits::default()).unwrap_err();
    assert!(e.message.contains("not available here"), "{e}");
}

#[test]
fn log_body_paths() {
    let mut rec = LogRecord { body: s("request failed"), ..Default::default() };
    let mut res = None;
    let logs = &[ContextKind::Resource, ContextKind::Scope, ContextKind::Log];
    for text in [
        r#"set(severity_text, "FAIL") where body == "request failed""#,
        r#"set(attributes["len"], Len(body))"#,
        r#"set(body, {"object": "x"})"#,
        r#"set(attributes["obj"], body["object"]) where IsMap(body) and body["object"] != nil"#,
    ] {
        let st = Statement::compile(text, Some(ContextKind::Log), logs, Limits::default()).unwrap();
        let mut ctx = EvalCtx { resource: Some(&mut res), log: Some(&mut rec), ..Default::default() };
        st.execute(&mut ctx).unwrap();
    }
    assert_eq!(rec.severity_text, "FAIL");
    assert_eq!(get(&rec.attributes, "len"), Some(&Av::IntValue(14)));
    assert_eq!(get(&rec.attributes, "obj"), Some(&Av::StringValue("x".into())));
}

#[test]
fn never_panics_on_odd_text() {
    for text in [
        "",
        "(",
        ")",
        "set(",
        "set()",
        "set(,)",
        "set(a b)",
        "set(attributes[)",
        "set(attributes[\"a\"]",
        "0x",
        "0xz",
        "set(attributes[\"a\"], 0x1)",
        "set(attributes[\"a\"], -)",
        "set(attributes[\"a\"], --1)",
        "\"",
        "\\",
        "set(attributes[\"a\"], {\"a\":})",
        "set(attributes[\"a\"], [1,])",
        "set(name, 99999999999999999999)",
        "set(name, \"\\u12\")",
        "set(name, 1.2.3)",
        "ünïcödé(",
        "set(cache[\"a\"], 1) where",
        "x.y.z(",
        "set(attributes[\"a\"][0][\"b\"], 1)",
        "set(trace_id.string.x, 1)",
    ] {
        let _ = Statement::compile(text, Some(ContextKind::Span), TRACES, Limits::default());
        let _ = Statement::compile(text, None, TRACES, Limits::default());
        let _ = Condition::compile(text, Some(ContextKind::Span), TRACES, Limits::default());
    }
}

/// A small in-tree fuzzer: the fuzz seeds, mutated at random with OTTL's
/// own characters and words, through the fuzz entry point (compile, then
/// run what compiles). `cargo fuzz run ottl` explores further.
#[test]
fn mutated_statements_never_panic() {
    use rand::{Rng, SeedableRng};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ottl");
    let seeds: Vec<Vec<u8>> =
        std::fs::read_dir(dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(!seeds.is_empty());
    let pieces: &[&[u8]] = &[
        b"(",
        b")",
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b"\"",
        b"\\",
        b".",
        b" and ",
        b" or ",
        b"not ",
        b" where ",
        b"==",
        b"<",
        b"-",
        b"*",
        b"/",
        b"0x",
        b"1.5",
        b"nil",
        b"attributes",
        b"[\"k\"]",
        b"[0]",
        b"Concat(",
        b"set(",
        b"SPAN_KIND_SERVER",
        b"cache",
        b"resource.",
        b"span.",
        b"\xc3\xa9",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    for _ in 0..20_000 {
        let mut s = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(1..=s.len().max(1));
            match rng.random_range(0..3) {
                0 => {
                    let p = pieces[rng.random_range(0..pieces.len())];
                    s.splice(at.min(s.len())..at.min(s.len()), p.iter().copied());
                }
                1 if at < s.len() => {
                    let end = (at + rng.random_range(1..8)).min(s.len());
                    s.drain(at..end);
                }
                _ if at < s.len() => s[at] = rng.random(),
                _ => {}
            }
        }
        s[0] = rng.random();
        crate::fuzz_targets::ottl(&s);
    }
}

#[test]
fn time_converter_reads_and_sets_times() {
    let mut rec = LogRecord { body: s("2023-05-26 12:34:56.123"), ..Default::default() };
    let logs = &[ContextKind::Resource, ContextKind::Scope, ContextKind::Log];
    let st = Statement::compile(
        r#"set(time, Time(body, "%Y-%m-%d %H:%M:%S.%L")) where IsString(body)"#,
        Some(ContextKind::Log),
        logs,
        Limits::default(),
    )
    .unwrap();
    st.execute(&mut EvalCtx { log: Some(&mut rec), ..Default::default() }).unwrap();
    assert_eq!(rec.time_unix_nano, 1_685_104_496_123_000_000);
    let e = Statement::compile(r#"set(time, Time(body, "%Q"))"#, Some(ContextKind::Log), logs, Limits::default());
    assert!(e.unwrap_err().message.contains("unsupported directive %Q"));
    // The Collector's func_time examples with a location: the wall-clock
    // time in that zone. 2023-05-26 12:34:56 in Paris (CEST, +2) is 10:34:56 UTC.
    let compile = |text: &str| Statement::compile(text, Some(ContextKind::Log), logs, Limits::default());
    let mut rec = LogRecord { body: s("2023-05-26 12:34:56"), ..Default::default() };
    compile(r#"set(time, Time(body, "%Y-%m-%d %H:%M:%S", "Europe/Paris"))"#)
        .unwrap()
        .execute(&mut EvalCtx { log: Some(&mut rec), ..Default::default() })
        .unwrap();
    assert_eq!(rec.time_unix_nano, 1_685_097_296_000_000_000);
    // Named argument, and "en" as the locale; "UTC" and "" are UTC.
    for text in [
        r#"set(time, Time(body, "%Y-%m-%d %H:%M:%S", location="Asia/Tokyo", locale="en"))"#,
        r#"set(time, Time(body, "%Y-%m-%d %H:%M:%S", "UTC"))"#,
        r#"set(time, Time(body, "%Y-%m-%d %H:%M:%S", ""))"#,
    ] {
        let mut rec = LogRecord { body: s("2023-05-26 12:34:56"), ..Default::default() };
        compile(text).unwrap().execute(&mut EvalCtx { log: Some(&mut rec), ..Default::default() }).unwrap();
        let want = if text.contains("Tokyo") { 1_685_072_096_000_000_000 } else { 1_685_104_496_000_000_000 };
        assert_eq!(rec.time_unix_nano, want, "{text}");
    }
    // Refused when compiled: an unknown zone, a non-literal, a locale other than English.
    let e = compile(r#"set(time, Time(body, "%F", "Europe/Pariss"))"#).unwrap_err();
    assert_eq!(e.column, 28, "{e}");
    assert!(e.message.starts_with("unknown location \"Europe/Pariss\""), "{e}");
    assert_eq!(e.hint.as_deref(), Some("an IANA time zone name (America/New_York, Europe/Berlin), UTC or Local"));
    let e = compile(r#"set(time, Time(body, "%F", "../../etc/passwd"))"#).unwrap_err();
    assert!(e.message.contains("not a zone name"), "{e}");
    let e = compile(r#"set(time, Time(body, "%F", attributes["tz"]))"#).unwrap_err();
    assert!(e.message.contains("`Time`'s `location` must be a literal string"), "{e}");
    let e = compile(r#"set(time, Time(body, "%F", "UTC", "fr"))"#).unwrap_err();
    assert_eq!(e.message, "locale \"fr\" is not supported");
}
