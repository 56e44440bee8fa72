//! Attribute rewriting end to end with the OpenTelemetry Python SDK: traces
//! and logs through the `attributes` and `resource` processors, checked item
//! by item at the reference receiver.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// hex SHA-256 of "label-0" .. "label-6" (Python's hashlib): the sender's
/// `item.label` is `label-{index % 7}`.
const LABEL_HASHES: [&str; 7] = [
    "c66a8540955a4e3e0292d9d2a2946a9b907dec97d13254e71f21ae4577dc9877",
    "f40389aae6a26145af5d3181bf34a05645486a5da6b794968bc9c943304eff97",
    "5631c0bd4f1d37e88c6baaf1f0c421d55d7e5026be55bed4c3c2f6b887afa623",
    "9477fa0b49bc0d80878343228e2b7872e125e6cb5d5cc2f1bbf9b72fe3434c81",
    "7746a827e3d97bff9e506844717d749f7e5e679f6a83dc8625dd85f36066063f",
    "94d5fea8f026a85a03d942dc90bfa06a9d4d5f49e2cca852645ccc18a2e10478",
    "62f737a0f8d77cc8b94f2dddb0c340cdc2562933e05a18666d3df936b55b8af6",
];

const PROCESSORS: &str = r#"  attributes:
    actions:
      - key: team
        value: ${env:SLUICE_E2E_TEAM}
        action: insert
      - key: item.tags
        action: delete
      - pattern: ^item\.(ints|floats)$
        action: delete
      - key: item.label
        pattern: ^(?P<label_prefix>[a-z]+)-(?P<label_num>\d+)$
        action: extract
      - key: item.label
        action: hash
  resource:
    attributes:
      - key: deployment.environment
        value: production
        action: upsert
      - key: host.cpu.count
        action: delete
  batch:
    timeout: 100ms"#;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn attributes_and_resource_rewrite_spans_and_log_records() {
    let py = python();
    let dir = temp_dir();
    // The agent inherits the test's environment; the config reads the value from it.
    std::env::set_var("SLUICE_E2E_TEAM", "payments");
    let (recv, agent) = agent_to_reference(
        &py,
        dir.path(),
        PROCESSORS,
        &["traces", "logs"],
        &["attributes", "resource", "batch"],
        &["workers: 1"],
    );
    for signal in ["traces", "logs"] {
        send_python(
            &py,
            &["--signal", signal, "--protocol", "grpc", "--endpoint", &agent.grpc_endpoint(), "--count", "30"],
        );
        assert!(recv.wait_items(signal, 30, Duration::from_secs(10)), "{signal}: {}", agent.log());
    }
    agent.stop();

    let got = received_items(&recv.out);
    for signal in ["traces", "logs"] {
        let items: Vec<&Value> = got.iter().filter(|i| i["signal"] == signal).collect();
        assert_eq!(items.len(), 30, "{signal}: every item must pass");
        for item in items {
            let a = &item["attributes"];
            let index = a["item.index"]["int"].as_i64().unwrap_or_else(|| panic!("no item.index: {item}"));
            let label = (index % 7) as usize;
            assert_eq!(a["team"], serde_json::json!({"string": "payments"}), "{item}");
            for gone in ["item.tags", "item.ints", "item.floats"] {
                assert!(a.get(gone).is_none(), "{gone} must be deleted: {item}");
            }
            assert!(a["item.bools"]["array"].is_array(), "item.bools must stay: {item}");
            assert_eq!(a["item.label"]["string"], LABEL_HASHES[label], "{item}");
            assert_eq!(a["label_prefix"]["string"], "label", "{item}");
            assert_eq!(a["label_num"]["string"], label.to_string(), "{item}");
            // Types of untouched attributes are kept.
            assert!(a["item.ratio"]["double"].is_f64() && a["item.even"]["bool"].is_boolean(), "{item}");

            let r = &item["resource"]["attributes"];
            assert_eq!(r["deployment.environment"]["string"], "production", "{item}");
            assert!(r.get("host.cpu.count").is_none(), "{item}");
            assert_eq!(r["service.name"]["string"], "sluice-e2e-python", "{item}");
            // The attributes processor leaves resources alone, the resource processor items.
            assert!(r.get("team").is_none() && a.get("deployment.environment").is_none(), "{item}");
        }
    }
}
