//! A counting OTLP/gRPC sink for load runs: accepts trace exports, counts
//! spans and requests, and prints the totals when it gets SIGTERM or after
//! `--idle-exit SECS` without data. Usage:
//! `cargo run --release --example load_sink -- 127.0.0.1:14317 [--idle-exit 3]`

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    requests: AtomicU64,
    /// Nanoseconds since start of the first and last request.
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

struct Sink {
    counts: Arc<Counts>,
    start: Instant,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let n: usize =
            request.get_ref().resource_spans.iter().flat_map(|r| r.scope_spans.iter()).map(|s| s.spans.len()).sum();
        let now = self.start.elapsed().as_nanos() as u64;
        let _ = self.counts.first_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.counts.last_ns.store(now, Ordering::Relaxed);
        self.counts.spans.fetch_add(n as u64, Ordering::Relaxed);
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:14317".into()).parse()?;
    let idle_exit =
        args.iter().position(|a| a == "--idle-exit").and_then(|i| args.get(i + 1)).and_then(|s| s.parse::<u64>().ok());
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let sink = Sink { counts: counts.clone(), start };
    let service = TraceServiceServer::new(sink)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(64 << 20);
    let c = counts.clone();
    let stop = async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if let Some(idle) = idle_exit {
                        let last = c.last_ns.load(Ordering::Relaxed);
                        if last > 0 && start.elapsed().as_nanos() as u64 - last > idle * 1_000_000_000 {
                            break;
                        }
                    }
                }
            }
        }
    };
    eprintln!("load_sink listening on {addr}");
    tonic::transport::Server::builder().add_service(service).serve_with_shutdown(addr, stop).await?;
    let spans = counts.spans.load(Ordering::Relaxed);
    let secs =
        (counts.last_ns.load(Ordering::Relaxed).saturating_sub(counts.first_ns.load(Ordering::Relaxed))) as f64 / 1e9;
    println!(
        "{{\"spans\":{spans},\"requests\":{},\"active_seconds\":{secs:.3},\"spans_per_second\":{:.0}}}",
        counts.requests.load(Ordering::Relaxed),
        if secs > 0.0 { spans as f64 / secs } else { 0.0 }
    );
    Ok(())
}
