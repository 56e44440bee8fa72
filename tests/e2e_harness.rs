//! Checks the end-to-end harness itself, without sluice: the real SDKs send
//! straight to the reference receiver and the comparison must match. When an
//! e2e test through sluice fails, this one passing says the fault is sluice's,
//! not the harness's.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn python_sdk_direct_to_reference_receiver_matches() {
    let py = require!(python());
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let mut expects = vec![];
    for (signal, protocol, gzip) in [("traces", "grpc", false), ("metrics", "http", true), ("logs", "grpc", true)] {
        let expect = dir.path().join(format!("expect-{signal}.json"));
        let endpoint = if protocol == "grpc" { recv.grpc_addr() } else { recv.http_url() };
        let mut args = vec![
            "--signal",
            signal,
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--count",
            "12",
            "--batch-size",
            "5",
            "--expect-file",
            expect.to_str().unwrap(),
        ];
        if gzip {
            args.push("--gzip");
        }
        send_python(&py, &args);
        assert!(recv.wait_items(signal, expected_count(&expect), Duration::from_secs(5)));
        expects.push(expect);
    }
    let paths: Vec<&std::path::Path> = expects.iter().map(|p| p.as_path()).collect();
    assert_received(&py, &paths, &recv.out, &[], "");
}

#[test]
fn node_sdk_direct_to_reference_receiver_matches() {
    let py = require!(python());
    let node = require!(node());
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let expect = dir.path().join("expect.json");
    send_node(&node, &["--endpoint", &recv.http_url(), "--count", "10", "--expect-file", expect.to_str().unwrap()]);
    assert!(recv.wait_items("traces", 10, Duration::from_secs(5)));
    assert_received(&py, &[&expect], &recv.out, &[], "");
}

#[test]
fn reference_receiver_fault_injection_is_seen_by_the_sdk() {
    let py = require!(python());
    let dir = temp_dir();
    // RetryInfo of 0.1 s keeps the SDK's retries short.
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet", "--fail-first", "2", "--retry-after", "0.1"]);
    let out = send_python(
        &py,
        &["--signal", "traces", "--protocol", "grpc", "--endpoint", &recv.grpc_addr(), "--count", "6"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Transient error StatusCode.UNAVAILABLE"), "{stderr}");
    let stats = recv.stats();
    assert_eq!(stats["requests_rejected"], 2, "{stats}");
    assert_eq!(stats["items_accepted"]["traces"], 6, "{stats}");

    // A permanent error makes the sender exit non-zero.
    let dir2 = temp_dir();
    let recv2 =
        RefReceiver::start(&py, dir2.path(), &["--quiet", "--fail-first", "1", "--fail-code", "invalid_argument"]);
    let o = run_python_sender(
        &py,
        &["--signal", "logs", "--protocol", "grpc", "--endpoint", &recv2.grpc_addr(), "--count", "3"],
    );
    assert!(!o.status.success());
    assert_eq!(recv2.stats()["requests"], 1);
}
