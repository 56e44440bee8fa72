use super::*;
use crate::config::ComponentKind;
use crate::exporters::otlp::tests::traces;
use crate::service::load;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

#[tokio::test]
async fn accepts_every_signal_and_rejects_nothing() {
    let nop = NopExporter::new(&NopExporterConfig::default());
    for batch in [
        Batch::Traces(traces(5)),
        Batch::Metrics(ExportMetricsServiceRequest::default()),
        Batch::Logs(ExportLogsServiceRequest::default()),
    ] {
        assert_eq!(nop.export(&batch).await, Ok(ExportOutcome::default()));
    }
    nop.shutdown().await;
}

const PIPELINES: &str = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
     service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n\
     \x20   metrics:\n      receivers: [otlp]\n      exporters: [nop]\n\
     \x20   logs:\n      receivers: [otlp]\n      exporters: [nop]\n";

#[test]
fn config_is_empty_and_listed_for_all_signals() {
    let cfg = load(&format!("exporters:\n  nop:\n{PIPELINES}"), &|_| None).unwrap();
    let nop = cfg.exporters.values().next().unwrap();
    assert_eq!(nop.downcast_ref::<NopExporterConfig>(), Some(&NopExporterConfig {}));
    let ty = crate::components::find(ComponentKind::Exporter, "nop").unwrap();
    assert_eq!(ty.signals.len(), 3);
}

#[test]
fn config_refuses_unknown_keys() {
    let err = load(&format!("exporters:\n  nop:\n    verbosity: basic\n{PIPELINES}"), &|_| None).unwrap_err();
    assert!(err.to_string().contains("exporters::nop"), "{err}");
}
