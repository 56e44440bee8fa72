use super::config::ProbabilisticSamplerConfig;
use super::*;
use crate::data::Signal;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use rand::{Rng, SeedableRng};

fn cfg(mode: &str, pct: f64) -> ProbabilisticSamplerConfig {
    ProbabilisticSamplerConfig { sampling_percentage: pct, mode: Some(mode.to_string()), ..Default::default() }
}

fn sampler(c: &ProbabilisticSamplerConfig, signal: Signal) -> (ProbabilisticSampler, Registry) {
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: "probabilistic_sampler".to_string(),
        signal,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    (ProbabilisticSampler::new(c, &ctx), registry)
}

fn span(trace_id: &[u8], trace_state: &str) -> Span {
    Span { trace_id: trace_id.to_vec(), trace_state: trace_state.to_string(), ..Default::default() }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn str_attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_string())) }),
        ..Default::default()
    }
}

fn get_str<'a>(attrs: &'a [KeyValue], k: &str) -> Option<&'a str> {
    match find_attribute(attrs, k) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[test]
fn fnv1a32_matches_published_vectors() {
    // FNV-1a 32 of "" and "a" from the FNV reference (with a zero seed the
    // four seed bytes come first, so check the bare function through them).
    assert_eq!(fnv1a32(0, b""), 0x4b95f515);
    let mut h = 0x811c_9dc5u32;
    for b in b"a" {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    assert_eq!(h, 0xe40c292c);
}

/// Expected values computed once, independently, in Python from the
/// algorithm's definition: FNV-1a 32 over `struct.pack('<I', seed) + id`,
/// kept iff `h & 0x3fff < int(f32(f32(pct) * f32(163.84)))`.
const HASH_VECTORS: &[(&str, u32, u32, u32)] = &[
    ("000102030405060708090a0b0c0d0e0f", 0x0, 0x1995bd65, 15717),
    ("ffffffffffffffffffffffffffffffff", 0x0, 0x291a1545, 5445),
    ("00000000000000000000000000000000", 0x0, 0xb9fee455, 9301),
    ("4bf92f3577b34da6a3ce929d0e0e4736", 0x0, 0x3420408d, 141),
    ("0af7651916cd43dd8448eb211c80319c", 0x0, 0x810d5de4, 7652),
    ("5b8efff798038103d269b633813fc60c", 0x0, 0x245dd6df, 5855),
    ("000102030405060708090a0b0c0d0e0f", 0x16, 0x5571e3c3, 9155),
    ("ffffffffffffffffffffffffffffffff", 0x16, 0x03b425b3, 9651),
    ("00000000000000000000000000000000", 0x16, 0x7a3deec3, 11971),
    ("4bf92f3577b34da6a3ce929d0e0e4736", 0x16, 0x5610306b, 12395),
    ("0af7651916cd43dd8448eb211c80319c", 0x16, 0x1032c19e, 414),
    ("5b8efff798038103d269b633813fc60c", 0x16, 0xa2a64cc9, 3273),
    ("000102030405060708090a0b0c0d0e0f", 0xdeadbeef, 0x741a2c0b, 11275),
    ("ffffffffffffffffffffffffffffffff", 0xdeadbeef, 0xaa192d7b, 11643),
    ("00000000000000000000000000000000", 0xdeadbeef, 0x9abda88b, 10379),
    ("4bf92f3577b34da6a3ce929d0e0e4736", 0xdeadbeef, 0x5db650d3, 4307),
    ("0af7651916cd43dd8448eb211c80319c", 0xdeadbeef, 0x8eaa1486, 5254),
    ("5b8efff798038103d269b633813fc60c", 0xdeadbeef, 0x666dde01, 7681),
];

/// Percentages and `uint32(float32(pct) * 163.84)`, from the same snippet.
const SCALED: &[(f64, u32)] = &[(1.0, 163), (10.0, 1638), (15.3, 2506), (25.0, 4096), (33.33, 5460), (50.0, 8192)];

#[test]
fn hash_seed_decides_as_the_reference() {
    for (pct, scaled) in SCALED {
        assert_eq!(scaled_sample_rate(*pct as f32), *scaled, "pct {pct}");
    }
    for (id, seed, hash, bucket) in HASH_VECTORS {
        assert_eq!(fnv1a32(*seed, &hex(id)), *hash, "{id} seed {seed}");
        assert_eq!(hash & 0x3fff, *bucket);
        for (pct, scaled) in SCALED {
            let mut c = cfg("hash_seed", *pct);
            c.hash_seed = *seed;
            let (mut s, _) = sampler(&c, Signal::Traces);
            let mut sp = span(&hex(id), "");
            let kept = s.sample_span(&mut sp) == Verdict::Keep;
            assert_eq!(kept, bucket < scaled, "{id} seed {seed} pct {pct}");
        }
    }
}

#[test]
fn hash_seed_writes_th_and_rv_as_the_collector_and_leaves_consistent_items_alone() {
    // 25% → reject (16384-4096)<<42 = th:c; seed 0, id 4bf9.. has bucket 141.
    let (mut s, _) = sampler(&cfg("hash_seed", 25.0), Signal::Traces);
    let mut sp = span(&hex("4bf92f3577b34da6a3ce929d0e0e4736"), "congo=t61rcWkgMzE");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    let rv = randomness_from_hash(0x3420408d);
    assert_eq!(sp.trace_state, format!("ot=rv:{:014x};th:c,congo=t61rcWkgMzE", rv.value()));
    // The rv written keeps the same decision for an OTEP 235 sampler downstream.
    assert!(Threshold::parse_hex("c").unwrap().should_sample(rv));

    // Already carries th: unusable in hash_seed mode, dropped (fail_closed).
    let (mut s, reg) = sampler(&cfg("hash_seed", 100.0), Signal::Traces);
    let mut sp = span(&hex("4bf92f3577b34da6a3ce929d0e0e4736"), "ot=th:8");
    assert_eq!(s.sample_span(&mut sp), Verdict::DropUnusable);
    let _ = reg;
}

#[test]
fn proportional_and_equalizing_write_the_right_th() {
    // An id whose randomness (low 56 bits) is all ones: kept at any probability.
    let id = hex("00000000000000000fffffffffffffff");
    for (mode, pct, incoming, want) in [
        ("proportional", 25.0, "", "ot=th:c"),
        ("proportional", 10.0, "", "ot=th:e666"),
        ("equalizing", 25.0, "", "ot=th:c"),
        ("equalizing", 10.0, "", "ot=th:e666"),
        // Proportional multiplies: 0.5 incoming × 50% = 0.25.
        ("proportional", 50.0, "ot=th:8", "ot=th:c"),
        // Equalizing takes the max; an incoming higher threshold stays.
        ("equalizing", 50.0, "ot=th:c", "ot=th:c"),
        ("equalizing", 25.0, "ot=th:8", "ot=th:c"),
        // rv, other sub-keys and vendors are kept.
        ("equalizing", 50.0, "ot=rv:ffffffffffffff;x:y,v=1", "ot=rv:ffffffffffffff;th:8;x:y,v=1"),
    ] {
        let (mut s, _) = sampler(&cfg(mode, pct), Signal::Traces);
        let mut sp = span(&id, incoming);
        assert_eq!(s.sample_span(&mut sp), Verdict::Keep, "{mode} {pct} {incoming}");
        assert_eq!(sp.trace_state, want, "{mode} {pct} {incoming}");
    }
}

#[test]
fn never_lowers_an_incoming_higher_threshold() {
    // rv decides, not the trace ID; th:e (p=1/8) is above 50%'s th:8.
    let (mut s, _) = sampler(&cfg("equalizing", 50.0), Signal::Traces);
    let mut sp = span(&hex("00000000000000000000000000000001"), "ot=th:e;rv:f0000000000000");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:f0000000000000;th:e");
    // Randomness below the configured threshold: dropped.
    let mut sp = span(&hex("00000000000000000000000000000001"), "ot=rv:70000000000000");
    assert_eq!(s.sample_span(&mut sp), Verdict::Drop);
}

#[test]
fn fail_closed_on_unusable_input_and_open_when_asked() {
    let id = hex("00000000000000000fffffffffffffff");
    for mode in ["proportional", "equalizing", "hash_seed"] {
        // Malformed ot value, malformed entry.
        for ts in ["ot=th:zz", "novalue"] {
            let (mut s, reg) = sampler(&cfg(mode, 100.0), Signal::Traces);
            let req = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans { spans: vec![span(&id, ts)], ..Default::default() }],
                    ..Default::default()
                }],
            };
            let mut out = Vec::new();
            s.process(Batch::Traces(req), Instant::now(), &mut out);
            assert!(out.is_empty(), "{mode} {ts}: an emptied batch goes no further");
            let id_label = ("processor", "probabilistic_sampler");
            assert_eq!(reg.value("otelcol_processor_dropped_spans_total", &[id_label]), Some(1.0));
            assert_eq!(
                reg.value(
                    "sluice_processor_probabilistic_sampler_unusable_input_dropped_total",
                    &[id_label, ("data_type", "traces")]
                ),
                Some(1.0)
            );

            let mut open = cfg(mode, 100.0);
            open.fail_closed = false;
            let (mut s, _) = sampler(&open, Signal::Traces);
            let mut sp = span(&id, ts);
            assert_eq!(s.sample_span(&mut sp), Verdict::Keep, "{mode} {ts}");
            assert_eq!(sp.trace_state, ts, "a tracestate that cannot be parsed is left as it was");
        }
    }
    // Missing randomness (all-zero trace ID, no rv) in a consistent mode.
    let (mut s, _) = sampler(&cfg("proportional", 100.0), Signal::Traces);
    assert_eq!(s.sample_span(&mut span(&[0; 16], "")), Verdict::DropUnusable);
    // A th the randomness contradicts (rv 0 < th:8): inconsistent, dropped.
    assert_eq!(s.sample_span(&mut span(&id, "ot=th:8;rv:00000000000000")), Verdict::DropUnusable);
}

#[test]
fn span_sampling_priority_overrides() {
    let id = hex("00000000000000000000000000000001");
    let (mut s, _) = sampler(&cfg("proportional", 1.0), Signal::Traces);
    let mut sp = span(&id, "");
    sp.attributes.push(KeyValue {
        key: "sampling.priority".into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(1)) }),
        ..Default::default()
    });
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:0");
    let (mut s, _) = sampler(&cfg("proportional", 100.0), Signal::Traces);
    let mut sp = span(&hex("00000000000000000fffffffffffffff"), "");
    sp.attributes.push(str_attr("sampling.priority", "0"));
    assert_eq!(s.sample_span(&mut sp), Verdict::Drop);
}

/// Kept count of 100k random trace IDs is within 3σ of n·p.
#[test]
fn each_mode_keeps_the_target_fraction() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = 100_000u32;
    let ids: Vec<[u8; 16]> = (0..n).map(|_| rng.random()).collect();
    for mode in ["hash_seed", "proportional", "equalizing"] {
        for pct in [1.0, 10.0, 50.0] {
            let (mut s, _) = sampler(&cfg(mode, pct), Signal::Traces);
            let mut sp = Span::default();
            let mut kept = 0u32;
            for id in &ids {
                sp.trace_id.clear();
                sp.trace_id.extend_from_slice(id);
                sp.trace_state.clear();
                if s.sample_span(&mut sp) == Verdict::Keep {
                    kept += 1;
                }
            }
            let p = pct / 100.0;
            let mean = f64::from(n) * p;
            let sigma = (f64::from(n) * p * (1.0 - p)).sqrt();
            assert!(
                (f64::from(kept) - mean).abs() <= 3.0 * sigma,
                "{mode} {pct}%: kept {kept}, expected {mean}±{}",
                3.0 * sigma
            );
        }
    }
}

fn log(trace_id: &[u8], attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord { trace_id: trace_id.to_vec(), attributes: attrs, ..Default::default() }
}

#[test]
fn logs_by_trace_id_decide_as_spans() {
    for mode in ["hash_seed", "proportional"] {
        for (id, ..) in HASH_VECTORS.iter().filter(|v| v.1 == 0) {
            let (mut spans, _) = sampler(&cfg(mode, 33.33), Signal::Traces);
            let (mut logs, _) = sampler(&cfg(mode, 33.33), Signal::Logs);
            let mut sp = span(&hex(id), "");
            let mut rec = log(&hex(id), vec![]);
            let (a, b) = (spans.sample_span(&mut sp), logs.sample_log(&mut rec));
            if *id == "00000000000000000000000000000000" {
                // A record without trace ID and without from_attribute has no randomness.
                assert_eq!(b, Verdict::DropUnusable, "{mode}");
                continue;
            }
            assert_eq!(a, b, "{mode} {id}");
            if b == Verdict::Keep {
                assert!(get_str(&rec.attributes, "sampling.threshold").is_some());
            }
        }
    }
}

#[test]
fn logs_by_attribute_hash_the_value() {
    let mut c = cfg("hash_seed", 50.0);
    c.attribute_source = "record".into();
    c.from_attribute = "log.id".into();
    let (mut s, _) = sampler(&c, Signal::Logs);
    let mut kept = 0;
    for i in 0..2000 {
        let v = format!("id-{i}");
        let mut rec = log(&hex("4bf92f3577b34da6a3ce929d0e0e4736"), vec![str_attr("log.id", &v)]);
        let want = fnv1a32(0, v.as_bytes()) & 0x3fff < 8192;
        let got = s.sample_log(&mut rec) == Verdict::Keep;
        assert_eq!(got, want, "{v}");
        if got {
            kept += 1;
            assert_eq!(get_str(&rec.attributes, "sampling.threshold"), Some("8"));
            assert!(get_str(&rec.attributes, "sampling.randomness").is_some());
        }
    }
    assert!((800..1200).contains(&kept), "{kept}");
    // Missing attribute: unusable.
    assert_eq!(s.sample_log(&mut log(&[], vec![])), Verdict::DropUnusable);
}

#[test]
fn logs_sampling_priority_replaces_the_percentage() {
    let mut c = cfg("proportional", 1.0);
    c.sampling_priority = "prio".into();
    let (mut s, _) = sampler(&c, Signal::Logs);
    let id = hex("00000000000000000000000000000001");
    let prio = KeyValue {
        key: "prio".into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(100)) }),
        ..Default::default()
    };
    let mut rec = log(&id, vec![prio]);
    assert_eq!(s.sample_log(&mut rec), Verdict::Keep);
    assert_eq!(get_str(&rec.attributes, "sampling.threshold"), Some("0"));
}

#[test]
fn process_logs_counts_drops() {
    let (mut s, reg) = sampler(&cfg("proportional", 50.0), Signal::Logs);
    let records = vec![
        log(&hex("00000000000000000fffffffffffffff"), vec![]),
        log(&hex("00000000000000000000000000000001"), vec![]),
    ];
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    };
    let mut out = Vec::new();
    s.process(Batch::Logs(req), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].item_count(), 1);
    assert_eq!(
        reg.value("otelcol_processor_dropped_log_records_total", &[("processor", "probabilistic_sampler")]),
        Some(1.0)
    );
}

fn load_processor(body: &str) -> Result<crate::service::AgentConfig, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  probabilistic_sampler:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [probabilistic_sampler], exporters: [debug]}}\n"
    );
    crate::service::load::load_agent_config(&text, &|_| None)
}

#[test]
fn config_loads_with_collector_defaults() {
    let cfg = load_processor("    sampling_percentage: 15.3\n    hash_seed: 22\n").unwrap();
    let id = crate::config::ComponentId::parse("probabilistic_sampler").unwrap();
    let Some(c) = cfg.processors.get(&id).and_then(|p| p.downcast_ref::<ProbabilisticSamplerConfig>()) else {
        panic!("not a probabilistic_sampler config");
    };
    assert_eq!(c.sampling_percentage, 15.3);
    assert_eq!(c.hash_seed, 22);
    assert!(c.fail_closed);
    assert_eq!(c.sampling_precision, 4);
    assert_eq!(c.resolved_mode(), SamplerMode::HashSeed);
}

#[test]
fn a_percentage_above_100_loads_and_keeps_everything_as_in_the_collector() {
    let cfg = load_processor("    sampling_percentage: 150\n").expect("150% is accepted");
    let id = crate::config::ComponentId::parse("probabilistic_sampler").unwrap();
    let Some(c) = cfg.processors.get(&id).and_then(|p| p.downcast_ref::<ProbabilisticSamplerConfig>()) else {
        panic!()
    };
    let (mut s, _) = sampler(c, Signal::Traces);
    // (An all-zero trace ID has no randomness: see the fail_closed tests.)
    for i in 1..=100u8 {
        assert_eq!(s.sample_span(&mut span(&[i; 16], "")), Verdict::Keep);
    }
}

#[test]
fn config_errors_carry_path_line_and_hint() {
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "    sampling_percentage: -1\n",
            "processors::probabilistic_sampler::sampling_percentage",
            6,
            "sampling_percentage -1 must not be negative; hint: a percentage",
        ),
        (
            "    sampling_percentage: 10\n    mode: proportionl\n",
            "processors::probabilistic_sampler::mode",
            7,
            "unknown mode \"proportionl\"; hint: did you mean \"proportional\"? modes are hash_seed, proportional, equalizing",
        ),
        (
            "    mode: fastest\n",
            "processors::probabilistic_sampler::mode",
            6,
            "hint: modes are hash_seed, proportional, equalizing",
        ),
        (
            "    sampling_precision: 15\n",
            "processors::probabilistic_sampler::sampling_precision",
            6,
            "must be from 1 to 14; hint:",
        ),
        (
            "    attribute_source: record\n",
            // The field is absent, so the line is the component's.
            "processors::probabilistic_sampler::from_attribute",
            5,
            "from_attribute is required when attribute_source is record; hint:",
        ),
    ];
    for (body, path, line, needle) in cases {
        let errs = load_processor(body).expect_err(body);
        let rendered = errs.to_string();
        let e = errs.0.iter().find(|e| e.path == *path).unwrap_or_else(|| panic!("no error at {path}: {rendered}"));
        assert_eq!(e.line, Some(*line), "{rendered}");
        assert!(rendered.contains(&format!("{path} (line {line}): ")), "{rendered}");
        assert!(e.to_string().contains(needle), "wanted {needle:?} in {e}");
    }
}

#[test]
fn odd_percentages_build_without_panic() {
    for pct in [f64::NAN, -5.0, 0.0, 1e-30, 250.0] {
        for mode in ["hash_seed", "proportional", "equalizing", "bogus"] {
            let (mut s, _) = sampler(&cfg(mode, pct), Signal::Traces);
            let _ = s.sample_span(&mut span(&hex("00000000000000000fffffffffffffff"), ""));
        }
    }
    // 0% keeps nothing; above 100% is taken as 100%, as the Collector does.
    let (mut s, _) = sampler(&cfg("proportional", 0.0), Signal::Traces);
    assert_eq!(s.sample_span(&mut span(&hex("00000000000000000fffffffffffffff"), "")), Verdict::Drop);
    let (mut s, _) = sampler(&cfg("equalizing", 250.0), Signal::Traces);
    let mut sp = span(&hex("00000000000000000000000000000001"), "");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:0");
}

#[test]
fn fail_open_clears_an_inconsistent_threshold() {
    let mut c = cfg("equalizing", 50.0);
    c.fail_closed = false;
    let (mut s, _) = sampler(&c, Signal::Traces);
    // rv 0x10.. is below th:8, so th:8 is a lie: cleared, and the span kept
    // with th:0 as the Collector does when failing open.
    let mut sp = span(&hex("00000000000000000000000000000001"), "ot=th:8;rv:10000000000000");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:10000000000000;th:0");
}

// --- Collector parity (issue 17): rv, thresholds, tracestate validation ----

/// FNV-1a 32 written out here, independently of `fnv1a32`: offset basis
/// 2166136261, prime 16777619, over the seed's 4 little-endian bytes and the data.
fn fnv32_by_hand(seed: u32, data: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    let seed_bytes = [seed as u8, (seed >> 8) as u8, (seed >> 16) as u8, (seed >> 24) as u8];
    for b in seed_bytes.iter().chain(data) {
        h ^= *b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// The Collector's `randomnessFromBytes` written out: bucket = low 14 bits,
/// x = hash >> (32 - 14), R = (16383 - bucket) << 42 | (x ^ x << 10) << 14 | bucket.
fn collector_rv_hex(hash: u32) -> String {
    let bucket = (hash & 0x3fff) as u64;
    let x = (hash >> 18) as u64;
    let r = ((16383 - bucket) << 42) | ((x ^ (x << 10)) << 14) | bucket;
    format!("{r:014x}")
}

/// `th` of hash_seed mode for `pct`: reject (16384 - uint32(float32(pct) *
/// 163.84)) buckets, shifted into 56 bits, trailing zeros trimmed.
fn collector_hash_th(pct: f32) -> String {
    let scaled = (pct * 163.84f32) as u64;
    let t = (16384 - scaled) << 42;
    format!("{t:014x}").trim_end_matches('0').to_string()
}

#[test]
fn hash_seed_writes_the_collectors_rv_first_then_th() {
    // The example: the Collector writes ot=rv:e8781a4e9205e1;th:e668.
    // th:e668 is 10% (16384 - 1638 = 14746 = 0x399a; << 42 = e668 << 40) and
    // the rv is seed 22's hash 0x692005e1 of this trace ID.
    let id = hex("a19253e584432d195d7991e9420e58e6");
    assert_eq!(fnv32_by_hand(22, &id), 0x692005e1);
    assert_eq!(collector_rv_hex(0x692005e1), "e8781a4e9205e1");
    assert_eq!(collector_hash_th(10.0), "e668");
    let mut c = cfg("hash_seed", 10.0);
    c.hash_seed = 22;
    let (mut s, _) = sampler(&c, Signal::Traces);
    let mut sp = span(&id, "");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:e8781a4e9205e1;th:e668");
    // Other vendors follow the ot member, as the Collector serialises.
    let mut sp = span(&id, "congo=t61rcWkgMzE");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:e8781a4e9205e1;th:e668,congo=t61rcWkgMzE");

    // Logs: the same randomness in `sampling.randomness`, the threshold in
    // `sampling.threshold`.
    let (mut s, _) = sampler(&c, Signal::Logs);
    let mut rec = LogRecord { trace_id: id.clone(), ..Default::default() };
    assert_eq!(s.sample_log(&mut rec), Verdict::Keep);
    assert_eq!(get_str(&rec.attributes, "sampling.randomness"), Some("e8781a4e9205e1"));
    assert_eq!(get_str(&rec.attributes, "sampling.threshold"), Some("e668"));

    // A table: every kept span of several seeds, IDs and percentages carries
    // exactly the rv and th computed above.
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    for seed in [0u32, 1, 22, 0xdead_beef] {
        for pct in [1.0f32, 10.0, 33.33, 50.0, 100.0] {
            let mut c = cfg("hash_seed", f64::from(pct));
            c.hash_seed = seed;
            let (mut s, _) = sampler(&c, Signal::Traces);
            for _ in 0..200 {
                let id: [u8; 16] = rng.random();
                let h = fnv32_by_hand(seed, &id);
                let keep = (h & 0x3fff) < (pct * 163.84f32) as u32;
                let mut sp = span(&id, "");
                assert_eq!(s.sample_span(&mut sp) == Verdict::Keep, keep);
                if keep {
                    let th = collector_hash_th(pct);
                    let th = if th.is_empty() { "0".to_string() } else { th };
                    assert_eq!(sp.trace_state, format!("ot=rv:{};th:{th}", collector_rv_hex(h)));
                }
            }
        }
    }
}

/// The Collector's `ProbabilityToThresholdWithPrecision`, written out here
/// with a halving loop for `math.Frexp` and integer rounding: precision
/// grows by one hex digit per 4 binary orders of magnitude of `p` or `1 - p`
/// below 1; threshold = 2^56 - round(p * 2^56) (half away from zero),
/// rounded half up to that many hex digits.
fn collector_th(p: f64, precision: u32) -> Option<String> {
    let min = 1.0 / (1u64 << 56) as f64;
    if !(min..=1.0).contains(&p) {
        return None;
    }
    if p == 1.0 {
        return Some("0".into());
    }
    let frexp_exp = |mut x: f64| {
        let mut e = 0i32;
        while x < 0.5 {
            x *= 2.0;
            e -= 1;
        }
        e
    };
    let extra = |x: f64| (-frexp_exp(x) / 4) as u32;
    let prec = (precision + extra(p).max(extra(1.0 - p))).min(14);
    let scaled = (p * 72_057_594_037_927_936.0 + 0.5).floor() as u128;
    let mut t: u128 = (1u128 << 56) - scaled;
    let unit = 1u128 << (4 * (14 - prec));
    if unit > 1 {
        t = (t + unit / 2) / unit * unit;
    }
    if t >= 1u128 << 56 {
        return None;
    }
    let hex = format!("{t:014x}");
    let hex = hex.trim_end_matches('0');
    Some(if hex.is_empty() { "0".into() } else { hex.into() })
}

#[test]
fn thresholds_at_every_precision_and_probability_are_the_collectors() {
    // The figures, and others computed with Python's math.frexp.
    for (pct, prec, want) in [
        (5.0, 2, "f33"),
        (0.01, 3, "fff972"),
        (0.0005, 4, "ffffac1d"),
        (0.0001, 4, "ffffef39"),
        (0.3, 1, "ff4"),
        (3.0, 1, "f8"),
        (10.0, 4, "e666"),
        (1.0, 4, "fd70a"),
        (99.99, 2, "00069"),
        (50.0, 1, "8"),
    ] {
        let p = f64::from(pct as f32) / 100.0;
        assert_eq!(collector_th(p, prec).as_deref(), Some(want), "{pct}% precision {prec}");
        assert_eq!(Threshold::from_probability(p, prec as usize).map(|t| t.to_hex()).as_deref(), Some(want));
    }
    // 0.0001% to 99.99%, precisions 1 to 14.
    let mut pcts = vec![0.0001, 0.0003, 0.0005, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 5.0, 6.25];
    pcts.extend([10.0, 12.5, 25.0, 33.33, 50.0, 66.6, 75.0, 90.0, 93.75, 97.0, 99.0, 99.7, 99.9, 99.99]);
    for pct in pcts {
        let p = f64::from(pct as f32) / 100.0;
        for prec in 1..=14u32 {
            let got = Threshold::from_probability(p, prec as usize).map(|t| t.to_hex());
            assert_eq!(got, collector_th(p, prec), "{pct}% precision {prec}");
        }
    }
}

/// A trace ID whose randomness (low 56 bits) is `r`.
fn id_with_randomness(r: u64) -> Vec<u8> {
    let mut id = vec![0xabu8; 16];
    id[8] = 0;
    id[9..].copy_from_slice(&r.to_be_bytes()[1..]);
    id
}

#[test]
fn tiny_probabilities_keep_what_the_collector_keeps() {
    // Randomness at the Collector's threshold is kept, one below is not; the
    // old rounding made all of these "sample nothing".
    for (mode, pct, prec) in [
        ("proportional", 0.01, 3),
        ("proportional", 0.0005, 4),
        ("proportional", 0.0001, 4),
        ("equalizing", 0.3, 1),
        ("equalizing", 3.0, 1),
    ] {
        let p = f64::from(pct as f32) / 100.0;
        let th = collector_th(p, prec).unwrap();
        let t = u64::from_str_radix(&format!("{th:0<14}"), 16).unwrap();
        let mut c = cfg(mode, pct);
        c.sampling_precision = i64::from(prec);
        let (mut s, _) = sampler(&c, Signal::Traces);
        for k in 0..300u64 {
            let mut sp = span(&id_with_randomness(t + k * 977), "");
            assert_eq!(s.sample_span(&mut sp), Verdict::Keep, "{mode} {pct}% p{prec}");
            assert_eq!(sp.trace_state, format!("ot=th:{th}"));
        }
        let mut sp = span(&id_with_randomness(t - 1), "");
        assert_eq!(s.sample_span(&mut sp), Verdict::Drop, "{mode} {pct}% p{prec}");
    }
}

#[test]
fn proportional_multiplies_the_incoming_probability_as_the_collector() {
    let id = id_with_randomness((1 << 56) - 1);
    // 5% precision 2 writes th:f33 (not th:f3).
    let mut c = cfg("proportional", 5.0);
    c.sampling_precision = 2;
    let (mut s, _) = sampler(&c, Signal::Traces);
    let mut sp = span(&id, "");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:f33");

    // 10% precision 4 of an incoming th:700b8a108c9088: f19ac.
    let incoming = 0x700b8a108c9088u64;
    let p_in = ((1u64 << 56) - incoming) as f64 / (1u64 << 56) as f64;
    let want = collector_th(p_in * (f64::from(10.0f32) / 100.0), 4).unwrap();
    assert_eq!(want, "f19ac");
    let (mut s, _) = sampler(&cfg("proportional", 10.0), Signal::Traces);
    let mut sp = span(&id, "ot=th:700b8a108c9088");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:f19ac");

    // Not raised: 100% at precision 4 of th:700B7A108C9088 rounds to 700b,
    // below the incoming threshold, so the incoming th stays byte for byte
    // (upper case included), as the Collector's UpdateTValueWithSampling.
    let p_in = ((1u64 << 56) - 0x700b7a108c9088u64) as f64 / (1u64 << 56) as f64;
    assert_eq!(collector_th(p_in, 4).as_deref(), Some("700b"));
    let (mut s, _) = sampler(&cfg("proportional", 100.0), Signal::Traces);
    let mut sp = span(&id, "ot=th:700B7A108C9088;rv:FFFFFFFFFFFFFF,x=1");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:FFFFFFFFFFFFFF;th:700B7A108C9088,x=1");
}

#[test]
fn malformed_tracestates_are_refused_as_the_collector_refuses_them() {
    let id = id_with_randomness((1 << 56) - 1);
    let members = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    let malformed = vec![
        "ot=TH:8".to_string(),                    // upper-case ot sub-key
        "ot=th:8;".to_string(),                   // trailing ';'
        "ot=th:8;x:a+b".to_string(),              // '+' is not an ot value character
        "ot=th:8,Vendor=x".to_string(),           // upper-case vendor key
        "ot=th:8,1abc=x".to_string(),             // key starting with a digit
        "ot=th:8,a=b ".to_string() + "\u{7f}",    // DEL in a value
        format!("x={}", "y".repeat(1030)),        // over 1024 bytes
        format!("ot={}", ["th:8"; 60].join(";")), // ot value over 256 bytes
        members(32),                              // the Collector refuses 32 members
        members(40),
        "ot=th:zz".to_string(),
        "ot=rv:".to_string(),                // empty rv
        "ot=rv:123".to_string(),             // short rv
        "ot=th:123456789012345".to_string(), // 15-digit th
        "ot=th:zz,ot=th:8".to_string(),      // an earlier bad ot still counts
        format!("{}=v", "k".repeat(257)),    // key over 256 bytes
        format!("t@{}=v", "s".repeat(15)),   // system over 14 bytes
    ];
    for mode in ["proportional", "equalizing", "hash_seed"] {
        for ts in &malformed {
            let (mut s, _) = sampler(&cfg(mode, 100.0), Signal::Traces);
            assert_eq!(s.sample_span(&mut span(&id, ts)), Verdict::DropUnusable, "{mode} {ts}");
            // fail_closed: false keeps them, unchanged (no th:0 added).
            let mut open = cfg(mode, 100.0);
            open.fail_closed = false;
            let (mut s, _) = sampler(&open, Signal::Traces);
            let mut sp = span(&id, ts);
            assert_eq!(s.sample_span(&mut sp), Verdict::Keep, "{mode} {ts}");
            assert_eq!(&sp.trace_state, ts, "{mode}");
        }
    }
    // Accepted: 31 members, whitespace and empty members around them,
    // multi-tenant keys, a 256-byte value.
    let ok = [
        members(31),
        " , ot=th:8 ,, a=b\t".to_string(),
        "t@sys=v,ot=th:8".to_string(),
        format!("a={}", "v".repeat(256)),
    ];
    for ts in &ok {
        let (mut s, _) = sampler(&cfg("proportional", 100.0), Signal::Traces);
        assert_eq!(s.sample_span(&mut span(&id, ts)), Verdict::Keep, "{ts}");
    }
    // Re-serialised as the Collector: ot first, empty members and spaces gone.
    let (mut s, _) = sampler(&cfg("proportional", 100.0), Signal::Traces);
    let mut sp = span(&id, " , a=b ,, ot=th:8 ");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:8,a=b");
}

#[test]
fn duplicate_ot_members_and_zero_trace_ids_as_the_collector() {
    let id = id_with_randomness((1 << 56) - 1);
    // Of two ot members the last counts; one ot is written back, first.
    let (mut s, _) = sampler(&cfg("equalizing", 50.0), Signal::Traces);
    let mut sp = span(&id, "ot=th:8,x=1,ot=th:c");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:c,x=1");
    // Of two th in one ot the last counts too.
    let mut sp = span(&id, "ot=th:c;th:9");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=th:9");

    // An all-zero trace ID has no randomness: unusable in every mode.
    let zero = [0u8; 16];
    for mode in ["proportional", "equalizing", "hash_seed"] {
        let (mut s, _) = sampler(&cfg(mode, 100.0), Signal::Traces);
        assert_eq!(s.sample_span(&mut span(&zero, "")), Verdict::DropUnusable, "{mode}");
    }
    // Fail open: kept with th:0; in hash_seed mode the Collector has already
    // set rv to its stand-in "all probabilities" randomness.
    for (mode, want) in [("proportional", "ot=th:0"), ("hash_seed", "ot=rv:ffffffffffffff;th:0")] {
        let mut open = cfg(mode, 50.0);
        open.fail_closed = false;
        let (mut s, _) = sampler(&open, Signal::Traces);
        let mut sp = span(&zero, "");
        assert_eq!(s.sample_span(&mut sp), Verdict::Keep, "{mode}");
        assert_eq!(sp.trace_state, want, "{mode}");
    }
    // An rv gives randomness even with an all-zero trace ID.
    let (mut s, _) = sampler(&cfg("proportional", 50.0), Signal::Traces);
    let mut sp = span(&zero, "ot=rv:ffffffffffffff");
    assert_eq!(s.sample_span(&mut sp), Verdict::Keep);
    assert_eq!(sp.trace_state, "ot=rv:ffffffffffffff;th:8");
}
