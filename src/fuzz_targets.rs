//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the
//! regression test that replays their findings (`tests/fuzz_regressions.rs`),
//! so a crash found by the fuzzer is replayed by exactly the same code.
//!
//! Each takes arbitrary bytes and must return without panicking.

use crate::data::Signal;
use crate::receivers::otlp::{decode_body, decode_grpc, decode_http, Compression, Format};

const LIMIT: usize = 4 * 1024 * 1024;

fn signal_from(byte: u8) -> Signal {
    Signal::ALL[(byte % 3) as usize]
}

/// The YAML config loader, with a fixed environment.
pub fn config_load(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |k: &str| if k == "SET" { Some("4317".to_string()) } else { None };
        let _ = crate::service::load::load_with_memory(text, &env, Some(8 << 30));
    }
}

/// A gRPC Export message (after unframing); first byte picks the signal.
pub fn otlp_grpc(data: &[u8]) {
    if let Some((first, rest)) = data.split_first() {
        let _ = decode_grpc(signal_from(*first), rest);
    }
}

/// An OTLP/HTTP protobuf body; first byte picks the signal.
pub fn otlp_http_protobuf(data: &[u8]) {
    if let Some((first, rest)) = data.split_first() {
        let _ = decode_http(signal_from(*first), Some("application/x-protobuf"), None, rest, LIMIT);
    }
}

/// An OTLP/HTTP JSON body; first byte picks the signal.
pub fn otlp_http_json(data: &[u8]) {
    if let Some((first, rest)) = data.split_first() {
        let _ = decode_http(signal_from(*first), Some("application/json"), None, rest, LIMIT);
    }
}

/// A gzip body: odd first byte feeds the bytes as they are (arbitrary gzip
/// streams), even first byte gzips them first so the decoders behind gzip see
/// arbitrary protobuf or JSON.
pub fn otlp_http_gzip(data: &[u8]) {
    use std::io::Write;
    let Some((first, rest)) = data.split_first() else { return };
    let signal = signal_from(*first >> 2);
    let format = if first & 2 == 0 { Format::Protobuf } else { Format::Json };
    if first & 1 == 1 {
        let _ = decode_body(signal, format, Compression::Gzip, rest, LIMIT);
    } else {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(rest).is_ok() {
            if let Ok(body) = enc.finish() {
                let _ = decode_body(signal, format, Compression::Gzip, &body, LIMIT);
            }
        }
    }
}

/// A body of every other encoding the receiver takes (zstd, zlib, snappy,
/// x-snappy-framed, lz4): the first byte's low 3 bits pick it; bit 3 set
/// feeds the bytes as they are (arbitrary compressed streams), clear
/// compresses them first so the protobuf decoder sees arbitrary messages.
pub fn otlp_http_decompress(data: &[u8]) {
    use crate::exporters::otlp_common::{Compression as C, CompressionParams, Encoder, Transport};
    let Some((first, rest)) = data.split_first() else { return };
    let signal = signal_from(*first >> 4);
    let (decoding, encoding) = match first & 7 {
        0 => (Compression::Zstd, C::Zstd),
        1 => (Compression::Zlib, C::Zlib),
        2 => (Compression::Snappy, C::Snappy),
        3 => (Compression::SnappyFramed, C::SnappyFramed),
        _ => (Compression::Lz4, C::Lz4),
    };
    if first & 8 != 0 {
        let _ = decode_body(signal, Format::Protobuf, decoding, rest, LIMIT);
    } else if let Some(enc) = Encoder::new(encoding, &CompressionParams::default(), Transport::Http) {
        if let Ok(body) = enc.compress(&[rest], Vec::new(), Transport::Http) {
            let _ = decode_body(signal, Format::Protobuf, decoding, &body, LIMIT);
        }
    }
}

/// The pass-through check against a full decode: a gRPC Export message
/// (first byte picks the signal) must be accepted by `check_request` exactly
/// when prost decodes it and it passes the ID checks, with the same item
/// count; panics on any disagreement.
pub fn otlp_check(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else { return };
    let signal = signal_from(*first);
    let checked = crate::data::check::check_request(signal, rest);
    let decoded = decode_grpc(signal, rest);
    match (&checked, &decoded) {
        (Ok(items), Ok(batch)) => assert_eq!(*items, batch.item_count(), "item counts differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("check says {checked:?}, decode says {:?}", decoded.map(|b| b.item_count())),
    }
}

/// OTTL text for every context, compiled and run as the processors do.
///
/// The first byte picks the context (`% 7`: resource, scope, span,
/// spanevent, metric, datapoint, log), the form (`/ 7 % 3`: statements with
/// the context given, conditions with the context given, or the flat form
/// whose context is inferred from the path prefixes) and, for resource and
/// scope, the signal (`/ 21 % 3`). The rest is UTF-8 text, one statement or
/// condition a line (at most 8, as one group of `transform` or one list of
/// `filter` conditions). What compiles runs over a sample request of the
/// signal, through the same walker the processors use, so evaluation and
/// every editor are fuzzed too; conditions that hold drop the item, as in
/// `filter`.
pub fn ottl(data: &[u8]) {
    use crate::ottl::{compile::infer_group, walk, Condition, EvalCtx, Limits, Statement};
    let Some(OttlInput { context: ctx, form, signal, text }) = OttlInput::read(data) else { return };
    let allowed = OttlInput::allowed(signal);
    let limits = Limits::default();
    let texts: Vec<&str> = text.lines().take(8).collect();
    // The group's context and whether its paths must be prefixed, as
    // `transform` and `filter` compile them.
    let (context, prefixed) = if form == OttlForm::Flat {
        match infer_group(&texts, &[], allowed, limits) {
            Ok(c) => (c, true),
            Err(_) => match infer_group(&[], &texts, allowed, limits) {
                Ok(c) => (c, true),
                Err(_) => return,
            },
        }
    } else {
        (ctx, false)
    };
    let statements: Vec<Statement> = if form == OttlForm::Conditions {
        Vec::new()
    } else {
        texts.iter().filter_map(|t| Statement::compile_in(t, context, prefixed, limits).ok()).collect()
    };
    let conditions: Vec<Condition> = if form == OttlForm::Statements {
        Vec::new()
    } else {
        texts.iter().filter_map(|t| Condition::compile_in(t, context, prefixed, limits).ok()).collect()
    };
    if statements.is_empty() && conditions.is_empty() {
        return;
    }
    let now = 1_700_000_000_000_000_000;
    let mut visit = |eval: &mut EvalCtx| {
        for s in &statements {
            let _ = s.execute(eval);
        }
        !conditions.iter().any(|c| c.eval(eval).unwrap_or(false))
    };
    match signal {
        Signal::Traces => walk::traces(&mut fuzz_sample::traces(), context, now, &mut visit),
        Signal::Metrics => walk::metrics(&mut fuzz_sample::metrics(), context, now, &mut visit),
        Signal::Logs => walk::logs(&mut fuzz_sample::logs(), context, now, &mut visit),
    }
}

/// How [`ottl`] writes its statements: with the context given, as
/// conditions with the context given, or flat (context inferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OttlForm {
    Statements,
    Conditions,
    Flat,
}

/// An [`ottl`] input read: what its first byte names, and its text.
pub struct OttlInput<'a> {
    pub context: crate::ottl::ContextKind,
    pub form: OttlForm,
    /// The request the statements run over (resource and scope: any signal).
    pub signal: Signal,
    pub text: &'a str,
}

impl<'a> OttlInput<'a> {
    /// `None` when `data` is empty or its text is not UTF-8.
    pub fn read(data: &'a [u8]) -> Option<OttlInput<'a>> {
        use crate::ottl::ContextKind;
        const CONTEXTS: [ContextKind; 7] = [
            ContextKind::Resource,
            ContextKind::Scope,
            ContextKind::Span,
            ContextKind::SpanEvent,
            ContextKind::Metric,
            ContextKind::DataPoint,
            ContextKind::Log,
        ];
        let (first, rest) = data.split_first()?;
        let text = std::str::from_utf8(rest).ok()?;
        let context = CONTEXTS[(first % 7) as usize];
        let form = [OttlForm::Statements, OttlForm::Conditions, OttlForm::Flat][((first / 7) % 3) as usize];
        let signal = match context {
            ContextKind::Span | ContextKind::SpanEvent => Signal::Traces,
            ContextKind::Metric | ContextKind::DataPoint => Signal::Metrics,
            ContextKind::Log => Signal::Logs,
            _ => Signal::ALL[((first / 21) % 3) as usize],
        };
        Some(OttlInput { context, form, signal, text })
    }

    /// The contexts a flat group over `signal` may be inferred to, as in `transform`.
    pub fn allowed(signal: Signal) -> &'static [crate::ottl::ContextKind] {
        use crate::ottl::ContextKind;
        match signal {
            Signal::Traces => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Span, ContextKind::SpanEvent],
            Signal::Metrics => {
                &[ContextKind::Resource, ContextKind::Scope, ContextKind::Metric, ContextKind::DataPoint]
            }
            Signal::Logs => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Log],
        }
    }
}

/// Sample requests with every field OTTL reads set, for [`ottl`].
mod fuzz_sample {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value::Value as Av, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, span::Link, ResourceSpans, ScopeSpans, Span, Status};

    fn any(v: Av) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }
    fn kv(k: &str, v: Av) -> KeyValue {
        KeyValue { key: k.into(), value: any(v), ..Default::default() }
    }
    const T0: u64 = 1_700_000_000_000_000_000;

    /// Attributes of every value type, a nested map and list among them.
    fn attrs() -> Vec<KeyValue> {
        let inner = KeyValueList { values: vec![kv("a", Av::IntValue(1)), kv("b", Av::StringValue("x".into()))] };
        let list =
            ArrayValue { values: vec![any(Av::IntValue(1)).unwrap(), any(Av::StringValue("two".into())).unwrap()] };
        vec![
            kv("s", Av::StringValue("GET /user/12/list/7 password=hunter2 x".into())),
            kv("service.name", Av::StringValue("checkout".into())),
            kv("http.route", Av::StringValue("/account/1234".into())),
            kv("i", Av::IntValue(7)),
            kv("d", Av::DoubleValue(1.5)),
            kv("b", Av::BoolValue(true)),
            kv("by", Av::BytesValue(vec![0xde, 0xad])),
            kv("m", Av::KvlistValue(inner)),
            kv("l", Av::ArrayValue(list)),
            KeyValue { key: "empty".into(), value: None, ..Default::default() },
        ]
    }
    fn resource() -> Option<Resource> {
        Some(Resource { attributes: attrs(), dropped_attributes_count: 1, ..Default::default() })
    }
    fn scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: "lib".into(),
            version: "1.0".into(),
            attributes: attrs(),
            dropped_attributes_count: 1,
        })
    }

    pub fn traces() -> ExportTraceServiceRequest {
        let span = |name: &str, kind: i32, code: i32| Span {
            name: name.into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            trace_state: "ot=th:8".into(),
            kind,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 5_000_000,
            attributes: attrs(),
            events: vec![
                Event {
                    name: "exception".into(),
                    time_unix_nano: T0 + 1,
                    attributes: attrs(),
                    dropped_attributes_count: 1,
                },
                Event { name: "e".into(), time_unix_nano: T0 + 2, ..Default::default() },
            ],
            links: vec![Link { trace_id: vec![4; 16], span_id: vec![5; 8], ..Default::default() }],
            status: Some(Status { code, message: "boom".into() }),
            flags: 0x101,
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope(),
                        spans: vec![span("GET /a", 2, 2), span("db", 3, 1), Span::default()],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans { scope: None, spans: vec![span("x", 0, 0)], ..Default::default() }],
                    ..Default::default()
                },
            ],
        }
    }

    pub fn metrics() -> ExportMetricsServiceRequest {
        let number = |v: number_data_point::Value| NumberDataPoint {
            attributes: attrs(),
            start_time_unix_nano: T0,
            time_unix_nano: T0 + 1,
            value: Some(v),
            ..Default::default()
        };
        let metric = |name: &str, data: Data| Metric {
            name: name.into(),
            description: "d".into(),
            unit: "ms".into(),
            data: Some(data),
            ..Default::default()
        };
        let points =
            || vec![number(number_data_point::Value::AsInt(3)), number(number_data_point::Value::AsDouble(2.5))];
        let metrics = vec![
            metric("g", Data::Gauge(Gauge { data_points: points() })),
            metric("s", Data::Sum(Sum { data_points: points(), aggregation_temporality: 2, is_monotonic: true })),
            metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: attrs(),
                        time_unix_nano: T0,
                        count: 3,
                        sum: Some(6.0),
                        bucket_counts: vec![1, 2, 0],
                        explicit_bounds: vec![1.0, 5.0],
                        min: Some(1.0),
                        max: Some(4.0),
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "e",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        attributes: attrs(),
                        count: 2,
                        sum: Some(3.0),
                        scale: 1,
                        positive: Some(Buckets { offset: 0, bucket_counts: vec![1, 1] }),
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                }),
            ),
            metric(
                "q",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        attributes: attrs(),
                        count: 4,
                        sum: 10.0,
                        quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 2.0 }],
                        ..Default::default()
                    }],
                }),
            ),
            Metric { name: "none".into(), ..Default::default() },
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics { scope: scope(), metrics, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    pub fn logs() -> ExportLogsServiceRequest {
        let body_map = KeyValueList { values: attrs() };
        let record = |body: Option<AnyValue>| LogRecord {
            time_unix_nano: T0,
            observed_time_unix_nano: T0 + 1,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body,
            attributes: attrs(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            flags: 1,
            event_name: "ev".into(),
            ..Default::default()
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records: vec![
                        record(any(Av::StringValue("request failed {\"a\": 1}".into()))),
                        record(any(Av::KvlistValue(body_map))),
                        record(None),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}
