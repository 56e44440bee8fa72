use super::*;
use crate::data::fixtures::kv;
use crate::data::Batch;
use crate::receivers::otlp::validate::validate;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point, summary_data_point, Exemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use rand::{Rng, SeedableRng};

fn attributes() -> Vec<KeyValue> {
    vec![
        kv("s", Value::StringValue("héllo".into())),
        kv("b", Value::BoolValue(true)),
        kv("i", Value::IntValue(-7)),
        kv("d", Value::DoubleValue(1.5)),
        kv("bytes", Value::BytesValue(vec![0, 255, 3])),
        kv(
            "arr",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(Value::StringValue("x".into())) }, AnyValue { value: None }],
            }),
        ),
        kv("kvl", Value::KvlistValue(KeyValueList { values: vec![kv("inner", Value::IntValue(1))] })),
    ]
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attributes(),
        dropped_attributes_count: 2,
        entity_refs: vec![EntityRef {
            schema_url: "u".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into(), "k".into()],
            description_keys: vec!["d".into()],
        }],
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lib".into(),
        version: "1.0".into(),
        attributes: attributes(),
        dropped_attributes_count: 1,
    })
}

fn span(i: u8) -> Span {
    Span {
        trace_id: vec![i; 16],
        span_id: vec![i + 1; 8],
        trace_state: "a=b".into(),
        parent_span_id: if i.is_multiple_of(2) { vec![] } else { vec![9; 8] },
        flags: 0x301,
        name: format!("span {i}"),
        kind: 2,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: attributes(),
        dropped_attributes_count: 3,
        events: vec![span::Event {
            time_unix_nano: 5,
            name: "ev".into(),
            attributes: attributes(),
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 4,
        links: vec![span::Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            trace_state: "c=d".into(),
            attributes: attributes(),
            dropped_attributes_count: 2,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status { message: "boom".into(), code: 2 }),
    }
}

fn traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(),
                scope_spans: vec![
                    ScopeSpans { scope: scope(), spans: vec![span(1), span(2)], schema_url: "s".into() },
                    ScopeSpans { scope: None, spans: vec![span(3)], schema_url: String::new() },
                ],
                schema_url: "r".into(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans { scope: scope(), spans: vec![span(4)], schema_url: String::new() }],
                schema_url: String::new(),
            },
        ],
    }
}

fn exemplars() -> Vec<Exemplar> {
    vec![Exemplar {
        filtered_attributes: attributes(),
        time_unix_nano: 3,
        span_id: vec![1; 8],
        trace_id: vec![2; 16],
        value: Some(exemplar::Value::AsInt(4)),
    }]
}

fn number_point(v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        exemplars: exemplars(),
        flags: 1,
        value: Some(number_data_point::Value::AsDouble(v)),
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: "d".into(),
        unit: "ms".into(),
        metadata: vec![kv("m", Value::StringValue("v".into()))],
        data: Some(data),
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let histogram = HistogramDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 6,
        sum: Some(9.0),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![1.0, 5.0],
        exemplars: exemplars(),
        flags: 0,
        min: Some(0.5),
        max: Some(7.0),
    };
    let exp = ExponentialHistogramDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 5,
        sum: Some(3.0),
        scale: -2,
        zero_count: 1,
        positive: Some(Buckets { offset: -1, bucket_counts: vec![1, 300, 70000] }),
        negative: Some(Buckets { offset: 2, bucket_counts: vec![4] }),
        flags: 0,
        exemplars: exemplars(),
        min: Some(0.1),
        max: Some(9.0),
        zero_threshold: 0.001,
    };
    let summary = SummaryDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 3,
        sum: 4.0,
        quantile_values: vec![summary_data_point::ValueAtQuantile { quantile: 0.5, value: 2.0 }],
        flags: 0,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric("g", Data::Gauge(Gauge { data_points: vec![number_point(1.0), number_point(2.0)] })),
                    metric(
                        "s",
                        Data::Sum(Sum {
                            data_points: vec![number_point(3.0)],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        Data::Histogram(Histogram {
                            data_points: vec![histogram.clone(), histogram],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![exp],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric("q", Data::Summary(Summary { data_points: vec![summary] })),
                ],
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        }],
    }
}

fn log(i: u8) -> LogRecord {
    LogRecord {
        time_unix_nano: 1,
        observed_time_unix_nano: 2,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue { value: Some(Value::StringValue(format!("line {i}"))) }),
        attributes: attributes(),
        dropped_attributes_count: 1,
        flags: 1,
        trace_id: if i.is_multiple_of(2) { vec![] } else { vec![i; 16] },
        span_id: if i.is_multiple_of(2) { vec![] } else { vec![i; 8] },
        event_name: "e".into(),
    }
}

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![
                ScopeLogs { scope: scope(), log_records: vec![log(1), log(2)], schema_url: "s".into() },
                ScopeLogs { scope: None, log_records: vec![log(3)], schema_url: String::new() },
            ],
            schema_url: "r".into(),
        }],
    }
}

fn seeds() -> Vec<(Signal, Vec<u8>)> {
    vec![
        (Signal::Traces, traces().encode_to_vec()),
        (Signal::Metrics, metrics().encode_to_vec()),
        (Signal::Logs, logs().encode_to_vec()),
    ]
}

/// What a full decode says: the item count, or that the request is refused.
fn prost_verdict(signal: Signal, bytes: &[u8]) -> Option<usize> {
    let batch = match signal {
        Signal::Traces => Batch::Traces(ExportTraceServiceRequest::decode(bytes).ok()?),
        Signal::Metrics => Batch::Metrics(ExportMetricsServiceRequest::decode(bytes).ok()?),
        Signal::Logs => Batch::Logs(ExportLogsServiceRequest::decode(bytes).ok()?),
    };
    validate(&batch).ok()?;
    Some(batch.item_count())
}

#[test]
fn valid_requests_pass_with_the_decoded_item_count() {
    for (signal, bytes) in seeds() {
        let expected = prost_verdict(signal, &bytes).expect("seed decodes");
        assert!(expected > 0);
        assert_eq!(check_request(signal, &bytes), Ok(expected), "{signal}");
    }
    assert_eq!(check_request(Signal::Traces, &[]), Ok(0));
}

/// Mutates `bytes` the ways a broken or hostile client would: flipped,
/// inserted and deleted bytes, truncation, and re-typed field keys.
fn mutate(rng: &mut rand::rngs::StdRng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        if out.is_empty() {
            out.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..out.len());
        match rng.random_range(0..7) {
            0 => out[at] = rng.random(),
            1 => out[at] ^= 1 << rng.random_range(0..8),
            2 => out.insert(at, rng.random()),
            3 => {
                out.remove(at);
            }
            4 => out.truncate(at),
            // Another wire type for whatever key sits here.
            5 => out[at] = (out[at] & !7) | rng.random_range(0..8),
            // Non-UTF-8 or oversized values.
            _ => out[at] = [0xff, 0xc0, 0x80, 0x7f, 0x10][rng.random_range(0..5)],
        }
    }
    out
}

#[test]
fn agrees_with_prost_on_mutated_requests() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x51u64);
    let (mut accepted, mut refused) = (0, 0);
    for (signal, seed) in seeds() {
        for _ in 0..6000 {
            let bytes = mutate(&mut rng, &seed);
            let want = prost_verdict(signal, &bytes);
            let got = check_request(signal, &bytes);
            assert_eq!(got.as_ref().ok().copied(), want, "{signal} {bytes:02x?}: walk says {got:?}");
            if let Some(items) = want {
                // The lenient walks the pass-through path counts and cuts with agree on valid requests.
                assert_eq!(crate::data::wire::count_items(signal, &bytes), items, "{signal} {bytes:02x?}");
                let entries = crate::data::wire::entries(signal, &bytes);
                assert_eq!(entries.iter().map(|e| e.items).sum::<usize>(), items, "{signal} {bytes:02x?}");
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Both verdicts must be well represented, or the test proves little.
    assert!(accepted > 1000 && refused > 1000, "accepted {accepted}, refused {refused}");
}

/// An attribute whose value nests `depth` array values.
fn nested(depth: usize) -> ExportLogsServiceRequest {
    let mut value = AnyValue { value: Some(Value::IntValue(1)) };
    for _ in 0..depth {
        value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
    }
    let mut req = logs();
    req.resource_logs[0].scope_logs[0].log_records[0].body = Some(value);
    req
}

#[test]
fn nesting_limit_is_prosts() {
    let mut saw = (false, false);
    for depth in 40..56 {
        let bytes = nested(depth).encode_to_vec();
        let want = prost_verdict(Signal::Logs, &bytes);
        assert_eq!(check_request(Signal::Logs, &bytes).ok(), want, "depth {depth}");
        saw = (saw.0 || want.is_some(), saw.1 || want.is_none());
    }
    assert_eq!(saw, (true, true), "the range must cross the limit");
}

#[test]
fn unknown_fields_and_groups_are_skipped_as_prost_skips_them() {
    let base = traces().encode_to_vec();
    // field 99 varint, field 98 fixed32, field 97 group holding a varint, at the top level.
    let mut extra = base.clone();
    extra.extend_from_slice(&[0x98, 0x06, 0x01, 0xc5, 0x06, 1, 2, 3, 4, 0x8b, 0x06, 0x08, 0x05, 0x8c, 0x06]);
    assert_eq!(check_request(Signal::Traces, &extra).ok(), prost_verdict(Signal::Traces, &extra));
    assert!(check_request(Signal::Traces, &extra).is_ok());
    // A group closed by another field's end tag is refused by both.
    let mut bad = base.clone();
    bad.extend_from_slice(&[0x8b, 0x06, 0x08, 0x05, 0x94, 0x06]);
    assert_eq!(prost_verdict(Signal::Traces, &bad), None);
    assert!(check_request(Signal::Traces, &bad).is_err());
}

#[test]
fn errors_name_the_item_and_field() {
    let mut req = traces();
    req.resource_spans[1].scope_spans[0].spans[0].trace_id = vec![1, 2, 3];
    let err = check_request(Signal::Traces, &req.encode_to_vec()).unwrap_err();
    assert_eq!(err.to_string(), "resource_spans[1].scope_spans[0].spans[0]: trace_id must be 16 bytes, got 3");

    let mut req = logs();
    req.resource_logs[0].scope_logs[1].log_records[0].span_id = vec![1; 4];
    let err = check_request(Signal::Logs, &req.encode_to_vec()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_logs[0].scope_logs[1].log_records[0]: span_id must be empty or 8 bytes, got 4"
    );

    // A name that is not UTF-8: patch "span 2" into "span \xff".
    let mut bytes = traces().encode_to_vec();
    let at = bytes.windows(6).position(|w| w == b"span 2").unwrap();
    bytes[at + 5] = 0xff;
    let err = check_request(Signal::Traces, &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].scope_spans[0].spans[1].name: invalid string value: data is not UTF-8 encoded"
    );
}

#[test]
fn oneof_data_counts_the_variant_a_decode_keeps() {
    let gauge = |n| Metric {
        name: "m".into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); n] })),
        ..Default::default()
    };
    let sum = Metric {
        data: Some(Data::Sum(Sum { data_points: vec![NumberDataPoint::default(); 5], ..Default::default() })),
        ..Default::default()
    };
    // Concatenated messages merge: gauge(2) + gauge(3) = gauge(5); then sum(5) replaces it; then gauge(1) again.
    let mut one_metric = gauge(2).encode_to_vec();
    one_metric.extend(gauge(3).encode_to_vec());
    let req = request_of(&one_metric);
    assert_eq!(check_request(Signal::Metrics, &req), Ok(5));
    assert_eq!(prost_verdict(Signal::Metrics, &req), Some(5));
    one_metric.extend(sum.encode_to_vec());
    one_metric.extend(gauge(1).encode_to_vec());
    let req = request_of(&one_metric);
    assert_eq!(check_request(Signal::Metrics, &req), Ok(1));
    assert_eq!(prost_verdict(Signal::Metrics, &req), Some(1));
}

/// An export request of one resource and one scope holding one encoded
/// item (a span, metric or log record: the nesting is the same for all three).
fn request_of(item: &[u8]) -> Vec<u8> {
    delimited(1, &delimited(2, &delimited(2, item)))
}

/// A traces request of one valid span carrying one attribute encoded as `kv`.
fn span_with_raw_attribute(kv: &[u8]) -> Vec<u8> {
    let span = Span { trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() }.encode_to_vec();
    request_of(&[span, delimited(9, kv)].concat())
}

/// `bytes` as a length-delimited field `tag`.
fn delimited(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::bytes::encode(tag, &bytes.to_vec(), &mut out);
    out
}

/// Attributes take a quick path (one-byte lengths, ASCII told a word at a
/// time with the last word overlapping). It must agree with a decode for
/// keys and values of every length around its edges, with a stray byte or a
/// valid two-byte character at every position, and with every kind of value.
#[test]
fn plain_attributes_agree_with_prost_at_every_length_and_position() {
    let lengths = [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 100, 125, 126, 127, 128, 129, 200];
    // `text` with byte `pos` replaced by `with` (a stray byte, or the first of é).
    let texts = |len: usize| {
        let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let mut all = vec![base.clone()];
        for pos in 0..len {
            for with in [&[0xff][..], &[0x80][..], &[0xc3, 0xa9][..], &[0xc3][..]] {
                let mut t = base.clone();
                t.splice(pos..pos + 1, with.iter().copied());
                all.push(t);
            }
        }
        all
    };
    let mut values: Vec<Vec<u8>> = vec![vec![]];
    for len in lengths {
        for text in texts(len) {
            values.push(delimited(1, &text)); // string_value
        }
        values.push(delimited(7, &vec![0xff; len])); // bytes_value: any bytes
    }
    for number in [0u64, 1, 127, 128, 300, u64::MAX] {
        for tag in [2u32, 3, 8] {
            let mut v = Vec::new();
            prost::encoding::encode_key(tag, prost::encoding::WireType::Varint, &mut v);
            prost::encoding::encode_varint(number, &mut v);
            values.push(v.clone());
            v.pop(); // a varint cut short
            values.push(v);
        }
    }
    values.push([vec![0x21], 1.5f64.to_le_bytes().to_vec()].concat());
    values.push([vec![0x21], vec![0; 7]].concat()); // a double cut short
    values.push(vec![0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]); // an 11-byte varint
    values.push([delimited(1, b"x"), vec![0x18, 0x01]].concat()); // two values: the full walk's case

    let (mut quick, mut checked) = (0, 0);
    let mut agree = |kv: Vec<u8>| {
        let req = span_with_raw_attribute(&kv);
        let want = prost_verdict(Signal::Traces, &req);
        assert_eq!(check_request(Signal::Traces, &req).ok(), want, "attribute {kv:02x?}");
        if plain_key_value(&kv) {
            assert_eq!(want, Some(1), "the quick path took an attribute a decode refuses: {kv:02x?}");
            quick += 1;
        }
        checked += 1;
    };
    // Every key with a few clean values, every value with a few clean keys.
    let clean = |len: usize| texts(len).swap_remove(0);
    let some_values: Vec<Vec<u8>> = [0, 3, 127, 128]
        .map(|len| delimited(1, &clean(len)))
        .into_iter()
        .chain(values[values.len() - 6..].to_vec())
        .collect();
    for key in lengths.iter().flat_map(|&len| texts(len)) {
        agree(delimited(1, &key));
        agree([delimited(1, &key), delimited(2, b"")].concat());
        for value in &some_values {
            agree([delimited(1, &key), delimited(2, value)].concat());
        }
    }
    for key in [0, 3, 8, 17, 127, 128].map(clean) {
        for value in &values {
            agree([delimited(1, &key), delimited(2, value)].concat());
        }
    }
    assert!(checked > 50_000, "only {checked} attributes checked");
    // Most are refused (three of the four replacements are not UTF-8).
    assert!(quick > checked / 8, "the quick path took only {quick} of {checked} attributes");

    // Valid attributes of every kind take the quick path, short or long.
    for key in ["k", "http.request.method", &"k".repeat(127), &"k".repeat(300)] {
        for value in [Value::StringValue("GET".into()), Value::StringValue("é".repeat(100)), Value::BoolValue(true)]
            .into_iter()
            .chain([Value::IntValue(-1), Value::DoubleValue(0.75), Value::BytesValue(vec![0xff; 200])])
        {
            let kv = kv(key, value).encode_to_vec();
            assert!(plain_key_value(&kv), "{kv:02x?}");
        }
    }
}
