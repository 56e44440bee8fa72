//! The `loadbalancing` exporter: sends each item to one of several OTLP/gRPC
//! backends chosen by consistent hashing of its routing key, so that every
//! span of a trace (or everything of a service, or of a metric) reaches the
//! same backend: what a tier of tail-sampling gateways needs.
//!
//! Guarantees:
//! - A batch is split by routing key; each part keeps the resource and scope
//!   of its items and goes to the backend its key maps to on the ring, over
//!   that backend's own connection (an [`OtlpExporter`]).
//! - A part whose backend fails with a retryable error (connection refused,
//!   UNAVAILABLE, timeout) is re-split over the ring without that backend and
//!   sent again within the same export; the failed backend is skipped by
//!   later batches for `retry_on_failure.initial_interval`, then tried again
//!   (so it rejoins once healthy). A backend the resolver stops listing is
//!   dropped; one it lists again rejoins.
//! - `export` is Ok only when every part was accepted by some backend (items
//!   refused permanently, or rejected in a partial success, are reported as
//!   rejected, not retried). When a part could be delivered nowhere, it is a
//!   retryable error and the sending queue retries the whole batch; parts that
//!   had been accepted are then sent again (at least once, never lost).
//! - Every item sent or failed per backend, every reroute, every resolver
//!   refresh and error is counted ([`LoadBalancerMetrics`]).

pub mod config;
pub mod resolver;
pub mod ring;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::{schema_of, SettingsType};
use crate::data::{Batch, Signal};
use crate::exporters::otlp::config::OtlpExporterConfig;
use crate::exporters::otlp::OtlpExporter;
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::Registry;
use crate::telemetry::{Counter, LoadBalancerMetrics};
use config::{LoadBalancingConfig, RoutingKey};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use resolver::{Resolver, ResolverCounters};
use ring::Ring;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};
use xxhash_rust::xxh3::xxh3_64;

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "loadbalancing",
        aliases: &["load_balancing"],
        signals: ALL_SIGNALS,
        description: "OTLP/gRPC to a set of backends by consistent hash of trace ID, service or metric name",
        example: "protocol:\n  otlp:\n    tls:\n      insecure: true\nresolver:\n  static:\n    hostnames: [localhost:4317]\n",
    },
    settings: SettingsType { schema: schema_of::<LoadBalancingConfig>, effective: config::effective_settings },
    compile: |input| {
        // The Collector requires `protocol.otlp.endpoint`'s presence to be
        // unset here; sluice's otlp config requires an endpoint, so one is
        // put in before typing and replaced per backend.
        let node = config::with_endpoint_placeholder(input.node);
        let mut inner = crate::config::component::ComponentInput {
            node: &node,
            path: input.path,
            env: input.env,
            errors: &mut *input.errors,
        };
        let cfg: LoadBalancingConfig = inner.typed()?;
        inner.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for LoadBalancingConfig {
    fn destination(&self, _signal: Signal) -> String {
        match (&self.resolver.static_, &self.resolver.dns) {
            (Some(s), _) => format!("OTLP/gRPC to one of {}", s.hostnames.join(", ")),
            (_, Some(d)) => format!("OTLP/gRPC to the addresses of {}", d.hostname),
            _ => "OTLP/gRPC to its resolver's backends".to_string(),
        }
    }

    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        let settings = self.backend_settings();
        (settings.sending_queue, settings.retry_on_failure)
    }

    /// The routing key must apply to the signal.
    fn check_signal(&self, signal: Signal) -> Result<(), crate::exporters::SignalProblem> {
        self.routing_key_for(signal).map(|_| ()).map_err(|message| crate::exporters::SignalProblem {
            field: Some("routing_key"),
            message,
            hint: config::routing_key_hint(signal),
        })
    }

    fn start(&self, id: &str, signal: Signal, registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        let m = crate::telemetry::LoadBalancerMetrics::new(registry, id, signal);
        Ok(runner::start(LoadBalancingExporter::new(self, signal, id, m)?, parts))
    }
}

/// One backend: its endpoint, its own OTLP/gRPC client and its health.
struct Backend {
    endpoint: String,
    client: OtlpExporter,
    /// Set when a send failed retryably: the backend is skipped until then.
    down_until: Mutex<Option<Instant>>,
    sent: Counter,
    failed: Counter,
}

impl Backend {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| t > now)
    }

    fn set_down_until(&self, until: Option<Instant>) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }
}

/// The current backend set: `members[i]` is the backend at `ring.endpoints()[i]`.
#[derive(Default)]
struct Backends {
    ring: Ring,
    members: Vec<Arc<Backend>>,
}

struct Shared {
    id: String,
    signal: Signal,
    key: RoutingKey,
    protocol: OtlpExporterConfig,
    /// How long a failed backend is skipped before it gets traffic again.
    down_for: Duration,
    backends: RwLock<Arc<Backends>>,
    metrics: LoadBalancerMetrics,
}

impl Shared {
    /// Replaces the backend set, keeping the client (and connection) of every
    /// endpoint that stays.
    fn set_endpoints(&self, endpoints: Vec<String>) {
        let old = self.snapshot();
        let ring = Ring::new(endpoints);
        let mut members = Vec::with_capacity(ring.endpoints().len());
        for endpoint in ring.endpoints() {
            if let Some(b) = old.members.iter().find(|b| &b.endpoint == endpoint) {
                members.push(b.clone());
                continue;
            }
            let mut cfg = self.protocol.clone();
            cfg.endpoint = endpoint.clone();
            match OtlpExporter::new(&cfg, self.signal, &format!("{} backend {endpoint}", self.id)) {
                Ok(client) => {
                    let (sent, failed) = self.metrics.backend(endpoint);
                    members.push(Arc::new(Backend {
                        endpoint: endpoint.clone(),
                        client,
                        down_until: Mutex::new(None),
                        sent,
                        failed,
                    }));
                }
                Err(e) => {
                    // Only a resolver-supplied address can get here (static
                    // ones were validated): leave it out and say so.
                    self.metrics.resolver_errors.inc();
                    warn!(exporter = %self.id, error = %e, "loadbalancing: cannot use backend");
                }
            }
        }
        // A client that failed to build leaves a gap in the ring's indices: rebuild it from the members.
        let ring = if members.len() == ring.endpoints().len() {
            ring
        } else {
            Ring::new(members.iter().map(|b| b.endpoint.clone()))
        };
        for gone in old.members.iter().filter(|b| !ring.endpoints().contains(&b.endpoint)) {
            self.metrics.forget_backend(&gone.endpoint);
        }
        info!(exporter = %self.id, signal = %self.signal, backends = ?ring.endpoints(), "loadbalancing: backend set");
        self.metrics.backends.set(members.len() as i64);
        *self.backends.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Backends { ring, members });
    }

    fn snapshot(&self) -> Arc<Backends> {
        self.backends.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct LoadBalancingExporter {
    shared: Arc<Shared>,
    resolver_task: Option<JoinHandle<()>>,
}

impl LoadBalancingExporter {
    /// Builds the exporter; with a DNS resolver, starts its lookups on the
    /// current tokio runtime (until then every export is a retryable error).
    pub fn new(
        cfg: &LoadBalancingConfig,
        signal: Signal,
        id: &str,
        metrics: LoadBalancerMetrics,
    ) -> Result<Self, String> {
        let key = cfg.routing_key_for(signal)?;
        let resolver = Resolver::from_config(&cfg.resolver)?;
        let settings = cfg.backend_settings();
        let shared = Arc::new(Shared {
            id: id.to_string(),
            signal,
            key,
            down_for: settings.retry_on_failure.initial_interval.get().max(Duration::from_millis(100)),
            protocol: settings,
            backends: RwLock::new(Arc::new(Backends::default())),
            metrics,
        });
        let resolver_task = match resolver {
            Resolver::Static(endpoints) => {
                // Checks each endpoint the same way a DNS answer would be.
                for e in &endpoints {
                    let mut c = shared.protocol.clone();
                    c.endpoint = e.clone();
                    OtlpExporter::new(&c, signal, id)?;
                }
                shared.set_endpoints(endpoints);
                shared.metrics.resolver_refreshes.inc();
                None
            }
            Resolver::Dns(dns) => {
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| "the DNS resolver needs a tokio runtime".to_string())?;
                let counters = ResolverCounters {
                    refreshes: shared.metrics.resolver_refreshes.clone(),
                    errors: shared.metrics.resolver_errors.clone(),
                };
                // A weak handle: the lookups stop mattering once the exporter is gone.
                let weak = Arc::downgrade(&shared);
                Some(handle.spawn(resolver::run_dns(dns, counters, move |endpoints| {
                    if let Some(shared) = weak.upgrade() {
                        shared.set_endpoints(endpoints);
                    }
                })))
            }
        };
        Ok(LoadBalancingExporter { shared, resolver_task })
    }

    /// The endpoints currently on the ring.
    pub fn endpoints(&self) -> Vec<String> {
        self.shared.snapshot().ring.endpoints().to_vec()
    }
}

impl Drop for LoadBalancingExporter {
    fn drop(&mut self) {
        if let Some(t) = &self.resolver_task {
            t.abort();
        }
    }
}

/// A part of a batch on its way to one backend.
struct Part {
    backend: usize,
    batch: Batch,
}

impl Exporter for LoadBalancingExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let shared = &self.shared;
        let backends = shared.snapshot();
        let n = backends.members.len();
        if n == 0 {
            return Err(ExportError::Retryable {
                message: format!("{}: no backends (the resolver has listed none yet)", shared.id),
                retry_after: None,
            });
        }
        let total = batch.item_count();
        // Backends that failed during this export: never tried again in it.
        let mut failed_here = vec![false; n];
        let mut rejected = 0u64;
        let mut messages: Vec<String> = Vec::new();
        let mut last_error = String::new();
        let mut undelivered = 0usize;
        let mut pending = split(batch, shared.key, &route_table(&backends, &failed_here), &backends.ring);
        loop {
            let mut parts = Vec::new();
            for (backend, part) in pending {
                match backend {
                    Some(backend) => parts.push(Part { backend, batch: part }),
                    None => undelivered += part.item_count(),
                }
            }
            if parts.is_empty() {
                break;
            }
            let mut sends = JoinSet::new();
            for part in parts {
                let b = backends.members[part.backend].clone();
                sends.spawn(async move {
                    let r = b.client.export(&part.batch).await;
                    (part, r)
                });
            }
            let mut retry: Vec<Batch> = Vec::new();
            while let Some(joined) = sends.join_next().await {
                let (part, result) = match joined {
                    Ok(r) => r,
                    // A send task cannot panic short of a bug; its items are
                    // unaccounted for, so the batch must be retried.
                    Err(e) => {
                        last_error = format!("send task failed: {e}");
                        undelivered = undelivered.max(1);
                        continue;
                    }
                };
                let b = &backends.members[part.backend];
                let items = part.batch.item_count() as u64;
                match result {
                    Ok(outcome) => {
                        let r = outcome.rejected.min(items);
                        b.sent.add(items - r);
                        b.failed.add(r);
                        rejected += r;
                        if let Some(m) = outcome.message {
                            messages.push(format!("{}: {m}", b.endpoint));
                        }
                        b.set_down_until(None);
                    }
                    Err(ExportError::Permanent { message }) => {
                        // The data itself is refused: another backend would refuse it too.
                        b.failed.add(items);
                        rejected += items;
                        messages.push(message);
                    }
                    Err(ExportError::Retryable { message, .. }) => {
                        b.failed.add(items);
                        b.set_down_until(Some(Instant::now() + shared.down_for));
                        failed_here[part.backend] = true;
                        warn!(exporter = %shared.id, backend = %b.endpoint, items, error = %message, "loadbalancing: backend failed; rerouting its part");
                        last_error = message;
                        retry.push(part.batch);
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            let table = route_table(&backends, &failed_here);
            pending = Vec::new();
            for part in &retry {
                let resplit = split(part, shared.key, &table, &backends.ring);
                shared.metrics.reroutes.add(resplit.iter().filter(|(b, _)| b.is_some()).count() as u64);
                pending.extend(resplit);
            }
        }
        if undelivered > 0 {
            return Err(ExportError::Retryable {
                message: format!(
                    "{}: {undelivered} of {total} items could not be delivered to any of {n} backends; last error: {last_error}",
                    shared.id
                ),
                retry_after: None,
            });
        }
        Ok(ExportOutcome { rejected, message: (!messages.is_empty()).then(|| messages.join("; ")) })
    }

    async fn shutdown(&self) {
        if let Some(t) = &self.resolver_task {
            t.abort();
        }
    }
}

/// Which backends may take traffic now: those not failed in this export and
/// not marked down; when every one left is marked down, those left anyway
/// (a backend marked down may have come back, and there is nowhere else).
fn route_table(backends: &Backends, failed_here: &[bool]) -> Vec<bool> {
    let now = Instant::now();
    let healthy: Vec<bool> =
        backends.members.iter().enumerate().map(|(i, b)| !failed_here[i] && !b.is_down(now)).collect();
    if healthy.iter().any(|h| *h) {
        healthy
    } else {
        failed_here.iter().map(|f| !f).collect()
    }
}

/// The backend of a key hash among the usable ones, going clockwise.
fn pick(ring: &Ring, usable: &[bool], hash: u64) -> Option<usize> {
    ring.owner_among(hash, |i| usable[i])
}

/// Splits `batch` by the backend of each item's key; `None` collects the
/// items no usable backend can take.
fn split(batch: &Batch, key: RoutingKey, usable: &[bool], ring: &Ring) -> Vec<(Option<usize>, Batch)> {
    let to = |hash: u64| pick(ring, usable, hash);
    match batch {
        Batch::Traces(r) => split_traces(r, |res, span| to(trace_key(key, res, span)))
            .into_iter()
            .map(|(b, r)| (b, Batch::Traces(r)))
            .collect(),
        Batch::Logs(r) => {
            split_logs(r, |res, log| to(log_key(key, res, log))).into_iter().map(|(b, r)| (b, Batch::Logs(r))).collect()
        }
        Batch::Metrics(r) => split_metrics(r, |res, m| to(metric_key(key, res, m)))
            .into_iter()
            .map(|(b, r)| (b, Batch::Metrics(r)))
            .collect(),
    }
}

fn service_hash(resource: &Option<Resource>) -> u64 {
    let name = resource
        .as_ref()
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("");
    xxh3_64(name.as_bytes())
}

fn trace_key(key: RoutingKey, resource: &Option<Resource>, span: &Span) -> u64 {
    match key {
        RoutingKey::Service => service_hash(resource),
        RoutingKey::TraceId | RoutingKey::Metric => xxh3_64(&span.trace_id),
    }
}

fn log_key(key: RoutingKey, resource: &Option<Resource>, log: &LogRecord) -> u64 {
    match key {
        RoutingKey::Service => service_hash(resource),
        // A record outside any trace may go anywhere, as in the Collector.
        RoutingKey::TraceId | RoutingKey::Metric if log.trace_id.iter().all(|b| *b == 0) => rand::random(),
        RoutingKey::TraceId | RoutingKey::Metric => xxh3_64(&log.trace_id),
    }
}

fn metric_key(key: RoutingKey, resource: &Option<Resource>, metric: &Metric) -> u64 {
    match key {
        RoutingKey::Metric => xxh3_64(metric.name.as_bytes()),
        RoutingKey::Service | RoutingKey::TraceId => service_hash(resource),
    }
}

/// Splits a borrowed request by a destination per item, copying each item
/// under a copy of its resource and scope; parts come out in order of
/// destination, and items keep their order within a part.
macro_rules! splitter {
    ($name:ident, $req:ty, $rfield:ident, $rtype:ident, $sfield:ident, $stype:ident, $items:ident, $item:ty) => {
        fn $name<K: Ord + Copy>(req: &$req, mut dest: impl FnMut(&Option<Resource>, &$item) -> K) -> Vec<(K, $req)> {
            let mut parts: BTreeMap<K, $req> = BTreeMap::new();
            for rs in &req.$rfield {
                // The resource entry each destination's request has open for `rs`.
                let mut resource_slot: BTreeMap<K, usize> = BTreeMap::new();
                for ss in &rs.$sfield {
                    let mut scope_slot: BTreeMap<K, usize> = BTreeMap::new();
                    for item in &ss.$items {
                        let to = dest(&rs.resource, item);
                        let part = parts.entry(to).or_default();
                        let r = *resource_slot.entry(to).or_insert_with(|| {
                            part.$rfield.push($rtype {
                                resource: rs.resource.clone(),
                                $sfield: Vec::new(),
                                schema_url: rs.schema_url.clone(),
                            });
                            part.$rfield.len() - 1
                        });
                        let scopes = &mut part.$rfield[r].$sfield;
                        let s = *scope_slot.entry(to).or_insert_with(|| {
                            scopes.push($stype {
                                scope: ss.scope.clone(),
                                $items: Vec::new(),
                                schema_url: ss.schema_url.clone(),
                            });
                            scopes.len() - 1
                        });
                        scopes[s].$items.push(item.clone());
                    }
                }
            }
            parts.into_iter().collect()
        }
    };
}

splitter!(split_traces, ExportTraceServiceRequest, resource_spans, ResourceSpans, scope_spans, ScopeSpans, spans, Span);
splitter!(
    split_metrics,
    ExportMetricsServiceRequest,
    resource_metrics,
    ResourceMetrics,
    scope_metrics,
    ScopeMetrics,
    metrics,
    Metric
);
splitter!(
    split_logs,
    ExportLogsServiceRequest,
    resource_logs,
    ResourceLogs,
    scope_logs,
    ScopeLogs,
    log_records,
    LogRecord
);

#[cfg(test)]
mod tests;
