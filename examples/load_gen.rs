//! An OTLP/gRPC trace load generator whose every request carries new trace
//! IDs, for load runs of trace-keyed processors (h2load repeats one body, so
//! it would send the same traces again and again). The request is encoded
//! once; each send patches the low 8 bytes of every trace ID in place.
//!
//! `cargo run --release --example load_gen -- --endpoint http://127.0.0.1:4317 \
//!   --requests 2000 --concurrency 8 --spans 1000 --spans-per-trace 10`
//!
//! Prints one JSON line: requests ok / refused (UNAVAILABLE) / failed, spans
//! accepted, seconds, spans/s.

#[path = "../benches/support/trace_data.rs"]
mod trace_data;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends pre-encoded bytes; ignores the response body.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = arg(&args, "--endpoint", "http://127.0.0.1:4317");
    let requests: u64 = arg(&args, "--requests", "1000").parse()?;
    let concurrency: usize = arg(&args, "--concurrency", "8").parse()?;
    let spans: usize = arg(&args, "--spans", "1000").parse()?;
    let per_trace: usize = arg(&args, "--spans-per-trace", "10").parse()?;

    // A request whose trace IDs end in a marker we can find in the encoding.
    const MARKER: u64 = 0x5eed_5eed_5eed_5eed;
    let mut req = trace_data::trace_request(spans);
    let mut trace_index = Vec::new();
    for span in req.resource_spans.iter_mut().flat_map(|r| r.scope_spans.iter_mut()).flat_map(|s| s.spans.iter_mut()) {
        let t = trace_index.len() / per_trace.max(1);
        span.trace_id[..8].copy_from_slice(&(t as u64).to_be_bytes());
        span.trace_id[8..].copy_from_slice(&MARKER.to_be_bytes());
        trace_index.push(t as u64);
    }
    let encoded = req.encode_to_vec();
    let marker = MARKER.to_be_bytes();
    // (offset of the trace ID's low 8 bytes, trace number within the request)
    let mut patches = Vec::new();
    let mut i = 0;
    while i + 8 <= encoded.len() {
        if encoded[i..i + 8] == marker && i >= 8 {
            let t = u64::from_be_bytes(encoded[i - 8..i].try_into()?);
            patches.push((i, t));
            i += 8;
        } else {
            i += 1;
        }
    }
    assert_eq!(patches.len(), spans, "every span's trace ID must be patchable");

    let channel = tonic::transport::Endpoint::from_shared(endpoint)?.connect().await?;
    let path: http::uri::PathAndQuery = "/opentelemetry.proto.collector.trace.v1.TraceService/Export".parse()?;
    let next = Arc::new(AtomicU64::new(0));
    let (ok, refused, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (channel, path, next, ok, refused, failed) =
            (channel.clone(), path.clone(), next.clone(), ok.clone(), refused.clone(), failed.clone());
        let (encoded, patches) = (encoded.clone(), patches.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = tonic::client::Grpc::new(channel);
            let mut body = encoded;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                for &(offset, t) in &patches {
                    body[offset..offset + 8].copy_from_slice(&splitmix64(n << 20 | t).to_be_bytes());
                }
                if client.ready().await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let request = tonic::Request::new(Bytes::copy_from_slice(&body));
                match client.unary::<Bytes, (), RawCodec>(request, path.clone(), RawCodec).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == tonic::Code::Unavailable => refused.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let accepted = ok.load(Ordering::Relaxed) * spans as u64;
    println!(
        "{{\"requests_ok\":{},\"requests_refused\":{},\"requests_failed\":{},\"spans_accepted\":{accepted},\"seconds\":{secs:.3},\"spans_per_second\":{:.0}}}",
        ok.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        accepted as f64 / secs
    );
    Ok(())
}
