//! Reloads of an agent running in this process: what is kept, what is
//! replaced, and that data offered around a reload reaches its exporters.

use super::*;
use crate::data::{Batch, Payload};
use crate::receivers::BatchSink;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::path::Path;

fn load(yaml: &str) -> AgentConfig {
    crate::service::load(yaml, &|_| None).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A config with an OTLP receiver on a free port, no metrics endpoint, and
/// the given components and pipelines.
fn config(dir: &Path, receiver_endpoint: &str, processors: &str, exporters: &str, pipelines: &str) -> AgentConfig {
    let dir = dir.display();
    load(
        &format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: {receiver_endpoint}\n\
         processors:\n{processors}\n\
         exporters:\n{exporters}\n\
         service:\n  telemetry:\n    metrics:\n      address: \"\"\n  pipelines:\n{pipelines}\n"
        )
        .replace("DIR", &dir.to_string()),
    )
}

fn spans(names: &[&str]) -> Payload {
    Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Span {
                        trace_id: vec![i as u8 + 1; 16],
                        span_id: vec![1; 8],
                        name: n.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

/// Span names written by a `file` exporter (JSON lines of OTLP requests).
fn names_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    names.push(s["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    names.sort();
    names
}

const FILE_A: &str = "  file/a:\n    path: DIR/a.json\n    flush_interval: 10ms\n";
const FILE_B: &str = "  file/b:\n    path: DIR/b.json\n    flush_interval: 10ms\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_unchanged_parts_and_replaces_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let otlp =
        |endpoint: &str| format!("  otlp/a:\n    endpoint: {endpoint}\n    tls:\n      insecure: true\n  nop:\n");
    let pipelines = "    traces:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [otlp/a]\n\
                     \x20   metrics:\n      receivers: [otlp]\n      exporters: [nop]\n";
    let base = config(dir.path(), "127.0.0.1:0", "  batch:\n", &otlp("127.0.0.1:1"), pipelines);
    let mut agent = start(&base).await.unwrap();
    let grpc = agent.endpoint("receiver otlp grpc").unwrap();
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let exporter = (ComponentId::parse("otlp/a").unwrap(), Signal::Traces);
    let door = agent.pipelines[&traces].door.clone();
    let queue = agent.exporters[&exporter].queue.clone();

    // Same config: nothing changes.
    let summary = agent.reload(&base).await.unwrap();
    assert!(summary.unchanged(), "{summary:?}");
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door));

    // A new endpoint for the exporter (same queue) and a processor added to
    // the metrics pipeline.
    let pipelines2 = pipelines.replace("exporters: [nop]", "processors: [batch]\n      exporters: [nop]");
    let next = config(dir.path(), "127.0.0.1:0", "  batch:\n", &otlp("127.0.0.1:2"), &pipelines2);
    let summary = agent.reload(&next).await.unwrap();
    assert_eq!(summary.replaced, vec!["pipelines::metrics", "exporters::otlp/a (traces)"], "{summary:?}");
    assert!(summary.added.is_empty() && summary.removed.is_empty(), "{summary:?}");
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door), "the traces pipeline keeps running");
    assert!(Arc::ptr_eq(&queue, &agent.exporters[&exporter].queue), "the exporter keeps its queue");
    assert_eq!(agent.endpoint("receiver otlp grpc"), Some(grpc), "the receiver keeps its listener");

    // A new queue size: a new queue, which the kept pipeline now feeds.
    let next2 = config(
        dir.path(),
        "127.0.0.1:0",
        "  batch:\n",
        &otlp("127.0.0.1:2").replace("    tls:", "    sending_queue:\n      queue_size: 7\n    tls:"),
        &pipelines2,
    );
    let summary = agent.reload(&next2).await.unwrap();
    assert_eq!(summary.replaced, vec!["exporters::otlp/a (traces)"], "{summary:?}");
    let new_queue = agent.exporters[&exporter].queue.clone();
    assert!(!Arc::ptr_eq(&queue, &new_queue));
    assert_eq!(new_queue.capacity(), 7);
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door));
    assert!(Arc::ptr_eq(&agent.pipelines[&traces].queues[0], &new_queue), "the kept pipeline feeds the new queue");
    assert!(agent.shutdown().await.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_offered_around_a_reload_reaches_every_exporter_of_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let one = "    traces:\n      receivers: [otlp]\n      exporters: [file/a]\n";
    let two = "    traces:\n      receivers: [otlp]\n      exporters: [file/a, file/b]\n";
    let base = config(dir.path(), "127.0.0.1:0", "  batch:\n", FILE_A, one);
    let mut agent = start(&base).await.unwrap();
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let door = agent.pipelines[&traces].door.clone();
    door.offer(spans(&["before"])).unwrap();
    // A batch still in the pipeline's input when the reload lands goes to the
    // exporters the pipeline has then; wait until this one has left it.
    let written = dir.path().join("a.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&written).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first batch never reached file/a");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // An exporter added to a kept pipeline: its workers pause and resume.
    let summary = agent
        .reload(&config(dir.path(), "127.0.0.1:0", "  batch:\n", &format!("{FILE_A}{FILE_B}"), two))
        .await
        .unwrap();
    assert_eq!(summary.added, vec!["exporters::file/b (traces)"]);
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door));
    door.offer(spans(&["between"])).unwrap();

    // The pipeline replaced (a processor added): the old door forwards.
    let with_batch = two.replace("exporters:", "processors: [batch]\n      exporters:");
    let summary = agent
        .reload(&config(dir.path(), "127.0.0.1:0", "  batch:\n", &format!("{FILE_A}{FILE_B}"), &with_batch))
        .await
        .unwrap();
    assert_eq!(summary.replaced, vec!["pipelines::traces"]);
    door.offer(spans(&["after", "after"])).unwrap();
    assert!(agent.shutdown().await.clean);

    assert_eq!(names_in(&dir.path().join("a.json")), ["after", "after", "before", "between"]);
    assert_eq!(names_in(&dir.path().join("b.json")), ["after", "after", "between"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_cannot_start_leaves_the_running_config_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pipes = "    traces:\n      receivers: [otlp]\n      exporters: [file/a]\n";
    let base = config(dir.path(), "127.0.0.1:0", "  batch:\n", FILE_A, pipes);
    let mut agent = start(&base).await.unwrap();
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let door = agent.pipelines[&traces].door.clone();

    // file/b cannot open its file; the pipeline (replaced by the plan) stays.
    let bad = FILE_B.replace("DIR/b.json", "DIR/missing/b.json");
    let next = config(
        dir.path(),
        "127.0.0.1:0",
        "  batch:\n",
        &format!("{FILE_A}{bad}"),
        &pipes.replace("exporters: [file/a]", "processors: [batch]\n      exporters: [file/a, file/b]"),
    );
    let err = agent.reload(&next).await.unwrap_err();
    assert!(matches!(err, ReloadError::NotApplied(_)), "{err}");
    assert!(err.to_string().contains("file/b"), "{err}");
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door));
    assert_eq!(agent.exporters.len(), 1);
    door.offer(spans(&["still"])).unwrap();
    assert!(agent.shutdown().await.clean);
    assert_eq!(names_in(&dir.path().join("a.json")), ["still"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_moves_to_its_new_endpoint_and_a_removed_one_stops() {
    let dir = tempfile::tempdir().unwrap();
    let pipes = "    traces:\n      receivers: [otlp]\n      exporters: [file/a]\n";
    let base = config(dir.path(), "127.0.0.1:0", "  batch:\n", FILE_A, pipes);
    let mut agent = start(&base).await.unwrap();
    let old = agent.endpoint("receiver otlp grpc").unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let summary = agent.reload(&config(dir.path(), &free.to_string(), "  batch:\n", FILE_A, pipes)).await.unwrap();
    assert_eq!(summary.replaced, vec!["receivers::otlp"]);
    assert_eq!(agent.endpoint("receiver otlp grpc"), Some(free));
    assert!(std::net::TcpStream::connect(old).is_err(), "the old port is closed");
    assert!(std::net::TcpStream::connect(free).is_ok(), "the new port listens");

    // A port another process holds: the receiver keeps its previous settings.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let next = config(dir.path(), &taken.local_addr().unwrap().to_string(), "  batch:\n", FILE_A, pipes);
    let err = agent.reload(&next).await.unwrap_err();
    assert!(matches!(err, ReloadError::Partial(_)), "{err}");
    assert!(err.to_string().contains("keeps its previous settings"), "{err}");
    assert_eq!(agent.endpoint("receiver otlp grpc"), Some(free));
    assert!(std::net::TcpStream::connect(free).is_ok());
    assert!(agent.shutdown().await.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_restarts_a_receiver_whose_certificate_file_changed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::receivers::tls::test_certs::make(dir.path());
    let endpoint = format!(
        "127.0.0.1:0\n        tls:\n          cert_file: {}\n          key_file: {}",
        pki.server_cert_file, pki.server_key_file
    );
    let pipes = "    traces:\n      receivers: [otlp]\n      exporters: [file/a]\n";
    let cfg = config(dir.path(), &endpoint, "  batch:\n", FILE_A, pipes);
    let mut agent = start(&cfg).await.unwrap();
    assert!(agent.reload(&cfg).await.unwrap().unchanged(), "same files, same config");
    // A rotation: new certificate and key under the same paths.
    crate::receivers::tls::test_certs::make(dir.path());
    let summary = agent.reload(&cfg).await.unwrap();
    assert_eq!(summary.replaced, vec!["receivers::otlp"], "{summary:?}");
    assert!(agent.shutdown().await.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connector_keeps_its_queue_and_feeds_the_pipelines_of_the_new_config() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = format!("{FILE_A}{FILE_B}connectors:\n  forward:\n");
    let one = "    traces:\n      receivers: [otlp]\n      exporters: [forward]\n\
               \x20   traces/a:\n      receivers: [forward]\n      exporters: [file/a]\n";
    let two = format!("{one}    traces/b:\n      receivers: [forward]\n      exporters: [file/b]\n");
    let base = config(dir.path(), "127.0.0.1:0", "  batch:\n", &exporters, one);
    let mut agent = start(&base).await.unwrap();
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let key = (ComponentId::parse("forward").unwrap(), Signal::Traces, Signal::Traces);
    let queue = agent.connectors[&key].queue.clone();
    let door = agent.pipelines[&traces].door.clone();
    door.offer(spans(&["before"])).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&dir.path().join("a.json")).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first batch never went through the connector");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // A second receiving pipeline: the connector is kept and fans out to both.
    let summary = agent.reload(&config(dir.path(), "127.0.0.1:0", "  batch:\n", &exporters, &two)).await.unwrap();
    assert_eq!(summary.added, vec!["pipelines::traces/b", "exporters::file/b (traces)"], "{summary:?}");
    assert!(Arc::ptr_eq(&queue, &agent.connectors[&key].queue), "the connector keeps its queue");
    assert!(Arc::ptr_eq(&door, &agent.pipelines[&traces].door));
    door.offer(spans(&["between"])).unwrap();
    // (A batch still in the traces pipeline's input at the next reload would
    // go straight to file/a: let this one through the connector first.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&dir.path().join("b.json")).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the batch never reached traces/b");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // The connector gone, the traces pipeline exports to file/a itself; the
    // connector drains into traces/a and traces/b before they retire.
    let direct = "    traces:\n      receivers: [otlp]\n      exporters: [file/a]\n";
    let summary =
        agent.reload(&config(dir.path(), "127.0.0.1:0", "  batch:\n", &format!("{FILE_A}{FILE_B}"), direct)).await;
    let summary = summary.unwrap();
    assert!(summary.removed.contains(&"connectors::forward (traces to traces)".to_string()), "{summary:?}");
    assert!(agent.connectors.is_empty());
    door.offer(spans(&["after"])).unwrap();
    assert!(agent.shutdown().await.clean);

    assert_eq!(names_in(&dir.path().join("a.json")), ["after", "before", "between"]);
    assert_eq!(names_in(&dir.path().join("b.json")), ["between"]);
}

/// One span of trace `trace`, with attribute `keep: yes` when `keep`.
fn traced(trace: u8, name: &str, keep: bool) -> Span {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![trace, 1, 2, 3, 4, 5, 6, name.len() as u8],
        name: name.to_string(),
        attributes: keep
            .then(|| KeyValue {
                key: "keep".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue("yes".into())) }),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn batch_of(spans: Vec<Span>) -> Payload {
    Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }))
}

/// A config with a `file_storage` at `dir/storage`, the otlp receiver and
/// file/a (`DIR` in any of it is `dir`): `components` (a `processors:` or
/// `connectors:` section) and `pipelines` (the body of
/// `service.pipelines`) are the test's own.
/// Starts on `config("storage-a")`, checks that reloading the same config
/// changes nothing, and reloads onto `config("storage-b")`: the agent and
/// what that reload did.
async fn start_then_move_storage(config: impl Fn(&str) -> AgentConfig) -> (RunningAgent, ReloadSummary) {
    let mut agent = start(&config("storage-a")).await.unwrap();
    let same = agent.reload(&config("storage-a")).await.unwrap();
    assert!(same.unchanged(), "{same:?}");
    let moved = agent.reload(&config("storage-b")).await.unwrap();
    (agent, moved)
}

fn stored_config(dir: &Path, storage: &str, components: &str, pipelines: &str) -> AgentConfig {
    let yaml = format!(
        "extensions:\n  file_storage:\n    directory: DIR/{storage}\n\
         receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\n\
         {components}exporters:\n{FILE_A}\
         service:\n  extensions: [file_storage]\n  telemetry:\n    metrics:\n      address: \"\"\n\
         \x20 pipelines:\n{pipelines}"
    );
    load(&yaml.replace("DIR", &dir.display().to_string()))
}

/// `traces`: otlp → tail_sampling → file/a.
const TAIL_SAMPLED: &str =
    "    traces:\n      receivers: [otlp]\n      processors: [tail_sampling]\n      exporters: [file/a]\n";

/// A reload that replaces a `tail_sampling` pipeline with `storage`: the
/// new instances read the decision caches only after the old ones have
/// saved them at their flush, so late spans follow the decisions the old
/// instances made, up to their last one. (Before, the new instances read
/// the files when they were built, before the old ones saved.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_tail_sampler_follows_every_decision_of_the_one_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = |wait: &str| {
        let processors = format!(
            "processors:\n  tail_sampling:\n    decision_wait: {wait}\n    decision_save_interval: 10m\n\
             \x20   storage: file_storage\n    policies:\n      - name: keep\n        type: string_attribute\n\
             \x20       string_attribute: {{key: keep, values: [\"yes\"]}}\n"
        );
        stored_config(dir.path(), "storage", &processors, &format!("{TAIL_SAMPLED}      workers: 2\n"))
    };
    let mut agent = start(&yaml("100ms")).await.unwrap();
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let door = agent.pipelines[&traces].door.clone();
    // Traces 1..=8: the odd ones have `keep: yes` and are kept.
    let first = (1..=8u8).map(|t| traced(t, &format!("first-{t}"), t % 2 == 1)).collect();
    door.offer(batch_of(first)).unwrap();
    let written = dir.path().join("a.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&written).len() < 4 {
        assert!(std::time::Instant::now() < deadline, "the kept traces never reached file/a");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Decided, and saved nowhere yet (the save interval is 10 minutes).
    assert!(!dir.path().join("storage/processor_tail_sampling_traces/decisions-0").exists());

    // Another decision_wait: the pipeline is replaced.
    let summary = agent.reload(&yaml("150ms")).await.unwrap();
    assert_eq!(summary.replaced, vec!["pipelines::traces"], "{summary:?}");
    let restored = |cache: &str| {
        agent
            .registry
            .value("sluice_tail_sampling_decisions_restored_total", &[("processor", "tail_sampling"), ("cache", cache)])
    };
    // Late spans, the other way round: a kept trace's without `keep`, a
    // dropped trace's with it. Each follows the earlier decision.
    let late = (1..=8u8).map(|t| traced(t, &format!("late-{t}"), t % 2 == 0)).collect();
    agent.pipelines[&traces].door.offer(batch_of(late)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&written).len() < 8 {
        assert!(std::time::Instant::now() < deadline, "late spans of kept traces: {:?}", names_in(&written));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!((restored("sampled"), restored("not_sampled")), (Some(4.0), Some(4.0)));
    assert!(agent.shutdown().await.clean);
    let mut expect: Vec<String> =
        [1, 3, 5, 7].iter().flat_map(|t| [format!("first-{t}"), format!("late-{t}")]).collect();
    expect.sort();
    assert_eq!(names_in(&written), expect, "no late span of a dropped trace, every late span of a kept one");
}

/// A pipeline whose processors keep files in a storage takes no batch
/// until released, and one abandoned before its release runs nothing
/// (writes no file into the storage the running pipeline uses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_with_stored_state_waits_for_its_release_and_an_abandoned_one_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let processors = "processors:\n  tail_sampling:\n    decision_wait: 1s\n    storage: file_storage\n\
                      \x20   policies: [{name: all, type: always_sample}]\n";
    let cfg = stored_config(dir.path(), "storage", processors, TAIL_SAMPLED);
    let traces = PipelineId { signal: Signal::Traces, name: None };
    let registry = Registry::new();
    let p = &cfg.service.pipelines[&traces];
    let incoming = || {
        registry
            .value(
                "otelcol_processor_incoming_items_total",
                &[("processor", "tail_sampling"), ("otel_signal", "traces")],
            )
            .unwrap_or(0.0)
    };
    let decisions = dir.path().join("storage/processor_tail_sampling_traces/decisions-0");

    let abandoned = start_pipeline(&traces, p, &cfg, &BTreeMap::new(), Vec::new(), &registry).unwrap();
    assert!(join_workers(abandoned.abandon()).await);
    assert!(!decisions.exists(), "an abandoned pipeline never flushed nor saved");

    let mut held = start_pipeline(&traces, p, &cfg, &BTreeMap::new(), Vec::new(), &registry).unwrap();
    held.door.offer(spans(&["waiting"])).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(incoming(), 0.0, "held: the batch waits in its input");
    held.release();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while incoming() < 1.0 {
        assert!(std::time::Instant::now() < deadline, "released, the worker never took the batch");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(join_workers(held.retire(None)).await);
    assert!(decisions.exists(), "a pipeline that ran saves its decisions at its flush");
}

/// A reload that moves the `file_storage` directory a processor keeps its
/// files in replaces that pipeline, though the processor's own settings are
/// unchanged: the new instance reads and writes the new directory (before,
/// the pipeline was kept and went on writing the old one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_storage_directory_replaces_the_pipelines_that_keep_files_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let processors = "processors:\n  tail_sampling:\n    decision_wait: 100ms\n    storage: file_storage\n\
                      \x20   policies: [{name: all, type: always_sample}]\n";
    let (agent, moved) =
        start_then_move_storage(|storage| stored_config(dir.path(), storage, processors, TAIL_SAMPLED)).await;
    assert_eq!(moved.replaced, vec!["pipelines::traces"], "{moved:?}");

    let traces = PipelineId { signal: Signal::Traces, name: None };
    agent.pipelines[&traces].door.offer(batch_of(vec![traced(1, "after-move", true)])).unwrap();
    let written = dir.path().join("a.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while names_in(&written).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the trace never reached file/a");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(agent.shutdown().await.clean);
    // The decision was made by the new instance and saved where the extension now points.
    let saved = |storage: &str| dir.path().join(storage).join("processor_tail_sampling_traces/decisions-0");
    assert!(saved("storage-b").exists(), "nothing saved in the new directory");
}

/// The same for a connector: an `slo` connector whose storage moved is
/// replaced, one whose storage stayed is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_storage_directory_replaces_the_connectors_that_keep_files_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let connectors = "connectors:\n  slo:\n    storage: file_storage\n    slos:\n      - name: availability\n\
                      \x20       service: checkout\n        objective: 99\n";
    let pipelines = "    traces:\n      receivers: [otlp]\n      exporters: [slo]\n\
                     \x20   metrics:\n      receivers: [slo]\n      exporters: [file/a]\n";
    let (agent, moved) =
        start_then_move_storage(|storage| stored_config(dir.path(), storage, connectors, pipelines)).await;
    assert_eq!(moved.replaced, vec!["connectors::slo (traces to metrics)"], "{moved:?}");
    assert!(agent.shutdown().await.clean);
}
