//! End to end with the OpenTelemetry Node SDK over OTLP/HTTP JSON (chunked
//! request bodies, hex trace IDs): Node → sluice → otlp exporter → reference
//! receiver; content must match what the SDK recorded.

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, Node OpenTelemetry SDK): bash .ci/run"]
fn node_http_json_to_otlp_exporter() {
    let py = python();
    let node = node();
    let dir = temp_dir();
    let (recv, agent) = agent_to_reference(&py, dir.path(), FAST_BATCH, &["traces"], &["batch"], &[]);

    let expect = dir.path().join("expect-node.json");
    send_node(
        &node,
        &[
            "--endpoint",
            &agent.http_endpoint(),
            "--count",
            "40",
            "--batch-size",
            "15",
            "--expect-file",
            expect.to_str().unwrap(),
        ],
    );
    let n = expected_count(&expect);
    assert_eq!(n, 40);
    assert!(recv.wait_items("traces", n, Duration::from_secs(15)), "sluice log:\n{}", agent.log());
    assert_eq!(agent.metric("otelcol_receiver_accepted_spans_total", &[]), 40.0);
    std::thread::sleep(Duration::from_millis(300));
    assert_received(&py, &[&expect], &recv.out, &[], &format!("sluice log:\n{}", agent.log()));
    agent.stop();
}
