//! A counting OTLP/gRPC trace sink for load runs. It decodes each span only as
//! an undecoded byte slice (a zero-copy view of the request), so it costs far
//! less than the agent it measures. Prints totals as JSON on SIGTERM or after
//! `--idle-exit SECS` without data. Usage:
//! `cargo run --release --example load_sink -- 127.0.0.1:14317 [--idle-exit 3]`

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codec::CompressionEncoding;

/// ExportTraceServiceRequest with each span left as bytes: same wire format.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanCountingRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpansView>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpansView {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpansView>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpansView {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<Bytes>,
}

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    requests: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

#[derive(Clone)]
struct Export {
    counts: Arc<Counts>,
    start: Instant,
}

impl tonic::server::UnaryService<SpanCountingRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<SpanCountingRequest>) -> Self::Future {
        let n: usize =
            request.get_ref().resource_spans.iter().flat_map(|r| r.scope_spans.iter()).map(|s| s.spans.len()).sum();
        let now = self.start.elapsed().as_nanos() as u64;
        let _ = self.counts.first_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.counts.last_ns.store(now, Ordering::Relaxed);
        self.counts.spans.fetch_add(n as u64, Ordering::Relaxed);
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(tonic::Response::new(ExportTraceServiceResponse::default())))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr: std::net::SocketAddr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:14317".into()).parse()?;
    let idle_exit =
        args.iter().position(|a| a == "--idle-exit").and_then(|i| args.get(i + 1)).and_then(|s| s.parse::<u64>().ok());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("load_sink listening on {addr}");
        let export = Export { counts: counts.clone(), start };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let export = export.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                            let export = export.clone();
                            async move {
                                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<ExportTraceServiceResponse, SpanCountingRequest>::default())
                                    .accept_compressed(CompressionEncoding::Gzip)
                                    .accept_compressed(CompressionEncoding::Zstd)
                                    .max_decoding_message_size(256 << 20);
                                Ok::<_, std::convert::Infallible>(grpc.unary(export, req).await)
                            }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new()).serve_connection(io, service).await;
                    });
                }
                _ = term.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    let last = counts.last_ns.load(Ordering::Relaxed);
                    if let Some(idle) = idle_exit {
                        if last > 0 && start.elapsed().as_nanos() as u64 - last > idle * 1_000_000_000 {
                            break;
                        }
                    }
                }
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let spans = counts.spans.load(Ordering::Relaxed);
    let secs =
        counts.last_ns.load(Ordering::Relaxed).saturating_sub(counts.first_ns.load(Ordering::Relaxed)) as f64 / 1e9;
    println!(
        "{{\"spans\":{spans},\"requests\":{},\"active_seconds\":{secs:.3},\"spans_per_second\":{:.0}}}",
        counts.requests.load(Ordering::Relaxed),
        if secs > 0.0 { spans as f64 / secs } else { 0.0 }
    );
    Ok(())
}
