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

/// OTTL text: the first byte picks the context and whether the text is a
/// statement, a condition or a flat (context-inferred) statement; what
/// compiles is run on a sample item of that context, so evaluation is
/// fuzzed too.
pub fn ottl(data: &[u8]) {
    use crate::ottl::{Condition, ContextKind, EvalCtx, Limits, Statement};
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, Span};
    let Some((first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let contexts = [ContextKind::Span, ContextKind::SpanEvent, ContextKind::Log, ContextKind::Resource];
    let ctx = contexts[(first % 4) as usize];
    let allowed = [ContextKind::Resource, ContextKind::Scope, ctx];
    let limits = Limits::default();
    let attr =
        |k: &str, v: Av| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() };
    let attrs = vec![
        attr("s", Av::StringValue("GET /a/1".into())),
        attr("i", Av::IntValue(7)),
        attr("d", Av::DoubleValue(1.5)),
        attr("b", Av::BoolValue(true)),
    ];
    let mut resource =
        Some(opentelemetry_proto::tonic::resource::v1::Resource { attributes: attrs.clone(), ..Default::default() });
    let mut scope = None;
    let mut span = Span {
        name: "op".into(),
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        attributes: attrs.clone(),
        ..Default::default()
    };
    let mut event = Event { name: "e".into(), attributes: attrs.clone(), ..Default::default() };
    let mut log = LogRecord {
        body: Some(AnyValue { value: Some(Av::StringValue("body".into())) }),
        attributes: attrs,
        ..Default::default()
    };
    let mut eval = EvalCtx { resource: Some(&mut resource), scope: Some(&mut scope), ..Default::default() };
    match ctx {
        ContextKind::Span => eval.span = Some(&mut span),
        ContextKind::SpanEvent => {
            eval.span = Some(&mut span);
            eval.event = Some(&mut event);
        }
        ContextKind::Log => eval.log = Some(&mut log),
        _ => {}
    }
    match (first / 4) % 3 {
        0 => {
            if let Ok(s) = Statement::compile(text, Some(ctx), &allowed, limits) {
                let _ = s.execute(&mut eval);
            }
        }
        1 => {
            if let Ok(c) = Condition::compile(text, Some(ctx), &allowed, limits) {
                let _ = c.eval(&eval);
            }
        }
        _ => {
            if let Ok(s) = Statement::compile(text, None, &allowed, limits) {
                if s.context == ctx || s.context == ContextKind::Resource {
                    let _ = s.execute(&mut eval);
                }
            }
        }
    }
}
