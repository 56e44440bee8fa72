use super::config::{DnsResolverConfig, ProtocolConfig, ResolverConfig, StaticResolverConfig};
use super::*;
use crate::config::Duration as CfgDuration;
use crate::exporters::otlp_common::{Compression, TlsClientConfig};
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, NumberDataPoint};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

fn service(name: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(name.into())) }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: name.into(), ..Default::default() })
}

fn trace_id(t: u32) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&t.to_be_bytes());
    id[15] = 1;
    id.to_vec()
}

/// `traces` traces of `spans` spans each, the spans of every trace spread
/// over two services and two scopes each. Span names are `svc/scope/trace/i`.
fn traces_batch(traces: u32, spans: u32) -> Batch {
    let mut resource_spans = Vec::new();
    for svc in ["checkout", "payments"] {
        let mut scope_spans = Vec::new();
        for sc in ["http", "db"] {
            let mut list = Vec::new();
            for t in 0..traces {
                for i in 0..spans {
                    // Each (service, scope) holds a quarter of every trace's spans.
                    let slot = i % 4;
                    let here = (slot / 2 == (svc == "payments") as u32) && (slot % 2 == (sc == "db") as u32);
                    if here {
                        list.push(Span {
                            trace_id: trace_id(t),
                            span_id: vec![(i + 1) as u8; 8],
                            name: format!("{svc}/{sc}/{t}/{i}"),
                            ..Default::default()
                        });
                    }
                }
            }
            scope_spans.push(ScopeSpans { scope: scope(sc), spans: list, schema_url: String::new() });
        }
        resource_spans.push(ResourceSpans { resource: service(svc), scope_spans, schema_url: String::new() });
    }
    Batch::Traces(ExportTraceServiceRequest { resource_spans })
}

/// (span name, service, scope) of every span in a request.
fn spans_of(r: &ExportTraceServiceRequest) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rs in &r.resource_spans {
        let svc = match rs.resource.as_ref().and_then(|r| r.attributes[0].value.as_ref()).and_then(|v| v.value.as_ref())
        {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            _ => String::new(),
        };
        for ss in &rs.scope_spans {
            let sc = ss.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for s in &ss.spans {
                out.push((s.name.clone(), svc.clone(), sc.clone()));
            }
        }
    }
    out
}

fn ring_of(n: usize) -> Ring {
    Ring::new((0..n).map(|i| format!("10.0.0.{i}:4317")))
}

#[test]
fn split_keeps_each_trace_whole_under_its_resource_and_scope() {
    let batch = traces_batch(300, 6);
    let ring = ring_of(3);
    let parts = split(&batch, RoutingKey::TraceId, &[true, true, true], &ring);
    assert_eq!(parts.len(), 3, "300 traces reach all three backends");
    let mut backend_of_trace: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for (backend, part) in &parts {
        let Batch::Traces(r) = part else { panic!("signal changed") };
        for (name, svc, sc) in spans_of(r) {
            // The name says where the span came from: it must sit there still.
            let mut fields = name.split('/');
            assert_eq!((fields.next().unwrap(), fields.next().unwrap()), (svc.as_str(), sc.as_str()));
            let trace = fields.next().unwrap().to_string();
            let b = *backend_of_trace.entry(trace.clone()).or_insert(backend.unwrap());
            assert_eq!(b, backend.unwrap(), "trace {trace} split over two backends");
            total += 1;
        }
    }
    assert_eq!(total, 1800);
    assert_eq!(backend_of_trace.len(), 300);
}

#[test]
fn split_skips_unusable_backends_and_reports_items_with_nowhere_to_go() {
    let batch = traces_batch(100, 4);
    let ring = ring_of(3);
    let parts = split(&batch, RoutingKey::TraceId, &[true, false, true], &ring);
    assert!(parts.iter().all(|(b, _)| *b == Some(0) || *b == Some(2)));
    assert_eq!(parts.iter().map(|(_, p)| p.item_count()).sum::<usize>(), 400);
    let nowhere = split(&batch, RoutingKey::TraceId, &[false, false, false], &ring);
    assert_eq!(nowhere.len(), 1);
    assert_eq!((nowhere[0].0, nowhere[0].1.item_count()), (None, 400));
}

#[test]
fn service_routing_sends_a_service_to_one_backend() {
    let batch = traces_batch(50, 4);
    let parts = split(&batch, RoutingKey::Service, &[true; 5], &ring_of(5));
    let mut seen: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (b, part) in &parts {
        let Batch::Traces(r) = part else { unreachable!() };
        for (_, svc, _) in spans_of(r) {
            seen.entry(svc).or_default().insert(b.unwrap());
        }
    }
    assert_eq!(seen.len(), 2);
    assert!(seen.values().all(|b| b.len() == 1), "{seen:?}");
}

#[test]
fn metrics_split_by_name_and_logs_by_trace_id() {
    let metrics: Vec<Metric> = (0..40)
        .map(|i| Metric {
            name: format!("m{}", i % 8),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); 2] })),
            ..Default::default()
        })
        .collect();
    let batch = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: service("a"),
            scope_metrics: vec![ScopeMetrics { scope: scope("s"), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    });
    let parts = split(&batch, RoutingKey::Metric, &[true; 3], &ring_of(3));
    assert_eq!(parts.iter().map(|(_, p)| p.item_count()).sum::<usize>(), 80);
    let mut owner: HashMap<String, Option<usize>> = HashMap::new();
    for (b, p) in &parts {
        let Batch::Metrics(r) = p else { unreachable!() };
        for m in &r.resource_metrics[0].scope_metrics[0].metrics {
            assert_eq!(*owner.entry(m.name.clone()).or_insert(*b), *b, "metric {} split", m.name);
        }
    }
    assert_eq!(owner.len(), 8);

    let records: Vec<LogRecord> = (0..60u32)
        .map(|i| LogRecord { trace_id: if i % 3 == 0 { Vec::new() } else { trace_id(i % 10) }, ..Default::default() })
        .collect();
    let batch = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: service("a"),
            scope_logs: vec![ScopeLogs { scope: scope("s"), log_records: records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    });
    let parts = split(&batch, RoutingKey::TraceId, &[true; 3], &ring_of(3));
    assert_eq!(parts.iter().map(|(_, p)| p.item_count()).sum::<usize>(), 60);
    let mut owner: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
    for (b, p) in &parts {
        let Batch::Logs(r) = p else { unreachable!() };
        for l in r.resource_logs[0].scope_logs[0].log_records.iter().filter(|l| !l.trace_id.is_empty()) {
            assert_eq!(*owner.entry(l.trace_id.clone()).or_insert(*b), *b, "a trace's logs split");
        }
    }
}

/// A trace receiver that records the span names it got, or refuses everything.
#[derive(Clone, Default)]
struct Gateway {
    spans: Arc<Mutex<Vec<String>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
}

#[tonic::async_trait]
impl TraceService for Gateway {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("draining"));
        }
        let names = spans_of(&req.into_inner()).into_iter().map(|(n, _, _)| n);
        self.spans.lock().unwrap().extend(names);
        Ok(tonic::Response::new(Default::default()))
    }
}

async fn gateway() -> (SocketAddr, Gateway) {
    let gw = Gateway::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(gw.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, gw)
}

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn lb_config(hostnames: Vec<String>) -> LoadBalancingConfig {
    LoadBalancingConfig {
        routing_key: None,
        protocol: ProtocolConfig {
            otlp: OtlpExporterConfig {
                endpoint: String::new(),
                tls: TlsClientConfig { insecure: true, ..Default::default() },
                headers: Default::default(),
                compression: Compression::None,
                compression_params: Default::default(),
                timeout: CfgDuration::from_secs(2),
                sending_queue: Default::default(),
                // A failed backend is skipped for initial_interval: keep the rejoin test short.
                retry_on_failure: crate::exporters::otlp_common::RetryConfig {
                    initial_interval: CfgDuration::from_millis(100),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        resolver: ResolverConfig {
            static_: Some(StaticResolverConfig { hostnames }),
            dns: None,
            k8s: None,
            aws_cloud_map: None,
        },
        routing_attributes: None,
        timeout: None,
        sending_queue: None,
        retry_on_failure: None,
    }
}

fn trace_of(span_name: &str) -> String {
    span_name.split('/').nth(2).unwrap().to_string()
}

#[tokio::test]
async fn export_delivers_every_trace_whole_to_exactly_one_backend() {
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(gateway().await);
    }
    let reg = Registry::new();
    let cfg = lb_config(gws.iter().map(|(a, _)| a.to_string()).collect());
    let exp = LoadBalancingExporter::new(
        &cfg,
        Signal::Traces,
        "loadbalancing",
        LoadBalancerMetrics::new(&reg, "loadbalancing", Signal::Traces),
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(exp.export(&traces_batch(100, 4)).await, Ok(ExportOutcome::default()));
    }
    let mut gateway_of: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for (g, (_, gw)) in gws.iter().enumerate() {
        let spans = gw.spans.lock().unwrap();
        assert!(!spans.is_empty(), "gateway {g} got nothing");
        for s in spans.iter() {
            assert_eq!(*gateway_of.entry(trace_of(s)).or_insert(g), g, "trace of {s} reached two gateways");
        }
        total += spans.len();
    }
    assert_eq!(total, 1200);
    let text = reg.render();
    assert!(text.contains("sluice_loadbalancer_backends{exporter=\"loadbalancing\",data_type=\"traces\"} 3"), "{text}");
}

#[tokio::test]
async fn a_failing_backend_is_routed_around_and_nothing_is_lost() {
    let (a, ga) = gateway().await;
    let (b, gb) = gateway().await;
    let (c, gc) = gateway().await;
    let dead = closed_port().await;
    gc.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let reg = Registry::new();
    let metrics = LoadBalancerMetrics::new(&reg, "loadbalancing", Signal::Traces);
    let cfg = lb_config(vec![a.to_string(), b.to_string(), c.to_string(), dead.to_string()]);
    let exp = LoadBalancingExporter::new(&cfg, Signal::Traces, "loadbalancing", metrics.clone()).unwrap();
    assert_eq!(exp.export(&traces_batch(200, 3)).await, Ok(ExportOutcome::default()));
    let got: Vec<String> = [&ga, &gb].iter().flat_map(|g| g.spans.lock().unwrap().clone()).collect();
    assert_eq!(got.len(), 600, "all spans at the two healthy backends");
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 600, "no span twice");
    assert!(gc.spans.lock().unwrap().is_empty());
    assert!(metrics.reroutes.get() >= 2, "both failing backends' parts rerouted");
    let (_, dead_failed) = metrics.backend(&dead.to_string());
    let (_, refusing_failed) = metrics.backend(&c.to_string());
    let (a_sent, _) = metrics.backend(&a.to_string());
    let (b_sent, _) = metrics.backend(&b.to_string());
    assert!(dead_failed.get() > 0 && refusing_failed.get() > 0);
    assert_eq!(a_sent.get() + b_sent.get(), 600);

    // Once it answers again (and its down time is over) it gets traffic back.
    gc.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(exp.shared.down_for + Duration::from_millis(50)).await;
    assert_eq!(exp.export(&traces_batch(200, 3)).await, Ok(ExportOutcome::default()));
    assert!(!gc.spans.lock().unwrap().is_empty(), "the recovered backend rejoined");
}

#[tokio::test]
async fn with_every_backend_down_the_export_is_retryable() {
    let dead = closed_port().await;
    let reg = Registry::new();
    let cfg = lb_config(vec![dead.to_string()]);
    let exp =
        LoadBalancingExporter::new(&cfg, Signal::Traces, "lb", LoadBalancerMetrics::new(&reg, "lb", Signal::Traces))
            .unwrap();
    match exp.export(&traces_batch(10, 2)).await {
        Err(ExportError::Retryable { message, .. }) => {
            assert!(message.contains("20 of 20 items could not be delivered to any of 1 backends"), "{message}")
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dns_resolver_fills_the_ring_with_the_addresses_of_the_name() {
    let reg = Registry::new();
    let mut cfg = lb_config(Vec::new());
    cfg.resolver = ResolverConfig {
        static_: None,
        dns: Some(DnsResolverConfig {
            hostname: "localhost".into(),
            port: 4999,
            interval: CfgDuration::from_millis(50),
            timeout: CfgDuration::from_secs(1),
        }),
        k8s: None,
        aws_cloud_map: None,
    };
    let metrics = LoadBalancerMetrics::new(&reg, "lb", Signal::Traces);
    let exp = LoadBalancingExporter::new(&cfg, Signal::Traces, "lb", metrics.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while exp.endpoints().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let endpoints = exp.endpoints();
    assert!(endpoints.iter().any(|e| e == "127.0.0.1:4999" || e == "[::1]:4999"), "{endpoints:?}");
    assert_eq!(metrics.backends.get(), endpoints.len() as i64);
    assert!(metrics.resolver_refreshes.get() >= 1);
}

#[tokio::test]
async fn a_new_backend_set_keeps_the_clients_of_endpoints_that_stay() {
    let reg = Registry::new();
    let metrics = LoadBalancerMetrics::new(&reg, "lb", Signal::Traces);
    let cfg = lb_config(vec!["10.0.0.1:4317".into(), "10.0.0.2:4317".into()]);
    let exp = LoadBalancingExporter::new(&cfg, Signal::Traces, "lb", metrics.clone()).unwrap();
    let kept = exp.shared.snapshot().members[0].clone();
    exp.shared.set_endpoints(vec!["10.0.0.3:4317".into(), "10.0.0.1:4317".into(), "10.0.0.3:4317".into()]);
    let now = exp.shared.snapshot();
    assert_eq!(now.ring.endpoints(), ["10.0.0.1:4317", "10.0.0.3:4317"]);
    assert!(Arc::ptr_eq(&now.members[0], &kept), "the client of 10.0.0.1 was rebuilt");
    assert_eq!(metrics.backends.get(), 2);
    let series = |endpoint: &str| {
        reg.value(
            "sluice_loadbalancer_backend_sent_items_total",
            &[("exporter", "lb"), ("data_type", "traces"), ("endpoint", endpoint)],
        )
    };
    assert_eq!(series("10.0.0.1:4317"), Some(0.0));
    assert_eq!(series("10.0.0.3:4317"), Some(0.0));
    assert_eq!(series("10.0.0.2:4317"), None, "a backend that left keeps no series");
}

#[test]
fn protocol_otlp_compression_is_checked_as_the_otlp_exporters() {
    let yaml = |otlp: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
             exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n{otlp}\n    resolver:\n      static:\n        hostnames: [gw:4317]\n\
             service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n"
        )
    };
    let errors =
        crate::service::load(&yaml("        compression: gzip\n        compression_params: {level: 11}"), &|_| None)
            .unwrap_err()
            .0;
    assert!(
        errors.iter().any(|e| e.path == "exporters::loadbalancing::protocol::otlp::compression_params::level"
            && e.line == Some(11)
            && e.hint.is_some()),
        "{errors:#?}"
    );
    let errors = crate::service::load(&yaml("        compression: lz4"), &|_| None).unwrap_err().0;
    assert!(errors.iter().any(|e| e.path == "exporters::loadbalancing::protocol::otlp::compression"), "{errors:#?}");
    assert!(crate::service::load(&yaml("        compression: snappy"), &|_| None).is_ok());
}

/// Current Collectors put the queue, retries and timeout at the exporter's
/// top level; they replace `protocol.otlp`'s, and one setting in two places
/// is refused (sluice has one queue for the exporter, not one per backend).
#[test]
fn exporter_level_queue_retry_and_timeout() {
    let yaml = |top: &str, otlp: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
             exporters:\n  loadbalancing:\n{top}    protocol:\n      otlp:\n        timeout: 9s\n{otlp}\
             \n    resolver:\n      static:\n        hostnames: [gw:4317]\n\
             service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n"
        )
    };
    let top = "    timeout: 2s\n    sending_queue:\n      queue_size: 77\n    retry_on_failure:\n      initial_interval: 3s\n";
    assert!(crate::service::load(&yaml(top, ""), &|_| None).is_ok());
    let mut cfg = lb_config(vec!["gw:4317".into()]);
    cfg.timeout = Some(CfgDuration::from_secs(2));
    cfg.sending_queue =
        Some(crate::exporters::otlp_common::SendingQueueConfig { queue_size: 77, ..Default::default() });
    let settings = cfg.backend_settings();
    assert_eq!(settings.timeout, CfgDuration::from_secs(2));
    assert_eq!(settings.sending_queue.queue_size, 77);
    assert_eq!(
        settings.retry_on_failure.initial_interval,
        CfgDuration::from_millis(100),
        "protocol.otlp's, not set above"
    );
    assert_eq!(cfg.sending().0.queue_size, 77, "the exporter's queue is the top-level one");
    // Unset at the top level: protocol.otlp's.
    assert_eq!(lb_config(vec![]).backend_settings().timeout, CfgDuration::from_secs(2));

    let errors =
        crate::service::load(&yaml(top, "        sending_queue:\n          queue_size: 5"), &|_| None).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "exporters::loadbalancing::sending_queue");
    assert_eq!(errors[0].line, Some(9));
    assert_eq!(errors[0].message, "sending_queue is set both here and under protocol.otlp");
    let bad = "    sending_queue:\n      queue_size: 0\n";
    let errors = crate::service::load(&yaml(bad, ""), &|_| None).unwrap_err().0;
    assert!(errors.iter().any(|e| e.path == "exporters::loadbalancing::sending_queue::queue_size"), "{errors:#?}");
}
