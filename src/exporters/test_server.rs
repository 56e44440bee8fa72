//! An HTTP/1 backend for exporter tests: records every request and answers
//! from a script, then with a default status; and a runner that retries
//! fast, to drive an exporter through its retries against it.

use crate::config::Duration as CfgDuration;
use crate::data::Signal;
use crate::exporters::otlp_common::{FullQueuePolicy, RetryConfig};
use crate::exporters::runner::ExporterRunner;
use crate::exporters::Exporter;
use crate::queue::SendingQueue;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::Registry;
use crate::telemetry::ExporterMetrics;
use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// Starts the backend; `answers` are used in order, then `default_status`
/// with an empty body.
pub async fn serve(answers: Vec<Answer>, default_status: u16) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let seen = seen2.clone();
            let answers = answers.clone();
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let seen = seen.clone();
                let answers = answers.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes().to_vec();
                    seen.lock().unwrap().push(Seen {
                        method: parts.method,
                        path: parts.uri.path().to_string(),
                        headers: parts.headers,
                        body,
                    });
                    let (status, headers, body) =
                        answers.lock().unwrap().pop_front().unwrap_or((default_status, vec![], vec![]));
                    let mut resp = http::Response::builder().status(status);
                    for (k, v) in headers {
                        resp = resp.header(k, v);
                    }
                    Ok::<_, std::convert::Infallible>(resp.body(Full::new(Bytes::from(body))).unwrap())
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    (addr, seen)
}

/// A runner for `exporter` (ID `id`) whose retries wait 10–20 ms, counting
/// into `reg`.
pub fn fast_retry_runner<E: Exporter>(exporter: E, reg: &Registry, id: &str, signal: Signal) -> ExporterRunner<E> {
    let metrics = ExporterMetrics::new(reg, id, signal);
    let counters = crate::queue::QueueCounters {
        enqueue_failed: metrics.enqueue_failed.clone(),
        too_large: metrics.queue_too_large.clone(),
    };
    let queue = SendingQueue::new(4, crate::queue::Sizer::Requests, FullQueuePolicy::Block, counters);
    ExporterRunner {
        exporter: Arc::new(exporter),
        queue: Arc::new(queue),
        retry: RetryConfig {
            initial_interval: CfgDuration(Duration::from_millis(10)),
            max_interval: CfgDuration(Duration::from_millis(20)),
            ..RetryConfig::default()
        },
        metrics,
        health: HealthState::new().exporter(id),
        name: format!("{id}/{signal}"),
        failures: crate::exporters::runner::FailureLog::new(id.to_string(), Duration::from_secs(30)),
        batch: None,
    }
}
