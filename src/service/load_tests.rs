use super::*;
use crate::exporters::otlp_common::{Compression, FullQueuePolicy};
use crate::processors::batch::config::BatchConfig;
use std::collections::HashMap;

const GIB: u64 = 1024 * 1024 * 1024;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| m.get(k).cloned()
}

fn load(text: &str) -> Result<AgentConfig, ConfigErrors> {
    load_with_memory(text, &env_of(&[]), Some(8 * GIB))
}

fn id(s: &str) -> ComponentId {
    ComponentId::parse(s).unwrap()
}

#[test]
fn default_config_loads_with_three_pipelines() {
    let cfg = load_agent_config(DEFAULT_CONFIG, &|_| None).unwrap();
    assert_eq!(cfg.service.pipelines.len(), 3);
    assert_eq!(cfg.service.extensions, vec![id("health_check")]);
    assert_eq!(cfg.service.shutdown_timeout, std::time::Duration::from_secs(10));
    assert!(
        matches!(cfg.processors.get(&id("batch")), Some(p) if p.downcast_ref::<BatchConfig>().is_some_and(|b| b.send_batch_size == 8192))
    );
}

const REALISTIC: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
        max_recv_msg_size_mib: 16
      http:
        endpoint: 0.0.0.0:4318

processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1500
    spike_limit_mib: 512
  batch:
    send_batch_size: 10000
    send_batch_max_size: 11000
    timeout: 10s

exporters:
  otlp/tempo:
    endpoint: tempo.observability.svc:4317
    tls:
      insecure: false
      ca_file: /etc/ssl/tempo-ca.pem
    headers:
      X-Scope-OrgID: tenant-1
    compression: zstd
    retry_on_failure:
      enabled: true
      initial_interval: 1s
      max_interval: 30s
      max_elapsed_time: 5m
    sending_queue:
      enabled: true
      num_consumers: 4
      queue_size: 5000
  otlphttp:
    traces_endpoint: https://otlp.example.com/v1/traces
    headers:
      Authorization: "Bearer ${env:TOKEN}"
  debug:
    verbosity: detailed

extensions:
  health_check:
    endpoint: 0.0.0.0:13133

service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 0.0.0.0:8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/tempo, otlphttp, debug]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/tempo]
"#;

#[test]
fn realistic_collector_config_loads() {
    let cfg = load_with_memory(REALISTIC, &env_of(&[("TOKEN", "s3cr3t")]), None).unwrap();
    let Some(tempo) = cfg
        .exporters
        .get(&id("otlp/tempo"))
        .and_then(|e| e.downcast_ref::<crate::exporters::otlp::config::OtlpExporterConfig>())
    else {
        panic!("otlp/tempo")
    };
    assert_eq!(tempo.endpoint, "tempo.observability.svc:4317");
    assert_eq!(tempo.tls.ca_file.as_deref(), Some("/etc/ssl/tempo-ca.pem"));
    assert_eq!(tempo.headers.get("X-Scope-OrgID").map(String::as_str), Some("tenant-1"));
    assert_eq!(tempo.compression, Compression::Zstd);
    assert_eq!(tempo.retry_on_failure.initial_interval, Duration::from_secs(1));
    assert_eq!(tempo.retry_on_failure.max_elapsed_time, Duration::from_secs(300));
    assert_eq!(tempo.retry_on_failure.multiplier, 1.5); // default
    assert_eq!(tempo.sending_queue.queue_size, 5000);
    assert_eq!(tempo.sending_queue.policy(), FullQueuePolicy::Block);
    assert_eq!(tempo.timeout, Duration::from_secs(5)); // default
    let Some(http) = cfg
        .exporters
        .get(&id("otlphttp"))
        .and_then(|e| e.downcast_ref::<crate::exporters::otlphttp::config::OtlpHttpExporterConfig>())
    else {
        panic!("otlphttp")
    };
    assert_eq!(http.headers.get("Authorization").map(String::as_str), Some("Bearer s3cr3t"));
    assert_eq!(http.timeout, Duration::from_secs(30));
    let Some(otlp) = cfg
        .receivers
        .get(&id("otlp"))
        .and_then(|c| c.downcast_ref::<crate::receivers::otlp::config::OtlpReceiverConfig>())
    else {
        panic!("otlp")
    };
    let grpc = otlp.protocols.grpc.as_ref().unwrap();
    assert_eq!((grpc.endpoint.as_str(), grpc.max_recv_msg_size_mib), ("0.0.0.0:4317", 16));
    assert_eq!(otlp.protocols.http.as_ref().unwrap().max_request_body_size, 20 * 1024 * 1024);
    let Some(batch) = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()) else {
        panic!("batch")
    };
    assert_eq!(batch.timeout, Duration::from_secs(10));
    assert_eq!(cfg.service.telemetry.metrics.address, "0.0.0.0:8888");
    assert_eq!(cfg.service.pipelines.len(), 2);
    let traces = &cfg.service.pipelines[&PipelineId { signal: Signal::Traces, name: None }];
    assert_eq!(traces.exporters, ["otlp/tempo", "otlphttp", "debug"]);
    assert_eq!(traces.channel_capacity, None, "left out: the default, resolved when the pipeline is built");
}

/// A minimal valid config with `{X}` replaced: tests change one thing.
const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
processors:
  batch:
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
";

#[test]
fn base_config_is_valid() {
    load(BASE).unwrap();
}

/// BASE plus a `file_storage` extension (`ext_body`) and an `otlp` exporter
/// whose queue uses `storage`; `service_extensions` is inserted under `service:`.
fn storage_config(storage: &str, service_extensions: &str, ext_body: &str) -> String {
    let text = BASE
        .replace(
            "  debug:\n",
            &format!("  debug:\n  otlp:\n    endpoint: b:4317\n    sending_queue:\n      storage: {storage}\n"),
        )
        .replace("service:\n", &format!("service:\n{service_extensions}"));
    format!("extensions:\n  file_storage:\n{ext_body}{text}")
}

#[test]
fn persistent_queue_config_loads() {
    let text = storage_config(
        "file_storage",
        "  extensions: [file_storage]\n",
        "    directory: /tmp/sluice-cfg-test\n    fsync: true\n",
    )
    .replace("[debug]", "[otlp]");
    let cfg = load(&text).unwrap();
    let Some(fs) = cfg
        .extensions
        .get(&id("file_storage"))
        .and_then(|c| c.downcast_ref::<crate::queue::storage_config::FileStorageConfig>())
    else {
        panic!("no file_storage")
    };
    assert!(fs.fsync);
    let Some(o) = cfg
        .exporters
        .get(&id("otlp"))
        .and_then(|e| e.downcast_ref::<crate::exporters::otlp::config::OtlpExporterConfig>())
    else {
        panic!("no otlp")
    };
    assert_eq!(o.sending_queue.storage.as_deref(), Some("file_storage"));
    assert_eq!(o.sending_queue.max_size_mib, 512);
}

/// A `filelog` → `debug` logs pipeline; `{X}` (at line 4) takes more receiver fields.
const FILELOG: &str = "receivers:
  filelog:
    include: [/var/log/pods/*/*/*.log]
{X}exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [debug]
";

fn filelog(fields: &str) -> String {
    FILELOG.replace("{X}", fields)
}

#[test]
fn filelog_config_loads_with_collector_defaults() {
    let cfg = load(&filelog("")).unwrap();
    let Some(f) = cfg
        .receivers
        .get(&id("filelog"))
        .and_then(|c| c.downcast_ref::<crate::receivers::filelog::config::FilelogReceiverConfig>())
    else {
        panic!("no filelog")
    };
    assert_eq!(f.start_at, "end");
    assert!(f.include_file_name && !f.include_file_path);
    assert_eq!(f.poll_interval.get(), std::time::Duration::from_millis(200));
    assert_eq!((f.max_log_size.0, f.fingerprint_size.0, f.max_concurrent_files), (1 << 20, 1024, 1024));
    let text = format!(
        "extensions:\n  file_storage:\n    directory: /tmp\n{}",
        filelog(
            "    start_at: beginning\n    storage: file_storage\n    max_log_size: 64KiB\n    fingerprint_size: 2kb\n\
             \x20   multiline: {line_start_pattern: '^\\S'}\n    operators:\n      - {type: container, id: cri-parser, format: crio, add_metadata_from_filepath: false, max_log_size: 32kb}\n"
        )
        .replace("service:\n", "service:\n  extensions: [file_storage]\n")
    );
    let cfg = load(&text).unwrap();
    let Some(f) = cfg
        .receivers
        .get(&id("filelog"))
        .and_then(|c| c.downcast_ref::<crate::receivers::filelog::config::FilelogReceiverConfig>())
    else {
        panic!("no filelog")
    };
    assert_eq!((f.max_log_size.0, f.fingerprint_size.0), (64 << 10, 2048));
    assert_eq!(f.storage.as_deref(), Some("file_storage"));
    let op = f.container().unwrap();
    assert_eq!((op.format.as_deref(), op.add_metadata_from_filepath), (Some("crio"), false));
    assert_eq!(op.max_log_size.map(|m| m.0), Some(32 << 10));
    // filelog reads logs only.
    let err = load(&filelog("").replace("    logs:\n", "    traces:\n")).unwrap_err().to_string();
    assert!(err.contains("receiver \"filelog\" does not support traces"), "{err}");
}

#[test]
fn bad_configs_report_path_line_and_hint() {
    // (config, path, line, substring of the message or hint)
    let cases: &[(&str, &str, usize, &str)] = &[
        // unknown field with a typo
        (
            "exporters:\n  otlp/tempo:\n    endpoint: tempo:4317\n    retry_on_failure:\n      max_intervall: 5s\n\
             service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [otlp/tempo]}\nreceivers:\n  otlp:\n    protocols: {grpc: }\n",
            "exporters::otlp/tempo::retry_on_failure::max_intervall",
            5,
            "unknown field \"max_intervall\"; hint: did you mean \"max_interval\"?",
        ),
        // wrong type for a duration
        (&BASE.replace("  batch:\n", "  batch:\n    timeout: [1s]\n"), "processors::batch::timeout", 7, "expected a duration"),
        (&BASE.replace("  batch:\n", "  batch:\n    timeout: soon\n"), "processors::batch::timeout", 7, "invalid duration"),
        // unknown component type
        (
            &BASE.replace("  otlp:\n", "  otlpp:\n"),
            "receivers::otlpp",
            2,
            "unknown receiver type \"otlpp\"; hint: did you mean \"otlp\"? (built-in receivers: otlp, otlp_grpc, filelog, file_log)",
        ),
        // undefined exporter referenced from a pipeline
        (
            &BASE.replace("  debug:\n", "  otlp/tempo:\n    endpoint: t:4317\n").replace("[debug]", "[otlp/temp]"),
            "service::pipelines::traces::exporters::otlp/temp",
            15,
            "undefined exporter \"otlp/temp\": it is not defined under exporters; hint: did you mean \"otlp/tempo\"?",
        ),
        // an extension used as a receiver is an undefined receiver
        (
            &BASE.replace("exporters:\n", "extensions:\n  health_check:\nexporters:\n").replace("[otlp]", "[otlp, health_check]"),
            "service::pipelines::traces::receivers::health_check",
            14,
            "undefined receiver \"health_check\"",
        ),
        // bad pipeline signal name
        (&BASE.replace("    traces:", "    trace:"), "service::pipelines::trace", 11, "did you mean \"traces\"?"),
        // missing required field
        (&BASE.replace("  debug:\n", "  debug:\n  otlp:\n"), "exporters::otlp", 9, "missing field `endpoint`"),
        // bad endpoint port
        (
            &BASE.replace("      grpc:\n", "      grpc:\n        endpoint: 0.0.0.0:99999\n"),
            "receivers::otlp::protocols::grpc::endpoint",
            5,
            "port \"99999\" is not a number",
        ),
        // memory_limiter without limits
        (
            &BASE.replace("  batch:\n", "  batch:\n  memory_limiter:\n    check_interval: 1s\n"),
            "processors::memory_limiter",
            7,
            "one of limit_mib or limit_percentage",
        ),
        // unknown top-level key
        (&format!("{BASE}exportrs:\n"), "exportrs", 15, "did you mean \"exporters\"?"),
        // otlp receiver with no protocol
        (&BASE.replace("      grpc:\n", "      {}\n"), "receivers::otlp::protocols", 3, "at least one protocol"),
        // wrong type, found vs expected
        (&BASE.replace("  batch:\n", "  batch:\n    send_batch_size: many\n"), "processors::batch::send_batch_size", 7, "expected a whole number, 0 or more, found string \"many\""),
        // batch max below size
        (
            &BASE.replace("  batch:\n", "  batch:\n    send_batch_size: 100\n    send_batch_max_size: 10\n"),
            "processors::batch::send_batch_max_size",
            8,
            "must be 0 or at least send_batch_size",
        ),
        // otlphttp with no endpoint for the pipeline's signal
        (
            &BASE.replace("  debug:\n", "  otlphttp:\n    metrics_endpoint: http://m:4318/v1/metrics\n").replace("[debug]", "[otlphttp]"),
            "exporters::otlphttp",
            8,
            "no endpoint for traces, which pipeline \"traces\" sends to it; hint: set endpoint, or traces_endpoint",
        ),
        // otlphttp URL without scheme
        (
            &BASE.replace("  debug:\n", "  otlphttp:\n    endpoint: m:4318\n").replace("[debug]", "[otlphttp]"),
            "exporters::otlphttp::endpoint",
            9,
            "must start with http:// or https://",
        ),
        // tls cert without key
        (
            &BASE.replace("  debug:\n", "  otlp:\n    endpoint: t:4317\n    tls:\n      cert_file: c.pem\n").replace("[debug]", "[otlp]"),
            "exporters::otlp::tls::cert_file",
            11,
            "key_file is not",
        ),
        // retry multiplier below 1
        (
            &BASE
                .replace("  debug:\n", "  otlp:\n    endpoint: t:4317\n    retry_on_failure:\n      multiplier: 0.5\n")
                .replace("[debug]", "[otlp]"),
            "exporters::otlp::retry_on_failure::multiplier",
            11,
            "at least 1",
        ),
        // sending queue of size 0
        (
            &BASE
                .replace("  debug:\n", "  otlp:\n    endpoint: t:4317\n    sending_queue:\n      queue_size: 0\n")
                .replace("[debug]", "[otlp]"),
            "exporters::otlp::sending_queue::queue_size",
            11,
            "queue_size must be at least 1",
        ),
        // file exporter path empty
        (&BASE.replace("  debug:\n", "  debug:\n  file:\n    path: \"\"\n"), "exporters::file::path", 10, "path must not be empty"),
        // connectors
        (&format!("{BASE}connectors:\n  forward:\n"), "connectors::forward", 16, "is defined but no pipeline uses it"),
        // same processor twice
        (&BASE.replace("[batch]", "[batch, batch]"), "service::pipelines::traces::processors::batch", 13, "more than once"),
        // pipeline without exporters
        (&BASE.replace("[debug]", "[]"), "service::pipelines::traces::exporters", 14, "at least one exporter"),
        // undefined extension
        (&BASE.replace("service:\n", "service:\n  extensions: [health_chek]\n"), "service::extensions::health_chek", 10, "undefined extension"),
        // unknown enum value
        (&BASE.replace("  debug:\n", "  debug:\n    verbosity: detaild\n"), "exporters::debug::verbosity", 9, "did you mean \"detailed\"?"),
        // duplicate key
        (&BASE.replace("  batch:\n", "  batch:\n  batch:\n"), "processors::batch", 7, "duplicate key \"batch\""),
        // telemetry deny unknown
        (&BASE.replace("service:\n", "service:\n  telemetry:\n    metric: {}\n"), "service::telemetry::metric", 11, "did you mean \"metrics\"?"),
        // malformed env reference
        (&BASE.replace("  debug:\n", "  debug:\n    verbosity: ${env:}\n"), "exporters::debug::verbosity", 9, "empty variable name"),
        // filter: unknown match_type, with a did-you-mean
        (
            &BASE.replace("  batch:\n", "  batch:\n  filter:\n    spans:\n      exclude:\n        match_type: regex\n        span_names: [a]\n"),
            "processors::filter::spans::exclude::match_type",
            10,
            "unknown match_type \"regex\"; hint: did you mean \"regexp\"?",
        ),
        // filter: the invalid pattern is named
        (
            &BASE.replace("  batch:\n", "  batch:\n  filter:\n    logs:\n      include:\n        match_type: regexp\n        bodies:\n          - ok\n          - \"a[\"\n"),
            "processors::filter::logs::include::bodies::1",
            13,
            "invalid regular expression \"a[\"",
        ),
        // filter: unknown span kind
        (
            &BASE.replace("  batch:\n", "  batch:\n  filter:\n    spans:\n      include:\n        match_type: strict\n        span_kinds: [SPAN_KIND_CLEINT]\n"),
            "processors::filter::spans::include::span_kinds::0",
            11,
            "did you mean \"SPAN_KIND_CLIENT\"?",
        ),
        // filter: unknown severity
        (
            &BASE.replace("  batch:\n", "  batch:\n  filter:\n    logs:\n      exclude:\n        match_type: strict\n        severity_number:\n          min: EROR\n"),
            "processors::filter::logs::exclude::severity_number::min",
            12,
            "did you mean \"ERROR\"?",
        ),
        // filter with nothing to filter by
        (
            &BASE.replace("  batch:\n", "  batch:\n  filter:\n    error_mode: ignore\n"),
            "processors::filter",
            7,
            "no include or exclude block",
        ),
        // attributes: unknown action, with did-you-mean
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {key: a, action: upsrt, value: 1}\n"),
            "processors::attributes::actions::0::action",
            9,
            "unknown action \"upsrt\"; hint: did you mean \"upsert\"?",
        ),
        // attributes: missing key
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {action: insert, value: 1}\n"),
            "processors::attributes::actions::0::key",
            9,
            "missing key for action \"insert\"",
        ),
        // attributes: no value source
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {key: a, action: update}\n"),
            "processors::attributes::actions::0",
            9,
            "needs one of value or from_attribute",
        ),
        // attributes: two value sources
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {key: a, action: upsert, value: 1, from_attribute: b}\n"),
            "processors::attributes::actions::0",
            9,
            "exactly one of value or from_attribute",
        ),
        // attributes: invalid regex, on the second action
        (
            &BASE.replace(
                "  batch:\n",
                "  batch:\n  attributes:\n    actions:\n      - {key: a, action: delete}\n      - action: delete\n        pattern: \"user.(\"\n",
            ),
            "processors::attributes::actions::1::pattern",
            11,
            "invalid regex \"user.(\"",
        ),
        // attributes: extract without named groups
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - key: url\n        action: extract\n        pattern: ^(a)$\n"),
            "processors::attributes::actions::0::pattern",
            11,
            "every group must be named",
        ),
        // attributes: convert without converted_type, and with a bad one
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {key: a, action: convert}\n"),
            "processors::attributes::actions::0::converted_type",
            9,
            "needs converted_type; hint: converted_type is one of int, double, string",
        ),
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - key: a\n        action: convert\n        converted_type: str\n"),
            "processors::attributes::actions::0::converted_type",
            11,
            "unknown converted_type \"str\"",
        ),
        // attributes: from_context is refused
        (
            &BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions:\n      - {key: a, action: insert, from_context: auth.sub}\n"),
            "processors::attributes::actions::0::from_context",
            9,
            "from_context is not supported",
        ),
        // attributes: empty action list
        (&BASE.replace("  batch:\n", "  batch:\n  attributes:\n    actions: []\n"), "processors::attributes::actions", 8, "at least one action"),
        // attributes: include/exclude match properties
        (
            &BASE.replace(
                "  batch:\n",
                "  batch:\n  attributes:\n    actions: [{key: a, action: delete}]\n    include:\n      match_type: regexp\n      span_names: [ok, \"(\"]\n",
            ),
            "processors::attributes::include::span_names::1",
            11,
            "invalid regex \"(\"",
        ),
        (
            &BASE.replace(
                "  batch:\n",
                "  batch:\n  attributes:\n    actions: [{key: a, action: delete}]\n    exclude:\n      match_type: strct\n      services: [a]\n",
            ),
            "processors::attributes::exclude::match_type",
            10,
            "did you mean \"strict\"?",
        ),
        // resource: its list is `attributes`, same checks
        (
            &BASE.replace("  batch:\n", "  batch:\n  resource:\n    attributes:\n      - {key: a, action: insrt, value: 1}\n"),
            "processors::resource::attributes::0::action",
            9,
            "did you mean \"insert\"?",
        ),
        (&BASE.replace("  batch:\n", "  batch:\n  resource:\n    attributes: []\n"), "processors::resource::attributes", 8, "at least one action"),
        // sending_queue.storage names no defined extension
        (
            &storage_config("file_storag", "  extensions: [file_storage]\n", "    directory: /tmp/sluice-cfg-test\n"),
            "exporters::otlp::sending_queue::storage",
            15,
            "undefined extension \"file_storag\": it is not defined under extensions; hint: did you mean \"file_storage\"?",
        ),
        // the storage extension is defined but not started
        (
            &storage_config("file_storage", "", "    directory: /tmp/sluice-cfg-test\n"),
            "exporters::otlp::sending_queue::storage",
            15,
            "not listed in service.extensions; hint: add it: service: {extensions: [file_storage]}",
        ),
        // a storage extension without its directory
        (
            &storage_config("file_storage", "  extensions: [file_storage]\n", "    fsync: true\n"),
            "extensions::file_storage",
            2,
            "missing field `directory`",
        ),
        // a directory that is a file
        (
            &storage_config("file_storage", "  extensions: [file_storage]\n", "    directory: /etc/hostname\n"),
            "extensions::file_storage::directory",
            3,
            "/etc/hostname is not a directory",
        ),
        // filelog: an operator sluice does not run
        (
            &filelog("    operators:\n      - type: regex_parser\n        regex: '^x'\n"),
            "receivers::filelog::operators::0::type",
            5,
            "unknown operator type \"regex_parser\"; hint: sluice runs these operators: container",
        ),
        (&filelog("    encoding: utf-16le\n"), "receivers::filelog::encoding", 4, "hint: sluice reads UTF-8 only"),
        (&filelog("    start_at: middle\n"), "receivers::filelog::start_at", 4, "is not beginning or end"),
        (
            &filelog("    operators:\n      - type: container\n        format: podman\n"),
            "receivers::filelog::operators::0::format",
            6,
            "unknown container format \"podman\"; hint: one of docker, crio, containerd, cri",
        ),
        (
            &filelog("    multiline:\n      line_start_pattern: a\n      line_end_pattern: b\n"),
            "receivers::filelog::multiline",
            4,
            "only one of line_start_pattern and line_end_pattern",
        ),
        (
            &filelog("    multiline:\n      line_start_pattern: '(unclosed'\n"),
            "receivers::filelog::multiline::line_start_pattern",
            5,
            "invalid regex",
        ),
        (&filelog("    storage: file_storag\n"), "receivers::filelog::storage", 4, "undefined extension \"file_storag\""),
        (&filelog("").replace("[/var/log/pods/*/*/*.log]", "[]"), "receivers::filelog::include", 3, "at least one file pattern"),
        (&filelog("    exclude: ['/x/[ab']\n"), "receivers::filelog::exclude::0", 4, "unclosed '['"),
        (&filelog("    fingerprint_size: 8\n"), "receivers::filelog::fingerprint_size", 4, "below 16 bytes"),
        (&filelog("    max_log_size: 1 parsec\n"), "receivers::filelog::max_log_size", 4, "unknown unit"),
        // health_check endpoint
        (
            &format!("{BASE}extensions:\n  health_check:\n    endpoint: localhost\n"),
            "extensions::health_check::endpoint",
            17,
            "expected host:port",
        ),
    ];
    let mut failures = Vec::new();
    for (text, path, line, needle) in cases {
        let errs = match load(text) {
            Ok(_) => {
                failures.push(format!("config loaded but should fail ({path}):\n{text}"));
                continue;
            }
            Err(e) => e,
        };
        let rendered = errs.to_string();
        let Some(e) = errs.0.iter().find(|e| e.path == *path) else {
            failures.push(format!("no error at {path}; got:\n{rendered}"));
            continue;
        };
        if e.line != Some(*line) || !rendered.contains(&format!("{path} (line {line}): ")) {
            failures.push(format!("{path}: wanted line {line}; got:\n{rendered}"));
        }
        if !e.to_string().contains(needle) {
            failures.push(format!("{path}: wanted {needle:?} in {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_are_reported_sorted_by_line() {
    let text = BASE.replace("  batch:\n", "  batch:\n    timeout: later\n").replace("[debug]", "[debgu]");
    let errs = load(&text).unwrap_err();
    assert_eq!(errs.0.len(), 2, "{errs}");
    assert_eq!(errs.0[0].path, "processors::batch::timeout");
    assert_eq!(errs.0[1].path, "service::pipelines::traces::exporters::debgu");
    assert!(errs.to_string().starts_with("invalid configuration: 2 errors"));
}

#[test]
fn signal_support_is_checked() {
    let only_traces = crate::config::component::ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "tracey",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "",
        example: "",
    };
    assert!(only_traces.check_signal(Signal::Traces).is_ok());
    let msg = only_traces.check_signal(Signal::Logs).unwrap_err();
    assert!(msg.contains("does not support logs; it supports traces"), "{msg}");
}

#[test]
fn env_expansion_in_documents() {
    let text = BASE
        .replace(
            "      grpc:\n",
            "      grpc:\n        endpoint: ${env:HOST}:${env:PORT}\n        max_recv_msg_size_mib: ${env:MIB}\n",
        )
        .replace("  batch:\n", "  batch:\n    send_batch_size: ${env:NOPE:-512}\n    timeout: ${TIMEOUT}\n")
        .replace("  debug:\n", "  debug:\n  file:\n    path: /tmp/$$HOME/${env:UNSET}x\n");
    let env = env_of(&[("HOST", "0.0.0.0"), ("PORT", "4317"), ("MIB", "8"), ("TIMEOUT", "2s")]);
    let cfg = load_with_memory(&text, &env, None).unwrap();
    let Some(otlp) = cfg
        .receivers
        .get(&id("otlp"))
        .and_then(|c| c.downcast_ref::<crate::receivers::otlp::config::OtlpReceiverConfig>())
    else {
        panic!()
    };
    let grpc = otlp.protocols.grpc.as_ref().unwrap();
    assert_eq!(grpc.endpoint, "0.0.0.0:4317");
    assert_eq!(grpc.max_recv_msg_size_mib, 8);
    let Some(b) = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()) else { panic!() };
    assert_eq!((b.send_batch_size, b.timeout), (512, Duration::from_secs(2)));
    let Some(f) = cfg
        .exporters
        .get(&id("file"))
        .and_then(|e| e.downcast_ref::<crate::exporters::file::config::FileExporterConfig>())
    else {
        panic!()
    };
    assert_eq!(f.path, "/tmp/$HOME/x");
}

#[test]
fn env_expansion_does_not_touch_keys_and_retypes_whole_references() {
    // A quoted whole reference stays a string; a plain one is re-typed.
    let text = BASE.replace("  batch:\n", "  batch:\n    send_batch_size: \"${env:N}\"\n");
    let errs = load_with_memory(&text, &env_of(&[("N", "5")]), None).unwrap_err();
    assert_eq!(errs.0[0].path, "processors::batch::send_batch_size");
    let text = BASE.replace("  debug:\n", "  debug:\n  ${env:X}:\n");
    let errs = load_with_memory(&text, &env_of(&[("X", "file")]), None).unwrap_err();
    assert!(errs.0[0].message.contains("invalid component id"), "{errs}");
}

#[test]
fn env_values_reach_the_attribute_with_their_type() {
    use crate::processors::attributes::actions::{Actions, LiteralValue};
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    let text = BASE.replace(
        "  batch:\n",
        "  batch:\n  attributes:\n    actions:\n      - key: env\n        value: ${env:DEPLOY_ENV}\n        action: insert\n\
         \x20     - key: replicas\n        value: ${env:REPLICAS}\n        action: insert\n\
         \x20     - key: quoted\n        value: \"${env:REPLICAS}\"\n        action: insert\n",
    );
    let cfg = load_with_memory(&text, &env_of(&[("DEPLOY_ENV", "staging"), ("REPLICAS", "3")]), None).unwrap();
    let Some(a) = cfg
        .processors
        .get(&id("attributes"))
        .and_then(|p| p.downcast_ref::<crate::processors::attributes::AttributesSpec>())
        .map(|s| s.config())
    else {
        panic!()
    };
    assert_eq!(a.actions[0].value, Some(LiteralValue::Str("staging".into())));
    assert_eq!(a.actions[1].value, Some(LiteralValue::Int(3)));
    assert_eq!(a.actions[2].value, Some(LiteralValue::Str("3".into())));
    let mut attrs = Vec::new();
    Actions::compile(&a.actions).0.apply(&mut attrs);
    let kv = |k: &str, v| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() };
    assert_eq!(
        attrs,
        vec![
            kv("env", Value::StringValue("staging".into())),
            kv("replicas", Value::IntValue(3)),
            kv("quoted", Value::StringValue("3".into())),
        ]
    );
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "~",
        "[1, 2]",
        "receivers: 5",
        "service: [a]",
        "service:\n  pipelines:\n    traces: 7\n",
        "service:\n  pipelines:\n    traces/: {receivers: [a], exporters: [b]}\n",
        "receivers:\n  /x:\n",
        "? [a]\n: b\n",
        "a: *nope\n",
        "%YAML 1.2\n---\na: 1\n---\nb: 2\n",
        "receivers: {otlp: {protocols: {grpc: {endpoint: \"${\"}}}}",
        "processors:\n  batch:\n    send_batch_size: 0x7fffffffffffffffffffffff\n",
        "processors:\n  batch:\n    timeout: 99999999999999999999999h\n",
        "\t\u{0}\u{ffff}",
    ] {
        assert!(load(text).is_err(), "{text:?} loaded");
    }
}

/// Cheap stand-in for the fuzzer: byte-level mutations of a real config must
/// give a config or errors, never a panic.
#[test]
fn mutated_configs_never_panic() {
    let mut next = crate::data::fixtures::xorshift64(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"{}[]:,-?&*!|>'\"%@`#$~ \n\t0123456789abc./\\";
    let env = env_of(&[("A", "1"), ("B", "[x]")]);
    for _ in 0..3000 {
        let mut bytes = REALISTIC.as_bytes().to_vec();
        for _ in 0..(next() % 8 + 1) {
            let pos = (next() as usize) % bytes.len().max(1);
            let ch = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 => bytes[pos] = ch,
                1 => bytes.insert(pos, ch),
                _ => {
                    bytes.remove(pos);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_with_memory(&text, &env, Some(8 * GIB));
    }
}

#[test]
fn anchors_and_aliases_share_settings() {
    let text = "exporters:
  otlp/a:
    endpoint: a:4317
    retry_on_failure: &retry
      initial_interval: 2s
      max_interval: ${env:MAX}
  otlp/b:
    endpoint: b:4317
    retry_on_failure: *retry
receivers:
  otlp:
    protocols: {http: }
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [otlp/a, otlp/b]}
";
    let cfg = load_with_memory(text, &env_of(&[("MAX", "1m")]), None).unwrap();
    for name in ["otlp/a", "otlp/b"] {
        let Some(e) = cfg
            .exporters
            .get(&id(name))
            .and_then(|e| e.downcast_ref::<crate::exporters::otlp::config::OtlpExporterConfig>())
        else {
            panic!("{name}")
        };
        assert_eq!(e.retry_on_failure.initial_interval, Duration::from_secs(2));
        assert_eq!(e.retry_on_failure.max_interval, Duration::from_secs(60));
    }
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let errs = load("receivers:\n  otlp:\n    protocols: [grpc\nservice:\n").unwrap_err();
    assert_eq!(errs.0.len(), 1);
    assert!(errs.0[0].line.is_some_and(|l| l >= 3), "{errs}");
    assert!(errs.to_string().contains("YAML syntax error"), "{errs}");
}

#[test]
fn prometheusremotewrite_loads_and_reports_errors_with_paths() {
    let good = BASE.replace("traces:", "metrics:").replace(
        "  debug:\n",
        "  prometheusremotewrite:\n    endpoint: http://p:9090/api/v1/write\n    external_labels: {cluster: eu}\n    \
         resource_to_telemetry_conversion: {enabled: true}\n    target_info: {enabled: false}\n    \
         delta_to_cumulative: {enabled: true, max_series: 10}\n    remote_write_queue: {queue_size: 5}\n",
    );
    let cfg = load(&good.replace("[debug]", "[prometheusremotewrite]")).unwrap();
    let Some(p) = cfg
        .exporters
        .get(&id("prometheusremotewrite"))
        .and_then(|e| e.downcast_ref::<crate::exporters::prometheusremotewrite::config::PrometheusRemoteWriteConfig>())
    else {
        panic!("prometheusremotewrite")
    };
    assert!(p.resource_to_telemetry_conversion.on() && !p.target_info.on());
    assert_eq!(p.queue().queue_size, 5);
    assert_eq!(p.delta_to_cumulative.max_series, 10);

    let exporter = |body: &str, signal: &str| {
        BASE.replace("traces:", &format!("{signal}:"))
            .replace("  debug:\n", &format!("  prometheusremotewrite:\n{body}"))
            .replace("[debug]", "[prometheusremotewrite]")
    };
    let cases: &[(String, &str, &str)] = &[
        (exporter("    endpoint: p:9090\n", "metrics"), "exporters::prometheusremotewrite::endpoint", "http://"),
        (
            exporter("    endpoint: http://p/api/v1/write\n    external_labels: {2bad: x}\n", "metrics"),
            "exporters::prometheusremotewrite::external_labels::2bad",
            "hint: use letters",
        ),
        (
            exporter(
                "    endpoint: http://p/api/v1/write\n    delta_to_cumulative: {enabled: true, max_series: 0}\n",
                "metrics",
            ),
            "exporters::prometheusremotewrite::delta_to_cumulative::max_series",
            "must be above 0",
        ),
        (
            exporter("    endpoint: http://p/api/v1/write\n", "traces"),
            "service::pipelines::traces::exporters::prometheusremotewrite",
            "does not support traces",
        ),
    ];
    for (text, path, needle) in cases {
        let errs = load(text).unwrap_err();
        let e = errs.0.iter().find(|e| e.path == *path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
        assert!(e.to_string().contains(needle), "{path}: wanted {needle:?} in {e}");
        assert!(e.line.is_some(), "{e}");
    }
}

#[test]
fn prometheus_exporter_loads_and_reports_errors_with_paths() {
    let with = |body: &str| {
        BASE.replace("traces:", "metrics:")
            .replace("  debug:\n", &format!("  prometheus:\n{body}"))
            .replace("[debug]", "[prometheus]")
    };
    let cfg = load(&with("    endpoint: 0.0.0.0:8889\n    const_labels: {cluster: eu}\n    metric_expiration: 1m\n"))
        .unwrap();
    let Some(p) = cfg
        .exporters
        .get(&id("prometheus"))
        .and_then(|e| e.downcast_ref::<crate::exporters::prometheus::config::PrometheusExporterConfig>())
    else {
        panic!("prometheus")
    };
    assert_eq!(p.metric_expiration, crate::config::Duration::from_secs(60));
    assert!(p.add_metric_suffixes && !p.send_timestamps);

    let cases: &[(String, &str, &str)] = &[
        (with("    endpoint: 8889\n"), "exporters::prometheus::endpoint", "host:port"),
        (
            with("    endpoint: :8889\n    const_labels: {a.b: x}\n"),
            "exporters::prometheus::const_labels::a.b",
            "not a valid Prometheus label name",
        ),
        (
            with("    endpoint: :8889\n    enable_open_metrics: true\n"),
            "exporters::prometheus::enable_open_metrics",
            "hint: remove",
        ),
        (
            with("    endpoint: :8889\n    metric_expiration: 0s\n"),
            "exporters::prometheus::metric_expiration",
            "above 0",
        ),
    ];
    for (text, path, needle) in cases {
        let errs = load(text).unwrap_err();
        let e = errs.0.iter().find(|e| e.path == *path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
        assert!(e.to_string().contains(needle), "{path}: wanted {needle:?} in {e}");
    }
}

/// BASE with `grpc_body` under `protocols.grpc`, `extensions` (a whole
/// section) first and `service_extensions` under `service:`.
fn secured_config(grpc_body: &str, extensions: &str, service_extensions: &str) -> String {
    let text = BASE
        .replace("      grpc:\n", &format!("      grpc:\n{grpc_body}"))
        .replace("service:\n", &format!("service:\n{service_extensions}"));
    format!("{extensions}{text}")
}

#[test]
fn secured_receiver_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::receivers::tls::test_certs::make(dir.path());
    let grpc = format!(
        "        tls:\n          cert_file: {}\n          key_file: {}\n          client_ca_file: {}\n          min_version: \"1.3\"\n        auth:\n          authenticator: bearertokenauth/ci\n",
        pki.server_cert_file, pki.server_key_file, pki.ca_file
    );
    let ext = "extensions:\n  bearertokenauth/ci:\n    token: ${env:TOKEN}\n  basicauth:\n    htpasswd:\n      inline: \"alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\"\n";
    let text = secured_config(&grpc, ext, "  extensions: [bearertokenauth/ci, basicauth]\n");
    let cfg = load_with_memory(&text, &env_of(&[("TOKEN", "t0k")]), Some(8 * GIB)).unwrap();
    let Some(otlp) = cfg
        .receivers
        .get(&id("otlp"))
        .and_then(|c| c.downcast_ref::<crate::receivers::otlp::config::OtlpReceiverConfig>())
    else {
        panic!("no otlp")
    };
    let g = otlp.protocols.grpc.as_ref().unwrap();
    assert_eq!(g.tls.as_ref().unwrap().min_version.as_deref(), Some("1.3"));
    assert_eq!(g.auth.as_ref().unwrap().authenticator, "bearertokenauth/ci");
    let Some(b) = cfg
        .extensions
        .get(&id("bearertokenauth/ci"))
        .and_then(|c| c.downcast_ref::<crate::extensions::auth::config::BearerTokenAuthConfig>())
    else {
        panic!("no bearertokenauth")
    };
    assert_eq!((b.token.as_deref(), b.scheme.as_str()), (Some("t0k"), "Bearer"));
}

#[test]
fn secured_receiver_errors_report_path_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::receivers::tls::test_certs::make(dir.path());
    let tls = |cert: &str, key: &str, extra: &str| {
        format!("        tls:\n          cert_file: {cert}\n          key_file: {key}\n{extra}")
    };
    let good = |extra: &str| tls(&pki.server_cert_file, &pki.server_key_file, extra);
    let auth = |name: &str| format!("        auth:\n          authenticator: {name}\n");
    let bearer = "extensions:\n  bearertokenauth:\n    token: abc\n";
    let started = "  extensions: [bearertokenauth]\n";
    const TLS: &str = "receivers::otlp::protocols::grpc::tls";
    // (config, path, line, substring of the message or hint)
    let cases: Vec<(String, String, usize, &str)> = vec![
        (
            secured_config(&tls("/nonexistent/cert.pem", &pki.server_key_file, ""), "", ""),
            format!("{TLS}::cert_file"),
            6,
            "cannot read /nonexistent/cert.pem: No such file or directory (os error 2); hint: give the path of a PEM file",
        ),
        (
            secured_config(&tls(&pki.server_cert_file, &pki.other_key_file, ""), "", ""),
            format!("{TLS}::key_file"),
            7,
            "the private key does not belong to the certificate in cert_file; hint: key_file must hold",
        ),
        (
            secured_config(&tls(&pki.server_key_file, &pki.server_key_file, ""), "", ""),
            format!("{TLS}::cert_file"),
            6,
            "holds no PEM certificate",
        ),
        (
            secured_config(&good("          reload_interval: 1h\n"), "", ""),
            format!("{TLS}::reload_interval"),
            8,
            "reload_interval is not supported: certificates are read once, at start; hint: remove it",
        ),
        (
            secured_config(&good("          min_version: \"1.1\"\n"), "", ""),
            format!("{TLS}::min_version"),
            8,
            "TLS 1.1 is not supported",
        ),
        (
            secured_config(&good("          insecure: true\n"), "", ""),
            format!("{TLS}::insecure"),
            8,
            "unknown field \"insecure\"",
        ),
        (
            BASE.replace("      grpc:\n", &format!("      grpc:\n      http:\n{}", tls("/nope.pem", "/nope-key.pem", ""))),
            "receivers::otlp::protocols::http::tls::cert_file".into(),
            7,
            "cannot read /nope.pem",
        ),
        (
            secured_config(&auth("bearertokenauth"), "", ""),
            "receivers::otlp::protocols::grpc::auth::authenticator".into(),
            6,
            "undefined extension \"bearertokenauth\": it is not defined under extensions; hint: no extensions are defined",
        ),
        (
            secured_config(&auth("bearertokenauth"), bearer, ""),
            "receivers::otlp::protocols::grpc::auth::authenticator".into(),
            9,
            "authenticator \"bearertokenauth\" is not started: it is not listed in service.extensions; hint: add it: service: {extensions: [bearertokenauth]}",
        ),
        (
            secured_config(&auth("health_check"), "extensions:\n  health_check:\n", "  extensions: [health_check]\n"),
            "receivers::otlp::protocols::grpc::auth::authenticator".into(),
            8,
            "extension \"health_check\" is not an authenticator; hint: use the ID of a bearertokenauth or basicauth",
        ),
        (
            secured_config(&auth("bearertokenauth"), "extensions:\n  bearertokenauth:\n    scheme: Bearer\n", started),
            "extensions::bearertokenauth::token".into(),
            2,
            "no token is configured; hint: set token, tokens or filename",
        ),
        (
            secured_config(
                &auth("bearertokenauth"),
                "extensions:\n  bearertokenauth:\n    filename: /nonexistent/token\n",
                started,
            ),
            "extensions::bearertokenauth::filename".into(),
            3,
            "cannot read /nonexistent/token",
        ),
        (
            secured_config(
                &auth("basicauth"),
                "extensions:\n  basicauth:\n    htpasswd:\n      inline: \"bob:$apr1$x$y\"\n",
                "  extensions: [basicauth]\n",
            ),
            "extensions::basicauth::htpasswd::inline".into(),
            4,
            "inline line 1 (bob): MD5 ($apr1$) hashes are not supported",
        ),
    ];
    let mut failures = Vec::new();
    for (text, path, line, needle) in &cases {
        let errs = match load(text) {
            Ok(_) => {
                failures.push(format!("config loaded but should fail ({path}):\n{text}"));
                continue;
            }
            Err(e) => e,
        };
        let rendered = errs.to_string();
        let Some(e) = errs.0.iter().find(|e| e.path == *path) else {
            failures.push(format!("no error at {path}; got:\n{rendered}"));
            continue;
        };
        if e.line != Some(*line) {
            failures.push(format!("{path}: wanted line {line}; got:\n{rendered}"));
        }
        if !e.to_string().contains(needle) {
            failures.push(format!("{path}: wanted {needle:?} in {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn loadbalancing_exporter_loads_and_reports_errors_with_paths_and_hints() {
    // The exporter's key is on line 8 of the result, its body from line 9.
    let with = |body: &str, signal: &str| {
        BASE.replace("traces:", &format!("{signal}:"))
            .replace("  debug:\n", &format!("  loadbalancing:\n{body}"))
            .replace("[batch]", "[]")
            .replace("[debug]", "[loadbalancing]")
    };
    let good = "    protocol:\n      otlp:\n        tls: {insecure: true}\n        timeout: 2s\n    resolver:\n      static:\n        hostnames: [gw-1, \"gw-2:5317\"]\n";
    let cfg = load(&with(good, "traces")).unwrap();
    let Some(lb) = cfg
        .exporters
        .get(&id("loadbalancing"))
        .and_then(|e| e.downcast_ref::<crate::exporters::loadbalancing::config::LoadBalancingConfig>())
    else {
        panic!("lb")
    };
    assert_eq!(
        lb.routing_key_for(crate::data::Signal::Traces),
        Ok(crate::exporters::loadbalancing::config::RoutingKey::TraceId)
    );
    assert!(lb.protocol.otlp.tls.insecure);
    assert_eq!(lb.protocol.otlp.timeout, crate::config::Duration::from_secs(2));
    let dns = load(&with(
        "    routing_key: service\n    protocol: {otlp: {}}\n    resolver:\n      dns: {hostname: gateways.svc}\n",
        "metrics",
    ))
    .unwrap();
    let Some(lb) = dns
        .exporters
        .get(&id("loadbalancing"))
        .and_then(|e| e.downcast_ref::<crate::exporters::loadbalancing::config::LoadBalancingConfig>())
    else {
        panic!("lb")
    };
    let d = lb.resolver.dns.as_ref().unwrap();
    assert_eq!(
        (d.port, d.interval, d.timeout),
        (4317, crate::config::Duration::from_secs(5), crate::config::Duration::from_secs(1))
    );
    // The alias of the Collector's newer name.
    load(
        &with(good, "logs")
            .replace("  loadbalancing:\n", "  load_balancing:\n")
            .replace("[loadbalancing]", "[load_balancing]"),
    )
    .unwrap();

    let static_one = "    resolver:\n      static: {hostnames: [gw:4317]}\n";
    let cases: &[(String, &str, usize, &str)] = &[
        (
            with("    protocol: {otlp: {}}\n", "traces"),
            "exporters::loadbalancing",
            8,
            "missing field `resolver`",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver: {}\n", "traces"),
            "exporters::loadbalancing::resolver",
            10,
            "no resolver is configured; hint: set exactly one of resolver.static.hostnames or resolver.dns.hostname",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver:\n      static: {hostnames: [a]}\n      dns: {hostname: b}\n", "traces"),
            "exporters::loadbalancing::resolver",
            10,
            "both resolver.static and resolver.dns are set; hint: set exactly one resolver",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver:\n      static: {hostnames: []}\n", "traces"),
            "exporters::loadbalancing::resolver::static::hostnames",
            11,
            "hostnames is empty; hint: list the backends as host[:port]",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver:\n      static: {hostnames: [\"gw:99999\"]}\n", "traces"),
            "exporters::loadbalancing::resolver::static::hostnames",
            11,
            "port \"99999\" is not a number from 0 to 65535; hint: write host[:port]",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver:\n      k8s: {service: lb.ns}\n", "traces"),
            "exporters::loadbalancing::resolver::k8s",
            11,
            "the k8s resolver is not supported; hint: use resolver.dns",
        ),
        (
            with("    protocol: {otlp: {}}\n    resolver:\n      dns: {hostname: gw, interval: 0s}\n", "traces"),
            "exporters::loadbalancing::resolver::dns::interval",
            11,
            "interval must be above zero",
        ),
        (
            with(&format!("    routing_key: traceId\n    protocol: {{otlp: {{}}}}\n{static_one}"), "traces"),
            "exporters::loadbalancing::routing_key",
            9,
            "unknown routing_key \"traceId\"; hint: did you mean \"traceID\"?",
        ),
        (
            with(&format!("    routing_key: traceID\n    protocol: {{otlp: {{}}}}\n{static_one}"), "metrics"),
            "exporters::loadbalancing::routing_key",
            8,
            "routing_key \"traceID\" does not apply to metrics, which pipeline \"metrics\" sends to it; hint: for metrics use one of: service, metric",
        ),
        (
            with(&format!("    protocol:\n      otlp:\n        retry_on_failure: {{multiplier: 0.5}}\n{static_one}"), "traces"),
            "exporters::loadbalancing::protocol::otlp::retry_on_failure::multiplier",
            11,
            "at least 1",
        ),
        (
            with(&format!("    protocol:\n      otlp:\n        endpointt: x\n{static_one}"), "traces"),
            "exporters::loadbalancing::protocol::otlp::endpointt",
            11,
            "unknown field",
        ),
    ];
    let mut failures = Vec::new();
    for (text, path, line, needle) in cases {
        let errs = match load(text) {
            Ok(_) => {
                failures.push(format!("config loaded but should fail ({path}):\n{text}"));
                continue;
            }
            Err(e) => e,
        };
        let Some(e) = errs.0.iter().find(|e| e.path == *path) else {
            failures.push(format!("no error at {path}; got:\n{errs}"));
            continue;
        };
        if e.line != Some(*line) {
            failures.push(format!("{path}: wanted line {line}; got {:?} in:\n{errs}", e.line));
        }
        if !e.to_string().contains(needle) {
            failures.push(format!("{path}: wanted {needle:?} in {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every mistake inside one component is reported in one run, each at its
/// own field, not just the first one serde meets.
#[test]
fn three_mistakes_in_one_component_are_all_reported() {
    let text = "receivers:
  otlp:
    protocols: {grpc: }
processors:
  tail_sampling:
    decision_wiat: 10s
    num_traces: lots
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    expected_new_traces_per_sec: -5
exporters:
  debug:
service:
  pipelines:
    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}
";
    let errors = load(text).unwrap_err().0;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{shown:#?}");
    assert!(shown[0].starts_with("processors::tail_sampling::decision_wiat (line 6): unknown field \"decision_wiat\"; hint: did you mean \"decision_wait\"?"), "{shown:#?}");
    assert!(
        shown[1].starts_with(
            "processors::tail_sampling::num_traces (line 7): expected a whole number, 0 or more, found string \"lots\""
        ),
        "{shown:#?}"
    );
    assert!(shown[2].starts_with("processors::tail_sampling::expected_new_traces_per_sec (line 10): "), "{shown:#?}");
    assert!(!shown.iter().any(|e| e.contains("usize") || e.contains("u64")), "{shown:#?}");
}

/// An unknown type is one error that lists the known types; pipelines that
/// name it get no "undefined" error on top.
#[test]
fn two_unknown_types_are_two_errors_without_follow_ons() {
    let text = "receivers:
  kafka:
    brokers: [a:9092]
processors:
  groupbytrace:
    wait_duration: 10s
exporters:
  debug:
service:
  pipelines:
    traces: {receivers: [kafka], processors: [groupbytrace], exporters: [debug]}
";
    let errors = load(text).unwrap_err().0;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{shown:#?}");
    assert!(
        shown[0]
            .starts_with("receivers::kafka (line 2): unknown receiver type \"kafka\"; hint: built-in receivers: otlp"),
        "{shown:#?}"
    );
    assert!(shown[1].starts_with("processors::groupbytrace (line 5): unknown processor type \"groupbytrace\"; hint: built-in processors: batch, memory_limiter"), "{shown:#?}");
}

/// A value left empty by an unset variable says which variable it was.
#[test]
fn an_unset_environment_variable_is_named_in_the_error() {
    let text = BASE.replace("      grpc:\n", "      grpc:\n        endpoint: ${env:OTLP_GRPC_ADDR}\n");
    assert_ne!(text, BASE, "the base config has a gRPC endpoint to replace");
    let errors = load(&text).unwrap_err().0;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{shown:#?}");
    assert!(
        shown[0].contains(
            "the environment variable OTLP_GRPC_ADDR is not set, so ${env:OTLP_GRPC_ADDR} expanded to nothing"
        ),
        "{shown:#?}"
    );
    // Set, it loads.
    assert!(load_with_memory(&text, &env_of(&[("OTLP_GRPC_ADDR", "127.0.0.1:4317")]), Some(GIB)).is_ok());
    // With a default, unset is fine.
    let with_default =
        BASE.replace("      grpc:\n", "      grpc:\n        endpoint: ${env:OTLP_GRPC_ADDR:-127.0.0.1:4317}\n");
    assert!(load(&with_default).is_ok());
}

/// The Collector reads YAML 1.1 integers with `_` between digits.
#[test]
fn integers_written_with_underscores_load() {
    let text = BASE.replace("  batch:\n", "  batch:\n    send_batch_size: 100_000\n    send_batch_max_size: 200_000\n");
    let cfg = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let b = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()).unwrap();
    assert_eq!((b.send_batch_size, b.send_batch_max_size), (100_000, 200_000));
}

fn sources(configs: &[&str], sets: &[&str]) -> super::ConfigSources {
    super::ConfigSources {
        configs: configs.iter().map(|s| s.to_string()).collect(),
        sets: sets.iter().map(|s| s.to_string()).collect(),
    }
}

fn load_sources_with(s: &super::ConfigSources, env: &[(&str, &str)]) -> Result<AgentConfig, ConfigErrors> {
    let root = super::read_sources(s)?;
    load_node(root, &env_of(env), Some(8 * GIB))
}

/// Several `--config` files merge as the Collector merges them: mappings key
/// by key, lists replaced; `--set` and `yaml:` apply on top.
#[test]
fn several_configs_merge_and_set_applies_last() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, BASE).unwrap();
    let over = dir.path().join("over.yaml");
    std::fs::write(
        &over,
        "processors:\n  batch:\n    timeout: 3s\n  memory_limiter:\n    limit_mib: 100\n\
         service:\n  pipelines:\n    traces:\n      processors: [memory_limiter, batch]\n",
    )
    .unwrap();
    let (base, over) = (base.display().to_string(), over.display().to_string());
    let s = sources(&[&base, &format!("file:{over}")], &["processors::batch::send_batch_size=77"]);
    let cfg = load_sources_with(&s, &[]).unwrap_or_else(|e| panic!("{e}"));
    let b = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()).unwrap();
    assert_eq!((b.timeout.get(), b.send_batch_size), (std::time::Duration::from_secs(3), 77));
    // The list was replaced, the receivers and exporters of the base kept.
    let traces = &cfg.service.pipelines.values().next().unwrap();
    assert_eq!(traces.processors, vec!["memory_limiter", "batch"]);
    assert_eq!((traces.receivers.clone(), traces.exporters.clone()), (vec!["otlp".into()], vec!["debug".into()]));

    // The older dotted --set and the inline yaml: form.
    let s = sources(&[&base, "yaml:processors::batch::send_batch_size: 5"], &["processors.batch.timeout=1s"]);
    let cfg = load_sources_with(&s, &[]).unwrap_or_else(|e| panic!("{e}"));
    let b = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()).unwrap();
    assert_eq!((b.timeout.get(), b.send_batch_size), (std::time::Duration::from_secs(1), 5));

    // A --set value that does not type is reported at its path.
    let errors = load_sources_with(&sources(&[&base], &["processors::batch::send_batch_size=many"]), &[])
        .unwrap_err()
        .to_string();
    assert!(errors.contains("processors::batch::send_batch_size: expected a whole number"), "{errors}");
    let errors = load_sources_with(&sources(&[&base], &["processors::batch"]), &[]).unwrap_err().to_string();
    assert!(errors.contains("has no '='"), "{errors}");
}

/// With several `--config` files, an error names the file its line is in.
#[test]
fn errors_of_merged_configs_name_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, BASE).unwrap();
    let over = dir.path().join("over.yaml");
    std::fs::write(&over, "processors:\n  batch:\n    timeout: soon\n    send_batch_sise: 5\n").unwrap();
    let (base, over) = (base.display().to_string(), over.display().to_string());
    let s = sources(&[&base, &format!("file:{over}")], &[]);
    let shown = s.locate(load_sources_with(&s, &[]).unwrap_err()).to_string();
    assert!(shown.contains(&format!("processors::batch::timeout ({over} line 3): ")), "{shown}");
    assert!(shown.contains(&format!("processors::batch::send_batch_sise ({over} line 4): unknown field")), "{shown}");

    // An error in the first file names the first file.
    std::fs::write(dir.path().join("over.yaml"), "processors:\n  batch:\n    timeout: 2s\n").unwrap();
    let broken = BASE.replace("  batch:\n", "  batch:\n    timeout: never\n    bogus: 1\n");
    std::fs::write(dir.path().join("base.yaml"), broken).unwrap();
    let s = sources(&[&base, &over], &[]);
    let shown = s.locate(load_sources_with(&s, &[]).unwrap_err()).to_string();
    assert!(shown.contains(&format!("processors::batch::bogus ({base} line 8): unknown field")), "{shown}");
    assert!(!shown.contains("never"), "the second file's value wins: {shown}");
    let s = sources(&[&base, "yaml:exporters::debug::verbosity: loud"], &[]);
    let shown = s.locate(load_sources_with(&s, &[]).unwrap_err()).to_string();
    assert!(shown.contains("exporters::debug::verbosity (yaml:exporters::debug::verbosity: loud): "), "{shown}");

    // One file: lines as before, with no file name.
    let s = sources(&[&base], &[]);
    let shown = s.locate(load_sources_with(&s, &[]).unwrap_err()).to_string();
    assert!(shown.contains("processors::batch::timeout (line 7): "), "{shown}");

    // A YAML syntax error in the second file names it.
    std::fs::write(dir.path().join("over.yaml"), "processors: [\n").unwrap();
    let s = sources(&[&base, &over], &[]);
    let shown = super::read_sources(&s).unwrap_err().to_string();
    assert!(shown.contains(&format!("{over} line ")), "{shown}");
}

/// `${file:path}` reads a file: inside a value its text, as a whole value
/// its YAML (a mapping too), bounded in size and nesting.
#[test]
fn file_references_read_text_and_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let batch = dir.path().join("batch.yaml");
    std::fs::write(&batch, "send_batch_size: 42\ntimeout: 7s\n").unwrap();
    let text = BASE
        .replace("  batch:\n", &format!("  batch: ${{file:{}}}\n", batch.display()))
        .replace(
            "  debug:\n",
            &format!(
                "  debug:\n  otlp:\n    endpoint: tempo:4317\n    headers: {{x-token: \"Bearer ${{file:{}}}\"}}\n",
                token.display()
            ),
        )
        .replace("exporters: [debug]", "exporters: [debug, otlp]");
    let cfg = load(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let b = cfg.processors.get(&id("batch")).and_then(|p| p.downcast_ref::<BatchConfig>()).unwrap();
    assert_eq!(b.send_batch_size, 42);
    let otlp = cfg
        .exporters
        .get(&id("otlp"))
        .and_then(|e| e.downcast_ref::<crate::exporters::otlp::config::OtlpExporterConfig>())
        .unwrap();
    assert_eq!(otlp.headers.get("x-token").map(String::as_str), Some("Bearer s3cret"));

    // A missing file is an error at the value that names it.
    let errors = load(&BASE.replace("  batch:\n", "  batch: ${file:/nonexistent/batch.yaml}\n")).unwrap_err();
    let shown = errors.to_string();
    assert!(shown.contains("processors::batch (line 6): cannot read /nonexistent/batch.yaml"), "{shown}");

    // A file that names itself stops after a bounded depth.
    let looped = dir.path().join("loop.yaml");
    std::fs::write(&looped, format!("timeout: 1s\nnested: ${{file:{}}}\n", looped.display())).unwrap();
    let shown = load(&BASE.replace("  batch:\n", &format!("  batch: ${{file:{}}}\n", looped.display())))
        .unwrap_err()
        .to_string();
    assert!(shown.contains("is nested more than 8 files deep"), "{shown}");

    // Larger than 1 MiB: refused before it is read.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; (1 << 20) + 1]).unwrap();
    let shown =
        load(&BASE.replace("      grpc:\n", &format!("      grpc:\n        endpoint: ${{file:{}}}\n", big.display())))
            .unwrap_err()
            .to_string();
    assert!(shown.contains("a ${file:} reference reads at most 1048576"), "{shown}");
}

/// `service.telemetry.metrics.readers`, the Collector's current form, sets
/// where `/metrics` is served.
#[test]
fn telemetry_pull_reader_sets_the_metrics_endpoint() {
    let with = |telemetry: &str| format!("{BASE}  telemetry:\n    metrics:\n{telemetry}");
    let reader = "      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 0.0.0.0\n                port: 9464\n";
    let cfg = load(&with(reader)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.service.telemetry.metrics.endpoint(), "0.0.0.0:9464");
    // The default without readers, and `address` alone, as before.
    assert_eq!(load(BASE).unwrap().service.telemetry.metrics.endpoint(), "127.0.0.1:8888");
    let cfg = load(&with("      address: 127.0.0.1:9999\n")).unwrap();
    assert_eq!(cfg.service.telemetry.metrics.endpoint(), "127.0.0.1:9999");
    // Both: one error with a hint.
    let shown = load(&with(&format!("      address: 127.0.0.1:9999\n{reader}"))).unwrap_err().to_string();
    assert!(shown.contains("address and a pull reader both set where to serve metrics"), "{shown}");
    // A periodic (push) reader is the Collector's, not sluice's.
    let periodic = "      readers:\n        - periodic:\n            exporter: {otlp: {protocol: grpc, endpoint: http://x:4317}}\n";
    let shown = load(&with(periodic)).unwrap_err().to_string();
    assert!(shown.contains("the Collector has `periodic`; sluice does not support it (yet)"), "{shown}");
}
