//! `storage`: spilling the oldest traces to disk at `max_memory_mib`
//! instead of deciding them early, the disk bound, and the decision caches
//! saved at shutdown and read at start. Fixed clock throughout.

use super::config::TailSamplingConfig;
use super::*;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
use std::collections::HashMap;
use std::path::Path;

const SPANS: u64 = 10;
const P: &str = "tail_sampling";

fn trace_id(n: u64) -> Vec<u8> {
    xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_be_bytes().to_vec()
}

/// Span `i` of trace `n`, with ~200 bytes of attributes; span 9 is the
/// error span when `error`.
fn span(n: u64, i: u64, error: bool) -> Span {
    let start = 1_700_000_000_000_000_000 + n * 1000;
    Span {
        trace_id: trace_id(n),
        span_id: (n * 100 + i + 1).to_be_bytes().to_vec(),
        parent_span_id: if i == 0 { vec![] } else { (n * 100 + 1).to_be_bytes().to_vec() },
        name: format!("GET /api/v1/orders/{n}/items/{i}"),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        attributes: (0..4)
            .map(|k| KeyValue {
                key: format!("attribute.key.{k}"),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(format!("value {n} {i} {k} ...."))) }),
                ..Default::default()
            })
            .collect(),
        status: Some(Status { code: if error && i == SPANS - 1 { 2 } else { 0 }, ..Default::default() }),
        ..Default::default()
    }
}

fn batch(spans: Vec<Span>) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue("svc".into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                spans,
                schema_url: "https://scope.schema".into(),
            }],
            schema_url: "https://resource.schema".into(),
        }],
    })
}

fn build(json: &str, dir: &Path, reg: &Registry, worker: usize, workers: usize) -> TailSamplingProcessor {
    build_in(json, dir, reg, worker, workers, &Default::default())
}

/// One of the worker instances of a processor that share `slot`.
fn build_in(
    json: &str,
    dir: &Path,
    reg: &Registry,
    worker: usize,
    workers: usize,
    slot: &crate::processors::SharedSlot,
) -> TailSamplingProcessor {
    let cfg: TailSamplingConfig = serde_json::from_str(json).expect("config");
    let ctx = ProcessorContext {
        id: P.into(),
        signal: Signal::Traces,
        registry: reg.clone(),
        worker,
        workers,
        shared: slot.clone(),
        storage_dir: Some(dir.to_path_buf()),
    };
    TailSamplingProcessor::new(&cfg, &ctx)
}

/// Spans by trace ID, checking resource, scope and both schema URLs came through.
fn collect(out: Vec<Batch>) -> HashMap<Vec<u8>, Vec<Span>> {
    let mut m: HashMap<Vec<u8>, Vec<Span>> = HashMap::new();
    for b in out {
        let Batch::Traces(r) = b else { panic!("not traces") };
        for rs in r.resource_spans {
            assert_eq!(rs.resource.as_ref().map(|r| r.attributes[0].key.as_str()), Some("service.name"));
            assert_eq!(rs.schema_url, "https://resource.schema");
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.as_ref().map(|s| s.name.as_str()), Some("lib"));
                assert_eq!(ss.schema_url, "https://scope.schema");
                for s in ss.spans {
                    m.entry(s.trace_id.clone()).or_default().push(s);
                }
            }
        }
    }
    m
}

fn metric(reg: &Registry, name: &str, labels: &[(&'static str, &str)]) -> f64 {
    let mut l = vec![("processor", P)];
    l.extend_from_slice(labels);
    reg.value(name, &l).unwrap_or(0.0)
}

fn early(reg: &Registry, reason: &str) -> f64 {
    metric(reg, "sluice_tail_sampling_early_decisions_total", &[("reason", reason)])
}

const ERRORS: &str = r#"[{"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}]"#;

/// Ten-span traces (about 2.5 MB of spans per 1,000 traces as buffered),
/// one in ten with an error span that comes 1s after the rest, through a
/// processor with 1 MiB of memory.
const TRACES: u64 = 1000;

fn late_errors(p: &mut TailSamplingProcessor, t0: Instant, out: &mut Vec<Batch>) {
    let traces = TRACES;
    for chunk in (0..traces).collect::<Vec<_>>().chunks(100) {
        let spans = chunk.iter().flat_map(|&n| (0..SPANS - 1).map(move |i| span(n, i, n % 10 == 0))).collect();
        p.process(batch(spans), t0, out);
        assert!(p.accounted_bytes() <= 1 << 20, "accounted {} over the bound", p.accounted_bytes());
    }
    let late = (0..traces).step_by(10).map(|n| span(n, SPANS - 1, true)).collect();
    p.process(batch(late), t0 + Duration::from_secs(1), out);
    assert!(p.accounted_bytes() <= 1 << 20);
}

#[test]
fn memory_bound_spills_and_every_trace_is_decided_complete_at_decision_wait() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new();
    let mut p = build(
        &format!(r#"{{"decision_wait": "5s", "max_memory_mib": 1, "storage": "file_storage", "policies": {ERRORS}}}"#),
        dir.path(),
        &reg,
        0,
        1,
    );
    let t0 = Instant::now();
    let mut out = Vec::new();
    late_errors(&mut p, t0, &mut out);
    assert!(out.is_empty(), "nothing is decided before decision_wait");
    assert_eq!(p.traces_in_memory(), TRACES as usize, "every trace still waits");
    let spilled = metric(&reg, "sluice_tail_sampling_spilled_spans_total", &[]);
    assert!(spilled > 5_000.0, "most spans went to disk: {spilled}");
    assert!(metric(&reg, "sluice_tail_sampling_bytes_on_disk", &[]) > (1 << 20) as f64);
    p.tick(t0 + Duration::from_millis(4999), &mut out);
    assert!(out.is_empty());
    p.tick(t0 + Duration::from_secs(5), &mut out);
    let kept = collect(out);
    assert_eq!(kept.len(), TRACES as usize / 10, "the error traces, and only they");
    for n in (0..TRACES).step_by(10) {
        let spans = &kept[&trace_id(n)];
        let mut ids: Vec<u64> = spans.iter().map(|s| u64::from_be_bytes(s.span_id[..].try_into().unwrap())).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=SPANS).map(|i| n * 100 + i).collect::<Vec<_>>(), "trace {n} complete, once each");
        assert!(spans.iter().all(|s| s.attributes.iter().any(|a| a.key == POLICY_ATTRIBUTE)));
        // A span read back from disk is the span sent, marked as every kept span.
        let mut want = span(n, 3, true);
        want.trace_state = "ot=th:0".into();
        want.attributes.push(KeyValue {
            key: POLICY_ATTRIBUTE.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("errors".into())) }),
            ..Default::default()
        });
        assert_eq!(spans.iter().find(|s| s.span_id == want.span_id), Some(&want));
    }
    for reason in ["memory", "num_traces", "disk", "spill_failed"] {
        assert_eq!(early(&reg, reason), 0.0, "no early decision by {reason}");
    }
    assert_eq!(metric(&reg, "sluice_tail_sampling_spill_lost_spans_total", &[]), 0.0);
    assert_eq!(p.traces_in_memory(), 0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_bytes_on_disk", &[]), 0.0, "released segments are deleted");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("spill-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| f == "LOCK" || std::fs::metadata(dir.path().join("spill-0").join(f)).unwrap().len() == 0),
        "{files:?}"
    );
}

#[test]
fn without_storage_the_same_load_decides_early_and_loses_error_traces() {
    // The baseline the spill store exists for (same load, no `storage`).
    let reg = Registry::new();
    let cfg: TailSamplingConfig = serde_json::from_str(&format!(
        r#"{{"decision_wait": "5s", "max_memory_mib": 1, "decision_cache": {{"sampled_cache_size": 0, "non_sampled_cache_size": 0}}, "policies": {ERRORS}}}"#
    ))
    .unwrap();
    let ctx = ProcessorContext {
        id: P.into(),
        signal: Signal::Traces,
        registry: reg.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    let mut p = TailSamplingProcessor::new(&cfg, &ctx);
    let t0 = Instant::now();
    let mut out = Vec::new();
    late_errors(&mut p, t0, &mut out);
    p.tick(t0 + Duration::from_secs(5), &mut out);
    let complete = collect(out).values().filter(|s| s.len() == SPANS as usize).count();
    assert!(complete < TRACES as usize / 10, "{complete}");
    assert!(early(&reg, "memory") > 0.0);
}

#[test]
fn disk_bound_reached_decides_oldest_early_counted_as_disk() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new();
    let mut p = build(
        &format!(
            r#"{{"decision_wait": "30s", "max_memory_mib": 1, "storage": "file_storage", "max_disk_mib": 1, "policies": {ERRORS}}}"#
        ),
        dir.path(),
        &reg,
        0,
        1,
    );
    let t0 = Instant::now();
    let mut out = Vec::new();
    for chunk in (0..6000u64).collect::<Vec<_>>().chunks(100) {
        let spans = chunk.iter().flat_map(|&n| (0..SPANS).map(move |i| span(n, i, n % 10 == 0))).collect();
        p.process(batch(spans), t0, &mut out);
        assert!(p.accounted_bytes() <= 1 << 20);
        let on_disk = metric(&reg, "sluice_tail_sampling_bytes_on_disk", &[]);
        assert!(on_disk <= 2.0 * (1 << 20) as f64, "files within twice max_disk_mib: {on_disk}");
    }
    let disk = early(&reg, "disk");
    assert!(disk > 1000.0, "early decisions for lack of disk: {disk}");
    assert_eq!(early(&reg, "memory"), 0.0, "memory alone never decides early while disk has room");
    p.flush(&mut out);
    let g =
        |s| metric(&reg, "otelcol_processor_tail_sampling_global_count_traces_sampled_total", &[("sampled", s)]) as u64;
    assert_eq!(g("true") + g("false"), 6000, "every trace got exactly one decision");
    let kept = collect(out);
    assert_eq!(kept.len(), 600);
    assert!(kept.values().all(|s| s.len() == SPANS as usize), "early-decided error traces are whole too");
}

#[test]
fn decision_caches_survive_a_restart_through_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let json = format!(r#"{{"decision_wait": "5s", "storage": "file_storage", "policies": {ERRORS}}}"#);
    let t0 = Instant::now();
    {
        let reg = Registry::new();
        let mut p = build(&json, dir.path(), &reg, 0, 1);
        let mut out = Vec::new();
        // Traces 0..100: 0, 10, 20... have an error and are kept.
        let spans = (0..100u64).flat_map(|n| (0..SPANS - 1).map(move |i| span(n, i, n % 10 == 0))).collect::<Vec<_>>();
        let mut spans = spans;
        spans.extend((0..100).step_by(10).map(|n| span(n, SPANS - 1, true)));
        p.process(batch(spans), t0, &mut out);
        p.tick(t0 + Duration::from_secs(5), &mut out);
        assert_eq!(collect(out).len(), 10);
        let mut rest = Vec::new();
        p.flush(&mut rest); // shutdown: writes the caches
    }
    assert!(dir.path().join("decisions-0").exists());
    // A restart with two workers: each takes the saved decisions routed to
    // it, read before its first batch (or tick).
    let reg = Registry::new();
    let slot = Default::default();
    let mut workers: Vec<_> = (0..2).map(|w| build_in(&json, dir.path(), &reg, w, 2, &slot)).collect();
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "sampled")]), 0.0);
    for w in &mut workers {
        w.tick(t0, &mut Vec::new());
    }
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "sampled")]), 10.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "not_sampled")]), 90.0);
    let mut out = Vec::new();
    for n in 0..100u64 {
        // A late span of every trace, at the worker the pipeline routes it to.
        let w = crate::processors::trace_worker(&trace_id(n), 2);
        workers[w].process(batch(vec![span(n, 50, false)]), t0 + Duration::from_secs(6), &mut out);
    }
    let kept = collect(out);
    assert_eq!(kept.len(), 10, "late spans of kept traces go straight on");
    for n in (0..100).step_by(10) {
        let s = &kept[&trace_id(n)];
        assert_eq!(s.len(), 1);
        let policy = s[0].attributes.iter().find(|a| a.key == POLICY_ATTRIBUTE).and_then(|a| a.value.clone());
        assert_eq!(policy.and_then(|v| v.value), Some(any_value::Value::StringValue("errors".into())));
    }
    assert_eq!(workers.iter().map(|w| w.traces_in_memory()).sum::<usize>(), 0, "none starts a new trace");
    assert_eq!(metric(&reg, "sluice_tail_sampling_late_spans_total", &[("outcome", "dropped")]), 90.0);
    // Shutting the two down writes one file each; the next start reads both.
    for w in &mut workers {
        w.flush(&mut Vec::new());
    }
    let reg = Registry::new();
    build(&json, dir.path(), &reg, 0, 1).flush(&mut Vec::new());
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "sampled")]), 10.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "not_sampled")]), 90.0);
}

/// Traces `range` (10 spans, the multiples of 10 with an error) at `t`.
fn traces(p: &mut TailSamplingProcessor, range: std::ops::Range<u64>, t: Instant, out: &mut Vec<Batch>) {
    let spans = range.flat_map(|n| (0..SPANS).map(move |i| span(n, i, n % 10 == 0))).collect();
    p.process(batch(spans), t, out);
}

fn saves(reg: &Registry, result: &str) -> f64 {
    metric(reg, "sluice_tail_sampling_decision_saves_total", &[("result", result)])
}

#[test]
fn decisions_saved_every_interval_survive_a_kill_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let json = format!(
        r#"{{"decision_wait": "5s", "decision_save_interval": "2s", "storage": "file_storage", "policies": {ERRORS}}}"#
    );
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let reg = Registry::new();
    let mut p = build(&json, dir.path(), &reg, 0, 1);
    let mut out = Vec::new();
    traces(&mut p, 0..100, t0, &mut out);
    assert_eq!(p.next_deadline(), Some(t0 + s(5)), "no save is due before a decision");
    p.tick(t0 + s(5), &mut out);
    assert_eq!(collect(std::mem::take(&mut out)).len(), 10);
    assert_eq!(p.next_deadline(), Some(t0 + s(7)), "the decisions are due to be saved one interval later");
    assert!(!dir.path().join("decisions-0").exists());
    p.tick(t0 + s(7), &mut out);
    assert_eq!((saves(&reg, "snapshot"), saves(&reg, "appended")), (1.0, 0.0), "the first save writes the file whole");
    assert_eq!(p.next_deadline(), None, "nothing waits, nothing to save");
    traces(&mut p, 100..200, t0 + s(7), &mut out);
    p.tick(t0 + s(12), &mut out);
    p.tick(t0 + s(14), &mut out);
    assert_eq!((saves(&reg, "snapshot"), saves(&reg, "appended")), (1.0, 1.0), "later saves append");
    // Decided, but the process is killed before their save is due: lost.
    traces(&mut p, 200..300, t0 + s(14), &mut out);
    p.tick(t0 + s(19), &mut out);
    assert_eq!(collect(std::mem::take(&mut out)).len(), 20);
    drop(p); // kill -9: no flush

    let reg = Registry::new();
    let mut p = build(&json, dir.path(), &reg, 0, 1);
    let late: Vec<Span> = (0..300).map(|n| span(n, 50, false)).collect();
    p.process(batch(late), t0 + s(30), &mut out);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "sampled")]), 20.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "not_sampled")]), 180.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_late_spans_total", &[("outcome", "kept")]), 20.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_late_spans_total", &[("outcome", "dropped")]), 180.0);
    assert_eq!(p.traces_in_memory(), 100, "the last interval's traces are decided anew");
    let kept = collect(out);
    assert_eq!(kept.len(), 20);
    assert!((0..200).step_by(10).all(|n| kept[&trace_id(n)].len() == 1));
}

#[test]
fn a_failed_save_is_counted_and_the_next_rewrites_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let json = format!(
        r#"{{"decision_wait": "1s", "decision_save_interval": "1s", "storage": "file_storage", "policies": {ERRORS}}}"#
    );
    let (t0, s) = (Instant::now(), Duration::from_secs);
    let reg = Registry::new();
    let mut p = build(&json, dir.path(), &reg, 0, 1);
    let mut out = Vec::new();
    traces(&mut p, 0..10, t0, &mut out);
    p.tick(t0 + s(1), &mut out);
    // The directory replaced by a file: the save cannot write.
    let spill_dir = dir.path().join("spill-0");
    std::fs::rename(dir.path(), dir.path().with_extension("moved")).unwrap();
    std::fs::write(dir.path(), b"not a directory").unwrap();
    p.tick(t0 + s(2), &mut out);
    assert_eq!(saves(&reg, "failed"), 1.0);
    std::fs::remove_file(dir.path()).unwrap();
    std::fs::rename(dir.path().with_extension("moved"), dir.path()).unwrap();
    assert!(spill_dir.exists());
    traces(&mut p, 10..20, t0 + s(2), &mut out);
    p.tick(t0 + s(3), &mut out);
    p.tick(t0 + s(4), &mut out);
    assert_eq!(saves(&reg, "snapshot"), 1.0);
    drop(p);
    let reg = Registry::new();
    build(&json, dir.path(), &reg, 0, 1).tick(t0 + s(5), &mut out);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "sampled")]), 2.0);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_restored_total", &[("cache", "not_sampled")]), 18.0);
}

#[test]
fn damaged_saved_decisions_and_stale_spill_files_are_counted_at_start_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("decisions-0"), b"SLTSDC1\n\xff\xff\xff\xff garbage").unwrap();
    std::fs::write(dir.path().join("decisions-1"), b"not ours at all").unwrap();
    std::fs::create_dir_all(dir.path().join("spill-0")).unwrap();
    std::fs::write(dir.path().join("spill-0").join("spill-00000000"), vec![7u8; 5000]).unwrap();
    let reg = Registry::new();
    let json = format!(r#"{{"storage": "file_storage", "policies": {ERRORS}}}"#);
    let mut p = build(&json, dir.path(), &reg, 0, 1);
    assert_eq!(metric(&reg, "sluice_tail_sampling_spill_discarded_bytes_total", &[]), 5000.0);
    let mut out = Vec::new();
    p.process(batch(vec![span(1, SPANS - 1, true)]), Instant::now(), &mut out);
    assert_eq!(metric(&reg, "sluice_tail_sampling_decisions_corrupt_total", &[]), 2.0);
    p.flush(&mut out);
    assert_eq!(collect(out).len(), 1, "runs normally");
    assert!(!dir.path().join("decisions-1").exists(), "a file of a worker that no longer exists is removed");
}

#[test]
fn storage_must_name_a_started_file_storage_extension() {
    let yaml = |ext: &str, started: &str| {
        format!(
            "extensions:\n  {ext}\nreceivers:\n  otlp:\n    protocols: {{grpc: {{endpoint: 127.0.0.1:4317}}}}\n\
             processors:\n  tail_sampling:\n    storage: file_storage\n    max_disk_mib: 5\n    policies: [{{name: a, type: always_sample}}]\n\
             exporters:\n  debug: {{}}\nservice:\n  extensions: [{started}]\n  pipelines:\n    traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}\n"
        )
    };
    let errors = |text: &str| -> Vec<String> {
        match crate::service::load::load_agent_config(text, &|_| None) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    };
    let ok = yaml("file_storage: {directory: /tmp/sluice-spill-test}", "file_storage");
    assert_eq!(errors(&ok), Vec::<String>::new());
    let shown = errors(&ok.replace("max_disk_mib: 5", "max_disk_mib: 0"));
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("processors::tail_sampling::max_disk_mib (line 9): max_disk_mib must be above 0")),
        "{shown:#?}"
    );
    let shown = errors(&yaml("health_check: {}\n  file_storage: {directory: /tmp/sluice-spill-test}", "health_check"));
    assert!(
        shown.iter().any(|e| e.starts_with(
            "processors::tail_sampling::storage (line 9): storage extension \"file_storage\" is not started"
        )),
        "{shown:#?}"
    );
    let shown =
        errors(&yaml("health_check: {}", "health_check").replace("storage: file_storage", "storage: health_check"));
    assert!(
        shown
            .iter()
            .any(|e| e.contains("processors::tail_sampling::storage") && e.contains("is not a storage extension")),
        "{shown:#?}"
    );
}
