//! Drives an exporter: consumers pull batches from its sending queue and send
//! each one, retrying retryable failures with exponential backoff and jitter.
//! With `sending_queue.batch`, one task pulls from the queue into a
//! [`Batcher`] (as the Collector keeps one queue consumer when batching) and
//! up to `num_consumers` merged batches are sent at once; while all are busy
//! it pulls no more, so a slow destination still backs the queue up.
//!
//! Every item ends in exactly one of: `sent`, `send_failed` (permanent error,
//! retries exhausted or disabled, or partial-success rejection).

use super::{ExportError, Exporter};
use crate::data::Payload;
use crate::exporters::otlp_common::RetryConfig;
use crate::queue::batcher::{BatchSettings, Batcher, Flush, Trigger};
use crate::queue::{Receipt, SendingQueue};
use crate::telemetry::health::ComponentHealth;
use crate::telemetry::{ExporterMetrics, QueueBatchMetrics};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Exponential backoff with jitter, as the Collector's `retry_on_failure`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    multiplier: f64,
    randomization: f64,
}

impl Backoff {
    pub fn new(cfg: &RetryConfig) -> Self {
        Backoff {
            next: cfg.initial_interval.get(),
            max: cfg.max_interval.get(),
            multiplier: cfg.multiplier.max(1.0),
            randomization: cfg.randomization_factor.clamp(0.0, 1.0),
        }
    }

    /// The next wait, given a uniform random draw in [0, 1).
    pub fn next_wait(&mut self, draw: f64) -> Duration {
        let base = self.next.as_secs_f64();
        let delta = base * self.randomization;
        let wait = (base - delta) + draw * (2.0 * delta);
        let grown = (base * self.multiplier).min(self.max.as_secs_f64());
        self.next = Duration::from_secs_f64(grown.max(0.0));
        Duration::from_secs_f64(wait.max(0.0))
    }
}

/// Resolves once `stop` turns true; never if its sender is gone.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub struct ExporterRunner<E: Exporter> {
    pub exporter: Arc<E>,
    pub queue: Arc<SendingQueue>,
    pub retry: RetryConfig,
    pub metrics: ExporterMetrics,
    pub health: ComponentHealth,
    /// Component ID and signal, for log lines.
    pub name: String,
    /// What the failures of all consumers say at the default log level.
    pub failures: FailureLog,
    /// `sending_queue.batch`, with its series.
    pub batch: Option<(BatchSettings, QueueBatchMetrics)>,
}

/// Export failures at the default log level, without a line per retry: the
/// first failure at once (warn), then while it keeps failing one summary per
/// interval with the count and the last error, and one line when sending
/// works again. The counters (`otelcol_exporter_send_failed_*`,
/// `sluice_exporter_retries_total`) count every failure; this only speaks.
pub struct FailureLog {
    /// Where the exporter sends, in plain words.
    destination: String,
    interval: Duration,
    state: std::sync::Mutex<FailureState>,
}

#[derive(Default)]
struct FailureState {
    /// Since when sending has failed, if it does.
    failing_since: Option<Instant>,
    /// Failures since the last line, and the last error.
    unreported: u64,
    last_error: String,
    last_line: Option<Instant>,
}

impl FailureLog {
    pub fn new(destination: String, interval: Duration) -> Self {
        FailureLog { destination, interval, state: Default::default() }
    }

    /// One failed attempt; `what` says what happens to the batch.
    fn failed(&self, name: &str, error: &str, what: &str) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.failing_since {
            None => {
                st.failing_since = Some(now);
                st.last_line = Some(now);
                st.unreported = 0;
                warn!(exporter = %name, destination = %self.destination, error = %error, "export failing: {what}");
            }
            Some(since) => {
                st.unreported += 1;
                st.last_error = error.to_string();
                if st.last_line.is_none_or(|l| now.duration_since(l) >= self.interval) {
                    warn!(
                        exporter = %name,
                        destination = %self.destination,
                        failures = st.unreported,
                        failing_for = ?now.duration_since(since),
                        last_error = %st.last_error,
                        "export still failing"
                    );
                    st.unreported = 0;
                    st.last_line = Some(now);
                }
            }
        }
    }

    /// A batch was sent: a failing exporter has recovered.
    fn sent(&self, name: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = st.failing_since.take() {
            info!(
                exporter = %name,
                destination = %self.destination,
                failed_for = ?since.elapsed(),
                unreported_failures = st.unreported,
                "export recovered"
            );
            st.unreported = 0;
        }
    }
}

impl<E: Exporter> ExporterRunner<E> {
    /// Spawns `consumers` tasks draining the queue. They end when the queue is
    /// closed and empty, or once `stop` turns true: then each finishes the
    /// batch it holds and leaves the rest in the queue for whoever consumes
    /// it next (a config reload hands a kept queue to a new exporter).
    pub fn spawn(
        self: Arc<Self>,
        consumers: usize,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        if let Some((settings, metrics)) = self.batch.clone() {
            return vec![tokio::spawn(self.batched(settings, metrics, consumers, stop))];
        }
        (0..consumers.max(1))
            .map(|_| {
                let me = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        // `pop` is cancel-safe: a batch is only taken when it returns.
                        let popped = tokio::select! {
                            biased;
                            _ = stopped(&mut stop) => break,
                            popped = me.queue.pop() => popped,
                        };
                        let Some(popped) = popped else { break };
                        match me.send_with_retry(&popped.batch, &mut stop).await {
                            SendEnd::Sent => me.queue.done(popped),
                            SendEnd::Failed => {
                                if let Some(w) = &popped.waiter {
                                    w.fail();
                                }
                                me.queue.done(popped)
                            }
                            SendEnd::Stopped => {
                                // The replacing consumers send it with their settings.
                                me.queue.requeue(popped).await;
                                break;
                            }
                        }
                    }
                })
            })
            .collect()
    }

    /// The batching consumer: pulls from the queue into the batcher, sends
    /// what it hands out on up to `consumers` tasks at once. Once the queue
    /// is closed and empty it sends what is pending and ends; once `stop`
    /// turns true it puts what is pending back in the queue (the replacing
    /// consumers batch it with their settings) and ends.
    async fn batched(
        self: Arc<Self>,
        settings: BatchSettings,
        metrics: QueueBatchMetrics,
        consumers: usize,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut batcher: Batcher<Arc<Receipt>> = Batcher::new(settings);
        let permits = Arc::new(tokio::sync::Semaphore::new(consumers.max(1)));
        let mut sends = tokio::task::JoinSet::new();
        let mut stop_rx = stop.clone();
        let stopped_early = loop {
            while sends.try_join_next().is_some() {}
            let deadline = batcher.deadline();
            let due = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            let flushes: Vec<Flush<Arc<Receipt>>> = tokio::select! {
                biased;
                _ = stopped(&mut stop_rx) => break true,
                _ = due => batcher.tick(Instant::now()).into_iter().collect(),
                popped = self.queue.pop() => match popped {
                    None => break false,
                    Some(popped) => {
                        let (batch, receipt) = self.queue.receipt(popped);
                        let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
                        batcher.add(batch, Arc::new(receipt), Instant::now())
                    }
                },
            };
            for flush in flushes {
                // Waits while every consumer is busy: the queue is not pulled meanwhile.
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let me = self.clone();
                let mut stop = stop.clone();
                count_flush(&metrics, &flush, settings);
                sends.spawn(async move {
                    let _permit = permit;
                    me.send_flush(flush, &mut stop).await;
                });
            }
        };
        if let Some(rest) = batcher.drain() {
            if stopped_early {
                // Put back for the consumers that replace these.
                let Flush { batch, tickets, .. } = rest;
                tickets.iter().for_each(|t| t.fail());
                if !self.queue.requeue_batch(Arc::new(batch)).await {
                    // Not queued again: a persistent queue keeps the records for the next start.
                    std::mem::forget(tickets);
                }
            } else {
                count_flush(&metrics, &rest, settings);
                let mut stop = stop.clone();
                self.send_flush(rest, &mut stop).await;
            }
        }
        while sends.join_next().await.is_some() {}
    }

    /// Sends one merged batch; its receipts acknowledge once the last part
    /// of each queued batch is done.
    async fn send_flush(&self, flush: Flush<Arc<Receipt>>, stop: &mut tokio::sync::watch::Receiver<bool>) {
        let Flush { batch, tickets, .. } = flush;
        match self.send_with_retry(&batch, stop).await {
            SendEnd::Sent => drop(tickets),
            SendEnd::Failed => tickets.iter().for_each(|t| t.fail()),
            SendEnd::Stopped => {
                // Merged batches go back without their waiters: those are
                // told of a failure (the client retries) rather than of a
                // send that has not happened.
                tickets.iter().for_each(|t| t.fail());
                if !self.queue.requeue_batch(Arc::new(batch)).await {
                    std::mem::forget(tickets);
                }
            }
        }
    }

    /// Sends one batch until it succeeds, fails permanently, or retrying
    /// gives up; or until `stop` turns true while it waits to retry.
    pub async fn send_with_retry(&self, batch: &Payload, stop: &mut tokio::sync::watch::Receiver<bool>) -> SendEnd {
        let items = batch.item_count() as u64;
        let first_attempt = Instant::now();
        let mut backoff = Backoff::new(&self.retry);
        loop {
            let started = Instant::now();
            let result = match batch {
                Payload::Decoded(b) => self.exporter.export(b).await,
                Payload::Encoded(e) => self.exporter.export_encoded(e).await,
            };
            self.metrics.send_duration.observe(started.elapsed().as_secs_f64());
            let (message, retry_after) = match result {
                Ok(outcome) => {
                    let rejected = outcome.rejected.min(items);
                    self.metrics.sent.add(items - rejected);
                    if rejected > 0 {
                        self.metrics.partial_rejected.add(rejected);
                        self.metrics.send_failed.add(rejected);
                        warn!(exporter = %self.name, rejected, message = outcome.message.as_deref().unwrap_or(""), "destination partially rejected a batch");
                    }
                    self.health.set_ok();
                    self.failures.sent(&self.name);
                    return SendEnd::Sent;
                }
                Err(ExportError::Permanent { message }) => {
                    self.metrics.send_failed.add(items);
                    self.failures.failed(&self.name, &message, "the destination refused a batch permanently; dropped");
                    warn!(exporter = %self.name, items, error = %message, "export failed permanently; dropping batch");
                    self.health.set_permanent_failure(message);
                    return SendEnd::Failed;
                }
                Err(ExportError::Retryable { message, retry_after }) => (message, retry_after),
            };
            self.health.set_recoverable_failure(message.clone(), Instant::now());
            if !self.retry.enabled {
                self.metrics.send_failed.add(items);
                warn!(exporter = %self.name, items, error = %message, "export failed and retry_on_failure is disabled; dropping batch");
                return SendEnd::Failed;
            }
            let backoff_wait = backoff.next_wait(rand::rng().random::<f64>());
            // The server's requested wait wins over a shorter backoff.
            let wait = retry_after.map_or(backoff_wait, |ra| ra.max(backoff_wait));
            let max_elapsed = self.retry.max_elapsed_time.get();
            if !max_elapsed.is_zero() && first_attempt.elapsed() + wait > max_elapsed {
                self.metrics.send_failed.add(items);
                warn!(exporter = %self.name, items, error = %message, "retries exhausted after {:?}; dropping batch", first_attempt.elapsed());
                return SendEnd::Failed;
            }
            self.metrics.retries.inc();
            self.failures.failed(&self.name, &message, "retrying");
            debug!(exporter = %self.name, error = %message, ?wait, "export failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(stop) => return SendEnd::Stopped,
            }
        }
    }
}

/// Counts one batch the batcher hands out.
fn count_flush<T>(metrics: &QueueBatchMetrics, flush: &Flush<T>, settings: BatchSettings) {
    match flush.trigger {
        Trigger::Size => metrics.size_trigger.inc(),
        Trigger::Timeout => metrics.timeout_trigger.inc(),
        Trigger::Drain => metrics.drain_trigger.inc(),
    }
    if flush.cut {
        metrics.cuts.inc();
    }
    if flush.oversized {
        metrics.oversized.inc();
    }
    metrics.send_size.observe(match settings.sizer {
        crate::queue::Sizer::Bytes => crate::queue::payload_bytes(&flush.batch) as f64,
        _ => flush.batch.item_count() as f64,
    });
}

/// How sending one batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendEnd {
    /// Sent (a partial rejection counted): the queue may forget it.
    Sent,
    /// Counted as failed (permanent error, retries exhausted or disabled):
    /// the queue may forget it.
    Failed,
    /// The consumers were told to stop while the batch waited to be retried;
    /// it goes back to the queue.
    Stopped,
}

/// What an exporter's consumers run with, prepared by the pipeline: the
/// queue they drain, how many there are, the retry policy, the metrics and
/// health they report to, and the name they log.
pub struct RunnerParts {
    pub queue: Arc<SendingQueue>,
    pub consumers: usize,
    pub retry: RetryConfig,
    pub metrics: ExporterMetrics,
    pub health: ComponentHealth,
    pub name: String,
    /// Where it sends, in plain words, and how often a failing exporter
    /// says so again.
    pub destination: String,
    pub failure_summary_interval: Duration,
    /// `sending_queue.batch`, resolved, with its series; `None`: each
    /// queued batch is sent as it is.
    pub batch: Option<(BatchSettings, QueueBatchMetrics)>,
}

/// An exporter's consumers: they pull from its queue and send.
pub struct Consumers {
    /// Turned true to stop them while the queue lives on.
    stop: tokio::sync::watch::Sender<bool>,
    /// Ends once the consumers have stopped and the exporter shut down.
    pub task: tokio::task::JoinHandle<()>,
}

impl Consumers {
    /// Each consumer finishes the batch it holds and leaves the rest queued.
    pub fn stop(self) -> tokio::task::JoinHandle<()> {
        let _ = self.stop.send(true);
        self.task
    }
}

/// Starts `parts.consumers` consumers sending with `exporter`; once they
/// end, the exporter is shut down.
pub fn start<E: Exporter>(exporter: E, parts: RunnerParts) -> Consumers {
    let exporter = Arc::new(exporter);
    let RunnerParts { queue, consumers, retry, metrics, health, name, destination, failure_summary_interval, batch } =
        parts;
    let failures = FailureLog::new(destination, failure_summary_interval);
    let runner =
        Arc::new(ExporterRunner { exporter: exporter.clone(), queue, retry, metrics, health, name, failures, batch });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let handles = runner.spawn(consumers, stop_rx);
    let task = tokio::spawn(async move {
        for c in handles {
            let _ = c.await;
        }
        exporter.shutdown().await;
    });
    Consumers { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as CfgDuration;
    use crate::data::{Batch, Signal};
    use crate::exporters::ExportOutcome;
    use crate::queue::persistent::{PersistentOptions, PersistentQueue, DEFAULT_SEGMENT_BYTES};
    use crate::queue::{FullQueuePolicy, QueueCounters, Sizer};
    use crate::telemetry::{PersistentQueueMetrics, Registry};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::sync::Mutex;

    /// Records the item count of every batch it is handed.
    struct Recorder(Arc<Mutex<Vec<usize>>>);

    impl Exporter for Recorder {
        fn export(
            &self,
            batch: &Batch,
        ) -> impl std::future::Future<Output = Result<ExportOutcome, ExportError>> + Send {
            let (n, seen) = (batch.item_count(), self.0.clone());
            async move {
                seen.lock().unwrap().push(n);
                Ok(ExportOutcome::default())
            }
        }
    }

    fn spans(n: usize) -> Arc<crate::data::Payload> {
        let span = Span { trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() };
        Arc::new(
            Batch::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans { spans: vec![span; n], ..Default::default() }],
                    ..Default::default()
                }],
            })
            .into(),
        )
    }

    fn parts(queue: Arc<SendingQueue>, reg: &Registry, batch: BatchSettings) -> RunnerParts {
        RunnerParts {
            queue,
            consumers: 3,
            retry: RetryConfig::default(),
            metrics: ExporterMetrics::new(reg, "otlp", Signal::Traces),
            health: crate::telemetry::health::HealthState::new().exporter("otlp"),
            name: "otlp (traces)".into(),
            destination: "test".into(),
            failure_summary_interval: Duration::from_secs(30),
            batch: Some((batch, QueueBatchMetrics::new(reg, "otlp", Signal::Traces))),
        }
    }

    fn settings(min: u64, max: u64, timeout_ms: u64) -> BatchSettings {
        BatchSettings {
            flush_timeout: Duration::from_millis(timeout_ms),
            min_size: min,
            max_size: max,
            sizer: Sizer::Items,
        }
    }

    #[test]
    fn batched_consumers_merge_and_cut_what_the_queue_hands_out() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let reg = Registry::new();
        let queue = Arc::new(SendingQueue::new(1000, Sizer::Items, FullQueuePolicy::Block, QueueCounters::default()));
        for n in [4, 4, 4, 4, 37] {
            queue.push(spans(n));
        }
        queue.close();
        let seen = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let consumers = start(Recorder(seen.clone()), parts(queue.clone(), &reg, settings(10, 15, 10_000)));
            consumers.task.await.unwrap();
        });
        // 4+4+4 = 12 >= 10 goes; 4+37 = 41 = 15 + 15 + 11, and 11 >= 10 goes.
        let mut sizes = seen.lock().unwrap().clone();
        sizes.sort();
        assert_eq!(sizes, vec![11, 12, 15, 15]);
        let sends = |t| {
            reg.value(
                "sluice_exporter_queue_batch_sends_total",
                &[("exporter", "otlp"), ("data_type", "traces"), ("trigger", t)],
            )
        };
        assert_eq!(sends("size"), Some(4.0));
        let typed = [("exporter", "otlp"), ("data_type", "traces")];
        assert_eq!(reg.value("sluice_exporter_queue_batch_cuts_total", &typed), Some(2.0));
        assert_eq!(reg.value("otelcol_exporter_sent_spans_total", &[("exporter", "otlp")]), Some(53.0));
    }

    #[test]
    fn a_small_batch_goes_after_flush_timeout_and_the_rest_at_close() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let reg = Registry::new();
        let queue =
            Arc::new(SendingQueue::new(1000, Sizer::Requests, FullQueuePolicy::Block, QueueCounters::default()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let consumers = start(Recorder(seen.clone()), parts(queue.clone(), &reg, settings(100, 0, 100)));
            queue.push(spans(3));
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(seen.lock().unwrap().is_empty(), "3 < min_size waits for flush_timeout");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(*seen.lock().unwrap(), vec![3], "sent once flush_timeout passed");
            queue.push(spans(5));
            queue.close();
            consumers.task.await.unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), vec![3, 5], "what is pending goes when the queue closes");
        let sends = |t| {
            reg.value(
                "sluice_exporter_queue_batch_sends_total",
                &[("exporter", "otlp"), ("data_type", "traces"), ("trigger", t)],
            )
        };
        assert_eq!((sends("timeout"), sends("drain")), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn stopped_batched_consumers_put_what_is_pending_back_in_the_queue() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let reg = Registry::new();
        let queue = Arc::new(SendingQueue::new(1000, Sizer::Items, FullQueuePolicy::Block, QueueCounters::default()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let consumers = start(Recorder(seen.clone()), parts(queue.clone(), &reg, settings(100, 0, 10_000)));
            queue.push(spans(3));
            queue.push(spans(4));
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(queue.size(), 0, "both are in the batcher");
            // A reload replaces the consumers: the pending 7 go back to the queue, merged.
            consumers.stop().await.unwrap();
            assert_eq!((queue.len(), queue.size()), (1, 7));
            assert!(seen.lock().unwrap().is_empty());
            let mut plain = parts(queue.clone(), &reg, settings(1, 0, 10));
            plain.batch = None;
            let next = start(Recorder(seen.clone()), plain);
            queue.close();
            next.task.await.unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), vec![7]);
    }

    #[test]
    fn a_persistent_record_is_forgotten_once_every_part_of_it_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let opts = PersistentOptions {
                dir: dir.path().to_path_buf(),
                fsync: false,
                capacity: 1000,
                sizer: Sizer::Items,
                max_bytes: 1 << 20,
                segment_bytes: DEFAULT_SEGMENT_BYTES,
                policy: FullQueuePolicy::Block,
                name: "test".into(),
            };
            let q =
                PersistentQueue::open(opts, PersistentQueueMetrics::default(), crate::telemetry::Counter::default());
            Arc::new(SendingQueue::persistent(q.unwrap(), Sizer::Items, crate::telemetry::Counter::default()))
        };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let reg = Registry::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let queue = open();
            for n in [3, 3, 3] {
                queue.push(spans(n));
            }
            assert_eq!((queue.size(), queue.capacity()), (9, 1000));
            queue.close();
            rt.block_on(async {
                let consumers = start(Recorder(seen.clone()), parts(queue.clone(), &reg, settings(5, 5, 10_000)));
                consumers.task.await.unwrap();
            });
        }
        let mut sizes = seen.lock().unwrap().clone();
        sizes.sort();
        // 3+3 = 6 = 5 + 1 (the second record is cut in two); 1+3 = 4 drains at close.
        assert_eq!(sizes, vec![4, 5]);
        assert_eq!(open().len(), 0, "every record was acknowledged, none replays");
    }

    #[test]
    fn backoff_grows_by_the_multiplier_up_to_the_max() {
        let cfg = RetryConfig {
            initial_interval: CfgDuration::from_secs(1),
            max_interval: CfgDuration::from_secs(3),
            multiplier: 2.0,
            randomization_factor: 0.0,
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        let waits: Vec<u64> = (0..4).map(|_| b.next_wait(0.5).as_millis() as u64).collect();
        assert_eq!(waits, vec![1000, 2000, 3000, 3000]);
    }

    #[test]
    fn jitter_stays_within_the_randomization_band() {
        let cfg = RetryConfig {
            initial_interval: CfgDuration::from_secs(4),
            randomization_factor: 0.5,
            ..RetryConfig::default()
        };
        assert_eq!(Backoff::new(&cfg).next_wait(0.0), Duration::from_secs(2));
        assert_eq!(Backoff::new(&cfg).next_wait(0.999_999).as_millis(), 5999);
    }
}
