//! OTLP/gRPC: the Export methods of the trace, metrics and logs collector
//! services, served over h2c.
//!
//! tonic's generated servers decode with its stock prost codec, which answers
//! a malformed message with INTERNAL. The spec wants INVALID_ARGUMENT, so the
//! services here run `tonic::server::Grpc` with a codec that only unframes the
//! message to bytes; [`decode_grpc`] then decodes and validates it.
//!
//! Oversize messages: tonic rejects a frame longer than the limit with
//! OUT_OF_RANGE; a compressed message is decompressed by [`uncompress`] (on
//! the blocking pool, not by tonic on the async worker), which answers one
//! over the limit RESOURCE_EXHAUSTED. grpc-go (and so the Collector) answers
//! both with RESOURCE_EXHAUSTED, which is what clients expect, so
//! OUT_OF_RANGE from the framing layer is rewritten to RESOURCE_EXHAUSTED.

use super::admission::{Admission, Held, INLINE_BYTES};
use super::config::GrpcServerConfig;
use super::decode::{prepare, Compression, Format, Rejection, RequestLimits};
use super::{Ingest, Security, RETRY_AFTER_SECS};
use crate::data::estimate::Estimate;
use crate::data::Signal;
use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
    trace::v1::ExportTraceServiceResponse,
};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// gRPC over TLS is HTTP/2 only.
pub(super) const ALPN: &[&[u8]] = &[b"h2"];

pub(super) async fn serve(
    cfg: GrpcServerConfig,
    listener: TcpListener,
    ingest: Ingest,
    shutdown: watch::Receiver<bool>,
    security: Security,
) {
    // As the Collector: 0 leaves gRPC's default of 4 MiB.
    let mib = if cfg.max_recv_msg_size_mib == 0 { 4 } else { cfg.max_recv_msg_size_mib };
    let max_message = usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new()).http2_only();
    builder.http2().max_frame_size(super::MAX_HTTP2_FRAME);
    if cfg.max_concurrent_streams > 0 {
        builder.http2().max_concurrent_streams(cfg.max_concurrent_streams);
    }
    let pings =
        super::super::h2_pings::PingPolicy::of(cfg.keepalive.as_ref().and_then(|k| k.enforcement_policy.as_ref()));
    let params = cfg.keepalive.and_then(|k| k.server_parameters).unwrap_or_default();
    // Unset fields take sluice's defaults (grpc-go's are "never"): a client
    // that holds a connection without using it, or forever, gives it back.
    let time = params.time.or(Some(DEFAULT_KEEPALIVE_TIME));
    let max_connection_idle = params.max_connection_idle.or(Some(DEFAULT_MAX_CONNECTION_IDLE));
    let max_connection_age = params.max_connection_age.or(Some(DEFAULT_MAX_CONNECTION_AGE));
    let max_connection_age_grace = params.max_connection_age_grace.or(Some(DEFAULT_MAX_CONNECTION_AGE_GRACE));
    if let Some(time) = time.filter(|t| !t.is_zero()) {
        let timeout = params.timeout.filter(|t| !t.is_zero()).map_or(KEEPALIVE_TIMEOUT, |t| t.get());
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(time.get())
            .keep_alive_timeout(timeout);
    }
    let idle = max_connection_idle.filter(|d| !d.is_zero()).map(|d| d.get());
    let mut policy = security.policy(unauthenticated, idle, None, &cfg.limits);
    policy.max_age = max_connection_age
        .filter(|d| !d.is_zero())
        .map(|age| (age.get(), max_connection_age_grace.filter(|g| !g.is_zero()).map(|g| g.get())));
    policy.pings = Some(pings);
    let body_timeout = Some(cfg.limits.body_timeout.get()).filter(|d| !d.is_zero());
    let admission = ingest.admission(&cfg.limits, max_message as u64, body_timeout);
    let ingest = Arc::new(ingest);
    let handler = move |req| handle(Arc::clone(&ingest), admission.clone(), max_message, req);
    crate::receivers::listener::serve_connections(listener, builder, handler, shutdown, "grpc", policy).await;
}

/// grpc-go's default wait for a keepalive ping's answer.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Defaults of `keepalive.server_parameters` where it leaves a field unset
/// (0 turns one off). The ping interval is grpc-go's; grpc-go never closes
/// an idle or old connection by default, sluice does, so that silent
/// clients give their descriptors back and load spreads after scaling.
const DEFAULT_KEEPALIVE_TIME: crate::config::Duration = crate::config::Duration::from_secs(2 * 60 * 60);
const DEFAULT_MAX_CONNECTION_IDLE: crate::config::Duration = crate::config::Duration::from_secs(5 * 60);
const DEFAULT_MAX_CONNECTION_AGE: crate::config::Duration = crate::config::Duration::from_secs(2 * 60 * 60);
const DEFAULT_MAX_CONNECTION_AGE_GRACE: crate::config::Duration = crate::config::Duration::from_secs(60);

/// The answer to refused credentials, as grpc-go's auth interceptor gives it.
fn unauthenticated(
    failure: crate::extensions::auth::AuthFailure,
    _: &crate::extensions::auth::Authenticator,
    _: &http::Request<hyper::body::Incoming>,
) -> http::Response<tonic::body::Body> {
    Status::unauthenticated(failure.message()).into_http()
}

async fn handle(
    ingest: Arc<Ingest>,
    admission: Admission,
    max_message: usize,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<tonic::body::Body> {
    let signal = match req.uri().path() {
        TRACES_PATH => Signal::Traces,
        METRICS_PATH => Signal::Metrics,
        LOGS_PATH => Signal::Logs,
        other => return Status::unimplemented(format!("unknown method {other}")).into_http(),
    };
    if !ingest.accepts(signal) {
        return Status::unimplemented(ingest.no_pipeline_message(signal)).into_http();
    }
    // The gRPC spec: a Content-Type not starting with application/grpc is answered 415.
    let content_type = req.headers().get(http::header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
    if !content_type.starts_with(b"application/grpc") {
        ingest.malformed(signal);
        let mut resp = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(format!(
            "invalid gRPC request content-type {:?}; use application/grpc",
            String::from_utf8_lossy(content_type)
        )))));
        *resp.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return resp;
    }
    let encoding = req.headers().get("grpc-encoding").and_then(|v| {
        let v = v.as_bytes();
        [(b"gzip" as &[u8], Compression::Gzip), (b"zstd", Compression::Zstd), (b"snappy", Compression::Snappy)]
            .into_iter()
            .find_map(|(name, c)| v.eq_ignore_ascii_case(name).then_some(c))
    });
    // The message's bytes count against the listener's budget from the
    // first frame until the batch is in the pipelines.
    let held = Held::new(&admission.budget);
    let req = req.map(|body| admission.guard(body, Arc::clone(&held), 0));
    let response = if let Some(compression) = encoding {
        match uncompress(req, max_message, compression, &admission).await {
            Ok(req) => export(&ingest, &admission, signal, max_message, req).await,
            Err(status) => {
                if !matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) {
                    ingest.malformed(signal);
                }
                return status.into_http();
            }
        }
    } else {
        export(&ingest, &admission, signal, max_message, req).await
    };
    drop(held);
    // Errors raised by tonic's framing layer (before `Export` runs) come back
    // as a trailers-only response, so grpc-status is in the headers.
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    match status.code() {
        Code::OutOfRange => {
            ingest.malformed(signal);
            Status::resource_exhausted(status.message()).into_http()
        }
        // Decompression over the limit; `Export` itself never answers this.
        Code::ResourceExhausted => {
            ingest.malformed(signal);
            response
        }
        Code::InvalidArgument if status.message() == TWO_MESSAGES => {
            ingest.malformed(signal);
            response
        }
        // `Export` never answers INTERNAL either: these are the framing
        // layer's complaints about the client's bytes (bad compressed data,
        // bad compression flag, truncated frame, no message at all).
        Code::Internal => {
            ingest.malformed(signal);
            Status::invalid_argument(status.message()).into_http()
        }
        _ => response,
    }
}

async fn export<B>(
    ingest: &Arc<Ingest>,
    admission: &Admission,
    signal: Signal,
    max_message: usize,
    req: http::Request<B>,
) -> Response
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let a = admission;
    match signal {
        Signal::Traces => unary::<ExportTraceServiceResponse, B>(ingest, a, signal, max_message, req).await,
        Signal::Metrics => unary::<ExportMetricsServiceResponse, B>(ingest, a, signal, max_message, req).await,
        Signal::Logs => unary::<ExportLogsServiceResponse, B>(ingest, a, signal, max_message, req).await,
    }
}

type Response = http::Response<tonic::body::Body>;

/// A compressed message (gzip, zstd, or the Collector's `snappy`: snappy's
/// framing format, a block accepted too) is unframed and decompressed here,
/// on the blocking pool and within the same limit as tonic's codecs, and
/// handed on uncompressed: tonic would decompress on the async worker, and
/// it has no snappy. The answers are tonic's: RESOURCE_EXHAUSTED over the
/// limit, INVALID_ARGUMENT for bytes that are not one compressed message.
async fn uncompress<B>(
    req: http::Request<B>,
    max_message: usize,
    compression: Compression,
    admission: &Admission,
) -> Result<http::Request<http_body_util::Full<Bytes>>, Status>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    let (mut parts, body) = req.into_parts();
    parts.headers.remove("grpc-encoding");
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let bytes = match http_body_util::Limited::new(body, max_message.saturating_add(5)).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Status::resource_exhausted(format!(
                "Error, encoded message length too large: over the limit of {max_message} bytes"
            )));
        }
        Err(e) => {
            return Err(match super::admission::body_cut(&*e).map(|_| Status::from_error(e)) {
                Some(cut) => cut,
                None => Status::invalid_argument("cannot read the request".to_string()),
            })
        }
    };
    let Some((&[flag, a, b, c, d], rest)) = bytes.split_first_chunk::<5>() else {
        return Err(Status::invalid_argument("truncated gRPC message"));
    };
    if rest.len() != u32::from_be_bytes([a, b, c, d]) as usize {
        return Err(Status::invalid_argument("the request is not one whole gRPC message"));
    }
    let message: Bytes = match flag {
        0 => bytes.slice(5..),
        1 => {
            let compressed = bytes.slice(5..);
            let inflated = admission
                .decode(false, move || super::decode::inflate(compression, &compressed, max_message))
                .await
                .ok_or_else(|| Status::internal("the request could not be decompressed"))?;
            inflated
                .map_err(|e| match e {
                    super::decode::DecodeError::TooLarge { .. } => Status::resource_exhausted(format!(
                        "Error decompressing: size of the decompressed message is over the limit of {max_message} bytes"
                    )),
                    e => Status::invalid_argument(format!("Error decompressing: {e}")),
                })?
                .into()
        }
        other => return Err(Status::invalid_argument(format!("bad compression flag {other}"))),
    };
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    Ok(http::Request::from_parts(parts, http_body_util::Full::new(Bytes::from(framed))))
}

async fn unary<R, B>(
    ingest: &Arc<Ingest>,
    admission: &Admission,
    signal: Signal,
    max_message: usize,
    req: http::Request<B>,
) -> Response
where
    R: prost::Message + Default + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let mut grpc = tonic::server::Grpc::new(RawRequestCodec::<R>(PhantomData))
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message);
    let export =
        Export::<R> { ingest: Arc::clone(ingest), admission: admission.clone(), signal, _response: PhantomData };
    grpc.unary(export, req).await
}

/// The Export method of one signal's service.
struct Export<R> {
    ingest: Arc<Ingest>,
    admission: Admission,
    signal: Signal,
    _response: PhantomData<fn() -> R>,
}

type ExportResult<R> = Result<tonic::Response<R>, Status>;

impl<R: prost::Message + Default + Send + 'static> tonic::server::UnaryService<Bytes> for Export<R> {
    type Response = R;
    type Future = Pin<Box<dyn Future<Output = ExportResult<R>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (ingest, admission, signal) = (Arc::clone(&self.ingest), self.admission.clone(), self.signal);
        let message = request.into_inner();
        Box::pin(async move {
            let encoded = ingest.takes_encoded(signal);
            let inline = message.len() <= INLINE_BYTES;
            // The transport bounded the message and its decompression already.
            let limits = RequestLimits { max_plain: usize::MAX, max_decoded: admission.max_decoded };
            let pipelines = Arc::clone(&ingest);
            let prepared = admission
                .decode(inline, move || {
                    let mut decoded_bytes = 0;
                    let admit = |e: Estimate| {
                        decoded_bytes = e.decoded_bytes;
                        pipelines.admit_estimate(signal, e)
                    };
                    prepare(signal, Format::Protobuf, Compression::Identity, message, limits, encoded, admit)
                        .map(|batch| (batch, decoded_bytes))
                })
                .await;
            let (batch, decoded_bytes) = match prepared {
                Some(Ok(prepared)) => prepared,
                Some(Err(rejection)) => {
                    ingest.rejected(signal, &rejection);
                    return Err(match rejection {
                        Rejection::Malformed(e) => e.grpc_status(),
                        Rejection::DecodedTooLarge { .. } => Status::resource_exhausted(rejection.to_string()),
                        Rejection::Refused(refusal) => unavailable(refusal),
                    });
                }
                None => return Err(Status::internal("the request could not be decoded")),
            };
            ingest.settle(ingest.deliver(batch, decoded_bytes)).await.map_err(unavailable)?;
            Ok(tonic::Response::new(R::default()))
        })
    }
}

/// UNAVAILABLE with a RetryInfo, the spec's way to say "retry later".
fn unavailable(refusal: crate::receivers::Refusal) -> Status {
    unavailable_status(refusal.to_string())
}

pub(super) fn unavailable_status(message: String) -> Status {
    let details = super::status::retry_details(Code::Unavailable, &message, RETRY_AFTER_SECS);
    Status::with_details(Code::Unavailable, message, details)
}

/// Encodes responses with prost; hands requests on as the raw message bytes.
struct RawRequestCodec<R>(PhantomData<fn() -> R>);

impl<R: prost::Message + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<R>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder { seen: false }
    }
}

struct ResponseEncoder<R>(PhantomData<fn() -> R>);

impl<R: prost::Message> Encoder for ResponseEncoder<R> {
    type Item = R;
    type Error = Status;

    fn encode(&mut self, item: R, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("cannot encode response: {e}")))
    }
}

/// What a unary call with more than one request message is answered.
const TWO_MESSAGES: &str = "a unary call carries exactly one request message; this one has more";

/// Hands on the request message; a second one is an error (tonic reads and
/// drops what follows the first, and would answer OK).
struct RawDecoder {
    seen: bool,
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        if std::mem::replace(&mut self.seen, true) {
            return Err(Status::invalid_argument(TWO_MESSAGES));
        }
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::data::{Batch, Signal};
    use opentelemetry_proto::tonic::collector::{
        logs::v1::logs_service_client::LogsServiceClient, metrics::v1::metrics_service_client::MetricsServiceClient,
        trace::v1::trace_service_client::TraceServiceClient,
    };
    use prost::Message;
    use tonic::codec::CompressionEncoding;
    use tonic::Code;

    async fn channel(h: &Harness) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", h.grpc_addr())).unwrap().connect().await.unwrap()
    }

    #[tokio::test]
    async fn each_signal_arrives_intact() {
        let h = Harness::start(Sink::recording()).await;
        let ch = channel(&h).await;
        TraceServiceClient::new(ch.clone()).export(traces(3)).await.unwrap();
        MetricsServiceClient::new(ch.clone()).export(metrics()).await.unwrap();
        LogsServiceClient::new(ch).export(logs(2)).await.unwrap();
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(3)), Batch::Metrics(metrics()), Batch::Logs(logs(2))]);
        assert_eq!(h.accepted("grpc", Signal::Traces), 3);
        assert_eq!(h.accepted("grpc", Signal::Metrics), 3);
        assert_eq!(h.accepted("grpc", Signal::Logs), 2);
        h.stop().await;
    }

    #[tokio::test]
    async fn gzip_and_zstd_requests() {
        let h = Harness::start(Sink::recording()).await;
        let ch = channel(&h).await;
        TraceServiceClient::new(ch.clone()).send_compressed(CompressionEncoding::Gzip).export(traces(2)).await.unwrap();
        LogsServiceClient::new(ch).send_compressed(CompressionEncoding::Zstd).export(logs(1)).await.unwrap();
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(2)), Batch::Logs(logs(1))]);
        h.stop().await;
    }

    #[tokio::test]
    async fn durable_pipeline_answers_after_the_write_and_unavailable_when_it_fails() {
        let h = Harness::start(Sink::recording()).await;
        let mut client = TraceServiceClient::new(channel(&h).await);
        h.sink.durable(true);
        let started = std::time::Instant::now();
        client.export(traces(3)).await.unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(50), "answered before the write completed");
        assert_eq!(h.accepted("grpc", Signal::Traces), 3);
        h.sink.durable(false);
        let err = client.export(traces(2)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(err.message().contains("persistent queue"), "{}", err.message());
        assert_eq!(h.refused("grpc", Signal::Traces), 2);
        assert_eq!(h.accepted("grpc", Signal::Traces), 3);
        assert_eq!(h.durable_ack_failures("grpc"), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn pass_through_pipeline_gets_checked_bytes_and_the_same_errors() {
        let h = Harness::start(Sink::pass_through()).await;
        let ch = channel(&h).await;
        TraceServiceClient::new(ch.clone()).export(traces(2)).await.unwrap();
        LogsServiceClient::new(ch.clone()).send_compressed(CompressionEncoding::Gzip).export(logs(3)).await.unwrap();
        assert_eq!(h.sink.encoded_offers.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(2)), Batch::Logs(logs(3))]);
        assert_eq!(h.accepted("grpc", Signal::Traces), 2);
        let mut bad = traces(2);
        bad.resource_spans[0].scope_spans[0].spans[1].span_id = vec![1; 3];
        let err = TraceServiceClient::new(ch).export(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "resource_spans[0].scope_spans[0].spans[1]: span_id must be 8 bytes, got 3");
        let status = raw_grpc(h.grpc_addr(), super::TRACES_PATH, &[0x0a, 0x10, 0x0a], None).await;
        assert_eq!(status.0, Code::InvalidArgument as i32);
        assert!(status.1.starts_with("cannot decode protobuf ExportTraceServiceRequest: "), "{}", status.1);
        assert_eq!(h.malformed("grpc", Signal::Traces), 2);
        assert_eq!(h.sink.batches().len(), 2);
        h.stop().await;
    }

    #[tokio::test]
    async fn refusal_is_unavailable_and_counted() {
        let h = Harness::start(Sink::recording()).await;
        h.sink.refuse(true);
        let err = TraceServiceClient::new(channel(&h).await).export(traces(4)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.message(), "the pipeline is full; retry later");
        let details = crate::rpc::RpcStatus::decode(err.details()).unwrap();
        assert_eq!(details.code, Code::Unavailable as i32);
        assert_eq!(details.details[0].type_url, "type.googleapis.com/google.rpc.RetryInfo");
        let info = crate::rpc::RetryInfo::decode(&details.details[0].value[..]).unwrap();
        assert_eq!(info.retry_delay.map(|d| (d.seconds, d.nanos)), Some((1, 0)));
        assert_eq!(h.refused("grpc", Signal::Traces), 4);
        assert_eq!(h.accepted("grpc", Signal::Traces), 0);
        h.stop().await;
    }

    #[tokio::test]
    async fn malformed_protobuf_is_invalid_argument_then_next_request_works() {
        let h = Harness::start(Sink::recording()).await;
        let mut good = traces(1);
        // A length-delimited field whose length runs past the end of the message.
        let truncated = vec![0x0a, 0x10, 0x0a];
        let status = raw_grpc(h.grpc_addr(), super::TRACES_PATH, &truncated, None).await;
        assert_eq!(status.0, Code::InvalidArgument as i32);
        assert!(status.1.starts_with("cannot decode protobuf ExportTraceServiceRequest: "), "{}", status.1);
        assert_eq!(h.malformed("grpc", Signal::Traces), 1);
        let mut client = TraceServiceClient::new(channel(&h).await);
        client.export(good.clone()).await.unwrap();
        good.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1; 5];
        let err = client.export(good).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "resource_spans[0].scope_spans[0].spans[0]: trace_id must be 16 bytes, got 5");
        assert_eq!(h.malformed("grpc", Signal::Traces), 2);
        assert_eq!(h.sink.batches().len(), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn framing_errors_are_invalid_argument() {
        let h = Harness::start(Sink::recording()).await;
        // Flagged gzip but not gzip.
        let (code, message) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, b"not gzip at all", Some("gzip")).await;
        assert_eq!(code, Code::InvalidArgument as i32);
        assert!(message.starts_with("Error decompressing"), "{message}");
        assert_eq!(h.malformed("grpc", Signal::Logs), 1);
        // An encoding the server does not take: UNIMPLEMENTED, as the gRPC spec says.
        let (code, _) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, b"x", Some("br")).await;
        assert_eq!(code, Code::Unimplemented as i32);
        LogsServiceClient::new(channel(&h).await).export(logs(1)).await.unwrap();
        h.stop().await;
    }

    #[tokio::test]
    async fn oversize_is_resource_exhausted() {
        let h = Harness::start_with(Sink::recording(), |c| {
            c.protocols.grpc.as_mut().unwrap().max_recv_msg_size_mib = 1;
        })
        .await;
        let mut big = traces(1);
        big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2 << 20);
        let mut client = TraceServiceClient::new(channel(&h).await);
        let err = client.export(big.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        // Compressed small, decompressed over the limit.
        let err = client.send_compressed(CompressionEncoding::Gzip).export(big).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert_eq!(h.malformed("grpc", Signal::Traces), 2);
        assert!(h.sink.batches().is_empty());
        h.stop().await;
    }

    /// `message` compressed as the Collector's gRPC codec of that name does.
    fn compressed(encoding: &str, message: &[u8]) -> Vec<u8> {
        use crate::exporters::otlp_common::{Compression, CompressionParams, Encoder, Transport};
        let c = match encoding {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "snappy" => Compression::Snappy,
            other => panic!("{other}"),
        };
        let enc = Encoder::new(c, &CompressionParams::default(), Transport::Grpc).unwrap();
        enc.compress(&[message], Vec::new(), Transport::Grpc).unwrap()
    }

    #[tokio::test]
    async fn every_collector_grpc_encoding_arrives_intact() {
        let h = Harness::start(Sink::recording()).await;
        for encoding in ["gzip", "zstd", "snappy"] {
            let body = compressed(encoding, &logs(2).encode_to_vec());
            let (code, message) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, &body, Some(encoding)).await;
            assert_eq!(code, Code::Ok as i32, "{encoding}: {message}");
        }
        // A snappy block (not the framing format) is accepted too, as over HTTP.
        let block = snap::raw::Encoder::new().compress_vec(&logs(2).encode_to_vec()).unwrap();
        let (code, message) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, &block, Some("snappy")).await;
        assert_eq!(code, Code::Ok as i32, "{message}");
        // Unflagged under grpc-encoding: snappy is a plain message.
        let (code, message) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, &logs(1).encode_to_vec(), None).await;
        assert_eq!(code, Code::Ok as i32, "{message}");
        assert_eq!(
            h.sink.batches(),
            vec![Batch::Logs(logs(2)); 4].into_iter().chain([Batch::Logs(logs(1))]).collect::<Vec<_>>()
        );
        // Flagged snappy but not snappy.
        let (code, message) = raw_grpc(h.grpc_addr(), super::LOGS_PATH, b"not snappy at all", Some("snappy")).await;
        assert_eq!(code, Code::InvalidArgument as i32);
        assert!(message.starts_with("Error decompressing"), "{message}");
        assert_eq!(h.malformed("grpc", Signal::Logs), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_bomb_of_every_grpc_encoding_is_resource_exhausted() {
        let h = Harness::start_with(Sink::recording(), |c| {
            c.protocols.grpc.as_mut().unwrap().max_recv_msg_size_mib = 1;
        })
        .await;
        let zeros = vec![0u8; 4 << 20];
        for (i, encoding) in ["gzip", "zstd", "snappy"].into_iter().enumerate() {
            let bomb = compressed(encoding, &zeros);
            assert!(bomb.len() < 1 << 20, "{encoding}");
            let (code, message) = raw_grpc(h.grpc_addr(), super::TRACES_PATH, &bomb, Some(encoding)).await;
            assert_eq!(code, Code::ResourceExhausted as i32, "{encoding}: {message}");
            assert!(!message.is_empty(), "{encoding}");
            assert_eq!(h.malformed("grpc", Signal::Traces), i as u64 + 1);
        }
        // A snappy block that claims more than the limit is refused unread.
        let block = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        let (code, _) = raw_grpc(h.grpc_addr(), super::TRACES_PATH, &block, Some("snappy")).await;
        assert_eq!(code, Code::ResourceExhausted as i32);
        // A snappy frame longer than the limit, as tonic refuses any.
        let (code, _) = raw_grpc(h.grpc_addr(), super::TRACES_PATH, &vec![7u8; (1 << 20) + 10], Some("snappy")).await;
        assert_eq!(code, Code::ResourceExhausted as i32);
        assert!(h.sink.batches().is_empty());
        h.stop().await;
    }

    #[tokio::test]
    async fn signal_without_pipeline_is_unimplemented() {
        let h = Harness::start(Sink::traces_only()).await;
        let err = LogsServiceClient::new(channel(&h).await).export(logs(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert_eq!(err.message(), "receiver otlp has no logs pipeline");
        h.stop().await;
    }
}
