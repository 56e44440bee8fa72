//! Every decision a reload makes, from two configs alone: nothing starts.

use super::*;
use crate::pipeline::parts::{routed_receivers, wanted_servers};

const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14317
processors:
  memory_limiter:
    limit_mib: 512
  batch:
    timeout: 1s
exporters:
  otlp/tempo:
    endpoint: tempo:4317
  debug:
service:
  telemetry:
    metrics:
      address: 127.0.0.1:18888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/tempo, debug]
    logs:
      receivers: [otlp]
      exporters: [debug]
";

fn load(yaml: &str) -> AgentConfig {
    crate::service::load(yaml, &|_| None).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The plan from `old` running to `new`.
fn plan(old: &str, new: &str) -> ReloadPlan {
    let (old, new) = (load(old), load(new));
    let pipelines: BTreeMap<PipelineId, PipelineShape> =
        old.service.pipelines.iter().map(|(pid, p)| (pid.clone(), PipelineShape::of(&old, p))).collect();
    let receivers = routed_receivers(&old);
    let exporters = old
        .service
        .pipelines
        .iter()
        .flat_map(|(pid, p)| pipeline_outlets(pid, p))
        .filter_map(|key| {
            let cfg = old.exporters.get(&key.0)?;
            Some((key, (cfg, queue_storage(cfg, &old.extensions))))
        })
        .collect();
    let connectors = connector_instances(&old);
    let view = RunningView {
        connectors: connectors
            .iter()
            .map(|(k, v)| (k.clone(), (v, named_storage(&v.extension_references(), &old.extensions))))
            .collect(),
        exporters,
        limiters: used_limiters(&old),
        pipelines: pipelines.iter().map(|(k, v)| (k.clone(), v)).collect(),
        receivers: receivers.iter().map(|(k, v)| (k.clone(), v)).collect(),
        servers: wanted_servers(&old),
        logs_encoding: Some(old.service.telemetry.logs.encoding),
    };
    ReloadPlan::between(&view, &new, &routed_receivers(&new), &wanted_servers(&new))
}

fn id(s: &str) -> ComponentId {
    ComponentId::parse(s).unwrap()
}

fn pid(s: &str) -> PipelineId {
    let signal = Signal::ALL.into_iter().find(|sig| sig.as_str() == s).unwrap();
    PipelineId { signal, name: None }
}

fn exporter(plan: &ReloadPlan, name: &str, signal: Signal) -> Option<ExporterStep> {
    plan.exporters.get(&(id(name), signal)).copied()
}

#[test]
fn the_same_config_keeps_everything() {
    let p = plan(BASE, BASE);
    assert!(p.pipelines.values().all(|kept| *kept), "{p:#?}");
    assert!(p.exporters.values().all(|s| *s == ExporterStep::Keep), "{p:#?}");
    assert_eq!(p.limiters.get(&id("memory_limiter")), Some(&true));
    assert!(p.receivers.values().all(|s| *s == ListenerStep::Keep), "{p:#?}");
    assert!(p.servers.values().all(|s| *s == ListenerStep::Keep), "{p:#?}");
    assert!(p.exporters_removed.is_empty() && p.pipelines_retired.is_empty() && p.limiters_stopped.is_empty());
    assert!(p.needs_restart.is_empty());
}

/// One change at a time, and what the plan does about it.
#[test]
fn each_change_touches_only_its_parts() {
    struct Case {
        what: &'static str,
        from: &'static str,
        to: &'static str,
        check: fn(&ReloadPlan),
    }
    let cases = [
        Case {
            what: "a processor setting replaces the pipelines that list it, nothing else",
            from: "    timeout: 1s",
            to: "    timeout: 2s",
            check: |p| {
                assert_eq!(p.pipelines.get(&pid("traces")), Some(&false));
                assert_eq!(p.pipelines.get(&pid("logs")), Some(&true));
                assert_eq!(p.pipelines_retired, vec![(pid("traces"), true)]);
                assert_eq!(exporter(p, "otlp/tempo", Signal::Traces), Some(ExporterStep::Keep));
                assert_eq!(p.receivers.get(&id("otlp")), Some(&ListenerStep::Keep));
            },
        },
        Case {
            what: "an exporter's endpoint: new consumers on the same queue",
            from: "    endpoint: tempo:4317",
            to: "    endpoint: tempo-2:4317",
            check: |p| {
                assert_eq!(exporter(p, "otlp/tempo", Signal::Traces), Some(ExporterStep::NewConsumers));
                assert_eq!(exporter(p, "debug", Signal::Traces), Some(ExporterStep::Keep));
                assert_eq!(p.pipelines.get(&pid("traces")), Some(&true), "the pipeline keeps its state");
            },
        },
        Case {
            what: "an exporter's queue size: a new queue",
            from: "    endpoint: tempo:4317\n",
            to: "    endpoint: tempo:4317\n    sending_queue: {queue_size: 10}\n",
            check: |p| {
                assert_eq!(exporter(p, "otlp/tempo", Signal::Traces), Some(ExporterStep::Replace));
            },
        },
        Case {
            what: "an exporter taken out of the pipeline is removed; the pipeline keeps its processors",
            from: "      exporters: [otlp/tempo, debug]",
            to: "      exporters: [debug]",
            check: |p| {
                assert_eq!(p.exporters_removed, vec![(id("otlp/tempo"), Signal::Traces)]);
                assert_eq!(p.pipelines.get(&pid("traces")), Some(&true));
            },
        },
        Case {
            what: "a memory limit: a new limiter, and the pipelines that list it start anew",
            from: "    limit_mib: 512",
            to: "    limit_mib: 256",
            check: |p| {
                assert_eq!(p.limiters.get(&id("memory_limiter")), Some(&false));
                assert_eq!(p.limiters_stopped, vec![id("memory_limiter")]);
                assert_eq!(p.pipelines.get(&pid("traces")), Some(&false));
                assert_eq!(p.pipelines.get(&pid("logs")), Some(&true));
            },
        },
        Case {
            what: "a receiver's endpoint restarts it",
            from: "endpoint: 127.0.0.1:14317",
            to: "endpoint: 127.0.0.1:14318",
            check: |p| {
                assert_eq!(p.receivers.get(&id("otlp")), Some(&ListenerStep::Restart));
                assert!(p.pipelines.values().all(|kept| *kept));
            },
        },
        Case {
            what: "the metrics address restarts that server only",
            from: "      address: 127.0.0.1:18888",
            to: "      address: 127.0.0.1:18889",
            check: |p| {
                assert_eq!(p.servers.get("metrics"), Some(&ListenerStep::Restart));
                assert_eq!(p.receivers.get(&id("otlp")), Some(&ListenerStep::Keep));
            },
        },
        Case {
            what: "no metrics address stops the server",
            from: "      address: 127.0.0.1:18888",
            to: "      address: \"\"",
            check: |p| assert_eq!(p.servers.get("metrics"), Some(&ListenerStep::Stop)),
        },
        Case {
            what: "a pipeline removed is retired with no successor; its exporter instances go",
            from: "    logs:\n      receivers: [otlp]\n      exporters: [debug]\n",
            to: "",
            check: |p| {
                assert_eq!(p.pipelines_retired, vec![(pid("logs"), false)]);
                assert_eq!(p.exporters_removed, vec![(id("debug"), Signal::Logs)]);
                assert_eq!(p.receivers.get(&id("otlp")), Some(&ListenerStep::Restart), "it serves one signal less");
            },
        },
        Case {
            what: "the log encoding applies at the next start",
            from: "  telemetry:\n",
            to: "  telemetry:\n    logs: {encoding: json}\n",
            check: |p| {
                assert_eq!(p.needs_restart, vec!["service::telemetry::logs::encoding".to_string()]);
                assert!(p.pipelines.values().all(|kept| *kept));
            },
        },
    ];
    for case in cases {
        assert!(BASE.contains(case.from), "{}: the base config has {:?}", case.what, case.from);
        let next = BASE.replacen(case.from, case.to, 1);
        let p = plan(BASE, &next);
        let result = std::panic::catch_unwind(|| (case.check)(&p));
        assert!(result.is_ok(), "{}: {p:#?}", case.what);
    }
}

#[test]
fn a_persistent_queue_s_size_is_a_restart_setting() {
    let dir = tempfile::tempdir().unwrap();
    let with_storage = |size: u32| {
        BASE.replace(
            "  debug:\n",
            &format!("  debug:\nextensions:\n  file_storage:\n    directory: {}\n", dir.path().display()),
        )
        .replace(
            "    endpoint: tempo:4317\n",
            &format!("    endpoint: tempo:4317\n    sending_queue: {{storage: file_storage, queue_size: {size}}}\n"),
        )
        .replace("service:\n", "service:\n  extensions: [file_storage]\n")
    };
    let p = plan(&with_storage(100), &with_storage(200));
    assert_eq!(exporter(&p, "otlp/tempo", Signal::Traces), Some(ExporterStep::NewConsumers), "{p:#?}");
    assert_eq!(p.needs_restart.len(), 1, "{p:#?}");
    assert!(p.needs_restart[0].starts_with("exporters::otlp/tempo::sending_queue"), "{p:#?}");
}

const WITH_CONNECTORS: &str = "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14317
exporters:
  debug:
connectors:
  count:
  forward:
service:
  telemetry:
    metrics:
      address: 127.0.0.1:18888
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [count, forward]
    traces/copy:
      receivers: [forward]
      exporters: [debug]
    metrics:
      receivers: [count]
      exporters: [debug]
";

fn connector(p: &ReloadPlan, name: &str, from: Signal, to: Signal) -> Option<bool> {
    p.connectors.get(&(id(name), from, to)).copied()
}

#[test]
fn connectors_are_kept_replaced_added_and_removed_like_other_parts() {
    let p = plan(WITH_CONNECTORS, WITH_CONNECTORS);
    assert_eq!(connector(&p, "count", Signal::Traces, Signal::Metrics), Some(true));
    assert_eq!(connector(&p, "forward", Signal::Traces, Signal::Traces), Some(true));
    assert!(p.connectors_retired.is_empty());
    assert!(p.pipelines.values().all(|kept| *kept));

    // New settings: a new instance replaces the running one; the pipelines stay.
    let changed = WITH_CONNECTORS.replace("  count:\n", "  count:\n    spans:\n      my.spans: {}\n");
    let p = plan(WITH_CONNECTORS, &changed);
    assert_eq!(connector(&p, "count", Signal::Traces, Signal::Metrics), Some(false));
    assert_eq!(connector(&p, "forward", Signal::Traces, Signal::Traces), Some(true));
    assert_eq!(p.connectors_retired, vec![(id("count"), Signal::Traces, Signal::Metrics)]);
    assert!(p.pipelines.values().all(|kept| *kept), "{p:#?}");

    // A logs pipeline that exports to count: one more instance (logs to metrics).
    let more = format!("{}    logs:\n      receivers: [otlp]\n      exporters: [count]\n", WITH_CONNECTORS);
    let p = plan(WITH_CONNECTORS, &more);
    assert_eq!(connector(&p, "count", Signal::Logs, Signal::Metrics), Some(false));
    assert_eq!(connector(&p, "count", Signal::Traces, Signal::Metrics), Some(true));
    assert!(p.connectors_retired.is_empty());

    // forward taken out: its instance retires.
    let fewer = WITH_CONNECTORS
        .replace("  forward:\n", "")
        .replace("[count, forward]", "[count]")
        .replace("      receivers: [forward]", "      receivers: [otlp]");
    let p = plan(WITH_CONNECTORS, &fewer);
    assert_eq!(p.connectors_retired, vec![(id("forward"), Signal::Traces, Signal::Traces)]);
    assert_eq!(p.connectors.len(), 1);
}
