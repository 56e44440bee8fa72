//! The `forward` connector: hands what one pipeline exports to the pipelines
//! of the same signal that list it as a receiver, as the Collector's
//! `forward` connector does (traces to traces, metrics to metrics, logs to
//! logs). It takes no settings.
//!
//! Guarantee: every batch passes unchanged, in the form it came (still
//! encoded when the pipeline sent it so), and in order.

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Now};
use crate::data::{Batch, Payload, Signal};
use std::sync::Arc;

pub static FACTORY: ConnectorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Connector,
        name: "forward",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "passes data from pipelines to pipelines of the same signal (traces to traces, ...)",
        example: "",
    },
    settings: SettingsType::of::<ForwardConfig>(),
    compile: |input| {
        let cfg: ForwardConfig = input.typed()?;
        Some(Arc::new(cfg) as _)
    },
};

/// `connectors::forward`: no settings.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {}

const PAIRS: &[(Signal, Signal)] =
    &[(Signal::Traces, Signal::Traces), (Signal::Metrics, Signal::Metrics), (Signal::Logs, Signal::Logs)];

impl ConnectorSpec for ForwardConfig {
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        PAIRS
    }

    fn build(&self, _ctx: &ConnectorContext) -> Result<Box<dyn Connector>, String> {
        Ok(Box::new(Forward))
    }
}

struct Forward;

impl Connector for Forward {
    fn consume(&mut self, batch: &Batch, _now: Now, out: &mut Vec<Batch>) {
        out.push(batch.clone());
    }

    fn consume_payload(&mut self, payload: &Payload, _now: Now, out: &mut Vec<Payload>) -> Result<(), String> {
        out.push(payload.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn forwards_every_batch_unchanged_and_in_order() {
        let ctx = ConnectorContext {
            id: "forward".into(),
            from: Signal::Traces,
            to: Signal::Traces,
            registry: Registry::new(),
            extensions: Default::default(),
        };
        let mut f = ForwardConfig::default().build(&ctx).unwrap();
        let batch = |name: &str| {
            Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span { name: name.into(), ..Default::default() }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }))
        };
        let (a, b) = (batch("a"), batch("b"));
        let encoded = Payload::Encoded(b.clone().into_encoded());
        let mut out = Vec::new();
        let now = Now::current();
        f.consume_payload(&a, now, &mut out).unwrap();
        f.consume_payload(&encoded, now, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Payload::Decoded(x) if Payload::Decoded(x.clone()) == a));
        // Still encoded: forwarding never decodes.
        assert!(matches!(&out[1], Payload::Encoded(_)));
        assert_eq!(out.pop().unwrap().into_decoded().unwrap(), b.into_decoded().unwrap());
    }
}
