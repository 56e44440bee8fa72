//! End to end through the exporters' `sending_queue`: the OpenTelemetry
//! Python SDK → sluice (otlp receiver → otlp exporter with `batch`) → the
//! reference OTLP receiver. What arrives must equal what the SDK sent, item
//! by item, in exactly the requests the Collector's batching makes; and with
//! `wait_for_result` the SDK's export fails when the destination refuses.

mod common;

use common::*;
use std::time::Duration;

fn sender_args<'a>(signal: &'a str, endpoint: &'a str, count: &'a str, expect: &'a str) -> Vec<&'a str> {
    vec![
        "--signal",
        signal,
        "--protocol",
        "grpc",
        "--endpoint",
        endpoint,
        "--count",
        count,
        "--batch-size",
        "10",
        "--service-name",
        "e2e-sending-queue",
        "--expect-file",
        expect,
    ]
}

/// Item counts of the accepted requests of `signal`, sorted.
fn request_sizes(recv: &RefReceiver, signal: &str) -> Vec<usize> {
    let mut sizes: Vec<usize> = received_requests(&recv.out)
        .into_iter()
        .filter(|r| r["status"] == "accepted" && r["signal"] == signal)
        .map(|r| r["items"].as_array().map_or(0, Vec::len))
        .collect();
    sizes.sort();
    sizes
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn batches_merge_and_cut_as_the_collector_does() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    // Traces: merged until 40 items, cut at 40; logs: 25 items each, by
    // items too. flush_timeout is long enough that only the rest waits for it.
    let queue = "    sending_queue:\n      sizer: items\n      queue_size: 100000\n      num_consumers: 2\n      \
                 batch:\n        flush_timeout: 3s\n        min_size: 40\n        max_size: 40\n";
    let config =
        agent_config(ports, "", &exporter_yaml("otlp", &recv, queue), &["traces", "logs"], &[], &["otlp"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    let endpoint = agent.grpc_endpoint();
    let mut expects = Vec::new();
    // 95 spans and 55 log records, sent by the SDK in exports of at most 10.
    for (signal, count) in [("traces", "95"), ("logs", "55")] {
        let expect = dir.path().join(format!("expect-{signal}.json"));
        send_python(&py, &sender_args(signal, &endpoint, count, expect.to_str().unwrap()));
        expects.push((signal, expect));
    }
    for (signal, expect) in &expects {
        let n = expected_count(expect);
        assert!(
            recv.wait_items(signal, n, Duration::from_secs(15)),
            "{signal}: the reference receiver got {} of {n} items\nsluice log:\n{}",
            recv.accepted_items(signal),
            agent.log()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    // 95 = 40 + 40 + 15 (the 15 after flush_timeout); 55 = 40 + 15.
    assert_eq!(request_sizes(&recv, "traces"), vec![15, 40, 40]);
    assert_eq!(request_sizes(&recv, "logs"), vec![15, 40]);
    let paths: Vec<&std::path::Path> = expects.iter().map(|(_, p)| p.as_path()).collect();
    assert_received(&py, &paths, &recv.out, &[], &format!("sluice log:\n{}", agent.log()));
    let sends = |signal: &str, trigger: &str| {
        agent.metric(
            "sluice_exporter_queue_batch_sends_total",
            &[("exporter", "otlp"), ("data_type", signal), ("trigger", trigger)],
        )
    };
    assert_eq!((sends("traces", "size"), sends("traces", "timeout")), (2.0, 1.0));
    assert_eq!((sends("logs", "size"), sends("logs", "timeout")), (1.0, 1.0));
    assert_eq!(agent.metric("otelcol_exporter_sent_spans_total", &[("exporter", "otlp")]), 95.0);
    assert_eq!(agent.metric("otelcol_exporter_sent_log_records_total", &[("exporter", "otlp")]), 55.0);
    // The queue's gauges are in the sizer's units (items) and it is empty now.
    let typed = [("exporter", "otlp"), ("data_type", "traces")];
    assert_eq!(agent.metric("otelcol_exporter_queue_capacity", &typed), 100000.0);
    assert_eq!(agent.metric("otelcol_exporter_queue_size", &typed), 0.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn wait_for_result_answers_the_client_with_the_export_result() {
    let py = python();
    let dir = temp_dir();
    // A destination that refuses everything permanently.
    let recv =
        RefReceiver::start(&py, dir.path(), &["--quiet", "--fail-first", "1000000", "--fail-code", "invalid_argument"]);
    let ports = Ports::pick();
    let exporters = format!(
        "  otlp/waits:\n    endpoint: {addr}\n    tls:\n      insecure: true\n    retry_on_failure:\n      enabled: false\n    \
         sending_queue:\n      wait_for_result: true\n  otlp/queues:\n    endpoint: {addr}\n    tls:\n      insecure: true\n    \
         retry_on_failure:\n      enabled: false\n",
        addr = recv.grpc_addr()
    );
    let config = agent_config(ports, "", &exporters, &["traces"], &[], &["otlp/waits"], &[]).replace(
        "  pipelines:\n",
        "  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [otlp/queues]\n",
    );
    let agent = Agent::start(dir.path(), &config, ports);
    let endpoint = agent.grpc_endpoint();
    let expect = dir.path().join("expect.json");
    let expect = expect.to_str().unwrap();

    // Without wait_for_result the client is answered once its data is queued: success.
    let mut args = sender_args("logs", &endpoint, "5", expect);
    args.extend(["--timeout", "3"]);
    let queued = run_python_sender(&py, &args);
    assert!(queued.status.success(), "{}", String::from_utf8_lossy(&queued.stderr));

    // With it, the client learns that the destination refused: the export fails.
    let mut args = sender_args("traces", &endpoint, "5", expect);
    args.extend(["--timeout", "3"]);
    let waited = run_python_sender(&py, &args);
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(!waited.status.success(), "the SDK's export must fail:\n{stderr}");
    assert!(stderr.contains("result=FAILURE"), "{stderr}");
    assert!(
        agent.metric("otelcol_exporter_send_failed_spans_total", &[("exporter", "otlp/waits")]) >= 5.0,
        "{}",
        agent.log()
    );
    assert!(
        agent.metric("sluice_receiver_durable_ack_failures_total", &[("receiver", "otlp"), ("transport", "grpc")])
            >= 1.0
    );
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn wait_for_result_succeeds_once_the_data_is_delivered() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let queue = "    sending_queue:\n      wait_for_result: true\n      batch:\n        flush_timeout: 1s\n        \
                 min_size: 1000\n";
    let config = agent_config(ports, "", &exporter_yaml("otlp", &recv, queue), &["traces"], &[], &["otlp"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    let expect = dir.path().join("expect.json");
    send_python(&py, &sender_args("traces", &agent.grpc_endpoint(), "30", expect.to_str().unwrap()));
    // The SDK's exports returned only after sluice sent them: all are there already.
    assert_eq!(recv.accepted_items("traces"), 30, "{}", agent.log());
    assert_received(&py, &[expect.as_path()], &recv.out, &[], &format!("sluice log:\n{}", agent.log()));
    agent.stop();
}
