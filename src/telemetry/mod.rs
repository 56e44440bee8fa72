//! The agent's telemetry about itself: metric names (all of them, here and
//! nowhere else), the `/metrics` and health endpoints, and logging set-up.
//!
//! Metric names follow the OpenTelemetry Collector's self-metrics as its
//! Prometheus endpoint exposes them (`otelcol_receiver_accepted_spans_total`,
//! ...), so dashboards and alerts written for the Collector keep working.

pub mod health;
pub mod health_config;
pub mod metrics;
pub mod process;
pub mod server;

use crate::data::Signal;
pub use metrics::{Counter, Gauge, Histogram, Registry};

fn by_signal(signal: Signal, traces: &'static str, metrics: &'static str, logs: &'static str) -> &'static str {
    match signal {
        Signal::Traces => traces,
        Signal::Metrics => metrics,
        Signal::Logs => logs,
    }
}

/// What one signal went through since start, from the agent's counters: the
/// shutdown summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalTotals {
    pub accepted: f64,
    pub refused: f64,
    pub dropped_by_processors: f64,
    pub sent: f64,
    pub send_failed: f64,
}

impl SignalTotals {
    pub fn of(reg: &Registry, signal: Signal) -> SignalTotals {
        let sum = |t, m, l| reg.sum(by_signal(signal, t, m, l));
        SignalTotals {
            accepted: sum(
                "otelcol_receiver_accepted_spans_total",
                "otelcol_receiver_accepted_metric_points_total",
                "otelcol_receiver_accepted_log_records_total",
            ),
            refused: sum(
                "otelcol_receiver_refused_spans_total",
                "otelcol_receiver_refused_metric_points_total",
                "otelcol_receiver_refused_log_records_total",
            ),
            dropped_by_processors: sum(
                "otelcol_processor_dropped_spans_total",
                "otelcol_processor_dropped_metric_points_total",
                "otelcol_processor_dropped_log_records_total",
            ),
            sent: sum(
                "otelcol_exporter_sent_spans_total",
                "otelcol_exporter_sent_metric_points_total",
                "otelcol_exporter_sent_log_records_total",
            ),
            send_failed: sum(
                "otelcol_exporter_send_failed_spans_total",
                "otelcol_exporter_send_failed_metric_points_total",
                "otelcol_exporter_send_failed_log_records_total",
            ),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == SignalTotals::default()
    }
}

/// Counters a receiver keeps per transport and signal.
#[derive(Clone, Debug)]
pub struct ReceiverMetrics {
    /// Items handed to every pipeline.
    pub accepted: Counter,
    /// Items refused with a retryable error (pipeline full, memory limit, shutdown).
    pub refused: Counter,
    /// Requests rejected as malformed (decode errors, bad content type).
    pub malformed_requests: Counter,
}

impl ReceiverMetrics {
    pub fn new(reg: &Registry, receiver: &str, transport: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("receiver", receiver), ("transport", transport)];
        ReceiverMetrics {
            accepted: reg.counter(
                by_signal(
                    signal,
                    "otelcol_receiver_accepted_spans_total",
                    "otelcol_receiver_accepted_metric_points_total",
                    "otelcol_receiver_accepted_log_records_total",
                ),
                "Items successfully pushed into the pipeline.",
                labels,
            ),
            refused: reg.counter(
                by_signal(
                    signal,
                    "otelcol_receiver_refused_spans_total",
                    "otelcol_receiver_refused_metric_points_total",
                    "otelcol_receiver_refused_log_records_total",
                ),
                "Items that could not be pushed into the pipeline; the client was told to retry.",
                labels,
            ),
            malformed_requests: reg.counter(
                "sluice_receiver_malformed_requests_total",
                "Requests rejected because they could not be decoded.",
                &[("receiver", receiver), ("transport", transport), ("data_type", signal.as_str())],
            ),
        }
    }
}

/// Counters and gauges an exporter keeps per signal.
#[derive(Clone, Debug)]
pub struct ExporterMetrics {
    pub sent: Counter,
    pub send_failed: Counter,
    pub enqueue_failed: Counter,
    /// Batches refused because each alone is larger than the queue's capacity.
    pub queue_too_large: Counter,
    pub retries: Counter,
    /// Items the backend reported as rejected in an OTLP partial success.
    pub partial_rejected: Counter,
    pub send_duration: Histogram,
}

impl ExporterMetrics {
    pub fn new(reg: &Registry, exporter: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("exporter", exporter)];
        let typed: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
        ExporterMetrics {
            sent: reg.counter(
                by_signal(
                    signal,
                    "otelcol_exporter_sent_spans_total",
                    "otelcol_exporter_sent_metric_points_total",
                    "otelcol_exporter_sent_log_records_total",
                ),
                "Items successfully sent to the destination.",
                labels,
            ),
            send_failed: reg.counter(
                by_signal(
                    signal,
                    "otelcol_exporter_send_failed_spans_total",
                    "otelcol_exporter_send_failed_metric_points_total",
                    "otelcol_exporter_send_failed_log_records_total",
                ),
                "Items that could not be sent: a permanent error, or retries exhausted.",
                labels,
            ),
            enqueue_failed: reg.counter(
                by_signal(
                    signal,
                    "otelcol_exporter_enqueue_failed_spans_total",
                    "otelcol_exporter_enqueue_failed_metric_points_total",
                    "otelcol_exporter_enqueue_failed_log_records_total",
                ),
                "Items not added to the sending queue: full, larger than its capacity, closed, or not written.",
                labels,
            ),
            queue_too_large: reg.counter(
                "sluice_exporter_queue_too_large_total",
                "Batches refused by the sending queue because each alone is larger than its capacity (queue_size by its sizer).",
                typed,
            ),
            retries: reg.counter(
                "sluice_exporter_retries_total",
                "Send attempts retried after a retryable failure.",
                typed,
            ),
            partial_rejected: reg.counter(
                "sluice_exporter_partial_success_rejected_total",
                "Items the destination rejected in an OTLP partial success response.",
                typed,
            ),
            send_duration: reg.histogram(
                "sluice_exporter_send_duration_seconds",
                "Time of one send attempt, from request to response.",
                typed,
                metrics::LATENCY_BUCKETS,
            ),
        }
    }
}

/// Why Loki refused a push, parsed from its answer (the `reason` label of
/// [`LokiExporterMetrics::rejected`]).
pub const LOKI_REJECT_REASONS: &[&str] = &["out_of_order", "too_old", "line_too_long", "rate_limited", "other"];

/// Series of the `loki` exporter.
#[derive(Clone, Debug)]
pub struct LokiExporterMetrics {
    /// One counter per [`LOKI_REJECT_REASONS`] entry, in that order.
    rejected: Vec<Counter>,
}

impl LokiExporterMetrics {
    pub fn new(reg: &Registry, exporter: &str) -> Self {
        let rejected = LOKI_REJECT_REASONS
            .iter()
            .map(|reason| {
                reg.counter(
                    "sluice_exporter_loki_rejected_total",
                    "Pushes Loki answered with a 4xx status, by reason parsed from its message; \
                     a retried 429 counts once per attempt.",
                    &[("exporter", exporter), ("reason", reason)],
                )
            })
            .collect();
        LokiExporterMetrics { rejected }
    }

    /// The counter of `reason`; an unknown reason counts as `other`.
    pub fn rejected(&self, reason: &str) -> &Counter {
        let i = LOKI_REJECT_REASONS.iter().position(|r| *r == reason).unwrap_or(LOKI_REJECT_REASONS.len() - 1);
        &self.rejected[i]
    }
}

/// Series of a sending queue's batcher (`sending_queue.batch`), per exporter and signal.
#[derive(Clone, Debug)]
pub struct QueueBatchMetrics {
    /// Batches sent because they reached min_size or were cut at max_size.
    pub size_trigger: Counter,
    /// Batches sent because their flush_timeout passed.
    pub timeout_trigger: Counter,
    /// Batches sent because the consumers stopped or the queue closed.
    pub drain_trigger: Counter,
    /// Batches cut at max_size out of a larger one.
    pub cuts: Counter,
    /// Single items above a bytes max_size, sent alone.
    pub oversized: Counter,
    /// Units (of the batch sizer) per batch sent.
    pub send_size: Histogram,
}

impl QueueBatchMetrics {
    pub fn new(reg: &Registry, exporter: &str, signal: Signal) -> Self {
        let typed: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
        let trigger = |t: &str| {
            reg.counter(
                "sluice_exporter_queue_batch_sends_total",
                "Batches the sending queue's batcher sent, by what triggered the send (size, timeout, drain).",
                &[("exporter", exporter), ("data_type", signal.as_str()), ("trigger", t)],
            )
        };
        QueueBatchMetrics {
            size_trigger: trigger("size"),
            timeout_trigger: trigger("timeout"),
            drain_trigger: trigger("drain"),
            cuts: reg.counter(
                "sluice_exporter_queue_batch_cuts_total",
                "Batches cut at sending_queue.batch.max_size out of a larger merged batch.",
                typed,
            ),
            oversized: reg.counter(
                "sluice_exporter_queue_batch_oversized_items_total",
                "Single items larger than a bytes sending_queue.batch.max_size, sent alone.",
                typed,
            ),
            send_size: reg.histogram(
                "otelcol_exporter_queue_batch_send_size",
                "Number of units (of the batch sizer) in each batch sent.",
                typed,
                &[
                    10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0,
                    7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0, 100000.0,
                ],
            ),
        }
    }
}

/// Registers the queue size and capacity gauges of an exporter's sending queue.
pub fn register_queue_gauges(
    reg: &Registry,
    exporter: &str,
    signal: Signal,
    capacity: u64,
    sizer: &'static str,
    size: impl Fn() -> f64 + Send + Sync + 'static,
) {
    let labels: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
    // The Collector's queue gauges carry no unit; this one names it, once per queue.
    for other in QUEUE_SIZERS.iter().filter(|s| **s != sizer) {
        reg.remove(
            "sluice_exporter_queue_sizer",
            &[("exporter", exporter), ("data_type", signal.as_str()), ("sizer", other)],
        );
    }
    reg.gauge_fn(
        "sluice_exporter_queue_sizer",
        "1 for the unit otelcol_exporter_queue_size and _capacity count in (label sizer: requests, items or bytes).",
        &[("exporter", exporter), ("data_type", signal.as_str()), ("sizer", sizer)],
        || 1.0,
    );
    reg.gauge_fn(
        "otelcol_exporter_queue_size",
        "Current size of the sending queue, in the units of its sizer (requests, items or bytes).",
        labels,
        size,
    );
    reg.gauge_fn(
        "otelcol_exporter_queue_capacity",
        "Fixed capacity of the sending queue, in the units of its sizer (requests, items or bytes).",
        labels,
        move || capacity as f64,
    );
}

/// Forgets the queue gauges of an exporter removed by a config reload.
pub fn unregister_queue_gauges(reg: &Registry, exporter: &str, signal: Signal) {
    let labels: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
    reg.remove("otelcol_exporter_queue_size", labels);
    reg.remove("otelcol_exporter_queue_capacity", labels);
    for sizer in QUEUE_SIZERS {
        reg.remove(
            "sluice_exporter_queue_sizer",
            &[("exporter", exporter), ("data_type", signal.as_str()), ("sizer", sizer)],
        );
    }
}

/// The values of `sluice_exporter_queue_sizer`'s `sizer` label.
const QUEUE_SIZERS: [&str; 3] = ["requests", "items", "bytes"];

/// Series of a persistent (on-disk) sending queue, per exporter and signal.
#[derive(Clone, Debug, Default)]
pub struct PersistentQueueMetrics {
    /// Bytes of the queue's segment files.
    pub bytes_on_disk: Gauge,
    /// Records found undelivered in the segment files at start and queued again.
    pub replayed: Counter,
    /// Replayed records that a consumer had taken but not finished when the
    /// agent stopped: sent again, so each may arrive twice.
    pub redelivered: Counter,
    /// Records lost to corruption: skipped for a bad CRC or length (the replay
    /// goes on at the next record that checks), or cut short by a torn write at
    /// a segment's end.
    pub corrupt_records: Counter,
    /// Bytes of segment files skipped as corrupt.
    pub corrupt_bytes: Counter,
    /// fsync calls on segment and acknowledgement files.
    pub fsyncs: Counter,
}

impl PersistentQueueMetrics {
    pub fn new(reg: &Registry, exporter: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
        PersistentQueueMetrics {
            bytes_on_disk: reg.gauge(
                "sluice_queue_disk_bytes",
                "Bytes of the persistent sending queue's segment files.",
                labels,
            ),
            replayed: reg.counter(
                "sluice_queue_replayed_records_total",
                "Batches found undelivered on disk at start and queued again.",
                labels,
            ),
            redelivered: reg.counter(
                "sluice_queue_redelivered_records_total",
                "Batches being sent when the agent stopped, sent again after the restart: each may arrive twice.",
                labels,
            ),
            corrupt_records: reg.counter(
                "sluice_queue_corrupt_records_total",
                "Records of the persistent queue lost to corruption (bad checksum or length, skipped; or a torn tail).",
                labels,
            ),
            corrupt_bytes: reg.counter(
                "sluice_queue_corrupt_bytes_total",
                "Bytes of segment files skipped as corrupt.",
                labels,
            ),
            fsyncs: reg.counter("sluice_queue_fsyncs_total", "fsync calls of the persistent sending queue.", labels),
        }
    }
}

/// Requests whose durable acknowledgement failed (not written to a
/// persistent queue, or with `wait_for_result` not exported, in time); the
/// client was told to retry.
pub fn durable_ack_failures(reg: &Registry, receiver: &str, transport: &str) -> Counter {
    reg.counter(
        "sluice_receiver_durable_ack_failures_total",
        "Requests answered with a retryable error because their data could not be written to a persistent queue, or (wait_for_result) was not exported, in time.",
        &[("receiver", receiver), ("transport", transport)],
    )
}

/// Why a receiver refused a request's credentials: the `reason` label of
/// `sluice_receiver_auth_failures_total`.
pub const AUTH_FAILURE_REASONS: &[&str] =
    &["missing_credentials", "malformed_credentials", "throttled", "invalid_credentials"];

/// Why a receiver closed a connection on its own: the `reason` label of
/// `sluice_receiver_connections_timed_out_total`.
pub const CONNECTION_TIMEOUT_REASONS: &[&str] = &["read_header_timeout", "idle_timeout"];

/// Why a receiver closed a connection to protect itself: the `reason` label
/// of `sluice_receiver_connections_closed_total`.
pub const CONNECTION_CLOSE_REASONS: &[&str] =
    &["handshake_timeout", "connection_limit", "too_many_pings", "max_connection_age"];

/// Why a receiver refused a whole request before (or instead of) decoding
/// it: the `reason` label of `sluice_receiver_refused_requests_total`.
pub const REQUEST_REFUSAL_REASONS: &[&str] = &[
    "bytes_in_flight",
    "body_timeout",
    "body_too_large",
    "ambiguous_framing",
    "decoded_too_large",
    "memory_headroom",
    "memory_limit",
    "pipeline_full",
    "shutting_down",
    "not_persisted",
];

/// Requests one receiver listener refused, by [`REQUEST_REFUSAL_REASONS`].
#[derive(Clone, Debug)]
pub struct RequestRefusals(Vec<Counter>);

impl RequestRefusals {
    pub fn new(reg: &Registry, receiver: &str, transport: &str) -> Self {
        RequestRefusals(
            REQUEST_REFUSAL_REASONS
                .iter()
                .map(|reason| {
                    reg.counter(
                        "sluice_receiver_refused_requests_total",
                        "Requests a receiver refused to protect itself (too large, too slow, over a memory or \
                         in-flight bound, or while its pipelines refused), by reason; their items are counted \
                         in otelcol_receiver_refused_*.",
                        &[("receiver", receiver), ("transport", transport), ("reason", reason)],
                    )
                })
                .collect(),
        )
    }

    /// The counter of `reason` (one of [`REQUEST_REFUSAL_REASONS`]; an unknown one counts as the last).
    pub fn reason(&self, reason: &str) -> &Counter {
        let i = REQUEST_REFUSAL_REASONS.iter().position(|r| *r == reason).unwrap_or(REQUEST_REFUSAL_REASONS.len() - 1);
        &self.0[i]
    }
}

/// Counters of one receiver listener's connection layer: TLS handshakes,
/// authentication and the timeouts that close connections.
#[derive(Clone, Debug)]
pub struct ListenerMetrics {
    /// TLS handshakes that failed or timed out; the listener keeps serving.
    pub tls_handshake_failures: Counter,
    /// One counter per [`AUTH_FAILURE_REASONS`] entry, in that order.
    auth_failures: Vec<Counter>,
    /// One counter per [`CONNECTION_TIMEOUT_REASONS`] entry, in that order.
    timed_out: Vec<Counter>,
    /// One counter per [`CONNECTION_CLOSE_REASONS`] entry, in that order.
    closed: Vec<Counter>,
    /// Failed accepts (out of file descriptors, mostly); the listener backs off.
    pub accept_errors: Counter,
    /// Connections open now.
    pub open_connections: Gauge,
}

impl ListenerMetrics {
    pub fn new(reg: &Registry, receiver: &str, transport: &str) -> Self {
        let labels: &[(&str, &str)] = &[("receiver", receiver), ("transport", transport)];
        let by_reason = |name, help, reasons: &[&str]| {
            reasons
                .iter()
                .map(|reason| reg.counter(name, help, &[labels[0], labels[1], ("reason", reason)]))
                .collect::<Vec<_>>()
        };
        ListenerMetrics {
            tls_handshake_failures: reg.counter(
                "sluice_receiver_tls_handshake_failures_total",
                "TLS handshakes with clients that failed or timed out; the connection was closed.",
                labels,
            ),
            auth_failures: by_reason(
                "sluice_receiver_auth_failures_total",
                "Requests refused (gRPC UNAUTHENTICATED, HTTP 401) before their body was read, by reason.",
                AUTH_FAILURE_REASONS,
            ),
            timed_out: by_reason(
                "sluice_receiver_connections_timed_out_total",
                "Connections the receiver closed because a client was too slow to send headers or stayed idle.",
                CONNECTION_TIMEOUT_REASONS,
            ),
            closed: by_reason(
                "sluice_receiver_connections_closed_total",
                "Connections the receiver closed to protect itself: no request within the handshake timeout, \
                 the connection limit reached (the longest idle closed), or max_connection_age.",
                CONNECTION_CLOSE_REASONS,
            ),
            accept_errors: reg.counter(
                "sluice_receiver_accept_errors_total",
                "Connections a listener failed to accept (out of file descriptors, mostly); it backs off and \
                 closes its longest idle connection.",
                labels,
            ),
            open_connections: reg.gauge(
                "sluice_receiver_open_connections",
                "Connections a receiver listener holds open.",
                labels,
            ),
        }
    }

    /// The counter of `reason` (one of [`CONNECTION_CLOSE_REASONS`]; an unknown one counts as the last).
    pub fn closed(&self, reason: &str) -> &Counter {
        let i =
            CONNECTION_CLOSE_REASONS.iter().position(|r| *r == reason).unwrap_or(CONNECTION_CLOSE_REASONS.len() - 1);
        &self.closed[i]
    }

    /// The counter of `reason` (one of [`AUTH_FAILURE_REASONS`]; an unknown one counts as the last).
    pub fn auth_failures(&self, reason: &str) -> &Counter {
        let i = AUTH_FAILURE_REASONS.iter().position(|r| *r == reason).unwrap_or(AUTH_FAILURE_REASONS.len() - 1);
        &self.auth_failures[i]
    }

    /// The counter of `reason` (one of [`CONNECTION_TIMEOUT_REASONS`]; an unknown one counts as the last).
    pub fn timed_out(&self, reason: &str) -> &Counter {
        let i = CONNECTION_TIMEOUT_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(CONNECTION_TIMEOUT_REASONS.len() - 1);
        &self.timed_out[i]
    }
}

/// Batches a pipeline dropped because checked bytes did not decode (a bug if
/// it ever counts: every batch is checked before it enters a pipeline).
pub fn pipeline_decode_failures(reg: &Registry, pipeline: &str) -> Counter {
    reg.counter(
        "sluice_pipeline_decode_failures_total",
        "Batches dropped because their protobuf, checked at the receiver, did not decode in the pipeline.",
        &[("pipeline", pipeline)],
    )
}

/// Counters a processor keeps per signal.
#[derive(Clone, Debug)]
pub struct ProcessorMetrics {
    /// Items the processor decided not to pass on (sampling, filtering, limits).
    pub dropped: Counter,
    /// Items refused before entering the pipeline (memory limiter).
    pub refused: Counter,
}

/// Items into and out of one processor of one pipeline, as the Collector's
/// `processorhelper` counts them (`otel_signal` says which signal).
#[derive(Clone)]
pub struct ProcessorItemMetrics {
    pub incoming: Counter,
    pub outgoing: Counter,
}

impl ProcessorItemMetrics {
    pub fn new(reg: &Registry, processor: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("processor", processor), ("otel_signal", signal.as_str())];
        ProcessorItemMetrics {
            incoming: reg.counter("otelcol_processor_incoming_items_total", "Items the processor was given.", labels),
            outgoing: reg.counter("otelcol_processor_outgoing_items_total", "Items the processor passed on.", labels),
        }
    }
}

/// Items into and out of one connector instance (one signal pair), named
/// as the processors' item counters are (`otel_signal` says which signal:
/// the exporting pipelines' for `incoming`, the receiving pipelines' for
/// `outgoing`).
#[derive(Clone)]
pub struct ConnectorMetrics {
    /// Items the connector took from the pipelines it is an exporter of.
    pub incoming: Counter,
    /// Items it emitted to the pipelines it is a receiver of (counted once
    /// however many pipelines take them).
    pub outgoing: Counter,
    /// Items taken that could not be used (a batch that did not decode, a
    /// full queue with nowhere to wait: at shutdown).
    pub incoming_dropped: Counter,
    /// Items emitted that a receiving pipeline refused for good (it was
    /// shutting down); a full pipeline is waited for, not dropped.
    pub outgoing_dropped: Counter,
}

impl ConnectorMetrics {
    pub fn new(reg: &Registry, connector: &str, from: Signal, to: Signal) -> Self {
        let ins: &[(&str, &str)] = &[("connector", connector), ("otel_signal", from.as_str())];
        let outs: &[(&str, &str)] = &[("connector", connector), ("otel_signal", to.as_str())];
        ConnectorMetrics {
            incoming: reg.counter("otelcol_connector_incoming_items_total", "Items the connector was given.", ins),
            outgoing: reg.counter("otelcol_connector_outgoing_items_total", "Items the connector emitted.", outs),
            incoming_dropped: reg.counter(
                "otelcol_connector_dropped_items_total",
                "Items the connector took or emitted that were lost (shutdown, undecodable).",
                ins,
            ),
            outgoing_dropped: reg.counter(
                "otelcol_connector_dropped_items_total",
                "Items the connector took or emitted that were lost (shutdown, undecodable).",
                outs,
            ),
        }
    }
}

/// Counters of one `routing` connector instance: where its items went.
#[derive(Clone)]
pub struct RoutingMetrics {
    /// Items sent by each route of the table, in table order (`route` is
    /// the route's index in `table`).
    pub routed: Vec<Counter>,
    /// Items that matched no route, sent to `default_pipelines`.
    pub defaulted: Counter,
    /// Items that matched no route while no `default_pipelines` are set:
    /// dropped, as the Collector does.
    pub unrouted: Counter,
    /// Conditions that failed on an item (by route); with `error_mode:
    /// propagate` the whole batch is dropped, else the item is taken as not
    /// matching that route.
    pub errors: Vec<Counter>,
}

impl RoutingMetrics {
    pub fn new(reg: &Registry, connector: &str, signal: Signal, routes: usize) -> Self {
        let labels: &[(&str, &str)] = &[("connector", connector), ("otel_signal", signal.as_str())];
        const ROUTED: &str = "sluice_connector_routing_routed_items_total";
        const ROUTED_HELP: &str = "Items a routing connector sent, by route (table index, or default).";
        let per_route = |name: &'static str, help: &'static str| {
            (0..routes)
                .map(|i| {
                    let route = i.to_string();
                    let mut l: Vec<(&str, &str)> = labels.to_vec();
                    l.push(("route", &route));
                    reg.counter(name, help, &l)
                })
                .collect::<Vec<_>>()
        };
        let mut default_labels = labels.to_vec();
        default_labels.push(("route", "default"));
        RoutingMetrics {
            routed: per_route(ROUTED, ROUTED_HELP),
            defaulted: reg.counter(ROUTED, ROUTED_HELP, &default_labels),
            unrouted: reg.counter(
                "sluice_connector_routing_unrouted_items_total",
                "Items that matched no route with no default_pipelines set: dropped.",
                labels,
            ),
            errors: per_route(
                "sluice_connector_routing_errors_total",
                "Route conditions that failed on an item, by route (table index).",
            ),
        }
    }
}

/// Counters of a `spanmetrics` connector's bounds.
#[derive(Clone)]
pub struct SpanMetricsMetrics {
    /// Spans counted in the overflow series: their resource had reached
    /// `aggregation_cardinality_limit` series.
    pub overflow_spans: Counter,
    /// Resources dropped (with their series) to make room for a new one.
    pub evicted_resources: Counter,
    /// Exemplars not attached: their data point already held
    /// `exemplars.max_per_data_point` since the last flush.
    pub dropped_exemplars: Counter,
}

impl SpanMetricsMetrics {
    pub fn new(reg: &Registry, connector: &str) -> Self {
        let labels: &[(&str, &str)] = &[("connector", connector)];
        SpanMetricsMetrics {
            overflow_spans: reg.counter(
                "sluice_connector_spanmetrics_overflow_spans_total",
                "Spans counted in the otel.metric.overflow series (series limit reached).",
                labels,
            ),
            evicted_resources: reg.counter(
                "sluice_connector_spanmetrics_evicted_resources_total",
                "Resources whose series were dropped to make room (resource_metrics_cache_size reached).",
                labels,
            ),
            dropped_exemplars: reg.counter(
                "sluice_connector_spanmetrics_dropped_exemplars_total",
                "Exemplars not attached: the data point held exemplars.max_per_data_point already.",
                labels,
            ),
        }
    }
}

/// Counters of an `slo` connector instance (one per signal pair it feeds,
/// `to` telling them apart: each counts the spans it saw).
#[derive(Clone)]
pub struct SloMetrics {
    /// Spans left out of every SLO because they end before they start.
    pub invalid_spans: Counter,
    /// OTTL `condition` evaluations that failed (the span is not counted).
    pub condition_errors: Counter,
    /// Saves of the counters to the storage extension that failed.
    pub storage_errors: Counter,
}

impl SloMetrics {
    pub fn new(reg: &Registry, connector: &str, to: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("connector", connector), ("to", to.as_str())];
        SloMetrics {
            invalid_spans: reg.counter(
                "sluice_connector_slo_invalid_spans_total",
                "Spans not counted in any SLO because their end time is before their start time.",
                labels,
            ),
            condition_errors: reg.counter(
                "sluice_connector_slo_condition_errors_total",
                "Spans not counted because an SLO's OTTL condition failed on them.",
                labels,
            ),
            storage_errors: reg.counter(
                "sluice_connector_slo_storage_errors_total",
                "Saves of the SLO counters to the storage extension that failed.",
                labels,
            ),
        }
    }
}

impl ProcessorMetrics {
    pub fn new(reg: &Registry, processor: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("processor", processor)];
        ProcessorMetrics {
            dropped: reg.counter(
                by_signal(
                    signal,
                    "otelcol_processor_dropped_spans_total",
                    "otelcol_processor_dropped_metric_points_total",
                    "otelcol_processor_dropped_log_records_total",
                ),
                "Items dropped by the processor.",
                labels,
            ),
            refused: reg.counter(
                by_signal(
                    signal,
                    "otelcol_processor_refused_spans_total",
                    "otelcol_processor_refused_metric_points_total",
                    "otelcol_processor_refused_log_records_total",
                ),
                "Items refused by the processor; the client was told to retry.",
                labels,
            ),
        }
    }
}

/// Counters of the `probabilistic_sampler` processor.
#[derive(Clone, Debug)]
pub struct ProbabilisticSamplerMetrics {
    /// Dropped items (`otelcol_processor_dropped_*`), whatever the reason.
    pub processor: ProcessorMetrics,
    /// The part of the dropped items whose sampling input was unusable
    /// (malformed tracestate or attributes, missing randomness, inconsistent
    /// threshold) under `fail_closed`.
    pub unusable_input: Counter,
}

impl ProbabilisticSamplerMetrics {
    pub fn new(reg: &Registry, processor: &str, signal: Signal) -> Self {
        ProbabilisticSamplerMetrics {
            processor: ProcessorMetrics::new(reg, processor, signal),
            unusable_input: reg.counter(
                "sluice_processor_probabilistic_sampler_unusable_input_dropped_total",
                "Items dropped because their sampling input was unusable (fail_closed).",
                &[("processor", processor), ("data_type", signal.as_str())],
            ),
        }
    }
}

/// Series of the `cardinality_limiter` processor. Every worker's instance
/// registers the same series, so counters add up and gauges are kept by deltas.
#[derive(Clone, Debug)]
pub struct CardinalityLimiterMetrics {
    /// Dropped points (`otelcol_processor_dropped_metric_points`), whatever the reason.
    pub processor: ProcessorMetrics,
    /// Points folded into the `otel.metric.overflow=true` series.
    pub overflowed: Counter,
    /// Points dropped by `action: drop`.
    pub dropped_limit: Counter,
    /// Points dropped because `max_series` series were already tracked.
    pub dropped_max_series: Counter,
    /// Points dropped because they could not merge into the overflow series
    /// (explicit histogram bounds unlike the first overflowed point's).
    pub dropped_incompatible: Counter,
    /// Points whose `drop_attributes` keys were removed.
    pub attributes_dropped: Counter,
    /// Times a new series was refused because `max_series` was reached.
    pub max_series_reached: Counter,
    pub series: Gauge,
    pub memory_bytes: Gauge,
}

/// The gauge name of the per-attribute distinct-value estimate.
pub const CARDINALITY_LIMITER_ATTRIBUTE_CARDINALITY: &str = "sluice_cardinality_limiter_attribute_cardinality";

impl CardinalityLimiterMetrics {
    pub fn new(reg: &Registry, processor: &str) -> Self {
        let l: &[(&str, &str)] = &[("processor", processor)];
        let dropped = "sluice_cardinality_limiter_dropped_points_total";
        let dropped_help = "Data points dropped by the cardinality limiter, by reason.";
        let d = |reason: &str| reg.counter(dropped, dropped_help, &[("processor", processor), ("reason", reason)]);
        CardinalityLimiterMetrics {
            processor: ProcessorMetrics::new(reg, processor, Signal::Metrics),
            overflowed: reg.counter(
                "sluice_cardinality_limiter_overflowed_points_total",
                "Data points folded into their metric's otel.metric.overflow=true series.",
                l,
            ),
            dropped_limit: d("limit"),
            dropped_max_series: d("max_series"),
            dropped_incompatible: d("incompatible"),
            attributes_dropped: reg.counter(
                "sluice_cardinality_limiter_attributes_dropped_points_total",
                "Data points whose drop_attributes keys were removed because their metric was at its limit.",
                l,
            ),
            max_series_reached: reg.counter(
                "sluice_cardinality_limiter_max_series_reached_total",
                "New series refused because max_series series were already tracked.",
                l,
            ),
            series: reg.gauge("sluice_cardinality_limiter_series", "Series tracked, across workers.", l),
            memory_bytes: reg.gauge(
                "sluice_cardinality_limiter_memory_bytes",
                "Estimated bytes of the limiter's series tables, across workers.",
                l,
            ),
        }
    }

    /// The estimate of distinct values of one attribute of one metric.
    pub fn attribute_cardinality(reg: &Registry, processor: &str, metric: &str, attribute: &str) -> Gauge {
        reg.gauge(
            CARDINALITY_LIMITER_ATTRIBUTE_CARDINALITY,
            "Estimated distinct values of an attribute of a metric that overflowed (HyperLogLog), top keys only.",
            &[("processor", processor), ("metric", metric), ("attribute", attribute)],
        )
    }
}

/// Counters of the `batch` processor, named as the Collector's.
#[derive(Clone, Debug)]
pub struct BatchMetrics {
    pub size_trigger_send: Counter,
    pub timeout_trigger_send: Counter,
    pub batch_send_size: Histogram,
}

impl BatchMetrics {
    pub fn new(reg: &Registry, processor: &str) -> Self {
        let labels: &[(&str, &str)] = &[("processor", processor)];
        BatchMetrics {
            size_trigger_send: reg.counter(
                "otelcol_processor_batch_batch_size_trigger_send_total",
                "Batches sent because they reached send_batch_size.",
                labels,
            ),
            timeout_trigger_send: reg.counter(
                "otelcol_processor_batch_timeout_trigger_send_total",
                "Batches sent because the timeout expired.",
                labels,
            ),
            batch_send_size: reg.histogram(
                "otelcol_processor_batch_batch_send_size",
                "Items per batch sent.",
                labels,
                &[
                    10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0,
                    7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0, 100000.0,
                ],
            ),
        }
    }
}

/// Series of the `head_sampler` processor. Every worker's instance registers
/// the same series, so counters add up and the keys gauge is kept by deltas.
#[derive(Clone, Debug)]
pub struct HeadSamplerMetrics {
    pub sampled_always_keep: Counter,
    pub sampled_probabilistic: Counter,
    pub dropped_probabilistic: Counter,
    /// Traces whose trace ID is not 16 bytes: kept, with no `th` (no randomness to decide with).
    pub sampled_invalid_trace_id: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
    pub keys: Gauge,
    pub key_overflow: Counter,
}

impl HeadSamplerMetrics {
    pub fn new(reg: &Registry, processor: &str) -> Self {
        const DECIDED: &str = "sluice_head_sampler_traces_decided_total";
        const DECIDED_HELP: &str = "Traces decided on their first span, by outcome and reason.";
        let decided = |outcome: &'static str, reason: &'static str| {
            reg.counter(DECIDED, DECIDED_HELP, &[("processor", processor), ("outcome", outcome), ("reason", reason)])
        };
        let labels: &[(&str, &str)] = &[("processor", processor)];
        HeadSamplerMetrics {
            sampled_always_keep: decided("sampled", "always_keep"),
            sampled_probabilistic: decided("sampled", "probabilistic"),
            dropped_probabilistic: decided("dropped", "probabilistic"),
            sampled_invalid_trace_id: decided("sampled", "invalid_trace_id"),
            cache_hits: reg.counter(
                "sluice_head_sampler_decision_cache_hits_total",
                "Spans whose trace decision was found in the decision cache.",
                labels,
            ),
            cache_misses: reg.counter(
                "sluice_head_sampler_decision_cache_misses_total",
                "Spans whose trace had no cached decision, so the span decided for its trace.",
                labels,
            ),
            cache_evictions: reg.counter(
                "sluice_head_sampler_decision_cache_evictions_total",
                "Decisions evicted from the full decision cache; a later span of such a trace is decided again.",
                labels,
            ),
            keys: reg.gauge("sluice_head_sampler_keys", "Sampling keys tracked, across workers.", labels),
            key_overflow: reg.counter(
                "sluice_head_sampler_key_overflow_total",
                "Traces counted under the catch-all key because max_keys keys were already tracked.",
                labels,
            ),
        }
    }
}

/// Series of the `filter` processor.
#[derive(Clone, Debug)]
pub struct FilterMetrics {
    /// Spans, data points or log records filtered out (`otelcol_processor_dropped_*`).
    pub processor: ProcessorMetrics,
    /// Span events removed from kept spans by `spans.span_events`.
    pub span_events_dropped: Counter,
}

impl FilterMetrics {
    pub fn new(reg: &Registry, processor: &str, signal: Signal) -> Self {
        FilterMetrics {
            processor: ProcessorMetrics::new(reg, processor, signal),
            span_events_dropped: reg.counter(
                "sluice_filter_span_events_dropped_total",
                "Span events removed from kept spans by the filter processor's span_events blocks.",
                &[("processor", processor)],
            ),
        }
    }
}

/// Series of a component that runs OTTL (`transform`, `filter`'s OTTL
/// conditions, `tail_sampling`'s `ottl_condition`).
#[derive(Clone, Debug)]
pub struct OttlMetrics {
    /// Statements or conditions that failed on an item (any `error_mode`).
    pub errors: Counter,
    /// Batches dropped because a statement failed under `error_mode: propagate`.
    pub batches_dropped: Counter,
}

impl OttlMetrics {
    pub fn new(reg: &Registry, component: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("processor", component), ("otel_signal", signal.as_str())];
        OttlMetrics {
            errors: reg.counter(
                "sluice_ottl_errors_total",
                "OTTL statements or conditions that failed on an item; error_mode decides what follows.",
                labels,
            ),
            batches_dropped: reg.counter(
                "sluice_ottl_batches_dropped_total",
                "Batches dropped because an OTTL statement or condition failed under error_mode: propagate.",
                labels,
            ),
        }
    }
}

/// Series of the `log_rate_limiter` processor. Every worker's instance
/// registers the same series, so counters add up and the keys gauge is kept
/// by deltas.
#[derive(Clone, Debug)]
pub struct LogRateLimiterMetrics {
    /// Suppressed records (`otelcol_processor_dropped_log_records_total`).
    pub processor: ProcessorMetrics,
    pub keys: Gauge,
    pub summaries: Counter,
    pub keys_evicted: Counter,
    pub key_overflow: Counter,
}

impl LogRateLimiterMetrics {
    pub fn new(reg: &Registry, processor: &str) -> Self {
        let labels: &[(&str, &str)] = &[("processor", processor)];
        LogRateLimiterMetrics {
            processor: ProcessorMetrics::new(reg, processor, Signal::Logs),
            keys: reg.gauge("sluice_log_rate_limiter_keys", "Rate-limit keys tracked, across workers.", labels),
            summaries: reg.counter(
                "sluice_log_rate_limiter_summaries_emitted_total",
                "Summary records emitted, one per limited key per summary interval.",
                labels,
            ),
            keys_evicted: reg.counter(
                "sluice_log_rate_limiter_keys_evicted_total",
                "Idle keys evicted to make room under max_keys.",
                labels,
            ),
            key_overflow: reg.counter(
                "sluice_log_rate_limiter_key_overflow_total",
                "Records counted under the catch-all key because max_keys keys were tracked and none was idle.",
                labels,
            ),
        }
    }
}

/// The agent's identity on every self-metric, as the Collector's own
/// telemetry labels it: `service_name`, `service_instance_id` (a random
/// UUID per process start) and `service_version`, so Collector dashboards
/// that filter on them find sluice.
pub fn service_labels() -> Vec<(&'static str, String)> {
    use rand::Rng;
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    // A version-4 UUID: the version and variant bits set as RFC 9562 says.
    let v = format!("4{}", &hex[13..16]);
    let variant = format!("{:x}{}", 0x8 | (u8::from_str_radix(&hex[16..17], 16).unwrap_or(0) & 0x3), &hex[17..20]);
    let uuid = format!("{}-{}-{v}-{variant}-{}", &hex[0..8], &hex[8..12], &hex[20..32]);
    vec![
        ("service_name", "sluice".to_string()),
        ("service_instance_id", uuid),
        ("service_version", env!("CARGO_PKG_VERSION").to_string()),
    ]
}

/// Series of the `tail_sampling` processor. Gauges are shared by the
/// processor's worker instances; each adds its own change.
#[derive(Clone, Debug)]
pub struct TailSamplingMetrics {
    pub traces_in_memory: Gauge,
    pub bytes_in_memory: Gauge,
    pub early_memory: Counter,
    pub early_num_traces: Counter,
    /// Decided early: memory full and the spill storage at `max_disk_mib`.
    pub early_disk: Counter,
    /// Decided early: memory full and writing to the spill storage failed.
    pub early_spill_failed: Counter,
    /// Traces whose buffered spans were moved to the spill storage (once per move).
    pub spilled_traces: Counter,
    pub spilled_spans: Counter,
    /// Bytes in the spill storage's files.
    pub bytes_on_disk: Gauge,
    /// Spans of kept traces that could not be read back from the spill storage.
    pub spill_read_lost_spans: Counter,
    /// What a killed process left in the spill storage, deleted at start.
    pub spill_stale_bytes: Counter,
    /// Decisions read back from the storage at start, by cache.
    pub restored_sampled: Counter,
    pub restored_not_sampled: Counter,
    /// Damaged parts of saved decision files, skipped at start.
    pub restore_corrupt: Counter,
    /// Saved-decision files that could not be read at start, spill stores not opened.
    pub storage_errors: Counter,
    /// Saves of the decision caches, by how they wrote (or that they failed).
    pub decision_saves_appended: Counter,
    pub decision_saves_snapshot: Counter,
    pub decision_saves_failed: Counter,
    pub late_kept: Counter,
    pub late_dropped: Counter,
    pub cache_hit_sampled: Counter,
    pub cache_hit_not_sampled: Counter,
    pub cache_miss: Counter,
    pub cache_evicted_sampled: Counter,
    pub cache_evicted_not_sampled: Counter,
    pub global_sampled: Counter,
    pub global_not_sampled: Counter,
}

/// Per-policy series of the `tail_sampling` processor.
#[derive(Clone, Debug)]
pub struct TailSamplingPolicyMetrics {
    /// The policy's own verdicts (the Collector's `count_traces_sampled`).
    pub evaluated_sampled: Counter,
    pub evaluated_not_sampled: Counter,
    /// Final decisions attributed to the policy.
    pub decided_kept: Counter,
    pub decided_dropped: Counter,
}

impl TailSamplingMetrics {
    pub fn new(reg: &Registry, processor: &str) -> Self {
        let l: &[(&str, &str)] = &[("processor", processor)];
        let early = "sluice_tail_sampling_early_decisions_total";
        let early_help = "Traces decided before their wait ended because a bound was reached.";
        let late = "sluice_tail_sampling_late_spans_total";
        let late_help = "Spans that arrived after their trace was decided, by the outcome they followed.";
        let cache = "sluice_tail_sampling_decision_cache_total";
        let cache_help = "Decision cache lookups and evictions.";
        let c = |cache_name: &str, result: &str| {
            reg.counter(cache, cache_help, &[("processor", processor), ("cache", cache_name), ("result", result)])
        };
        let global = "otelcol_processor_tail_sampling_global_count_traces_sampled_total";
        let saves = "sluice_tail_sampling_decision_saves_total";
        let saves_help = "Saves of the decision caches to the storage: appended, rewritten whole (snapshot) or failed.";
        let global_help = "Final decisions of the tail sampler, by whether the trace was kept.";
        TailSamplingMetrics {
            traces_in_memory: reg.gauge(
                "sluice_tail_sampling_traces_in_memory",
                "Traces buffered while waiting for a decision.",
                l,
            ),
            bytes_in_memory: reg.gauge(
                "sluice_tail_sampling_bytes_in_memory",
                "Accounted bytes of buffered spans (encoded size plus in-memory overhead).",
                l,
            ),
            early_memory: reg.counter(early, early_help, &[("processor", processor), ("reason", "memory")]),
            early_num_traces: reg.counter(early, early_help, &[("processor", processor), ("reason", "num_traces")]),
            early_disk: reg.counter(early, early_help, &[("processor", processor), ("reason", "disk")]),
            early_spill_failed: reg.counter(early, early_help, &[("processor", processor), ("reason", "spill_failed")]),
            spilled_traces: reg.counter(
                "sluice_tail_sampling_spilled_traces_total",
                "Times a buffered trace's spans were moved to the spill storage because max_memory_mib was reached.",
                l,
            ),
            spilled_spans: reg.counter(
                "sluice_tail_sampling_spilled_spans_total",
                "Spans moved to the spill storage because max_memory_mib was reached.",
                l,
            ),
            bytes_on_disk: reg.gauge(
                "sluice_tail_sampling_bytes_on_disk",
                "Bytes in the spill storage's segment files (bounded by max_disk_mib, released records included).",
                l,
            ),
            spill_read_lost_spans: reg.counter(
                "sluice_tail_sampling_spill_lost_spans_total",
                "Spans of kept traces lost because their spilled record could not be read back (I/O error or damage).",
                l,
            ),
            spill_stale_bytes: reg.counter(
                "sluice_tail_sampling_spill_discarded_bytes_total",
                "Spill files a stopped process left undecided (after kill -9), deleted at start.",
                l,
            ),
            restored_sampled: reg.counter(
                "sluice_tail_sampling_decisions_restored_total",
                "Decision cache entries read back from the storage at start.",
                &[("processor", processor), ("cache", "sampled")],
            ),
            restored_not_sampled: reg.counter(
                "sluice_tail_sampling_decisions_restored_total",
                "Decision cache entries read back from the storage at start.",
                &[("processor", processor), ("cache", "not_sampled")],
            ),
            restore_corrupt: reg.counter(
                "sluice_tail_sampling_decisions_corrupt_total",
                "Damaged frames or files of saved decision caches skipped at start.",
                l,
            ),
            storage_errors: reg.counter(
                "sluice_tail_sampling_storage_errors_total",
                "Saved decision files not read at start, and spill stores not opened.",
                l,
            ),
            decision_saves_appended: reg.counter(
                saves,
                saves_help,
                &[("processor", processor), ("result", "appended")],
            ),
            decision_saves_snapshot: reg.counter(
                saves,
                saves_help,
                &[("processor", processor), ("result", "snapshot")],
            ),
            decision_saves_failed: reg.counter(saves, saves_help, &[("processor", processor), ("result", "failed")]),
            late_kept: reg.counter(late, late_help, &[("processor", processor), ("outcome", "kept")]),
            late_dropped: reg.counter(late, late_help, &[("processor", processor), ("outcome", "dropped")]),
            cache_hit_sampled: c("sampled", "hit"),
            cache_hit_not_sampled: c("not_sampled", "hit"),
            cache_miss: c("any", "miss"),
            cache_evicted_sampled: c("sampled", "eviction"),
            cache_evicted_not_sampled: c("not_sampled", "eviction"),
            global_sampled: reg.counter(global, global_help, &[("processor", processor), ("sampled", "true")]),
            global_not_sampled: reg.counter(global, global_help, &[("processor", processor), ("sampled", "false")]),
        }
    }

    pub fn policy(reg: &Registry, processor: &str, policy: &str) -> TailSamplingPolicyMetrics {
        let eval = "otelcol_processor_tail_sampling_count_traces_sampled_total";
        let eval_help = "Each policy's own verdict per trace, by whether it would sample.";
        let dec = "sluice_tail_sampling_decisions_total";
        let dec_help = "Final decisions, by the policy they are attributed to and outcome.";
        let c = |name, help, k: &'static str, v: &'static str| {
            reg.counter(name, help, &[("processor", processor), ("policy", policy), (k, v)])
        };
        TailSamplingPolicyMetrics {
            evaluated_sampled: c(eval, eval_help, "sampled", "true"),
            evaluated_not_sampled: c(eval, eval_help, "sampled", "false"),
            decided_kept: c(dec, dec_help, "outcome", "kept"),
            decided_dropped: c(dec, dec_help, "outcome", "dropped"),
        }
    }
}

/// Gauges of one pipeline's input channel: `sluice_pipeline_queue_size` and
/// `_capacity` in the unit of its `channel_capacity`, named by their `unit`
/// label (`batches` or `bytes`), as the exporters' queue gauges follow their
/// sizer; and the bytes waiting whatever the unit.
pub fn register_pipeline_gauges(
    reg: &Registry,
    pipeline: &str,
    capacity: f64,
    in_bytes: bool,
    batches: impl Fn() -> f64 + Send + Sync + 'static,
    bytes: impl Fn() -> f64 + Send + Sync + 'static,
) {
    let (unit, other) = if in_bytes { ("bytes", "batches") } else { ("batches", "bytes") };
    // A reload that changed the unit leaves no series in the old one.
    for name in ["sluice_pipeline_queue_size", "sluice_pipeline_queue_capacity"] {
        reg.remove(name, &[("pipeline", pipeline), ("unit", other)]);
    }
    let labels: &[(&str, &str)] = &[("pipeline", pipeline), ("unit", unit)];
    let help = "What waits for the pipeline's processor workers, in the unit of channel_capacity (label unit: \
                batches or bytes).";
    reg.gauge_fn(
        "sluice_pipeline_queue_capacity",
        "Capacity of the pipeline's input channel, in the unit of channel_capacity (label unit: batches or bytes).",
        labels,
        move || capacity,
    );
    let bytes = std::sync::Arc::new(bytes);
    if in_bytes {
        let waiting = bytes.clone();
        reg.gauge_fn("sluice_pipeline_queue_size", help, labels, move || waiting());
    } else {
        reg.gauge_fn("sluice_pipeline_queue_size", help, labels, batches);
    }
    reg.gauge_fn(
        "sluice_pipeline_queue_bytes",
        "Bytes waiting in the pipeline's input channel: decoded size, or length for batches kept encoded.",
        &[("pipeline", pipeline)],
        move || bytes(),
    );
}

/// Offers a pipeline's input channel refused for being full, by the bound
/// reached: (`bound="batches"`, `bound="bytes"`).
pub fn pipeline_queue_refusals(reg: &Registry, pipeline: &str) -> (Counter, Counter) {
    let c = |bound| {
        reg.counter(
            "sluice_pipeline_queue_refused_total",
            "Requests (or connector batches) the pipeline's input channel refused because it was full, by the \
             bound that was reached (channel_capacity in batches or bytes); the receiver counts their items in \
             otelcol_receiver_refused_* and tells the client to retry.",
            &[("pipeline", pipeline), ("bound", bound)],
        )
    };
    (c("batches"), c("bytes"))
}

/// Forgets the gauges of a pipeline removed by a config reload.
pub fn unregister_pipeline_gauges(reg: &Registry, pipeline: &str) {
    for unit in ["batches", "bytes"] {
        let labels: &[(&str, &str)] = &[("pipeline", pipeline), ("unit", unit)];
        reg.remove("sluice_pipeline_queue_size", labels);
        reg.remove("sluice_pipeline_queue_capacity", labels);
    }
    reg.remove("sluice_pipeline_queue_bytes", &[("pipeline", pipeline)]);
}

/// Outcomes of config reloads (SIGHUP or `--watch-config`).
#[derive(Clone, Debug, Default)]
pub struct ConfigReloadMetrics {
    pub succeeded: Counter,
    pub failed: Counter,
    /// 1 when the last reload applied, 0 when it was refused or failed.
    pub last_successful: Gauge,
    pub last_success_timestamp: Gauge,
}

impl ConfigReloadMetrics {
    pub fn new(reg: &Registry) -> Self {
        const RELOADS: &str = "sluice_config_reloads_total";
        const HELP: &str = "Config reloads, by result: success (applied, or nothing changed) or failure (the new config was invalid or could not be applied; the running one stays).";
        let last_successful = reg.gauge(
            "sluice_config_last_reload_successful",
            "1 if the last config reload applied, 0 if it failed and the previous config is still running.",
            &[],
        );
        last_successful.set(1);
        ConfigReloadMetrics {
            succeeded: reg.counter(RELOADS, HELP, &[("result", "success")]),
            failed: reg.counter(RELOADS, HELP, &[("result", "failure")]),
            last_successful,
            last_success_timestamp: reg.gauge(
                "sluice_config_last_reload_success_timestamp_seconds",
                "Unix time of the last config reload that applied (0 before the first).",
                &[],
            ),
        }
    }

    pub fn record(&self, ok: bool) {
        if ok {
            self.succeeded.inc();
            self.last_successful.set(1);
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            self.last_success_timestamp.set(now as i64);
        } else {
            self.failed.inc();
            self.last_successful.set(0);
        }
    }
}

/// Process-wide series: CPU, memory, uptime.
pub fn register_process_metrics(reg: &Registry) {
    let start = std::time::Instant::now();
    reg.counter_fn("otelcol_process_uptime_seconds_total", "Uptime of the process.", &[], move || {
        start.elapsed().as_secs_f64()
    });
    reg.counter_fn(
        "otelcol_process_cpu_seconds_total",
        "Total CPU user and system time in seconds.",
        &[],
        process::cpu_seconds,
    );
    reg.gauge_fn("otelcol_process_memory_rss_bytes", "Resident set size of the process, in bytes.", &[], || {
        process::rss_bytes() as f64
    });
    reg.gauge_fn(
        "sluice_memory_limiter_refusing",
        "1 while the memory limiter refuses data, else 0.",
        &[],
        process::memory_refusing_value,
    );
}

/// Counters of the Prometheus exporters (`prometheus`, `prometheusremotewrite`).
#[derive(Clone, Debug)]
pub struct PrometheusExporterMetrics {
    pub dropped_delta: Counter,
    pub dropped_unsupported: Counter,
    pub dropped_max_series: Counter,
    pub dropped_out_of_order: Counter,
    /// Points over `max_histogram_buckets` (reason `too_many_buckets`).
    pub dropped_too_many_buckets: Counter,
    /// Points over `max_labels_per_series` (reason `too_many_labels`).
    pub dropped_too_many_labels: Counter,
    /// Points over `max_label_value_length` (reason `label_value_too_long`).
    pub dropped_label_value_too_long: Counter,
    /// Points past `max_batch_bytes` of one batch (reason `batch_too_large`).
    pub dropped_batch_too_large: Counter,
    /// New series refused because the scrape page would pass
    /// `max_page_bytes` (`prometheus` only).
    pub refused_series_page_full: Counter,
    /// Bytes of the scrape page's series now (`prometheus` only).
    pub page_bytes: Gauge,
    /// Requests the backend refused for good (HTTP 4xx, e.g. out of order or out of bounds).
    pub rejected_requests: Counter,
    /// Series the delta→cumulative converter holds.
    pub delta_series: Gauge,
}

impl PrometheusExporterMetrics {
    pub fn new(reg: &Registry, exporter: &str) -> Self {
        let dropped = "sluice_exporter_prometheus_dropped_points_total";
        let help = "Data points the Prometheus exporter could not translate, by reason.";
        let d = |reason: &str| reg.counter(dropped, help, &[("exporter", exporter), ("reason", reason)]);
        let l: &[(&str, &str)] = &[("exporter", exporter)];
        PrometheusExporterMetrics {
            dropped_delta: d("delta_temporality"),
            dropped_unsupported: d("unsupported_type"),
            dropped_max_series: d("max_series"),
            dropped_out_of_order: d("out_of_order"),
            dropped_too_many_buckets: d("too_many_buckets"),
            dropped_too_many_labels: d("too_many_labels"),
            dropped_label_value_too_long: d("label_value_too_long"),
            dropped_batch_too_large: d("batch_too_large"),
            refused_series_page_full: reg.counter(
                "sluice_exporter_prometheus_refused_series_total",
                "New series the prometheus exporter's scrape page refused, by reason (page_full: max_page_bytes).",
                &[("exporter", exporter), ("reason", "page_full")],
            ),
            page_bytes: reg.gauge(
                "sluice_exporter_prometheus_page_bytes",
                "Bytes of the series lines the prometheus exporter's scrape page holds (bounded by max_page_bytes).",
                l,
            ),
            rejected_requests: reg.counter(
                "sluice_exporter_prometheus_rejected_requests_total",
                "Remote write requests the backend refused with a non-retryable status.",
                l,
            ),
            delta_series: reg.gauge(
                "sluice_exporter_prometheus_delta_series",
                "Series whose running total the delta-to-cumulative converter keeps.",
                l,
            ),
        }
    }
}

/// Series of one `filelog` receiver (its accepted/refused records are the
/// receiver counters, with transport `file`).
#[derive(Clone, Debug)]
pub struct FilelogMetrics {
    /// Files open and followed now.
    pub files_watched: Gauge,
    /// Entries cut at `max_log_size`; the rest of each became the next entry.
    pub truncated_entries: Counter,
    /// Container log lines in no known format, sent with their raw text.
    pub unparsed_lines: Counter,
    /// Rotations seen: a file replaced at its path, or truncated in place.
    pub rotations: Counter,
    /// Checkpoint files that could not be written; the offsets are retried at the next accepted batch.
    pub checkpoint_write_failures: Counter,
    /// Offers of a batch retried after the pipelines refused it.
    pub offer_retries: Counter,
    /// Files not opened in a poll because `max_concurrent_files` were open.
    pub open_file_limit_hits: Counter,
    /// Files that could not be opened, stat'ed or read.
    pub read_errors: Counter,
}

impl FilelogMetrics {
    pub fn new(reg: &Registry, receiver: &str) -> Self {
        let labels: &[(&str, &str)] = &[("receiver", receiver)];
        FilelogMetrics {
            files_watched: reg.gauge("sluice_filelog_files_watched", "Files the filelog receiver has open.", labels),
            truncated_entries: reg.counter(
                "sluice_filelog_truncated_entries_total",
                "Log entries cut at max_log_size; the rest was sent as the next entry.",
                labels,
            ),
            unparsed_lines: reg.counter(
                "sluice_filelog_unparsed_lines_total",
                "Container log lines in neither CRI nor Docker format, sent with their raw text.",
                labels,
            ),
            rotations: reg.counter(
                "sluice_filelog_rotations_total",
                "Log rotations seen: a file replaced at its path (rename) or truncated in place (copytruncate).",
                labels,
            ),
            checkpoint_write_failures: reg.counter(
                "sluice_filelog_checkpoint_write_failures_total",
                "Checkpoint files that could not be written.",
                labels,
            ),
            offer_retries: reg.counter(
                "sluice_filelog_offer_retries_total",
                "Batches of log records offered again after the pipelines refused them.",
                labels,
            ),
            open_file_limit_hits: reg.counter(
                "sluice_filelog_open_file_limit_hits_total",
                "Files left unopened in a poll because max_concurrent_files were open.",
                labels,
            ),
            read_errors: reg.counter(
                "sluice_filelog_read_errors_total",
                "Log files that could not be opened or read.",
                labels,
            ),
        }
    }
}

/// Series of the `loadbalancing` exporter, per exporter and signal; the
/// per-backend ones also by `endpoint` (`host:port`).
#[derive(Clone)]
pub struct LoadBalancerMetrics {
    reg: Registry,
    exporter: String,
    signal: Signal,
    /// Parts of a batch sent to another backend after theirs failed.
    pub reroutes: Counter,
    /// Resolver lookups that succeeded.
    pub resolver_refreshes: Counter,
    /// Resolver lookups that failed; the last good backend set stays.
    pub resolver_errors: Counter,
    /// Backends the resolver currently lists.
    pub backends: Gauge,
}

impl LoadBalancerMetrics {
    pub fn new(reg: &Registry, exporter: &str, signal: Signal) -> Self {
        let labels: &[(&str, &str)] = &[("exporter", exporter), ("data_type", signal.as_str())];
        LoadBalancerMetrics {
            reg: reg.clone(),
            exporter: exporter.to_string(),
            signal,
            reroutes: reg.counter(
                "sluice_loadbalancer_reroutes_total",
                "Parts of a batch sent to another backend because the one their key maps to failed.",
                labels,
            ),
            resolver_refreshes: reg.counter(
                "sluice_loadbalancer_resolver_refreshes_total",
                "Resolver lookups that succeeded.",
                labels,
            ),
            resolver_errors: reg.counter(
                "sluice_loadbalancer_resolver_errors_total",
                "Resolver lookups that failed, timed out or found no address; the last known backends stay.",
                labels,
            ),
            backends: reg.gauge("sluice_loadbalancer_backends", "Backends the resolver currently lists.", labels),
        }
    }

    /// The (sent, failed) item counters of one backend.
    pub fn backend(&self, endpoint: &str) -> (Counter, Counter) {
        let labels: &[(&str, &str)] =
            &[("exporter", &self.exporter), ("data_type", self.signal.as_str()), ("endpoint", endpoint)];
        (
            self.reg.counter(
                "sluice_loadbalancer_backend_sent_items_total",
                "Items (spans, data points, log records) a backend accepted.",
                labels,
            ),
            self.reg.counter(
                "sluice_loadbalancer_backend_failed_items_total",
                "Items a backend did not accept; retryable failures are rerouted to another backend.",
                labels,
            ),
        )
    }

    /// Forgets the series of a backend that left the set: behind a DNS
    /// resolver, gateway pods come and go with new addresses, and series
    /// kept for each would grow without bound.
    pub fn forget_backend(&self, endpoint: &str) {
        let labels: &[(&str, &str)] =
            &[("exporter", &self.exporter), ("data_type", self.signal.as_str()), ("endpoint", endpoint)];
        self.reg.remove("sluice_loadbalancer_backend_sent_items_total", labels);
        self.reg.remove("sluice_loadbalancer_backend_failed_items_total", labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_gauges_name_their_unit_and_a_reload_leaves_none_in_the_old_one() {
        let reg = Registry::new();
        let pipeline = |unit| [("pipeline", "traces"), ("unit", unit)];
        register_pipeline_gauges(&reg, "traces", 67108864.0, true, || 3.0, || 1000.0);
        assert_eq!(reg.value("sluice_pipeline_queue_size", &pipeline("bytes")), Some(1000.0));
        assert_eq!(reg.value("sluice_pipeline_queue_capacity", &pipeline("bytes")), Some(67108864.0));
        // A reload to `channel_capacity: 256`.
        register_pipeline_gauges(&reg, "traces", 256.0, false, || 3.0, || 1000.0);
        assert_eq!(reg.value("sluice_pipeline_queue_size", &pipeline("batches")), Some(3.0));
        assert_eq!(reg.value("sluice_pipeline_queue_capacity", &pipeline("batches")), Some(256.0));
        assert_eq!(reg.value("sluice_pipeline_queue_size", &pipeline("bytes")), None);
        assert_eq!(reg.value("sluice_pipeline_queue_capacity", &pipeline("bytes")), None);
        assert_eq!(reg.value("sluice_pipeline_queue_bytes", &[("pipeline", "traces")]), Some(1000.0));
        unregister_pipeline_gauges(&reg, "traces");
        assert!(!reg.render().contains("sluice_pipeline_queue"), "{}", reg.render());

        let exporter = |sizer| [("exporter", "otlp"), ("data_type", "traces"), ("sizer", sizer)];
        register_queue_gauges(&reg, "otlp", Signal::Traces, 1000, "requests", || 1.0);
        assert_eq!(reg.value("sluice_exporter_queue_sizer", &exporter("requests")), Some(1.0));
        register_queue_gauges(&reg, "otlp", Signal::Traces, 1 << 30, "bytes", || 1.0);
        assert_eq!(reg.value("sluice_exporter_queue_sizer", &exporter("bytes")), Some(1.0));
        assert_eq!(reg.value("sluice_exporter_queue_sizer", &exporter("requests")), None);
        unregister_queue_gauges(&reg, "otlp", Signal::Traces);
        assert!(!reg.render().contains("queue"), "{}", reg.render());
    }
}
